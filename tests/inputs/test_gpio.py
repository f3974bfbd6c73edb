"""A doorbell button on a GPIO pin, on gpiozero's mock pin factory: chatter, spikes, a held
button and a second press; through the whole inputs layer, as the agent starts it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.inputs.gpio import Debouncer, GpioButton
from alexa_doorbell.inputs.runner import Inputs
from alexa_doorbell.inputs.sink import Event
from alexa_doorbell.lambda_config import ConfigError
from tests.helpers.inputs import RecordingSink

gpiozero = pytest.importorskip("gpiozero", reason="the gpio extra (gpiozero) is not installed")
from gpiozero.pins.mock import MockFactory  # noqa: E402

BOUNCE = 0.05


@pytest.fixture
def factory() -> MockFactory:
    f = MockFactory()
    yield f
    f.close()


def chatter(pin: object, edges: int, end_low: bool) -> None:
    """A contact closing (or opening): ``edges`` edges within microseconds."""
    for i in range(edges):
        (pin.drive_low if i % 2 == 0 else pin.drive_high)()  # type: ignore[attr-defined]
    if end_low:
        pin.drive_low()  # type: ignore[attr-defined]
    else:
        pin.drive_high()  # type: ignore[attr-defined]


async def quiet() -> None:
    await asyncio.sleep(BOUNCE * 3)


async def test_a_chattering_button_is_one_press_and_a_held_one_rings_once(
    factory: MockFactory,
) -> None:
    events: list[Event] = []
    button = GpioButton("front-door", 17, events.append, bounce_ms=50, pin_factory=factory)
    button.start()
    pin = factory.pin(17)
    try:
        chatter(pin, 40, end_low=True)  # forty edges, then held down
        await quiet()
        assert len(events) == 1
        await asyncio.sleep(0.3)  # still held
        assert len(events) == 1
        chatter(pin, 30, end_low=False)  # released, chattering too
        await quiet()
        assert len(events) == 1
        chatter(pin, 10, end_low=True)  # a second visitor
        await quiet()
        assert len(events) == 2
    finally:
        button.stop()
    assert {e.endpoint_id for e in events} == {"front-door"}
    assert {getattr(e, "cause", None) for e in events} == {"PHYSICAL_INTERACTION"}


async def test_a_spike_on_the_wire_is_no_press(factory: MockFactory) -> None:
    events: list[Event] = []
    button = GpioButton("front-door", 17, events.append, bounce_ms=50, pin_factory=factory)
    button.start()
    pin = factory.pin(17)
    try:
        for _ in range(5):
            pin.drive_low()
            pin.drive_high()  # back at once: noise, not a finger
            await quiet()
    finally:
        button.stop()
    assert events == []


async def test_an_active_high_button(factory: MockFactory) -> None:
    events: list[Event] = []
    button = GpioButton(
        "front-door", "GPIO27", events.append, active_low=False, pin_factory=factory
    )
    button.start()
    pin = factory.pin(27)
    try:
        pin.drive_high()
        await quiet()
        pin.drive_low()
        await quiet()
    finally:
        button.stop()
    assert len(events) == 1


async def test_a_pin_that_does_not_exist_is_a_clear_error(factory: MockFactory) -> None:
    button = GpioButton("front-door", 99, lambda e: None, pin_factory=factory)
    with pytest.raises(ConfigError, match="gpio_pin 99"):
        button.start()


async def test_the_inputs_layer_runs_the_button(factory: MockFactory, tmp_path: Path) -> None:
    s = Settings(
        data_dir=tmp_path,
        cameras=[CameraConfig(gpio_pin=22, gpio_bounce_ms=20)],
    )
    sink = RecordingSink()
    async with Inputs(s, sink, environ={}, pin_factory=factory) as inputs:
        assert inputs.describe()[0] == "GPIO 22 rings front-door"
        chatter(factory.pin(22), 12, end_low=True)
        [press] = await sink.wait_for("press")
        factory.pin(22).drive_high()
    assert press.args == ("PHYSICAL_INTERACTION",)


# -- the debouncer alone, time passed in -------------------------------------------------
@pytest.mark.parametrize(
    ("steps", "presses"),
    [
        # (time in ms, "edge" or the level read when the line settled)
        ([(0, "edge"), (50, True)], 1),  # a clean press
        ([(0, "edge"), (1, "edge"), (60, False)], 0),  # a 1 ms spike on a long wire
        ([(t, "edge") for t in range(0, 40, 2)] + [(90, True)], 1),  # chatter: one press
        ([(0, "edge"), (30, True)], 0),  # not settled yet
        ([(0, "edge"), (50, True), (500, "edge"), (550, True)], 1),  # still held: no second
        ([(0, "edge"), (50, True), (300, "edge"), (350, False), (600, "edge"), (650, True)], 2),
    ],
)
def test_debouncer(steps: list[tuple[int, object]], presses: int) -> None:
    d = Debouncer(0.050)
    count = 0
    for t, step in steps:
        if step == "edge":
            d.edge(t / 1000)
        else:
            count += d.settle(bool(step), t / 1000)
    assert count == presses
