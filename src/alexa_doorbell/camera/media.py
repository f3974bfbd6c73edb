"""Media sources and sinks (PyAV).

Video sources yield ``av.VideoFrame`` in real time: the test pattern, a file
(looped), an RTSP camera or a local webcam. An H.264 camera (or file) whose
profile suits Alexa is not decoded at all: :class:`H264PassthroughSource`
yields its access units for the fan-out to send as they are. Audio sources yield 20 ms
``av.AudioFrame`` (s16, mono, 48 kHz): silence, a tone, a file (looped) or
the microphone. Sinks take the talk-back audio a viewer sends to the camera.
Blocking demux/decode runs in a worker thread so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import re
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np

from alexa_doorbell.camera.h264 import AccessUnitWriter, SpsInfo, transcode_reason
from alexa_doorbell.camera.pattern import TestPattern

log = logging.getLogger(__name__)

AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
AUDIO_SAMPLES = int(AUDIO_RATE * AUDIO_PTIME)
VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


class MediaSourceError(RuntimeError):
    """A source that cannot be opened or read; the message says what to fix."""


class _Pacer:
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

    async def read(self) -> av.VideoFrame:
        raise NotImplementedError

    async def read_packet(self) -> av.Packet:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TestPatternSource(VideoSource):
    __test__ = False

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.pattern = TestPattern(width, height)
        self.counter = 0
        self._pacer = _Pacer(1 / fps)

    async def read(self) -> av.VideoFrame:
        await self._pacer.wait()
        self.counter += 1
        frame = av.VideoFrame.from_ndarray(self.pattern.render(self.counter), format="yuv420p")
        frame.pts = int((time.monotonic() - self._pacer.start) * VIDEO_CLOCK)
        frame.time_base = VIDEO_TIME_BASE
        return frame


class ContainerVideoSource(VideoSource):
    """A file (looped, paced by its timestamps), an RTSP URL or a webcam device."""

    def __init__(
        self,
        url: str,
        width: int,
        height: int,
        fps: float,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        loop: bool = False,
        live: bool = False,
    ) -> None:
        self.url, self.format, self.options = url, format, options or {}
        self.width, self.height, self.fps = width, height, fps
        self.loop, self.live = loop, live
        self._container: Any = None
        self._frames: Any = None
        self._start = time.monotonic()  # pacing origin; moves when we fall behind
        self._epoch = self._start  # pts origin; never moves, so pts only grow
        self._offset = 0.0  # seconds added per loop of a file
        self._last = 0.0
        # A read runs in a worker thread: closing the container under it crashes FFmpeg.
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        try:
            self._container = av.open(
                self.url, format=self.format, options=self.options, timeout=(5.0, 5.0)
            )
        except (av.FFmpegError, OSError) as exc:
            where = redact_url(self.url)
            raise MediaSourceError(f"cannot open video source {where!r}: {exc}") from None
        if not self._container.streams.video:
            raise MediaSourceError(f"{redact_url(self.url)!r} has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)

    def _next(self) -> tuple[av.VideoFrame, float]:
        while True:
            try:
                frame = next(self._frames)
            except StopIteration:
                if not self.loop:
                    raise MediaSourceError(f"video source {redact_url(self.url)!r} ended") from None
                self._offset = self._last + 1 / self.fps
                self._container.close()
                self._open()
                continue
            except av.FFmpegError as exc:
                where = redact_url(self.url)
                raise MediaSourceError(f"video source {where!r} failed: {exc}") from None
            t = float(frame.time) if frame.time is not None else self._last + 1 / self.fps
            t += self._offset
            self._last = t
            if (
                frame.width != self.width
                or frame.height != self.height
                or (frame.format.name != "yuv420p")
            ):
                frame = frame.reformat(self.width, self.height, "yuv420p")
            return frame, t

    def _locked_next(self) -> tuple[av.VideoFrame, float]:
        with self._lock:
            if self._container is None:
                raise MediaSourceError("video source closed")
            return self._next()

    async def read(self) -> av.VideoFrame:
        frame, t = await asyncio.to_thread(self._locked_next)
        if not self.live:  # files: play at their own pace
            delay = self._start + t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:
                self._start -= delay
        frame.pts = int((time.monotonic() - self._epoch) * VIDEO_CLOCK)
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None


def redact_url(url: str) -> str:
    """A URL fit for logs: ``rtsp://user:secret@cam/x`` -> ``rtsp://***@cam/x``."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", url)


