"""Validation against Amazon's official Alexa Smart Home message schema.

The schema (JSON Schema draft-04, shipped as package data) describes every
message a skill sends toward Alexa: responses, ErrorResponses and proactive
events. Used by the tests and by the local event gateway; not on the Lambda
path (jsonschema is not in the Lambda runtime).

The official file has no branch for ``Alexa.Discovery``/``DeleteReport``;
that message is checked against its documented shape, derived from the
``AddOrUpdateReport`` branch (endpoints carry only ``endpointId``).

Nor has it anything of ``Alexa.SmartVision.*``. Those parts are checked against
this project's own schema, ``alexa_doorbell_smartvision_schema.json`` (written
from Amazon's documentation, kept apart from Amazon's file): a message in that
namespace (``ObjectDetection``, its ``ErrorResponse``) wholly, and inside other
messages the SmartVision capabilities and properties, while the rest of such a
message is still checked against Amazon's schema.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "alexa_smart_home_message_schema.json"
SMARTVISION_SCHEMA_FILE = "alexa_doorbell_smartvision_schema.json"  # ours, not Amazon's
SMARTVISION = "Alexa.SmartVision."
# Where SmartVision parts sit inside messages of other namespaces: the list, the
# key naming the part's interface, and the definition in our schema that checks it.
_PART_LISTS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("context", "properties"), "namespace", "property"),
    (("event", "payload", "change", "properties"), "namespace", "property"),
    (("event", "payload", "endpoints", "*", "capabilities"), "interface", "capability"),
)


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


_NEVER: dict[str, Any] = {"not": {}}  # a branch that fails whatever the message


def _header_enum(branch: dict[str, Any], key: str) -> list[Any] | None:
    try:
        enum = branch["properties"]["event"]["properties"]["header"]["properties"][key]["enum"]
    except (KeyError, TypeError):
        return None
    return enum if isinstance(enum, list) else None


def _pruned(node: Any, namespace: str, name: str) -> Any:
    """``node`` without the branches for another header (namespace, name); ``_NEVER``
    when none is left (dropping a branch that cannot pass leaves a oneOf's verdict)."""
    if not isinstance(node, dict):
        return node
    if "oneOf" in node and "properties" not in node:  # a group of message types
        kept = [b for b in (_pruned(b, namespace, name) for b in node["oneOf"]) if b is not _NEVER]
        return {**node, "oneOf": kept} if kept else _NEVER
    namespaces, names = _header_enum(node, "namespace"), _header_enum(node, "name")
    if (namespaces is not None and namespace not in namespaces) or (
        names is not None and name not in names
    ):
        return _NEVER
    return node


@lru_cache(maxsize=64)
def _validator_for(namespace: str, name: str) -> Any:
    """The schema with only this header's branches left. A branch whose header enum
    excludes the message's namespace or name fails anyway, so the oneOf's verdict is
    the full schema's; only far cheaper (jsonschema collects every branch's errors)."""
    full = _schema()
    kept = [b for b in (_pruned(b, namespace, name) for b in full["oneOf"]) if b is not _NEVER]
    return _draft4()({**full, "oneOf": kept or [_NEVER]})


def _header(message: Any) -> tuple[str, str] | None:
    try:
        header = message["event"]["header"]
        namespace, name = header["namespace"], header["name"]
    except (KeyError, TypeError):
        return None
    return (namespace, name) if isinstance(namespace, str) and isinstance(name, str) else None


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


@cache
def _smartvision_schema() -> dict[str, Any]:
    path = resources.files("alexa_doorbell.alexa").joinpath("schema", SMARTVISION_SCHEMA_FILE)
    return json.loads(path.read_text())


@cache
def _smartvision_validator(definition: str | None = None) -> Any:
    """Our schema's validator: whole messages, or one ``definition`` (a capability, a property)."""
    ours = _smartvision_schema()
    if definition is not None:
        ours = {"definitions": ours["definitions"], "$ref": f"#/definitions/{definition}"}
    return type(_validator())(ours)  # the same validator class as Amazon's file gets


def _namespace(message: Any) -> str | None:
    try:
        namespace = message["event"]["header"]["namespace"]
    except (KeyError, TypeError):
        return None
    return namespace if isinstance(namespace, str) else None


def _lists(message: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """Every list at ``path`` ("*" walks all items of a list), with its concrete path."""
    nodes: list[tuple[tuple[Any, ...], Any]] = [((), message)]
    for key in path:
        step: list[tuple[tuple[Any, ...], Any]] = []
        for where, node in nodes:
            if key == "*" and isinstance(node, list):
                step.extend(((*where, i), item) for i, item in enumerate(node))
            elif isinstance(node, dict) and key in node:
                step.append(((*where, key), node[key]))
        nodes = step
    return ((where, node) for where, node in nodes if isinstance(node, list))


def _split(message: Any) -> tuple[Any, list[tuple[tuple[Any, ...], str, Any]], dict[Any, Any]]:
    """(the message without its SmartVision parts, [(path, definition, part)], index maps).

    The index maps take an index in a shortened list back to the original one, so
    errors name the item the sender wrote.
    """
    found: list[tuple[tuple[Any, ...], str, str]] = []  # (list path, key, definition)
    for path, key, definition in _PART_LISTS:
        for where, items in _lists(message, path):
            if any(_is_smartvision_part(item, key) for item in items):
                found.append((where, key, definition))
    if not found:
        return message, [], {}
    stripped = copy.deepcopy(message)
    parts: list[tuple[tuple[Any, ...], str, Any]] = []
    maps: dict[tuple[Any, ...], list[int]] = {}
    for where, key, definition in found:
        node = stripped
        for step in where[:-1]:
            node = node[step]
        kept: list[int] = []
        for i, item in enumerate(node[where[-1]]):
            if _is_smartvision_part(item, key):
                parts.append(((*where, i), definition, item))
            else:
                kept.append(i)
        node[where[-1]] = [node[where[-1]][i] for i in kept]
        maps[where] = kept
    return stripped, parts, maps


def _is_smartvision_part(item: Any, key: str) -> bool:
    return isinstance(item, dict) and str(item.get(key, "")).startswith(SMARTVISION)


def _remap(path: list[Any], maps: dict[tuple[Any, ...], list[int]]) -> list[Any]:
    for where, kept in maps.items():
        n = len(where)
        inside = len(path) > n and tuple(path[:n]) == where
        if inside and isinstance(path[n], int) and path[n] < len(kept):
            path[n] = kept[path[n]]
    return path


def _is_delete_report(message: Any) -> bool:
    try:
        header = message["event"]["header"]
        return (header["namespace"], header["name"]) == ("Alexa.Discovery", "DeleteReport")
    except (KeyError, TypeError):
        return False


def _describe(
    errors: list[Any],
    *,
    prefix: tuple[Any, ...] = (),
    maps: dict[tuple[Any, ...], list[int]] | None = None,
) -> list[str]:
    out = []
    for e in errors:
        path = [*prefix, *e.absolute_path]
        if maps:
            path = _remap(path, maps)
        out.append(f"{'/'.join(str(p) for p in path) or '(root)'}: {e.message[:300]}")
    return out


def schema_errors(message: Any) -> list[str]:
    """Why ``message`` breaks the schema (empty when it is valid).

    The schema is a oneOf over every message type, and its generic reasons often
    name a branch for another type ("namespace is not one of ['Alexa']").
    Branches that reject the header's namespace/name are other types: the
    reasons come from the closest of the rest.
    """
    if _is_delete_report(message):
        return _describe(list(_delete_report_validator().iter_errors(message)))
    namespace = _namespace(message)
    if namespace is not None and namespace.startswith(SMARTVISION):
        return _closest(_smartvision_validator(), message)
    stripped, parts, maps = _split(message)
    header = _header(stripped)
    if header is not None and _validator_for(*header).is_valid(stripped):
        errors: list[str] = []
    else:  # the reasons come from the whole schema, as before
        errors = _closest(_validator(), stripped, maps)
    for path, definition, part in parts:
        found = list(_smartvision_validator(definition).iter_errors(part))
        errors += _describe(found, prefix=path)
    return errors


def _closest(
    validator: Any, message: Any, maps: dict[tuple[Any, ...], list[int]] | None = None
) -> list[str]:
    errors = list(validator.iter_errors(message))
    if not errors:
        return []
    best: list[Any] | None = None
    for subs in _branches(errors):
        paths = [list(e.absolute_path) for e in subs]
        if any(p[-2:] in (["header", "namespace"], ["header", "name"]) for p in paths):
            continue
        if best is None or len(subs) < len(best):
            best = subs
    return _describe(best or errors, maps=maps)


def _other_type(err: Any) -> bool:
    """The alternative is for another kind of message or property (its name differs)."""
    path = list(err.absolute_path)
    return err.validator == "enum" and bool(path) and path[-1] in ("namespace", "name", "interface")


def _branches(errors: list[Any]) -> list[list[Any]]:
    """Leaf errors per alternative, descending through nested oneOf/anyOf.

    Alternatives for another type (another message, another state property) are
    dropped as they are met, unless every one is: in a StateReport with a bad
    ``detectionState`` only the MotionSensor alternative is left to explain it.
    """
    out: list[list[Any]] = [[]]
    for err in errors:
        if err.validator in ("oneOf", "anyOf") and err.context:
            groups: dict[Any, list[Any]] = {}
            for sub in err.context:
                groups.setdefault(sub.relative_schema_path[0], []).append(sub)
            alternatives = list(groups.values())
            closer = [g for g in alternatives if not any(_other_type(e) for e in g)]
            expanded = [b for g in (closer or alternatives) for b in _branches(g)]
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
