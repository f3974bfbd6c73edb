"""A bare aiortc viewer's pieces shared by the camera tests: frame counting, VP8-only offers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError


class FrameCollector:
    """Collects what a peer connection's received tracks of ``kinds`` yield."""

    def __init__(self, pc: RTCPeerConnection, kinds: tuple[str, ...] = ("video",)) -> None:
        self.frames: list[Any] = []
        self._readers: list[asyncio.Task[None]] = []
        self._kinds = kinds
        pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        if track.kind in self._kinds:
            self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: Any) -> None:
        try:
            while True:
                self.frames.append(await track.recv())
        except MediaStreamError:
            pass

    async def wait(self, count: int, timeout: float = 5.0) -> int:
        """Wait until ``count`` frames arrived (or the timeout); the number received."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.frames) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return len(self.frames)


async def vp8_only_offer(pc: RTCPeerConnection) -> str:
    """A recvonly video offer that leaves H.264 out, as a VP8-only browser's would."""
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return "\r\n".join(
        ln
        for ln in pc.localDescription.sdp.split("\r\n")
        if "H264" not in ln and "fmtp:9" not in ln
    )
