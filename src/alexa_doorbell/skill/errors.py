"""The one place where failures at each boundary become Alexa error types.

Boundaries and their exceptions: Login with Amazon (``LwaError``), the store
(``StoreError``), KVS (``kvs.errors.KvsError``), the directive itself (``AlexaError``).
"""

from __future__ import annotations

from alexa_doorbell.alexa import errors as E
from alexa_doorbell.alexa.errors import AlexaError
from alexa_doorbell.amazon.lwa import (
    LwaError,
    LwaExpiredToken,
    LwaInvalidClient,
    LwaInvalidGrant,
    LwaInvalidToken,
    LwaUnavailable,
)
from alexa_doorbell.kvs.errors import KvsError, KvsThrottled, KvsUnreachable
from alexa_doorbell.lambda_config import ConfigError
from alexa_doorbell.store.base import StoreError


def to_alexa_error(exc: BaseException) -> AlexaError:
    if isinstance(exc, AlexaError):
        return exc
    if isinstance(exc, LwaExpiredToken):
        return AlexaError(E.EXPIRED_AUTHORIZATION_CREDENTIAL, "the access token has expired")
    if isinstance(exc, LwaInvalidToken):
        return AlexaError(E.INVALID_AUTHORIZATION_CREDENTIAL, "the access token is not valid")
    if isinstance(exc, LwaUnavailable):
        return AlexaError(E.INTERNAL_ERROR, f"Login with Amazon is unavailable: {exc.error}")
    if isinstance(exc, LwaError):
        return AlexaError(E.INTERNAL_ERROR, str(exc))
    if isinstance(exc, KvsUnreachable):
        return AlexaError(E.ENDPOINT_UNREACHABLE, str(exc))
    if isinstance(exc, KvsThrottled):
        return AlexaError(E.RATE_LIMIT_EXCEEDED, str(exc))
    if isinstance(exc, KvsError):
        return AlexaError(E.INTERNAL_ERROR, str(exc))
    if isinstance(exc, StoreError):
        return AlexaError(E.INTERNAL_ERROR, f"store unavailable: {exc}")
    if isinstance(exc, ConfigError):
        return AlexaError(E.INTERNAL_ERROR, f"skill misconfigured: {exc}")
    return AlexaError(E.INTERNAL_ERROR, f"unexpected {type(exc).__name__}")


def to_accept_grant_failure(exc: BaseException) -> AlexaError:
    """AcceptGrant knows one error type; the message names the likely cause."""
    if isinstance(exc, LwaInvalidClient):
        why = (
            f"Login with Amazon rejected the skill's client credentials ({exc.error}): "
            "configure the Alexa Skill Messaging client id and secret (developer console, "
            "Permissions), not the account-linking security profile"
        )
    elif isinstance(exc, LwaInvalidGrant):
        why = (
            "Login with Amazon rejected the authorization code (invalid_grant): it expired or "
            "was already used, or it was issued to another skill's client id; relink the skill"
        )
    elif isinstance(exc, LwaInvalidToken):
        why = "the grantee token is not a valid Login with Amazon token for this skill"
    elif isinstance(exc, LwaUnavailable):
        why = f"Login with Amazon is unavailable ({exc.error}); try linking again"
    elif isinstance(exc, StoreError):
        why = f"the tokens could not be stored: {exc}"
    else:
        why = to_alexa_error(exc).message
    return E.AcceptGrantFailed(why)
