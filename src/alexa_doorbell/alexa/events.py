"""Proactive events sent to the Alexa event gateway (``POST /v3/events``).

Each builder returns the whole message. ``token`` is the user's LWA access
token for the skill's Alexa Skill Messaging client: the same token goes into
the HTTP ``Authorization: Bearer`` header.

    from alexa_doorbell.alexa import events
    msg = events.doorbell_press("front-door", access_token)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alexa_doorbell.alexa.common import (
    connectivity_property,
    detection_state_property,
    endpoint,
    header,
    timestamp,
)
from alexa_doorbell.alexa.discovery import DeviceLike, endpoint_description

# Cause types allowed for DoorbellPress (and ChangeReport, which allows a few more).
CAUSE_TYPES = (
    "APP_INTERACTION",
    "PHYSICAL_INTERACTION",
    "PERIODIC_POLL",
    "RULE_TRIGGER",
    "VOICE_INTERACTION",
)


def _check_cause(cause: str) -> None:
    if cause not in CAUSE_TYPES:
        raise ValueError(f"cause must be one of {CAUSE_TYPES}, not {cause!r}")


def doorbell_press(
    endpoint_id: str, token: str, *, at: float | None = None, cause: str = "PHYSICAL_INTERACTION"
) -> dict[str, Any]:
    """``Alexa.DoorbellEventSource.DoorbellPress``; ``at`` is epoch seconds (default now)."""
    _check_cause(cause)
    return {
        "context": {},
        "event": {
            "header": header("Alexa.DoorbellEventSource", "DoorbellPress"),
            "endpoint": endpoint(endpoint_id, token),
            "payload": {"cause": {"type": cause}, "timestamp": timestamp(at)},
        },
    }


def change_report(
    endpoint_id: str,
    token: str,
    connectivity: str,
    *,
    at: float | None = None,
    cause: str = "PERIODIC_POLL",
) -> dict[str, Any]:
    """``Alexa.ChangeReport`` of ``Alexa.EndpointHealth.connectivity`` (``OK``/``UNREACHABLE``)."""
    _check_cause(cause)
    return {
        "event": {
            "header": header("Alexa", "ChangeReport"),
            "endpoint": endpoint(endpoint_id, token),
            "payload": {
                "change": {
                    "cause": {"type": cause},
                    "properties": [connectivity_property(connectivity, at)],
                }
            },
        }
    }


def motion_change_report(
    endpoint_id: str,
    token: str,
    state: str,
    *,
    at: float | None = None,
    cause: str = "PHYSICAL_INTERACTION",
    unchanged: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """``Alexa.ChangeReport`` of ``Alexa.MotionSensor`` ``detectionState``.

    ``state`` is ``DETECTED`` or ``NOT_DETECTED``; ``at`` is when the motion started
    or, for NOT_DETECTED, when the hold ran out.
    Routines ("when motion is detected at the front door") fire on these.
    ``unchanged``: the endpoint's other properties (e.g. connectivity) for the context.
    """
    _check_cause(cause)
    context = list(unchanged)
    return {
        **({"context": {"properties": context}} if context else {}),
        "event": {
            "header": header("Alexa", "ChangeReport"),
            "endpoint": endpoint(endpoint_id, token),
            "payload": {
                "change": {
                    "cause": {"type": cause},
                    "properties": [detection_state_property(state, at)],
                }
            },
        },
    }


def _scope(token: str) -> dict[str, str]:
    return {"type": "BearerToken", "token": token}


def add_or_update_report(devices: Iterable[DeviceLike], token: str) -> dict[str, Any]:
    """``Alexa.Discovery.AddOrUpdateReport``: endpoints added or changed since discovery."""
    endpoints = [endpoint_description(d) for d in devices]
    if not endpoints:
        raise ValueError("AddOrUpdateReport needs at least one endpoint")
    return {
        "event": {
            "header": header("Alexa.Discovery", "AddOrUpdateReport"),
            "payload": {"endpoints": endpoints, "scope": _scope(token)},
        }
    }


def delete_report(endpoint_ids: Iterable[str], token: str) -> dict[str, Any]:
    """``Alexa.Discovery.DeleteReport``: endpoints removed.

    The official schema file has no DeleteReport branch; the shape follows
    Amazon's Alexa.Discovery documentation.
    """
    endpoints = [{"endpointId": e} for e in endpoint_ids]
    if not endpoints:
        raise ValueError("DeleteReport needs at least one endpoint")
    return {
        "event": {
            "header": header("Alexa.Discovery", "DeleteReport"),
            "payload": {"endpoints": endpoints, "scope": _scope(token)},
        }
    }
