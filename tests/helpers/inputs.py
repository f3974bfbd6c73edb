"""For the inputs' tests: a recording EventSink, and messages as real devices send them.

``frigate_event`` builds a ``frigate/events`` message with every field Frigate's
``TrackedObject.to_dict()`` puts in ``before`` / ``after`` (docs/integrations/mqtt.md
of Frigate 0.14+); ``Z2M_*`` are zigbee2mqtt's state messages for an Aqara
button (WXKG11LM) and motion sensor (RTCGQ11LM).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt


@dataclass
class Recorded:
    kind: str
    endpoint_id: str
    args: tuple[Any, ...]
    at: float = field(default_factory=time.monotonic)


class RecordingSink:
    """An EventSink that remembers each call, in order."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []
        self._changed = asyncio.Event()

    def _add(self, kind: str, endpoint_id: str, *args: Any) -> None:
        self.calls.append(Recorded(kind, endpoint_id, args))
        self._changed.set()

    async def press(self, endpoint_id: str, cause: str) -> None:
        self._add("press", endpoint_id, cause)

    async def motion(self, endpoint_id: str, detected: bool, at: float) -> None:
        self._add("motion", endpoint_id, detected, at)

    async def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None,
        at: float,
        snapshot_jpeg: bytes | None,
    ) -> None:
        self._add("detection", endpoint_id, label, score, at, snapshot_jpeg)

    def of(self, kind: str) -> list[Recorded]:
        return [c for c in self.calls if c.kind == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[Recorded]:
        """The first ``count`` calls of ``kind``; AssertionError with what came if they don't."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.of(kind)) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{count} {kind} call(s) expected within {timeout} s; got {self.calls}"
            ) from None
        return self.of(kind)[:count]


async def publish(
    url_port: int, topic: str, payload: str | bytes, *, retain: bool = False, qos: int = 1
) -> None:
    """One message from a device's own connection (a fresh client, as a device has)."""
    async with aiomqtt.Client("127.0.0.1", url_port) as client:
        await client.publish(topic, payload, qos=qos, retain=retain)


def frigate_object(
    *,
    camera: str = "front_door",
    label: str = "person",
    event_id: str = "1607123955.475377-mxklsc",
    score: float = 0.87890625,
    top_score: float = 0.958984375,
    start_time: float | None = None,
    false_positive: bool = False,
    zones: list[str] | None = None,
    has_snapshot: bool = True,
) -> dict[str, Any]:
    start = time.time() if start_time is None else start_time
    return {
        "id": event_id,
        "camera": camera,
        "frame_time": start + 6.6,
        "snapshot": {
            "frame_time": start + 10.5,
            "box": [415, 489, 528, 700],
            "area": 12728,
            "region": [260, 446, 660, 846],
            "score": 0.77546,
            "attributes": [],
        },
        "label": label,
        "sub_label": None,
        "top_score": top_score,
        "false_positive": false_positive,
        "start_time": start,
        "end_time": None,
        "score": score,
        "box": [432, 496, 544, 854],
        "area": 40096,
        "ratio": 1.251397,
        "region": [218, 440, 693, 915],
        "current_zones": list(zones or []),
        "entered_zones": list(zones or []),
        "thumbnail": None,
        "has_snapshot": has_snapshot,
        "has_clip": False,
        "active": True,
        "stationary": False,
        "motionless_count": 0,
        "position_changes": 2,
        "attributes": {},
        "current_attributes": [],
        "current_estimated_speed": 0,
        "average_estimated_speed": 0,
        "velocity_angle": 0,
        "recognized_license_plate": None,
        "recognized_license_plate_score": None,
    }


def frigate_event(kind: str, before: dict[str, Any] | None = None, **after: Any) -> str:
    """``{"type", "before", "after"}`` as Frigate's ``json.dumps(message)`` sends it."""
    after_obj = frigate_object(**after)
    before_obj = dict(before or after_obj)
    if kind == "new":
        before_obj["false_positive"] = True  # "new" is the update that ends false_positive
    if kind == "end":
        after_obj["end_time"] = after_obj["start_time"] + 20
    return json.dumps({"before": before_obj, "after": after_obj, "type": kind})


Z2M_BUTTON_SINGLE = json.dumps(
    {
        "action": "single",
        "battery": 100,
        "device_temperature": 25,
        "linkquality": 87,
        "power_outage_count": 3,
        "voltage": 3025,
    }
)
Z2M_BUTTON_DOUBLE = Z2M_BUTTON_SINGLE.replace('"single"', '"double"')
Z2M_BUTTON_STATE = json.dumps({"battery": 100, "linkquality": 90, "voltage": 3025})  # no action


def z2m_motion(occupancy: bool) -> str:
    return json.dumps(
        {
            "battery": 100,
            "illuminance": 8,
            "illuminance_lux": 8,
            "linkquality": 120,
            "occupancy": occupancy,
            "voltage": 3035,
        }
    )


def tiny_jpeg(shade: int = 128) -> bytes:
    """A real 64x48 JPEG (FFmpeg's MJPEG encoder), one shade of gray."""
    import av
    import numpy as np

    from alexa_doorbell.camera.jpeg import encode_jpeg

    frame = av.VideoFrame.from_ndarray(np.full((48, 64), shade, np.uint8), format="gray")
    return encode_jpeg(frame)
