"""The demo's steps as results: what each expected and saw, its time and figures."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SILENCE_RMS = 0.003  # RMS relative to full scale (about -50 dBFS): below is silence


class StepFailed(Exception):
    """A step did not see what it expected."""

    def __init__(self, expected: str, seen: str) -> None:
        super().__init__(f"expected {expected}; saw {seen}")
        self.expected = expected
        self.seen = seen


@dataclass
class StepResult:
    name: str
    title: str
    ok: bool = False
    ms: float = 0.0
    detail: str = ""
    expected: str | None = None
    seen: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "ok": self.ok,
            "ms": round(self.ms, 1),
            "detail": self.detail,
            "figures": self.figures,
        }
        if not self.ok:
            d["expected"], d["seen"] = self.expected, self.seen
        return d


def expect(condition: bool, expected: str, seen: Any) -> None:
    if not condition:
        raise StepFailed(expected, str(seen))


def wav_stats(path: Path) -> tuple[float, float]:
    """(seconds, RMS relative to full scale) of a mono 16-bit WAV file."""
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / float(w.getframerate() or 1)
    samples = np.frombuffer(frames, dtype=np.int16).astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2))) / 32768 if samples.size else 0.0
    return seconds, rms


async def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()
