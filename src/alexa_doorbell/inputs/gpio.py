"""A push button on a GPIO pin rings the doorbell (``gpiozero``: the ``gpio`` extra).

    gpio_pin = 17            # or "GPIO17", "BOARD11"
    gpio_bounce_ms = 50      # contacts chatter for a few ms; long bell wires pick up noise
    gpio_active_low = true   # button to ground, internal pull-up (the usual wiring)

A mechanical contact does not close once: it chatters for milliseconds, and a
long wire to the door picks up spikes. Rather than gpiozero's ``bounce_time``
(which drops the edges after the first and can miss the release), every edge
restarts a quiet timer; when the line has been still for ``gpio_bounce_ms``,
its level is read: pressed, and not pressed before, is one press. So fifty
edges in 50 ms are one press, a 1 ms spike is none, and a held button rings
once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from alexa_doorbell.inputs.sink import Event, Press
from alexa_doorbell.lambda_config import ConfigError

log = logging.getLogger(__name__)


class Debouncer:
    """Edges in, presses out; time passed in. Pure."""

    def __init__(self, bounce: float) -> None:
        if not bounce > 0:
            raise ValueError(f"bounce must be > 0 seconds, not {bounce!r}")
        self.bounce = bounce
        self.last_edge: float | None = None
        self.pressed = False  # the level we last settled on

    def edge(self, now: float) -> float:
        """The line changed at ``now``; returns when to call ``settle`` next."""
        self.last_edge = now
        return now + self.bounce

    def settled(self, now: float) -> bool:
        """Whether the line has been still for ``bounce`` at ``now`` (a microsecond's grace
        for the timer that calls us)."""
        return self.last_edge is None or now - self.last_edge >= self.bounce - 1e-6

    def settle(self, active: bool, now: float) -> bool:
        """The line reads ``active`` at ``now``: True when that is a new press.

        Nothing happens until the line has been still for ``bounce`` (a later edge
        has its own settle coming)."""
        if not self.settled(now):
            return False
        press = active and not self.pressed
        self.pressed = active
        return press


class GpioButton:
    def __init__(
        self,
        endpoint_id: str,
        pin: int | str,
        emit: Callable[[Event], None],
        *,
        bounce_ms: int = 50,
        active_low: bool = True,
        pin_factory: Any = None,
    ) -> None:
        self.endpoint_id = endpoint_id
        self.pin = pin
        self.emit = emit
        self.active_low = active_low
        self.pin_factory = pin_factory
        self.debouncer = Debouncer(bounce_ms / 1000)
        self.presses = 0
        self._button: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        try:
            from gpiozero import Button
        except ImportError:
            raise ConfigError(
                f"camera {self.endpoint_id}: gpio_pin needs gpiozero: install the gpio extra "
                "(pip install 'alexa-doorbell[gpio]' or uv sync --extra gpio)"
            ) from None
        self._loop = asyncio.get_running_loop()
        try:
            # bounce_time None: every edge reaches us and the Debouncer decides
            self._button = Button(
                self.pin, pull_up=self.active_low, bounce_time=None, pin_factory=self.pin_factory
            )
        except Exception as exc:  # gpiozero's errors: no such pin, pin in use, no GPIO here
            raise ConfigError(
                f"camera {self.endpoint_id}: gpio_pin {self.pin!r}: {exc}; check the pin "
                "number (BCM, or 'BOARD11') and that nothing else holds it"
            ) from None
        self.debouncer.pressed = bool(self._button.is_pressed)  # held at start: no press
        self._button.when_pressed = self._on_edge
        self._button.when_released = self._on_edge
        log.info("gpio: %s rings %s", self._button.pin, self.endpoint_id)

    def _on_edge(self) -> None:
        # gpiozero's thread (or the caller's, for mock pins): hop onto the loop
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._edge)

    def _edge(self) -> None:
        due = self.debouncer.edge(time.monotonic())
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_later(max(0.0, due - time.monotonic()), self._settle)

    def _settle(self) -> None:
        self._timer = None
        if self._button is None:
            return
        now = time.monotonic()
        if not self.debouncer.settled(now):  # the loop's clock fired a hair early
            assert self._loop is not None
            self._timer = self._loop.call_later(self.debouncer.bounce / 4, self._settle)
            return
        if self.debouncer.settle(bool(self._button.is_pressed), now):
            self.presses += 1
            self.emit(Press(self.endpoint_id, "PHYSICAL_INTERACTION", source=f"gpio {self.pin}"))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._button is not None:
            self._button.close()
            self._button = None
