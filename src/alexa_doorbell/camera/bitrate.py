"""Video that fits the uplink: the camera's one encoder at a bitrate every viewer's path carries.

    uplink = UplinkBitrate(ceiling=1_900_000, budget=4_000_000, apply=fanout.set_bitrate)
    path = uplink.add_viewer(offer_kbps=2500)        # the offer's b=AS
    task = asyncio.create_task(watch_sender(sender, path))
    ...
    uplink.remove_viewer(path)

Video is encoded once for all of a camera's viewers, so its bitrate is the lowest of:
the encoder's own ceiling (``bitrate``, or 0.07 bit per pixel), the camera's upload
budget (``max_upload_kbps``) shared by the viewers, and each viewer's rate. A
viewer's rate is capped by its offer's ``b=AS`` and follows its RTCP receiver reports
(the Echo Show sends no REMB or transport-cc, only RR and NACK/PLI), as the loss
controller of Google Congestion Control does:

- loss below 2 %: up 5 % (at most once a second; 2 % near the rate it last lost
  at), unless the jitter or the round trip say a queue is building;
- 2-10 %: hold; twice running, down as for heavy loss (a drop-tail queue that
  stays full keeps dropping: held at 874 kbit/s under a 1 Mbit/s cap, audio and
  headers on top, reports went on at 5-9 % loss);
- above 10 %: down to ``rate * (1 - 0.5 * loss)``, and no higher than what got
  through (``0.9 * sent * (1 - loss)``, when the rate held since the last report),
  at most halving it and at most once a second (the next report still counts the
  loss from before the decrease).

A new path starts at half its ceiling and rises 25 % a report until it first
shows loss (the full 1.9 Mbit/s of 720p30 in about 6 s on an ample uplink; from a
third at 8 % it took 19 s). Heavy loss is also read from the viewer's NACKs between
reports (a libwebrtc receiver sends an RR with each NACK, compound RTCP; aiortc's
stats keep only the periodic ones): without that, a probe past a 1 Mbit/s cap went
on for a whole report interval and froze the picture for over a second. NACKed packets are
resent within a quarter of the path's rate (:meth:`ViewerPath.allow_retransmission`):
aiortc resends all of them at once, which on a full uplink feeds the congestion.

The loss is the report's own (losses a retransmission repaired do not count: the
receiver counts the repaired packet), so NACK repair on a lossy but uncongested
link does not pull the picture down; the jitter is the report's interarrival
jitter (RFC 3550 6.4.1) in milliseconds. Reports come through the sender's public
``getStats()`` (``remote-inbound-rtp``, round trip included); only the resend limit
goes through :mod:`~alexa_doorbell.camera.rtc_hooks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

LOSS_LOW, LOSS_HIGH = 0.02, 0.10  # GCC's loss-based thresholds
INCREASE = 1.05  # per report below LOSS_LOW, once the path has shown loss
START_FRACTION = 0.5  # of its ceiling, a new path's first rate: nothing is known of it yet
SLOW_START = 1.25  # per clean report until the path first shows loss
DECREASE_INTERVAL = 1.0  # s: the report after a decrease still counts the loss before it
NEAR_MAX = 0.85  # of the rate the path last lost packets at: raise only by NEAR_MAX_INCREASE
NEAR_MAX_INCREASE = 1.02
QUEUE_HOLD_MS = 25.0  # round trip above the path's least: a queue is building, no raise
INCREASE_INTERVAL = 1.0  # seconds: reports come every 0.5-1.5 s; one step a second at most
DELIVERED_MARGIN = 0.9  # below what got through, so the queue drains
MAX_DECREASE = 0.5  # one decrease at most halves the rate (deeper cuts took 20 s to undo)
JITTER_HOLD_MS = 30.0  # over a frame's worth at 30 fps: the bottleneck's queue is growing
MIN_BITRATE = 150_000  # bit/s: below this 720p is mush; the link is too poor to help
AUDIO_ALLOWANCE = 50_000  # bit/s per viewer kept from the budget for Opus and RTP overhead
RTP_OVERHEAD = 0.95  # b=AS counts RTP/UDP/IP; the encoder's bitrate is payload only
APPLY_STEP = 0.03  # the encoder is told of changes of 3 % or more
RETRANSMIT_SHARE = 0.25  # of a path's rate that resending NACKed packets may take
RETRANSMIT_BURST = 0.2  # seconds of that share a NACK may spend at once
RETRANSMIT_MIN_BURST = 4  # packets: at a low rate the burst still covers a small loss
PACKET_BYTES = 1200  # a video RTP packet, about (aiortc fills them to ~1300 bytes)
NACK_WINDOW = 0.5  # seconds of NACKs read as loss between receiver reports
NACK_MIN_PACKETS = 20  # sent in that window before the share means anything
POLL_INTERVAL = 0.25  # seconds between getStats() calls (a report is acted on within this)
RTP_CLOCK = 90_000  # video RTP timestamps (jitter is in these units)


@dataclass
class Report:
    """One receiver report as the bitrate control reads it."""

    fraction_lost: float  # 0..1, since the previous report
    jitter_ms: float
    packets_sent: int  # by this sender when the report arrived
    bytes_sent: int
    rtt_ms: float | None = None  # the sender's estimate (from SR/RR timestamps), smoothed


@dataclass
class ViewerPath:
    """One viewer's path: the rate it carries, from its receiver reports."""

    ceiling: int  # bit/s: its offer's b=AS (less RTP overhead), or the camera's ceiling
    rate: int
    offered: int | None = None  # bit/s its offer's b=AS allows (less RTP overhead)
    adapt: bool = True
    reports: int = 0
    last_loss: float = 0.0
    last_jitter_ms: float = 0.0
    last_loss_kept: bool = False  # the report before this one had loss too
    # (time, loss, jitter ms, bit/s, round trip ms) of each report
    history: list[tuple[float, float, float, int, float | None]] = field(
        default_factory=list, repr=False
    )
    ramping: bool = True  # slow start: until the first report with loss
    lost_at: int | None = None  # the rate the path last lost more than LOSS_HIGH at
    min_rtt_ms: float | None = None
    retransmits_refused: int = 0
    _nacked: dict[int, float] = field(default_factory=dict, repr=False)  # seq -> first asked
    _sent_log: list[tuple[float, int]] = field(default_factory=list, repr=False)
    _tokens: float = 0.0  # bytes of resends allowed now
    _tokens_at: float = 0.0
    _last_increase: float = 0.0
    _last_decrease: float = -DECREASE_INTERVAL
    _last: tuple[float, int] | None = None  # (time, bytes sent) at the previous report
    on_change: Callable[[], None] = field(default=lambda: None, repr=False)

    def on_report(
        self, report: Report, now: float | None = None, *, from_nacks: bool = False
    ) -> int:
        """Take one receiver report; returns the path's rate (bit/s) after it.

        ``from_nacks``: loss read from NACKs between reports, not a report: no receiver
        report interval to measure what got through over, or to start."""
        now = time.monotonic() if now is None else now
        self.reports += 1
        loss, jitter = report.fraction_lost, report.jitter_ms
        self.last_loss_kept = self.last_loss >= LOSS_LOW
        self.last_loss, self.last_jitter_ms = loss, jitter
        sent_rate: float | None = None
        # What got through tells the path's rate only if the rate held all interval.
        if not from_nacks and self._last is not None and now > self._last[0] >= self._last_decrease:
            sent_rate = (report.bytes_sent - self._last[1]) * 8 / (now - self._last[0])
        # A report whose interval began before the last decrease counts loss from before it.
        stale = not from_nacks and self._last is not None and self._last[0] < self._last_decrease
        if not from_nacks:
            self._last = (now, report.bytes_sent)
        if not self.adapt:
            return self.rate
        rate = self.rate
        queue = False
        if report.rtt_ms is not None:
            self.min_rtt_ms = min(self.min_rtt_ms or report.rtt_ms, report.rtt_ms)
            queue = report.rtt_ms - self.min_rtt_ms > QUEUE_HOLD_MS
        if loss >= LOSS_LOW or jitter >= JITTER_HOLD_MS or queue:
            self.ramping = False
        if loss >= LOSS_LOW and (stale or now - self._last_decrease < DECREASE_INTERVAL):
            pass  # this report's loss is (mostly) from before the last decrease
        elif loss > LOSS_HIGH or (loss >= LOSS_LOW and self.last_loss_kept):
            # Heavy loss, or loss in the hold band twice running: a drop-tail queue
            # that stays full drops on, so a hold alone does not drain it.
            self.lost_at = rate
            self._last_decrease = now
            rate = int(rate * (1 - 0.5 * loss))
            if sent_rate:  # what got through, with room for the queue to drain
                rate = min(rate, int(DELIVERED_MARGIN * sent_rate * (1 - loss)))
            rate = max(rate, int(self.rate * MAX_DECREASE))
        elif (
            loss < LOSS_LOW
            and jitter < JITTER_HOLD_MS
            and not queue
            and now - self._last_increase >= INCREASE_INTERVAL
            and now - self._last_decrease >= DECREASE_INTERVAL
        ):
            step = SLOW_START if self.ramping else INCREASE
            if self.lost_at and rate >= NEAR_MAX * self.lost_at:
                step = NEAR_MAX_INCREASE  # close to where it lost before: probe gently
            rate = int(rate * step)
            if self.lost_at and rate > self.lost_at:
                self.lost_at = None  # past it without loss: the path got better
            self._last_increase = now
        rate = min(self.ceiling, max(MIN_BITRATE, rate))  # b=AS wins over the floor
        self.history.append((now, loss, jitter, rate, report.rtt_ms))
        del self.history[:-600]
        if rate != self.rate:
            self.rate = rate
            self.on_change()
        return self.rate

    def allow_retransmission(self, sequence_number: int, now: float | None = None) -> bool:
        """Whether a NACKed packet may be resent now: resends take at most a quarter of
        the path's rate (as libwebrtc bounds them), or they feed the congestion."""
        now = time.monotonic() if now is None else now
        self._nacked.setdefault(sequence_number, now)
        budget = RETRANSMIT_SHARE * self.rate / 8
        elapsed = now - self._tokens_at if self._tokens_at else RETRANSMIT_BURST
        depth = max(RETRANSMIT_MIN_BURST * PACKET_BYTES, budget * RETRANSMIT_BURST)
        self._tokens = min(depth, self._tokens + budget * elapsed)
        self._tokens_at = now
        if self._tokens < PACKET_BYTES:
            self.retransmits_refused += 1
            return False
        self._tokens -= PACKET_BYTES
        return True

    def nack_loss(self, packets_sent: int, now: float | None = None) -> float | None:
        """The share of the packets sent in the last :data:`NACK_WINDOW` that the viewer
        NACKed (each counted once); None until enough were sent to tell."""
        now = time.monotonic() if now is None else now
        self._sent_log.append((now, packets_sent))
        while now - self._sent_log[0][0] > NACK_WINDOW:
            self._sent_log.pop(0)
        for seq in [s for s, t in self._nacked.items() if now - t > NACK_WINDOW]:
            del self._nacked[seq]
        sent = packets_sent - self._sent_log[0][1]
        return len(self._nacked) / sent if sent >= NACK_MIN_PACKETS else None

    def on_nacks(self, packets_sent: int, bytes_sent: int, now: float | None = None) -> None:
        """Act on heavy loss seen in NACKs before the next receiver report says so."""
        now = time.monotonic() if now is None else now
        loss = self.nack_loss(packets_sent, now)
        if loss is None or loss <= LOSS_HIGH or now - self._last_decrease < DECREASE_INTERVAL:
            return
        report = Report(min(loss, 1.0), self.last_jitter_ms, packets_sent, bytes_sent)
        self.on_report(report, now, from_nacks=True)


