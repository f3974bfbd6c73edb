"""How a real Echo Show asks for lost video, which aiortc's receiver does not do alone.

libwebrtc's NackRequester asks again every round trip, up to 10 times, until the
packet arrives; aiortc asks once. :class:`RetryingNackGenerator` keeps aiortc's
bookkeeping and says which packets are due to be asked for again.
"""

from __future__ import annotations

import asyncio
import time

from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import RtpPacket

NACK_DEFAULT_RTT = 0.1
NACK_MAX_RETRIES = 10
NACK_CHECK_INTERVAL = 0.02


class RetryingNackGenerator(NackGenerator):
    """aiortc's NACK bookkeeping, plus when each missing packet was last asked for.

    aiortc sends a NACK only when a new gap appears, so a lost NACK or a lost
    retransmission stalls its jitter buffer until some later, unrelated loss.
    :meth:`due` lists the packets to ask for again, one round trip after the
    last request; the round trip is the quickest repair seen so far.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ssrc: int | None = None
        self.rtt = NACK_DEFAULT_RTT
        self._rtt_seen: float | None = None
        self._asked: dict[int, tuple[float, int]] = {}  # seq -> (last asked, times)
        self.waiting = asyncio.Event()  # set while some packet is still missing

    def add(self, packet: RtpPacket) -> bool:
        self.ssrc = packet.ssrc
        now = time.monotonic()
        repaired = self._asked.pop(packet.sequence_number, None)
        if repaired is not None and repaired[1] == 1:  # asked once: a clean round trip
            sample = max(0.005, now - repaired[0])
            self._rtt_seen = min(self._rtt_seen or sample, sample)
            self.rtt = self._rtt_seen
        missed = super().add(packet)
        if missed:  # aiortc now sends one NACK listing every missing packet
            for seq in self.missing:
                self._asked[seq] = (now, self._asked.get(seq, (now, 0))[1] + 1)
        for seq in [s for s in self._asked if s not in self.missing]:
            del self._asked[seq]  # too old to be kept in aiortc's list
        if self._asked:
            self.waiting.set()
        else:
            self.waiting.clear()
        return missed

    def due(self, now: float) -> list[int]:
        seqs = [
            seq
            for seq, (asked, times) in self._asked.items()
            if now - asked >= self.rtt and times < NACK_MAX_RETRIES
        ]
        for seq in seqs:
            self._asked[seq] = (now, self._asked[seq][1] + 1)
        return sorted(seqs)
