"""The docs cannot rot: what README.md and docs/ name exists, and their examples run.

- every ``alexa-doorbell`` command and flag in inline code or a shell block is one the
  command has (walked from the Typer app), and every command has a row in the README;
- every ``ALEXA_DOORBELL_*`` name is a setting, a nested key, or a variable something
  reads (``OTHER_VARIABLES``); extras named (``--extra x``) are in pyproject.toml;
- every key in a settings table is a field of the settings models, with its default
  where the table gives one literal; docs/configuration.md has a row for every field of
  every model and every variable the Lambda functions read;
- every relative link reaches a file, and its ``#anchor`` a heading; every repository
  path named in code (``tests/x.py::test_y``) exists;
- the shell examples run (see ``test_shell_example_runs``), unless the comment before
  a block says ``<!-- not run: why -->``.

The TOML examples are loaded by
tests/config/test_load.py::test_every_toml_example_in_the_docs_loads.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import typer
from pydantic import BaseModel, SecretStr

from alexa_doorbell.cli import app
from alexa_doorbell.config import ENV_PREFIX, OTHER_VARIABLES, ConfigError, Settings, load_settings
from alexa_doorbell.lambda_config import LAMBDA_VARIABLES
from tests.helpers.markdown import Block, Doc, Table, code_spans, plain

ROOT = Path(__file__).resolve().parents[1]
DOCS = [Doc(p) for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]]
CONFIGURATION = next(d for d in DOCS if d.path == ROOT / "docs" / "configuration.md")
COMMAND = typer.main.get_command(app)
SHELLS = ("sh", "console", "bash", "shell")
# Names the docs show as mistakes, on purpose; each is checked to be refused.
MISTAKES = {"ALEXA_DOORBELL_LOCAL__HOTS"}
DEPRECATED_KEYS = {"CameraConfig": {"full_duplex"}}  # still read, with a warning
FIXTURES = ("a local cloud", "a linked local cloud")
# What an example may run. Anything else (curl, sam, systemctl...) could reach off this
# machine or change it, so an example that runs it must say <!-- not run: why -->.
SAFE_PROGRAMS = {"alexa-doorbell", "export", "unset", "printf", "echo", "cat", "rm", "ls", "cd"}
# Run only against a local cloud a fixture started, and skipped where not installed.
CLOUD_CLIENTS = {"aws"}


def models() -> dict[str, type[BaseModel]]:
    """Every settings model by its path: "" (the top level), "local", "cameras", ..."""
    out: dict[str, type[BaseModel]] = {"": Settings}
    for name, info in Settings.model_fields.items():
        if (model := _model_of(info.annotation)) is not None:
            out[name] = model
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


# -- commands and flags -------------------------------------------------------------------
def _segments(text: str) -> Iterator[str]:
    """Each simple command in a line of shell (split at ; && || | ( $( and backticks)."""
    yield from (s.strip() for s in re.split(r"&&|\|\||[;|()`]|\$\(", text) if s.strip())


def _words(segment: str) -> list[str]:
    try:
        words = shlex.split(segment, comments=True)
    except ValueError:  # a quote closed in another segment
        words = segment.split()
    while words and (
        re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]) or words[0] in ("$", "sudo", "exec")
    ):
        words = words[1:]
    if words[:2] == ["uv", "run"]:
        words = words[2:]
    return words


def command_mentions() -> list[tuple[str, list[str]]]:
    """(where, words after alexa-doorbell) for every command the docs write out."""
    found = []
    for doc in DOCS:
        texts = [(f"{doc.path.name}:{n}", text) for n, text in doc.inline_code()]
        for block in doc.blocks:
            if block.lang in SHELLS:
                for n, line in enumerate(_logical_lines(block), 1):
                    if block.lang != "console" or line.startswith("$ "):
                        texts.append((f"{block.where}+{n}", line))
        for where, text in texts:
            for segment in _segments(text):
                words = _words(segment)
                if words[:1] == ["alexa-doorbell"]:
                    found.append((where, words[1:]))
    return found


def _logical_lines(block: Block) -> list[str]:
    return block.text.replace("\\\n", " ").split("\n")


def _options(command: Any) -> dict[str, Any]:
    """Its options by every name (help included). Typer brings its own click, so the
    command's own context class, and no isinstance."""
    ctx = command.context_class(command)
    return {o: p for p in command.get_params(ctx) for o in [*p.opts, *p.secondary_opts]}


def command_errors(words: list[str]) -> list[str]:
    command: Any = COMMAND
    path = "alexa-doorbell"
    errors = []
    skip = False
    for raw in words:
        word = raw.strip("[]")
        if skip or not word or word in ("…", "...", "-"):
            skip = False
            continue
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            param = _options(command).get(name)
            if param is None:
                errors.append(f"{path} has no option {name}")
            elif not getattr(param, "is_flag", True) and "=" not in word:
                skip = True  # its value
        elif hasattr(command, "commands"):  # a group
            sub = command.commands.get(word)
            if sub is not None:
                command, path = sub, f"{path} {word}"
            elif not re.fullmatch(r"[A-Z_|<>…]+|<.*>", word):
                errors.append(f"{path} has no command {word!r}")
                break
    return errors


MENTIONS = command_mentions()


def test_the_docs_name_commands() -> None:
    named = {" ".join(words[:2]) for _, words in MENTIONS}
    assert len(MENTIONS) > 50
    assert {"config", "link", "skill invoke", "tokens status", "package-lambda"} <= {
        n.split()[0] if n.split()[0] not in ("skill", "tokens") else n for n in named if n
    }


def test_every_command_and_flag_the_docs_name_exists() -> None:
    wrong = [f"{where}: {e}" for where, words in MENTIONS for e in command_errors(words)]
    assert wrong == []


def test_the_check_finds_a_wrong_command_and_a_wrong_flag() -> None:
    assert command_errors(["camera", "--endpoint-id", "x", "--source", "testsrc"]) == []
    assert command_errors(["tokens", "status", "[--json]"]) == []
    assert command_errors(["camera", "--sauce", "x"]) == [
        "alexa-doorbell camera has no option --sauce"
    ]
    assert command_errors(["token", "status"]) == ["alexa-doorbell has no command 'token'"]
    assert command_errors(["COMMAND", "--help"]) == []


def test_every_command_has_a_row_in_the_readme() -> None:
    table = next(t for t in DOCS[0].tables() if t.heading == "Commands")
    rows = [_words(code_spans(row[0])[0])[1:] for row in table.rows]

    def leaves(command: Any, path: list[str]) -> Iterator[list[str]]:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from leaves(sub, [*path, name])
        else:
            yield path

    missing = [" ".join(c) for c in leaves(COMMAND, []) if not any(r[: len(c)] == c for r in rows)]
    assert missing == []


def test_every_extra_the_docs_name_exists() -> None:
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    named = set()
    for doc in DOCS:
        named |= set(re.findall(r"--extra[ =]([a-z][\w-]*)", doc.text))
        for group in re.findall(r"alexa-doorbell\[([\w, -]+)\]", doc.text):
            named |= {g.strip() for g in group.split(",")}
    assert named and named <= extras, named - extras


# -- ALEXA_DOORBELL_* names ----------------------------------------------------------------
def variable_names() -> set[str]:
    """Every ALEXA_DOORBELL_* name something reads. Cameras come only as the whole
    ALEXA_DOORBELL_CAMERAS list; the other tables also key by key (LOCAL__PORT)."""
    names = {ENV_PREFIX + o for o in OTHER_VARIABLES}
    names |= {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for path, model in models().items():
        if path and get_origin(Settings.model_fields[path].annotation) is not list:
            names |= {f"{ENV_PREFIX}{path.upper()}__{key.upper()}" for key in model.model_fields}
    return names


def test_every_variable_the_docs_name_is_read() -> None:
    known = variable_names()
    wrong = []
    for doc in DOCS:
        for match in re.finditer(r"ALEXA_DOORBELL_[A-Z0-9_]*", doc.text):
            name = match.group(0)
            line = doc.text.count("\n", 0, match.start()) + 1
            if name.endswith("_"):  # a prefix: ALEXA_DOORBELL_LOCAL__...
                ok = any(k.startswith(name) for k in known)
            else:
                ok = name in known or name in MISTAKES
            if not ok:
                wrong.append(f"{doc.path.name}:{line}: {name}")
    assert wrong == []


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_the_misspelt_variables_the_docs_show_are_refused(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for other in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(other)
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", os.devnull)
    monkeypatch.setenv(name, "x")
    with pytest.raises(ConfigError, match=name):
        load_settings()


# -- settings tables -----------------------------------------------------------------------
def _is_settings_table(table: Table) -> bool:
    first = plain(table.header[0]).lower()
    return first.startswith("setting") or first in ("key", "toml key")


def _section_model(table: Table) -> str | None:
    context = table.header[0] + " " + table.heading
    for path in models():
        if path and (f"[{path}]" in context or f"[[{path}]]" in context):
            return path
    return None


def resolve_keys(cell: str, section: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    """([(model path, key)], errors) for the keys a settings table's first cell names."""
    table = models()
    found, errors = [], []
    current = section
    for name in code_spans(cell):
        if not re.fullmatch(r"[\w.\[\]*()]+", name):
            continue  # an example value, not a key
        expanded = re.fullmatch(r"(\w+)\((_\w+)\)", name)
        names = [expanded[1], expanded[1] + expanded[2]] if expanded else [name]
        for key in names:
            parts = key.replace("[]", "").split(".")
            if len(parts) > 1:
                current, key = parts[0], parts[-1]
                if current not in table:
                    errors.append(f"{name}: {current} is not a table of the settings")
                    continue
                if key == "*":
                    continue
            candidates = [current] if current is not None else list(table)
            owners = [
                p
                for p in candidates
                if key in table[p].model_fields or key in DEPRECATED_KEYS.get(table[p].__name__, ())
            ]
            if not owners:
                errors.append(f"{name}: not a setting" + (f" of [{current}]" if current else ""))
            found += [(p, key) for p in owners]
    return found, errors


def _default_matches(cell: str, value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if cell == "none":
        return value in (None, [], "")
    spans = code_spans(cell)
    if len(spans) != 1 or cell != f"`{spans[0]}`":
        return True  # prose: said in words
    text = spans[0]
    if re.search(r"[<>…]", text):
        return True  # a pattern (alexa-doorbell-<6 random hex digits>), not a value
    if isinstance(value, Path):
        return Path(text).expanduser() == value
    if isinstance(value, bool):
        return text == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(text) == value
        except ValueError:
            return False
    if isinstance(value, list):
        return tomllib.loads(f"v = {text}")["v"] == value
    return text in (str(value), f'"{value}"')


def settings_table_errors() -> list[str]:
    errors = []
    for doc in DOCS:
        for table in [t for t in doc.tables() if _is_settings_table(t)]:
            section = _section_model(table)
            default = table.column("default")
            for row in table.rows:
                where = f"{doc.path.name}:{table.line}: {row[0]}"
                keys, wrong = resolve_keys(row[0], section)
                errors += [f"{where}: {w}" for w in wrong]
                if default is None or len(code_spans(row[0])) != 1 or not keys:
                    continue
                values = [
                    models()[p].model_fields[k].get_default(call_default_factory=True)
                    for p, k in keys
                    if k in models()[p].model_fields
                ]
                if values and not any(_default_matches(row[default], v) for v in values):
                    errors.append(f"{where}: default {row[default]} is not {values[0]!r}")
    return errors


def test_every_key_in_a_settings_table_is_a_setting_with_its_default() -> None:
    assert settings_table_errors() == []


def test_the_table_check_finds_a_wrong_key_and_a_wrong_default() -> None:
    assert resolve_keys("`cameras[].talk`, `aec`", None)[1] == []
    assert resolve_keys("`lwa_client_secret(_arn)`", None)[1] == []
    assert resolve_keys("`cameras[].tlak`", None)[1] == [
        "cameras[].tlak: not a setting of [cameras]"
    ]
    assert resolve_keys("`port`", "dashboard")[1] == ["port: not a setting of [dashboard]"]
    assert not _default_matches("`8751`", 8750) and _default_matches("`8750`", 8750)
    assert not _default_matches("none", 10) and _default_matches("`[]`", [])


# -- docs/configuration.md lists everything -------------------------------------------------
def _section_rows(heading_contains: str) -> tuple[str, dict[str, list[str]]]:
    for _, _, text in CONFIGURATION.headings:
        if heading_contains in text:
            first, last = CONFIGURATION.section(text)
            table = next(t for t in CONFIGURATION.tables() if first <= t.line <= last)
            return text, {code_spans(r[0])[0]: r for r in table.rows if code_spans(r[0])}
    raise AssertionError(f"docs/configuration.md has no section for {heading_contains}")


def _expected_variable(path: str, key: str) -> str:
    if path == "cameras":
        return f"{ENV_PREFIX}CAMERAS"
    return f"{ENV_PREFIX}{path.upper()}__{key.upper()}" if path else f"{ENV_PREFIX}{key.upper()}"


def _row(path: str, key: str) -> str:
    """The row the page needs, for the failure message (the what column left to write)."""
    info = models()[path].model_fields[key]
    value = info.get_default(call_default_factory=True)
    value = value.get_secret_value() if isinstance(value, SecretStr) else value
    shown = (
        "none"
        if value in (None, "")
        else f"`{str(value).lower() if isinstance(value, bool) else value}`"
    )
    env = _expected_variable(path, key)
    return f"| `{key}` | {'in ' if path == 'cameras' else ''}`{env}` | {shown} | … |"


@pytest.mark.parametrize("path", list(models()), ids=lambda p: p or "top level")
def test_the_configuration_page_lists_every_setting(path: str) -> None:
    heading = "Settings" if not path else (f"[[{path}]]" if path == "cameras" else f"[{path}]")
    _, rows = _section_rows(heading)
    model = models()[path]
    fields = set(model.model_fields)
    missing = [_row(path, k) for k in model.model_fields if k not in rows]
    extra = set(rows) - fields - DEPRECATED_KEYS.get(model.__name__, set())
    assert not missing, "docs/configuration.md needs these rows:\n" + "\n".join(missing)
    assert not extra, f"docs/configuration.md lists what is no setting: {extra}"
    wrong_env = [
        f"{k}: {rows[k][1]}"
        for k in fields
        if _expected_variable(path, k) not in code_spans(rows[k][1])
    ]
    assert wrong_env == []


def test_the_configuration_page_lists_every_lambda_variable_and_every_other() -> None:
    _, rows = _section_rows("The Lambda functions' variables")
    assert set(rows) == {ENV_PREFIX + v for v in LAMBDA_VARIABLES}
    listed = {
        code_spans(r[0])[0] for t in CONFIGURATION.tables() for r in t.rows if code_spans(r[0])
    }
    assert {ENV_PREFIX + v for v in OTHER_VARIABLES - LAMBDA_VARIABLES} - listed == set()


# -- paths ---------------------------------------------------------------------------------
# Paths the docs name that a tool makes, not the repository: `sam deploy --guided` writes it.
MADE_BY_TOOLS = {"deploy/samconfig.toml"}
_PATH = re.compile(r"(?<![\w./-])((?:src|tests|bench|deploy|scripts|docs|\.ci)/[\w./-]*)(::\w+)?")


def path_errors(doc: Doc, root: Path = ROOT) -> list[str]:
    """Repository paths the prose names in code (and the comments before blocks say):
    each exists, and a ``file.py::test_name`` names a test that is in it."""
    texts = [(n, text) for n, text in doc.inline_code()]
    texts += [(b.line - 1, b.marker) for b in doc.blocks if b.marker]
    errors = []
    for line, text in texts:
        for match in _PATH.finditer(text):
            path, name = root / match[1].rstrip("."), (match[2] or "")[2:]
            where = f"{doc.path.name}:{line}: {match[0]}"
            if match[1] in MADE_BY_TOOLS:
                continue
            if not path.exists():
                errors.append(f"{where}: no such file")
            elif name and not re.search(rf"def {name}\b", path.read_text()):
                errors.append(f"{where}: no {name} in it")
    return errors


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.path.name)
def test_every_path_the_docs_name_exists(doc: Doc) -> None:
    assert path_errors(doc) == []


def test_the_path_check_finds_a_moved_file(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_b():\n    pass\n")
    (tmp_path / "a.md").write_text(
        "`tests/test_a.py::test_b`, `tests/test_a.py::test_c` and `tests/gone.py`\n"
        "<!-- not run: tests/moved.py does it -->\n```sh\ntrue\n```\n"
    )
    errors = [e.split(": ", 1)[1] for e in path_errors(Doc(tmp_path / "a.md"), tmp_path)]
    assert errors == [
        "tests/test_a.py::test_c: no test_c in it",
        "tests/gone.py: no such file",
        "tests/moved.py: no such file",
    ]


# -- links ---------------------------------------------------------------------------------
def link_errors(doc: Doc, root: Path = ROOT) -> list[str]:
    errors = []
    by_path = {d.path: d for d in DOCS}
    for line, target in doc.links():
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (doc.path.parent / file).resolve() if file else doc.path
        where = f"{doc.path.name}:{line}: {target}"
        if root not in path.parents and path != root:
            errors.append(f"{where}: outside the repository")
        elif not path.exists():
            errors.append(f"{where}: no such file")
        elif anchor and path.suffix == ".md":
            target_doc = by_path.get(path) or Doc(path)
            if anchor not in target_doc.anchors:
                errors.append(f"{where}: no heading #{anchor} in {path.name}")
    return errors


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.path.name)
def test_every_relative_link_reaches_its_file_and_heading(doc: Doc) -> None:
    assert link_errors(doc) == []


def test_the_link_check_finds_a_missing_file_and_heading(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("## Admin endpoints (`/_local/...`, HTTP port)\n")
    (tmp_path / "a.md").write_text(
        "# A `b` (c)\n[x](#a-b-c) [y](#nope) [z](gone.md)"
        " [w](b.md#admin-endpoints-_local-http-port) [v](b.md#admin) [u](../x.md) `[t](#in-code)`\n"
    )
    errors = [e.split(": ", 2)[2] for e in link_errors(Doc(tmp_path / "a.md"), tmp_path)]
    assert errors == [
        "no heading #nope in a.md", "no such file", "no heading #admin in b.md",
        "outside the repository",
    ]  # fmt: skip


# -- the shell examples --------------------------------------------------------------------
def shell_blocks() -> list[Any]:
    out = []
    for doc in DOCS:
        for block in doc.blocks:
            if block.lang not in SHELLS or (
                block.lang == "console" and not console_commands(block.text)
            ):
                continue  # not shell, or output only
            marks = []
            if block.marker and block.marker.startswith("not run:"):
                marks.append(pytest.mark.skip(reason=f"{block.where}: {block.marker}"))
            out.append(pytest.param(block, id=f"{block.doc.name}:{block.line}", marks=marks))
    return out


def test_every_marker_says_why_or_names_a_fixture() -> None:
    wrong = []
    for doc in DOCS:
        for block in doc.blocks:
            if block.lang in SHELLS and block.marker:
                kind, _, rest = block.marker.partition(":")
                ok = (kind == "not run" and rest.strip()) or (
                    kind == "run with" and rest.strip() in FIXTURES
                )
                if not ok:
                    wrong.append(f"{block.where}: <!-- {block.marker} -->")
    assert wrong == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def console_commands(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$`` command of a console block (continuations joined) and the lines shown under it."""
    commands: list[tuple[str, list[str]]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            command = lines[i][2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command += "\n" + lines[i]
            commands.append((command, []))
        elif commands and lines[i].strip():
            commands[-1][1].append(lines[i])
        i += 1
    return commands


def expected_error(shown: list[str]) -> re.Pattern[str] | None:
    """The one-line error a command is shown to print, as a pattern (… is anything,
    /home/me/ any directory); None when it is shown to succeed."""
    if len(shown) != 1 or not re.match(r"alexa-doorbell( [\w-]+)*: ", shown[0]):
        return None
    pattern = re.escape(shown[0]).replace("…", ".*").replace("/home/me/", "/(?:\\S*/)?")
    return re.compile(pattern)


def _script(block: Block, out: Path) -> tuple[str, list[tuple[int, str, re.Pattern[str] | None]]]:
    head = (
        "set -m\n"  # background jobs in their own process groups
        'uv() { if [ "$1" = run ]; then shift; "$@"; else echo "uv $1: not run here" >&2;'
        " return 97; fi; }\n"
    )
    if block.lang != "console":
        return head + "set -e -o pipefail\n" + block.text + "\n", []
    steps, body = [], []
    for n, (command, shown) in enumerate(console_commands(block.text)):
        command = command.rstrip()
        if command.endswith("&") and not command.endswith("&&"):
            body.append(f'{{ {command[:-1]}\n}} >"{out}/{n}.out" 2>&1 </dev/null &')
            continue
        body.append(f'{{ {command}\n}} >"{out}/{n}.out" 2>"{out}/{n}.err" </dev/null')
        body.append(f'echo $? >"{out}/{n}.rc"')
        steps.append((n, command, expected_error(shown)))
    return head + "\n".join(body) + "\n", steps


def _end_session(sid: int) -> None:
    """End every process of the session the example ran in (its background jobs too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                        os.kill(int(proc.name), sig)
                        left.append(proc)
                except (OSError, ValueError, IndexError):
                    pass
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            left = [p for p in left if p.exists()]
            time.sleep(0.1)
        if not left:
            return


def programs(block: Block) -> set[str]:
    """The programs an example runs (env assignments, sudo and ``uv run`` looked through)."""
    found = set()
    for line in _logical_lines(block):
        if block.lang == "console" and not line.startswith("$ "):
            continue  # what the command printed
        for segment in _segments(line.removeprefix("$ ")):
            words = _words(segment)
            if words:
                found.add(words[0])
    return found


def _which(program: str) -> bool:
    found = subprocess.run(["bash", "-c", f"command -v {program}"], capture_output=True)
    return found.returncode == 0


@pytest.mark.parametrize("block", shell_blocks())
def test_shell_example_runs(block: Block, tmp_path: Path, make_cloud: Callable[..., Any]) -> None:
    """Each example runs in a scratch directory (the repository's files linked in), with no
    ALEXA_DOORBELL_* of ours, a data dir of its own and the local cloud on free ports.
    ``uv run X`` runs X from this environment."""
    assert not re.search(r"\bpytest\b|\bbench/", block.text), (
        f"{block.where}: the suite and the benchmarks are never run from here: mark it"
        " <!-- not run: ... -->"
    )
    fixture = block.marker.partition(":")[2].strip() if block.marker else ""
    allowed = SAFE_PROGRAMS | (CLOUD_CLIENTS if fixture in FIXTURES else set())
    unsafe = programs(block) - allowed
    assert not unsafe, (
        f"{block.where} runs {', '.join(sorted(unsafe))}: this test does not, so the block"
        " needs <!-- not run: why --> before it"
    )
    for program in sorted(programs(block) & CLOUD_CLIENTS):
        if not _which(program):
            pytest.skip(f"{block.where} needs {program}, which is not installed here")
    work, out, data = tmp_path / "work", tmp_path / "out", tmp_path / "xdg"
    work.mkdir(), out.mkdir()
    for name in ("docs", "deploy", "bench", "scripts", "src", "tests", "pyproject.toml", "uv.lock"):
        (work / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "XDG_DATA_HOME": str(data),
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "ALEXA_DOORBELL_LOCAL__TURN_PORT": "0",
        "ALEXA_DOORBELL_LOCAL__TURN_TLS_PORT": "0",
    }
    text = block.text
    if fixture in FIXTURES:
        cloud = make_cloud(data_dir=data / "alexa-doorbell")
        port, tls_port = cloud.settings.local.port, cloud.settings.local.tls_port
        text = text.replace("127.0.0.1:8750", f"127.0.0.1:{port}").replace(":8751", f":{tls_port}")
    else:
        port, tls_port = _free_port(), _free_port()
    env |= {
        "ALEXA_DOORBELL_LOCAL__PORT": str(port),
        "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(tls_port),
    }
    if fixture == "a linked local cloud":
        linked = subprocess.run(
            ["alexa-doorbell", "link"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert linked.returncode == 0, linked.stderr
    script, steps = _script(Block(block.doc, block.line, block.lang, text, block.marker), out)
    proc = subprocess.Popen(
        ["bash", "-c", script], cwd=work, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        _end_session(proc.pid)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{block.where}: still running after 240 s\n{stdout}\n{stderr}")
    finally:
        _end_session(proc.pid)
    if block.lang != "console":
        assert proc.returncode == 0, f"{block.where}: exit {proc.returncode}\n{stdout}\n{stderr}"
        return
    for n, command, error in steps:
        rc = int((out / f"{n}.rc").read_text())
        said = (out / f"{n}.out").read_text() + (out / f"{n}.err").read_text()
        if error is None:
            assert rc == 0, f"{block.where}: $ {command}\nexit {rc}\n{said}"
        else:
            lines = (out / f"{n}.err").read_text().splitlines()
            assert rc == 2 and len(lines) == 1, f"{block.where}: $ {command}\nexit {rc}\n{said}"
            assert error.fullmatch(lines[0]), f"{block.where}: $ {command}\n{lines[0]}"


def test_the_runner_reads_a_console_block_and_knows_what_it_would_not_run() -> None:
    text = (
        "$ alexa-doorbell config \\\n    --json\n{}\n"
        "$ ALEXA_DOORBELL_MAX_VIEWERS=x uv run alexa-doorbell doctor\n"
        "alexa-doorbell: /home/me/alexa-doorbell.toml: fps: bad (allowed: a, …)\n"
        "$ curl -s https://example.com | jq .\n"
    )
    commands = console_commands(text)
    assert commands[0][0] == "alexa-doorbell config \\\n    --json"
    assert programs(Block(Path("x.md"), 1, "console", text, None)) == {
        "alexa-doorbell", "curl", "jq",
    }  # fmt: skip
    assert expected_error(commands[0][1]) is None
    error = expected_error(commands[1][1])
    assert error is not None
    assert error.fullmatch("alexa-doorbell: /tmp/w/alexa-doorbell.toml: fps: bad (allowed: a, b)")
    assert not error.fullmatch("alexa-doorbell: /tmp/w/alexa-doorbell.toml: fps: ok (allowed: a)")
