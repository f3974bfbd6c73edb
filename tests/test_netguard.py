"""The network guard (tests/helpers/netguard.py) refuses exactly what would leave the machine.

The proof that it fails tests runs a small test file in a pytest of its own,
twice, inside a new network namespace with no route out (``unshare -n``): with
the guard every way of sending off the machine fails its test, without it
(``DOORBELL_NETGUARD=off``) the same file passes. Nothing here sends to a far
address from this machine's own namespace: the refusals happen before the
system call, and the control run's packets have nowhere to go.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import netguard

ROOT = Path(__file__).resolve().parents[1]
FAR = "192.0.2.1"  # TEST-NET-1; inside the namespace no interface has it and no route leads to it


def _own_addresses() -> list[tuple[str, int]]:
    """This machine's addresses and their interface index, as iproute2 lists them (not the
    guard's own enumeration)."""
    out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True)
    return [
        (a["local"], link["ifindex"])
        for link in json.loads(out.stdout)
        for a in link.get("addr_info", [])
    ]


def test_the_guard_is_on_for_this_session_and_its_children() -> None:
    guard = netguard.active()
    assert guard is not None and guard.log_path == os.environ[netguard.LOG_ENV]
    assert netguard.SITE in os.environ["PYTHONPATH"].split(os.pathsep)
    code = "import socket; print(hasattr(socket, '_doorbell_netguard'))"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.stdout.strip() == "True", child.stderr


@pytest.mark.skipif(shutil.which("ip") is None, reason="`ip` (iproute2) not found")
def test_loopback_and_this_machines_own_addresses_are_not_refused() -> None:
    guard = netguard.active()
    assert guard is not None
    own = _own_addresses()
    assert ("127.0.0.1", 1) in own
    before = len(guard.violations)
    for host, index in [*own, ("127.0.0.2", 0), ("0.0.0.0", 0), ("::ffff:127.0.0.1", 0)]:
        v6 = ":" in host
        with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as s:
            scope = index if ipaddress.ip_address(host).is_link_local else 0
            try:  # port 9, discard: a datagram to this machine only
                s.sendto(b"netguard", (host, 9, 0, scope) if v6 else (host, 9))
            except netguard.OffMachineTraffic:
                raise
            except OSError:
                pass  # e.g. IPv6 switched off: the kernel's refusal, not the guard's
    assert guard.violations[before:] == []
    assert socket.getaddrinfo("localhost", 80) and socket.gethostbyname(socket.gethostname())


def test_everything_else_is_refused_by_the_classifier() -> None:
    guard = netguard.Guard()
    own = {str(i.ip) for i in netguard.interfaces()}
    far = [
        a
        for a in ["192.0.2.10", "198.51.100.7", "203.0.113.9", "10.0.0.1", "1.1.1.1", "2001:db8::1"]
        if a not in own
    ]
    for host in [*far, "224.0.0.251", "255.255.255.255", "ff02::1"]:
        assert not guard.permits(host), host
    assert not guard.local_name("stun.l.google.com")
    assert guard.local_name("localhost") and guard.local_name("front-door.localhost")
    # A namespace's network is let through while registered, and only then (the check
    # remembers what it let through; registering again forgets).
    guard.allowed = netguard.parse_networks("10.231.0.0/24")
    assert guard.permits("10.231.0.2") and not guard.permits("10.231.1.2")
    guard.check_address("socket.sendto", socket.AF_INET, ("10.231.0.2", 9))
    guard.allowed = []
    with pytest.raises(netguard.OffMachineTraffic, match=r"10\.231\.0\.2:9"):
        guard.check_address("socket.sendto", socket.AF_INET, ("10.231.0.2", 9))
    with pytest.raises(socket.gaierror):
        guard.check_name("getaddrinfo", "stun.l.google.com")
    assert [v.target for v in guard.violations] == [
        "10.231.0.2:9",
        "stun.l.google.com (a DNS look-up)",
    ]


def test_a_namespace_network_may_not_overlap_this_machines_lan() -> None:
    lan = [i for i in netguard.interfaces() if not i.ip.is_loopback and not i.ip.is_link_local]
    if not lan:
        pytest.skip("this machine has no interface beyond loopback")
    with pytest.raises(ValueError, match="overlaps"):
        netguard.allow_network(str(lan[0].network))
    assert str(lan[0].network) not in os.environ.get(netguard.ALLOW_ENV, "")


INNER = f'''
import asyncio, contextlib, socket, subprocess, sys
import aioice
from tests.helpers import netguard

FAR = "{FAR}"


def test_socket_sendto():
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", (FAR, 9))


def test_socket_connect():
    with contextlib.suppress(OSError), socket.socket() as s:
        s.settimeout(2)
        s.connect((FAR, 9))


def test_asyncio_datagram_transport():
    async def main():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("0.0.0.0", 0)
        )
        transport.sendto(b"x", (FAR, 9))  # asyncio hands the error to error_received
        await asyncio.sleep(0.05)
        transport.close()

    asyncio.run(main())


def test_asyncio_datagram_endpoint_remote_addr():
    async def main():
        with contextlib.suppress(OSError):
            await asyncio.get_running_loop().create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(FAR, 9)
            )

    asyncio.run(main())


def test_asyncio_open_connection():
    async def main():
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(asyncio.open_connection(FAR, 9), 2)

    asyncio.run(main())


def test_aioice_stun_checks():
    async def main():
        conn = aioice.Connection(ice_controlling=True)
        await conn.gather_candidates()
        assert conn.local_candidates, "no host candidate in the namespace"
        conn.remote_username, conn.remote_password = "echo", "echoshowpassword0123456"
        await conn.add_remote_candidate(
            aioice.Candidate("1", 1, "udp", 2122260223, FAR, 9, "host")
        )
        await conn.add_remote_candidate(None)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(conn.connect(), 1)
        await conn.close()

    asyncio.run(main())


def test_dns_lookup():
    with contextlib.suppress(OSError):
        socket.getaddrinfo("doorbell-netguard.example", 443)


def test_child_process():
    code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
    code += f".sendto(b'x', ({{FAR!r}}, 9))"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)


def test_loopback_and_own_address():
    for host in ("127.0.0.1", "10.99.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", (host, 9))


def test_registered_namespace():
    undo = netguard.allow_network("10.98.0.0/24")
    try:
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("10.98.0.5", 9))
    finally:
        undo()
'''