class BitrateSink(Protocol):
    def __call__(self, bitrate: int) -> None: ...


class UplinkBitrate:
    """One camera's video bitrate: the lowest its viewers' paths and its budget allow."""

    def __init__(
        self,
        ceiling: int,
        apply: BitrateSink,
        *,
        budget: int | None = None,
        adapt: bool = True,
    ) -> None:
        self.ceiling = ceiling  # the encoder's own bitrate (setting, or by resolution)
        self.budget = budget  # bit/s for all of this camera's viewers together
        self.adapt = adapt
        self.apply = apply
        self.paths: list[ViewerPath] = []
        self.target = ceiling  # with no viewer, as before; the first one sets its own
        self.history: list[tuple[float, int]] = [(time.monotonic(), ceiling)]

    def add_viewer(self, offer_kbps: int | None = None) -> ViewerPath:
        ceiling = self.ceiling
        offered = int(offer_kbps * 1000 * RTP_OVERHEAD) if offer_kbps else None
        if offered:
            ceiling = min(ceiling, offered)
        # A new viewer starts where the others are (their path is likely its own: the
        # home uplink), or, the first, at a third of its ceiling, ramping up from there.
        others = [p.rate for p in self.paths]
        start = min([ceiling, *others]) if others else int(ceiling * START_FRACTION)
        if not self.adapt:
            start = ceiling  # the full bitrate, as without adaptation
        start = min(ceiling, max(MIN_BITRATE, start))
        path = ViewerPath(ceiling, start, offered, adapt=self.adapt, on_change=self.update)
        self.paths.append(path)
        self.update()
        return path

    def remove_viewer(self, path: ViewerPath) -> None:
        with contextlib.suppress(ValueError):
            self.paths.remove(path)
        self.update()

    def share(self) -> int | None:
        """Each viewer's part of the budget (the one stream goes to each of them)."""
        if not self.budget:
            return None
        n = max(1, len(self.paths))
        return max(MIN_BITRATE, self.budget // n - AUDIO_ALLOWANCE)

    def passthrough_limit(self) -> int | None:
        """The most a camera's own stream (passthrough) may take: the budget's share, the
        viewers' b=AS and the rate of any path that lost packets (None: no limit). Not
        the encoder's ceiling, which is only what this camera's encoder would use."""
        limits = [self.share(), *(p.offered for p in self.paths)]
        limits += [p.rate for p in self.paths if p.lost_at is not None]
        return min((x for x in limits if x), default=None)

    def update(self) -> None:
        limits = [self.ceiling, *(p.rate for p in self.paths)]
        if (share := self.share()) is not None:
            limits.append(share)
        target = min(limits)
        if target == self.target:
            return
        moved = abs(target - self.target) / self.target
        # Small steps are left to the next report, except back to the ceiling.
        if moved < APPLY_STEP and target != self.ceiling:
            return
        self.target = target
        self.history.append((time.monotonic(), target))
        del self.history[:-600]
        self.apply(target)


class StatsSender(Protocol):
    """What :func:`watch_sender` needs of an aiortc ``RTCRtpSender``."""

    async def getStats(self) -> Mapping[str, object]: ...


def remote_inbound(stats: Mapping[str, Any]) -> tuple[object, Report] | None:
    """The receiver's last report in a sender's stats (its timestamp tells a new one)."""
    values = stats.values()
    remote = next((s for s in values if getattr(s, "type", "") == "remote-inbound-rtp"), None)
    outbound = next((s for s in values if getattr(s, "type", "") == "outbound-rtp"), None)
    if remote is None or outbound is None:
        return None
    lost = remote.fractionLost or 0
    # aiortc gives the report's 8-bit fixed point (RFC 3550 6.4.1); the W3C a fraction.
    fraction = lost / 256 if isinstance(lost, int) else float(lost)
    jitter_ms = (remote.jitter or 0) * 1000 / RTP_CLOCK
    rtt = getattr(remote, "roundTripTime", None)
    report = Report(
        fraction,
        jitter_ms,
        outbound.packetsSent or 0,
        outbound.bytesSent or 0,
        rtt * 1000 if rtt is not None else None,
    )
    return remote.timestamp, report


async def watch_sender(
    sender: StatsSender, path: ViewerPath, interval: float = POLL_INTERVAL
) -> None:
    """Feed ``path`` every receiver report ``sender`` gets, and the loss its NACKs
    show in between, until cancelled."""
    seen: object = None
    while True:
        await asyncio.sleep(interval)
        try:
            stats = await sender.getStats()
        except (AttributeError, ConnectionError):
            continue  # not sending yet (no transport), or closing
        outbound = next(
            (s for s in stats.values() if getattr(s, "type", "") == "outbound-rtp"), None
        )
        if outbound is not None:
            # A libwebrtc receiver's RR rides on each NACK (compound RTCP); aiortc's stats keep
            # only the periodic ones, so the NACKs themselves are read as loss.
            path.on_nacks(outbound.packetsSent or 0, outbound.bytesSent or 0)
        got = remote_inbound(stats)
        if got is None or got[0] == seen:
            continue
        seen = got[0]
        before = path.rate
        path.on_report(got[1])
        if path.rate != before:
            log.debug(
                "viewer path: loss %.1f%% jitter %.0f ms -> %d kbit/s",
                100 * got[1].fraction_lost,
                got[1].jitter_ms,
                path.rate // 1000,
            )
