"""pytest side of ``netguard.py``: installed for the whole session, it fails the test during
which this process or any Python process it started tried to send off the machine.

Refusals are read from the session's log after each test phase (setup, call,
teardown), so a refusal counts although aioice, asyncio or the code under test
swallowed the ``PermissionError``. One that arrives after the last test fails the
session. ``DOORBELL_NETGUARD=off`` leaves the guard out (for the guard's own test).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import netguard

SITE = Path(__file__).with_name("netguard_site")
_log = pytest.StashKey[Path]()
_offset = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("DOORBELL_NETGUARD") == "off":
        return
    fd, name = tempfile.mkstemp(prefix="netguard-", suffix=".jsonl")
    os.close(fd)
    config.stash[_log], config.stash[_offset] = Path(name), 0
    netguard.install(name)
    os.environ[netguard.LOG_ENV] = name
    paths = [str(SITE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def pytest_unconfigure(config: pytest.Config) -> None:
    log = config.stash.get(_log, None)
    if log is not None:
        with contextlib.suppress(OSError):
            log.unlink()


def _new_violations(config: pytest.Config) -> list[str]:
    log = config.stash.get(_log, None)
    if log is None:
        return []
    try:
        with log.open("rb") as f:
            f.seek(config.stash[_offset])
            data = f.read()
    except OSError:
        return []
    complete = data[: data.rfind(b"\n") + 1]  # a child may be half-way through a line
    config.stash[_offset] += len(complete)
    return _summary([netguard.Violation(**json.loads(ln)) for ln in complete.splitlines()])


def _summary(violations: list[netguard.Violation], most: int = 8) -> list[str]:
    """One entry per call, destination and process (where it was first seen), the most first."""
    first: dict[tuple[str, str, int], netguard.Violation] = {}
    counts: Counter[tuple[str, str, int]] = Counter()
    for v in violations:
        key = (v.call, v.target, v.pid)
        first.setdefault(key, v)
        counts[key] += 1
    lines = [
        first[key].describe() + (f"\n    ({n} times)" if n > 1 else "")
        for key, n in counts.most_common(most)
    ]
    if len(counts) > most:
        lines.append(f"... and {len(counts) - most} other destinations")
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator:
    outcome = yield
    found = _new_violations(item.config)
    if not found:
        return
    report = outcome.get_result()
    text = "\n".join(found)
    if report.failed:  # keep the test's own failure; add what the guard refused
        report.sections.append((f"netguard: traffic off this machine ({call.when})", text))
    else:
        report.outcome = "failed"
        report.longrepr = f"netguard refused traffic off this machine ({netguard.RULE}):\n{text}"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    found = _new_violations(session.config)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("netguard refused traffic off this machine after the last test:")
            for line in found:
                reporter.write_line(line)
