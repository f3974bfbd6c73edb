"""A simulated door: a speaker and a microphone a few centimetres apart.

What the camera's talk-back sink plays goes into the air; the microphone
hears it again ``delay`` seconds later through a short room response, mixed
with the visitor's own voice. Hand ``door.speaker`` to the agent as its
``sink_factory`` and ``door.microphone()`` as its ``audio_source``.
"""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np

from alexa_doorbell.camera.media import AUDIO_RATE, AUDIO_SAMPLES, AudioSink, AudioSource


def room_response(seed: int = 7, length: float = 0.05, drr_db: float = 3.0) -> np.ndarray:
    """Direct path plus a decaying tail of reflections; -6 dB overall."""
    rng = np.random.default_rng(seed)
    n = int(length * AUDIO_RATE)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / AUDIO_RATE / 0.3)
    tail[:48] = 0.0
    tail *= math.sqrt(10 ** (-drr_db / 10) / float(np.sum(tail * tail)))
    tail[0] = 1.0
    return 0.5 * tail / math.sqrt(float(np.sum(tail * tail)))


class SimulatedDoor:
    def __init__(self, delay: float = 0.08, visitor: AudioSource | None = None) -> None:
        self.delay = delay
        self.rir = room_response()
        self.visitor = visitor
        self._epoch = time.monotonic()
        self._air = np.zeros(AUDIO_RATE * 8, np.float64)  # what the speaker emitted
        self._cursor: int | None = None
        self.played = 0

    def _now(self) -> int:
        return int((time.monotonic() - self._epoch) * AUDIO_RATE)

    def emit(self, pcm: np.ndarray) -> None:
        now = self._now()
        if self._cursor is None or not now <= self._cursor <= now + AUDIO_RATE // 2:
            self._cursor = now
        idx = np.arange(self._cursor, self._cursor + len(pcm)) % len(self._air)
        self._air[idx] = pcm / 32768.0
        # What is played is gone from the air once it is old: clear ahead of the cursor.
        ahead = np.arange(self._cursor + len(pcm), self._cursor + len(pcm) + AUDIO_RATE)
        self._air[ahead % len(self._air)] = 0.0
        self._cursor += len(pcm)
        self.played += len(pcm)

    def heard(self, end: int, samples: int) -> np.ndarray:
        """The speaker's sound at the microphone for the ``samples`` before ``end``."""
        d = int(self.delay * AUDIO_RATE)
        span = samples + len(self.rir) - 1
        idx = np.arange(end - d - span, end - d) % len(self._air)
        return np.convolve(self._air[idx], self.rir, mode="valid")

    def speaker(self, spec: str, session: str) -> AudioSink:
        return _DoorSpeaker(self)

    def microphone(self) -> AudioSource:
        return _DoorMicrophone(self)


class _DoorSpeaker(AudioSink):
    plays_aloud = True

    def __init__(self, door: SimulatedDoor) -> None:
        super().__init__()
        self.door = door

    def _write_pcm(self, pcm: np.ndarray) -> None:
        self.door.emit(pcm)


class _DoorMicrophone(AudioSource):
    captures_room = True

    def __init__(self, door: SimulatedDoor) -> None:
        super().__init__()
        self.door = door
        self._end: int | None = None  # a microphone's samples are contiguous

    async def _produce(self) -> np.ndarray:
        visitor = (
            (await self.door.visitor._produce()).astype(np.float64) / 32768.0
            if self.door.visitor
            else np.zeros(AUDIO_SAMPLES)
        )
        now = self.door._now()
        if self._end is None or self._end + AUDIO_SAMPLES < now - AUDIO_RATE // 20:
            self._end = now  # read too late: the capture buffer overran, samples lost
        else:
            self._end += AUDIO_SAMPLES
            if self._end > now:  # not captured yet: a read waits for the device
                await asyncio.sleep((self._end - now) / AUDIO_RATE)
        mic = visitor + self.door.heard(self._end, AUDIO_SAMPLES)
        return np.clip(mic * 32768, -32768, 32767).astype(np.int16)


class BabbleSource(AudioSource):
    """Speech-like sound: band-limited noise in syllables of 80-300 ms, seeded."""

    def __init__(self, amplitude: float = 0.25, seed: int = 3) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.amplitude = amplitude
        self._left = 0
        self._on = True
        self._prev = np.zeros(8)

    def _samples(self) -> np.ndarray:
        out = np.zeros(AUDIO_SAMPLES)
        i = 0
        while i < AUDIO_SAMPLES:
            if self._left == 0:
                self._on = not self._on
                self._left = int(self.rng.uniform(0.08, 0.3 if self._on else 0.1) * AUDIO_RATE)
            n = min(self._left, AUDIO_SAMPLES - i)
            if self._on:
                noise = self.rng.standard_normal(n + 8)
                noise[:8] = self._prev
                self._prev = noise[-8:]
                # A moving average: most energy below ~3 kHz, like a voice.
                out[i : i + n] = np.convolve(noise, np.ones(8) / 8, mode="valid")[1:] * 2.5
            self._left -= n
            i += n
        return (np.clip(out * self.amplitude, -1, 1) * 32767).astype(np.int16)
