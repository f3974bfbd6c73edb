"""KVS failures: one exception type for the KVS boundary, on both sides of the wire.

``KvsError`` says a KVS call failed and, when KVS answered with an error, what
AWS said: the HTTP status and the error type (``x-amzn-ErrorType``, e.g.
``ResourceNotFoundException``). The local cloud raises it to answer as AWS
does; the skill raises the subclasses, which say what the failure means for a
caller (``skill/errors.py`` turns each into an Alexa error type, in one place).
``kvs.messages.MessageError`` stays apart: a malformed signaling message, not a
failed call.
"""

from __future__ import annotations


class KvsError(Exception):
    """A KVS call failed: ``status`` and ``error_type`` are AWS's, empty when KVS said nothing."""

    def __init__(self, message: str, *, error_type: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status = status


class KvsUnreachable(KvsError):
    """No answer from the camera: no master, timeout, empty Answer, network trouble."""


class KvsThrottled(KvsError):
    """KVS refused for rate or client limits."""


class KvsDenied(KvsError):
    """KVS refused the caller's credentials or the channel: a deployment problem."""
