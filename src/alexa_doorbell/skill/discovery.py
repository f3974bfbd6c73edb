"""Alexa.Discovery: the calling user's cameras and doorbells."""

from __future__ import annotations

from typing import Any

from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.responses import discover_response
from alexa_doorbell.skill.context import SkillContext


def discover(skill: SkillContext, d: Directive, deadline: float) -> dict[str, Any]:
    user_id = skill.user_of(d)
    return discover_response(d, skill.devices_of(user_id))
