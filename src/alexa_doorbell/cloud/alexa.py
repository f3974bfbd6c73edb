"""A simulated Alexa service: sends directives to the skill the way Alexa invokes a Lambda.

Every directive goes through a JSON round trip (text in, text out), as the
Lambda runtime would carry it, and every reply is returned parsed.

    alexa = SimulatedAlexa(skill.handle, bearer_token)
    alexa.accept_grant(code)
    endpoints = alexa.discover()["event"]["payload"]["endpoints"]
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

SkillInvoker = Callable[[dict[str, Any]], dict[str, Any]]


def directive(
    namespace: str,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    endpoint_id: str | None = None,
    correlation: bool = True,
) -> dict[str, Any]:
    """A directive as Alexa sends it (Smart Home API v3)."""
    header: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "messageId": str(uuid.uuid4()),
        "payloadVersion": "3",
    }
    if correlation:
        header["correlationToken"] = uuid.uuid4().hex
    d: dict[str, Any] = {"header": header, "payload": payload or {}}
    if endpoint_id is not None:
        d["endpoint"] = {"endpointId": endpoint_id, "cookie": {}}
        if token is not None:
            d["endpoint"]["scope"] = {"type": "BearerToken", "token": token}
    return {"directive": d}


def new_session_id() -> str:
    """A session id shaped like the ones Alexa sends."""
    return f"amzn1.echo-api.session.{uuid.uuid4()}"


class SimulatedAlexa:
    """One user's Alexa account talking to the skill."""

    def __init__(self, invoke: SkillInvoker, token: str) -> None:
        self._invoke = invoke
        self.token = token

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(self._invoke(json.loads(json.dumps(event)))))

    def accept_grant(self, code: str) -> dict[str, Any]:
        return self.send(
            directive(
                "Alexa.Authorization",
                "AcceptGrant",
                {
                    "grant": {"type": "OAuth2.AuthorizationCode", "code": code},
                    "grantee": {"type": "BearerToken", "token": self.token},
                },
                correlation=False,
            )
        )

    def discover(self) -> dict[str, Any]:
        return self.send(
            directive(
                "Alexa.Discovery",
                "Discover",
                {"scope": {"type": "BearerToken", "token": self.token}},
                correlation=False,
            )
        )

    def initiate_session(self, endpoint_id: str, session_id: str, offer_sdp: str) -> dict:
        return self.send(
            directive(
                "Alexa.RTCSessionController",
                "InitiateSessionWithOffer",
                {"sessionId": session_id, "offer": {"format": "SDP", "value": offer_sdp}},
                token=self.token,
                endpoint_id=endpoint_id,
            )
        )

    def session_event(self, name: str, endpoint_id: str, session_id: str) -> dict[str, Any]:
        """``SessionConnected`` or ``SessionDisconnected``."""
        return self.send(
            directive(
                "Alexa.RTCSessionController",
                name,
                {"sessionId": session_id},
                token=self.token,
                endpoint_id=endpoint_id,
            )
        )

    def report_state(self, endpoint_id: str) -> dict[str, Any]:
        return self.send(
            directive("Alexa", "ReportState", token=self.token, endpoint_id=endpoint_id)
        )


def reply_name(reply: dict[str, Any]) -> str:
    """``Namespace.Name`` of a reply, with the error type for an ErrorResponse."""
    header = reply["event"]["header"]
    name = f"{header['namespace']}.{header['name']}"
    if header["name"] == "ErrorResponse":
        name += f" {reply['event']['payload'].get('type')}"
    return name


def answer_of(reply: dict[str, Any]) -> str:
    """The answer SDP of an ``AnswerGeneratedForSession`` reply; ValueError otherwise."""
    header = reply["event"]["header"]
    if header["name"] != "AnswerGeneratedForSession":
        payload = reply["event"].get("payload", {})
        raise ValueError(
            f"expected AnswerGeneratedForSession, got {reply_name(reply)}: "
            f"{payload.get('message', '')}"
        )
    return reply["event"]["payload"]["answer"]["value"]
