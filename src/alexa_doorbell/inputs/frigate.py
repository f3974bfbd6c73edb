"""Frigate NVR over MQTT: its tracked objects become detections, its motion motion.

What Frigate publishes under its ``topic_prefix`` (``frigate_topic_prefix``,
default ``frigate``), as its documentation and code have it:

- ``frigate/events`` (not retained): JSON ``{"type": "new"|"update"|"end",
  "before": {...}, "after": {...}}`` per tracked object; ``after`` carries ``id``,
  ``camera``, ``label``, ``score``, ``top_score``, ``start_time``,
  ``false_positive``, ``entered_zones``, ``has_snapshot``. The first message
  ("new") comes once the object is no longer a false positive; "update" when a
  better snapshot or a zone change comes; "end" when it left. ``thumbnail`` is
  always null over MQTT, so the picture comes from:
- ``frigate/<camera>/<label>/snapshot`` (retained): the JPEG of the best frame
  of that label at that camera, published when the object appears and each
  time Frigate finds a better frame (right after the event message that
  announces it, in the same frame's processing).
- ``frigate/<camera>/motion`` (not retained): ``ON`` / ``OFF``.

A camera of ours takes Frigate's objects and motion when its ``frigate_camera``
names a Frigate camera. Each tracked object is one detection, sent once: on its
first message whose label Alexa knows (person, package) and, when the camera
lists ``frigate_zones``, once it entered one of them. The snapshot is the one
Frigate published live for that camera and label since the object appeared;
if none came yet, up to ``snapshot_wait`` seconds are given for it, then the
detection goes without (the agent then takes the camera's current frame).
A retained snapshot replayed on (re)subscribe is an old picture and is never
used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from alexa_doorbell.alexa.smartvision import image_net_class
from alexa_doorbell.inputs.mqtt import MqttConnection, Received
from alexa_doorbell.inputs.payloads import PayloadError, decode_json, read_state
from alexa_doorbell.inputs.sink import Detection, Event, Motion, OnceLog

log = logging.getLogger(__name__)

EVENT_TYPES = ("new", "update", "end")
SNAPSHOT_WAIT = 1.0  # seconds a detection waits for Frigate's snapshot of it
SNAPSHOT_SLACK = 2.0  # a snapshot received this long before start_time still counts
REMEMBERED = 2048  # tracked-object ids remembered as announced


@dataclass(frozen=True)
class FrigateObject:
    """The parts of ``after`` in a ``frigate/events`` message that we use."""

    type: str
    id: str
    camera: str
    label: str
    score: float | None
    start_time: float | None
    false_positive: bool
    entered_zones: tuple[str, ...]
    has_snapshot: bool


def _number(obj: Mapping[str, object], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"after.{key} is {value!r}, not a number")
    return float(value)


def _text(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"after.{key} is {value!r}, not a name")
    return value


def parse_event(payload: bytes) -> FrigateObject:
    """One ``frigate/events`` message; PayloadError naming what is wrong."""
    message = decode_json(payload)
    if not isinstance(message, dict):
        raise PayloadError(f"a JSON {type(message).__name__}, not an object")
    kind = message.get("type")
    if kind not in EVENT_TYPES:
        raise PayloadError(f"type is {kind!r}, not one of {', '.join(EVENT_TYPES)}")
    after = message.get("after")
    if not isinstance(after, dict):
        raise PayloadError("no 'after' object")
    top, score = _number(after, "top_score"), _number(after, "score")
    zones = after.get("entered_zones") or []
    if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
        raise PayloadError(f"after.entered_zones is {zones!r}, not a list of names")
    return FrigateObject(
        type=kind,
        id=_text(after, "id"),
        camera=_text(after, "camera"),
        label=_text(after, "label"),
        score=top if top is not None else score,
        start_time=_number(after, "start_time"),
        false_positive=after.get("false_positive") is True,
        entered_zones=tuple(zones),
        has_snapshot=after.get("has_snapshot") is True,
    )


@dataclass(frozen=True)
class FrigateCamera:
    """One of our cameras as Frigate knows it."""

    endpoint_id: str
    frigate_camera: str
    zones: tuple[str, ...] = ()


class FrigateInput:
    def __init__(
        self,
        cameras: Sequence[FrigateCamera],
        emit: Callable[[Event], None],
        *,
        prefix: str = "frigate",
        snapshot_wait: float = SNAPSHOT_WAIT,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.cameras: dict[str, list[FrigateCamera]] = {}
        for cam in cameras:
            self.cameras.setdefault(cam.frigate_camera, []).append(cam)
        self.emit = emit
        self.snapshot_wait = snapshot_wait
        # (frigate camera, imageNetClass) -> (received at, JPEG), live messages only
        self._snapshots: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._snapshot_came: dict[tuple[str, str], asyncio.Event] = {}
        self._announced: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._pending: set[asyncio.Task[None]] = set()
        self._warn = OnceLog(log)

    def attach(self, conn: MqttConnection) -> None:
        conn.route(f"{self.prefix}/events", self.on_event)
        for name in self.cameras:
            conn.route(f"{self.prefix}/{name}/motion", self.on_motion)
            conn.route(f"{self.prefix}/{name}/+/snapshot", self.on_snapshot)

    # -- frigate/events -----------------------------------------------------------------
    def on_event(self, msg: Received) -> None:
        try:
            obj = parse_event(msg.payload)
        except PayloadError as exc:
            self._warn.warning(("events", str(exc)), "frigate: ignoring %s: %s", msg.topic, exc)
            return
        cams = self.cameras.get(obj.camera)
        if cams is None:
            self._warn.info(
                ("camera", obj.camera),
                "frigate: camera %r is no camera's frigate_camera; its events are ignored",
                obj.camera,
            )
            return
        label = image_net_class(obj.label)
        for cam in cams:
            key = (cam.endpoint_id, obj.id)
            if obj.type == "end":
                self._announced.pop(key, None)
                continue
            if label is None or obj.false_positive or key in self._announced:
                continue
            if cam.zones and not set(cam.zones) & set(obj.entered_zones):
                continue  # not yet where this camera looks (the porch, not the street)
            self._announced[key] = None
            while len(self._announced) > REMEMBERED:
                self._announced.popitem(last=False)
            task = asyncio.ensure_future(self._announce(cam, obj, label, msg.at))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _announce(
        self, cam: FrigateCamera, obj: FrigateObject, label: str, at: float
    ) -> None:
        key = (obj.camera, obj.label)
        since = (obj.start_time if obj.start_time is not None else at) - SNAPSHOT_SLACK
        jpeg = self._fresh_snapshot(key, since)
        if jpeg is None and self.snapshot_wait > 0:
            came = self._snapshot_came.setdefault(key, asyncio.Event())
            came.clear()
            try:
                async with asyncio.timeout(self.snapshot_wait):
                    await came.wait()
            except TimeoutError:
                pass
            jpeg = self._fresh_snapshot(key, since)
        self.emit(Detection(cam.endpoint_id, label, obj.score, at, jpeg, source="frigate"))

    def _fresh_snapshot(self, key: tuple[str, str], since: float) -> bytes | None:
        got = self._snapshots.get(key)
        return got[1] if got is not None and got[0] >= since else None

    # -- frigate/<camera>/<label>/snapshot ------------------------------------------------
    def on_snapshot(self, msg: Received) -> None:
        if msg.retained:
            return  # the last picture from before we subscribed: of some earlier visit
        parts = msg.topic[len(self.prefix) + 1 :].split("/")
        if len(parts) != 3:
            return
        name, label = parts[0], parts[1]
        if not msg.payload.startswith(b"\xff\xd8"):
            self._warn.warning(("snapshot", name), "frigate: %s is no JPEG; ignored", msg.topic)
            return
        key = (name, label)
        self._snapshots[key] = (msg.at, msg.payload)
        came = self._snapshot_came.get(key)
        if came is not None:
            came.set()

    # -- frigate/<camera>/motion ------------------------------------------------------------
    def on_motion(self, msg: Received) -> None:
        name = msg.topic[len(self.prefix) + 1 :].split("/")[0]
        try:
            detected = read_state(msg.payload, on="ON", off="OFF")
        except PayloadError as exc:
            self._warn.warning(("motion", name), "frigate: ignoring %s: %s", msg.topic, exc)
            return
        if detected is None:
            self._warn.warning(
                ("motion", name),
                "frigate: ignoring %s: %r is not ON or OFF",
                msg.topic,
                msg.payload[:40],
            )
            return
        if msg.retained and detected:
            return  # a retained ON may be hours old: it can end motion, never start it
        for cam in self.cameras.get(name, []):
            self.emit(Motion(cam.endpoint_id, detected, msg.at, source="frigate"))

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError):
                await task
