"""Sinks: where the talk-back audio a viewer sends to the camera goes."""

from __future__ import annotations

import asyncio
import math
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np

from alexa_doorbell.camera.sources.base import AUDIO_RATE, MediaSourceError


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