class H264PassthroughSource(VideoSource):
    """H.264 from an RTSP camera or a file, demuxed but never decoded.

    ``read_packet()`` yields one Annex B access unit per frame with SPS/PPS in
    front of every IDR (:class:`~alexa_doorbell.camera.h264.AccessUnitWriter`),
    ``pts`` in 1/90000 s on the agent's clock and ``is_keyframe`` set on IDRs.
    Its keyframes come when the camera sends them: set the camera's I-frame
    interval to 1-2 s so new viewers see a picture quickly.
    """

    passthrough = True
    PROBE_PACKETS = 300  # how far to look for in-band SPS when the SDP/extradata has none

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        loop: bool = False,
        live: bool = False,
    ) -> None:
        self.url, self.format, self.options = url, format, options or {}
        self.loop, self.live = loop, live
        self._container: Any = None
        self._pending: list[av.Packet] = []
        self._start = time.monotonic()
        self._epoch = self._start
        self._offset: float | None = None  # source seconds -> agent seconds
        self._loop_offset = 0.0
        self._last: float | None = None
        self._decoder: Any = None
        self.reordered = 0
        self._lock = threading.Lock()  # as ContainerVideoSource: no close during a read
        self._open()
        stream = self._container.streams.video[0]
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self.has_b_frames = bool(stream.codec_context.has_b_frames)
        if self.writer.sps is None:  # parameter sets only in band: find the first SPS
            while len(self._pending) < self.PROBE_PACKETS and self.writer.sps is None:
                packet = next(self._packets, None)
                if packet is None:
                    break
                if packet.size:
                    self.writer.write(bytes(packet))
                    self._pending.append(packet)

    def _open(self) -> None:
        try:
            self._container = av.open(
                self.url, format=self.format, options=self.options, timeout=(5.0, 5.0)
            )
        except (av.FFmpegError, OSError) as exc:
            raise MediaSourceError(
                f"cannot open video source {redact_url(self.url)!r}: {exc}"
            ) from None
        if not self._container.streams.video:
            self.close()
            raise MediaSourceError(f"{redact_url(self.url)!r} has no video stream")
        stream = self._container.streams.video[0]
        if stream.codec_context.name != "h264":
            self.close()
            raise MediaSourceError(f"video is {stream.codec_context.name}, not H.264")
        self._time_base = stream.time_base
        self.writer = AccessUnitWriter(stream.codec_context.extradata)
        self._packets = iter(self._container.demux(stream))

    @property
    def sps(self) -> SpsInfo | None:
        return self.writer.sps_info

    def transcode_reason(self, policy: str = "auto") -> str | None:
        """Why this stream cannot pass through (None: it can)."""
        return transcode_reason(
            self.sps,
            has_b_frames=self.has_b_frames,
            width=self.width,
            height=self.height,
            policy=policy,
        )

    def _next(self) -> tuple[bytes, bool, float]:
        while True:
            if self._pending:
                packet = self._pending.pop(0)
            else:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    if not self.loop:
                        raise MediaSourceError(
                            f"video source {redact_url(self.url)!r} ended"
                        ) from None
                    self._loop_offset = (self._last or 0.0) + 1 / self.fps
                    self._container.close()
                    self._open()
                    continue
                except av.FFmpegError as exc:
                    raise MediaSourceError(
                        f"video source {redact_url(self.url)!r} failed: {exc}"
                    ) from None
            if not packet.size:  # the demuxer's end-of-stream marker
                continue
            data, idr = self.writer.write(bytes(packet))
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None:
                t = float(ts * self._time_base) + self._loop_offset
            else:  # e.g. RTSP's first packet, before the RTP clock is known
                t = self._last + 1 / self.fps if self._last is not None else 0.0
            if self._last is not None and t < self._last:
                self.reordered += 1  # B-frames the stream's parameters did not announce
                if self.reordered == 1:
                    log.warning(
                        "%s reorders pictures (B-frames): set passthrough = 'never' for it",
                        redact_url(self.url),
                    )
            self._last = t
            return data, idr, t

    def _locked_next(self) -> tuple[bytes, bool, float]:
        with self._lock:
            if self._container is None:
                raise MediaSourceError("video source closed")
            return self._next()

    async def read_packet(self) -> av.Packet:
        data, idr, t = await asyncio.to_thread(self._locked_next)
        now = time.monotonic()
        if not self.live:  # files: play at their own pace
            delay = self._start + t - now
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:
                self._start -= delay
        # Source time on the agent's clock; re-anchored when the source jumps
        # (camera restart, clock wrap) so RTP timestamps keep advancing.
        agent_t = (time.monotonic() - self._epoch) if self._offset is None else t + self._offset
        if self._offset is None or abs(agent_t - (time.monotonic() - self._epoch)) > 5:
            self._offset = time.monotonic() - self._epoch - t
            agent_t = t + self._offset
        packet = av.Packet(data)
        packet.pts = packet.dts = int(agent_t * VIDEO_CLOCK)
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = idr
        return packet

    async def read(self) -> av.VideoFrame:
        """Decoded frames, for callers that want pictures rather than packets."""
        while True:
            packet = await self.read_packet()
            if self._decoder is None:
                self._decoder = av.CodecContext.create("h264", "r")
            frames = self._decoder.decode(packet)
            if frames:
                frame = frames[0]
                frame.pts, frame.time_base = packet.pts, VIDEO_TIME_BASE
                return frame

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None


