"""Alexa.SmartVision.ObjectDetectionSensor: the classes each user enabled per camera.

``SetObjectDetectionClasses`` (sent when the user switches person or package
notifications in the Alexa app) stores the user's choice; the notifier sends
ObjectDetection only for the classes ``enabled_classes`` returns.
"""

from __future__ import annotations

from typing import Any

from alexa_doorbell.alexa import smartvision
from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.responses import (
    object_detection_classes_invalid,
    object_detection_classes_set,
)
from alexa_doorbell.skill.context import SkillContext
from alexa_doorbell.store.base import DetectionClasses, Device, Store


def enabled_classes(store: Store, user_id: str, device: Device) -> tuple[str, ...]:
    """The classes to announce to ``user_id`` for ``device``, among what it detects."""
    chosen = store.get_detection_classes(user_id, device.endpoint_id)
    return smartvision.effective_classes(
        device.detection_classes, None if chosen is None else chosen.classes
    )


def set_object_detection_classes(
    skill: SkillContext, d: Directive, deadline: float
) -> dict[str, Any]:
    device = skill.owned_device(d)
    user_id = skill.user_of(d)  # resolved once already by owned_device (cached)
    requested = smartvision.requested_classes(d.payload)
    supported = smartvision.accepted(device.detection_classes)
    enabled = tuple(c for c in supported if c in requested)
    rejected = [c for c in requested if c not in supported]
    now = skill.clock()
    # What can be enabled is, even when some of the request cannot: Amazon's error for
    # this case carries "the final list of enabled" classes, so Alexa knows either way.
    skill.store.put_detection_classes(
        DetectionClasses(user_id, device.endpoint_id, enabled, updated_at=now)
    )
    if rejected:
        return object_detection_classes_invalid(d, rejected, enabled, supported)
    return object_detection_classes_set(d, enabled, now)
