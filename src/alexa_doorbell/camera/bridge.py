"""A viewer joining a passed-through camera between its keyframes sees a picture at once.

    gop = GopCache()
    gop.add(packet)                               # every access unit of the camera
    bridge = KeyframeBridge(640, 360, 15, bitrate=800_000)
    picture = bridge.catch_up(gop)                # the camera's current picture
    first = bridge.encode(picture, keyframe=True) # an IDR of it, for the new viewer
    ...                                           # each next camera frame: catch_up, encode
    bridge.close()                                # at the camera's next IDR

A camera sends a keyframe every 1-4 s and RTSP cannot ask it for one, so a viewer that
joins between two would see nothing until the next. The fan-out keeps the camera's
access units since its last IDR (:class:`GopCache`, no decoding); a join decodes them
(the CPU of at most one GOP, decoding being many times faster than real time), encodes
the last picture as an IDR at the camera's size, and re-encodes each following camera
picture for the bridged viewers until the camera's own IDR, where they switch to its
stream (SPS and PPS in band, so the viewer's decoder starts over cleanly). Pure media
code: the fan-out decides who is bridged and runs these calls off the event loop.
"""

from __future__ import annotations

import time
from typing import Any

import av

from alexa_doorbell.camera.encoder import H264Encoder
from alexa_doorbell.camera.shared import EncodedFrame, packetize_h264

# A GOP longer than this (10 s at 30 fps) is not kept: a join then waits for the IDR.
MAX_GOP_PACKETS = 300
# The bridge's own keyframes are the forced ones (a join); the camera's IDR ends it first.
BRIDGE_GOP_SECONDS = 30.0
# Constant quality, capped at ``bitrate`` with 1 s of VBV: the first picture a viewer
# sees is as good as the camera's own (a bitrate ramp's start left its stamp unreadable).
BRIDGE_CRF = 23
BRIDGE_VBV_SECONDS = 1.0


class GopCache:
    """The camera's access units since its last IDR, the IDR first (``av.Packet``)."""

    def __init__(self, max_packets: int = MAX_GOP_PACKETS) -> None:
        self.max_packets = max_packets
        self.packets: list[av.Packet] = []
        self.number = 0  # counts GOPs: a bridge decoding an older one starts over

    def add(self, packet: av.Packet) -> None:
        if packet.is_keyframe:
            self.packets = [packet]
            self.number += 1
        elif self.packets:
            if len(self.packets) >= self.max_packets:
                self.packets = []  # too long to decode at a join: wait for the next IDR
            else:
                self.packets.append(packet)

    def clear(self) -> None:
        """The stream changed (reopened, the slate): what is kept no longer decodes."""
        self.packets = []
        self.number += 1

    @property
    def usable(self) -> bool:
        return bool(self.packets)

    @property
    def at_keyframe(self) -> bool:
        """Only the IDR so far: a new viewer can start on the camera's own stream."""
        return len(self.packets) == 1


class KeyframeBridge:
    """Decodes the camera's GOP to its current picture and re-encodes from there."""

    def __init__(
        self, width: int, height: int, fps: float, *, bitrate: int, preset: str = "veryfast"
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.bitrate, self.preset = bitrate, preset
        self._decoder: Any = None
        self._gop = -1  # GopCache.number the decoder is on
        self._done = 0  # packets of that GOP decoded
        self._encoder: H264Encoder | None = None
        self.latest: av.VideoFrame | None = None
        self._last_pts: int | None = None  # of the last frame encoded
        self.frames_decoded = 0
        self.frames_encoded = 0
        self.decode_errors = 0
        self.cpu_seconds = 0.0  # thread time spent decoding and encoding

    def catch_up(self, gop: GopCache) -> av.VideoFrame | None:
        """Decode what of ``gop`` is not decoded yet; the latest picture (None: none yet)."""
        started = time.thread_time()
        packets = list(gop.packets)
        if gop.number != self._gop:  # a new GOP: a fresh decoder from its IDR
            self._decoder = av.CodecContext.create("h264", "r")
            self._gop, self._done, self.latest = gop.number, 0, None
        for packet in packets[self._done :]:
            try:
                frames = self._decoder.decode(packet)
            except av.FFmpegError:
                self.decode_errors += 1
                frames = []
            for frame in frames:
                self.frames_decoded += 1
                frame.pts, frame.time_base = packet.pts, packet.time_base
                self.latest = frame
        self._done = len(packets)
        self.cpu_seconds += time.thread_time() - started
        return self.latest

    def encode(self, frame: av.VideoFrame, keyframe: bool = False) -> list[EncodedFrame]:
        """``frame`` at the camera's size, as H.264 for the bridged viewers."""
        started = time.thread_time()
        if frame.format.name != "yuv420p" or (frame.width, frame.height) != (
            self.width,
            self.height,
        ):
            pts, time_base = frame.pts, frame.time_base
            frame = frame.reformat(self.width, self.height, "yuv420p")
            frame.pts, frame.time_base = pts, time_base
        if frame.pts is not None and self._last_pts is not None and frame.pts <= self._last_pts:
            # A join's IDR of a picture already sent as a P-frame: one tick later, as two
            # frames with one RTP timestamp would be merged into garbage by the viewer.
            frame.pts = self._last_pts + 1
        self._last_pts = frame.pts
        if self._encoder is None:
            self._encoder = H264Encoder(
                self.width,
                self.height,
                self.fps,
                gop_seconds=BRIDGE_GOP_SECONDS,
                bitrate=self.bitrate,
                preset=self.preset,
                threads=1,  # short-lived; and so cpu_seconds (this thread's time) is all of it
                crf=BRIDGE_CRF,
                vbv_seconds=BRIDGE_VBV_SECONDS,
            )
            keyframe = True
        out = [packetize_h264(p) for p in self._encoder.encode(frame, keyframe)]
        self.frames_encoded += 1
        self.cpu_seconds += time.thread_time() - started
        return out

    def step(self, gop: GopCache, *, encode: bool, keyframe: bool = False) -> list[EncodedFrame]:
        """One worker call: catch up with ``gop`` and, for bridged viewers, encode its
        latest picture (``keyframe``: as an IDR, for a viewer that just joined)."""
        frame = self.catch_up(gop)
        if not encode or frame is None:
            return []
        return self.encode(frame, keyframe)

    def end_encoding(self) -> None:
        """Nobody is bridged any more: the encoder goes (the decoder may stay warm)."""
        self._encoder, self._last_pts = None, None

    def close(self) -> None:
        self._encoder, self._last_pts = None, None
        self._decoder = None
        self._gop, self._done, self.latest = -1, 0, None