OFF_MACHINE = [
    "test_socket_sendto",
    "test_socket_connect",
    "test_asyncio_datagram_transport",
    "test_asyncio_datagram_endpoint_remote_addr",
    "test_asyncio_open_connection",
    "test_aioice_stun_checks",
    "test_dns_lookup",
    "test_child_process",
]
LOCAL = ["test_loopback_and_own_address", "test_registered_namespace"]
# A namespace of its own: loopback, and one veth pair so aioice has a host candidate.
# No default route, so a packet the guard let through would go nowhere.
NAMESPACE = (
    "ip link set lo up && ip link add ng0 type veth peer name ng1"
    " && ip addr add 10.99.0.1/24 dev ng0 && ip link set ng0 up && ip link set ng1 up"
    ' && exec "$@"'
)


def _fresh_env() -> dict[str, str]:
    """This environment without this session's guard (the inner run installs its own)."""
    env = {k: v for k, v in os.environ.items() if k not in (netguard.LOG_ENV, netguard.ALLOW_ENV)}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _in_namespace(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["unshare", "-n", "--", "sh", "-c", NAMESPACE, "sh", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _inner_run(tmp_path: Path, guard: bool) -> dict[str, str]:
    (tmp_path / "test_inner.py").write_text(INNER)
    env = _fresh_env()
    env["DOORBELL_NETGUARD"] = "on" if guard else "off"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the guard's plugin: a quicker start
    argv = [sys.executable, "-m", "pytest", "-p", "tests.helpers.netguard_pytest"]
    argv += ["-p", "no:cacheprovider", "-rA", "-q", "test_inner.py"]
    out = _in_namespace(argv, tmp_path, env)
    found = re.findall(r"^(PASSED|FAILED|ERROR) test_inner\.py::(\w+)", out.stdout, re.M)
    outcomes = {name: outcome for outcome, name in found}
    assert set(outcomes) == {*OFF_MACHINE, *LOCAL}, out.stdout[-3000:] + out.stderr[-2000:]
    return {**outcomes, "stdout": out.stdout}


needs_namespace = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
    reason="needs root, unshare (util-linux) and ip (iproute2) for a network namespace",
)


@needs_namespace
def test_the_guard_fails_every_test_that_sends_off_the_machine(tmp_path: Path) -> None:
    guarded = _inner_run(tmp_path, guard=True)
    for name in OFF_MACHINE:
        assert guarded[name] == "FAILED", name
    for name in LOCAL:
        assert guarded[name] == "PASSED", (name, guarded["stdout"][-3000:])
    text = guarded["stdout"]
    assert "netguard refused traffic off this machine" in text
    for seen in (f"socket.sendto to {FAR}:9", f"socket.connect to {FAR}:9"):
        assert seen in text
    assert "getaddrinfo to doorbell-netguard.example (a DNS look-up)" in text
    assert re.search(rf"socket\.sendto to {re.escape(FAR)}:9 \(pid \d+: -c\)", text)  # the child
    # The control: the same file without the guard passes; its packets had no route out.
    unguarded = _inner_run(tmp_path, guard=False)
    assert {name: unguarded[name] for name in [*OFF_MACHINE, *LOCAL]} == dict.fromkeys(
        [*OFF_MACHINE, *LOCAL], "PASSED"
    )
    assert "netguard" not in unguarded["stdout"]


SCRIPT = """
import socket, subprocess, sys
from tests.helpers import netguard

def main():
    print('{"benchmark": "x"}')
    if sys.argv[1] == "far":  # from a child process, as a benchmark's camera agent would
        code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        code += ".sendto(b'x', ('%s', 9))"
        subprocess.run([sys.executable, "-c", code])
    else:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))

netguard.run_guarded(main)
"""


@needs_namespace
def test_a_benchmark_under_the_guard_exits_1_naming_what_it_refused(tmp_path: Path) -> None:
    (tmp_path / "bench.py").write_text(SCRIPT % FAR)
    far = _in_namespace([sys.executable, "bench.py", "far"], tmp_path, _fresh_env())
    assert far.returncode == 1 and far.stdout.startswith('{"benchmark"'), far.stderr
    assert "netguard refused traffic off this machine" in far.stderr
    assert f"socket.sendto to {FAR}:9 (pid" in far.stderr
    local = _in_namespace([sys.executable, "bench.py", "local"], tmp_path, _fresh_env())
    assert (local.returncode, local.stderr) == (0, "")
