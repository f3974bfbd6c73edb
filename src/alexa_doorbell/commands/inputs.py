"""The camera agent's inputs, joined to its cameras (``alexa-doorbell camera``).

    attached = await attach_inputs(service)   # before service.start()
    attached.inputs.webhook                    # what runs (None without a notifier)
    await attached()                           # before service.stop()

Starts every input the settings configure (``inputs.start_inputs``) with a
:class:`~alexa_doorbell.inputs.notifier_sink.NotifierSink` on the service's
notifier, the snapshot bucket and the door timeline in ``data_dir``. As each
camera starts, its decoded pictures go to the built-in detectors (only for a
camera that has one enabled, whose source is then read while nobody watches too)
and its latest one is kept for a detection that comes without a picture. A press
pre-warms its camera and takes its current picture (:class:`PressCamera`): the
press's snapshot in the timeline, and the camera's latest frame for a detection
right after. A press made elsewhere on the machine (``alexa-doorbell press``, the
dashboard), which the agent hears on its press socket, is recorded the same way,
with the status its process reports (``CameraService.on_press_elsewhere``). Here,
above both: the inputs read camera/, and the camera agent knows nothing of the inputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import av

from alexa_doorbell.amazon.snapshots import SnapshotError, SnapshotStore
from alexa_doorbell.camera.press_socket import PressNotice
from alexa_doorbell.camera.service import CameraService, ServedCamera
from alexa_doorbell.inputs import start_inputs
from alexa_doorbell.inputs.notifier_sink import DoorCamera, NotifierSink
from alexa_doorbell.inputs.runner import Inputs
from alexa_doorbell.store.timeline import Timeline

log = logging.getLogger("alexa_doorbell.inputs")


class Attached:
    """The running inputs; awaiting it stops them and closes what they used."""

    def __init__(
        self, inputs: Inputs | None, *closers: Any, sink: NotifierSink | None = None
    ) -> None:
        self.inputs = inputs
        self.sink = sink
        self._closers = closers

    async def __call__(self) -> None:
        if self.inputs is not None:
            await self.inputs.stop()
        if self.sink is not None:
            await self.sink.settle()  # presses whose picture is on its way to the timeline
        for closer in self._closers:
            if closer is not None:
                closer.close()


class LatestFrames:
    """Each camera's most recent decoded picture (a reference, no copy)."""

    def __init__(self) -> None:
        self._frames: dict[str, Any] = {}

    def tap(self, endpoint_id: str) -> Callable[[Any], None]:
        def keep(frame: Any) -> None:
            self._frames[endpoint_id] = frame

        return keep

    def __call__(self, endpoint_id: str) -> Any:
        return self._frames.get(endpoint_id)


class PressCamera:
    """A served camera as a press uses it: pre-warmed, and its current picture, which
    also becomes its latest frame for detections (one decode for both)."""

    def __init__(
        self, camera: ServedCamera, keep: Callable[[Any], None], *, timeout: float = 8.0
    ) -> None:
        self.camera = camera
        self.keep = keep
        self.timeout = timeout  # a camera down: the press is recorded without a picture

    def prewarm(self) -> None:
        self.camera.prewarm()

    async def picture(self) -> av.VideoFrame | None:
        frame = await self.camera.picture(self.timeout)
        if frame is not None:
            self.keep(frame)
        return frame


async def attach_inputs(service: CameraService) -> Attached:
    settings = service.settings
    notifier = service.notifier
    if notifier is None:
        log.warning("inputs: no notifier, so nothing they report reaches Alexa")
        return Attached(None)
    snapshots: SnapshotStore | None = None
    if any(c.detection or c.doorbell for c in settings.cameras):
        try:
            snapshots = SnapshotStore.from_settings(settings)
        except SnapshotError as exc:
            log.warning(
                "inputs: %s; detections are announced and presses recorded without a picture",
                exc,
            )
    timeline = Timeline.in_dir(settings.data_dir)
    latest = LatestFrames()

    def camera_for(endpoint_id: str) -> DoorCamera | None:
        cam = service.cameras.get(endpoint_id)
        return PressCamera(cam, latest.tap(endpoint_id)) if cam is not None else None

    sink = NotifierSink(
        settings, notifier, snapshots, timeline=timeline, frames=latest, cameras=camera_for
    )
    inputs = await start_inputs(settings, sink)

    def on_start(cam: ServedCamera) -> None:
        offer = inputs.frame_sink(cam.endpoint_id)
        if offer is not None:
            cam.add_frame_tap(offer, unwatched=True)  # the door matters most unwatched
        if cam.config.detection:
            cam.add_frame_tap(latest.tap(cam.endpoint_id))

    service.on_start.append(on_start)

    def on_press_elsewhere(notice: PressNotice) -> None:
        assert notice.press is not None  # the service hands on only presses with an id
        if notice.status is None:
            sink.pressed_elsewhere(
                notice.endpoint_id, notice.press, cause=notice.cause, source=notice.source
            )
        else:
            sink.answered_elsewhere(notice.press, notice.status)

    service.on_press_elsewhere.append(on_press_elsewhere)
    now = time.time()
    for cam in settings.cameras:
        if cam.motion:  # quiet until an input says otherwise: ends a DETECTED a restart left
            await sink.motion(cam.endpoint_id, False, now)

    return Attached(inputs, snapshots, timeline, sink=sink)
