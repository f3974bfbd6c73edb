"""Decoded video from FFmpeg: a file (looped), an RTSP camera or a webcam."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import av

from alexa_doorbell.camera.sources.base import (
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    MediaSourceError,
    VideoSource,
    redact_url,
)

MAX_SKIMMED = 300  # packets kept undecoded while skimming (10 s at 30 fps)


class ContainerVideoSource(VideoSource):
    """A file (looped, paced by its timestamps), an RTSP URL or a webcam device."""

    def __init__(
        self,
        url: str,
        width: int,
        height: int,
        fps: float,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        loop: bool = False,
        live: bool = False,
    ) -> None:
        self.url, self.format, self.options = url, format, options or {}
        self.width, self.height, self.fps = width, height, fps
        self.loop, self.live = loop, live
        self._container: Any = None
        self._packets: Any = None
        self._codec: Any = None
        self._decoded: list[av.VideoFrame] = []
        # Skimmed (warm, nobody watching): the packets since the last keyframe, undecoded.
        self._skimmed: list[av.Packet] = []
        self._start = time.monotonic()  # pacing origin; moves when we fall behind
        self._epoch = self.epoch = self._start  # pts origin; never moves, so pts only grow
        self._offset = 0.0  # seconds added per loop of a file
        self._last = 0.0
        # A read runs in a worker thread: closing the container under it crashes FFmpeg.
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        try:
            self._container = av.open(
                self.url, format=self.format, options=self.options, timeout=(5.0, 5.0)
            )
        except (av.FFmpegError, OSError) as exc:
            where = redact_url(self.url)
            raise MediaSourceError(f"cannot open video source {where!r}: {exc}") from None
        if not self._container.streams.video:
            raise MediaSourceError(f"{redact_url(self.url)!r} has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._codec = stream.codec_context
        self._packets = self._container.demux(stream)
        self._skimmed, self._decoded = [], []

    def _demux(self) -> av.Packet:
        """The next packet (the empty one at the end flushes the decoder); files loop."""
        while True:
            try:
                return next(self._packets)
            except StopIteration:
                if not self.loop:
                    raise MediaSourceError(f"video source {redact_url(self.url)!r} ended") from None
                self._offset = self._last + 1 / self.fps
                self._container.close()
                self._open()
            except av.FFmpegError as exc:
                where = redact_url(self.url)
                raise MediaSourceError(f"video source {where!r} failed: {exc}") from None

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            return list(self._codec.decode(packet))
        except av.FFmpegError as exc:
            where = redact_url(self.url)
            raise MediaSourceError(f"video source {where!r} failed: {exc}") from None

    def _next(self) -> tuple[av.VideoFrame, float]:
        while True:
            if self._skimmed:  # back from skimming: the picture now, from its keyframe
                backlog, self._skimmed = self._skimmed, []
                for packet in backlog:
                    self._decoded = self._decode(packet)[-1:] or self._decoded
            if self._decoded:
                frame = self._decoded.pop(0)
            else:
                self._decoded = self._decode(self._demux())
                continue
            t = float(frame.time) if frame.time is not None else self._last + 1 / self.fps
            t += self._offset
            self._last = t
            if (
                frame.width != self.width
                or frame.height != self.height
                or (frame.format.name != "yuv420p")
            ):
                frame = frame.reformat(self.width, self.height, "yuv420p")
            return frame, t

    def _locked_next(self) -> tuple[av.VideoFrame, float]:
        with self._lock:
            if self._container is None:
                raise MediaSourceError("video source closed")
            return self._next()

    def _skim_one(self) -> float | None:
        """Demux one packet into the backlog (from a keyframe on); its time in seconds."""
        with self._lock:
            if self._container is None:
                raise MediaSourceError("video source closed")
            packet = self._demux()
            if not packet.size:
                return None
            if packet.is_keyframe:
                self._skimmed, self._decoded = [packet], []
            elif len(self._skimmed) >= MAX_SKIMMED:
                self._skimmed = []  # too long to decode at once: from the next keyframe
            elif self._skimmed:
                self._skimmed.append(packet)
            if packet.pts is None or packet.time_base is None:
                return None
            return float(packet.pts * packet.time_base) + self._offset

    async def skim(self) -> None:
        t = await asyncio.to_thread(self._skim_one)
        if not self.live and t is not None:  # files: at their own pace, as when read
            delay = self._start + t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def read(self) -> av.VideoFrame:
        frame, t = await asyncio.to_thread(self._locked_next)
        if not self.live:  # files: play at their own pace
            delay = self._start + t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:
                self._start -= delay
        frame.pts = int((time.monotonic() - self._epoch) * VIDEO_CLOCK)
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None
