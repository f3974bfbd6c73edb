"""One line for each way a configuration can be wrong (used by ``alexa_doorbell.config``).

Each message names where the value came from (the TOML file, or the environment
variable), the key as a dotted path (``cameras[0].fps``) and what is allowed, so
that a command prints it and exits 2 rather than showing a traceback. Values of
secret-looking keys, and of unknown keys (a misspelt secret is still a secret),
are never shown.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from alexa_doorbell.lambda_config import PREFIX, ConfigError

Loc = Sequence[int | str]
_SECRET = re.compile(r"secret|password|token|key", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]*@")  # mqtt://user:password@host
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def read_toml(path: Path) -> dict[str, Any]:
    """The file's tables, or ConfigError with the file, line, column and the reason."""
    path = Path(path).absolute()
    try:
        text = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc.args[0] if exc.args else exc)
        position = _TOML_POSITION.search(reason)
        if position is None:  # "(at end of document)" and the like stay in the reason
            raise ConfigError(f"{path}: not valid TOML: {reason}") from None
        line, column = position.groups()
        reason = reason[: position.start()]
        raise ConfigError(f"{path}:{line}:{column}: not valid TOML: {reason}") from None


def key_path(loc: Loc) -> str:
    """``("cameras", 0, "fps")`` -> ``cameras[0].fps``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def describe_validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    toml: Mapping[str, Any],
    toml_path: Path | None,
    environ: Mapping[str, str],
) -> str:
    """The first error in one line, then the keys of any others."""
    errors = exc.errors(include_url=False)
    first = _describe(errors[0], model, toml, toml_path, environ)
    if len(errors) > 1:
        others = ", ".join(key_path(_clean_loc(e["loc"], model)) for e in errors[1:])
        first += f" (and {len(errors) - 1} more: {others})"
    return first


def describe_settings_error(
    exc: Exception, model: type[BaseModel], environ: Mapping[str, str]
) -> str:
    """pydantic-settings' "error parsing value for field X" (JSON in a variable), in one line."""
    match = re.search(r'field "([^"]+)"', str(exc))
    if match is None or match.group(1) not in model.model_fields:
        return f"bad {PREFIX}* variable: {exc}"
    field = match.group(1)
    found = env_lookup(environ, PREFIX + field)
    name = found[0] if found else PREFIX + field.upper()
    origin = getattr(model.model_fields[field].annotation, "__origin__", None)
    shape = "list" if origin is list else "object"
    cause = exc.__cause__
    why = f" ({cause})" if isinstance(cause, json.JSONDecodeError) else ""
    return f"{name}: not valid JSON{why}; {field} takes a JSON {shape}"


def unknown_variables(
    environ: Mapping[str, str], fields: Iterable[str], others: Iterable[str]
) -> list[str]:
    """A warning for each ``ALEXA_DOORBELL_*`` variable that nothing reads."""
    settings = {f.upper() for f in fields}
    known = settings | {o.upper() for o in others}
    warnings = []
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX):
            continue
        rest = name[len(PREFIX) :].upper()
        if rest in known or rest.split("__", 1)[0] in settings:
            continue  # nested keys (LOCAL__HOTS) are checked by the models themselves
        close = difflib.get_close_matches(rest, sorted(known), n=1, cutoff=0.7)
        hint = f" (did you mean {PREFIX}{close[0]}?)" if close else ""
        warnings.append(f"ignoring {name}: it is not a setting{hint}")
    return warnings


# -- one error -----------------------------------------------------------------------------
def _describe(
    error: ErrorDetails,
    model: type[BaseModel],
    toml: Mapping[str, Any],
    toml_path: Path | None,
    environ: Mapping[str, str],
) -> str:
    loc = _clean_loc(error["loc"], model)
    key = key_path(loc)
    variable = _env_source(loc, environ)
    if variable is not None:
        where = variable
    elif toml_path is not None and walk(toml, loc) is not MISSING:
        where = str(toml_path)
    else:
        where = "settings"
    if error["type"] == "extra_forbidden":
        return f"{where}: {key}: unknown key{_suggest(loc, model)}"
    if error["type"] == "missing":
        return f"{where}: {key}: required"
    value = error["input"]
    # A table's or list's own error (a model validator's) is about the keys inside it
    plain = not isinstance(value, (dict, list)) and not _SECRET.search(key)
    plain = plain and not _URL_PASSWORD.search(str(value))
    shown = f" = {_show(value)}" if plain else ""
    message = error["msg"].removeprefix("Value error, ").split(", unable to")[0]
    message = message.replace("Input should be", "must be", 1)
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        message = "must be a table (key = value pairs)"
    elif error["type"] == "path_type":
        message = "must be a path (a string)"
    return f"{where}: {key}{shown}: {message}"


def _suggest(loc: Loc, model: type[BaseModel]) -> str:
    parent = _model_at(loc[:-1], model)
    if parent is None:
        return ""
    allowed = list(parent.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{hint} (allowed: {', '.join(allowed)})"


def _model_at(loc: Loc, model: type[BaseModel]) -> type[BaseModel] | None:
    """The model whose keys live at ``loc`` (walking fields, list items and Optionals)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _clean_loc(loc: Loc, model: type[BaseModel]) -> tuple[int | str, ...]:
    """Drop pydantic's validator steps (``is-instance[Path]``, ``str``...) from a loc."""
    out: list[int | str] = []
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            out.append(part)
        elif current is not None:  # a key; below a plain value come only validator steps
            out.append(part)
            field = current.model_fields.get(part)
            current = None if field is None else _inner_model(field.annotation)
    return tuple(out)


# -- where a value came from ---------------------------------------------------------------
MISSING = object()


def walk(data: Any, loc: Loc) -> Any:
    """The value at ``loc`` in parsed TOML or JSON, or ``MISSING``."""
    for part in loc:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return MISSING
            data = data[part]
        elif isinstance(data, Mapping) and part in data:
            data = data[part]
        else:
            return MISSING
    return data


def env_lookup(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """pydantic-settings matches names without regard to case; so does this."""
    wanted = name.upper()
    for key, value in environ.items():
        if key.upper() == wanted:
            return key, value
    return None


def _env_source(loc: Loc, environ: Mapping[str, str]) -> str | None:
    """The variable that supplied ``loc`` (a nested ``A__B`` name or a JSON value), if any."""
    names: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        names.append(part)
    for depth in range(len(names), 0, -1):
        found = env_lookup(environ, PREFIX + "__".join(names[:depth]))
        if found is None:
            continue
        if depth == len(loc):
            return found[0]
        try:
            value = json.loads(found[1])
        except ValueError:
            continue
        if walk(value, loc[depth:]) is not MISSING:
            return found[0]
    return None


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
