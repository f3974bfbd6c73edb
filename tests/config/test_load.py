"""A bad configuration is one line naming the file or variable, the key and what is allowed.

Every command prints that line on stderr and exits 2; unknown TOML keys are errors at
every level; an ALEXA_DOORBELL_* variable that nothing reads is a one-line warning.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alexa_doorbell.cli import app
from alexa_doorbell.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("alexa-doorbell")  # the installed console script
COMMANDS = [
    ["demo"],
    ["cloud"],
    ["camera"],
    ["press"],
    ["tokens", "status"],
    ["skill", "invoke", "-"],
    ["dashboard"],
    ["doctor"],
    ["package-lambda", "--output", "lambda.zip"],
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and an environment with no ALEXA_DOORBELL_* settings."""
    for name in list(os.environ):
        if name.upper().startswith("ALEXA_DOORBELL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def one_line(code: int, stdout: str, stderr: str) -> str:
    assert code == 2, (code, stdout, stderr)
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("alexa-doorbell: ")
    return lines[0]


# -- the TOML file --------------------------------------------------------------------------
def test_malformed_toml_names_file_line_column_and_reason(home: Path) -> None:
    (home / "alexa-doorbell.toml").write_text('cloud = "aws"\nregion = \n')
    line = one_line(*run("tokens", "status"))
    assert f"{home / 'alexa-doorbell.toml'}:2:10: not valid TOML: Invalid value" in line


def test_a_value_outside_a_choice_names_the_choices(home: Path) -> None:
    (home / "alexa-doorbell.toml").write_text('cloud = "locall"\n')
    line = one_line(*run("doctor"))
    assert line == (
        f'alexa-doorbell: {home / "alexa-doorbell.toml"}: cloud = "locall": '
        "must be 'local' or 'aws'"
    )


def test_a_value_of_the_wrong_type_names_its_dotted_key(home: Path) -> None:
    (home / "alexa-doorbell.toml").write_text('[[cameras]]\nendpoint_id = "a"\nfps = "fast"\n')
    line = one_line(*run("camera"))
    assert line == (
        f'alexa-doorbell: {home / "alexa-doorbell.toml"}: cameras[0].fps = "fast": '
        "must be a valid integer"
    )


def test_a_misspelt_camera_key_is_an_error_with_the_right_spelling(home: Path) -> None:
    (home / "alexa-doorbell.toml").write_text(
        '[[cameras]]\nendpoint_id = "a"\n\n[[cameras]]\nendpoint_id = "b"\nfull_duplx = false\n'
    )
    line = one_line(*run("press"))
    assert f"{home / 'alexa-doorbell.toml'}: cameras[1].full_duplx: unknown key" in line
    assert re.search(r"\(allowed: endpoint_id, friendly_name, .*, fps, ", line)


@pytest.mark.parametrize(
    ("toml", "key", "hint"),
    [
        ('clodu = "aws"\n', "clodu", "cloud"),
        ('[local]\nhots = "127.0.0.2"\n', "local.hots", "host"),
        (
            '[dashboard]\nallowed_host = ["doorbell.lan"]\n',
            "dashboard.allowed_host",
            "allowed_hosts",
        ),
    ],
    ids=["top level", "[local]", "[dashboard]"],
)
def test_unknown_keys_are_errors_at_every_level(home: Path, toml: str, key: str, hint: str) -> None:
    (home / "alexa-doorbell.toml").write_text(toml)
    line = one_line(*run("tokens", "status"))
    assert f": {key}: unknown key; did you mean {hint}?" in line


def test_the_value_of_an_unknown_key_is_never_shown(home: Path) -> None:
    (home / "alexa-doorbell.toml").write_text('lwa_client_secrt = "s3cr3t-value"\n')
    line = one_line(*run("doctor"))
    assert "lwa_client_secrt: unknown key; did you mean lwa_client_secret?" in line
    assert "s3cr3t" not in line


def test_every_error_is_counted_on_the_one_line(home: Path) -> None:
    (home / "alexa-doorbell.toml").write_text('cloud = "x"\nmax_viewers = "y"\nbogus = 1\n')
    line = one_line(*run("doctor"))
    assert 'cloud = "x"' in line and line.endswith("(and 2 more: max_viewers, bogus)")


# -- the environment ------------------------------------------------------------------------
def test_a_missing_config_file_named_by_the_environment_is_an_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", str(home / "doorbel.toml"))
    line = one_line(*run("tokens", "status"))
    assert line.startswith(f"alexa-doorbell: ALEXA_DOORBELL_CONFIG={home / 'doorbel.toml'}: ")
    assert "no such file" in line


def test_a_bad_environment_value_names_the_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "alexa-doorbell.toml").write_text("max_viewers = 4\n")  # the variable wins
    monkeypatch.setenv("ALEXA_DOORBELL_MAX_VIEWERS", "lots")
    line = one_line(*run("tokens", "status"))
    assert line == (
        'alexa-doorbell: ALEXA_DOORBELL_MAX_VIEWERS: max_viewers = "lots": must be a valid integer'
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ALEXA_DOORBELL_LOCAL__HOTS", "127.0.0.2", "local.hots: unknown key; did you mean host?"),
        ("ALEXA_DOORBELL_LOCAL__PORT", "http", 'local.port = "http": must be a valid integer'),
        ("ALEXA_DOORBELL_CAMERAS", '[{"fps": "x"}]', 'cameras[0].fps = "x": must be'),
        ("ALEXA_DOORBELL_CAMERAS", "front-door", "not valid JSON (Expecting value"),
    ],
    ids=["nested unknown", "nested value", "JSON value", "not JSON"],
)
def test_nested_and_json_variables_name_the_variable_and_the_key(
    home: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    line = one_line(*run("doctor"))
    assert line.startswith(f"alexa-doorbell: {name}: ") and expected in line


def test_a_toml_error_is_blamed_on_the_file_not_on_a_variable_beside_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "alexa-doorbell.toml").write_text('[local]\nport = "http"\n')
    monkeypatch.setenv("ALEXA_DOORBELL_LOCAL__HOST", "127.0.0.1")
    line = one_line(*run("doctor"))
    assert f'{home / "alexa-doorbell.toml"}: local.port = "http"' in line


