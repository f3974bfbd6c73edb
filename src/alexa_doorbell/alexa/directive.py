"""Parse an incoming Alexa directive into a small typed object, rejecting malformed input."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from alexa_doorbell.alexa.errors import InvalidDirective

# Amazon's schema (model.EndpointId), matched against the whole value: "^...$" with
# .match would let "front-door\n" through.
ENDPOINT_ID_RE = re.compile(r"[a-zA-Z0-9_\-=#;:?@&]{1,256}")
# Directive namespaces and names are dotted words ("Alexa.RTCSessionController"); they
# are echoed in replies and logs, so nothing else (no newline) gets that far.
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9_.]{1,128}")
MESSAGE_ID_RE = re.compile(r"[a-zA-Z0-9\-]{1,127}")  # model.MessageId: what Alexa sends
MAX_CORRELATION_TOKEN = 10_000  # Alexa's tokens are a few hundred characters
# Interfaces versioned apart from v3 have their own payloadVersion: SmartVision
# documents "1.0". "3" is taken too: refusing it would cost the user a setting.
PAYLOAD_VERSIONS = {"Alexa.SmartVision.ObjectDetectionSensor": ("1.0", "3")}


def _str(obj: dict[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidDirective(f"{where}.{key} must be a non-empty string")
    return value


def _dict(obj: dict[str, Any], key: str, where: str, required: bool = True) -> dict[str, Any]:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidDirective(f"{where}.{key} must be an object")
    return value


def _scope_token(scope: Any, where: str) -> str | None:
    if scope is None:
        return None
    if (
        not isinstance(scope, dict)
        or scope.get("type") != "BearerToken"
        or not isinstance(scope.get("token"), str)
        or not scope["token"]
    ):
        raise InvalidDirective(f"{where} must be {{'type': 'BearerToken', 'token': <string>}}")
    return scope["token"]


def _valid_correlation_token(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_CORRELATION_TOKEN:
        return value
    return None


def _valid_endpoint_id(value: Any) -> str | None:
    if isinstance(value, str) and ENDPOINT_ID_RE.fullmatch(value):
        return value
    return None


@dataclass(frozen=True)
class Directive:
    """One directive. ``token`` is the bearer token wherever this directive carries it."""

    namespace: str
    name: str
    message_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    correlation_token: str | None = None
    endpoint_id: str | None = None
    token: str | None = None

    @property
    def log_message_id(self) -> str:
        """The messageId for a log line: as it is when Amazon's pattern allows it, else
        quoted, so a newline in a directive cannot forge a line of the log."""
        mid = self.message_id
        return mid if MESSAGE_ID_RE.fullmatch(mid) else repr(mid[:64])

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def require_endpoint(self) -> str:
        if self.endpoint_id is None:
            raise InvalidDirective(f"{self.name} needs directive.endpoint.endpointId")
        return self.endpoint_id

    @classmethod
    def parse(cls, event: Any) -> Directive:
        if not isinstance(event, dict):
            raise InvalidDirective("the event must be a JSON object")
        directive = _dict(event, "directive", "event")
        head = _dict(directive, "header", "directive")
        namespace = _str(head, "namespace", "header")
        name = _str(head, "name", "header")
        for key, value in (("namespace", namespace), ("name", name)):
            if not HEADER_NAME_RE.fullmatch(value or ""):
                raise InvalidDirective(f"header.{key} must be 1-128 characters of [A-Za-z0-9_.]")
        message_id = _str(head, "messageId", "header")
        versions = PAYLOAD_VERSIONS.get(namespace, ("3",))
        if head.get("payloadVersion") not in versions:
            raise InvalidDirective(
                f"header.payloadVersion must be {' or '.join(map(repr, versions))} for {namespace}"
            )
        corr = head.get("correlationToken")
        if corr is not None and _valid_correlation_token(corr) is None:
            raise InvalidDirective("header.correlationToken must be a short non-empty string")
        payload = _dict(directive, "payload", "directive", required=False)

        endpoint_id = None
        token = None
        if "endpoint" in directive:
            ep = _dict(directive, "endpoint", "directive")
            endpoint_id = _valid_endpoint_id(ep.get("endpointId"))
            if endpoint_id is None:
                raise InvalidDirective(
                    "endpoint.endpointId must be 1-256 characters of [A-Za-z0-9_-=#;:?@&]"
                )
            token = _scope_token(ep.get("scope"), "endpoint.scope")
        if token is None and "scope" in payload:  # Discover carries it in the payload
            token = _scope_token(payload.get("scope"), "payload.scope")
        assert namespace and name and message_id
        return cls(namespace, name, message_id, payload, corr, endpoint_id, token)


def salvage(event: Any) -> tuple[str | None, str | None]:
    """(correlationToken, endpointId) of a directive that failed to parse, when they are valid.

    Lets an ErrorResponse for a malformed directive still reach the right request.
    """
    try:
        directive = event["directive"]
        corr = _valid_correlation_token(directive["header"].get("correlationToken"))
    except (KeyError, TypeError, AttributeError):
        return None, None
    try:
        endpoint_id = _valid_endpoint_id(directive["endpoint"].get("endpointId"))
    except (KeyError, TypeError, AttributeError):
        endpoint_id = None
    return corr, endpoint_id
