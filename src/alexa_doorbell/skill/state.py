"""Alexa.ReportState: connectivity as the camera agent last reported it, motion as Alexa
was last told, and the object classes the user enabled."""

from __future__ import annotations

from typing import Any

from alexa_doorbell.alexa import smartvision
from alexa_doorbell.alexa.common import detection_state_property
from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.responses import state_report
from alexa_doorbell.skill.context import SkillContext
from alexa_doorbell.skill.detection import enabled_classes


def connectivity(skill: SkillContext, endpoint_id: str) -> tuple[str, float | None]:
    """("OK"|"UNREACHABLE", time of the report); a stale heartbeat counts as UNREACHABLE."""
    health = skill.store.get_health(endpoint_id)
    if health is None:
        return "UNREACHABLE", None
    return health.effective(skill.health_max_age, now=skill.clock()), health.updated_at


def report_state(skill: SkillContext, d: Directive, deadline: float) -> dict[str, Any]:
    device = skill.owned_device(d)
    value, at = connectivity(skill, device.endpoint_id)
    # A stale report is sampled now: that is when we concluded it is unreachable.
    if at is None or value != "OK":
        at = skill.clock()
    properties = []
    # Motion of a camera that is not reachable is unknown: it is left out then.
    if device.motion and value == "OK":
        motion = skill.store.get_motion(device.endpoint_id)
        if motion is None:
            properties.append(detection_state_property("NOT_DETECTED", skill.clock()))
        else:
            properties.append(detection_state_property(motion.state, motion.updated_at))
    if smartvision.accepted(device.detection_classes):
        classes = enabled_classes(skill.store, skill.user_of(d), device)
        properties.append(smartvision.classes_property(classes, skill.clock()))
    return state_report(d, value, at, properties=properties)
