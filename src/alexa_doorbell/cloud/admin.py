"""The guard in front of the local cloud's admin API (``/_local/...``).

    app = AdminGuard(app, token=None)   # on loopback: open to this machine's programs
    app = AdminGuard(app, token="...")  # beyond loopback: ``Authorization: Bearer <token>``

Those endpoints link users, revoke them and inject faults, so no web page may
drive them: a request another site sent (an ``Origin`` that is not this
server's, ``Sec-Fetch-Site`` other than ``same-origin``/``none``) gets 403, and
a POST must say ``Content-Type: application/json``, which no page can send to
another origin without a CORS preflight this server never grants (415
otherwise). With a token (from ``ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN``, or made at
each start when listening beyond loopback and printed by ``alexa-doorbell
cloud``), a request without it gets 401. The Amazon APIs beside them (KVS,
LWA, the event gateway) are not touched: they have their own authentication.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from alexa_doorbell.httpguard import bearer_matches, is_loopback, refuse, same_origin

ADMIN_PREFIX = "/_local/"
ADMIN_TOKEN_ENV = "ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN"
TOKEN_KEYS = ("token", "access_token", "refresh_token")


def required_admin_token(host: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token ``/_local/...`` requires: the configured one, a fresh one beyond loopback,
    or None (open to programs on this machine)."""
    configured = environ.get(ADMIN_TOKEN_ENV, "").strip()
    if configured:
        return configured
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def admin_headers(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Headers for our own calls to ``/_local/...`` (the token, when one is configured)."""
    token = environ.get(ADMIN_TOKEN_ENV, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def redacted(value: str) -> str:
    """A stand-in for a bearer token: tells equal tokens apart, reveals nothing."""
    return "redacted:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def redact_tokens(message: Any) -> Any:
    """A copy of a JSON value with every token (``scope.token`` and the like) redacted."""
    if isinstance(message, dict):
        return {
            k: redacted(v) if k in TOKEN_KEYS and isinstance(v, str) else redact_tokens(v)
            for k, v in message.items()
        }
    if isinstance(message, list):
        return [redact_tokens(v) for v in message]
    return message


def _refusal(scope: Scope, token: str | None) -> tuple[int, str] | None:
    headers = Headers(scope=scope)
    if not same_origin(headers):
        return 403, "cross-site request refused"
    if token is not None and not bearer_matches(headers, token):
        return 401, (
            "the admin API needs Authorization: Bearer <the token `alexa-doorbell cloud` "
            f"printed, or {ADMIN_TOKEN_ENV}>"
        )
    if scope.get("method") == "POST":
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return 415, "Content-Type must be application/json"
    return None


class AdminGuard:
    """ASGI middleware for ``/_local/...``; every other path passes untouched."""

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(ADMIN_PREFIX):
            refused = _refusal(scope, self.token)
            if refused is not None:
                status, why = refused
                body = json.dumps({"error": why}).encode()
                await refuse(send, status, body, b"application/json")
                return
        await self.app(scope, receive, send)
