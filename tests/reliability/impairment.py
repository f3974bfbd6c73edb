"""Loss and delay on one aiortc peer's UDP sockets, in user space (netem without the kernel).

    link = ImpairedLink(loss=0.05, delay=0.1, seed=7)
    link.attach(pc)        # after setLocalDescription: the ICE sockets exist by then

Every datagram the peer sends or receives on its ICE sockets (STUN checks and
consent, DTLS, SRTP, SRTCP alike, as netem would) is dropped with probability
``loss`` and otherwise handed on ``delay`` seconds later with ``call_later``, so
order is kept, like netem with a fixed delay. Each direction draws from its own
seeded generator: the n-th datagram each way meets the same fate on every run.

Impairing one peer's sockets impairs the path both ways. The link also reads the
clear-text headers (RTP sequence numbers and SSRCs stay readable under SRTP, as
does the first RTCP header under SRTCP), so it can tell, like a packet capture,
whether the far end answered NACKs with retransmissions.

A bandwidth cap makes the link a bottleneck as a home uplink is one:

    link = ImpairedLink(loss=0, delay=0.02, bandwidth=1_000_000)

What reaches this peer (the camera's upload, when the peer is the Echo) goes
through a link of ``bandwidth`` bit/s with a drop-tail FIFO of ``queue_seconds``
(100 ms) of data at that rate: a datagram waits for those ahead of it and for its
own serialization (IP and UDP headers counted), and one that would make the
queue longer than its limit is dropped, as Linux's ``tc tbf rate 1mbit burst
1540 latency 100ms`` behaves. What was delivered, per second, is kept for the
figures (:meth:`ImpairedLink.delivered_kbps`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection

IP_UDP_HEADERS = 28  # bytes on the wire around each datagram (IPv4 + UDP)
RTCP_SR, RTCP_RR, RTCP_RTPFB, RTCP_PSFB = 200, 201, 205, 206
FMT_NACK = 1  # RTPFB generic NACK (RFC 4585 6.2.1)
FMT_PLI, FMT_FIR = 1, 4  # PSFB (RFC 4585 6.3.1, RFC 5104 4.3.1)


def classify(data: bytes) -> str:
    """RFC 7983 demultiplexing, then RTP vs RTCP by payload type (RFC 5761)."""
    if not data:
        return "other"
    first = data[0]
    if first < 4:
        return "stun"
    if 20 <= first < 64:
        return "dtls"
    if 128 <= first < 192 and len(data) >= 12:
        return "rtcp" if 192 <= data[1] <= 223 else "rtp"
    return "other"


@dataclass
class Direction:
    """One way through the link: what was offered to it and what it let through."""

    name: str
    rng: random.Random
    loss: float
    sent: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    rtcp_sent: Counter[str] = field(default_factory=Counter)  # by feedback type
    rtcp_delivered: Counter[str] = field(default_factory=Counter)
    rtp_seen: dict[int, set[int]] = field(default_factory=dict)  # ssrc -> sequence numbers
    rtp_repeats: Counter[int] = field(default_factory=Counter)  # ssrc -> retransmissions
    repeats_dropped: Counter[int] = field(default_factory=Counter)
    rtp_delivered: Counter[int] = field(default_factory=Counter)  # ssrc -> packets let through
    dropped_by_cap: Counter[str] = field(default_factory=Counter)  # the bottleneck's queue full

    def judge(self, data: bytes) -> bool:
        """Count the datagram; True when it is to be delivered."""
        kind = classify(data)
        self.sent[kind] += 1
        feedback = rtcp_feedback(data) if kind == "rtcp" else None
        if feedback:
            self.rtcp_sent[feedback] += 1
        repeat: int | None = None
        ssrc = None
        if kind == "rtp":
            ssrc = int.from_bytes(data[8:12], "big")
            seq = int.from_bytes(data[2:4], "big")
            seen = self.rtp_seen.setdefault(ssrc, set())
            if seq in seen:  # the same packet again: a retransmission (no RTX negotiated)
                self.rtp_repeats[ssrc] += 1
                repeat = ssrc
            seen.add(seq)
        drop = self.rng.random() < self.loss
        if drop:
            self.dropped[kind] += 1
            if repeat is not None:
                self.repeats_dropped[repeat] += 1
        elif feedback:
            self.rtcp_delivered[feedback] += 1
        elif ssrc is not None:
            self.rtp_delivered[ssrc] += 1
        return not drop


def rtcp_feedback(data: bytes) -> str | None:
    """NACK / PLI / FIR when the datagram's first RTCP packet is one (its header is clear)."""
    pt, fmt = data[1], data[0] & 0x1F
    if pt == RTCP_RTPFB and fmt == FMT_NACK:
        return "nack"
    if pt == RTCP_PSFB and fmt == FMT_PLI:
        return "pli"
    if pt == RTCP_PSFB and fmt == FMT_FIR:
        return "fir"
    return None


