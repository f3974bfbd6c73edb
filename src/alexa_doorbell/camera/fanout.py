"""Encode once, packetize once, send to many.

One :class:`VideoFanout` per camera reads the source and encodes each frame
once with libx264 (constrained baseline, no B-frames, short GOP, a live-video
preset), or passes a suitable H.264 camera stream through untouched. Each
access unit is cut into RTP payloads once (:class:`EncodedFrame`); every H.264
viewer's :class:`FanoutVideoTrack` hands aiortc that same object and the
viewer's sender, given a :class:`SharedPayloadEncoder`, only adds its own RTP
header and SRTP. Keyframe requests (PLI/FIR from any viewer, a new viewer
joining) reach the shared encoder. Viewers that negotiated another codec (VP8)
get raw frames and aiortc encodes for them.

Audio works the same way (``audio_fanout.py``); what every viewer shares, the
payloads and the fan-out's life cycle, is in ``shared.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from alexa_doorbell.camera import rtc_hooks
from alexa_doorbell.camera.audio_fanout import SHARED_AUDIO_CODECS, AudioFanout
from alexa_doorbell.camera.bitrate import UplinkBitrate, ViewerPath, watch_sender
from alexa_doorbell.camera.bridge import GopCache, KeyframeBridge
from alexa_doorbell.camera.encoder import PACKET_TIME_BASE, H264Encoder, default_bitrate
from alexa_doorbell.camera.joins import BridgedJoins
from alexa_doorbell.camera.pictures import PictureSource, PlainPictures
from alexa_doorbell.camera.shared import (
    EncodedFrame,
    Fanout,
    SharedPayloadEncoder,
    packetize_h264,
    share_payloads,
)
from alexa_doorbell.camera.sources import VideoSource

__all__ = [
    "PACKET_TIME_BASE",
    "SHARED_AUDIO_CODECS",
    "AudioFanout",
    "EncodedFrame",
    "FanoutVideoTrack",
    "H264Encoder",
    "SharedPayloadEncoder",
    "VideoFanout",
    "default_bitrate",
    "share_payloads",
]

log = logging.getLogger(__name__)
KEYFRAME_MIN_INTERVAL = 0.5  # seconds: a PLI storm from many viewers costs one IDR
PASSTHROUGH_SLACK = 1.15  # a camera's stream this far over the uplink's bitrate is re-encoded


class FanoutVideoTrack(MediaStreamTrack):
    """One viewer's video: shared H.264 packets (``mode='h264'``) or raw frames."""

    kind = "video"

    def __init__(self, fanout: VideoFanout, max_queue: int = 60) -> None:
        super().__init__()
        self._fanout = fanout
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queue)
        self._mode = "h264"
        self.waiting_keyframe = True
        # Joined a passed-through camera between its IDRs: the bridge's stream (an IDR
        # of the current picture, then re-encoded) until the camera's next IDR.
        self.bridged = False
        self.sent = 0
        self.dropped = 0
        self.path: ViewerPath | None = None  # an H.264 viewer's path, from its reports
        self._watch: asyncio.Task[None] | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode != self._mode:
            # What was queued while the answer was negotiated is of the old kind: a
            # VP8 sender handed an H.264 packet stops sending for good.
            self._drain()
            self.waiting_keyframe = True
            self.bridged = False  # a VP8 viewer gets decoded pictures, never the bridge
        self._mode = mode

    def deliver_packet(self, packet: EncodedFrame, *, bridged: bool = False) -> None:
        if self.mode != "h264":
            return
        if bridged != self.bridged:
            if bridged or not packet.is_keyframe:
                return
            self.bridged = False  # the camera's own IDR: its stream from here on
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
            self._fanout.request_keyframe(track=self)

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

    def adapt_to(self, sender: RTCRtpSender, offer_kbps: int | None = None) -> None:
        """Keep the camera's bitrate within what this viewer's path carries: at most
        its offer's ``b=AS``, lowered and raised from its receiver reports."""
        if self.path is None:
            self.path = self._fanout.uplink.add_viewer(offer_kbps)
            self._watch = asyncio.create_task(watch_sender(sender, self.path))
            rtc_hooks.limit_retransmissions(sender, self.path.allow_retransmission)

    def request_keyframe(self) -> None:
        """Called for this viewer's PLI/FIR."""
        if self.mode == "h264":
            self._fanout.request_keyframe(track=self)

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
            if self._watch is not None:
                self._watch.cancel()
            if self.path is not None:
                self._fanout.uplink.remove_viewer(self.path)
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
        super().stop()


