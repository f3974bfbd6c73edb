"""Fault injection for the emulators: make the next N calls fail with a given status."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class Fault:
    status: int
    code: str  # the service's own error code (the gateway's payload.code, LWA's "error")
    remaining: int


class FaultQueue:
    """Faults in the order they were added; each one serves ``count`` calls, then the next."""

    def __init__(self, default_codes: Mapping[int, str], fallback: str) -> None:
        self._default_codes = default_codes
        self._fallback = fallback
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, status: int, code: str | None = None, count: int = 1) -> None:
        code = code or self._default_codes.get(status, self._fallback)
        with self._lock:
            self._faults.append(Fault(status, code, count))

    def take(self) -> Fault | None:
        """The fault for this call, or None to serve it normally."""
        with self._lock:
            while self._faults and self._faults[0].remaining <= 0:
                self._faults.pop(0)
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            return fault
