"""Login with Amazon emulator: ``/auth/o2/token``, ``/user/profile`` and linking.

Three kinds of token, all persisted so a restarted cloud still knows them:
- ``link``: the account-linking token Alexa puts into directives (what the
  Alexa app's linking step yields); read by ``/user/profile``.
- ``access`` / ``refresh``: the skill-messaging tokens that ``/auth/o2/token``
  issues for an AcceptGrant code; only ``access`` tokens open the event gateway.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from alexa_doorbell.cloud.db import CloudDB, TokenRow
from alexa_doorbell.cloud.faults import FaultQueue
from alexa_doorbell.config import Settings

CODE_LIFETIME = 300.0  # AcceptGrant codes are short-lived: exchange at once
LINK_TOKEN_LIFETIME = 86400.0
DEFAULT_ERRORS = {
    400: "invalid_grant",
    401: "invalid_client",
    429: "slow_down",
    500: "server_error",
    503: "temporarily_unavailable",
}
NO_CACHE = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"}


def lwa_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error_description": description, "error": error}, status_code=status, headers=NO_CACHE
    )


class LwaEmulator:
    def __init__(self, settings: Settings, db: CloudDB) -> None:
        self.settings = settings
        self.db = db
        self.faults = FaultQueue(DEFAULT_ERRORS, "server_error")
        self.token_requests = 0  # how many /auth/o2/token calls arrived (tests count refreshes)

    # -- in-process API --------------------------------------------------------
    def link(
        self,
        user_id: str | None = None,
        name: str | None = None,
        email: str | None = None,
        token_lifetime: float | None = None,
    ) -> dict[str, str]:
        """What the Alexa app's linking step yields: an AcceptGrant code and the user's
        account-linking bearer token (the one Alexa puts into directives)."""
        user_id = user_id or f"amzn1.account.{uuid.uuid4().hex.upper()[:28]}"
        self.db.put_user(user_id, name or "Local User", email or f"{user_id}@example.invalid")
        now = time.time()
        code = "AN" + secrets.token_hex(10)
        self.db.add_code(code, user_id, now + CODE_LIFETIME)
        lifetime = LINK_TOKEN_LIFETIME if token_lifetime is None else float(token_lifetime)
        link_token = "Atza|" + secrets.token_urlsafe(48)
        self.db.add_token(TokenRow(link_token, "link", user_id, None, now + lifetime, False))
        return {"code": code, "access_token": link_token, "user_id": user_id}

    def add_fault(self, status: int, error: str | None = None, count: int = 1) -> None:
        self.faults.add(status, error, count)

    def revoke(self, user_id: str) -> int:
        return self.db.revoke_user(user_id)

    def expire_access_tokens(self, user_id: str | None = None) -> int:
        return self.db.expire_access_tokens(time.time(), user_id)

    def user_for_token(self, token: str, kinds: tuple[str, ...] = ("access",)) -> str | None:
        """The user of a live (unexpired, unrevoked) token of one of ``kinds``."""
        row = self.db.get_token(token) if token else None
        if row is None or row.kind not in kinds or row.revoked:
            return None
        if row.expires_at is not None and row.expires_at <= time.time():
            return None
        return row.user_id

    # -- HTTP ------------------------------------------------------------------
    async def token(self, request: Request) -> JSONResponse:
        self.token_requests += 1
        fault = self.faults.take()
        if fault is not None:
            return lwa_error(fault.status, fault.code, "Injected fault (local cloud)")
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        try:
            if "json" in ctype:
                form = json.loads(raw or b"{}")
                if not isinstance(form, dict):
                    raise ValueError
            else:
                form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except (ValueError, UnicodeDecodeError):
            return lwa_error(400, "invalid_request", "The request body could not be parsed")
        form = {k: v for k, v in form.items() if isinstance(v, str)}
        client_id, client_secret = self._client(request, form)
        grant_type = form.get("grant_type")
        if not grant_type:
            return lwa_error(
                400, "invalid_request", "The request is missing a required parameter : grant_type"
            )
        if grant_type not in ("authorization_code", "refresh_token"):
            return lwa_error(
                400, "unsupported_grant_type", f"The grant type {grant_type} is not supported"
            )
        if not client_id or not client_secret:
            return lwa_error(
                400, "invalid_request", "The request is missing a required parameter : client_id"
            )
        local = self.settings.local
        if not (
            secrets.compare_digest(client_id, local.lwa_client_id)
            and secrets.compare_digest(client_secret, local.lwa_client_secret.get_secret_value())
        ):
            return lwa_error(401, "invalid_client", "Client authentication failed")
        now = time.time()
        if grant_type == "authorization_code":
            code = form.get("code")
            if not code:
                return lwa_error(
                    400, "invalid_request", "The request is missing a required parameter : code"
                )
            user_id = self.db.use_code(code, now)
            if user_id is None:
                return lwa_error(
                    400, "invalid_grant", "The request has an invalid grant parameter : code"
                )
            refresh = "Atzr|" + secrets.token_urlsafe(48)
            self.db.add_token(TokenRow(refresh, "refresh", user_id, client_id, None, False))
        else:
            refresh = form.get("refresh_token", "")
            if not refresh:
                return lwa_error(
                    400,
                    "invalid_request",
                    "The request is missing a required parameter : refresh_token",
                )
            row = self.db.get_token(refresh)
            if row is None or row.kind != "refresh" or row.revoked or row.client_id != client_id:
                return lwa_error(
                    400,
                    "invalid_grant",
                    "The request has an invalid grant parameter : refresh_token",
                )
            user_id = row.user_id
        access = "Atza|" + secrets.token_urlsafe(48)
        lifetime = local.access_token_lifetime
        self.db.add_token(TokenRow(access, "access", user_id, client_id, now + lifetime, False))
        return JSONResponse(
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": lifetime,
            },
            headers=NO_CACHE,
        )

    @staticmethod
    def _client(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                pair = base64.b64decode(auth[6:]).decode()
                cid, _, csecret = pair.partition(":")
                return cid, csecret
            except (binascii.Error, UnicodeDecodeError):
                return None, None
        return form.get("client_id"), form.get("client_secret")

    async def profile(self, request: Request) -> JSONResponse:
        token = bearer_token(request) or request.query_params.get("access_token", "")
        if not token:
            return lwa_error(
                400, "invalid_request", "The request is missing a required parameter : access_token"
            )
        user_id = self.user_for_token(token, kinds=("link", "access"))
        user = self.db.get_user(user_id) if user_id else None
        if user is None:
            return lwa_error(
                401,
                "invalid_token",
                "The access token provided is expired, revoked, malformed, or invalid "
                "for other reasons.",
            )
        return JSONResponse({"user_id": user[0], "name": user[1], "email": user[2]})

    # -- admin (/_local/lwa/...) -------------------------------------------------
    async def admin_link(self, request: Request) -> JSONResponse:
        body = await _json(request)
        return JSONResponse(
            self.link(
                body.get("user_id"), body.get("name"), body.get("email"), body.get("token_lifetime")
            )
        )

    async def admin_faults(self, request: Request) -> JSONResponse:
        body = await _json(request)
        self.add_fault(int(body.get("status", 500)), body.get("error"), int(body.get("count", 1)))
        return JSONResponse({"ok": True})

    async def admin_revoke(self, request: Request) -> JSONResponse:
        body = await _json(request)
        return JSONResponse({"revoked": self.revoke(str(body.get("user_id", "")))})

    async def admin_expire(self, request: Request) -> JSONResponse:
        body = await _json(request)
        return JSONResponse({"expired": self.expire_access_tokens(body.get("user_id"))})


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header, or ""."""
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}
