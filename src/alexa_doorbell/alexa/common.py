"""Pieces every Alexa message shares: headers, message ids, timestamps, state properties."""

from __future__ import annotations

import time
import uuid
from typing import Any

PAYLOAD_VERSION = "3"
CONNECTIVITY_VALUES = ("OK", "UNREACHABLE")
DETECTION_STATES = ("DETECTED", "NOT_DETECTED")  # Alexa.MotionSensor detectionState


def new_message_id() -> str:
    """A fresh messageId (the schema allows 1-127 of ``[A-Za-z0-9-]``)."""
    return str(uuid.uuid4())


def header(
    namespace: str,
    name: str,
    correlation_token: str | None = None,
    *,
    payload_version: str = PAYLOAD_VERSION,
) -> dict[str, Any]:
    """An event header; interfaces with their own version (SmartVision: "1.0") pass it."""
    out: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "payloadVersion": payload_version,
        "messageId": new_message_id(),
    }
    if correlation_token:
        out["correlationToken"] = correlation_token
    return out


def endpoint(endpoint_id: str, token: str | None = None) -> dict[str, Any]:
    """``event.endpoint``: the scope is included when a bearer token is known."""
    if token:
        return {"scope": {"type": "BearerToken", "token": token}, "endpointId": endpoint_id}
    return {"endpointId": endpoint_id}


def timestamp(at: float | None = None) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ``: the schema rejects fractional seconds in events."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def connectivity_property(
    connectivity: str, at: float | None = None, uncertainty_ms: int = 0
) -> dict[str, Any]:
    """The ``Alexa.EndpointHealth`` ``connectivity`` property (context or change report)."""
    if connectivity not in CONNECTIVITY_VALUES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITY_VALUES}, not {connectivity!r}")
    return {
        "namespace": "Alexa.EndpointHealth",
        "name": "connectivity",
        "value": {"value": connectivity},
        "timeOfSample": timestamp(at),
        "uncertaintyInMilliseconds": uncertainty_ms,
    }


def detection_state_property(
    state: str, at: float | None = None, uncertainty_ms: int = 0
) -> dict[str, Any]:
    """The ``Alexa.MotionSensor`` ``detectionState`` property (context or change report)."""
    if state not in DETECTION_STATES:
        raise ValueError(f"detectionState must be one of {DETECTION_STATES}, not {state!r}")
    return {
        "namespace": "Alexa.MotionSensor",
        "name": "detectionState",
        "value": state,
        "timeOfSample": timestamp(at),
        "uncertaintyInMilliseconds": uncertainty_ms,
    }
