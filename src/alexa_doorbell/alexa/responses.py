"""Responses and ErrorResponses the skill returns for a directive."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alexa_doorbell.alexa.common import connectivity_property, endpoint, header
from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.discovery import DeviceLike, endpoint_description


def _reply(
    d: Directive,
    namespace: str,
    name: str,
    payload: dict[str, Any],
    *,
    with_endpoint: bool = True,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {"header": header(namespace, name, d.correlation_token)}
    if with_endpoint and d.endpoint_id:
        event["endpoint"] = endpoint(d.endpoint_id, d.token)
    event["payload"] = payload
    out: dict[str, Any] = {"event": event}
    if context is not None:
        out["context"] = context
    return out


def discover_response(d: Directive, devices: Iterable[DeviceLike]) -> dict[str, Any]:
    # Discover.Response carries no endpoint key: the schema rejects one.
    endpoints = [endpoint_description(dev) for dev in devices]
    return _reply(
        d, "Alexa.Discovery", "Discover.Response", {"endpoints": endpoints}, with_endpoint=False
    )


def accept_grant_response(d: Directive) -> dict[str, Any]:
    return _reply(d, "Alexa.Authorization", "AcceptGrant.Response", {}, with_endpoint=False)


def answer_generated_for_session(d: Directive, answer_sdp: str) -> dict[str, Any]:
    return _reply(
        d,
        "Alexa.RTCSessionController",
        "AnswerGeneratedForSession",
        {"answer": {"format": "SDP", "value": answer_sdp}},
    )


def session_connected(d: Directive, session_id: str) -> dict[str, Any]:
    return _reply(d, "Alexa.RTCSessionController", "SessionConnected", {"sessionId": session_id})


def session_disconnected(d: Directive, session_id: str) -> dict[str, Any]:
    return _reply(d, "Alexa.RTCSessionController", "SessionDisconnected", {"sessionId": session_id})


def state_report(d: Directive, connectivity: str, at: float | None = None) -> dict[str, Any]:
    return _reply(
        d,
        "Alexa",
        "StateReport",
        {},
        context={"properties": [connectivity_property(connectivity, at)]},
    )


def error_response(
    type: str,
    message: str,
    *,
    namespace: str = "Alexa",
    correlation_token: str | None = None,
    endpoint_id: str | None = None,
) -> dict[str, Any]:
    """An ErrorResponse. The endpoint carries only its id: no token is echoed in errors."""
    event: dict[str, Any] = {"header": header(namespace, "ErrorResponse", correlation_token)}
    if endpoint_id:
        event["endpoint"] = endpoint(endpoint_id)
    event["payload"] = {"type": type, "message": message}
    return {"event": event}