def webcam_input(spec: str) -> tuple[str, str]:
    """(url, format) for ``webcam`` / ``webcam:<device>`` on this OS."""
    device = spec.partition(":")[2]
    if sys.platform.startswith("linux"):
        return device or "/dev/video0", "v4l2"
    if sys.platform == "darwin":
        return device or "0", "avfoundation"
    if sys.platform.startswith("win"):
        return f"video={device or 'Integrated Camera'}", "dshow"
    raise MediaSourceError(f"no webcam support on {sys.platform}")


def _try_passthrough(spec: str, policy: str, **kwargs: Any) -> VideoSource | None:
    """The H.264 stream as it is when ``policy`` and its profile allow, else None."""
    if policy == "never":
        return None
    try:
        src = H264PassthroughSource(spec, **kwargs)
    except MediaSourceError as exc:
        log.info("transcoding %s: %s", redact_url(spec), exc)
        return None
    reason = src.transcode_reason(policy)
    if reason is not None:
        src.close()
        log.info("transcoding %s: %s", redact_url(spec), reason)
        return None
    log.info(
        "passing %s through without re-encoding (H.264 %s, %dx%d)",
        redact_url(spec),
        src.sps.profile_level_id if src.sps else "?",
        src.width,
        src.height,
    )
    return src


def open_video_source(
    spec: str, width: int, height: int, fps: float, *, passthrough: str = "auto"
) -> VideoSource:
    """``testsrc``, a file path, ``rtsp://...`` or ``webcam[:device]``.

    ``passthrough``: ``auto`` sends an RTSP camera's (or file's) H.264 as it is
    when its profile suits Alexa (see :func:`~alexa_doorbell.camera.h264.transcode_reason`);
    ``never`` always decodes and re-encodes at ``width`` x ``height``.
    """
    if spec in ("testsrc", "test", "pattern"):
        return TestPatternSource(width, height, fps)
    if spec.startswith(("rtsp://", "rtsps://")):
        # TCP: no lost packets to conceal. 1 s of probing (FFmpeg's default is
        # 5 s) is enough to learn the picture size and whether B-frames come.
        opts = {"rtsp_transport": "tcp", "analyzeduration": "1000000"}
        src = _try_passthrough(spec, passthrough, options=opts, live=True)
        return src or ContainerVideoSource(spec, width, height, fps, options=opts, live=True)
    if spec == "webcam" or spec.startswith("webcam:"):
        url, fmt = webcam_input(spec)
        opts = {"video_size": f"{width}x{height}", "framerate": str(int(fps))}
        return ContainerVideoSource(url, width, height, fps, format=fmt, options=opts, live=True)
    if not Path(spec).exists():
        raise MediaSourceError(
            f"video source {spec!r} is not testsrc, rtsp://..., webcam[:device] or an existing file"
        )
    src = _try_passthrough(spec, passthrough, loop=True)
    return src or ContainerVideoSource(spec, width, height, fps, loop=True)


