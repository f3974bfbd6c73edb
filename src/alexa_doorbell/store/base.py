"""The store interface: per-user tokens, the device catalog, RTC sessions, press and
detection claims.

Two implementations sit behind it: SQLite (one machine) and DynamoDB (AWS).
It is imported by the Lambda path, so it uses the standard library only.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field, replace
from typing import Any


def cooldown_over(last_seen: float | None, at: float, cooldown: float) -> bool:
    """The detection cooldown's rule: is a sighting at ``at`` a new visit?

    Yes when nothing was seen for ``cooldown`` seconds before it, or when the last
    sighting is stamped more than ``cooldown`` ahead of it (the clock was set back:
    a door must not stay silent until the clock catches up). Shared by the stores'
    :meth:`Store.claim_detection` and ``notifier.debounce.DetectionCooldown``.
    """
    return last_seen is None or at - last_seen >= cooldown or last_seen - at > cooldown


class StoreError(Exception):
    """A store operation failed."""


class ConflictError(StoreError):
    """A conditional write lost a race: somebody else wrote the row first."""


@dataclass(frozen=True)
class Tokens:
    """One linked user's LWA tokens and their health. Never log this object whole."""

    user_id: str
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds
    region: str = "NA"  # event gateway region: NA, EU or FE
    last_refresh_at: float | None = None
    relink_needed: bool = False
    last_gateway_status: str | None = None  # e.g. "202", "403 SKILL_DISABLED_EXCEPTION"
    version: int = 0  # bumped on every write; used for conditional writes

    def expires_in(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    def __repr__(self) -> str:  # tokens are redacted wherever this object is printed
        return (
            f"Tokens(user_id={self.user_id!r}, access_token='***', refresh_token='***', "
            f"expires_at={self.expires_at:.0f}, region={self.region!r}, "
            f"relink_needed={self.relink_needed}, version={self.version})"
        )

    __str__ = __repr__

    def with_(self, **changes: Any) -> Tokens:
        return replace(self, **changes)


@dataclass(frozen=True)
class Device:
    """One camera or doorbell as Alexa discovers it."""

    endpoint_id: str
    friendly_name: str
    channel_name: str
    description: str = "Camera"
    manufacturer: str = "alexa-doorbell"
    channel_arn: str | None = None
    doorbell: bool = False
    full_duplex: bool = False
    # user_id of the owner; None means "whoever linked" (single-user home set-up)
    owner: str | None = None
    motion: bool = False  # has a motion input: discovered as Alexa.MotionSensor
    # Object classes its detector reports ("person", "package"): SmartVision detection
    detection_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RtcSession:
    """An Alexa RTC session as the skill saw it (SessionConnected/Disconnected)."""

    session_id: str
    endpoint_id: str
    state: str  # "OFFERED", "CONNECTED" or "DISCONNECTED"
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Health:
    """A camera's connectivity as its agent last reported it (EndpointHealth).

    The agent reports OK while its signaling connection is up (and refreshes
    ``updated_at`` as a heartbeat) and UNREACHABLE when it goes down; a
    heartbeat older than the caller's staleness limit also means UNREACHABLE.
    """

    endpoint_id: str
    connectivity: str  # "OK" or "UNREACHABLE", as Alexa.EndpointHealth spells it
    updated_at: float = field(default_factory=time.time)

    def effective(self, max_age: float, now: float | None = None) -> str:
        age = (time.time() if now is None else now) - self.updated_at
        return self.connectivity if age <= max_age else "UNREACHABLE"


@dataclass(frozen=True)
class Motion:
    """A camera's motion as last reported to Alexa (Alexa.MotionSensor detectionState)."""

    endpoint_id: str
    state: str  # "DETECTED" or "NOT_DETECTED"
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class DetectionClasses:
    """The object classes one user enabled for one camera (SetObjectDetectionClasses)."""

    user_id: str
    endpoint_id: str
    classes: tuple[str, ...]  # e.g. ("person",); empty: the user turned every class off
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class EventRecord:
    """An event sent toward Alexa and the gateway's reply (for status pages)."""

    at: float
    user_id: str
    endpoint_id: str
    name: str  # e.g. "DoorbellPress", "ChangeReport"
    status: str  # e.g. "202", "429 THROTTLING_EXCEPTION", "relink needed"
    detail: str = ""


class Store(abc.ABC):
    """Durable state shared by the skill, the notifier and the tools."""

    # -- tokens --------------------------------------------------------
    @abc.abstractmethod
    def get_tokens(self, user_id: str) -> Tokens | None: ...

    @abc.abstractmethod
    def put_tokens(self, tokens: Tokens, *, expected_version: int | None = None) -> Tokens:
        """Write tokens atomically and return them with the new version.

        With ``expected_version`` the write only happens if the stored row still
        has that version (None: unconditional); otherwise ConflictError.
        """

    @abc.abstractmethod
    def list_tokens(self) -> list[Tokens]: ...

    @abc.abstractmethod
    def delete_tokens(self, user_id: str) -> None: ...

    # -- device catalog -------------------------------------------------
    @abc.abstractmethod
    def put_device(self, device: Device) -> None: ...

    @abc.abstractmethod
    def get_device(self, endpoint_id: str) -> Device | None: ...

    @abc.abstractmethod
    def list_devices(self) -> list[Device]: ...

    @abc.abstractmethod
    def delete_device(self, endpoint_id: str) -> None: ...

    # -- RTC sessions ----------------------------------------------------
    @abc.abstractmethod
    def put_session(self, session: RtcSession) -> None: ...

    @abc.abstractmethod
    def get_session(self, session_id: str) -> RtcSession | None: ...

    @abc.abstractmethod
    def list_sessions(self, endpoint_id: str, *, since: float = 0.0) -> list[RtcSession]: ...

    # -- camera health ---------------------------------------------------
    @abc.abstractmethod
    def put_health(self, health: Health) -> None: ...

    @abc.abstractmethod
    def get_health(self, endpoint_id: str) -> Health | None: ...

    # -- motion and object detection ---------------------------------------
    @abc.abstractmethod
    def put_motion(self, motion: Motion) -> None: ...

    @abc.abstractmethod
    def get_motion(self, endpoint_id: str) -> Motion | None: ...

    @abc.abstractmethod
    def put_detection_classes(self, classes: DetectionClasses) -> None: ...

    @abc.abstractmethod
    def get_detection_classes(self, user_id: str, endpoint_id: str) -> DetectionClasses | None:
        """None: the user never chose (every class the camera detects is on)."""

    # -- events sent toward Alexa ---------------------------------------
    @abc.abstractmethod
    def add_event_record(self, record: EventRecord) -> None: ...

    @abc.abstractmethod
    def recent_event_records(self, limit: int = 50) -> list[EventRecord]: ...

    # -- doorbell presses -------------------------------------------------
    @abc.abstractmethod
    def claim_press(self, endpoint_id: str, claim_id: str, *, at: float, window: float) -> bool:
        """Take the doorbell's press slot in one atomic conditional write.

        True: the slot was free and now holds ``claim_id`` stamped ``at``; this
        caller sends the press. False: another claim of ``endpoint_id`` made less
        than ``window`` seconds before ``at`` holds it (the press is debounced).
        A claim stamped more than ``window`` after ``at`` holds nothing either: the
        clock was set back, and a doorbell must not stay silent until it catches up.
        """

    @abc.abstractmethod
    def release_press(self, endpoint_id: str, claim_id: str) -> bool:
        """Free the slot if ``claim_id`` still holds it (its press reached nobody).

        Conditional too: a claim that expired and was taken by a newer press is
        left alone. True when this call freed the slot.
        """

    # -- object detections ------------------------------------------------
    @abc.abstractmethod
    def claim_detection(
        self, endpoint_id: str, image_net_class: str, *, at: float, cooldown: float
    ) -> bool:
        """Record a sighting of ``image_net_class`` at the camera in one atomic write.

        True: this sighting starts a visit (:func:`cooldown_over`) and this caller
        announces it. Every sighting, announced or not, moves the last-seen time
        forward (never back), so a person standing at the door for ten minutes is
        one announcement, from whichever process or Lambda saw them first.
        """

    def close(self) -> None:  # noqa: B027 - optional for implementations
        """Release connections."""
