"""The token lifecycle: an access token good for a few more minutes, per linked user.

The access token is refreshed a few minutes before it expires, under a per-user
lock (concurrent events in one process refresh once) and written with a
conditional write on the row's version (across processes or Lambdas only one
refresh result is stored; the others adopt it). A failed refresh never loses
the refresh token; only LWA's ``invalid_grant`` marks the user "relink needed".
Tokens are never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypedDict

from alexa_doorbell.amazon.lwa import LwaError, LwaInvalidGrant, TokenGrant
from alexa_doorbell.store.base import ConflictError, Store, Tokens

log = logging.getLogger("alexa_doorbell.notify")

REFRESH_MARGIN = 300.0  # refresh this long before expiry (a quarter of short lifetimes)
RELINK_HINT = "relink: disable and enable the skill in the Alexa app, then link the account again"


# -- failures before anything reaches the gateway ----------------------------------
class NotifyError(Exception):
    """An event could not be sent; ``status`` is what status pages show."""

    status = "failed"


class NotLinked(NotifyError):
    status = "not linked"


class RelinkNeeded(NotifyError):
    status = "relink needed"


class RefreshFailed(NotifyError):
    """LWA did not refresh the token (unavailable, client misconfigured); it is kept."""

    status = "refresh failed"


class TokenRefresher(Protocol):
    """Login with Amazon as the notifier uses it (``amazon.lwa.LwaClient``)."""

    def refresh(self, refresh_token: str) -> TokenGrant: ...


class TokenStatus(TypedDict):
    """One linked user's token health, as status pages and ``tokens status --json`` show it."""

    user_id: str
    linked: bool
    region: str
    expires_at: int
    expires_in: int
    last_refresh_at: int | None
    last_gateway_status: str | None
    relink_needed: bool


class TokenKeeper:
    """Each linked user's tokens, refreshed when due; never more than one refresh at once."""

    def __init__(
        self,
        store: Store,
        lwa: TokenRefresher,
        *,
        refresh_margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lwa = lwa
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._user_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def tokens_for(self, user_id: str, *, stale: str | None = None) -> Tokens:
        """The user's tokens with an access token good for a few more minutes.

        ``stale``: an access token the gateway refused (401): refresh even if the
        stored expiry says it is fine, unless another caller already replaced it.
        """
        tokens = self._linked(user_id)
        if stale is None and self._fresh(tokens):
            return tokens
        with self._lock_for(user_id):
            tokens = self._linked(user_id)  # someone may have refreshed while we waited
            if self._fresh(tokens) and (stale is None or tokens.access_token != stale):
                return tokens
            return self._refresh(tokens)

    def status(self) -> list[TokenStatus]:
        """Per linked user: token health for status pages. Never the tokens."""
        now = self.clock()
        return [
            TokenStatus(
                user_id=t.user_id,
                linked=True,
                region=t.region,
                expires_at=int(t.expires_at),
                expires_in=int(t.expires_at - now),
                last_refresh_at=int(t.last_refresh_at) if t.last_refresh_at else None,
                last_gateway_status=t.last_gateway_status,
                relink_needed=t.relink_needed,
            )
            for t in self.store.list_tokens()
        ]

    def update(self, user_id: str, change: Callable[[Tokens], Tokens | None]) -> None:
        """Read-modify-write with a version check, so no write undoes a refresh."""
        for _ in range(5):
            cur = self.store.get_tokens(user_id)
            if cur is None:
                return
            new = change(cur)
            if new is None or new == cur:
                return
            try:
                self.store.put_tokens(new, expected_version=cur.version)
                return
            except ConflictError:
                continue

    # -- internals -----------------------------------------------------------------
    def _linked(self, user_id: str) -> Tokens:
        tokens = self.store.get_tokens(user_id)
        if tokens is None:
            raise NotLinked(f"{user_id} has not linked the skill (no tokens stored)")
        if tokens.relink_needed:
            raise RelinkNeeded(f"{user_id} must relink the skill: {RELINK_HINT}")
        return tokens

    def _fresh(self, tokens: Tokens) -> bool:
        margin = self.refresh_margin
        if tokens.last_refresh_at:  # short lifetimes (tests, emulator): a quarter of it
            margin = min(margin, max(0.0, tokens.expires_at - tokens.last_refresh_at) / 4)
        return tokens.expires_at - self.clock() > margin

    def _lock_for(self, user_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._user_locks.setdefault(user_id, threading.Lock())

    def _refresh(self, tokens: Tokens) -> Tokens:
        user_id = tokens.user_id
        try:
            grant = self.lwa.refresh(tokens.refresh_token)
        except LwaInvalidGrant as exc:
            # Only now is the refresh token known to be dead; a relink replaces it.
            self.update(
                user_id,
                lambda cur: (
                    cur.with_(relink_needed=True)
                    if cur.refresh_token == tokens.refresh_token
                    else None
                ),
            )
            log.warning("refresh token of %s refused by LWA: relink needed", user_id)
            raise RelinkNeeded(
                f"Login with Amazon refused the refresh token of {user_id} ({exc.error}): "
                f"{RELINK_HINT}"
            ) from None
        except LwaError as exc:
            log.warning("refresh for %s failed, refresh token kept: %s", user_id, exc)
            raise RefreshFailed(
                f"could not refresh the access token of {user_id}: {exc}; the refresh token "
                "is kept and the next event tries again"
            ) from None

        def apply(cur: Tokens) -> Tokens:
            return cur.with_(
                access_token=grant.access_token,
                refresh_token=grant.refresh_token or cur.refresh_token,
                expires_at=grant.expires_at,
                last_refresh_at=grant.received_at,
                relink_needed=False,
            )

        try:
            saved = self.store.put_tokens(apply(tokens), expected_version=tokens.version)
            log.info("access token of %s refreshed", user_id)
            return saved
        except ConflictError:
            pass
        for _ in range(5):
            cur = self.store.get_tokens(user_id)
            if cur is None:
                raise NotLinked(f"{user_id} unlinked the skill during a token refresh")
            if cur.refresh_token != tokens.refresh_token or (
                cur.access_token != tokens.access_token and self._fresh(cur)
            ):
                # Another process refreshed (or the user relinked) first: theirs wins.
                if cur.relink_needed:
                    raise RelinkNeeded(f"{user_id} must relink the skill: {RELINK_HINT}")
                return cur
            try:  # only other fields changed (e.g. a gateway status): merge our grant
                return self.store.put_tokens(apply(cur), expected_version=cur.version)
            except ConflictError:
                continue
        raise RefreshFailed(f"the tokens of {user_id} kept changing during a refresh")
