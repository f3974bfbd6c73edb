"""Encode once, send to many.

One :class:`VideoFanout` per camera reads the source and encodes each frame
once with libx264 (constrained baseline, no B-frames, short GOP, a live-video
preset). Every H.264 viewer gets a :class:`FanoutVideoTrack` whose ``recv()``
returns the shared ``av.Packet``: aiortc's ``RTCRtpSender`` packetizes an
``av.Packet`` without re-encoding (``Encoder.pack``). Keyframe requests
(PLI/FIR from any viewer, a new viewer joining) reach the shared encoder.
Viewers that negotiated another codec (VP8) get raw frames and aiortc encodes
for them. Audio is produced once and the frames are shared the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from alexa_doorbell.camera.media import VIDEO_CLOCK, AudioSource, VideoSource

log = logging.getLogger(__name__)

PACKET_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
KEYFRAME_MIN_INTERVAL = 0.5  # seconds: a PLI storm from many viewers costs one IDR


def default_bitrate(width: int, height: int, fps: float) -> int:
    """About 0.07 bit per pixel: 720p30 ~ 1.9 Mbit/s, below Echo Show's b=AS:2500."""
    return int(min(2_400_000, max(300_000, width * height * fps * 0.07)))


class H264Encoder:
    """libx264 configured for live video to Alexa: 42e01f-compatible, IDR on demand."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        *,
        gop_seconds: float = 1.0,
        bitrate: int | None = None,
        preset: str = "veryfast",
        threads: int = 2,
    ) -> None:
        self.codec = av.CodecContext.create("libx264", "w")
        self.codec.width, self.codec.height = width, height
        self.codec.pix_fmt = "yuv420p"
        self.codec.time_base = PACKET_TIME_BASE
        self.codec.framerate = fractions.Fraction(round(fps * 1000), 1000)
        self.codec.bit_rate = bitrate or default_bitrate(width, height, fps)
        self.codec.profile = "Baseline"  # x264 baseline = constrained baseline (42e0xx)
        gop = max(1, round(gop_seconds * fps))
        self.gop = gop
        self.codec.gop_size = gop
        self.codec.thread_count = threads
        self.codec.options = {
            "preset": preset,
            "tune": "zerolatency",
            "level": "3.1" if width * height <= 1280 * 720 else "4.0",
            "forced-idr": "1",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1",
        }
        self.frames = 0

    def encode(self, frame: av.VideoFrame, keyframe: bool = False) -> list[av.Packet]:
        frame.pict_type = (
            av.video.frame.PictureType.I if keyframe else (av.video.frame.PictureType.NONE)
        )
        packets = list(self.codec.encode(frame))
        self.frames += 1
        for p in packets:
            p.time_base = PACKET_TIME_BASE
        return packets


class FanoutVideoTrack(MediaStreamTrack):
    """One viewer's video: shared H.264 packets (``mode='h264'``) or raw frames."""

    kind = "video"

    def __init__(self, fanout: VideoFanout, max_queue: int = 60) -> None:
        super().__init__()
        self._fanout = fanout
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queue)
        self.mode = "h264"
        self.waiting_keyframe = True
        self.sent = 0
        self.dropped = 0

    def deliver_packet(self, packet: av.Packet) -> None:
        if self.mode != "h264":
            return
        if self.waiting_keyframe:
            if not packet.is_keyframe:
                return
            self.waiting_keyframe = False
        try:
            self._queue.put_nowait(packet)
        except asyncio.QueueFull:
            # A stalled viewer: drop its backlog and restart from a keyframe.
            self.dropped += self._queue.qsize()
            self._drain()
            self.waiting_keyframe = True
            self._fanout.request_keyframe()

    def deliver_frame(self, frame: av.VideoFrame) -> None:
        if self.mode == "h264":
            return
        if self._queue.full():
            self._drain()
            self.dropped += 1
        self._queue.put_nowait(frame)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def request_keyframe(self) -> None:
        """Called for this viewer's PLI/FIR."""
        if self.mode == "h264":
            self._fanout.request_keyframe()

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        self.sent += 1
        return item

    def stop(self) -> None:
        if self.readyState == "live":
            self._fanout.unsubscribe(self)
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
        super().stop()


