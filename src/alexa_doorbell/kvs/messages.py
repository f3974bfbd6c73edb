"""KVS WebRTC signaling messages: pure encode/decode, shared by clients and the emulator.

Wire format (docs/PROTOCOLS.md §4): a client sends
``{"action", "messagePayload", "recipientClientId"?, "correlationId"?}`` and
receives ``{"messageType", "messagePayload", "senderClientId", "statusResponse"?}``.
SDP and ICE payloads are base64 of a JSON object.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

ACTIONS = frozenset({"SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE"})
MESSAGE_TYPES = frozenset(
    {
        "SDP_OFFER",
        "SDP_ANSWER",
        "ICE_CANDIDATE",
        "STATUS_RESPONSE",
        "GO_AWAY",
        "RECONNECT_ICE_SERVER",
    }
)
# Patterns as botocore's service model spells them; AWS matches the whole value, so
# always use .fullmatch (``^...$`` with .match lets a trailing newline through).
CLIENT_ID_RE = re.compile(r"[a-zA-Z0-9_.\-]{1,256}")
MAX_MESSAGE_BYTES = 10_000  # KVS caps MessagePayload at 10,000 characters
# A channel has one MASTER: the newest connection takes precedence (ConnectAsMaster).
# The local cloud closes the one it replaced with this WebSocket close code (the
# private range 4000-4999) so that agent can tell a second agent from a dropped line.
CLOSE_MASTER_REPLACED = 4001


# The camera refuses an offer with an answer that rejects every m-line and
# carries this attribute naming the Alexa error type for the skill to reply with.
REFUSAL_ATTR = "a=x-alexa-doorbell-refused:"


def refusal_reason(answer_sdp: str) -> str | None:
    """The Alexa error type of a camera's refusal answer, or None for a real answer."""
    for line in answer_sdp.splitlines():
        if line.startswith(REFUSAL_ATTR):
            return line[len(REFUSAL_ATTR) :].strip() or "INTERNAL_ERROR"
    return None


class MessageError(ValueError):
    """A signaling message or payload that does not follow the KVS format."""


def encode_payload(obj: dict[str, Any]) -> str:
    """base64 of compact JSON, as KVS carries SDP and ICE payloads."""
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode("ascii")


def decode_payload(payload: str) -> dict[str, Any]:
    """The JSON object inside a base64 payload; MessageError when it is not one."""
    if not isinstance(payload, str) or not payload:
        raise MessageError("messagePayload must be a non-empty base64 string")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MessageError(f"messagePayload is not valid base64: {exc}") from None
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MessageError(f"messagePayload is not base64 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MessageError("messagePayload must hold a JSON object")
    return obj


def sdp_payload(kind: str, sdp: str) -> str:
    return encode_payload({"type": kind, "sdp": sdp})


def decode_sdp(payload: str, kind: str) -> str:
    """The SDP text of an ``offer``/``answer`` payload."""
    obj = decode_payload(payload)
    if obj.get("type") != kind or not isinstance(obj.get("sdp"), str) or not obj["sdp"]:
        raise MessageError(f"payload is not an SDP {kind}: expected {{'type': {kind!r}, 'sdp'}}")
    return obj["sdp"]


def candidate_payload(candidate: str, sdp_mid: str | None, sdp_mline_index: int | None) -> str:
    return encode_payload(
        {"candidate": candidate, "sdpMid": sdp_mid, "sdpMLineIndex": sdp_mline_index}
    )


@dataclass(frozen=True)
class ClientMessage:
    """What a signaling client sends to KVS."""

    action: str
    message_payload: str
    recipient_client_id: str | None = None
    correlation_id: str | None = None

    def to_json(self) -> str:
        out: dict[str, Any] = {"action": self.action, "messagePayload": self.message_payload}
        if self.recipient_client_id is not None:
            out["recipientClientId"] = self.recipient_client_id
        if self.correlation_id is not None:
            out["correlationId"] = self.correlation_id
        return json.dumps(out)

    @classmethod
    def parse(cls, text: str | bytes) -> ClientMessage:
        if len(text) > 2 * MAX_MESSAGE_BYTES + 1024:
            raise MessageError("message too large")
        try:
            obj = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise MessageError(f"message is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise MessageError("message must be a JSON object")
        action = obj.get("action")
        if not isinstance(action, str) or action not in ACTIONS:  # a list is unhashable
            raise MessageError(f"unknown action {action!r}; expected one of {sorted(ACTIONS)}")
        payload = obj.get("messagePayload")
        if not isinstance(payload, str) or not payload:
            raise MessageError("messagePayload must be a non-empty string")
        if len(payload) > MAX_MESSAGE_BYTES:
            raise MessageError(f"messagePayload longer than {MAX_MESSAGE_BYTES} characters")
        recipient = obj.get("recipientClientId")
        if recipient is not None and (
            not isinstance(recipient, str) or not CLIENT_ID_RE.fullmatch(recipient)
        ):
            raise MessageError("recipientClientId must match [a-zA-Z0-9_.-]{1,256}")
        corr = obj.get("correlationId")
        if corr is not None and not isinstance(corr, str):
            raise MessageError("correlationId must be a string")
        return cls(action, payload, recipient, corr)


@dataclass(frozen=True)
class ServerMessage:
    """What KVS sends to a signaling client."""

    message_type: str
    message_payload: str = ""
    sender_client_id: str | None = None
    status_response: dict[str, Any] | None = None

    def to_json(self) -> str:
        out: dict[str, Any] = {
            "messageType": self.message_type,
            "messagePayload": self.message_payload,
        }
        if self.sender_client_id is not None:
            out["senderClientId"] = self.sender_client_id
        if self.status_response is not None:
            out["statusResponse"] = self.status_response
        return json.dumps(out)

    @classmethod
    def parse(cls, text: str | bytes) -> ServerMessage:
        try:
            obj = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise MessageError(f"message is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise MessageError("message must be a JSON object")
        mtype = obj.get("messageType")
        if not isinstance(mtype, str) or mtype not in MESSAGE_TYPES:  # a list is unhashable
            raise MessageError(f"unknown messageType {mtype!r}")
        payload = obj.get("messagePayload") or ""
        sender = obj.get("senderClientId")
        status = obj.get("statusResponse")
        if not isinstance(payload, str):
            raise MessageError("messagePayload must be a string")
        if sender is not None and not isinstance(sender, str):
            raise MessageError("senderClientId must be a string")
        if status is not None and not isinstance(status, dict):
            raise MessageError("statusResponse must be an object")
        return cls(mtype, payload, sender, status)


def status_response(
    error_type: str, description: str, status_code: str = "400", correlation_id: str | None = None
) -> ServerMessage:
    return ServerMessage(
        "STATUS_RESPONSE",
        status_response={
            "correlationId": correlation_id,
            "errorType": error_type,
            "statusCode": status_code,
            "description": description,
        },
    )
