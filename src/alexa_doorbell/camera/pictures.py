"""What the fan-out reads: a camera's pictures (:class:`PictureSource`), and a bare
source adapted to it (:class:`PlainPictures`, for tests and benchmarks)."""

from __future__ import annotations

import asyncio
from typing import Protocol

import av

from alexa_doorbell.camera.sources import VideoSource


class PictureSource(Protocol):
    """What :class:`~alexa_doorbell.camera.fanout.VideoFanout` reads: a camera's
    :class:`~alexa_doorbell.camera.supervisor.SupervisedVideo` (or a plain source,
    adapted by :class:`PlainPictures`)."""

    width: int
    height: int
    fps: float
    generation: int  # changes when the stream does (reopened, slate): restart from a keyframe

    @property
    def passthrough(self) -> bool: ...
    @property
    def live(self) -> bool: ...
    async def next(self) -> av.VideoFrame | av.Packet | None: ...
    def keep_reading(self) -> bool: ...
    def hold(self, seconds: float) -> None: ...
    async def release(self) -> None: ...
    async def close(self) -> None: ...


class PlainPictures:
    """A bare :class:`VideoSource` as a :class:`PictureSource` (no recovery: tests, benches)."""

    generation = 0

    live = True

    def __init__(self, source: VideoSource) -> None:
        self.source = self.current = source
        self.width, self.height, self.fps = source.width, source.height, source.fps

    @property
    def passthrough(self) -> bool:
        return self.source.passthrough

    async def next(self) -> av.VideoFrame | av.Packet:
        return await (self.source.read_packet() if self.passthrough else self.source.read())

    def keep_reading(self) -> bool:
        # A live camera is read even while nobody watches: its socket must not fill
        # up with stale video (demuxing alone costs next to nothing).
        return self.passthrough

    def hold(self, seconds: float) -> None:
        pass  # always read while a passthrough camera: nothing to start

    async def release(self) -> None:
        pass

    async def close(self) -> None:
        await asyncio.to_thread(self.source.close)
