"""The inputs' events toward Alexa: an ``EventSink`` backed by the notifier.

    sink = NotifierSink(settings, notifier, snapshots, frames=latest, cameras=camera_for)
    inputs = await start_inputs(settings, sink)

- press -> the camera pre-warmed at once (the view Alexa opens after the announcement
  starts warm), ``notifier.press`` (DoorbellPress; debounced by the notifier), and,
  beside it, never before it, the camera's current picture as the press's snapshot
- motion -> ``notifier.motion``, for cameras with ``motion = true`` only (the
  others have no ``Alexa.MotionSensor``); the hold is the notifier's
- detection -> the snapshot (the detector's JPEG, else the camera's current frame
  encoded), put in the snapshot bucket, and ``notifier.detection`` with its
  presigned URL as frameImageUri; only for the classes the camera is configured
  for, and not again within ``detection_cooldown`` (checked here first, so a
  person standing at the door costs no upload per frame; the store's claim decides)
- a press made elsewhere on the machine (``alexa-doorbell press``, the dashboard,
  which send DoorbellPress themselves and tell the agent's press socket) -> the
  camera's picture at once (:meth:`NotifierSink.pressed_elsewhere`), and the press in
  the timeline once that process says what the notifier answered

The notifier's calls block (the store, the gateway, a Lambda invoke): each runs
on a worker thread. Each event lands in the timeline the dashboard shows, with
what the notifier answered; a press once its picture is in the bucket (or did not
come: the camera down), without holding up the next event (:meth:`settle` waits).
A detection without a picture that comes while a press's picture is being taken
waits for it: the camera's latest frame then (``frames``) is that one, not a
second decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from alexa_doorbell.alexa import smartvision
from alexa_doorbell.amazon.snapshots import Snapshot, SnapshotError
from alexa_doorbell.inputs.sink import OnceLog
from alexa_doorbell.notifier.client import Notifier
from alexa_doorbell.notifier.debounce import DetectionCooldown
from alexa_doorbell.notifier.outcome import summary
from alexa_doorbell.store.timeline import DoorEvent, Timeline

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

FrameSource = Callable[[str], Any]  # endpoint id -> its latest decoded frame, or None


class DoorCamera(Protocol):
    """What a press asks of its camera (``camera.service.ServedCamera``, adapted by
    ``commands.inputs``): start what the view needs, then its current picture."""

    def prewarm(self) -> None: ...
    async def picture(self) -> av.VideoFrame | None: ...


CameraFor = Callable[[str], DoorCamera | None]  # endpoint id -> its camera, if served here


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


class NotifierSink:
    def __init__(
        self,
        settings: SinkSettings,
        notifier: Notifier,
        snapshots: Snapshots | None,
        *,
        timeline: Timeline | None = None,
        frames: FrameSource | None = None,
        cameras: CameraFor | None = None,
        reply_wait: float = 30.0,
    ) -> None:
        self.notifier = notifier
        self.reply_wait = reply_wait  # seconds a press elsewhere has for its answer
        self.snapshots = snapshots
        self.timeline = timeline
        self.frames = frames
        self.cameras = cameras
        self._press_pictures: dict[str, asyncio.Future[Any]] = {}  # a press's, being taken
        self._pending: set[asyncio.Task[None]] = set()  # presses not yet in the timeline
        self._answers: dict[str, asyncio.Future[str]] = {}  # presses elsewhere, by id
        self.motion_hold = settings.motion_hold
        self._motion = {c.endpoint_id for c in settings.cameras if c.motion}
        self._classes = {c.endpoint_id: smartvision.accepted(c.detection) for c in settings.cameras}
        self._cooldown = DetectionCooldown(settings.detection_cooldown)
        self._last_motion: dict[str, float] = {}
        self._warn = OnceLog(log)

    # -- EventSink ----------------------------------------------------------------------
    async def press(self, endpoint_id: str, cause: str) -> None:
        at = time.time()
        picture = self._start_picture(endpoint_id)
        outcomes = await asyncio.to_thread(self.notifier.press, endpoint_id, cause)
        event = DoorEvent(at, endpoint_id, "press", cause, status=summary(outcomes))
        if picture is None:
            self._note(event)
        else:
            self._later(self._note_press(event, picture))

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

    # -- presses made elsewhere on the machine (the agent's press socket) ----------------
    def pressed_elsewhere(self, endpoint_id: str, press: str, *, cause: str, source: str) -> None:
        """``alexa-doorbell press`` or the dashboard is sending DoorbellPress itself (the
        agent has pre-warmed the camera): take the camera's picture now, and record the
        press once :meth:`answered_elsewhere` says what the notifier answered, or with
        "no reply" after ``reply_wait`` seconds. A repeat of the same press is ignored."""
        if press in self._answers:
            return
        at = time.time()
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._answers[press] = answer
        picture = self._start_picture(endpoint_id, prewarm=False)  # the agent did that
        event = DoorEvent(at, endpoint_id, "press", cause or "PHYSICAL_INTERACTION", source=source)
        self._later(self._note_elsewhere(event, press, answer, picture))

    def answered_elsewhere(self, press: str, status: str) -> None:
        answer = self._answers.get(press)
        if answer is None or answer.done():
            log.debug("inputs: an answer to press %s, which is not awaited", press)
            return
        answer.set_result(status)

    async def _note_elsewhere(
        self,
        event: DoorEvent,
        press: str,
        answer: asyncio.Future[str],
        picture: asyncio.Future[Any] | None,
    ) -> None:
        try:
            status = await asyncio.wait_for(asyncio.shield(answer), self.reply_wait)
        except TimeoutError:
            status = "no reply"  # the pressing process died, or its answer was lost
        finally:
            self._answers.pop(press, None)
        event = dataclasses.replace(event, status=status)
        if picture is None:
            self._note(event)
        else:
            await self._note_press(event, picture)

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until every press so far is in the timeline (its picture taken or not);
        a press made elsewhere still unanswered is recorded as "no reply" now."""
        for answer in list(self._answers.values()):
            if not answer.done():
                answer.set_result("no reply")
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    # -- a press's picture --------------------------------------------------------------
    def _start_picture(
        self, endpoint_id: str, *, prewarm: bool = True
    ) -> asyncio.Future[Any] | None:
        """Pre-warm the camera and start taking its picture; None without either."""
        camera = self.cameras(endpoint_id) if self.cameras is not None else None
        if camera is None:
            return None
        try:
            if prewarm:
                camera.prewarm()
        except Exception as exc:  # a press is announced whatever the camera does
            self._warn.warning(("prewarm", endpoint_id), "inputs: prewarm %s: %s", endpoint_id, exc)
        if self.snapshots is None:
            return None  # nowhere to keep it: said once when the store could not open
        picture = asyncio.ensure_future(camera.picture())
        self._press_pictures[endpoint_id] = picture
        picture.add_done_callback(lambda done: self._forget_picture(endpoint_id, done))
        return picture

    def _forget_picture(self, endpoint_id: str, done: asyncio.Future[Any]) -> None:
        if self._press_pictures.get(endpoint_id) is done:
            del self._press_pictures[endpoint_id]

    async def _note_press(self, event: DoorEvent, picture: asyncio.Future[Any]) -> None:
        eid = event.endpoint_id
        snapshot = None
        try:
            frame = await picture
            if frame is None:
                self._warn.warning(
                    ("no press picture", eid),
                    "inputs: no picture of %s for its press (the camera gave none): recorded "
                    "without one",
                    eid,
                )
            else:
                jpeg = await asyncio.to_thread(_encode_jpeg, frame)
                snapshot = await self._put(eid, jpeg, uuid.uuid4().hex, event.at)
        except Exception as exc:  # the press is recorded whatever became of its picture
            self._warn.warning(
                ("press picture", eid, str(exc)), "inputs: picture of %s: %s", eid, exc
            )
        if snapshot is not None:
            event = dataclasses.replace(event, snapshot_key=snapshot.key)
        self._note(event)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- helpers ------------------------------------------------------------------------
    async def _snapshot(
        self, endpoint_id: str, jpeg: bytes | None, event_id: str, at: float
    ) -> Snapshot | None:
        if self.snapshots is None:
            return None
        pressed = self._press_pictures.get(endpoint_id)
        if jpeg is None and pressed is not None:  # that picture, not a second decode
            with contextlib.suppress(Exception):
                await asyncio.shield(pressed)
        if jpeg is None and self.frames is not None:
            frame = self.frames(endpoint_id)
            if frame is not None:
                jpeg = await asyncio.to_thread(_encode_jpeg, frame)
        if jpeg is None:
            self._warn.warning(
                ("no picture", endpoint_id),
                "inputs: no snapshot for %s (the detector sent none and no frame is decoded "
                "yet): announced without a picture",
                endpoint_id,
            )
            return None
        return await self._put(endpoint_id, jpeg, event_id, at)

    async def _put(
        self, endpoint_id: str, jpeg: bytes, event_id: str, at: float
    ) -> Snapshot | None:
        assert self.snapshots is not None
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


def _encode_jpeg(frame: Any) -> bytes:
    from alexa_doorbell.camera.jpeg import encode_jpeg  # PyAV's, loaded with the first

    return encode_jpeg(frame)
