"""How the camera gathers its ICE candidates, and what it can say afterwards.

aiortc hands aioice one STUN and one TURN server (the first usable URI of
each). The agent gives aiortc no servers; :func:`prepare` replaces the
gathering of each aioice connection (camera/rtc_hooks.py) with
:func:`_gather`: host candidates as aioice makes them, then the STUN query and
every relay of the :class:`~alexa_doorbell.camera.ice.IcePlan` in parallel,
bounded by ``ice_gather_timeout``. Two shortcuts keep the answer quick where a
network blocks UDP: a UDP relay makes the TLS one pointless (it is cancelled),
and once a TLS relay is there, STUN and the UDP relay get only
:data:`UDP_GRACE` more (or half the time taken so far): they would have
answered long before a TLS handshake completed.

What gathering saw (:class:`GatherReport`) stays with the connection, so a
session that never connects can say in one line why (:func:`no_media_reason`)
and a connected one which path it took (:func:`selected_path`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, relayed_candidate
from aioice.ice import server_reflexive_candidate as srflx_candidate

from alexa_doorbell.camera import rtc_hooks
from alexa_doorbell.camera.ice import IcePlan

if TYPE_CHECKING:
    from aioice import Candidate, Connection
    from aiortc import RTCPeerConnection

# Once a relay over TCP/TLS exists, what STUN and the UDP relay still get. A UDP reply
# takes one round trip, a TLS allocation at least four: UDP that has not answered by
# then is blocked. Seconds.
UDP_GRACE = 0.05
# Relays of one server, preferred in this order when several work (RFC 8445 §5.1.2.2).
RELAY_PREFERENCE: dict[str, int] = {"udp": 65535, "tcp": 32767, "tls": 32766}


@dataclass
class GatherReport:
    """What gathering saw on one aioice connection."""

    plan: IcePlan
    started: float = field(default_factory=time.monotonic)
    elapsed: float | None = None
    host: int = 0
    srflx: list[str] = field(default_factory=list)  # public addresses STUN saw
    stun: str = "not asked"
    relays: dict[str, str] = field(default_factory=dict)  # kind -> "ok <addr>" / why not
    relay_kinds: dict[int, str] = field(default_factory=dict)  # id(protocol) -> kind

    def summary(self) -> str:
        parts = [f"{self.host} host"]
        if self.plan.stun:
            parts.append(f"STUN {self.stun}")
        parts += [f"TURN {k} {v}" for k, v in self.relays.items()]
        took = f" in {self.elapsed * 1000:.0f} ms" if self.elapsed is not None else ""
        return ", ".join(parts) + took


# -- gathering ---------------------------------------------------------------------------
def prepare(pc: RTCPeerConnection, plan: IcePlan) -> None:
    """Make every ICE connection of ``pc`` gather with ``plan`` (call before
    setLocalDescription, after setRemoteDescription made the transports)."""
    for conn in _connections(pc):
        if getattr(conn, "_doorbell_report", None) is not None:
            continue
        report = GatherReport(plan)
        conn._doorbell_report = report  # type: ignore[attr-defined]
        original = conn.get_component_candidates

        async def gather(
            component: int,
            addresses: list[str],
            timeout: int = 5,
            *,
            _conn: Connection = conn,
            _orig: Callable[..., Any] = original,
            _report: GatherReport = report,
        ) -> list[Candidate]:
            return await _gather(_conn, _orig, _report, component, addresses)

        # The plan's servers replace whatever aiortc gave aioice (its default STUN server).
        rtc_hooks.replace_gathering(conn, gather)


def _connections(pc: RTCPeerConnection) -> list[Connection]:
    seen: dict[int, Connection] = {}
    for t in pc.getTransceivers():
        if t.sender.transport is None:
            continue
        conn = rtc_hooks.ice_connection(t)
        seen.setdefault(id(conn), conn)
    return list(seen.values())


def report_of(pc: RTCPeerConnection) -> GatherReport | None:
    for conn in _connections(pc):
        report = getattr(conn, "_doorbell_report", None)
        if report is not None:
            return report
    return None


async def _gather(
    conn: Connection,
    host_gather: Callable[..., Any],
    report: GatherReport,
    component: int,
    addresses: list[str],
) -> list[Candidate]:
    plan = report.plan
    loop = asyncio.get_running_loop()
    # aioice makes the host candidates (conn has no STUN or TURN server of its own).
    candidates: list[Candidate] = list(await host_gather(component=component, addresses=addresses))
    report.host += len(candidates)
    protocols = rtc_hooks.ice_protocols(conn)
    hosts = [
        p
        for p in protocols
        if getattr(p, "local_candidate", None) in candidates and ":" not in p.local_candidate.host
    ]
    tasks: dict[asyncio.Task[Any], str] = {}
    if plan.stun and hosts:
        report.stun = "no answer"
        for p in hosts:
            tasks[asyncio.create_task(srflx_candidate(p, plan.stun))] = "stun"
    for server in plan.relays:
        secure: bool | ssl.SSLContext = False
        if server.kind == "tls":
            secure = plan.tls_context or ssl.create_default_context()
        report.relays[server.kind] = "no answer"
        coro = relayed_candidate(
            component=component,
            hide_related_address=rtc_hooks.relay_only(conn),
            protocol_factory=lambda: StunProtocol(conn),
            turn_server=(server.host, server.port),
            turn_username=server.username,
            turn_password=server.password,
            turn_ssl=secure,
            turn_transport=server.transport,
        )
        tasks[asyncio.create_task(coro)] = server.kind
    deadline = loop.time() + plan.timeout
    pending = set(tasks)
    started = loop.time()
    while pending:
        done, pending = await asyncio.wait(
            pending, timeout=max(0.0, deadline - loop.time()), return_when="FIRST_COMPLETED"
        )
        if not done:
            break
        for task in done:
            _collect(task, tasks[task], candidates, conn, report, component)
        got = {k for k, v in report.relays.items() if v.startswith("ok")}
        if "udp" in got:  # UDP reaches the TURN server: a TCP/TLS relay adds nothing
            for task in [t for t in pending if tasks[t] in ("tcp", "tls")]:
                task.cancel()
                report.relays[tasks[task]] = "not needed (UDP relay)"
        elif got & {"tcp", "tls"} and any(tasks[t] in ("stun", "udp") for t in pending):
            grace = max(UDP_GRACE, (loop.time() - started) / 2)
            deadline = min(deadline, loop.time() + grace)
    for task in pending:
        task.cancel()
    # A task may finish while being cancelled: keep what it found.
    for task in pending:
        with contextlib.suppress(BaseException):
            await task
        if not task.cancelled():
            _collect(task, tasks[task], candidates, conn, report, component)
    for p in protocols:
        kind = report.relay_kinds.get(id(p))
        cand = getattr(p, "local_candidate", None)
        if kind and cand is not None and cand.type == "relay" and cand.component == component:
            # Each relay its own foundation and preference: one server reached over UDP
            # and over TLS is two candidates (RFC 8445 §5.1.1.3).
            cand.foundation = candidate_foundation("relay", kind, cand.host)
            cand.priority = candidate_priority(component, "relay", RELAY_PREFERENCE[kind])
    report.elapsed = time.monotonic() - report.started
    return candidates


def _collect(
    task: asyncio.Task[Any],
    kind: str,
    candidates: list[Candidate],
    conn: Connection,
    report: GatherReport,
    component: int,
) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        if kind == "stun":
            if not report.srflx:
                report.stun = f"failed: {_why(exc)}"
        else:
            report.relays[kind] = f"failed: {_why(exc)}"
        return
    candidate, protocol = task.result()
    if not any(c.host == candidate.host and c.port == candidate.port for c in candidates):
        candidates.append(candidate)
    if kind == "stun":
        report.srflx.append(f"{candidate.host}:{candidate.port}")
        report.stun = f"ok {candidate.host}:{candidate.port}"
    else:
        rtc_hooks.ice_protocols(conn).append(protocol)
        report.relay_kinds[id(protocol)] = kind
        report.relays[kind] = f"ok {candidate.host}:{candidate.port}"


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate refused ({exc.verify_message})"
    if "401" in text:
        return "credentials refused (401): expired, or the clock is off"
    return text


# -- what happened ----------------------------------------------------------------------
@dataclass(frozen=True)
class SelectedPath:
    local: str  # the camera's candidate type: host, srflx, prflx, relay
    remote: str
    relay: str | None  # how the relay was reached (udp, tcp, tls), for a relay candidate
    local_address: str
    remote_address: str

    def describe(self) -> str:
        via = f"relay over {self.relay.upper()}" if self.relay else "direct"
        return f"{via} ({self.local} {self.local_address} -> {self.remote} {self.remote_address})"


def selected_path(pc: RTCPeerConnection) -> SelectedPath | None:
    """The nominated candidate pair of the session's (first) ICE connection."""
    for conn in _connections(pc):
        pair = rtc_hooks.nominated_pair(conn)
        if pair is None:
            continue
        local = pair.local_candidate
        report = getattr(conn, "_doorbell_report", None)
        relay = report.relay_kinds.get(id(pair.protocol)) if report else None
        return SelectedPath(
            local.type,
            pair.remote_candidate.type,
            relay if local.type == "relay" else None,
            f"{local.host}:{local.port}",
            f"{pair.remote_candidate.host}:{pair.remote_candidate.port}",
        )
    return None