def test_an_unknown_variable_is_a_warning_and_known_others_are_quiet(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUDD", "aws")
    for other in ("CONFIG", "TOKEN_CACHE_TTL", "EVENT_GATEWAY_URL", "SOAK_SESSIONS"):
        monkeypatch.setenv(f"ALEXA_DOORBELL_{other}", os.devnull if other == "CONFIG" else "1")
    with caplog.at_level(logging.WARNING, logger="alexa_doorbell.config"):
        settings = load_settings()
    assert settings.cloud == "local"
    assert [r.getMessage() for r in caplog.records] == [
        "alexa-doorbell: ignoring ALEXA_DOORBELL_CLOUDD: it is not a setting "
        "(did you mean ALEXA_DOORBELL_CLOUD?)"
    ]


def test_no_variable_the_project_reads_or_documents_is_called_unknown() -> None:
    """A name read beside Settings (a password, a test knob) belongs in OTHER_VARIABLES."""
    from alexa_doorbell.config import OTHER_VARIABLES, Settings
    from alexa_doorbell.config_errors import unknown_variables

    names: set[str] = set()
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *ROOT.glob("*.md")]
    for path in [*files, *(ROOT / "docs").rglob("*.md"), ROOT / "deploy" / "template.yaml"]:
        # the settings' own tests misspell names on purpose
        own = path.parent in (ROOT / "tests" / "config", ROOT / "tests" / "lambda_config")
        if not (path.name.startswith("test_config") or own):
            names |= set(re.findall(r"ALEXA_DOORBELL_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    assert len(names) > 20
    assert (
        unknown_variables(dict.fromkeys(names, "1"), Settings.model_fields, OTHER_VARIABLES) == []
    )


def test_dev_null_means_no_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "alexa-doorbell.toml").write_text('cloud = "aws"\n')
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", os.devnull)
    assert load_settings().cloud == "local"


# -- every command, and the real process ----------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_says_it_in_one_line(home: Path, command: list[str]) -> None:
    (home / "alexa-doorbell.toml").write_text('[[cameras]]\nfps = "fast"\n')
    line = one_line(*run(*command))
    assert line.endswith('cameras[0].fps = "fast": must be a valid integer')
    assert not (home / "lambda.zip").exists()


def test_the_installed_command_exits_2_with_one_line_on_stderr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ALEXA_DOORBELL_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    (tmp_path / "alexa-doorbell.toml").write_text('[[cameras]]\nendpoint_id = "a"\nsoruce = "x"\n')
    procs = [
        subprocess.run(
            [str(CLI), *command],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        for command, extra in [
            (["doctor"], {}),
            (["camera"], {"ALEXA_DOORBELL_CONFIG": str(tmp_path / "absent.toml")}),
        ]
    ]
    for proc in procs:
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "cameras[0].soruce: unknown key; did you mean source?" in procs[0].stderr
    assert "ALEXA_DOORBELL_CONFIG=" in procs[1].stderr and "no such file" in procs[1].stderr


# -- the shipped examples -------------------------------------------------------------------
def _toml_examples() -> list[tuple[str, str]]:
    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]:
        for n, block in enumerate(re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)):
            out.append((f"{doc.relative_to(ROOT)}#{n}", block))
    return out


EXAMPLES = _toml_examples()


def test_the_docs_have_toml_examples() -> None:
    assert len(EXAMPLES) >= 2  # docs/configuration.md and the camera machine's file (deploy-aws.md)


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_every_toml_example_in_the_docs_loads(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    text: str,
) -> None:
    (home / "example.toml").write_text(text)
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", str(home / "example.toml"))
    try:
        load_settings()
    except ConfigError as exc:
        pytest.fail(f"{where}: {exc}")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[[cameras]]\nendpoint_id = "front-door\\n"\n', "cameras[0].endpoint_id"),
        ('[[cameras]]\nendpoint_id = "front door"\n', "cameras[0].endpoint_id"),
        ('[[cameras]]\nchannel_name = "front-door\\n"\n', "cameras[0].channel_name"),
        ('[[cameras]]\nchannel_name = "front/door"\n', "cameras[0].channel_name"),
    ],
)
def test_a_camera_id_alexa_or_kvs_would_refuse_is_an_error(home: Path, toml: str, key: str) -> None:
    """Matched whole: a trailing newline must not become an endpointId or a channel."""
    (home / "alexa-doorbell.toml").write_text(toml)
    line = one_line(*run("camera"))
    assert key in line and "must be 1-256 of the letters" in line