class Bottleneck:
    """A link of ``rate`` bit/s with a drop-tail queue of ``queue_seconds`` of data."""

    def __init__(self, rate: float, queue_seconds: float = 0.1) -> None:
        self.rate = rate / 8  # bytes per second
        self.limit = self.rate * queue_seconds  # bytes the queue holds
        self.free_at = 0.0  # monotonic time the link has sent everything queued
        self.dropped = 0
        self.delivered: Counter[int] = Counter()  # whole second since start -> bytes
        self.drops: Counter[int] = Counter()  # whole second since start -> datagrams dropped
        self.started = time.monotonic()
        self.max_queue = 0.0  # bytes

    def admit(self, size: int, now: float) -> float | None:
        """Seconds until a datagram of ``size`` bytes is out of the link; None: dropped."""
        wire = size + IP_UDP_HEADERS
        queued = max(0.0, self.free_at - now) * self.rate
        if queued + wire > self.limit:
            self.dropped += 1
            self.drops[int(now - self.started)] += 1
            return None
        self.max_queue = max(self.max_queue, queued + wire)
        self.free_at = max(now, self.free_at) + wire / self.rate
        self.delivered[int(self.free_at - self.started)] += wire
        return self.free_at - now


class ImpairedLink:
    def __init__(
        self,
        *,
        loss: float,
        delay: float,
        seed: int = 1,
        bandwidth: float | None = None,
        queue_seconds: float = 0.1,
    ) -> None:
        self.loss, self.delay = loss, delay
        self.outbound = Direction("outbound", random.Random(f"{seed}-out"), loss)
        self.inbound = Direction("inbound", random.Random(f"{seed}-in"), loss)
        # Only toward this peer: the camera's uplink; the Echo's RTCP back is tiny.
        self.bottleneck = Bottleneck(bandwidth, queue_seconds) if bandwidth else None
        self.protocols = 0

    def attach(self, pc: RTCPeerConnection) -> None:
        """Impair every ICE socket of ``pc`` (call once its candidates are gathered)."""
        ice_transports = {
            id(t.sender.transport.transport): t.sender.transport.transport
            for t in pc.getTransceivers()
            if t.sender.transport is not None
        }
        for ice in ice_transports.values():
            for protocol in ice._connection._protocols:  # aioice StunProtocol, one per socket
                self._wrap(protocol)
        assert self.protocols, "no ICE sockets yet: attach after setLocalDescription"

    def _wrap(self, protocol: Any) -> None:
        loop = asyncio.get_running_loop()
        received: Callable[[bytes, tuple[Any, ...]], None] = protocol.datagram_received

        def send(data: bytes, addr: tuple[str, int]) -> None:
            if self.outbound.judge(data):
                loop.call_later(self.delay, _sendto, protocol.transport, data, addr)

        def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
            if not self.inbound.judge(data):
                return
            wait = 0.0
            if self.bottleneck is not None:
                out = self.bottleneck.admit(len(data), time.monotonic())
                if out is None:
                    self.inbound.dropped_by_cap[classify(data)] += 1
                    return
                wait = out
            loop.call_later(self.delay + wait, received, data, addr)

        async def send_data(data: bytes, addr: tuple[str, int]) -> None:
            send(data, addr)

        # The event loop and aioice look these up on the instance: STUN requests,
        # responses and retransmissions go through send_stun, DTLS/SRTP through send_data.
        protocol.send_stun = lambda message, addr: send(bytes(message), addr)
        protocol.send_data = send_data
        protocol.datagram_received = datagram_received
        self.protocols += 1

    def figures(self) -> dict[str, Any]:
        def one(d: Direction) -> dict[str, Any]:
            total, lost = sum(d.sent.values()), sum(d.dropped.values())
            return {
                "datagrams": total,
                "dropped": lost,
                "loss_percent": round(100 * lost / total, 2) if total else 0.0,
                "by_kind": dict(d.sent),
                "dropped_by_kind": dict(d.dropped),
            }

        out = {"outbound": one(self.outbound), "inbound": one(self.inbound)}
        if self.bottleneck is not None:
            b = self.bottleneck
            out["bottleneck"] = {
                "kbps": round(b.rate * 8 / 1000),
                "queue_ms": round(b.limit / b.rate * 1000),
                "dropped": b.dropped,
                "dropped_by_kind": dict(self.inbound.dropped_by_cap),
                "max_queue_ms": round(b.max_queue / b.rate * 1000),
            }
        return out

    def delivered_kbps(self) -> list[float]:
        """What left the bottleneck in each whole second since it was made (kbit/s, wire)."""
        if self.bottleneck is None:
            return []
        d = self.bottleneck.delivered
        return [round(d[s] * 8 / 1000, 1) for s in range(max(d, default=-1) + 1)]


def _sendto(transport: asyncio.DatagramTransport, data: bytes, addr: tuple[str, int]) -> None:
    if not transport.is_closing():
        transport.sendto(data, addr)
