"""Validation against Amazon's official Alexa Smart Home message schema.

The schema (JSON Schema draft-04, shipped as package data) describes every
message a skill sends toward Alexa: responses, ErrorResponses and proactive
events. Used by the tests and by the local event gateway; not on the Lambda
path (jsonschema is not in the Lambda runtime).

The official file has no branch for ``Alexa.Discovery``/``DeleteReport``;
that message is checked against its documented shape, derived from the
``AddOrUpdateReport`` branch (endpoints carry only ``endpointId``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "alexa_smart_home_message_schema.json"


@cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    r"""A JSON Schema ``pattern`` (ECMA-262) as Python must run it.

    In ECMA-262 ``$`` ends the input, while Python's ``$`` also matches before a
    final newline: ``^[a-z-]*$`` would pass "front-door" followed by a newline.
    ``\d`` and ``\w`` are ASCII in ECMA-262, hence ``re.ASCII``.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _draft4() -> Any:
    from jsonschema import Draft4Validator, validators

    return validators.extend(Draft4Validator, {"pattern": _pattern})


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("alexa_doorbell.alexa").joinpath("schema", SCHEMA_FILE).read_text()
    return json.loads(text)


@cache
def _validator() -> Any:
    return _draft4()(_schema())


@cache
def _delete_report_validator() -> Any:
    full = _schema()
    branch = next(
        b for b in full["oneOf"] if b.get("description", "").startswith("An AddOrUpdateReport")
    )
    branch = copy.deepcopy(branch)
    event = branch["properties"]["event"]["properties"]
    event["header"]["properties"]["name"]["enum"] = ["DeleteReport"]
    items = event["payload"]["properties"]["endpoints"]["items"]
    items["required"] = ["endpointId"]
    items["additionalProperties"] = False
    items["properties"] = {"endpointId": items["properties"]["endpointId"]}
    return _draft4()({"definitions": full["definitions"], **branch})


def _is_delete_report(message: Any) -> bool:
    try:
        header = message["event"]["header"]
        return (header["namespace"], header["name"]) == ("Alexa.Discovery", "DeleteReport")
    except (KeyError, TypeError):
        return False


def _describe(errors: list[Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}"
        for e in errors
    ]


def schema_errors(message: Any) -> list[str]:
    """Why ``message`` breaks the schema (empty when it is valid).

    The schema is a oneOf over every message type, and its generic reasons often
    name a branch for another type ("namespace is not one of ['Alexa']").
    Branches that reject the header's namespace/name are other types: the
    reasons come from the closest of the rest.
    """
    if _is_delete_report(message):
        return _describe(list(_delete_report_validator().iter_errors(message)))
    errors = list(_validator().iter_errors(message))
    if not errors:
        return []
    best: list[Any] | None = None
    for subs in _branches(errors):
        paths = [list(e.absolute_path) for e in subs]
        if any(p[-2:] in (["header", "namespace"], ["header", "name"]) for p in paths):
            continue
        if best is None or len(subs) < len(best):
            best = subs
    return _describe(best or errors)


def _branches(errors: list[Any]) -> list[list[Any]]:
    """Leaf errors per alternative, descending through nested oneOf/anyOf."""
    out: list[list[Any]] = [[]]
    for err in errors:
        if err.validator in ("oneOf", "anyOf") and err.context:
            groups: dict[Any, list[Any]] = {}
            for sub in err.context:
                groups.setdefault(sub.relative_schema_path[0], []).append(sub)
            expanded = [b for g in groups.values() for b in _branches(g)]
            out = [o + b for o in out for b in expanded][:500]
        else:
            out = [[*o, err] for o in out]
    return out


def is_valid(message: Any) -> bool:
    return not schema_errors(message)


def validate(message: Any) -> None:
    """Raise ValueError naming what is wrong when the message breaks the schema."""
    errors = schema_errors(message)
    if errors:
        raise ValueError("message breaks the Alexa schema: " + "; ".join(errors[:5]))
