"""Echo cancellation at the door on a synthetic room; prints one JSON object.

The user's talk-back (speech made with espeak-ng, or a tone sequence where it
is missing) is played by the door's speaker: convolved with a room impulse
response (exponential decay, RT60 0.3 s, 150 ms long, seeded) and delayed
20-200 ms, it reaches the door's microphone, mixed with the visitor's own
speech (another voice) and a little noise. The camera's canceller
(:class:`alexa_doorbell.camera.aec.EchoCanceller`) gets the microphone and the
reference in 20 ms frames, as the agent feeds it.

Per delay: the delay it measured; ERLE (echo power in / echo power out) in
0.5 s windows while only the user talks, the time until it stays at 20 dB or
more, and its value after that; the visitor's speech after the canceller
(scale-invariant SDR against the clean speech, and its level change) alone and
while both talk; CPU per second of a talking session at 48 kHz.

    uv run python bench/aec_bench.py
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.helpers.netguard

from tests.helpers import netguard

from alexa_doorbell.camera.aec import EchoCanceller

RATE = 48000
FRAME = 960  # 20 ms, as the camera's audio source yields
WINDOW = RATE // 2
TARGET_DB = 20.0
DELAYS_MS = (20, 80, 140, 200)
FAR_TEXT = (
    "Hello, I am coming to the door. Please leave the parcel next to the bench. "
    "Thank you very much. Could you ring again if nobody answers? The code for the "
    "gate is on the note. Have a nice day."
)
NEAR_TEXT = "Hi, I have a delivery for you. Should I leave it here, or wait a moment?"


def _read_wav(path: Path) -> np.ndarray:
    out = []
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        for frame in c.decode(audio=0):
            for f in resampler.resample(frame):
                out.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            out.append(f.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.float64) / 32768


def speech(text: str, voice: str, speed: int) -> tuple[np.ndarray, str]:
    espeak = shutil.which("espeak-ng")
    if espeak:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.wav"
            subprocess.run(
                [espeak, "-v", voice, "-s", str(speed), "-w", str(path), text],
                check=True,
                capture_output=True,
            )
            x = _read_wav(path)
        return 0.5 * x / (np.max(np.abs(x)) + 1e-9), f"espeak-ng {voice}"
    # No espeak-ng: a tone sequence with speech-like gaps.
    rng = np.random.default_rng(len(text))
    parts = []
    for _ in range(len(text) // 6):
        n = int(rng.uniform(0.08, 0.3) * RATE)
        f = rng.uniform(150, 3000)
        t = np.arange(n) / RATE
        parts += [0.3 * np.sin(2 * math.pi * f * t) * np.hanning(n), np.zeros(int(0.05 * RATE))]
    return np.concatenate(parts), "tone sequence"


def room_impulse(
    seed: int, rt60: float = 0.3, length: float = 0.15, drr_db: float = 3.0
) -> np.ndarray:
    """Direct path (speaker to microphone, a few cm) plus a decaying tail of reflections.

    The tail (random, exponential decay to -60 dB in ``rt60``) carries
    ``drr_db`` less energy than the direct path; the whole path is -6 dB.
    """
    rng = np.random.default_rng(seed)
    n = int(length * RATE)
    t = np.arange(n) / RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[:48] = 0  # first reflection after 1 ms
    tail *= math.sqrt(10 ** (-drr_db / 10) / np.sum(tail * tail))
    h = tail
    h[0] = 1.0
    return 0.5 * h / np.sqrt(np.sum(h * h))


def convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    size = 1 << math.ceil(math.log2(len(x) + len(h)))
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x)]


def si_sdr(out: np.ndarray, clean: np.ndarray, max_lag: int = 1000) -> tuple[float, float, int]:
    """(SI-SDR dB, level change dB, lag) of ``out`` against ``clean``, best lag in 0..max_lag."""
    n = len(clean) - max_lag
    ref = clean[:n]
    scores = [float(np.dot(out[lag : lag + n], ref)) for lag in range(max_lag)]
    lag = int(np.argmax(scores))
    o = out[lag : lag + n]
    g = float(np.dot(o, ref) / np.dot(ref, ref))
    err = o - g * ref
    return (
        10 * math.log10(np.sum((g * ref) ** 2) / np.sum(err**2)),
        20 * math.log10(max(abs(g), 1e-9)),
        lag,
    )


def run(delay_ms: int, far: np.ndarray, near: np.ndarray, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    d = int(delay_ms * RATE / 1000)
    echo = np.concatenate([np.zeros(d), convolve(far, room_impulse(seed))])[: len(far)]
    total = len(far) + len(near) + RATE  # far alone, then both, then the visitor alone
    far_full = np.zeros(total)
    far_full[: len(far)] = far
    echo_full = np.zeros(total)
    echo_full[: len(far)] = echo
    near_full = np.zeros(total)
    dt_start = len(far) - len(near) // 2  # both talk for half the visitor's sentence
    near_full[dt_start : dt_start + len(near)] = near
    near_alone = dt_start + len(near) // 2 + d + int(0.2 * RATE)  # after the echo's tail
    mic = echo_full + near_full + rng.standard_normal(total) * 1e-4
    mic16 = np.clip(mic * 32768, -32768, 32767).astype(np.int16)
    far16 = np.clip(far_full * 32768, -32768, 32767).astype(np.int16)

    aec = EchoCanceller(RATE)
    out = np.zeros(total)
    t0 = time.process_time()
    for i in range(0, total - FRAME + 1, FRAME):
        out[i : i + FRAME] = aec.process(mic16[i : i + FRAME], far16[i : i + FRAME]) / 32768
    cpu = time.process_time() - t0

    # ERLE in 0.5 s windows while only the user talks (and the echo is not a pause).
    windows = []
    for start in range(0, dt_start - WINDOW + 1, WINDOW):
        e = echo_full[start : start + WINDOW]
        o = out[start : start + WINDOW]
        if np.sqrt(np.mean(e * e)) < 0.003:
            continue
        windows.append((start / RATE, 10 * math.log10(np.sum(e * e) / max(np.sum(o * o), 1e-20))))
    converged = None
    for k, (t, _) in enumerate(windows):
        if all(v >= TARGET_DB for _, v in windows[k:]):
            converged = t
            break
    after = [v for t, v in windows if converged is not None and t >= converged]
    e_after = sum(
        np.sum(echo_full[int(t * RATE) : int(t * RATE) + WINDOW] ** 2)
        for t, _ in windows
        if converged is not None and t >= converged
    )
    o_after = sum(
        np.sum(out[int(t * RATE) : int(t * RATE) + WINDOW] ** 2)
        for t, _ in windows
        if converged is not None and t >= converged
    )
    both = slice(dt_start, dt_start + len(near) // 2)
    alone = slice(near_alone, dt_start + len(near))
    sdr_both, level_both, lag = si_sdr(out[both.start : both.stop + 1000], near_full[both])
    sdr_alone, level_alone, _ = si_sdr(out[alone.start : alone.stop + 1000], near_full[alone])
    mic_both, _, _ = si_sdr(mic[both.start : both.stop + 1000], near_full[both])
    return {
        "delay_ms": delay_ms,
        "delay_estimated_ms": round(aec.stats.delay_ms, 1) if aec.stats.delay_ms else None,
        "erle_db_after_convergence": round(10 * math.log10(e_after / o_after), 1)
        if after
        else None,
        "erle_db_min_window_after_convergence": round(min(after), 1) if after else None,
        "time_to_converge_s": round(converged + 0.5, 2) if converged is not None else None,
        "near_end_alone_si_sdr_db": round(sdr_alone, 1),
        "near_end_alone_level_db": round(level_alone, 1),
        "double_talk_si_sdr_db": round(sdr_both, 1),
        "double_talk_si_sdr_db_without_aec": round(mic_both, 1),
        "double_talk_near_end_level_db": round(level_both, 1),
        "output_lag_ms": round(lag / RATE * 1000, 1),
        "cpu_s_per_audio_s": round(cpu / (total / RATE), 4),
    }


def main() -> None:
    far, far_kind = speech(FAR_TEXT, "en-us", 150)
    near, near_kind = speech(NEAR_TEXT, "en-gb+f3", 140)
    results = [run(d, far, near, seed=i + 1) for i, d in enumerate(DELAYS_MS)]
    erles = [r["erle_db_after_convergence"] for r in results]
    report = {
        "benchmark": "aec",
        "canceller": "WebRTC AEC3 (pywebrtc-audio) + GCC-PHAT delay estimate",
        "rate_hz": RATE,
        "far_end": far_kind,
        "near_end": near_kind,
        "room": "direct path + exponential-decay tail (RT60 0.3 s, 150 ms, DRR 3 dB), -6 dB",
        "target_erle_db": TARGET_DB,
        "results": results,
        "erle_db_worst": min(e for e in erles if e is not None) if all(erles) else None,
        "time_to_converge_s_worst": max(
            (r["time_to_converge_s"] or math.inf)
            for r in results  # type: ignore[operator]
        ),
        "cpu_percent_of_a_core_per_session": round(
            100 * max(r["cpu_s_per_audio_s"] for r in results),  # type: ignore[type-var]
            2,
        ),
        "meets_target": all(e is not None and e >= TARGET_DB for e in erles),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    netguard.run_guarded(main)
