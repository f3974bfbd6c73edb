"""The local cloud's STUN/TURN server: Debian's coturn (``turnserver``).

KVS hands out TURN credentials that expire (``GetIceServerConfig``: ``Uris``,
``Username``, ``Password``, ``Ttl``). coturn's REST-API scheme makes the same
kind (``use-auth-secret``): the user name is ``<unix expiry>:<name>`` and the
password base64(HMAC-SHA1(secret, user name)), so coturn checks them with no
user database and refuses them once expired. The secret is made at each start
and lives only in coturn's configuration file (mode 0600, removed at stop),
never on a command line or in a log.

coturn listens on ``local.host``: STUN and TURN on ``turn_port`` (UDP and TCP),
TURN over TLS on ``turn_tls_port`` with the local cloud's certificate. It
starts on the first ``GetIceServerConfig`` (or at once with
``alexa-doorbell cloud``) and stops with the cloud. Without ``turnserver``
installed, or with ``local.turn = false``, the cloud says so once and lists no
ICE servers, as before.

    turn = Coturn(settings)
    entries = await turn.ice_server_list("client-1")   # [] without coturn
    await turn.stop()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings

log = logging.getLogger(__name__)

BINARY = "turnserver"
REALM = "alexa-doorbell.local"
START_TIMEOUT = 10.0
INSTALL_HINT = "install Debian's coturn (apt-get install coturn) for a local TURN server"


def rest_credentials(secret: str, name: str, ttl: int, now: float) -> tuple[str, str]:
    """coturn's REST-API credentials: (``<expiry>:<name>``, base64 HMAC-SHA1 of it)."""
    username = f"{int(now) + ttl}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_uris(host: str, port: int, tls_port: int) -> list[str]:
    """The URIs of one server in KVS's order: UDP, TLS-over-UDP (DTLS), TLS over TCP."""
    h = f"[{host}]" if ":" in host else host
    return [
        f"turn:{h}:{port}?transport=udp",
        f"turns:{h}:{tls_port}?transport=udp",
        f"turns:{h}:{tls_port}?transport=tcp",
    ]