# -- audio -------------------------------------------------------------------


def _audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = AUDIO_RATE
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, AUDIO_RATE)
    return frame


class AudioSource:
    """Yields 20 ms s16 mono 48 kHz frames in real time."""

    # True for a microphone: it hears the door, so the speaker's sound comes back
    # through it (full duplex then needs echo cancellation).
    captures_room = False

    def __init__(self) -> None:
        self._pacer = _Pacer(AUDIO_PTIME)
        self._pts = 0

    def _samples(self) -> np.ndarray:
        return np.zeros(AUDIO_SAMPLES, np.int16)

    async def read(self) -> av.AudioFrame:
        await self._pacer.wait()
        samples = await self._produce()
        frame = _audio_frame(samples, self._pts)
        self._pts += AUDIO_SAMPLES
        return frame

    async def _produce(self) -> np.ndarray:
        return self._samples()

    def close(self) -> None:
        pass


class SilenceSource(AudioSource):
    pass


class ToneSource(AudioSource):
    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency, self.amplitude = frequency, amplitude
        self._phase = 0

    def _samples(self) -> np.ndarray:
        n = np.arange(self._phase, self._phase + AUDIO_SAMPLES)
        self._phase += AUDIO_SAMPLES
        wave_ = np.sin(2 * math.pi * self.frequency * n / AUDIO_RATE) * self.amplitude
        return (wave_ * 32767).astype(np.int16)


class ContainerAudioSource(AudioSource):
    """Audio from a file (looped) or a capture device (microphone)."""

    def __init__(
        self, url: str, *, format: str | None = None, loop: bool = False, live: bool = False
    ) -> None:
        super().__init__()
        self.url, self.format, self.loop, self.live = url, format, loop, live
        self.captures_room = live
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        self._buffer = np.zeros(0, np.int16)
        self._container: Any = None
        self._open()

    def _open(self) -> None:
        try:
            self._container = av.open(self.url, format=self.format)
        except (av.FFmpegError, OSError) as exc:
            raise MediaSourceError(f"cannot open audio source {self.url!r}: {exc}") from None
        if not self._container.streams.audio:
            raise MediaSourceError(f"{self.url!r} has no audio stream")
        self._frames = self._container.decode(self._container.streams.audio[0])

    def _fill(self) -> np.ndarray:
        while len(self._buffer) < AUDIO_SAMPLES:
            try:
                frame = next(self._frames)
            except StopIteration:
                if not self.loop:
                    return np.zeros(AUDIO_SAMPLES, np.int16)
                self._container.close()
                self._open()
                continue
            for out in self._resampler.resample(frame):
                self._buffer = np.concatenate([self._buffer, out.to_ndarray().reshape(-1)])
        chunk, self._buffer = self._buffer[:AUDIO_SAMPLES], self._buffer[AUDIO_SAMPLES:]
        return chunk.astype(np.int16)

    async def _produce(self) -> np.ndarray:
        return await asyncio.to_thread(self._fill)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def has_audio(path: str) -> bool:
    try:
        with av.open(path) as c:
            return bool(c.streams.audio)
    except (av.FFmpegError, OSError):
        return False


def open_audio_source(spec: str, video_spec: str = "testsrc") -> AudioSource:
    """``auto`` (the file's own audio, else silence), ``silence``, ``tone[:Hz]``,
    ``mic[:device]`` or an audio file path."""
    if spec == "auto":
        if Path(video_spec).exists() and has_audio(video_spec):
            return ContainerAudioSource(video_spec, loop=True)
        return SilenceSource()
    if spec == "silence":
        return SilenceSource()
    if spec == "tone" or spec.startswith("tone:"):
        freq = float(spec.partition(":")[2] or 440)
        return ToneSource(freq)
    if spec == "mic" or spec.startswith("mic:"):
        device = spec.partition(":")[2]
        if sys.platform == "darwin":
            return ContainerAudioSource(f":{device or '0'}", format="avfoundation", live=True)
        if sys.platform.startswith("win"):
            return ContainerAudioSource(f"audio={device}", format="dshow", live=True)
        return ContainerAudioSource(device or "default", format="alsa", live=True)
    if not Path(spec).exists():
        raise MediaSourceError(
            f"audio source {spec!r} is not auto, silence, tone[:Hz], mic[:device] or a file"
        )
    return ContainerAudioSource(spec, loop=True)


