"""libx264 configured for live video to Alexa: one encoder per camera, IDR on demand."""

from __future__ import annotations

import fractions

import av

from alexa_doorbell.camera.sources import VIDEO_CLOCK

PACKET_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


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
        self.width, self.height = width, height
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