class VideoFanout(Fanout):
    """Reads one source, encodes (or passes through) once, feeds every viewer track."""

    name = "video-fanout"

    def __init__(
        self,
        source: VideoSource | PictureSource,
        *,
        gop_seconds: float = 1.0,
        bitrate: int | None = None,
        preset: str = "veryfast",
        max_upload_kbps: int | None = None,
        adapt_bitrate: bool = True,
        passthrough_over_budget: str = "transcode",
    ) -> None:
        picture = PlainPictures(source) if isinstance(source, VideoSource) else source
        super().__init__(picture)
        self.source: PictureSource = picture
        self.gop_seconds, self.bitrate, self.preset = gop_seconds, bitrate, preset
        # One bitrate for every viewer (the stream is encoded once): the lowest the
        # budget and the viewers' paths allow (camera/bitrate.py).
        ceiling = bitrate or default_bitrate(picture.width, picture.height, picture.fps)
        self.uplink = UplinkBitrate(
            ceiling,
            self._set_bitrate,
            budget=max_upload_kbps * 1000 if max_upload_kbps else None,
            adapt=adapt_bitrate,
        )
        self.passthrough_over_budget = passthrough_over_budget
        self.transcoding = False  # a passthrough camera's stream re-encoded to fit
        self._passthrough_bits: list[tuple[float, int]] = []  # (time, bits) of the last 2 s
        self._said_passthrough = False
        self.tracks: set[FanoutVideoTrack] = set()
        self.encoder: H264Encoder | None = None
        self._decoder: Any = None  # passthrough with a VP8 viewer: H.264 decoded for it
        self._keyframe = True
        self._last_keyframe_request = 0.0
        self._generation = picture.generation
        self.frames_read = 0
        self.frames_encoded = 0
        self.frames_decoded = 0
        self.packets_out = 0
        self.keyframes = 0
        # Passthrough: the camera's GOP so far, and the bridge that makes a joining
        # viewer's first picture from it (camera/joins.py, camera/bridge.py).
        self.joins = BridgedJoins(
            size=lambda: (self.source.width, self.source.height, self.source.fps),
            # At most what the camera's own stream takes (its viewers get that anyway),
            # at least what the uplink allows an encoder now.
            bitrate=lambda: max(self.uplink.target, self.passthrough_bitrate() or 0),
            preset=preset,
        )
        self._hold_until = 0.0  # a press: the bridge decodes, the encoder is ready
        self._latest: tuple[float, av.VideoFrame] | None = None  # the camera's last picture
        self.error: BaseException | None = None
        # Called with each decoded picture of the camera (not the slate): the seam for
        # detectors (inputs/frames.py); only while the source is open, i.e. watched.
        self.frame_taps: list[Callable[[av.VideoFrame], None]] = []

    @property
    def passthrough(self) -> bool:
        return self.source.passthrough and not self.transcoding

    @property
    def gop(self) -> GopCache:
        return self.joins.gop

    @property
    def bridge(self) -> KeyframeBridge | None:
        return self.joins.bridge

    @property
    def bridge_joins(self) -> int:
        return self.joins.joins

    @property
    def keyframe_requests_unmet(self) -> int:
        """Keyframe needs before the camera's first IDR since it opened (none to bridge)."""
        return self.joins.unmet

    def _set_bitrate(self, bitrate: int) -> None:
        """The uplink's new bitrate: the encoder's from its next frame (a raise: its next
        keyframe); a passthrough stream over it is re-encoded or kept (the setting)."""
        if self.encoder is not None:
            self.encoder.set_bitrate(bitrate)
        self._fit_passthrough()

    def _fit_passthrough(self) -> None:
        """A camera's own stream over the budget, a viewer's b=AS or a congested path:
        re-encoded to fit, or kept and said once (passthrough_over_budget)."""
        if not self.source.passthrough or self.transcoding:
            return
        stream, limit = self.passthrough_bitrate(), self.uplink.passthrough_limit()
        if stream is None or limit is None or stream <= limit * PASSTHROUGH_SLACK:
            return
        bitrate = limit
        if self.passthrough_over_budget == "transcode":
            self.transcoding = True
            self._keyframe = True
            log.warning(
                "camera stream at %d kbit/s is over what its viewers' uplink carries "
                "(%d kbit/s): re-encoding it (passthrough cannot change a camera's "
                'bitrate; passthrough_over_budget = "keep" sends it as it is)',
                stream // 1000,
                bitrate // 1000,
            )
        elif not self._said_passthrough:
            self._said_passthrough = True
            log.warning(
                "camera stream at %d kbit/s is over what its viewers' uplink carries "
                "(%d kbit/s) and passthrough cannot change a camera's bitrate: lower the "
                'camera\'s own bitrate or set passthrough_over_budget = "transcode"',
                stream // 1000,
                bitrate // 1000,
            )

    def passthrough_bitrate(self) -> int | None:
        """The camera's own stream over the last 2 s (bit/s); None before 1 s of it."""
        bits = self._passthrough_bits
        if len(bits) < 2 or bits[-1][0] - bits[0][0] < 1.0:
            return None
        return int(sum(b for _, b in bits[1:]) / (bits[-1][0] - bits[0][0]))

    async def _close_source(self) -> None:
        await self.source.close()

    def subscribe(self) -> FanoutVideoTrack:
        track = FanoutVideoTrack(self)
        self.tracks.add(track)
        self.request_keyframe(force=True, track=track)
        self._wake.set()
        return track

    def request_keyframe(self, force: bool = False, track: FanoutVideoTrack | None = None) -> None:
        if self.passthrough:
            # A camera's keyframes cannot be forced through RTSP: a viewer that needs
            # one (new, stalled, PLI) starts on the bridge's (or waits for the camera's).
            if track is not None:
                self.joins.join(track, self.tracks)
            return
        now = time.monotonic()
        if force or now - self._last_keyframe_request >= KEYFRAME_MIN_INTERVAL:
            self._last_keyframe_request = now
            self._keyframe = True

    def hold(self, seconds: float) -> None:
        """A doorbell press: for ``seconds``, keep what the view will need running (the
        source open; the encoder made, or the bridge decoding), so the view Alexa opens
        after the announcement starts as a warm join does."""
        self._hold_until = max(self._hold_until, time.monotonic() + seconds)
        hold = getattr(self.source, "hold", None)
        if hold is not None:
            hold(seconds)
        self._wake.set()

    async def picture(self, timeout: float = 3.0) -> av.VideoFrame | None:
        """The camera's current picture (not the slate), decoded once: what a press's
        snapshot shows. None when none comes within ``timeout``."""
        asked = time.monotonic()
        deadline = asked + timeout
        while time.monotonic() < deadline:
            if self.passthrough:
                frame = await self.joins.picture(self.tracks)
                if frame is not None:
                    self._latest = (time.monotonic(), frame)
            latest = self._latest
            if latest is not None and latest[0] >= asked - 0.5 and self.source.live:
                return latest[1]
            await asyncio.sleep(0.05)
        return None

    def _encode(self, frame: av.VideoFrame, keyframe: bool) -> list[EncodedFrame]:
        assert self.encoder is not None
        return [packetize_h264(p) for p in self.encoder.encode(frame, keyframe)]

    def _deliver(self, encoded: list[EncodedFrame]) -> None:
        for e in encoded:
            if e.is_keyframe:
                self.keyframes += 1
            self.packets_out += 1
            for t in list(self.tracks):
                t.deliver_packet(e)

    async def _run(self) -> None:
        try:
            while True:
                if not self.tracks:
                    self._decoder = None
                    self.transcoding = False  # the next viewers try passthrough again
                    self._said_passthrough = False
                    if not self.source.keep_reading():
                        await self.source.release()  # nobody watching: nothing open
                        self._wake.clear()
                        await self._wake.wait()
                        continue
                item = await self.source.next()
                if self.source.generation != self._generation:
                    self._restart_stream()
                if item is None:  # a warm source demuxed for nobody
                    continue
                self.frames_read += 1
                if isinstance(item, av.Packet):
                    await self._pass_through(item)
                else:
                    await self._encode_frame(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a source failure: end every viewer's track
            self.error = exc
            log.exception("video fan-out stopped: %s", exc)
            for t in list(self.tracks):
                t.stop()

    def _restart_stream(self) -> None:
        """The source changed (reopened, or the slate): a new stream for every viewer,
        each starting at a keyframe (a P-frame of the old one would be garbage)."""
        self._generation = self.source.generation
        self._keyframe = True
        self._decoder = None
        self.joins.reset(self.tracks)
        for t in self.tracks:
            t.waiting_keyframe = True

    async def _encode_frame(self, frame: av.VideoFrame) -> None:
        if self.source.live:
            self._latest = (time.monotonic(), frame)
            for tap in self.frame_taps:
                tap(frame)
        h264 = False
        for t in self.tracks:
            if t.mode == "h264":
                h264 = True
            else:
                t.deliver_frame(frame)
        enc = self.encoder
        if not h264 and (time.monotonic() >= self._hold_until or enc is not None):
            return
        if enc is None or (enc.width, enc.height) != (frame.width, frame.height):
            # The first frame, or the slate at a passthrough camera's own size.
            self.encoder = H264Encoder(
                frame.width,
                frame.height,
                self.source.fps,
                gop_seconds=self.gop_seconds,
                bitrate=self.uplink.target,
                preset=self.preset,
            )
            self._keyframe = True
        if not h264:
            return  # a press: the encoder is ready for the view, nothing is encoded yet
        keyframe, self._keyframe = self._keyframe, False
        # Encoding and packetizing in one worker call: one thread hop per frame.
        loop = asyncio.get_running_loop()
        encoded = await loop.run_in_executor(None, self._encode, frame, keyframe)
        self.frames_encoded += 1
        self._deliver(encoded)

    async def _pass_through(self, packet: av.Packet) -> None:
        now = time.monotonic()
        self._passthrough_bits.append((now, packet.size * 8))
        while now - self._passthrough_bits[0][0] > 2.0:
            self._passthrough_bits.pop(0)
        if not self.tracks:  # kept for the next viewer (decoded while a press holds)
            await self.joins.packet(packet, (), holding=time.monotonic() < self._hold_until)
            return
        if packet.is_keyframe:  # about once a second: does the stream still fit?
            self._fit_passthrough()
        loop = asyncio.get_running_loop()
        if self.transcoding:  # over the uplink's bitrate: decoded and encoded to fit
            self.joins.gop.add(packet)
            for frame in await loop.run_in_executor(None, self._decode, packet):
                if packet.pts is not None:
                    frame.pts, frame.time_base = packet.pts, PACKET_TIME_BASE
                await self._encode_frame(frame)
            return
        self._deliver([packetize_h264(packet)])  # bridged viewers switch at its IDR
        holding = time.monotonic() < self._hold_until
        await self.joins.packet(packet, self.tracks, holding=holding)
        raw = [t for t in self.tracks if t.mode != "h264"]
        if not raw:
            self._decoder = None
            return
        for frame in await loop.run_in_executor(None, self._decode, packet):
            for t in raw:
                t.deliver_frame(frame)

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        if self._decoder is None:  # from the GOP's IDR: a picture now, not at the next
            self._decoder = av.CodecContext.create("h264", "r")
            for earlier in self.joins.gop.packets[:-1]:
                with contextlib.suppress(av.FFmpegError):
                    self._decoder.decode(earlier)
        try:
            frames = list(self._decoder.decode(packet))
        except av.FFmpegError:
            return []  # joined mid-GOP: pictures come with the next IDR
        self.frames_decoded += len(frames)
        size = (self.source.width, self.source.height, "yuv420p")
        same = lambda f: (f.width, f.height, f.format.name) == size  # noqa: E731
        return [f if same(f) else f.reformat(*size) for f in frames]
