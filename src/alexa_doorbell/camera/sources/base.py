"""What every source shares: the frame clock, the pacing, the error a source raises."""

from __future__ import annotations

import asyncio
import fractions
import re
import time

import av

AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
AUDIO_SAMPLES = int(AUDIO_RATE * AUDIO_PTIME)
VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


class MediaSourceError(RuntimeError):
    """A source that cannot be opened or read; the message says what to fix."""


class Pacer:
    """Sleeps until the next tick of a fixed-rate clock; skips ticks when late."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.start = time.monotonic()
        self.n = 0

    async def wait(self) -> None:
        self.n += 1
        target = self.start + self.n * self.interval
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -5 * self.interval:  # far behind (suspended, overloaded): resync
            self.start = time.monotonic() - self.n * self.interval


class VideoSource:
    """Yields frames in real time; ``pts`` in 1/90000 s from the source's start."""

    width: int
    height: int
    fps: float
    passthrough = False  # True: read_packet() yields H.264 access units, nothing to encode
    epoch = 0.0  # the time.monotonic() its pts count from

    async def read(self) -> av.VideoFrame:
        raise NotImplementedError

    async def read_packet(self) -> av.Packet:
        raise NotImplementedError

    async def skim(self) -> None:
        """Nobody watches a warm source: take in its next picture without decoding it
        (the next ``read()`` decodes from the last keyframe to the latest). Sources
        with nothing to demux (the test pattern) wait a frame."""
        await asyncio.sleep(1 / self.fps)

    def close(self) -> None:
        pass


def redact_url(url: str) -> str:
    """A URL fit for logs: ``rtsp://user:secret@cam/x`` -> ``rtsp://***@cam/x``."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", url)
