"""What every viewer of a camera shares: each frame encoded and cut into RTP payloads
once (:class:`EncodedFrame`), the per-viewer sender that sends them as they are
(:class:`SharedPayloadEncoder`), and the life cycle of a fan-out (:class:`Fanout`:
one source read by one task, fed to many viewer tracks).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import av
from aiortc import RTCRtpSender
from aiortc.codecs.base import Encoder

from alexa_doorbell.camera import rtc_hooks
from alexa_doorbell.camera.sources import VIDEO_CLOCK


class EncodedFrame:
    """One encoded frame cut into RTP payloads once, shared by every viewer."""

    __slots__ = ("is_keyframe", "packet", "payloads", "timestamp")

    def __init__(
        self,
        payloads: list[bytes],
        timestamp: int,
        is_keyframe: bool = False,
        packet: av.Packet | None = None,
    ) -> None:
        self.payloads = payloads
        self.timestamp = timestamp  # in the codec's RTP clock, from the source's start
        self.is_keyframe = is_keyframe
        self.packet = packet


def packetize_h264(packet: av.Packet) -> EncodedFrame:
    """RTP payloads (single NAL, STAP-A, FU-A) of one Annex B access unit.

    aiortc's own packetizer, called once per frame instead of once per viewer.
    """
    payloads = rtc_hooks.h264_payloads(bytes(packet))
    ts = int(packet.pts * packet.time_base * VIDEO_CLOCK) if packet.pts is not None else 0
    return EncodedFrame(payloads, ts, packet.is_keyframe, packet)


class SharedPayloadEncoder(Encoder):
    """The per-viewer "encoder" of an aiortc sender fed with :class:`EncodedFrame`."""

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        return [], 0  # a raw frame queued before negotiation ended: skipped

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        return packet.payloads, packet.timestamp


def share_payloads(sender: RTCRtpSender) -> None:
    """Make ``sender`` send shared payloads as they are (no encoding, no packetizing)."""
    rtc_hooks.set_payload_encoder(sender, SharedPayloadEncoder())


class Fanout:
    """One source read by one task and fed to many viewer tracks: the shared life cycle."""

    name = "fanout"

    def __init__(self, source: Any) -> None:
        self.source = source
        self.tracks: set[Any] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def _run(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        """Look again whether to read (a reader came to a source released meanwhile)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        for t in list(self.tracks):
            t.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_source()

    async def _close_source(self) -> None:
        # Waits for a read still running in a worker thread, off the event loop.
        await asyncio.to_thread(self.source.close)

    def unsubscribe(self, track: Any) -> None:
        self.tracks.discard(track)
