"""Alexa error types and the one exception the skill turns into an ErrorResponse."""

from __future__ import annotations

# Alexa ErrorResponse types this project uses (namespace "Alexa").
ENDPOINT_UNREACHABLE = "ENDPOINT_UNREACHABLE"
ENDPOINT_BUSY = "ENDPOINT_BUSY"
NO_SUCH_ENDPOINT = "NO_SUCH_ENDPOINT"
INVALID_DIRECTIVE = "INVALID_DIRECTIVE"
INVALID_VALUE = "INVALID_VALUE"
INVALID_AUTHORIZATION_CREDENTIAL = "INVALID_AUTHORIZATION_CREDENTIAL"
EXPIRED_AUTHORIZATION_CREDENTIAL = "EXPIRED_AUTHORIZATION_CREDENTIAL"
INTERNAL_ERROR = "INTERNAL_ERROR"
RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
# Alexa.Authorization's only error type.
ACCEPT_GRANT_FAILED = "ACCEPT_GRANT_FAILED"

MAX_MESSAGE_CHARS = 1000  # error messages are for logs and the developer console


class AlexaError(Exception):
    """A failure to report to Alexa as an ``ErrorResponse`` of ``type`` in ``namespace``."""

    def __init__(self, type: str, message: str, namespace: str = "Alexa") -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message[:MAX_MESSAGE_CHARS]
        self.namespace = namespace


class InvalidDirective(AlexaError):
    def __init__(self, message: str) -> None:
        super().__init__(INVALID_DIRECTIVE, message)


class AcceptGrantFailed(AlexaError):
    def __init__(self, message: str) -> None:
        super().__init__(ACCEPT_GRANT_FAILED, message, namespace="Alexa.Authorization")
