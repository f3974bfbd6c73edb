"""Login with Amazon: authorization-code exchange, token refresh, customer profile.

urllib3 only (it ships with botocore), so this runs on the Lambda path.

    lwa = LwaClient("https://api.amazon.com", client_id, client_secret)
    grant = lwa.exchange_code(code)           # TokenGrant
    grant = lwa.refresh(grant.refresh_token)  # TokenGrant
    who = lwa.profile(bearer_token)           # Profile(user_id, name, email)

Failures raise one exception family, ``LwaError`` (``.error`` is LWA's error
code): ``LwaInvalidGrant`` (code used/expired, refresh token revoked: the user
must relink), ``LwaInvalidClient`` (wrong client id/secret),
``LwaInvalidToken``/``LwaExpiredToken`` (profile look-up) and
``LwaUnavailable`` (5xx, timeouts, garbage: try again later).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    import urllib3

CLIENT_HINT = (
    "use the skill's Alexa Skill Messaging client id and secret (developer console, "
    "Build > Permissions > Send Alexa Events), not the account-linking security profile"
)


class LwaError(Exception):
    """Login with Amazon refused or failed a request."""

    def __init__(self, error: str, description: str = "", status: int | None = None) -> None:
        self.error = error
        self.description = description
        self.status = status
        text = f"Login with Amazon: {error}"
        if description:
            text += f" ({description})"
        super().__init__(text)


class LwaInvalidGrant(LwaError):
    """The authorization code or refresh token is no good (used, expired, revoked)."""


class LwaInvalidClient(LwaError):
    """LWA does not accept the client id/secret (or the client may not use this grant)."""

    def __init__(self, error: str, description: str = "", status: int | None = None) -> None:
        super().__init__(error, f"{description}; {CLIENT_HINT}".lstrip("; "), status)


class LwaInvalidToken(LwaError):
    """The access token given to the profile API is not valid."""


class LwaExpiredToken(LwaInvalidToken):
    """The access token given to the profile API has expired."""


class LwaUnavailable(LwaError):
    """LWA could not be reached or answered with a server error; retry later."""


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"
    received_at: float = 0.0

    @property
    def expires_at(self) -> float:
        return self.received_at + self.expires_in

    def __repr__(self) -> str:
        return f"TokenGrant(access_token='***', refresh_token='***', expires_in={self.expires_in})"

    __str__ = __repr__


@dataclass(frozen=True)
class Profile:
    user_id: str
    name: str | None = None
    email: str | None = None


_CLIENT_ERRORS = {"invalid_client", "unauthorized_client"}
_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,8192}")  # visible ASCII, as LWA's tokens are


class LwaClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 3.0,
        retries: int = 1,
        ca_file: str | None = None,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.retries = retries
        import urllib3  # here, not at module level: keeps the handler's cold import short

        self._http = pool or urllib3.PoolManager(
            num_pools=4, maxsize=4, ca_certs=ca_file, retries=False
        )

    def __repr__(self) -> str:
        return f"LwaClient({self.base_url!r}, client_id={self.client_id!r})"

    # -- public API ------------------------------------------------------
    def exchange_code(self, code: str) -> TokenGrant:
        """Trade an AcceptGrant authorization code for tokens (do it at once: codes expire)."""
        return self._token({"grant_type": "authorization_code", "code": code})

    def refresh(self, refresh_token: str) -> TokenGrant:
        """A new access token (and possibly a new refresh token) for a stored refresh token."""
        grant = self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        if not grant.refresh_token:  # LWA may omit it: the old one stays valid
            grant = TokenGrant(
                grant.access_token,
                refresh_token,
                grant.expires_in,
                grant.token_type,
                grant.received_at,
            )
        return grant

    def profile(self, access_token: str) -> Profile:
        """The Amazon customer behind an access token (``user_id`` is stable per skill)."""
        if not _TOKEN_RE.fullmatch(access_token or ""):
            # Not sendable in a header (non-ASCII, spaces, CR/LF): no such token exists.
            raise LwaInvalidToken("invalid_token", "malformed access token")
        status, body = self._request(
            "GET", "/user/profile", headers={"Authorization": f"Bearer {access_token}"}
        )
        if status == 200:
            user_id = body.get("user_id")
            if not isinstance(user_id, str) or not user_id:
                raise LwaUnavailable("bad_response", "profile has no user_id", status)
            return Profile(user_id, body.get("name"), body.get("email"))
        error, desc = _error_of(body)
        if status in (400, 401, 403):
            # LWA's usual text is "expired, revoked, malformed, or invalid": not proof of expiry.
            low = desc.lower()
            if error == "expired_token" or ("expired" in low and "invalid" not in low):
                raise LwaExpiredToken(error or "invalid_token", desc, status)
            raise LwaInvalidToken(error or "invalid_token", desc, status)
        raise LwaUnavailable(error or f"http_{status}", desc, status)

    # -- plumbing --------------------------------------------------------
    def _token(self, form: dict[str, str]) -> TokenGrant:
        form = {**form, "client_id": self.client_id, "client_secret": self._secret}
        status, body = self._request(
            "POST",
            "/auth/o2/token",
            body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
        )
        if status == 200:
            try:
                return TokenGrant(
                    access_token=str(body["access_token"]),
                    refresh_token=str(body.get("refresh_token") or ""),
                    expires_in=int(body.get("expires_in", 3600)),
                    token_type=str(body.get("token_type", "bearer")),
                    received_at=time.time(),
                )
            except (KeyError, TypeError, ValueError):
                raise LwaUnavailable(
                    "bad_response", "token reply lacks access_token", status
                ) from None
        error, desc = _error_of(body)
        if status >= 500 or status == 429:
            raise LwaUnavailable(error or f"http_{status}", desc, status)
        if error == "invalid_grant":
            raise LwaInvalidGrant(error, desc, status)
        if error in _CLIENT_ERRORS:
            raise LwaInvalidClient(error, desc, status)
        raise LwaError(error or f"http_{status}", desc, status)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body); 5xx and network failures are retried ``retries`` times."""
        import urllib3

        url = self.base_url + path
        hdrs = {"Accept": "application/json", **(headers or {})}
        attempt = 0
        while True:
            try:
                resp = self._http.request(
                    method, url, body=body, headers=hdrs, timeout=self.timeout, retries=False
                )
                status, data = resp.status, resp.data
            except urllib3.exceptions.HTTPError as exc:
                if attempt < self.retries:
                    attempt += 1
                    time.sleep(0.05 * attempt)
                    continue
                raise LwaUnavailable("unreachable", f"{type(exc).__name__} for {url}") from None
            if status >= 500 and attempt < self.retries:
                attempt += 1
                time.sleep(0.05 * attempt)
                continue
            try:
                parsed = json.loads(data) if data else {}
            except ValueError:
                parsed = {}
            if not isinstance(parsed, dict):
                parsed = {}
            if status == 200 and not parsed:
                raise LwaUnavailable("bad_response", f"{path} returned no JSON object", status)
            return status, parsed


def _error_of(body: dict[str, Any]) -> tuple[str, str]:
    error = body.get("error")
    desc = body.get("error_description")
    return (
        error if isinstance(error, str) else "",
        desc[:300] if isinstance(desc, str) else "",
    )
