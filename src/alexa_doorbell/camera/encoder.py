"""libx264 configured for live video to Alexa: one encoder per camera, IDR on demand."""

from __future__ import annotations

import fractions

import av

from alexa_doorbell.camera.sources import VIDEO_CLOCK

PACKET_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
# Of video at the bitrate: a keyframe's room above the average. 0.1 s keeps a 720p
# keyframe near what a 100 ms queue holds (12.5 kB at 1 Mbit/s); 0.5 s allowed 4x that.
VBV_SECONDS = 0.1


def default_bitrate(width: int, height: int, fps: float) -> int:
    """About 0.07 bit per pixel: 720p30 ~ 1.9 Mbit/s, below Echo Show's b=AS:2500."""
    return int(min(2_400_000, max(300_000, width * height * fps * 0.07)))


class H264Encoder:
    """libx264 configured for live video to Alexa: 42e01f-compatible, IDR on demand.

    The bitrate can change while it runs (:meth:`set_bitrate`). x264 is rate
    controlled with a VBV buffer (maxrate = the bitrate, 0.1 s of it): a
    keyframe cannot burst far past what an uplink's queue holds, and a lower bitrate
    takes effect on the next frame (x264 reconfigures only with a VBV). A higher one
    cannot (maxrate is fixed once x264 is open, and x264's average follows a raise
    over many seconds): the encoder is opened again at the next keyframe, which the
    GOP brings within a second anyway.
    """

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
        crf: int | None = None,
        vbv_seconds: float = VBV_SECONDS,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.preset, self.threads = preset, threads
        # crf: constant quality, ``bitrate`` only its cap (the keyframe bridge: a picture
        # as good as the camera's from its first frame, not a starved one at a ramp's start).
        self.crf, self.vbv_seconds = crf, vbv_seconds
        self.gop = max(1, round(gop_seconds * fps))
        self._pending: int | None = None
        self._since_keyframe = 0
        self.frames = 0
        self.reopened = 0
        self.codec = self._open(bitrate or default_bitrate(width, height, fps))

    def _open(self, bitrate: int) -> av.CodecContext:
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height = self.width, self.height
        codec.pix_fmt = "yuv420p"
        codec.time_base = PACKET_TIME_BASE
        codec.framerate = fractions.Fraction(round(self.fps * 1000), 1000)
        if self.crf is None:
            codec.bit_rate = bitrate
        codec.profile = "Baseline"  # x264 baseline = constrained baseline (42e0xx)
        codec.gop_size = self.gop
        codec.thread_count = self.threads
        gop = self.gop
        codec.options = {
            "preset": self.preset,
            "tune": "zerolatency",
            "level": "3.1" if self.width * self.height <= 1280 * 720 else "4.0",
            "forced-idr": "1",
            "maxrate": str(bitrate),
            "bufsize": str(int(bitrate * self.vbv_seconds)),
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1",
        }
        if self.crf is not None:
            codec.options = {**codec.options, "crf": str(self.crf)}
        self.max_bitrate = bitrate  # what this opening can reach
        return codec

    @property
    def bitrate(self) -> int:
        """The bitrate aimed at (a raise counts from the next keyframe)."""
        return self._pending or int(self.codec.bit_rate)

    def set_bitrate(self, bitrate: int) -> None:
        """Lower: from the next frame on. Higher: from the next keyframe."""
        bitrate = max(50_000, int(bitrate))
        if bitrate <= self.max_bitrate:
            self.codec.bit_rate = bitrate
        # Reopened at the next keyframe: maxrate follows (down too, so the VBV stays
        # tight for a low uplink).
        self._pending = bitrate if bitrate != self.max_bitrate else None

    def encode(self, frame: av.VideoFrame, keyframe: bool = False) -> list[av.Packet]:
        due = keyframe or self._since_keyframe >= self.gop - 1  # x264 makes one now
        if self._pending is not None and due:
            self.codec = self._open(self._pending)  # starts with an IDR
            self._pending, keyframe = None, True
            self.reopened += 1
        frame.pict_type = (
            av.video.frame.PictureType.I if keyframe else (av.video.frame.PictureType.NONE)
        )
        packets = list(self.codec.encode(frame))
        self.frames += 1
        self._since_keyframe += 1
        for p in packets:
            p.time_base = PACKET_TIME_BASE
            if p.is_keyframe:
                self._since_keyframe = 0
        return packets
