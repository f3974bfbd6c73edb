"""Alexa event gateway client: ``POST /v3/events`` with the user's access token.

urllib3 only (it ships with botocore), so this runs on the Lambda path.

    gw = EventGatewayClient(gateway_url("EU"))
    reply = gw.send(events.doorbell_press("front-door", token), token)   # GatewayReply

Replies are classified per docs/PROTOCOLS.md §3 by :func:`classify` (pure, table-tested):
202 is success; 429/5xx are retried here with backoff and jitter (up to 3
times, at least ``retry_delay`` apart); everything else raises one of the
``GatewayError`` family, which says what to do:

- ``InvalidAccessToken`` (401): refresh the access token and send once more
- ``UserActionRequired`` (403 SKILL_DISABLED / SKILL_NEVER_ENABLED /
  INSUFFICIENT_PERMISSION, 404 ACCOUNT_NOT_FOUND): the user must re-enable /
  relink the skill; retrying will not help
- ``EventRejected`` (400, 413, other 4xx): the event itself is wrong
- ``GatewayUnavailable`` (429/5xx/network, retries exhausted): try later
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib3

# docs/PROTOCOLS.md §3
GATEWAYS = {
    "NA": "https://api.amazonalexa.com",
    "EU": "https://api.eu.amazonalexa.com",
    "FE": "https://api.fe.amazonalexa.com",
}
EVENTS_PATH = "/v3/events"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# 403/404 codes that only the user can clear (enable the skill again, relink).
USER_ACTION_CODES = frozenset(
    {
        "SKILL_DISABLED_EXCEPTION",
        "SKILL_NEVER_ENABLED_EXCEPTION",
        "INSUFFICIENT_PERMISSION_EXCEPTION",
        "ACCOUNT_NOT_FOUND_EXCEPTION",
        "ACCOUNT_NOT_FOUND",
    }
)
_TOKEN_RE = re.compile(r"Atz[ar]\|[^\s\"',;]+")


def redact(text: str) -> str:
    """Text with any LWA token replaced, for logs and stored records."""
    return _TOKEN_RE.sub("Atz*|***", text)


def gateway_url(region: str) -> str:
    try:
        return GATEWAYS[region.upper()]
    except KeyError:
        raise ValueError(
            f"event region must be one of {', '.join(GATEWAYS)}, not {region!r}"
        ) from None


# -- outcomes ---------------------------------------------------------------------
ACCEPTED = "accepted"
REFRESH = "refresh"  # 401: refresh the token, then retry once
RETRY = "retry"  # 429/5xx: back off and retry
USER_ACTION = "user_action"  # 403 and friends: relink / re-enable needed
REJECTED = "rejected"  # 400/413/...: the event is wrong


@dataclass(frozen=True)
class GatewayReply:
    """One HTTP reply of the gateway, classified."""

    status: int
    code: str = ""  # payload.code of the gateway's error body
    description: str = ""
    outcome: str = ACCEPTED
    attempts: int = 1
    retry_after: float | None = None

    @property
    def label(self) -> str:
        """What status pages show: ``202`` or ``403 SKILL_DISABLED_EXCEPTION``."""
        return f"{self.status} {self.code}".strip() if self.status else self.code


def classify(
    status: int, body: bytes | dict[str, Any] | None, retry_after: str | None = None
) -> GatewayReply:
    """Map a gateway reply to an outcome (docs/PROTOCOLS.md §3). Pure."""
    code, description = _error_of(body)
    if 200 <= status < 300:
        outcome = ACCEPTED
    elif status == 401:
        outcome = REFRESH
    elif status in RETRY_STATUSES:
        outcome = RETRY
    elif status == 403 or (status == 404 and code in USER_ACTION_CODES):
        outcome = USER_ACTION
    else:  # 400, 413, 404 SKILL_NOT_FOUND and anything else: retrying will not help
        outcome = REJECTED
    return GatewayReply(
        status,
        code,
        description,
        outcome,
        retry_after=_seconds(retry_after) if retry_after else None,
    )


def _error_of(body: bytes | dict[str, Any] | None) -> tuple[str, str]:
    if isinstance(body, bytes | bytearray):
        try:
            body = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            text = bytes(body).decode("utf-8", "replace").strip()
            return "", redact(text[:300])
    if not isinstance(body, dict):
        return "", ""
    payload = body.get("payload")
    if not isinstance(payload, dict):
        payload = body
    code = payload.get("code")
    desc = payload.get("description") or payload.get("message")
    return (
        code if isinstance(code, str) else "",
        redact(desc[:500]) if isinstance(desc, str) else "",
    )


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: ignore, our own backoff applies


# -- exceptions ------------------------------------------------------------------
class GatewayError(Exception):
    """The event gateway did not accept an event; ``reply`` says how it answered."""

    hint = ""

    def __init__(self, reply: GatewayReply, message: str | None = None) -> None:
        self.reply = reply
        text = message or f"event gateway answered {reply.label or 'nothing'}"
        if reply.description and reply.description not in text:
            text += f": {reply.description}"
        if self.hint:
            text += f" ({self.hint})"
        super().__init__(text)

    @property
    def status(self) -> int:
        return self.reply.status

    @property
    def code(self) -> str:
        return self.reply.code


class InvalidAccessToken(GatewayError):
    hint = "the access token is expired or revoked: refresh it and send once more"


class UserActionRequired(GatewayError):
    hint = (
        "the user must enable the skill again and relink it in the Alexa app; "
        "INSUFFICIENT_PERMISSION can also mean the skill lacks 'Send Alexa Events' "
        "in the developer console"
    )


class EventRejected(GatewayError):
    hint = "the event itself was refused; sending it again will not help"


class GatewayUnavailable(GatewayError):
    hint = "Alexa's event gateway is busy or unreachable; try again later"


_ERRORS: dict[str, type[GatewayError]] = {
    REFRESH: InvalidAccessToken,
    USER_ACTION: UserActionRequired,
    REJECTED: EventRejected,
    RETRY: GatewayUnavailable,
}


# -- client ------------------------------------------------------------------------
class EventGatewayClient:
    """Sends events to one regional gateway; retries 429/5xx with backoff and jitter."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        retry_delay: float = 1.0,
        max_delay: float = 8.0,
        budget: float = 15.0,
        ca_file: str | None = None,
        pool: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.budget = budget  # no retry starts after this many seconds in send()
        self._sleep = sleep
        self._rng = rng
        import urllib3  # on first use: keeps the handler's cold import short

        self._http = pool or urllib3.PoolManager(
            num_pools=2, maxsize=8, ca_certs=ca_file, retries=False
        )

    def __repr__(self) -> str:
        return f"EventGatewayClient({self.base_url!r})"

    @property
    def url(self) -> str:
        return self.base_url + EVENTS_PATH

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``attempt`` (1-based): exponential, plus jitter."""
        base = self.retry_delay * 2 ** (attempt - 1)
        wait = min(self.max_delay, base + self._rng() * self.retry_delay)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait

    def send(self, message: dict[str, Any], token: str) -> GatewayReply:
        """POST one event; the reply on 2xx, else a ``GatewayError``."""
        body = json.dumps(message, separators=(",", ":")).encode()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        started = time.monotonic()
        waited = 0.0  # counted apart too, so an injected sleep keeps the budget honest
        attempt = 1
        while True:
            reply = self._post(body, headers)
            reply = GatewayReply(
                reply.status,
                reply.code,
                reply.description,
                reply.outcome,
                attempt,
                reply.retry_after,
            )
            if reply.outcome == ACCEPTED:
                return reply
            if reply.outcome != RETRY or attempt > self.retries:
                raise _ERRORS[reply.outcome](reply)
            wait = self.delay(attempt, reply.retry_after)
            if max(time.monotonic() - started, waited) + wait > self.budget:
                raise GatewayUnavailable(reply)
            self._sleep(wait)
            waited += wait
            attempt += 1

    def _post(self, body: bytes, headers: dict[str, str]) -> GatewayReply:
        import urllib3

        try:
            resp = self._http.request(
                "POST", self.url, body=body, headers=headers, timeout=self.timeout, retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            # Treated like a 503: the event may or may not have arrived; a duplicate
            # announcement is better than a missed one.
            return GatewayReply(0, "unreachable", f"{type(exc).__name__} for {self.url}", RETRY)
        return classify(resp.status, resp.data, resp.headers.get("Retry-After"))
