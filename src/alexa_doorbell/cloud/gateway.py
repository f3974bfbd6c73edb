"""Alexa event gateway emulator: ``POST /v3/events``.

Checks the bearer token against the LWA emulator, validates the body against
the official Alexa schema (``Alexa.SmartVision`` events and parts against ours:
``alexa.schema``), answers 202 and records accepted events. Errors use
the gateway's body ``{"header": {"namespace": "System", "name": "Exception"},
"payload": {"code", "description"}}``. Tests can make the next N calls fail.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.cloud.admin import redact_tokens
from alexa_doorbell.cloud.faults import FaultQueue
from alexa_doorbell.cloud.lwa import LwaEmulator, _json, bearer_token

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
MAX_EVENTS = 1000  # recent accepted events kept in memory
DEFAULT_CODES = {
    400: "INVALID_REQUEST_EXCEPTION",
    401: "INVALID_ACCESS_TOKEN_EXCEPTION",
    403: "SKILL_DISABLED_EXCEPTION",
    404: "SKILL_NOT_FOUND_EXCEPTION",
    413: "REQUEST_ENTITY_TOO_LARGE_EXCEPTION",
    429: "THROTTLING_EXCEPTION",
    500: "INTERNAL_SERVICE_EXCEPTION",
    503: "SERVICE_UNAVAILABLE_EXCEPTION",
}


def gateway_error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse(
        {
            "header": {
                "namespace": "System",
                "name": "Exception",
                "messageId": str(uuid.uuid4()),
            },
            "payload": {"code": code, "description": description},
        },
        status_code=status,
    )


@dataclass(frozen=True)
class AcceptedEvent:
    received_at: float
    user_id: str
    message: dict[str, Any]

    @property
    def name(self) -> str:
        return self.message.get("event", {}).get("header", {}).get("name", "")


class EventGateway:
    def __init__(self, lwa: LwaEmulator) -> None:
        self.lwa = lwa
        self._events: list[AcceptedEvent] = []
        self.faults = FaultQueue(DEFAULT_CODES, "INTERNAL_SERVICE_EXCEPTION")
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.requests = 0  # every POST /v3/events, accepted or not
        # Each hears (user_id, message) of every accepted event, on the cloud's loop.
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    # -- in-process API ----------------------------------------------------------
    @property
    def events(self) -> list[AcceptedEvent]:
        with self._lock:
            return list(self._events)

    def messages(self, name: str | None = None) -> list[dict[str, Any]]:
        """Accepted event bodies, oldest first, optionally only one header name."""
        return [e.message for e in self.events if name is None or e.name == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until ``count`` events named ``name`` were accepted (or the timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e.message for e in self._events if e.name == name]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._cond.wait(left)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def add_fault(self, status: int, code: str | None = None, count: int = 1) -> None:
        self.faults.add(status, code, count)

    # -- HTTP ------------------------------------------------------------------------
    async def post_event(self, request: Request) -> Response:
        self.requests += 1
        fault = self.faults.take()
        if fault is not None:
            return gateway_error(fault.status, fault.code, "Injected fault (local cloud)")
        token = bearer_token(request)
        user_id = self.lwa.user_for_token(token, kinds=("access",))
        if user_id is None:
            why = (
                "no Authorization: Bearer header"
                if not token
                else "the access token is expired, revoked or not a skill-messaging token "
                "(exchange the AcceptGrant code with the Alexa Skill Messaging client)"
            )
            return gateway_error(401, "INVALID_ACCESS_TOKEN_EXCEPTION", f"Unauthorized: {why}")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return gateway_error(413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION", "Request too large")
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return gateway_error(400, "INVALID_REQUEST_EXCEPTION", "The body is not JSON")
        if not isinstance(message, dict):
            return gateway_error(400, "INVALID_REQUEST_EXCEPTION", "The body must be an object")
        errors = schema_errors(message)
        if errors:
            return gateway_error(
                400,
                "INVALID_REQUEST_EXCEPTION",
                "The event breaks the Alexa schema: " + "; ".join(errors[:5]),
            )
        scope = message.get("event", {}).get("endpoint", {}).get("scope", {})
        if scope.get("token") and scope["token"] != token:
            return gateway_error(
                400,
                "INVALID_REQUEST_EXCEPTION",
                "event.endpoint.scope.token differs from the Authorization bearer token",
            )
        with self._cond:
            self._events.append(AcceptedEvent(time.time(), user_id, message))
            del self._events[:-MAX_EVENTS]
            self._cond.notify_all()
        for listener in self.listeners:
            try:
                listener(user_id, message)
            except Exception:  # a listener's trouble is never the sender's
                log.exception("event gateway: a listener failed")
        return Response(status_code=202)

    # -- admin (/_local/...) --------------------------------------------------------------
    async def admin_events(self, request: Request) -> JSONResponse:
        """``GET /_local/events[?name=DoorbellPress]``: accepted bodies, oldest first, with
        their bearer tokens redacted (``messages()`` in process has them whole)."""
        messages = self.messages(request.query_params.get("name") or None)
        return JSONResponse(redact_tokens(messages), headers={"Cache-Control": "no-store"})

    async def admin_clear(self, request: Request) -> Response:
        self.clear()
        return Response(status_code=204)

    async def admin_faults(self, request: Request) -> JSONResponse:
        body = await _json(request)
        self.add_fault(int(body.get("status", 500)), body.get("code"), int(body.get("count", 1)))
        return JSONResponse({"ok": True})