def _free_port(host: str, *kinds: int) -> int:
    """A port free for every socket type in ``kinds`` on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, kinds[0]) as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            try:
                for kind in kinds[1:]:
                    with socket.socket(family, kind) as other:
                        other.bind((host, port))
            except OSError:
                continue
        return port
    raise OSError(f"no free port on {host}")


def _port_taken(host: str, port: int, kind: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class Coturn:
    """coturn run by the local cloud, started when first needed."""

    def __init__(self, settings: Settings, binary: str | None = None) -> None:
        self.settings = settings
        local = settings.local
        self.enabled = local.turn
        self.binary = binary or coturn_binary()
        self.host = local.host
        self.port = local.turn_port
        self.tls_port = local.turn_tls_port
        self.ttl = local.turn_credential_ttl
        self.dir = settings.cloud_dir / "turn"
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None  # why there is no TURN server (said once)
        self._secret = ""
        self._lock = asyncio.Lock()
        self.started_in: float | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def uris(self) -> list[str]:
        return ice_uris(self.host, self.port, self.tls_port)

    @property
    def stun_url(self) -> str:
        return f"stun:{self.host}:{self.port}"

    async def ensure_started(self) -> bool:
        """Start coturn if it is not running; False (and the reason said once) if it cannot."""
        async with self._lock:
            if self.running:
                return True
            if self.error is not None:
                return False
            reason = self._unavailable()
            if reason is None:
                try:
                    await self._start()
                    return True
                except Exception as exc:
                    await self._kill()
                    reason = f"coturn did not start: {exc}"
            self.error = reason
            log.warning("local cloud: no TURN server (%s); GetIceServerConfig lists none", reason)
            return False

    def _unavailable(self) -> str | None:
        if not self.enabled:
            return "local.turn = false"
        if not self.binary:
            return f"`{BINARY}` is not installed: {INSTALL_HINT}"
        return None

    async def ice_server_list(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """GetIceServerConfig's ``IceServerList``: one server, KVS-shaped; [] without coturn."""
        if not await self.ensure_started():
            return []
        username, password = rest_credentials(
            self._secret, client_id or "master", self.ttl, time.time()
        )
        return [{"Uris": self.uris, "Username": username, "Password": password, "Ttl": self.ttl}]

    async def _start(self) -> None:
        t0 = time.monotonic()
        host = self.host
        if self.port == 0:
            self.port = _free_port(host, socket.SOCK_DGRAM, socket.SOCK_STREAM)
        else:
            for kind, what in ((socket.SOCK_DGRAM, "UDP"), (socket.SOCK_STREAM, "TCP")):
                if _port_taken(host, self.port, kind):
                    raise OSError(
                        f"{what} port {host}:{self.port} is taken (another TURN server?): "
                        "set local.turn_port (0 = any free port)"
                    )
        if self.tls_port == 0:
            self.tls_port = _free_port(host, socket.SOCK_STREAM)
        elif _port_taken(host, self.tls_port, socket.SOCK_STREAM):
            raise OSError(
                f"TCP port {host}:{self.tls_port} is taken: set local.turn_tls_port "
                "(0 = any free port)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self._secret = secrets.token_urlsafe(32)
        conf = self.dir / "turnserver.conf"
        logfile = self.dir / "turnserver.log"
        with contextlib.suppress(FileNotFoundError):
            logfile.unlink()
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self._config(logfile))
        os.chmod(conf, 0o600)
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches the cloud, which stops it
            preexec_fn=_die_with_parent(),
        )
        await self._wait_ready(logfile)
        self.started_in = time.monotonic() - t0
        log.info(
            "local cloud: coturn (pid %d) on %s: STUN/TURN %d (UDP, TCP), TURN over TLS %d",
            self.proc.pid,
            host,
            self.port,
            self.tls_port,
        )

    def _config(self, logfile: Path) -> str:
        s = self.settings
        lines = [
            f"listening-ip={self.host}",
            f"relay-ip={self.host}",
            f"listening-port={self.port}",
            f"tls-listening-port={self.tls_port}",
            "use-auth-secret",
            f"static-auth-secret={self._secret}",
            f"realm={REALM}",
            f"cert={s.ca_file}",
            f"pkey={s.cloud_dir / 'key.pem'}",
            "no-dtls",  # aioice has no DTLS client; KVS's turns:?transport=udp is skipped
            "no-cli",
            "no-rfc5780",
            "no-software-attribute",
            "no-multicast-peers",
            "fingerprint",
            f"userdb={self.dir / 'turndb'}",
            f"pidfile={self.dir / 'turnserver.pid'}",
            f"log-file={logfile}",
            "simple-log",
            "no-stdout-log",
        ]
        from alexa_doorbell.httpguard import is_loopback

        if is_loopback(self.host):
            # Camera and viewer on this machine talk over loopback: let coturn relay there.
            lines.append("allow-loopback-peers")
        return "\n".join(lines) + "\n"

    async def _wait_ready(self, logfile: Path) -> None:
        """Until coturn answers a STUN binding request on its UDP port and accepts TLS."""
        from aioice import stun

        deadline = time.monotonic() + START_TIMEOUT
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        loop = asyncio.get_running_loop()
        udp_ok = False
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"turnserver exited ({self._log_tail(logfile)})")
            if not udp_ok:
                with socket.socket(family, socket.SOCK_DGRAM) as sock:
                    sock.setblocking(False)
                    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
                    with contextlib.suppress(OSError, TimeoutError):
                        await loop.sock_sendto(sock, bytes(request), (self.host, self.port))
                        data = await asyncio.wait_for(loop.sock_recv(sock, 2048), 0.05)
                        udp_ok = stun.parse_message(data).transaction_id == request.transaction_id
            if udp_ok:
                with contextlib.suppress(OSError, TimeoutError):
                    _, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.tls_port), 0.2
                    )
                    writer.close()
                    return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no answer in {START_TIMEOUT:.0f} s ({self._log_tail(logfile)})")

    @staticmethod
    def _log_tail(logfile: Path) -> str:
        try:
            lines = logfile.read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        errors = [ln for ln in lines if "ERROR" in ln or "error" in ln]
        return (errors or lines or ["empty log"])[-1].strip()[:300]

    async def stop(self) -> None:
        async with self._lock:
            await self._kill()
            with contextlib.suppress(OSError):
                (self.dir / "turnserver.conf").unlink()

    async def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 5)
        except TimeoutError:
            proc.kill()
            await asyncio.to_thread(proc.wait)


def _die_with_parent() -> Callable[[], None] | None:
    """A child set-up that ends coturn when the cloud's thread ends, even by SIGKILL
    (Linux PR_SET_PDEATHSIG): no coturn outlives a cloud that could not stop it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the cloud died before prctl took effect
            os._exit(1)

    return setup


def coturn_binary() -> str | None:
    """Where Debian's ``turnserver`` is (also outside PATH, as for a non-root user)."""
    found = shutil.which(BINARY)
    if found:
        return found
    for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
        path = Path(d) / BINARY
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None
