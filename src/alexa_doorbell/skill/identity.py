"""Bearer token -> Amazon user id, via the LWA profile API, cached for a bounded time."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from alexa_doorbell.alexa import errors as E
from alexa_doorbell.alexa.errors import AlexaError
from alexa_doorbell.amazon.lwa import Profile


class ProfileSource(Protocol):
    """Who a bearer token belongs to (``amazon.lwa.LwaClient.profile``)."""

    def profile(self, access_token: str) -> Profile: ...


class UserResolver:
    """Caches successes only, keyed by a hash of the token (tokens are never kept)."""

    def __init__(
        self,
        lwa: ProfileSource,
        *,
        ttl: float = 300.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lwa = lwa
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def user_id(self, token: str | None) -> str:
        if not token:
            raise AlexaError(
                E.INVALID_AUTHORIZATION_CREDENTIAL, "the directive has no bearer token"
            )
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[1] > now:
                return hit[0]
        user_id = self.lwa.profile(token).user_id  # LwaError propagates to the error mapper
        with self._lock:
            self._cache[key] = (user_id, now + self.ttl)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return user_id

    def forget(self, token: str) -> None:
        with self._lock:
            self._cache.pop(hashlib.sha256(token.encode()).digest(), None)
