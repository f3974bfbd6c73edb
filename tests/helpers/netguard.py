"""Test traffic stays on this machine: a datagram, connection or DNS look-up that would
leave it is refused before the system call and recorded.

Allowed destinations are loopback (127.0.0.0/8, ::1), the unspecified address,
this machine's own interface addresses and the networks a test registers with
:func:`allow_network` for network namespaces it made itself (and tears down).
Anything else gets ``PermissionError``, as a firewall's reject rule would give,
and a :class:`Violation`. The pytest plugin (``netguard_pytest.py``) fails the
test from the record, so a refusal counts even where the caller swallows the
error (asyncio hands a failed ``sendto`` to ``error_received``, which aioice
ignores). Names are resolved only when the look-up stays on the machine
(``localhost``, this host's name, ``/etc/hosts``); any other name would be a
DNS query leaving it and gets ``socket.gaierror``.

The checks sit on ``socket.socket`` (``connect``, ``connect_ex``, ``sendto``,
``sendmsg``) and the resolver functions. asyncio's transports and ``sock_*``
calls (``create_connection``, ``create_datagram_endpoint(remote_addr=...)``,
the datagram transport's ``sendto``) all end in these methods, so they are
covered without patching the event loop.

Child processes: with ``DOORBELL_NETGUARD_LOG`` naming a file and
``netguard_site/`` on ``PYTHONPATH`` (the plugin sets both for the session),
every Python process a test starts installs the same guard at start-up and
appends its violations to that file. Programs that are not Python (Chromium,
coturn, mosquitto, node) are not covered.

Standard library only (psutil is used when present): this module is loaded into
interpreters, such as a bare Lambda venv, that have nothing else installed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:  # kept out of the import: every Python process of a test session loads this
    from collections.abc import Callable, Iterable
    from typing import Any

LOG_ENV = "DOORBELL_NETGUARD_LOG"  # file the guard of every process appends violations to
ALLOW_ENV = "DOORBELL_NETGUARD_ALLOW"  # comma-separated networks of the tests' namespaces
RULE = (
    "tests send only to loopback, this machine's own addresses or network namespaces "
    "they made (tests/helpers/netguard.py)"
)

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netguard_site")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_INET = (socket.AF_INET, socket.AF_INET6)
_OWN_REFRESH_S = 1.0  # re-read the interfaces at most this often when an address is unknown


class OffMachineTraffic(PermissionError):
    """What a refused call raises (a PermissionError, so callers treat it as a network error)."""


class Violation:
    """One refused call: ``call`` ("socket.sendto", "getaddrinfo"...), ``target`` ("192.0.2.1:9",
    or the name that would need DNS), the process (``pid``, its command line) and ``where``,
    the innermost calling frames outside the standard library."""

    __slots__ = ("call", "pid", "process", "target", "where")

    def __init__(self, call: str, target: str, pid: int, process: str, where: str) -> None:
        self.call, self.target, self.pid = call, target, pid
        self.process, self.where = process, where

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def describe(self) -> str:
        return f"{self.call} to {self.target} (pid {self.pid}: {self.process})\n    at {self.where}"


def parse_networks(text: str) -> list[Network]:
    return [ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip()]


def _address(text: str) -> Address | None:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def interfaces() -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    """This machine's interface addresses with their prefixes (psutil, else the kernel's files)."""
    found: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    try:
        import psutil
    except ImportError:
        return _interfaces_from_kernel()
    for snics in psutil.net_if_addrs().values():
        for snic in snics:
            if snic.family in _INET and snic.netmask:
                ip = snic.address.split("%", 1)[0]
                try:
                    prefix = bin(int(ipaddress.ip_address(snic.netmask))).count("1")
                    found.append(ipaddress.ip_interface(f"{ip}/{prefix}"))
                except ValueError:
                    continue
    return found


def _interfaces_from_kernel() -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    import fcntl
    import struct

    found: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            req = struct.pack("256s", name.encode()[:15])
            try:
                ip = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
                mask = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x891B, req)[20:24])
            except OSError:
                continue
            found.append(ipaddress.IPv4Interface(f"{ip}/{mask}"))
    try:
        with open("/proc/net/if_inet6") as f:
            lines = f.readlines()
    except OSError:
        lines = []
    for line in lines:
        hexaddr, _, prefix, *_ = line.split()
        ip = ipaddress.IPv6Address(bytes.fromhex(hexaddr))
        found.append(ipaddress.IPv6Interface(f"{ip}/{int(prefix, 16)}"))
    return found


def _hosts_file() -> tuple[set[str], set[str]]:
    """Names and addresses of /etc/hosts: look-ups the resolver answers without DNS."""
    names: set[str] = set()
    addresses: set[str] = set()
    try:
        with open("/etc/hosts") as f:
            lines = f.readlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            addresses.add(fields[0])
            names.update(n.lower() for n in fields[1:])
    return names, addresses


class Guard:
    """What may be reached, and the record of what was refused."""

    def __init__(self, log_path: str | None = None, allowed: Iterable[Network] = ()) -> None:
        self.log_path = log_path
        self._permitted: set[Any] = set()  # destinations already let through: the hot path
        self.allowed = list(allowed)
        self.violations: list[Violation] = []
        self._own: frozenset[Address] = frozenset()
        self._own_read_at = -_OWN_REFRESH_S
        names, self._hosts_addresses = _hosts_file()
        self._local_names = names | {socket.gethostname().lower(), "localhost"}

    @property
    def allowed(self) -> list[Network]:
        return self._allowed

    @allowed.setter
    def allowed(self, networks: list[Network]) -> None:
        self._allowed = networks
        self._permitted.clear()

    # -- classification (no side effects) -------------------------------------------------
    def permits(self, host: str) -> bool:
        """Whether a numeric address is on this machine or in a registered namespace."""
        addr = _address(host)
        if addr is None:
            return False
        if addr.is_loopback or addr.is_unspecified or any(addr in n for n in self._allowed):
            return True
        if addr in self._own:
            return True
        if time.monotonic() - self._own_read_at >= _OWN_REFRESH_S:
            self._own = frozenset(i.ip for i in interfaces())
            self._own_read_at = time.monotonic()
        return addr in self._own

    def local_name(self, name: str) -> bool:
        """Whether resolving ``name`` stays on this machine (numeric, localhost, hosts file)."""
        name = name.lower().rstrip(".")
        return (
            not name
            or _address(name) is not None
            or name in self._local_names
            or name.endswith(".localhost")
        )

    # -- enforcement ----------------------------------------------------------------------
    def refuse(self, call: str, target: str) -> OffMachineTraffic:
        self.record(call, target)
        return OffMachineTraffic(f"netguard refused {call} to {target}: {RULE}")

    def record(self, call: str, target: str) -> Violation:
        v = Violation(call, target, os.getpid(), " ".join(sys.argv)[:200], _caller())
        self.violations.append(v)
        if self.log_path:
            import json

            try:
                with open(self.log_path, "a") as f:
                    f.write(json.dumps(v.as_dict()) + "\n")
            except OSError:
                pass  # the session is over: the refusal itself still stands
        return v

    def check_address(self, call: str, family: int, address: Any) -> None:
        if family not in _INET or not isinstance(address, tuple) or not address:
            return
        if address[0] in self._permitted:  # every RTP packet to a peer passes here
            return
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        host = "255.255.255.255" if host == "<broadcast>" else host or "0.0.0.0"
        target = f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
        if _address(host) is None:  # a name: Python resolves it inside the call
            if not self.local_name(host):
                raise self.refuse(call, f"{target} (a DNS look-up)")
            resolve = _original.get("getaddrinfo", socket.getaddrinfo)
            hosts = {str(ai[4][0]) for ai in resolve(host, None, family)}
        else:
            hosts = {host}
        for h in hosts:
            if not self.permits(h):
                raise self.refuse(call, target)
        if len(self._permitted) < 10_000:
            self._permitted.add(address[0])

    def check_name(self, call: str, name: Any) -> None:
        text = name.decode() if isinstance(name, bytes) else "" if name is None else str(name)
        if not self.local_name(text):
            self.record(call, f"{text} (a DNS look-up)")
            raise socket.gaierror(socket.EAI_NONAME, f"netguard refused a DNS look-up of {text}")

    def check_reverse(self, call: str, host: str) -> None:
        if _address(host) is not None and host not in self._hosts_addresses:
            self.record(call, f"{host} (a reverse DNS look-up)")
            raise socket.herror(1, f"netguard refused a reverse DNS look-up of {host}")


_STDLIB = os.path.dirname(os.__file__) + os.sep


def _plumbing(path: str) -> bool:
    """A frame that says nothing of who sent: the standard library, pytest."""
    if path.startswith(_STDLIB) and "-packages" not in path:
        return True
    return path.startswith("<frozen ") or any(
        p in path for p in ("/_pytest/", "/pytest/", "/pluggy/")
    )


def _caller(most: int = 4) -> str:
    """The innermost frames that are neither this module, the standard library nor pytest
    (all but this module's when there are none), innermost first: "a <- b", a called from b."""
    stack: list[Any] = []
    f: Any = sys._getframe(1)
    while f is not None:
        if f.f_code.co_filename != __file__:
            stack.append(f)
        f = f.f_back
    telling = [f for f in stack if not _plumbing(f.f_code.co_filename)]
    return " <- ".join(
        "{}:{} {}".format(
            f.f_code.co_filename.split("site-packages/", 1)[-1].removeprefix(os.getcwd() + "/"),
            f.f_lineno,
            f.f_code.co_name,
        )
        for f in (telling or stack)[:most]
    )


_original: dict[str, Callable[..., Any]] = {}


def active() -> Guard | None:
    """The guard installed in this process (by this copy of the module or another)."""
    return getattr(socket, "_doorbell_netguard", None)


def install(log_path: str | None = None) -> Guard:
    """Install the guard in this process (again: only re-points its log)."""
    guard = active()
    if guard is not None:
        guard.log_path = log_path or guard.log_path
        return guard
    guard = Guard(log_path, parse_networks(os.environ.get(ALLOW_ENV, "")))
    _patch(guard)
    socket._doorbell_netguard = guard  # type: ignore[attr-defined]
    return guard


def install_from_env() -> Guard | None:
    """For child processes: install when the test session asked for it."""
    path = os.environ.get(LOG_ENV)
    return install(path) if path else None


def _patch(guard: Guard) -> None:
    cls = socket.socket
    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        _original[name] = getattr(cls, name)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        _original[name] = getattr(socket, name)
    _original["getnameinfo"] = socket.getnameinfo

    def connect(self: socket.socket, address: Any) -> None:
        guard.check_address("socket.connect", self.family, address)
        return _original["connect"](self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard.check_address("socket.connect_ex", self.family, address)
        return _original["connect_ex"](self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        guard.check_address("socket.sendto", self.family, args[-1] if args else None)
        return _original["sendto"](self, data, *args)

    def sendmsg(self: socket.socket, buffers: Any, *args: Any, **kwargs: Any) -> int:
        address = kwargs.get("address", args[2] if len(args) > 2 else None)
        guard.check_address("socket.sendmsg", self.family, address)
        return _original["sendmsg"](self, buffers, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        guard.check_name("getaddrinfo", host)
        return _original["getaddrinfo"](host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        guard.check_name("gethostbyname", host)
        return _original["gethostbyname"](host)

    def gethostbyname_ex(host: str) -> Any:
        guard.check_name("gethostbyname_ex", host)
        return _original["gethostbyname_ex"](host)

    def gethostbyaddr(host: str) -> Any:
        guard.check_name("gethostbyaddr", host)
        guard.check_reverse("gethostbyaddr", host)
        return _original["gethostbyaddr"](host)

    def getnameinfo(sockaddr: Any, flags: int) -> Any:
        if not flags & socket.NI_NUMERICHOST:
            guard.check_reverse("getnameinfo", str(sockaddr[0]))
        return _original["getnameinfo"](sockaddr, flags)

    cls.connect = connect  # type: ignore[method-assign]
    cls.connect_ex = connect_ex  # type: ignore[method-assign]
    cls.sendto = sendto  # type: ignore[assignment]
    cls.sendmsg = sendmsg  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
    socket.gethostbyaddr = gethostbyaddr
    socket.getnameinfo = getnameinfo


def guard_children(log_path: str) -> None:
    """Python processes started from now on install the guard and log to ``log_path``."""
    os.environ[LOG_ENV] = log_path
    paths = [SITE, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def read_log(path: str, offset: int = 0) -> tuple[list[Violation], int]:
    """The violations logged after ``offset``, and the offset after the last whole line."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    import json

    whole = data[: data.rfind(b"\n") + 1]  # a process may be half-way through a line
    return [Violation(**json.loads(ln)) for ln in whole.splitlines()], offset + len(whole)


def summary(violations: list[Violation], most: int = 8) -> list[str]:
    """One entry per call, destination and process (where first seen), the most frequent first."""
    from collections import Counter

    first: dict[tuple[str, str, int], Violation] = {}
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


def run_guarded(main: Callable[[], object]) -> None:
    """Run a script's ``main`` (a benchmark's) under the guard, with the Python processes it
    starts; what was refused is printed to stderr and the exit status is 1."""
    log = os.environ.get(LOG_ENV)  # a test session's already, when a test runs the script
    owned = not log
    if not log:
        import tempfile

        fd, log = tempfile.mkstemp(prefix="netguard-", suffix=".jsonl")
        os.close(fd)
    install(log)
    guard_children(log)
    start = os.path.getsize(log)
    found: list[Violation] = []
    try:
        main()
    finally:
        found = read_log(log, start)[0]
        if owned:
            os.unlink(log)
        if found:
            print(f"netguard refused traffic off this machine ({RULE}):", file=sys.stderr)
            print("\n".join(summary(found)), file=sys.stderr)
    if found:
        raise SystemExit(1)


def allow_network(network: str) -> Callable[[], None]:
    """Allow traffic to a network inside a namespace a test made; returns the undo.

    Child processes started afterwards inherit it (``DOORBELL_NETGUARD_ALLOW``).
    A network that overlaps one of this machine's own (non-loopback) interfaces
    is refused: it would let traffic onto the real LAN.
    """
    net = ipaddress.ip_network(network)
    for iface in interfaces():
        if not iface.ip.is_loopback and iface.network.overlaps(net):  # type: ignore[arg-type]
            raise ValueError(f"{net} overlaps {iface.network} of this machine: not a namespace")
    _set_allowed([*parse_networks(os.environ.get(ALLOW_ENV, "")), net])

    def undo() -> None:
        _set_allowed([n for n in parse_networks(os.environ.get(ALLOW_ENV, "")) if n != net])

    return undo


def _set_allowed(networks: list[Network]) -> None:
    if networks:
        os.environ[ALLOW_ENV] = ",".join(str(n) for n in networks)
    else:
        os.environ.pop(ALLOW_ENV, None)
    guard = active()
    if guard is not None:
        guard.allowed = list(networks)
