"""Validation against Amazon's official Alexa Smart Home message schema.

The schema (JSON Schema draft-04, shipped as package data) describes every
message a skill sends toward Alexa: responses, ErrorResponses and proactive
events. Used by the tests and by the local event gateway; not on the Lambda
path (jsonschema is not in the Lambda runtime).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "alexa_smart_home_message_schema.json"


@cache
def _validator() -> Any:
    from jsonschema import Draft4Validator

    text = resources.files("alexa_doorbell.alexa").joinpath("schema", SCHEMA_FILE).read_text()
    return Draft4Validator(json.loads(text))


def schema_errors(message: dict[str, Any]) -> list[str]:
    """Human-readable reasons the message breaks the schema; empty when it is valid."""
    validator = _validator()
    errors = sorted(validator.iter_errors(message), key=lambda e: list(e.absolute_path))
    if not errors:
        return []
    # oneOf failures nest the useful detail in their context: surface the closest branch.
    out = []
    for err in errors:
        best = min(err.context, key=lambda e: len(list(e.absolute_path)) * -1, default=err)
        path = "/".join(str(p) for p in best.absolute_path) or "(root)"
        out.append(f"{path}: {best.message[:300]}")
    return out


def is_valid(message: dict[str, Any]) -> bool:
    return _validator().is_valid(message)


def validate(message: dict[str, Any]) -> None:
    """Raise ValueError naming what is wrong when the message breaks the schema."""
    errors = schema_errors(message)
    if errors:
        raise ValueError("message breaks the Alexa schema: " + "; ".join(errors[:5]))
