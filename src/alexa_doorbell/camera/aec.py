"""Acoustic echo cancellation at the door: the microphone minus what the speaker played.

In full duplex the door's speaker plays the user's voice and the door's
microphone picks it up again; sent back unchanged, the user hears themselves a
few hundred milliseconds late. :class:`EchoCanceller` removes it with WebRTC's
AEC3 (the canceller browsers use, through ``pywebrtc-audio``), fed with the
talk-back actually played as the far-end reference. How long the played audio
takes to come back through the speaker's buffer, the air and the capture
buffer is not assumed: :class:`DelayEstimator` measures it by GCC-PHAT (the
peak of the phase-only cross-correlation of reference and microphone) and the
canceller is given the measured delay.

Pure signal processing: frames of 16-bit mono PCM in, cleaned frames out.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

AEC_RATE = 48000
AEC_BLOCK = AEC_RATE // 100  # AEC3 works on 10 ms blocks


class DelayEstimator:
    """Playback-to-capture delay by GCC-PHAT, on the far end and microphone at 8 kHz.

    :meth:`add` takes the reference and the microphone in step (same length,
    same instants). Every ``hop`` seconds with enough far-end energy, the
    phase-only cross-correlation of the last ``window`` seconds is computed;
    its peak between 0 and ``max_delay`` is the delay. The estimate is kept
    only when the peak stands clear of the rest of the correlation
    (``min_confidence``) and, to move an estimate already made, when two
    estimates in a row agree: the visitor talking over the user gives peaks
    at random lags, seldom twice at the same one. The phase spectra are
    averaged over successive windows, which also steadies the peak.
    """

    DECIMATE = 6  # 48 kHz -> 8 kHz: the delay to 1/8 ms, at a 36th of the cost

    def __init__(
        self,
        rate: int = AEC_RATE,
        *,
        window: float = 1.0,
        hop: float = 0.5,
        max_delay: float = 0.5,
        min_confidence: float = 8.0,
        min_far_rms: float = 0.003,
    ) -> None:
        self.rate = rate
        self.low_rate = rate // self.DECIMATE
        self.n = int(window * self.low_rate)
        self.hop = int(hop * self.low_rate)
        self.max_lag = int(max_delay * self.low_rate)
        self.min_confidence = min_confidence
        self.min_far_rms = min_far_rms
        self._far = np.zeros(0, np.float32)
        self._mic = np.zeros(0, np.float32)
        self._rest_far = np.zeros(0, np.float32)
        self._rest_mic = np.zeros(0, np.float32)
        self._since = 0
        self._phase: np.ndarray | None = None  # averaged PHAT cross-spectrum
        self._candidate: float | None = None
        self.delay: float | None = None  # seconds
        self.confidence = 0.0
        self.estimates = 0

    def _decimate(self, rest: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([rest, x.astype(np.float32)])
        k = len(x) // self.DECIMATE * self.DECIMATE
        # A box filter before decimation: a crude low-pass, enough for a correlation peak.
        return x[:k].reshape(-1, self.DECIMATE).mean(axis=1), x[k:]

    def add(self, far: np.ndarray, mic: np.ndarray) -> float | None:
        f, self._rest_far = self._decimate(self._rest_far, far)
        m, self._rest_mic = self._decimate(self._rest_mic, mic)
        keep = self.n + self.max_lag
        self._far = np.concatenate([self._far, f])[-keep:]
        self._mic = np.concatenate([self._mic, m])[-keep:]
        self._since += len(f)
        if self._since >= self.hop and len(self._far) >= keep:
            self._since = 0
            self._estimate()
        return self.delay

    def _estimate(self) -> None:
        # The reference window ends max_lag before the microphone's: every lag in
        # [0, max_lag] compares the same span of far-end audio.
        far = self._far[: self.n]
        mic = self._mic
        if float(np.sqrt(np.mean(far * far))) < self.min_far_rms:
            return  # the speaker was (nearly) silent: nothing to find
        size = 1 << math.ceil(math.log2(len(mic) + len(far)))
        cross = np.fft.rfft(mic, size) * np.conj(np.fft.rfft(far, size))
        cross /= np.abs(cross) + 1e-12  # PHAT: phase only, every frequency weighs the same
        if self._phase is None or len(self._phase) != len(cross):
            self._phase = cross
        else:
            self._phase = 0.6 * self._phase + 0.4 * cross
        corr = np.fft.irfft(self._phase, size)[: self.max_lag + 1]
        peak = int(np.argmax(corr))
        spread = float(np.mean(np.abs(corr))) + 1e-12
        self.confidence = float(corr[peak]) / spread
        if self.confidence < self.min_confidence:
            return
        delay = peak / self.low_rate
        if self.delay is not None and abs(delay - self.delay) > 0.002:
            agreed = self._candidate is not None and abs(delay - self._candidate) <= 0.002
            self._candidate = delay
            if not agreed:
                return
        self._candidate = None
        self.delay = delay
        self.estimates += 1


@dataclass
class EchoStats:
    delay_ms: float | None = None  # measured playback-to-capture delay
    delay_confidence: float = 0.0
    far_active_blocks: int = 0
    mic_energy: float = 0.0  # while the speaker played
    out_energy: float = 0.0

    @property
    def erle_db(self) -> float | None:
        """Microphone in / out while the speaker played: the ERLE while the visitor is silent."""
        if self.far_active_blocks == 0 or self.out_energy <= 0:
            return None
        return 10 * math.log10(self.mic_energy / self.out_energy)


class EchoCanceller:
    """Removes what the door's speaker played from the door's microphone (AEC3).

    ``process(mic, far)`` takes 16-bit mono PCM at 48 kHz in step (any length;
    it buffers to 10 ms blocks) and returns the cleaned microphone, delayed by
    at most one block. The delay estimate is handed to AEC3 as its stream delay
    whenever it moves by more than 5 ms.
    """

    def __init__(self, rate: int = AEC_RATE, *, estimator: DelayEstimator | None = None) -> None:
        try:
            from pywebrtc_audio import EchoCanceller as _Aec3
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise RuntimeError(
                "echo cancellation needs pywebrtc-audio (pip install pywebrtc-audio),"
                " or set aec = false for this camera"
            ) from exc
        self.rate = rate
        self.block = rate // 100
        self._aec = _Aec3(sample_rate=rate, num_channels=1, stream_delay_ms=0)
        self.estimator = estimator or DelayEstimator(rate)
        self.stats = EchoStats()
        self._mic = np.zeros(0, np.int16)
        self._far = np.zeros(0, np.int16)
        self._out = np.zeros(0, np.int16)
        self._hinted: float | None = None

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        if len(mic) != len(far):
            raise ValueError("microphone and reference must be the same length")
        n = len(mic)
        self._mic = np.concatenate([self._mic, mic.astype(np.int16, copy=False)])
        self._far = np.concatenate([self._far, far.astype(np.int16, copy=False)])
        usable = len(self._mic) // self.block * self.block
        if usable:
            m, self._mic = self._mic[:usable], self._mic[usable:]
            f, self._far = self._far[:usable], self._far[usable:]
            self._follow_delay(f, m)
            out = self._aec.process(m, f)
            self._account(m, f, out)
            self._out = np.concatenate([self._out, out])
        if len(self._out) >= n:
            result, self._out = self._out[:n], self._out[n:]
            return result
        # Not a whole block yet (only for inputs not a multiple of 10 ms): pad in front.
        result = np.concatenate([np.zeros(n - len(self._out), np.int16), self._out])
        self._out = np.zeros(0, np.int16)
        return result

    def _follow_delay(self, far: np.ndarray, mic: np.ndarray) -> None:
        delay = self.estimator.add(far / 32768.0, mic / 32768.0)
        self.stats.delay_confidence = self.estimator.confidence
        if delay is None:
            return
        self.stats.delay_ms = delay * 1000
        if self._hinted is None or abs(delay - self._hinted) > 0.005:
            self._hinted = delay
            self._aec.stream_delay_ms = round(delay * 1000)
            log.debug("echo delay %.1f ms", delay * 1000)

    def _account(self, mic: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        if not np.any(far):
            return
        self.stats.far_active_blocks += len(far) // self.block
        m = mic.astype(np.float64)
        o = out.astype(np.float64)
        self.stats.mic_energy += float(np.dot(m, m))
        self.stats.out_energy += float(np.dot(o, o))
