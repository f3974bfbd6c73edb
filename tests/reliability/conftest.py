"""Shared pieces of the reliability suite: figures of the run, the agent as a subprocess.

Every test records the figures it measured with ``record_figures(name, **values)``;
they are merged into ``build/reliability.json`` (override with
``ALEXA_DOORBELL_RELIABILITY_REPORT``) so docs/reliability.md's table can quote the last run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alexa_doorbell.config import Settings

ROOT = Path(__file__).resolve().parents[2]
REPORT = Path(os.environ.get("ALEXA_DOORBELL_RELIABILITY_REPORT", ROOT / "build/reliability.json"))
_report_lock = threading.Lock()


def record(name: str, **values: Any) -> None:
    with _report_lock:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(REPORT.read_text())
        except (OSError, ValueError):
            data = {}
        data[name] = {**values, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        REPORT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def record_figures() -> Callable[..., None]:
    return record


def settings_spec(settings: Settings) -> dict[str, Any]:
    """What a child process needs to rebuild ``settings`` (secrets are the local defaults)."""
    return {
        "data_dir": str(settings.data_dir),
        "local": {
            "host": settings.local.host,
            "port": settings.local.port,
            "tls_port": settings.local.tls_port,
        },
        "cameras": [c.model_dump() for c in settings.cameras],
        "max_viewers": settings.max_viewers,
        "ice_gather_timeout": settings.ice_gather_timeout,
    }


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEXA_DOORBELL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["ALEXA_DOORBELL_CONFIG"] = os.devnull  # no config file
    return env


def spawn_worker(argv: list[str]) -> subprocess.Popen[str]:
    """A helper process spoken to line by line over its stdin/stdout."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )


class AgentProcess:
    """``tests/reliability/agent_proc.py`` in a child process; ``stats()`` asks it for figures."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        spec = {"settings": settings_spec(settings), "options": options}
        self.proc = spawn_worker(
            [sys.executable, str(Path(__file__).with_name("agent_proc.py")), json.dumps(spec)]
        )
        self._lock = threading.Lock()
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        ready = self._line(timeout=30)
        assert ready.get("ready"), ready

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            del self.stderr[:-200]

    def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            raise RuntimeError("agent process gave no reply:\n" + "".join(self.stderr[-30:]))
        return json.loads(result[0])

    def command(self, cmd: str, timeout: float = 10.0) -> dict[str, Any]:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
            return self._line(timeout)

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.command("stop", timeout=15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two free adjacent ports")


class CloudProcess:
    """``alexa-doorbell cloud --port N`` with a data dir, as a user runs it."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.data_dir, self.port, self.env = data_dir, port, env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> float:
        """Start it; returns the monotonic time at which its REST port answered."""
        env = {**child_env(), "ALEXA_DOORBELL_DATA_DIR": str(self.data_dir), **self.env}
        cli = Path(sys.executable).with_name("alexa-doorbell")
        self.proc = subprocess.Popen(
            [str(cli), "cloud", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cloud exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                url = f"http://127.0.0.1:{self.port}/_local/status"
                with urllib.request.urlopen(url, timeout=0.5):
                    return time.monotonic()
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("cloud did not come up")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
