"""Home Assistant MQTT discovery: our cameras appear in Home Assistant without YAML.

For each camera, retained under the discovery prefix (``ha_discovery_prefix``,
default ``homeassistant``), as ``<prefix>/<component>/<object_id>/config``:

- the doorbell: an ``event`` entity, ``device_class`` doorbell, ``event_types``
  ["press"]; each press is ``{"event_type": "press"}`` on ``<base>/<camera>/press``
- motion: a ``binary_sensor``, ``device_class`` motion, ``ON``/``OFF`` retained on
  ``<base>/<camera>/motion``, held as for Alexa (``motion_hold``)
- detections: an ``event`` entity with ``event_types`` ["person", "package"]
  (``{"event_type": "person", "score": 0.91}``) and a ``camera`` entity that shows
  the last detection's snapshot (JPEG, retained on ``<base>/<camera>/snapshot``)

All of one camera's entities belong to one device, and all are ``unavailable``
while the agent is away: availability is ``<base>/status``, ``online`` retained
on every connect and ``offline`` as the connection's will (a crash) or on a
clean stop. The configs are published again on every connect and whenever
Home Assistant says it is back (``<prefix>/status`` ``online``), as HA asks.
``<base>`` is ``mqtt_base_topic`` (default ``alexa-doorbell``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alexa_doorbell.alexa.smartvision import IMAGE_NET_CLASSES
from alexa_doorbell.inputs.mqtt import MqttConnection, Received
from alexa_doorbell.notifier.debounce import DETECTED, MotionHold

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"


def _origin() -> dict[str, str]:
    """Who published the configs (HA shows it in the device's info)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"name": "alexa-doorbell", "sw_version": version("alexa-doorbell")}
    except PackageNotFoundError:
        return {"name": "alexa-doorbell"}


@dataclass(frozen=True)
class HaCamera:
    endpoint_id: str
    name: str
    manufacturer: str
    model: str
    doorbell: bool
    motion: bool
    detection: bool


def object_id(text: str) -> str:
    """A topic level Home Assistant accepts: [a-zA-Z0-9_-] only."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text) or "_"


class Topics:
    def __init__(self, base: str, discovery_prefix: str) -> None:
        self.base = base
        self.prefix = discovery_prefix

    @property
    def availability(self) -> str:
        return f"{self.base}/status"

    @property
    def ha_status(self) -> str:
        return f"{self.prefix}/status"

    def state(self, endpoint_id: str, what: str) -> str:
        return f"{self.base}/{object_id(endpoint_id)}/{what}"

    def config(self, component: str, unique_id: str) -> str:
        return f"{self.prefix}/{component}/{unique_id}/config"


def discovery_configs(cams: Sequence[HaCamera], topics: Topics) -> list[tuple[str, dict[str, Any]]]:
    """(topic, payload) of every discovery config for ``cams``. Pure."""
    out: list[tuple[str, dict[str, Any]]] = []
    origin = _origin()
    for cam in cams:
        node = object_id(f"alexa_doorbell_{cam.endpoint_id}")
        device = {
            "identifiers": [node],
            "name": cam.name,
            "manufacturer": cam.manufacturer,
            "model": cam.model,
        }
        common = {
            "availability_topic": topics.availability,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device,
            "origin": origin,
            "qos": 1,
        }
        if cam.doorbell:
            uid = f"{node}_doorbell"
            out.append(
                (
                    topics.config("event", uid),
                    {
                        "name": "Doorbell",
                        "unique_id": uid,
                        "state_topic": topics.state(cam.endpoint_id, "press"),
                        "event_types": ["press"],
                        "device_class": "doorbell",
                        **common,
                    },
                )
            )
        if cam.motion:
            uid = f"{node}_motion"
            out.append(
                (
                    topics.config("binary_sensor", uid),
                    {
                        "name": "Motion",
                        "unique_id": uid,
                        "state_topic": topics.state(cam.endpoint_id, "motion"),
                        "payload_on": "ON",
                        "payload_off": "OFF",
                        "device_class": "motion",
                        **common,
                    },
                )
            )
        if cam.detection:
            uid = f"{node}_detection"
            out.append(
                (
                    topics.config("event", uid),
                    {
                        "name": "Detection",
                        "unique_id": uid,
                        "state_topic": topics.state(cam.endpoint_id, "detection"),
                        "event_types": list(IMAGE_NET_CLASSES),
                        "icon": "mdi:account-search",
                        **common,
                    },
                )
            )
            uid = f"{node}_snapshot"
            out.append(
                (
                    topics.config("camera", uid),
                    {
                        "name": "Snapshot",
                        "unique_id": uid,
                        "topic": topics.state(cam.endpoint_id, "snapshot"),
                        **{k: v for k, v in common.items() if k != "qos"},
                    },
                )
            )
    return out


class HomeAssistant:
    """Announces the cameras and publishes their events; an ``EventSink`` of its own."""

    def __init__(
        self,
        cams: Sequence[HaCamera],
        conn: MqttConnection,
        *,
        base_topic: str = "alexa-doorbell",
        discovery_prefix: str = "homeassistant",
        motion_hold: float = 30.0,
    ) -> None:
        self.cams = list(cams)
        self.conn = conn
        self.topics = Topics(base_topic, discovery_prefix)
        self.hold = MotionHold(motion_hold)
        self._expiry: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def availability(self) -> str:
        return self.topics.availability

    def attach(self) -> None:
        self.conn.on_connect(self._announce)
        self.conn.route(self.topics.ha_status, self._on_ha_status)

    async def _announce(self, conn: MqttConnection) -> None:
        for topic, config in discovery_configs(self.cams, self.topics):
            await conn.publish(topic, json.dumps(config), retain=True)
        await conn.publish(self.availability, ONLINE, retain=True)
        for cam in self.cams:  # a broker without persistence forgot the states
            if cam.motion:
                await conn.publish(
                    self.topics.state(cam.endpoint_id, "motion"),
                    "ON" if self.hold.state(cam.endpoint_id) == DETECTED else "OFF",
                    retain=True,
                )

    def _on_ha_status(self, msg: Received) -> None:
        if msg.payload.strip().lower() == ONLINE.encode() and not msg.retained:
            task = asyncio.ensure_future(self._announce(self.conn))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- EventSink --------------------------------------------------------------------
    async def press(self, endpoint_id: str, cause: str) -> None:
        await self.conn.publish(
            self.topics.state(endpoint_id, "press"), json.dumps({"event_type": "press"})
        )

    async def motion(self, endpoint_id: str, detected: bool, at: float) -> None:
        for change in self.hold.motion(endpoint_id, detected, at):
            await self._publish_motion(change.endpoint_id, change.state)
        self._schedule_expiry()

    async def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None,
        at: float,
        snapshot_jpeg: bytes | None,
    ) -> None:
        if snapshot_jpeg:
            await self.conn.publish(
                self.topics.state(endpoint_id, "snapshot"), snapshot_jpeg, retain=True
            )
        event: dict[str, Any] = {"event_type": label}
        if score is not None:
            event["score"] = round(score, 3)
        await self.conn.publish(self.topics.state(endpoint_id, "detection"), json.dumps(event))

    async def _publish_motion(self, endpoint_id: str, state: str) -> None:
        await self.conn.publish(
            self.topics.state(endpoint_id, "motion"),
            "ON" if state == DETECTED else "OFF",
            retain=True,
        )

    # -- the hold's end ---------------------------------------------------------------
    def _schedule_expiry(self) -> None:
        if self._expiry is None or self._expiry.done():
            self._expiry = asyncio.ensure_future(self._expire_forever())
        self._wake.set()

    async def _expire_forever(self) -> None:
        while True:
            due = self.hold.next_expiry()
            self._wake.clear()
            if due is None:
                await self._wake.wait()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - time.time())):
                    await self._wake.wait()
            for change in self.hold.expire(time.time()):
                await self._publish_motion(change.endpoint_id, change.state)

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
