"""Motion and person/package events toward Alexa: EventSender's half for what cameras see.

    sender.motion("front-door", True, at)      # an input's state: held, then reported
    sender.expire_motion()                     # NOT_DETECTED whose hold ran out (a timer)
    sender.report_motion("front-door", "NOT_DETECTED", at)  # a transition held elsewhere
    sender.detection("front-door", "person", 0.91, at, snapshot_url, "frigate-ev-1")

Motion goes through a :class:`~alexa_doorbell.notifier.debounce.MotionHold` (seeded
from the store's last state, so a restart neither repeats DETECTED nor forgets to
end it) and becomes an ``Alexa.MotionSensor`` ChangeReport, with the camera's
connectivity in the context, only when the stored state changes. A detection is
announced when the store's claim says this sighting starts a visit
(``Store.claim_detection``: one conditional write, so of two processes or Lambdas
seeing the same person one announces), to each owner who has that class enabled
(``SetObjectDetectionClasses``; never chosen: every class the camera detects).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from alexa_doorbell.alexa import events, smartvision
from alexa_doorbell.alexa.common import connectivity_property
from alexa_doorbell.notifier.debounce import DETECTED, NOT_DETECTED, MotionChange, MotionHold
from alexa_doorbell.notifier.outcome import CHANGE_REPORT, OBJECT_DETECTION, Build, Outcome
from alexa_doorbell.store.base import Device, Motion, Store

if TYPE_CHECKING:
    from collections.abc import Sequence


class Sightings:
    """Mixed into ``EventSender``, whose store, clock and sending it uses."""

    store: Store
    clock: Callable[[], float]
    health_max_age: float

    def __init__(self, *, motion_hold: float = 30.0, detection_cooldown: float = 120.0) -> None:
        if not detection_cooldown >= 0:
            raise ValueError(f"detection_cooldown must be >= 0 s, not {detection_cooldown!r}")
        self.hold = MotionHold(motion_hold)
        self.detection_cooldown = detection_cooldown
        self._seeded: set[str] = set()
        self._motion_lock = threading.Lock()

    # provided by EventSender
    def _device(
        self, endpoint_id: str | None, *, doorbell: bool = False, name: str = CHANGE_REPORT
    ) -> Device | Outcome:
        raise NotImplementedError

    def _owners(self, device: Device) -> list[str]:
        raise NotImplementedError

    def _for_owners(
        self, device: Device, name: str, build: Build, *, note: str = ""
    ) -> list[Outcome]:
        raise NotImplementedError

    def _send(
        self, user_id: str, name: str, endpoint_id: str, build: Build, *, note: str = ""
    ) -> Outcome:
        raise NotImplementedError

    # -- Alexa.MotionSensor ------------------------------------------------------------
    def motion(self, endpoint_id: str, detected: bool, at: float | None = None) -> list[Outcome]:
        """The input's motion state at ``at``: a ChangeReport for each transition due."""
        now = self.clock() if at is None else at
        with self._motion_lock:
            if endpoint_id not in self._seeded:
                self._seeded.add(endpoint_id)
                stored = self.store.get_motion(endpoint_id)
                if stored is not None and stored.state == DETECTED:
                    self.hold.seed(endpoint_id, DETECTED, now)
            changes = self.hold.motion(endpoint_id, detected, now)
        return self._report_changes(changes)

    def expire_motion(self, now: float | None = None) -> list[Outcome]:
        """NOT_DETECTED for cameras whose hold ran out (call by :meth:`next_motion_expiry`)."""
        with self._motion_lock:
            changes = self.hold.expire(self.clock() if now is None else now)
        return self._report_changes(changes)

    def next_motion_expiry(self) -> float | None:
        """When :meth:`expire_motion` has something to report (clock seconds; None: never)."""
        with self._motion_lock:
            return self.hold.next_expiry()

    def _report_changes(self, changes: Sequence[MotionChange]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for change in changes:
            outcomes += self.report_motion(change.endpoint_id, change.state, change.at)
        return outcomes

    def report_motion(self, endpoint_id: str, state: str, at: float) -> list[Outcome]:
        """A transition (held already) to Alexa, if the stored state differs."""
        if state not in (DETECTED, NOT_DETECTED):
            raise ValueError(f"state must be {DETECTED} or {NOT_DETECTED}, not {state!r}")
        device = self._device(endpoint_id, name=CHANGE_REPORT)
        if isinstance(device, Outcome):
            return [device]
        if not device.motion:
            return [
                Outcome(
                    CHANGE_REPORT,
                    endpoint_id,
                    "no motion sensor",
                    False,
                    detail="set motion = true for this camera (Alexa.MotionSensor)",
                )
            ]
        previous = self.store.get_motion(endpoint_id)
        if (previous.state if previous else NOT_DETECTED) == state:
            return [
                Outcome(CHANGE_REPORT, endpoint_id, "unchanged", True, detail=f"motion {state}")
            ]
        self.store.put_motion(Motion(endpoint_id, state, at))
        health = self.store.get_health(endpoint_id)
        now = self.clock()
        connectivity = health.effective(self.health_max_age, now) if health else "UNREACHABLE"
        context = [connectivity_property(connectivity, health.updated_at if health else now)]
        return self._for_owners(
            device,
            CHANGE_REPORT,
            lambda token: events.motion_change_report(
                endpoint_id, token, state, at=at, unchanged=context
            ),
            note=f"motion {state}",
        )

    # -- Alexa.SmartVision.ObjectDetectionSensor -------------------------------------------
    def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None = None,
        at: float | None = None,
        snapshot_url: str | None = None,
        event_id: str | None = None,
    ) -> list[Outcome]:
        """A person or package seen at ``at``: ObjectDetection unless within the cooldown.

        ``snapshot_url`` is the presigned HTTPS GET of the picture (frameImageUri);
        the notifier never sees the image itself.
        """
        device = self._device(endpoint_id, name=OBJECT_DETECTION)
        if isinstance(device, Outcome):
            return [device]
        name = smartvision.image_net_class(label)
        supported = smartvision.accepted(device.detection_classes)
        if name is None or name not in supported:
            have = ", ".join(supported) or 'none: set detection = ["person"]'
            return [
                Outcome(
                    OBJECT_DETECTION,
                    endpoint_id,
                    "not configured",
                    True,
                    detail=f"{label!r} is not among this camera's detection classes ({have})",
                )
            ]
        if snapshot_url is not None and not snapshot_url.startswith("https://"):
            raise ValueError("snapshot_url must be an https:// URL Alexa can fetch")
        when = self.clock() if at is None else at
        if not self.store.claim_detection(
            endpoint_id, name, at=when, cooldown=self.detection_cooldown
        ):
            return [
                Outcome(
                    OBJECT_DETECTION,
                    endpoint_id,
                    "cooldown",
                    True,
                    detail=f"{name} seen here within {self.detection_cooldown:g} s",
                )
            ]
        found = smartvision.Detection(
            name,
            when,
            frame_image_uri=snapshot_url,
            event_identifier=(event_id or str(uuid.uuid4()))[:256],
        )
        note = name if score is None else f"{name} {score:.2f}"
        users = self._owners(device)
        if not users:  # "not linked", recorded; nothing is built
            return self._for_owners(device, OBJECT_DETECTION, lambda token: {})
        outcomes: list[Outcome] = []
        for user in users:
            chosen = self.store.get_detection_classes(user, endpoint_id)
            enabled = smartvision.effective_classes(
                device.detection_classes, None if chosen is None else chosen.classes
            )
            if name not in enabled:
                outcomes.append(
                    Outcome(
                        OBJECT_DETECTION,
                        endpoint_id,
                        "turned off",
                        True,
                        user,
                        f"{name} notifications are off for this camera in the Alexa app",
                    )
                )
                continue
            outcomes.append(
                self._send(
                    user,
                    OBJECT_DETECTION,
                    endpoint_id,
                    lambda token: smartvision.object_detection(endpoint_id, token, [found]),
                    note=note,
                )
            )
        return outcomes
