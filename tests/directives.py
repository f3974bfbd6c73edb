"""Alexa directives as the skill receives them (docs/PROTOCOLS.md §1), for tests and benchmarks."""

from __future__ import annotations

from typing import Any

from alexa_doorbell.cloud.alexa import directive
from tests.sdp_samples import ECHO_SHOW_OFFER

# Session ids as Alexa sends them (UUID-like, sometimes with prefixes and other characters).
SESSION_ID = "amzn1.echo-api.session.5e2a7d8c-4b7e-4f0b-9f3a-1c2d3e4f5a6b"


def discover(token: str) -> dict[str, Any]:
    return directive(
        "Alexa.Discovery",
        "Discover",
        {"scope": {"type": "BearerToken", "token": token}},
        correlation=False,
    )


def accept_grant(code: str, grantee_token: str) -> dict[str, Any]:
    return directive(
        "Alexa.Authorization",
        "AcceptGrant",
        {
            "grant": {"type": "OAuth2.AuthorizationCode", "code": code},
            "grantee": {"type": "BearerToken", "token": grantee_token},
        },
        correlation=False,
    )


def initiate_session(
    token: str,
    endpoint_id: str = "front-door",
    session_id: str = SESSION_ID,
    offer: str = ECHO_SHOW_OFFER,
) -> dict[str, Any]:
    return directive(
        "Alexa.RTCSessionController",
        "InitiateSessionWithOffer",
        {"sessionId": session_id, "offer": {"format": "SDP", "value": offer}},
        token=token,
        endpoint_id=endpoint_id,
    )


def session_event(
    name: str, token: str, endpoint_id: str = "front-door", session_id: str = SESSION_ID
) -> dict[str, Any]:
    return directive(
        "Alexa.RTCSessionController",
        name,
        {"sessionId": session_id},
        token=token,
        endpoint_id=endpoint_id,
    )


def report_state(token: str, endpoint_id: str = "front-door") -> dict[str, Any]:
    return directive("Alexa", "ReportState", token=token, endpoint_id=endpoint_id)


def set_object_detection_classes(
    token: str, *classes: str, endpoint_id: str = "front-door", payload_version: str = "1.0"
) -> dict[str, Any]:
    """SmartVision's directive: the classes the user switched on in the Alexa app."""
    d = directive(
        "Alexa.SmartVision.ObjectDetectionSensor",
        "SetObjectDetectionClasses",
        {"objectDetectionClasses": [{"imageNetClass": c} for c in classes]},
        token=token,
        endpoint_id=endpoint_id,
    )
    d["directive"]["header"]["payloadVersion"] = payload_version  # the interface's own
    return d
