"""Audio sources: 20 ms s16 mono 48 kHz frames in real time."""

from __future__ import annotations

import asyncio
import fractions
import math
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np

from alexa_doorbell.camera.sources.base import (
    AUDIO_PTIME,
    AUDIO_RATE,
    AUDIO_SAMPLES,
    MediaSourceError,
    Pacer,
)


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
        self._pacer = Pacer(AUDIO_PTIME)
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

    def release(self) -> None:
        """Nobody listens: let go of what can be opened again (a device, a file)."""

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
