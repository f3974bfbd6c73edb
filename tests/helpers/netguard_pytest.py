"""pytest side of ``netguard.py``: installed for the whole session, it fails the test during
which this process or any Python process it started tried to send off the machine.

Refusals are read from the session's log after each test phase (setup, call,
teardown), so a refusal counts although aioice, asyncio or the code under test
swallowed the ``PermissionError``. One that arrives after the last test fails the
session. ``DOORBELL_NETGUARD=off`` leaves the guard out (for the guard's own test).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Generator
from typing import Any

import pytest

from tests.helpers import netguard

_log = pytest.StashKey[str]()
_offset = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("DOORBELL_NETGUARD") == "off":
        return
    fd, log = tempfile.mkstemp(prefix="netguard-", suffix=".jsonl")
    os.close(fd)
    config.stash[_log], config.stash[_offset] = log, 0
    netguard.install(log)
    netguard.guard_children(log)


def pytest_unconfigure(config: pytest.Config) -> None:
    log = config.stash.get(_log, None)
    if log is not None:
        with contextlib.suppress(OSError):
            os.unlink(log)


def _new_violations(config: pytest.Config) -> list[str]:
    log = config.stash.get(_log, None)
    if log is None:
        return []
    found, config.stash[_offset] = netguard.read_log(log, config.stash[_offset])
    return netguard.summary(found)


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