class VideoFanout:
    """Reads one source, encodes once, feeds every subscribed viewer track."""

    def __init__(
        self,
        source: VideoSource,
        *,
        gop_seconds: float = 1.0,
        bitrate: int | None = None,
        preset: str = "veryfast",
    ) -> None:
        self.source = source
        self.gop_seconds, self.bitrate, self.preset = gop_seconds, bitrate, preset
        self.tracks: set[FanoutVideoTrack] = set()
        self.encoder: H264Encoder | None = None
        self._keyframe = True
        self._last_keyframe_request = 0.0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.frames_read = 0
        self.frames_encoded = 0
        self.packets_out = 0
        self.keyframes = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="video-fanout")

    async def stop(self) -> None:
        for t in list(self.tracks):
            t.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.source.close()

    def subscribe(self) -> FanoutVideoTrack:
        track = FanoutVideoTrack(self)
        self.tracks.add(track)
        self.request_keyframe(force=True)
        self._wake.set()
        return track

    def unsubscribe(self, track: FanoutVideoTrack) -> None:
        self.tracks.discard(track)

    def request_keyframe(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_keyframe_request >= KEYFRAME_MIN_INTERVAL:
            self._last_keyframe_request = now
            self._keyframe = True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self.tracks:  # nobody watching: read nothing, encode nothing
                    self._wake.clear()
                    await self._wake.wait()
                frame = await self.source.read()
                self.frames_read += 1
                h264 = [t for t in self.tracks if t.mode == "h264"]
                for t in self.tracks:
                    if t.mode != "h264":
                        t.deliver_frame(frame)
                if not h264:
                    continue
                if self.encoder is None:
                    self.encoder = H264Encoder(
                        frame.width,
                        frame.height,
                        self.source.fps,
                        gop_seconds=self.gop_seconds,
                        bitrate=self.bitrate,
                        preset=self.preset,
                    )
                keyframe, self._keyframe = self._keyframe, False
                packets = await loop.run_in_executor(None, self.encoder.encode, frame, keyframe)
                self.frames_encoded += 1
                for p in packets:
                    if p.is_keyframe:
                        self.keyframes += 1
                    self.packets_out += 1
                    for t in list(self.tracks):
                        t.deliver_packet(p)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the source died: end every viewer's track
            self.error = exc
            log.error("video source stopped: %s", exc)
            for t in list(self.tracks):
                t.stop()


class FanoutAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, fanout: AudioFanout, max_queue: int = 25) -> None:
        super().__init__()
        self._fanout = fanout
        self._queue: asyncio.Queue[av.AudioFrame | None] = asyncio.Queue(max_queue)

    def deliver(self, frame: av.AudioFrame) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(frame)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        if self.readyState == "live":
            self._fanout.unsubscribe(self)
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
        super().stop()


class AudioFanout:
    def __init__(self, source: AudioSource) -> None:
        self.source = source
        self.tracks: set[FanoutAudioTrack] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audio-fanout")

    async def stop(self) -> None:
        for t in list(self.tracks):
            t.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.source.close()

    def subscribe(self) -> FanoutAudioTrack:
        track = FanoutAudioTrack(self)
        self.tracks.add(track)
        self._wake.set()
        return track

    def unsubscribe(self, track: FanoutAudioTrack) -> None:
        self.tracks.discard(track)

    async def _run(self) -> None:
        try:
            while True:
                if not self.tracks:
                    self._wake.clear()
                    await self._wake.wait()
                frame = await self.source.read()
                for t in list(self.tracks):
                    t.deliver(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("audio source stopped: %s", exc)
            for t in list(self.tracks):
                t.stop()