# -- sinks (talk-back audio from the viewer) ----------------------------------


class AudioSink:
    """Consumes a received audio track; keeps seconds and RMS for reports.

    ``tap``, when set, gets every chunk as it is played: the camera's
    :class:`~alexa_doorbell.camera.talk.TalkbackHub` (echo reference, voice
    activity for half duplex).
    """

    plays_aloud = False  # True for a speaker at the door

    def __init__(self) -> None:
        self.tap: Any = None
        self.samples = 0
        self._sum_sq = 0.0
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)

    @property
    def seconds(self) -> float:
        return self.samples / AUDIO_RATE

    @property
    def rms(self) -> float:
        """Root mean square of everything received, relative to full scale (0..1)."""
        return math.sqrt(self._sum_sq / self.samples) / 32768 if self.samples else 0.0

    def write(self, frame: av.AudioFrame) -> None:
        channels = len(frame.layout.channels)
        if frame.format.name == "s16" and frame.sample_rate == AUDIO_RATE and channels <= 2:
            # What aiortc's Opus decoder gives: packed s16 at 48 kHz. Mixing to
            # mono here costs a fraction of a resampler per viewer.
            pcm = np.frombuffer(frame.planes[0], np.int16, count=frame.samples * channels)
            if channels == 2:
                pcm = ((pcm[0::2].astype(np.int32) + pcm[1::2]) >> 1).astype(np.int16)
            self._add(pcm)
            return
        for out in self._resampler.resample(frame):
            self._add(out.to_ndarray().reshape(-1).astype(np.int16))

    def _add(self, pcm: np.ndarray) -> None:
        self.samples += len(pcm)
        self._sum_sq += float(np.dot(pcm, pcm.astype(np.float64)))
        self._write_pcm(pcm)
        if self.tap is not None:
            self.tap.write(pcm)

    def _write_pcm(self, pcm: np.ndarray) -> None:
        pass

    async def consume(self, track: Any) -> None:
        """Read the track until it ends."""
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                self.write(frame)
        except (MediaStreamError, asyncio.CancelledError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        pass


class DiscardSink(AudioSink):
    pass


class WavSink(AudioSink):
    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(AUDIO_RATE)

    def _write_pcm(self, pcm: np.ndarray) -> None:
        if self._wav is not None:
            self._wav.writeframes(pcm.tobytes())

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


class SpeakerSink(AudioSink):
    """Plays talk-back on the default output device (needs the ``speaker`` extra)."""

    plays_aloud = True

    def __init__(self) -> None:
        super().__init__()
        try:
            import sounddevice  # type: ignore[import-not-found]
        except ImportError:
            raise MediaSourceError(
                "sink 'speaker' needs sounddevice: install alexa-doorbell[speaker]"
            ) from None
        self._stream = sounddevice.OutputStream(samplerate=AUDIO_RATE, channels=1, dtype="int16")
        self._stream.start()

    def _write_pcm(self, pcm: np.ndarray) -> None:
        self._stream.write(pcm.reshape(-1, 1))

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


DISCARD_SINKS = ("discard", "", "none")


def discards(spec: str) -> bool:
    """True when the sink ``spec`` plays and keeps nothing (talk-back is not worth decoding)."""
    return spec in DISCARD_SINKS


def open_sink(spec: str, session: str = "") -> AudioSink:
    """``discard``, ``speaker`` or a ``.wav`` path (``{session}`` is replaced by the session)."""
    if discards(spec):
        return DiscardSink()
    if spec == "speaker":
        return SpeakerSink()
    if spec.lower().endswith(".wav"):
        return WavSink(spec.replace("{session}", session))
    raise MediaSourceError(f"sink {spec!r} is not discard, speaker or a .wav path")
