"""What a device's message says: on, off, or nothing for us. Pure, no I/O.

Buttons and sensors at home speak a handful of dialects: ``ON``/``OFF``
(Tasmota, Frigate), ``true``/``false``, ``1``/``0``, or JSON with one field that
matters among many (zigbee2mqtt: ``{"action": "single", "battery": 97, ...}``,
``{"occupancy": true, "illuminance": 12, ...}``).

    read_state(b"ON")                                          # True
    read_state(b'{"occupancy": false}', field="occupancy")     # False
    read_state(b'{"action": "single"}', field="action", on="single")   # True
    read_state(b'{"battery": 97}', field="action")             # None: not about this
    read_state(b"maybe")                                       # PayloadError
"""

from __future__ import annotations

import json
from typing import Any

ON_WORDS = frozenset({"on", "true", "1", "yes", "open", "detected", "occupied", "motion"})
# What a button says when pressed, beyond the ON words (zigbee2mqtt's "single", Shelly's "S")
PRESS_WORDS = frozenset({"press", "pressed", "single", "ring"})
OFF_WORDS = frozenset({"off", "false", "0", "no", "closed", "clear", "not_detected"})
MAX_PAYLOAD = 65536  # a state message is small; anything larger is not one


class PayloadError(ValueError):
    """The message is for us but says nothing we can read; the text says why."""


def decode_json(payload: bytes) -> Any:
    """The JSON in ``payload``; PayloadError naming the problem otherwise."""
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError(f"{len(payload)} bytes, more than a state message ({MAX_PAYLOAD})")
    try:
        return json.loads(payload)
    except UnicodeDecodeError:
        raise PayloadError("not UTF-8 text") from None
    except ValueError as exc:
        raise PayloadError(f"not JSON ({exc.args[0].split(':')[0]})") from None


def field_value(document: Any, field: str) -> Any:
    """``document[field]``, with dots for nested objects ("state.motion"); None if absent."""
    value = document
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "1" if value == 1 else "0" if value == 0 else repr(value)
    if isinstance(value, str):
        return value.strip().lower()
    raise PayloadError(f"a {type(value).__name__}, not a state")


def read_state(
    payload: bytes,
    *,
    field: str | None = None,
    on: str | None = None,
    off: str | None = None,
    on_words: frozenset[str] = ON_WORDS,
) -> bool | None:
    """True (on), False (off) or None (a message about something else).

    ``field``: the payload is a JSON object and this field holds the state; a
    message without it (or with null, as zigbee2mqtt clears ``action``) is None.
    ``on``/``off``: the exact values (case-insensitive) that mean on and off; then
    any other value is None, as a button's other actions ("double", "hold") are.
    Without them the usual words count (``ON``/``OFF``, ``true``/``false``, ``1``/``0``).
    """
    if field:
        document = decode_json(payload)
        if not isinstance(document, dict):
            raise PayloadError(f"a JSON {type(document).__name__}, not an object with {field!r}")
        value = field_value(document, field)
        if value is None or value == "":
            return None
    else:
        if len(payload) > MAX_PAYLOAD:
            raise PayloadError(f"{len(payload)} bytes, more than a state message")
        try:
            text = payload.decode().strip()
        except UnicodeDecodeError:
            raise PayloadError("not UTF-8 text") from None
        value = text
        if text[:1] in ('"', "{", "[") or text in ("true", "false", "null"):
            value = decode_json(payload)  # a JSON string, or an object we cannot use
            if isinstance(value, dict | list):
                raise PayloadError("a JSON object without a field to read: set the field key")
            if value is None:
                return None
    said = word(value)
    if on is not None or off is not None:
        if on is not None and said == on.strip().lower():
            return True
        if off is not None and said == off.strip().lower():
            return False
        return None
    if said in on_words:
        return True
    if said in OFF_WORDS:
        return False
    shown = said if len(said) <= 40 else said[:40] + "..."
    raise PayloadError(f"{shown!r} is neither on nor off (ON/OFF, true/false, 1/0)")
