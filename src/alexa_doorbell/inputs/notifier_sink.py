"""The inputs' events toward Alexa: an ``EventSink`` backed by the notifier.

    sink = NotifierSink(settings, notifier, snapshots, frames=agent.current_frame)
    inputs = await start_inputs(settings, sink)

- press -> ``notifier.press`` (DoorbellPress; debounced by the notifier)
- motion -> ``notifier.motion``, for cameras with ``motion = true`` only (the
  others have no ``Alexa.MotionSensor``); the hold is the notifier's
- detection -> the snapshot (the detector's JPEG, else the camera's current frame
  encoded), put in the snapshot bucket, and ``notifier.detection`` with its
  presigned URL as frameImageUri; only for the classes the camera is configured
  for, and not again within ``detection_cooldown`` (checked here first, so a
  person standing at the door costs no upload per frame; the store's claim decides)

The notifier's calls block (the store, the gateway, a Lambda invoke): each runs
on a worker thread. Each event lands in the timeline the dashboard shows, with
what the notifier answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from alexa_doorbell.alexa import smartvision
from alexa_doorbell.amazon.snapshots import Snapshot, SnapshotError
from alexa_doorbell.inputs.sink import OnceLog
from alexa_doorbell.notifier.client import Notifier
from alexa_doorbell.notifier.debounce import DetectionCooldown
from alexa_doorbell.notifier.outcome import Outcome
from alexa_doorbell.store.timeline import DoorEvent, Timeline

log = logging.getLogger(__name__)

FrameSource = Callable[[str], Any]  # endpoint id -> its latest decoded frame, or None


class Camera(Protocol):
    """What the sink reads of a configured camera (``config.CameraConfig``)."""

    @property
    def endpoint_id(self) -> str: ...
    @property
    def motion(self) -> bool: ...
    @property
    def detection(self) -> Sequence[str]: ...


class SinkSettings(Protocol):
    @property
    def cameras(self) -> Sequence[Camera]: ...
    @property
    def motion_hold(self) -> float: ...
    @property
    def detection_cooldown(self) -> float: ...


class Snapshots(Protocol):
    """Where pictures go (``amazon.snapshots.SnapshotStore``)."""

    async def put_async(
        self,
        endpoint_id: str,
        image: bytes,
        *,
        event_id: str | None = None,
        taken_at: float | None = None,
    ) -> Snapshot: ...


def summary(outcomes: Sequence[Outcome]) -> str:
    """The notifier's answer in one word or two: the sent status if any, else the first."""
    if not outcomes:
        return "no reply"
    sent = [o.status for o in outcomes if o.ok]
    return ", ".join(dict.fromkeys(sent or [o.status for o in outcomes]))


class NotifierSink:
    def __init__(
        self,
        settings: SinkSettings,
        notifier: Notifier,
        snapshots: Snapshots | None,
        *,
        timeline: Timeline | None = None,
        frames: FrameSource | None = None,
    ) -> None:
        self.notifier = notifier
        self.snapshots = snapshots
        self.timeline = timeline
        self.frames = frames
        self.motion_hold = settings.motion_hold
        self._motion = {c.endpoint_id for c in settings.cameras if c.motion}
        self._classes = {c.endpoint_id: smartvision.accepted(c.detection) for c in settings.cameras}
        self._cooldown = DetectionCooldown(settings.detection_cooldown)
        self._last_motion: dict[str, float] = {}
        self._warn = OnceLog(log)

    # -- EventSink ----------------------------------------------------------------------
    async def press(self, endpoint_id: str, cause: str) -> None:
        at = time.time()
        outcomes = await asyncio.to_thread(self.notifier.press, endpoint_id, cause)
        self._note(DoorEvent(at, endpoint_id, "press", cause, status=summary(outcomes)))

    async def motion(self, endpoint_id: str, detected: bool, at: float) -> None:
        if endpoint_id not in self._motion:
            self._warn.info(
                ("motion", endpoint_id),
                "inputs: motion at %s not sent to Alexa: set motion = true for this camera",
                endpoint_id,
            )
            return
        last = self._last_motion.get(endpoint_id)
        self._last_motion[endpoint_id] = at
        outcomes = await asyncio.to_thread(self.notifier.motion, endpoint_id, detected, at)
        if detected and (last is None or at - last >= self.motion_hold):
            self._note(DoorEvent(at, endpoint_id, "motion", "motion", status=summary(outcomes)))

    async def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None,
        at: float,
        snapshot_jpeg: bytes | None,
    ) -> None:
        name = smartvision.image_net_class(label)
        if name is None or name not in self._classes.get(endpoint_id, ()):
            self._warn.info(
                ("class", endpoint_id, label),
                "inputs: %s at %s not sent to Alexa: add it to the camera's detection list",
                label,
                endpoint_id,
            )
            return
        if not self._cooldown.sighting(endpoint_id, name, at):
            return  # the same visit: the store would say so too, after an upload
        event_id = uuid.uuid4().hex
        snapshot = await self._snapshot(endpoint_id, snapshot_jpeg, event_id, at)
        outcomes = await asyncio.to_thread(
            self.notifier.detection,
            endpoint_id,
            name,
            score,
            at,
            snapshot.url if snapshot else None,
            event_id,
        )
        self._note(
            DoorEvent(
                at,
                endpoint_id,
                "detection",
                name,
                score=score,
                snapshot_key=snapshot.key if snapshot else None,
                status=summary(outcomes),
            )
        )

    # -- helpers ------------------------------------------------------------------------
    async def _snapshot(
        self, endpoint_id: str, jpeg: bytes | None, event_id: str, at: float
    ) -> Snapshot | None:
        if self.snapshots is None:
            return None
        if jpeg is None and self.frames is not None:
            frame = self.frames(endpoint_id)
            if frame is not None:
                from alexa_doorbell.camera.jpeg import encode_jpeg

                jpeg = await asyncio.to_thread(encode_jpeg, frame)
        if jpeg is None:
            self._warn.warning(
                ("no picture", endpoint_id),
                "inputs: no snapshot for %s (the detector sent none and no frame is decoded "
                "yet): announced without a picture",
                endpoint_id,
            )
            return None
        try:
            return await self.snapshots.put_async(endpoint_id, jpeg, event_id=event_id, taken_at=at)
        except SnapshotError as exc:
            self._warn.warning(("snapshot", endpoint_id, str(exc)), "inputs: %s", exc)
            return None

    def _note(self, event: DoorEvent) -> None:
        if self.timeline is None:
            return
        try:
            self.timeline.add(event)
        except Exception as exc:  # the dashboard's record never stops an event
            self._warn.warning(("timeline", str(exc)), "inputs: timeline: %s", exc)
