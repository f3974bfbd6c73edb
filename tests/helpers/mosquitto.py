"""Debian's ``mosquitto`` broker for tests, on a free loopback port.

    with MosquittoBroker(tmp_path) as broker:
        broker.url                      # mqtt://127.0.0.1:<port>
        broker.kill(); broker.start()   # a crash and a restart on the same port

Retained messages persist across restarts (``persistence true``, saved on every
change, as a broker that has been up a while has them on disk), so a test sees
what a real restart replays. ``users={"name": "password"}`` turns anonymous
access off; ``tls=(cert_pem, key_pem)`` adds an ``mqtts`` listener.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
MISSING = (
    "Debian's mosquitto broker is not installed (scripts/setup-test-deps installs it: "
    "apt-get install mosquitto)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MosquittoBroker:
    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        if MOSQUITTO is None:
            raise RuntimeError(MISSING)
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "mosquitto.log"
        lines = [
            # As root mosquitto would become the "mosquitto" user, who cannot read the test's
            # private temporary directory.
            *([f"user {pwd.getpwuid(os.geteuid()).pw_name}"] if os.geteuid() == 0 else []),
            "per_listener_settings false",
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_on_changes true",
            "autosave_interval 1",
            f"log_dest file {self.log}",
            "log_type all",
            f"listener {self.port} 127.0.0.1",
        ]
        if tls:
            cert, key = tls
            lines += [f"listener {self.tls_port} 127.0.0.1", f"certfile {cert}", f"keyfile {key}"]
        if users:
            if MOSQUITTO_PASSWD is None:
                raise RuntimeError("mosquitto_passwd is missing (it ships with mosquitto)")
            passwd = self.dir / "passwd"
            passwd.touch(mode=0o600)
            for name, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), name, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://localhost:{self.tls_port}"

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"mosquitto exited: {err or self.log_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to clients (their wills are published by no one)."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
