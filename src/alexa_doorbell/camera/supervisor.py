"""A camera's video source that comes back: reopened after failures, the slate meanwhile.

    video = SupervisedVideo(spec, opener, width=1280, height=720, fps=30, on_change=cb)
    item = await video.next()     # av.VideoFrame (to encode) or av.Packet (passthrough)
    video.release()               # nobody watches: the source is closed (after a linger)
    done = video.add_reader()     # a detector: read while nobody watches, until done()
    video.hold(30)                # a doorbell press: open and decoded for the view to come

The fan-out reads only this. The real source is opened when the first viewer comes
(``next()``) and closed when nobody has watched for ``linger`` seconds: an idle camera
costs no decoding and no socket. A reader (a built-in detector's frame tap) is a
reason to read like a viewer: the source stays open and decoded, and is recovered as
for a watched one, while the fan-out encodes nothing for nobody. When it fails (an
RTSP camera reboots, Wi-Fi drops, a webcam is unplugged, a file errors) or stalls,
``next()`` yields slate frames (the "reconnecting" picture at the stream's size) and
reopens it in the background: first after 0.25 s, doubling, at most ``watched_max``
apart while someone watches or reads (5 s bound otherwise). Timestamps stay on one
clock across reopens, so a viewer's RTP never jumps back, and ``generation`` changes
at every switch so the fan-out restarts each viewer from a keyframe. While idle a
cheap check (``present``: a TCP connect for RTSP) runs every ``probe_interval``
seconds, so the camera's health is known without watching.

A ``warm`` source (``warm = true``, doorbells by default) is opened at start and never
released: while nobody watches it is only demuxed (passthrough packets feed the
fan-out's GOP cache; a decoded source keeps its packets since the last keyframe
undecoded, :meth:`~alexa_doorbell.camera.sources.VideoSource.skim`), so the first viewer
waits for no RTSP handshake and no keyframe. Each open's time is logged and kept
(``open_ms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import av

from alexa_doorbell.camera.slate import SLATE_FPS, Slate
from alexa_doorbell.camera.sources import (
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    VideoSource,
    open_video_source,
    redact_url,
    source_present,
)
from alexa_doorbell.config import CameraConfig

log = logging.getLogger(__name__)

State = Literal["idle", "starting", "live", "down"]
Opener = Callable[[bool], VideoSource]  # reopen: the stream was seen before


@dataclass(frozen=True)
class SourceStatus:
    """What the agent, its health and the dashboard know of a source."""

    state: State
    since: float  # time.time() the state began (for "down": when the picture stopped)
    error: str | None = None
    outages: int = 0  # failures since the agent started
    reopens: int = 0  # successful opens after a failure

    @property
    def down(self) -> bool:
        return self.state == "down"

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "since": self.since,
            "error": self.error,
            "outages": self.outages,
            "reopens": self.reopens,
        }


class Backoff:
    """0.25 s, 0.5 s, 1 s... capped; ``reset()`` after a success."""

    def __init__(self, first: float = 0.25, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap
        self.failures = 0

    def next_delay(self, cap: float | None = None) -> float:
        delay = min(cap or self.cap, self.first * 2**self.failures)
        self.failures = min(self.failures + 1, 30)
        return delay

    def reset(self) -> None:
        self.failures = 0


class SupervisedVideo:
    def __init__(
        self,
        spec: str,
        opener: Opener,
        *,
        width: int,
        height: int,
        fps: float,
        present: Callable[[], bool] | None = None,
        on_change: Callable[[SourceStatus], None] | None = None,
        linger: float = 10.0,
        stall: float = 1.5,
        first_picture: float = 6.0,
        watched_max: float = 1.0,
        idle_max: float = 5.0,
        probe_interval: float = 30.0,
        warm: bool = False,
    ) -> None:
        self.spec, self.opener = spec, opener
        self.width, self.height, self.fps = width, height, fps
        self.present = present
        self.on_change = on_change
        self.linger, self.stall = linger, stall
        # After an open: a keyframe every 1-4 s, and nothing decodes before the first.
        self.first_picture = first_picture
        self._first_picture_by: float | None = None
        self.watched_max, self.idle_max = watched_max, idle_max
        self.probe_interval = probe_interval
        self.epoch = time.monotonic()
        self.generation = 0
        self.status = SourceStatus("idle", time.time())
        self._src: VideoSource | None = None
        self._seen = False  # opened once: a reopen may probe less
        self._opening: asyncio.Future[VideoSource] | None = None
        self._reading: asyncio.Future[av.VideoFrame | av.Packet] | None = None
        self._next_try = 0.0
        self._backoff = Backoff(cap=idle_max)
        self._slate: Slate | None = None
        self._slate_next = 0.0
        self._last_pts = -1
        self._released_at: float | None = time.monotonic()
        self._monitor: asyncio.Task[None] | None = None
        self._idle = True
        self._closing: set[asyncio.Future[None]] = set()
        self._readers = 0  # detectors that want pictures while nobody watches
        self._unwatched = False  # keep_reading() was asked since the last next()
        self._said_passthrough = False
        self.slate_frames = 0
        self.warm = warm
        self._hold_until = 0.0  # a press: read and decode as for a viewer until then
        self.open_ms: float | None = None  # how long the last open took
        self._skim_now = False  # the read under way is a warm source's, for nobody

    # -- what the fan-out sees ------------------------------------------------------
    @property
    def current(self) -> VideoSource | None:
        """The camera's source while it is open."""
        return self._src

    @property
    def live(self) -> bool:
        """True while pictures are the camera's (not the slate)."""
        return self._src is not None and self.status.state == "live"

    @property
    def passthrough(self) -> bool:
        """True while packets come from an H.264 camera as they are (not the slate)."""
        return self._src is not None and self._src.passthrough and not self.status.down

    async def next(self) -> av.VideoFrame | av.Packet | None:
        """The next picture: the camera's, or the slate while it is away; None for a warm
        source's packet demuxed for nobody. Never raises for a source failure (that is
        the supervisor's to handle)."""
        if not self._unwatched:  # a viewer's read: the linger starts again when it goes
            self._released_at = None
        skim = self._skim_now = self._unwatched and self._skimming()
        self._unwatched = False
        if self._idle:  # a viewer came: try at once, whatever the idle backoff said
            self._idle, self._next_try = False, 0.0
            self._stop_monitor()
        while True:
            if self._src is None:
                self._start_opening()
                if self._opening is not None and not self.status.down:
                    await asyncio.wait({self._opening})  # the first open: nothing to show yet
                wait = self._slate_wait()
                if self._opening is not None:
                    if await _settled(self._opening, wait):
                        self._finish_opening()
                        continue
                elif (until_try := self._next_try - time.monotonic()) < wait:
                    await asyncio.sleep(max(0.0, until_try))
                    continue
                else:
                    await asyncio.sleep(wait)
                return None if skim else self._slate_frame()
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._read(self._src, skim))
            wait = self._slate_wait() if self.status.down else self._stall_wait()
            if not await _settled(self._reading, wait):
                if not self.status.down:
                    self._fail(f"no picture for {wait:.1f} s", close=False, stalled=True)
                return self._slate_frame()
            reading, self._reading = self._reading, None
            try:
                item = reading.result()
            except Exception as exc:
                self._fail(str(exc) or type(exc).__name__)
                continue
            self._live()
            return None if item is None else self._stamp(item)

    def _stall_wait(self) -> float:
        """How long a read may take before the camera counts as stalled. Just opened, a
        decoded camera's first picture comes with its first keyframe: up to a GOP."""
        if self.status.state == "live" or self._first_picture_by is None:
            return self.stall
        return max(self.stall, self._first_picture_by - time.monotonic())

    @property
    def readers(self) -> int:
        return self._readers

    def add_reader(self) -> Callable[[], None]:
        """Something besides a viewer wants the decoded pictures (a detector): read on
        while nobody watches, until the returned function is called. The fan-out must
        be woken for it if it sleeps (``Fanout.wake``)."""
        self._readers += 1
        done = False

        def remove() -> None:
            nonlocal done
            if not done:
                done = True
                self._readers -= 1

        return remove

    def hold(self, seconds: float) -> None:
        """A doorbell press: read and decode as for a viewer for ``seconds`` (opened now
        if it is not), so the view that follows starts as fast as a warm join."""
        self._hold_until = max(self._hold_until, time.monotonic() + seconds)
        self._released_at = None

    def _skimming(self) -> bool:
        """Nobody watches a warm source: demux only (no reader, no press, no linger)."""
        return self.warm and not self._readers and time.monotonic() >= self._hold_until

    def keep_reading(self) -> bool:
        """Nobody watches: whether to go on reading for now (a warm source, a press, a
        reader, or the linger of a live camera; a reader opens the source as a viewer
        would)."""
        self._unwatched = True
        now = time.monotonic()
        if self.warm or now < self._hold_until:
            return True
        if self._readers and not self._undecoded():
            self._released_at = None  # the linger counts from when the last reader went
            return True
        if self._released_at is None:
            self._released_at = now
        return self._src is not None and now - self._released_at < self.linger

    def _undecoded(self) -> bool:
        """An H.264 camera passed through: nothing is decoded while nobody watches, so
        a reader is no reason to keep it open (it would demux for nobody)."""
        if self._src is None or not self._src.passthrough:
            return False
        if not self._said_passthrough:
            self._said_passthrough = True
            log.warning(
                "video source %s is passed through as H.264: the built-in detectors see "
                'no decoded pictures; set passthrough = "never" for this camera',
                redact_url(self.spec),
            )
        return True

    async def release(self) -> None:
        """Nobody watches: close the source (opened again by the next ``next()``)."""
        self._idle = True
        await self._close_source()
        if self.status.state in ("live", "starting"):
            self._set(SourceStatus("idle", time.time(), None, *self._counts()))
        self._start_monitor()

    def start(self) -> None:
        """At agent start: learn the camera's state without opening it."""
        self._start_monitor()

    async def close(self) -> None:
        self._stop_monitor()
        await self._close_source()
        await asyncio.gather(*self._closing, return_exceptions=True)
        opening, self._opening = self._opening, None
        if opening is not None:  # an open in its worker thread: close what it yields
            with contextlib.suppress(Exception):
                await asyncio.to_thread((await opening).close)

    # -- opening and failing --------------------------------------------------------
    def _start_opening(self) -> None:
        if self._opening is not None or time.monotonic() < self._next_try:
            return
        if self.status.state == "idle":
            self._set(SourceStatus("starting", time.time(), None, *self._counts()))
        reopen = self._seen
        self._opening = asyncio.ensure_future(asyncio.to_thread(self._timed_open, reopen))

    def _timed_open(self, reopen: bool) -> VideoSource:
        started = time.monotonic()
        src = self.opener(reopen)
        self.open_ms = (time.monotonic() - started) * 1000
        log.info(
            "video source %s opened in %.0f ms%s",
            redact_url(self.spec),
            self.open_ms,
            " (warm: kept open while nobody watches)" if self.warm else "",
        )
        return src

    def _finish_opening(self) -> None:
        opening, self._opening = self._opening, None
        assert opening is not None
        try:
            self._src = opening.result()
        except Exception as exc:
            self._fail(str(exc) or type(exc).__name__)
            return
        self._seen = True
        self._first_picture_by = time.monotonic() + self.first_picture
        if self._src.width and self._src.height:
            self.width, self.height = self._src.width, self._src.height

    async def _read(self, src: VideoSource, skim: bool) -> av.VideoFrame | av.Packet | None:
        if src.passthrough:
            return await src.read_packet()  # demuxing only, watched or not
        if skim:
            await src.skim()
            return None
        return await src.read()

    def _fail(self, error: str, *, close: bool = True, stalled: bool = False) -> None:
        if close:
            src, self._src, self._reading = self._src, None, None
            if src is not None:
                # Closing waits for a read still in its worker thread: not on the loop.
                closing = asyncio.ensure_future(asyncio.to_thread(src.close))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        delay = self._backoff.next_delay(self.idle_max if self._skim_now else self.watched_max)
        self._next_try = time.monotonic() + delay
        if not self.status.down:
            outages, reopens = self._counts()
            since = time.time() - (self.stall if stalled else 0.0)
            self._set(SourceStatus("down", since, error, outages + 1, reopens))
            self.generation += 1
            log.warning(
                "video source %s is down (%s): retrying, the slate meanwhile",
                redact_url(self.spec),
                error,
            )
        elif error != self.status.error and not stalled:
            self._set(replace(self.status, error=error))

    def _live(self) -> None:
        if self.status.state == "live":
            return
        was_down = self.status.down
        outages, reopens = self._counts()
        self._backoff.reset()
        self.generation += 1
        self._set(SourceStatus("live", time.time(), None, outages, reopens + was_down))
        if was_down:
            log.info("video source %s is back", redact_url(self.spec))

    async def _close_source(self) -> None:
        src, self._src = self._src, None
        reading, self._reading = self._reading, None
        if reading is not None:
            reading.cancel()
        if src is not None:
            await asyncio.to_thread(src.close)

    # -- the slate and the clock ----------------------------------------------------
    def _slate_wait(self) -> float:
        return max(0.0, self._slate_next - time.monotonic())

    def _slate_frame(self) -> av.VideoFrame:
        if self._slate is None or (self._slate.width, self._slate.height) != (
            self.width,
            self.height,
        ):
            self._slate = Slate(self.width, self.height)
        now = time.monotonic()
        self._slate_next = max(now, self._slate_next) + 1 / SLATE_FPS
        down_for = time.time() - self.status.since if self.status.down else 0.0
        frame = av.VideoFrame.from_ndarray(self._slate.render(down_for), format="yuv420p")
        self.slate_frames += 1
        return self._stamp(frame)

    def _stamp(self, item: av.VideoFrame | av.Packet) -> av.VideoFrame | av.Packet:
        """One clock for every source the camera ever had, never going back."""
        if isinstance(item, av.Packet) and self._src is not None and item.pts is not None:
            pts = item.pts + int((self._src.epoch - self.epoch) * VIDEO_CLOCK)
        else:
            pts = int((time.monotonic() - self.epoch) * VIDEO_CLOCK)
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        item.pts = pts
        if isinstance(item, av.Packet):
            item.dts = pts
        item.time_base = VIDEO_TIME_BASE
        return item

    # -- while idle: is the camera there? -------------------------------------------
    def _start_monitor(self) -> None:
        if self.present is not None and (self._monitor is None or self._monitor.done()):
            self._monitor = asyncio.create_task(self._probe_loop(), name="source-probe")

    def _stop_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None

    async def _probe_loop(self) -> None:
        assert self.present is not None
        backoff = Backoff(cap=self.idle_max)
        while True:
            ok = await asyncio.to_thread(self.present)
            outages, reopens = self._counts()
            if ok:
                backoff.reset()
                if self.status.down:
                    log.info("video source %s answers again", redact_url(self.spec))
                if self.status.state != "idle":
                    self._set(SourceStatus("idle", time.time(), None, outages, reopens))
                await asyncio.sleep(self.probe_interval)
                continue
            if not self.status.down:
                log.warning("video source %s does not answer", redact_url(self.spec))
                self._set(SourceStatus("down", time.time(), "not reachable", outages + 1, reopens))
            await asyncio.sleep(backoff.next_delay())

    # -- status ---------------------------------------------------------------------
    def _counts(self) -> tuple[int, int]:
        return self.status.outages, self.status.reopens

    def _set(self, status: SourceStatus) -> None:
        self.status = status
        if self.on_change is not None:
            try:
                self.on_change(status)
            except Exception:
                log.exception("source state callback failed")


def camera_video(
    cam: CameraConfig,
    given: VideoSource | None = None,
    on_change: Callable[[SourceStatus], None] | None = None,
) -> SupervisedVideo:
    """The supervised source of a configured camera (``given``: a source handed in by a
    test or the demo, used for the first open instead of ``cam.source``)."""

    def opener(reopen: bool) -> VideoSource:
        nonlocal given
        if given is not None:
            src, given = given, None
            return src
        return open_video_source(
            cam.source, cam.width, cam.height, cam.fps, passthrough=cam.passthrough, reopen=reopen
        )

    return SupervisedVideo(
        cam.source,
        opener,
        width=cam.width,
        height=cam.height,
        fps=cam.fps,
        present=None if given is not None else (lambda: source_present(cam.source)),
        on_change=on_change,
        warm=cam.keep_warm,
    )


async def _settled(fut: asyncio.Future[object], timeout: float) -> bool:
    """Whether ``fut`` is done within ``timeout`` (it is not cancelled when not)."""
    if not fut.done():
        await asyncio.wait({fut}, timeout=timeout)
    return fut.done()
