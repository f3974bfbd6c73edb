"""``Alexa.SmartVision.ObjectDetectionSensor`` 1.0: person and package detection.

Discovery capability, the ``objectDetectionClasses`` property, the
``ObjectDetection`` event (with the snapshot's ``frameImageUri``) and the
``SetObjectDetectionClasses`` payload. Amazon's bundled schema has no branch
for this namespace; ``alexa/schema/alexa_doorbell_smartvision_schema.json`` is
ours, written from Amazon's documentation (choices in docs/events.md). The
replies to ``SetObjectDetectionClasses`` are in ``responses``.

    from alexa_doorbell.alexa import smartvision
    msg = smartvision.object_detection(
        "front-door", token, [smartvision.Detection("person", at, frame_image_uri=url)]
    )
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alexa_doorbell.alexa.common import endpoint, header, timestamp
from alexa_doorbell.alexa.errors import InvalidDirective

NAMESPACE = "Alexa.SmartVision.ObjectDetectionSensor"
# Interface version and payloadVersion of its own messages (ObjectDetection, its
# ErrorResponse). Replies in the "Alexa" namespace keep payloadVersion "3".
VERSION = "1.0"
PROPERTY = "objectDetectionClasses"
# The classes Alexa accepts for imageNetClass.
IMAGE_NET_CLASSES = ("person", "package")
MAX_REQUESTED = 32  # a SetObjectDetectionClasses asking for more is not Alexa's
MAX_CLASS_CHARS = 64


def image_net_class(label: object) -> str | None:
    """The imageNetClass for a detector's label ("Person" -> "person"); None if Alexa has none."""
    if not isinstance(label, str):
        return None
    name = label.strip().lower()
    return name if name in IMAGE_NET_CLASSES else None


def accepted(classes: Iterable[str]) -> tuple[str, ...]:
    """``classes`` that Alexa accepts, deduplicated, in the order given."""
    out: list[str] = []
    for c in classes:
        name = image_net_class(c)
        if name and name not in out:
            out.append(name)
    return tuple(out)


def effective_classes(supported: Iterable[str], chosen: Iterable[str] | None) -> tuple[str, ...]:
    """The classes to announce for one user: what they enabled, among what the camera detects.

    ``chosen`` None means the user never sent SetObjectDetectionClasses: every class
    the camera is configured for is on (the owner configured it to announce them).
    """
    camera = accepted(supported)
    if chosen is None:
        return camera
    wanted = set(accepted(chosen))
    return tuple(c for c in camera if c in wanted)


def _classes_value(classes: Iterable[str]) -> list[dict[str, str]]:
    return [{"imageNetClass": c} for c in classes]


def capability(classes: Sequence[str]) -> dict[str, Any]:
    """The discovery capability for a camera that detects ``classes``."""
    names = accepted(classes)
    if not names:
        raise ValueError(f"no class Alexa accepts in {list(classes)!r}: use {IMAGE_NET_CLASSES}")
    return {
        "type": "AlexaInterface",
        "interface": NAMESPACE,
        "version": VERSION,
        "properties": {
            "supported": [{"name": PROPERTY}],
            "proactivelyReported": True,
            "retrievable": True,
        },
        "configuration": {"objectDetectionConfiguration": _classes_value(names)},
    }


def classes_property(
    classes: Iterable[str], at: float | None = None, uncertainty_ms: int = 0
) -> dict[str, Any]:
    """The ``objectDetectionClasses`` property: the classes the user enabled."""
    return {
        "namespace": NAMESPACE,
        "name": PROPERTY,
        "value": _classes_value(accepted(classes)),
        "timeOfSample": timestamp(at),
        "uncertaintyInMilliseconds": uncertainty_ms,
    }


@dataclass(frozen=True)
class Detection:
    """One detected object: an item of the ObjectDetection event's ``payload.events``.

    ``event_identifier`` names this detection (a detector's event id; a fresh UUID
    by default); ``object_identifier`` the tracked object, when the detector tracks.
    ``frame_image_uri`` must be an HTTPS URL Alexa can fetch (a presigned GET).
    """

    image_net_class: str
    at: float
    frame_image_uri: str | None = None
    cropped_image_uri: str | None = None
    object_identifier: str | None = None
    event_identifier: str = field(default_factory=lambda: str(uuid.uuid4()))
    uncertainty_ms: int = 0

    def as_event(self) -> dict[str, Any]:
        name = image_net_class(self.image_net_class)
        if name is None:
            raise ValueError(
                f"imageNetClass must be one of {IMAGE_NET_CLASSES}, not {self.image_net_class!r}"
            )
        out: dict[str, Any] = {
            "eventIdentifier": self.event_identifier,
            "imageNetClass": name,
            "timeOfSample": timestamp(self.at),
            "uncertaintyInMilliseconds": self.uncertainty_ms,
        }
        for key, value in (
            ("objectIdentifier", self.object_identifier),
            ("frameImageUri", self.frame_image_uri),
            ("croppedImageUri", self.cropped_image_uri),
        ):
            if value is not None:
                out[key] = value
        return out


def object_detection(
    endpoint_id: str, token: str, detections: Iterable[Detection]
) -> dict[str, Any]:
    """The ``ObjectDetection`` event: one message, one item per detected object."""
    events = [d.as_event() for d in detections]
    if not events:
        raise ValueError("ObjectDetection needs at least one detection")
    return {
        "event": {
            "header": header(NAMESPACE, "ObjectDetection", payload_version=VERSION),
            "endpoint": endpoint(endpoint_id, token),
            "payload": {"events": events},
        }
    }


def requested_classes(payload: dict[str, Any]) -> list[str]:
    """The class names a ``SetObjectDetectionClasses`` payload asks for, deduplicated.

    Names are returned as sent (an unknown one is the caller's INVALID_VALUE); a
    payload of the wrong shape is InvalidDirective.
    """
    items = payload.get("objectDetectionClasses")
    if not isinstance(items, list):
        raise InvalidDirective("payload.objectDetectionClasses must be a list")
    if len(items) > MAX_REQUESTED:
        raise InvalidDirective(f"payload.objectDetectionClasses has over {MAX_REQUESTED} items")
    out: list[str] = []
    for i, item in enumerate(items):
        name = item.get("imageNetClass") if isinstance(item, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CLASS_CHARS:
            raise InvalidDirective(
                f"payload.objectDetectionClasses[{i}].imageNetClass must be a string of "
                f"1-{MAX_CLASS_CHARS} characters"
            )
        if name not in out:
            out.append(name)
    return out
