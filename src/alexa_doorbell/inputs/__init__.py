"""Inputs: what happened at a camera (a press, motion, a person) from the devices at home.

    from alexa_doorbell.inputs import EventSink, start_inputs
    inputs = await start_inputs(settings, sink)   # MQTT, Frigate, HA, GPIO, webhook
    inputs.frame_sink("front-door")               # built-in detectors: feed it frames
    await inputs.stop()

One module per input (``topics``, ``frigate``, ``homeassistant``, ``gpio``,
``webhook``, ``pixels``, ``person``); ``sink`` is the seam to the rest
(``EventSink``), ``runner`` starts what the settings ask for. docs/inputs.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexa_doorbell.inputs.sink import EventSink

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings
    from alexa_doorbell.inputs.runner import Inputs

__all__ = ["EventSink", "start_inputs"]


async def start_inputs(settings: Settings, sink: EventSink) -> Inputs:
    """Every input the settings configure, started; ``await inputs.stop()`` ends them."""
    from alexa_doorbell.inputs.runner import start_inputs as start

    return await start(settings, sink)
