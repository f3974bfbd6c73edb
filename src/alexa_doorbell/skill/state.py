"""Alexa.ReportState: EndpointHealth connectivity as the camera agent last reported it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.responses import state_report

if TYPE_CHECKING:
    from alexa_doorbell.skill.app import Skill


def connectivity(skill: Skill, endpoint_id: str) -> tuple[str, float | None]:
    """("OK"|"UNREACHABLE", time of the report); a stale heartbeat counts as UNREACHABLE."""
    health = skill.store.get_health(endpoint_id)
    if health is None:
        return "UNREACHABLE", None
    return health.effective(skill.health_max_age, now=skill.clock()), health.updated_at


def report_state(skill: Skill, d: Directive, deadline: float) -> dict[str, Any]:
    device = skill.owned_device(d)
    value, at = connectivity(skill, device.endpoint_id)
    # A stale report is sampled now: that is when we concluded it is unreachable.
    if at is None or value != "OK":
        at = skill.clock()
    return state_report(d, value, at)
