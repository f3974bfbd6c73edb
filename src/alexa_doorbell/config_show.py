"""``alexa-doorbell config``: the settings a command runs with, and where each one came from.

Every key of ``Settings``, nested tables and cameras included, with its effective value
and its source: ``environment`` (naming the variable), ``file`` (the TOML file) or
``default``, by the same precedence the settings use (a variable beats the file, a JSON
list in a variable replaces the file's list, a JSON table is merged into the file's).
Secrets never appear: secret settings show whether they are set, and a password inside
a URL (``rtsp://user:password@…``) is masked. Variables read beside the settings
(passwords, tokens) are listed as set or not, never with their values.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from alexa_doorbell import config_errors
from alexa_doorbell.config import (
    CONFIG_VARIABLE,
    ENV_PREFIX,
    OTHER_VARIABLES,
    Settings,
    config_file,
)
from alexa_doorbell.config_errors import MISSING, env_lookup, walk

Source = Literal["environment", "file", "default"]
HIDDEN = "(set, hidden)"
# Text settings whose values are secret even when their type is not SecretStr (the ARN or
# the file of a secret, and an id, are not).
_SECRET_NAME = re.compile(r"secret|password|token", re.IGNORECASE)
_NOT_SECRET = ("_arn", "_file", "_id")


@dataclass(frozen=True)
class Entry:
    key: str  # dotted, as errors name it: cameras[0].fps
    value: Any  # JSON-able, secrets replaced
    source: Source
    origin: str | None  # the variable's name or the file's path; None for a default


@dataclass(frozen=True)
class Report:
    cloud: str
    store: str  # where tokens and devices live: store_url, or SQLite in data_dir
    config_file: str
    config_file_named_by: str | None  # ALEXA_DOORBELL_CONFIG, or None for ./alexa-doorbell.toml
    config_file_read: bool
    settings: list[Entry]
    variables: dict[str, str]  # other ALEXA_DOORBELL_* variables: "set" or a harmless value
    ignored: list[str]  # ALEXA_DOORBELL_* variables nothing reads (the warnings)
    aws_credentials: str | None  # where botocore's chain finds them (cloud = "aws" only)
    aws_profile: str | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["settings"] = {
            e.key: {"value": e.value, "source": e.source, "origin": e.origin} for e in self.settings
        }
        return out


def report(settings: Settings, environ: Mapping[str, str] | None = None) -> Report:
    """What ``settings`` holds and where each value came from (no network)."""
    environ = dict(os.environ if environ is None else environ)
    path, named = config_file(environ)
    toml = config_errors.read_toml(path) if path.is_file() else {}
    file_shown = str(path.absolute()) if path.is_file() else str(path)
    entries = [
        Entry(key, _shown(value, secret), *_source(loc, environ, toml, file_shown))
        for loc, key, value, secret in _leaves(settings, ())
    ]
    aws_credentials = aws_profile = None
    if not settings.is_local:
        from alexa_doorbell.preflight import credential_method

        aws_credentials = credential_method()
        aws_profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE")
    return Report(
        cloud=settings.cloud,
        store=mask_url_password(settings.store_location),
        config_file=file_shown,
        config_file_named_by=CONFIG_VARIABLE if named else None,
        config_file_read=path.is_file(),
        settings=entries,
        variables=_other_variables(environ),
        ignored=config_errors.unknown_variables(environ, Settings.model_fields, OTHER_VARIABLES),
        aws_credentials=aws_credentials,
        aws_profile=aws_profile,
    )


def render(rep: Report) -> str:
    """The human form: one line per key, its value and where it came from."""
    where = rep.config_file if rep.config_file_read else f"{rep.config_file} (none: not read)"
    if rep.config_file_named_by:
        where += f", named by {rep.config_file_named_by}"
    lines = [f"alexa-doorbell config: {rep.cloud} cloud, file {where}, store {rep.store}"]
    width = max(len(e.key) for e in rep.settings)
    for e in rep.settings:
        value = e.value if e.value == HIDDEN else json.dumps(e.value, ensure_ascii=False)
        origin = e.source if e.origin is None else f"{e.source} {e.origin}"
        lines.append(f"  {e.key:<{width}}  {value}  ({origin})")
    if rep.cloud == "aws":
        found = rep.aws_credentials or "none found"
        profile = f", AWS_PROFILE={rep.aws_profile}" if rep.aws_profile else ""
        lines.append(f"aws credentials: {found}{profile}")
    for name, value in rep.variables.items():
        lines.append(f"variable {name}: {value}")
    lines += [f"warning: {w}" for w in rep.ignored]
    return "\n".join(lines)


# -- the walk ---------------------------------------------------------------------------
Loc = tuple[int | str, ...]


def _leaves(model: BaseModel, loc: Loc) -> Iterator[tuple[Loc, str, Any, bool]]:
    """(loc, dotted key, value, secret?) for every plain value under ``model``."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        here = (*loc, name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, here)
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            for i, item in enumerate(value):
                yield from _leaves(item, (*here, i))
        else:
            secret = isinstance(value, SecretStr) or "SecretStr" in str(field.annotation)
            named = bool(_SECRET_NAME.search(name)) and not name.endswith(_NOT_SECRET)
            secret = secret or (isinstance(value, str) and named)
            yield here, config_errors.key_path(here), value, secret


def _shown(value: Any, secret: bool) -> Any:
    if secret:
        return None if value in (None, "") else HIDDEN
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return mask_url_password(value)
    if isinstance(value, (list, tuple)):
        return [_shown(v, False) for v in value]
    return value


def mask_url_password(text: str) -> str:
    """``rtsp://admin:hunter2@cam/x`` -> ``rtsp://admin:***@cam/x``; other text unchanged."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.password is None:
        return text
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# -- where a value came from ----------------------------------------------------------------
def _source(
    loc: Loc, environ: Mapping[str, str], toml: Mapping[str, Any], file_shown: str
) -> tuple[Source, str | None]:
    names: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        names.append(part)
    for depth in range(len(names), 0, -1):
        found = env_lookup(environ, ENV_PREFIX + "__".join(names[:depth]))
        if found is None:
            continue
        if depth == len(loc):
            return "environment", found[0]
        try:
            value = json.loads(found[1])
        except ValueError:
            continue
        if walk(value, loc[depth:]) is not MISSING:
            return "environment", found[0]
        if isinstance(value, list):  # the variable's list replaced the file's whole
            return "default", None
        # a JSON table is merged into the file's: look further
    if walk(toml, loc) is not MISSING:
        return "file", file_shown
    return "default", None


def _other_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """ALEXA_DOORBELL_* variables read beside the settings: set or not, never a secret."""
    out: dict[str, str] = {}
    fields = {f.upper() for f in Settings.model_fields}
    for name in sorted(environ):
        rest = name[len(ENV_PREFIX) :].upper() if name.upper().startswith(ENV_PREFIX) else None
        if rest is None or rest in fields or rest.split("__", 1)[0] in fields:
            continue
        if rest not in {o.upper() for o in OTHER_VARIABLES}:
            continue  # unknown: a warning, listed apart
        # The config file's name is no secret; the others are passwords, tokens or knobs
        # whose values nobody needs to see here.
        out[name] = environ[name] if rest == "CONFIG" else "set"
    return out
