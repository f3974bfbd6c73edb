"""Which motion and detections become events for Alexa: pure rules, time passed in.

Inputs are noisy: a motion sensor flaps on and off, a detector reports the same
person on every frame for as long as they stand at the door. Alexa should hear
one ``DETECTED``/``NOT_DETECTED`` pair per stretch of motion and one
announcement per visit. No I/O and no clock here: each call takes ``now`` (one
time base per object, ``time.time()`` or ``time.monotonic()``), so the notifier
(in the camera's process and in Lambda) and the inputs share these rules and
tests table them. Across processes the cooldown's state is the store's
(``Store.claim_detection``, the same rule).

    hold = MotionHold(hold=30.0)
    for change in hold.motion("front-door", True, now):  # -> [MotionChange(DETECTED)]
        send(change)
    ...
    for change in hold.expire(now):  # call by next_expiry(): NOT_DETECTED when due
        send(change)

    cooldown = DetectionCooldown(cooldown=120.0)
    if cooldown.sighting("front-door", "person", now):
        announce()
"""

from __future__ import annotations

from dataclasses import dataclass

from alexa_doorbell.store.base import cooldown_over

DETECTED = "DETECTED"
NOT_DETECTED = "NOT_DETECTED"


@dataclass(frozen=True)
class MotionChange:
    """A transition to report: ``state`` as Alexa.MotionSensor spells it, ``at`` its time."""

    endpoint_id: str
    state: str
    at: float


@dataclass
class _Camera:
    reported: str = NOT_DETECTED
    active: bool = False  # the input says motion now (an "on" without its "off" yet)
    quiet_since: float | None = None  # last motion ended here; NOT_DETECTED due at +hold


class MotionHold:
    """Motion transitions with a hold time.

    ``DETECTED`` is reported on the first motion; ``NOT_DETECTED`` only once the
    input has been quiet for ``hold`` seconds, so on/off flapping within the hold
    makes one pair. Inputs that report a state (Frigate's ``ON``/``OFF``) call
    ``motion()``; inputs that only say "motion now" (a webhook, pixel motion) call
    ``pulse()``. Every method returns the transitions due, oldest first.
    """

    def __init__(self, hold: float = 30.0) -> None:
        if not hold >= 0:
            raise ValueError(f"hold must be >= 0 seconds, not {hold!r}")
        self.hold = hold
        self._cams: dict[str, _Camera] = {}

    def state(self, endpoint_id: str) -> str:
        """What Alexa was last told (NOT_DETECTED for a camera never seen)."""
        cam = self._cams.get(endpoint_id)
        return cam.reported if cam else NOT_DETECTED

    def seed(self, endpoint_id: str, state: str, now: float) -> None:
        """Start from what Alexa was told before a restart (the store's last state).

        A DETECTED with no input behind it ends ``hold`` seconds from ``now``.
        """
        if state not in (DETECTED, NOT_DETECTED):
            raise ValueError(f"state must be {DETECTED} or {NOT_DETECTED}, not {state!r}")
        self._cams[endpoint_id] = _Camera(state, False, now if state == DETECTED else None)

    def motion(self, endpoint_id: str, detected: bool, now: float) -> list[MotionChange]:
        """The input's state changed (or was repeated) at ``now``."""
        cam = self._cams.setdefault(endpoint_id, _Camera())
        changes = self._due(endpoint_id, cam, now)
        if detected:
            cam.active, cam.quiet_since = True, None
            if cam.reported != DETECTED:
                cam.reported = DETECTED
                changes.append(MotionChange(endpoint_id, DETECTED, now))
        elif cam.active or cam.quiet_since is None:
            # A repeated "off" does not push the end further out.
            cam.active = False
            cam.quiet_since = now if cam.reported == DETECTED else None
        return changes + self._due(endpoint_id, cam, now)

    def pulse(self, endpoint_id: str, now: float) -> list[MotionChange]:
        """Motion seen at ``now`` by an input that never says "off"."""
        changes = self.motion(endpoint_id, True, now)
        return changes + self.motion(endpoint_id, False, now)

    def expire(self, now: float) -> list[MotionChange]:
        """NOT_DETECTED for every camera whose hold ran out by ``now``."""
        changes: list[MotionChange] = []
        for endpoint_id, cam in self._cams.items():
            changes += self._due(endpoint_id, cam, now)
        return sorted(changes, key=lambda c: c.at)

    def next_expiry(self) -> float | None:
        """When ``expire()`` has something to report next (None: nothing pending)."""
        due = [
            cam.quiet_since + self.hold
            for cam in self._cams.values()
            if cam.reported == DETECTED and not cam.active and cam.quiet_since is not None
        ]
        return min(due, default=None)

    def _due(self, endpoint_id: str, cam: _Camera, now: float) -> list[MotionChange]:
        if cam.reported != DETECTED or cam.active or cam.quiet_since is None:
            return []
        if now < cam.quiet_since:  # the clock went back: count the hold from now
            cam.quiet_since = now
        end = cam.quiet_since + self.hold
        if now < end:
            return []
        cam.reported, cam.quiet_since = NOT_DETECTED, None
        return [MotionChange(endpoint_id, NOT_DETECTED, end)]


class DetectionCooldown:
    """One announcement per camera and object class per visit.

    A sighting is announced when that class has not been seen at that camera for
    ``cooldown`` seconds. Every sighting, announced or not, restarts the quiet
    period: a person standing at the door for ten minutes, reported on every
    frame, is one announcement; the next visitor after ``cooldown`` quiet seconds
    is another. Classes are independent: a package left by the same person is
    announced too.
    """

    def __init__(self, cooldown: float = 120.0) -> None:
        if not cooldown >= 0:
            raise ValueError(f"cooldown must be >= 0 seconds, not {cooldown!r}")
        self.cooldown = cooldown
        self._last_seen: dict[tuple[str, str], float] = {}

    def sighting(self, endpoint_id: str, image_net_class: str, now: float) -> bool:
        """Record that ``image_net_class`` was seen at ``now``; True when it is to be announced."""
        key = (endpoint_id, image_net_class)
        last = self._last_seen.get(key)
        fresh = cooldown_over(last, now, self.cooldown)
        if last is None or fresh or now > last:
            self._last_seen[key] = now
        return fresh

    def quiet_for(self, endpoint_id: str, image_net_class: str, now: float) -> float | None:
        """Seconds since that class was last seen at that camera (None: never)."""
        last = self._last_seen.get((endpoint_id, image_net_class))
        return None if last is None else now - last
