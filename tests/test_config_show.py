"""``alexa-doorbell config``: every setting in effect, where it came from, never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alexa_doorbell.cli import app
from alexa_doorbell.config_show import HIDDEN, mask_url_password

SECRETS = ("S3cr3t-messaging-value", "hunter2-at-the-door", "dashboard-pw-123", "adm1n-tok3n")
TOML = """\
region = "eu-west-1"
event_region = "EU"

[local]
host = "127.0.0.2"
lwa_client_secret = "S3cr3t-messaging-value"

[[cameras]]
endpoint_id = "front-door"
source = "rtsp://admin:hunter2-at-the-door@192.168.1.20:554/h264Preview_01_sub"
fps = 15
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a TOML file, and an environment with a few settings."""
    for name in list(os.environ):
        if name.upper().startswith("ALEXA_DOORBELL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "alexa-doorbell.toml").write_text(TOML)
    monkeypatch.setenv("ALEXA_DOORBELL_LOCAL", '{"port": 18750}')  # merged with [local]
    monkeypatch.setenv("ALEXA_DOORBELL_LWA_CLIENT_SECRET", SECRETS[0])
    monkeypatch.setenv("ALEXA_DOORBELL_DASHBOARD_PASSWORD", SECRETS[2])
    monkeypatch.setenv("ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN", SECRETS[3])
    monkeypatch.setenv("ALEXA_DOORBELL_MAX_VIEWERS", "4")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["config", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_names_each_value_and_its_source(home: Path) -> None:
    code, out, err = run("--json")
    assert code == 0, err
    doc = json.loads(out)
    s = doc["settings"]
    toml = str(home / "alexa-doorbell.toml")
    assert doc["config_file"] == toml and doc["config_file_read"] is True
    assert doc["config_file_named_by"] is None
    assert s["region"] == {"value": "eu-west-1", "source": "file", "origin": toml}
    assert s["max_viewers"] == {
        "value": 4,
        "source": "environment",
        "origin": "ALEXA_DOORBELL_MAX_VIEWERS",
    }
    assert s["cloud"] == {"value": "local", "source": "default", "origin": None}
    # A JSON table in a variable is merged into the file's table, key by key
    assert s["local.port"]["value"] == 18750 and s["local.port"]["source"] == "environment"
    assert s["local.host"] == {"value": "127.0.0.2", "source": "file", "origin": toml}
    assert s["local.tls_port"]["source"] == "default"
    assert s["cameras[0].fps"] == {"value": 15, "source": "file", "origin": toml}
    assert s["cameras[0].width"] == {"value": 1280, "source": "default", "origin": None}
    assert doc["store"].endswith("store.sqlite3")
    assert doc["variables"] == {
        "ALEXA_DOORBELL_DASHBOARD_PASSWORD": "set",
        "ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN": "set",
    }


def test_a_variable_list_replaces_the_files_list(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALEXA_DOORBELL_CAMERAS", '[{"endpoint_id": "garage", "fps": 5}]')
    s = json.loads(run("--json")[1])["settings"]
    assert s["cameras[0].endpoint_id"] == {
        "value": "garage",
        "source": "environment",
        "origin": "ALEXA_DOORBELL_CAMERAS",
    }
    # not the file's 15 and not "file": the variable's list replaced the file's whole
    assert s["cameras[0].source"] == {"value": "testsrc", "source": "default", "origin": None}
    assert "cameras[1].endpoint_id" not in s


def test_secrets_are_never_shown(home: Path) -> None:
    for args in ((), ("--json",)):
        code, out, err = run(*args)
        assert code == 0, err
        for secret in SECRETS:
            assert secret not in out and secret not in err, (args, secret)
    s = json.loads(run("--json")[1])["settings"]
    assert s["lwa_client_secret"]["value"] == HIDDEN
    assert s["lwa_client_secret"]["origin"] == "ALEXA_DOORBELL_LWA_CLIENT_SECRET"
    assert s["local.lwa_client_secret"]["value"] == HIDDEN
    assert s["local.aws_secret_access_key"]["value"] == HIDDEN  # even the emulator's
    assert s["lwa_client_secret_arn"]["value"] is None  # unset: nothing to hide
    assert s["cameras[0].source"]["value"] == (
        "rtsp://admin:***@192.168.1.20:554/h264Preview_01_sub"
    )
    assert s["local.access_token_lifetime"]["value"] == 3600  # a number, not a token


def test_the_text_form_has_a_line_per_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUDD", "aws")
    code, out, err = run()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("alexa-doorbell config: local cloud, file ")
    region = next(line for line in lines if line.split()[0] == "region")
    assert region.split() == ["region", '"eu-west-1"', "(file", f"{home / 'alexa-doorbell.toml'})"]
    viewers = next(line for line in lines if line.split()[0] == "max_viewers")
    assert viewers.endswith("4  (environment ALEXA_DOORBELL_MAX_VIEWERS)")
    assert "variable ALEXA_DOORBELL_DASHBOARD_PASSWORD: set" in lines
    assert any("ALEXA_DOORBELL_CLOUDD" in line and "did you mean" in line for line in lines)


def test_aws_credentials_are_named_not_shown(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "none"))
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUD", "aws")
    assert json.loads(run("--json")[1])["aws_credentials"] is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLECAMERA000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-never-shown")
    code, out, _ = run()
    assert code == 0 and "aws credentials: env" in out and "aws-secret-never-shown" not in out


def test_a_bad_configuration_is_one_line_and_exit_2(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "alexa-doorbell.toml").write_text('[[cameras]]\nfps = "fast"\n')
    code, out, err = run("--json")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f'alexa-doorbell: {home / "alexa-doorbell.toml"}: cameras[0].fps = "fast": '
        "must be a valid integer"
    ]
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", str(home / "absent.toml"))
    code, out, err = run()
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "ALEXA_DOORBELL_CONFIG=" in err and "no such file" in err


def test_the_installed_command(home: Path, tmp_path: Path) -> None:
    """A real process, reading ALEXA_DOORBELL_CONFIG like every command."""
    named = tmp_path / "elsewhere.toml"
    named.write_text(TOML.replace("eu-west-1", "us-west-2"))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ALEXA_DOORBELL_")}
    env |= {
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "ALEXA_DOORBELL_CONFIG": str(named),
        "ALEXA_DOORBELL_LWA_CLIENT_SECRET": SECRETS[0],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "alexa_doorbell.cli", "config", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["config_file"] == str(named) and doc["config_file_named_by"] == (
        "ALEXA_DOORBELL_CONFIG"
    )
    assert doc["settings"]["region"]["value"] == "us-west-2"
    assert doc["variables"] == {"ALEXA_DOORBELL_CONFIG": str(named)}
    assert not any(s in proc.stdout + proc.stderr for s in SECRETS)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("rtsp://admin:pw@10.0.0.2:554/x", "rtsp://admin:***@10.0.0.2:554/x"),
        ("rtsp://:pw@cam/x", "rtsp://:***@cam/x"),
        ("mqtts://user:p%40ss@broker:8883", "mqtts://user:***@broker:8883"),
        ("rtsp://admin@cam/x", "rtsp://admin@cam/x"),  # no password: nothing to mask
        ("rtsp://cam/x", "rtsp://cam/x"),
        ("a@b", "a@b"),
        ("webcam:/dev/video0", "webcam:/dev/video0"),
    ],
)
def test_mask_url_password(text: str, shown: str) -> None:
    assert mask_url_password(text) == shown
