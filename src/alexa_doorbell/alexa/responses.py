"""Responses and ErrorResponses the skill returns for a directive."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alexa_doorbell.alexa import smartvision
from alexa_doorbell.alexa.common import connectivity_property, endpoint, header
from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.discovery import DeviceLike, endpoint_description
from alexa_doorbell.alexa.errors import INVALID_VALUE


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


def state_report(
    d: Directive,
    connectivity: str,
    at: float | None = None,
    *,
    properties: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """StateReport: EndpointHealth connectivity, then the endpoint's other ``properties``."""
    return _reply(
        d,
        "Alexa",
        "StateReport",
        {},
        context={"properties": [connectivity_property(connectivity, at), *properties]},
    )


def response(d: Directive, properties: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``Alexa.Response`` to a directive that changed state: the new values in context."""
    return _reply(d, "Alexa", "Response", {}, context={"properties": list(properties)})


def object_detection_classes_set(
    d: Directive, enabled: Iterable[str], at: float | None = None
) -> dict[str, Any]:
    """``Alexa.Response`` to SetObjectDetectionClasses: the classes now enabled, in context."""
    return response(d, [smartvision.classes_property(enabled, at)])


def object_detection_classes_invalid(
    d: Directive,
    error_classes: Iterable[str],
    enabled: Iterable[str],
    supported: Iterable[str],
) -> dict[str, Any]:
    """SetObjectDetectionClasses asked for classes this camera cannot detect.

    The interface's own ErrorResponse (payloadVersion "1.0"), type INVALID_VALUE,
    naming the classes not enabled (``errorClasses``) and the final list of enabled
    ones (``objectDetectionClasses``), as Amazon documents for this case.
    """
    errors = list(error_classes)
    camera = ", ".join(smartvision.accepted(supported)) or "no object class"
    event: dict[str, Any] = {
        "header": header(
            smartvision.NAMESPACE,
            "ErrorResponse",
            d.correlation_token,
            payload_version=smartvision.VERSION,
        )
    }
    if d.endpoint_id:
        event["endpoint"] = endpoint(d.endpoint_id)  # no token echoed in errors
    event["payload"] = {
        "type": INVALID_VALUE,
        "message": (
            f"not enabled: {', '.join(repr(c) for c in errors)}; this camera detects {camera}"
        )[:1000],
        "errorClasses": [{"imageNetClass": c} for c in errors],
        "objectDetectionClasses": [{"imageNetClass": c} for c in smartvision.accepted(enabled)],
    }
    return {"event": event}


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
