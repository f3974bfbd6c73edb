"""The test pattern as a live source (its stamp carries the frame counter and clock)."""

from __future__ import annotations

import time

import av

from alexa_doorbell.camera.pattern import TestPattern
from alexa_doorbell.camera.sources.base import VIDEO_CLOCK, VIDEO_TIME_BASE, Pacer, VideoSource


class TestPatternSource(VideoSource):
    __test__ = False

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.pattern = TestPattern(width, height)
        self.counter = 0
        self._pacer = Pacer(1 / fps)
        self.epoch = self._pacer.start

    async def read(self) -> av.VideoFrame:
        await self._pacer.wait()
        self.counter += 1
        frame = av.VideoFrame.from_ndarray(self.pattern.render(self.counter), format="yuv420p")
        frame.pts = int((time.monotonic() - self._pacer.start) * VIDEO_CLOCK)
        frame.time_base = VIDEO_TIME_BASE
        return frame