def no_media_reason(report: GatherReport | None) -> str:
    """One line: why ICE found no path, and the setting that would give it one."""
    if report is None:
        return "ICE did not connect (no gathering report)"
    plan = report.plan
    seen = f"the answer offered {report.summary()}"
    relays_ok = [k for k, v in report.relays.items() if v.startswith("ok")]
    if relays_ok:
        return (
            f"the viewer never reached the camera's relay ({', '.join(relays_ok)}): {seen}; "
            "a firewall between the TURN server and the viewer drops it"
        )
    if not plan.use_turn:
        if plan.stun and not report.srflx:
            why = f"the STUN server {plan.stun_url} did not answer, so UDP seems blocked here"
        elif report.srflx:
            why = "the router lets no packet from the viewer in (a symmetric NAT or a firewall)"
        else:
            why = "no STUN server is set and the camera is not on a public address"
        return (
            f"{why} ({seen}), and there is no TURN relay: set use_turn = true "
            "(TURN over TLS on TCP 443 gets through networks that allow only web traffic)"
        )
    if plan.turn_error:
        return f"{seen}; TURN gave no relay: {plan.turn_error}"
    tried = ", ".join(f"{k} {v}" for k, v in report.relays.items()) or "none usable"
    fix = (
        'set turn_transport = "auto" (UDP and TLS, so 443-only networks work)'
        if plan.turn_transport != "auto"
        else "let the camera reach the TURN servers on TCP 443 (or UDP 443)"
    )
    return f"TURN gave no relay ({tried}; {seen}): {fix}"
