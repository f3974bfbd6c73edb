"""A home network behind a NAT router, on network namespaces, for the STUN/TURN proofs.

::

    home ns            router ns                    internet (a bridge in its own ns)
    camera agent  ──  LAN 10.238.1.1 │ WAN 10.238.2.1 ──┬── relay ns 10.238.2.2: the simulated
    10.238.1.2         nft masquerade, and the         │   Echo Show (Amazon's media relay)
    default via .1     home firewall of each case      └── aws ns 10.238.2.3: the local cloud
                       (netem: 20 ms each way)             (KVS signaling, the skill's LWA)
                                                           and its coturn (TURN TLS on 443)

The home side has no route to anything but its router; the internet has no route to
the home LAN at all: only what the router masquerades gets out, and only replies get
back in. The firewall of a case (``firewall="tcp443"``) drops every UDP packet and every
TCP connection from the home except to port 443 and the local cloud's two ports, which
stand for KVS's HTTPS and WSS endpoints (443 in AWS).

Every address is inside these namespaces (``NETWORKS``, registered with the test's
network guard); everything is torn down by :meth:`Topology.close`, also after a failure,
and namespaces left by a run that crashed (its pid gone) are removed first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import netguard
from tests.reliability.conftest import child_env

NETWORKS = ("10.238.1.0/24", "10.238.2.0/24")
CAMERA_IP, ROUTER_LAN, ROUTER_WAN = "10.238.1.2", "10.238.1.1", "10.238.2.1"
ECHO_IP, CLOUD_IP = "10.238.2.2", "10.238.2.3"
TURN_PORT, TURN_TLS_PORT = 3478, 443  # KVS's TURN servers listen on 443
CLOUD_PORT = 8750  # and 8751 for WSS
DELAY_MS = 20  # each way between the home and the internet
PEERS = str(Path(__file__).with_name("nat_peers.py"))
ADMIN_TOKEN = uuid.uuid4().hex
_NAME = re.compile(r"^nat(\d+)-[0-9a-f]{6}-\w+$")


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and out.returncode:
        raise TopologyError(f"{' '.join(cmd)}: {out.stderr.strip() or out.stdout.strip()}")
    return out


class TopologyError(RuntimeError):
    """The machine cannot build the topology (a tool or a kernel feature is missing)."""


def missing() -> str | None:
    """Why this machine cannot run the topology, or None."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create network namespaces"
    for tool, pkg in (("ip", "iproute2"), ("nft", "nftables"), ("turnserver", "coturn")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"`{tool}` not found (install Debian's {pkg}: scripts/setup-test-deps)"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(ns: str) -> None:
    """End every process left in ``ns`` (ours: nothing else runs there), then delete it."""
    pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _run("ip", "netns", "del", ns, check=False)


def remove_stale() -> list[str]:
    """Namespaces of earlier runs whose process is gone (a crash, a kill -9)."""
    removed = []
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME.match(name)
        if m and not _alive(int(m.group(1))):
            _kill_namespace(name)
            removed.append(name)
    return removed


class Peer:
    """A process in a namespace, spoken to in JSON lines; its stderr kept."""

    def __init__(self, ns: str, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))

    def line(self, timeout: float) -> dict[str, Any]:
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not got or not got[0]:
            tail = "\n".join(self.log[-40:])
            raise AssertionError(f"no reply from {self.proc.args[4:6]} in {timeout} s:\n{tail}")
        return json.loads(got[0])

    def send(self, value: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(value) + "\n")
        self.proc.stdin.flush()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        self.proc.send_signal(sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Topology:
    """Build with :meth:`open` (raises TopologyError), always :meth:`close`."""

    def __init__(self, data_dir: Path, delay_ms: int = DELAY_MS) -> None:
        tag = uuid.uuid4().hex[:6]
        self.prefix = f"nat{os.getpid()}-{tag}"
        self.ns = {r: f"{self.prefix}-{r}" for r in ("home", "router", "net", "relay", "aws")}
        self.links = {r: f"{r[0]}{tag}" for r in ("home", "lan", "wan", "up", "relay", "aws")}
        self.data_dir = data_dir
        self.delay_ms = delay_ms
        self.delayed = False
        self.made: list[str] = []
        self.peers: list[Peer] = []
        self.cloud: Peer | None = None
        self._undo = [netguard.allow_network(n) for n in NETWORKS]

    # -- the network ----------------------------------------------------------------
    def open(self) -> Topology:
        remove_stale()
        for ns in self.ns.values():
            _run("ip", "netns", "add", ns)
            self.made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        n, ln = self.ns, self.links
        pairs = [
            ("home", ln["home"], "router", ln["lan"]),
            ("router", ln["wan"], "net", ln["up"]),
            ("relay", ln["relay"], "net", f"{ln['relay']}p"),
            ("aws", ln["aws"], "net", f"{ln['aws']}p"),
        ]
        for a, la, b, lb in pairs:
            _run("ip", "link", "add", la, "netns", n[a], "type", "veth", "peer", "name", lb,
                 "netns", n[b])  # fmt: skip
        bridge = f"br{ln['up'][1:]}"
        _run("ip", "-n", n["net"], "link", "add", bridge, "type", "bridge")
        for port in (ln["up"], f"{ln['relay']}p", f"{ln['aws']}p"):
            _run("ip", "-n", n["net"], "link", "set", port, "master", bridge, "up")
        _run("ip", "-n", n["net"], "link", "set", bridge, "up")
        for ns, link, addr in (
            ("home", ln["home"], CAMERA_IP),
            ("router", ln["lan"], ROUTER_LAN),
            ("router", ln["wan"], ROUTER_WAN),
            ("relay", ln["relay"], ECHO_IP),
            ("aws", ln["aws"], CLOUD_IP),
        ):
            _run("ip", "-n", n[ns], "addr", "add", f"{addr}/24", "dev", link)
            _run("ip", "-n", n[ns], "link", "set", link, "up")
        _run("ip", "-n", n["home"], "route", "add", "default", "via", ROUTER_LAN)
        _run("ip", "netns", "exec", n["router"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._nft(
            f"""table ip doorbell_nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "{ln["wan"]}" masquerade
  }}
}}"""
        )
        if self.delay_ms:  # without netem in this kernel the figures are for no delay
            self.delayed = all(
                _run("ip", "netns", "exec", n[ns], "tc", "qdisc", "add", "dev", link, "root",
                     "netem", "delay", f"{self.delay_ms}ms", check=False).returncode == 0
                for ns, link in (("router", ln["wan"]), ("net", ln["up"]))
            )  # fmt: skip
        return self

    def _nft(self, ruleset: str) -> None:
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns["router"], "nft", "-f", "-"],
            input=ruleset,
            capture_output=True,
            text=True,
            timeout=20,
        )
        if out.returncode:
            raise TopologyError(f"nft: {out.stderr.strip()}")

    def firewall(self, kind: str | None) -> None:
        """The home router's filter: None (NAT only) or "tcp443" (no UDP, TCP to 443 only)."""
        _run("ip", "netns", "exec", self.ns["router"], "nft", "delete", "table", "inet",
             "doorbell_fw", check=False)  # fmt: skip
        if kind is None:
            return
        assert kind == "tcp443", kind
        lan = self.links["lan"]
        self._nft(
            f"""table inet doorbell_fw {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    iifname "{lan}" tcp dport 443 accept
    iifname "{lan}" ip daddr {CLOUD_IP} tcp dport {{ {CLOUD_PORT}, {CLOUD_PORT + 1} }} accept
    iifname "{lan}" counter drop
  }}
}}"""
        )

    def dropped(self) -> int:
        """Packets the home firewall dropped so far."""
        out = _run("ip", "netns", "exec", self.ns["router"], "nft", "list", "table", "inet",
                   "doorbell_fw", check=False).stdout  # fmt: skip
        m = re.search(r"counter packets (\d+)", out)
        return int(m.group(1)) if m else 0

    # -- the processes ----------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = child_env()
        env["ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN"] = ADMIN_TOKEN
        return env

    def spec(self, **settings: Any) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "local": {"host": CLOUD_IP, "port": CLOUD_PORT, "tls_port": CLOUD_PORT + 1},
            "settings": settings,
        }

    def start_cloud(self) -> Peer:
        """``alexa-doorbell cloud`` in the aws namespace, with coturn (TURN TLS on 443)."""
        env = {
            **self._env(),
            "ALEXA_DOORBELL_DATA_DIR": str(self.data_dir),
            "ALEXA_DOORBELL_LOCAL__TURN_PORT": str(TURN_PORT),
            "ALEXA_DOORBELL_LOCAL__TURN_TLS_PORT": str(TURN_TLS_PORT),
        }
        cli = str(Path(sys.executable).with_name("alexa-doorbell"))
        argv = [cli, "cloud", "--host", CLOUD_IP, "--port", str(CLOUD_PORT)]
        self.cloud = Peer(self.ns["aws"], argv, env)
        deadline = time.monotonic() + 30
        assert self.cloud.proc.stdout is not None
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self.cloud.proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if "Ctrl-C to stop" in line:
                if not any("TURN over TLS" in s for s in seen):
                    raise AssertionError("the local cloud started no coturn:\n" + "\n".join(seen))
                return self.cloud
        raise AssertionError(
            "the local cloud did not start:\n" + "\n".join(seen + self.cloud.log[-20:])
        )

    def start(self, role: str, ns: str, spec: dict[str, Any]) -> Peer:
        peer = Peer(self.ns[ns], [sys.executable, PEERS, role, json.dumps(spec)], self._env())
        self.peers.append(peer)
        ready = peer.line(60)
        assert ready.get("ready"), ready
        peer.ready = ready  # type: ignore[attr-defined]
        return peer

    def camera(self, **settings: Any) -> Peer:
        settings.setdefault("stun_urls", [f"stun:{CLOUD_IP}:{TURN_PORT}"])
        connect_timeout = settings.pop("connect_timeout", 20.0)
        spec = {**self.spec(**settings), "connect_timeout": connect_timeout}
        return self.start("camera", "home", spec)

    def echo(self) -> Peer:
        return self.start("echo", "relay", self.spec())

    def stop_peer(self, peer: Peer) -> None:
        peer.stop()
        if peer in self.peers:
            self.peers.remove(peer)

    def close(self) -> None:
        for peer in self.peers:
            with contextlib.suppress(Exception):
                peer.stop(timeout=5)
        if self.cloud is not None:
            with contextlib.suppress(Exception):
                self.cloud.stop(signal.SIGINT, timeout=0)  # the cloud stops its coturn
        for ns in reversed(self.made):  # whatever is left in them (coturn) ends here
            _kill_namespace(ns)
        self.made.clear()
        for undo in self._undo:
            undo()
        self._undo.clear()

    def __enter__(self) -> Topology:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
