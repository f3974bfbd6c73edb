"""The SenderClientId an Alexa session reaches the camera under, and back.

The skill relays Alexa's offer with ``SendAlexaOfferToMaster``; the camera
sees only the ``SenderClientId``. The skill encodes the Alexa ``sessionId``
into it, and the camera reads it back to match ``SessionDisconnected`` (which
the skill records by sessionId) to the viewer it ends:

    alexa.<sessionId, characters outside KVS's ClientId pattern as _, clipped>.<8 hex>

A ClientId is 1-256 characters of ``[a-zA-Z0-9_.-]`` (botocore's model), so a
sessionId (up to 1024 characters, any characters) does not always fit: both
sides compare :func:`session_key` forms, the sessionId as the client id
carries it. The random suffix keeps two offers of one session apart.
"""

from __future__ import annotations

import re
import secrets

ALEXA_PREFIX = "alexa."
MAX_CLIENT_ID = 256  # KVS ClientId / SenderClientId: 1-256 characters
_SUFFIX_HEX = 8
# What fits in a SenderClientId beside "alexa." and ".<8 hex>".
SESSION_ID_CHARS = MAX_CLIENT_ID - len(ALEXA_PREFIX) - 1 - _SUFFIX_HEX  # 241
_OUTSIDE_CLIENT_ID = re.compile(r"[^a-zA-Z0-9_.\-]")


def session_key(session_id: str) -> str:
    """An Alexa sessionId as a SenderClientId carries it: outside characters as _, clipped."""
    return _OUTSIDE_CLIENT_ID.sub("_", session_id)[:SESSION_ID_CHARS]


def sender_client_id(session_id: str) -> str:
    """The SenderClientId for one offer of Alexa session ``session_id``."""
    return f"{ALEXA_PREFIX}{session_key(session_id)}.{secrets.token_hex(_SUFFIX_HEX // 2)}"


def alexa_session_key(client_id: str) -> str | None:
    """The :func:`session_key` inside an Alexa SenderClientId; None for other viewers."""
    if not client_id.startswith(ALEXA_PREFIX):
        return None
    middle, _, _ = client_id[len(ALEXA_PREFIX) :].rpartition(".")
    # session_key again: a client id from elsewhere may be longer or carry other characters.
    return session_key(middle) if middle else None
