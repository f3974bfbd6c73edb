"""The Lambda entry point: light imports, built from ALEXA_DOORBELL_* env, the CLI invoke."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.commands.skill import invoke_cli
from alexa_doorbell.lambda_config import (
    LOCAL_LWA_CLIENT_ID,
    LOCAL_LWA_CLIENT_SECRET,
    ConfigError,
    SkillConfig,
    parse_cameras,
)
from alexa_doorbell.skill import handler
from tests import directives as D
from tests.skill.test_app import link

HEAVY = (
    "aiortc",
    "av",
    "starlette",
    "uvicorn",
    "typer",
    "rich",
    "pydantic",
    "pydantic_settings",
    "jsonschema",
    "websockets",
    "numpy",
)


def test_handler_import_loads_nothing_heavy():
    code = (
        "import sys, json; import alexa_doorbell.skill.handler; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert "alexa_doorbell" in loaded


def test_local_lwa_defaults_match_settings():
    from alexa_doorbell import config

    assert LOCAL_LWA_CLIENT_ID == config.LOCAL_LWA_CLIENT_ID
    assert LOCAL_LWA_CLIENT_SECRET == config.LOCAL_LWA_CLIENT_SECRET


def test_skill_config_and_settings_agree_on_the_same_env(monkeypatch, tmp_path):
    """The Lambda's stdlib reader and the pydantic settings resolve one environment alike."""
    from alexa_doorbell.config import Settings

    for name in list(os.environ):
        if name.startswith("ALEXA_DOORBELL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUD", "local")
    monkeypatch.setenv("ALEXA_DOORBELL_LOCAL__PORT", "8799")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    cfg, settings = SkillConfig.from_env(), Settings()
    assert cfg.lwa_url == settings.lwa_url == "http://127.0.0.1:8799"
    assert cfg.lwa_credentials() == settings.lwa_credentials()
    assert cfg.store_url == settings.store_location
    assert str(tmp_path / "xdg" / "alexa-doorbell" / "store.sqlite3") in cfg.store_url


def test_config_from_env():
    cfg = SkillConfig.from_env(
        {
            "ALEXA_DOORBELL_STORE_URL": "dynamodb://t",
            "ALEXA_DOORBELL_LWA_CLIENT_ID": "id",
            "ALEXA_DOORBELL_LWA_CLIENT_SECRET": "s3cr3t-value",
            "ALEXA_DOORBELL_SKILL_DEADLINE": "3.5",
            "ALEXA_DOORBELL_SINGLE_USER": "false",
            "ALEXA_DOORBELL_CAMERAS": json.dumps(
                [{"endpoint_id": "a", "doorbell": True, "channel_name": "ch"}]
            ),
            "AWS_REGION": "eu-west-1",
        }
    )
    assert cfg.store_url == "dynamodb://t" and cfg.lwa_url == "https://api.amazon.com"
    assert cfg.deadline == 3.5 and cfg.single_user is False and cfg.region == "eu-west-1"
    assert cfg.lwa_credentials() == ("id", "s3cr3t-value")
    assert "s3cr3t" not in repr(cfg)
    [cam] = cfg.cameras
    assert cam.endpoint_id == "a" and cam.doorbell and cam.channel_name == "ch"
    with pytest.raises(ConfigError, match="Alexa Skill Messaging"):
        SkillConfig.from_env({}).lwa_credentials()
    with pytest.raises(ConfigError):
        SkillConfig.from_env({"ALEXA_DOORBELL_SKILL_DEADLINE": "soon"})
    with pytest.raises(ValueError):
        parse_cameras('[{"friendly_name": "no id"}]')


@pytest.fixture
def lambda_env(local_cloud, tmp_path, monkeypatch):
    env = {
        "ALEXA_DOORBELL_CLOUD": "local",
        "ALEXA_DOORBELL_LOCAL__PORT": str(local_cloud.local.port),
        "ALEXA_DOORBELL_STORE_URL": f"sqlite:///{tmp_path / 'lambda.sqlite3'}",
        "ALEXA_DOORBELL_CAMERAS": json.dumps(
            [{"endpoint_id": "front-door", "channel_name": "front-door", "doorbell": True}]
        ),
        "ALEXA_DOORBELL_SKILL_DEADLINE": "1",
        **local_cloud.aws_env(),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(handler, "_skill", None)
    return local_cloud


def test_lambda_handler_from_env(lambda_env):
    who = link(lambda_env, "amzn1.account.LAMBDA")
    reply = handler.lambda_handler(D.accept_grant(who["code"], who["access_token"]), None)
    assert schema_errors(reply) == [] and reply["event"]["header"]["name"] == "AcceptGrant.Response"
    first = handler._skill
    reply = handler.lambda_handler(D.discover(who["access_token"]), None)
    assert schema_errors(reply) == []
    assert [e["endpointId"] for e in reply["event"]["payload"]["endpoints"]] == ["front-door"]
    assert handler._skill is first  # built once per warm container
    # No camera health reported yet: unknown counts as unreachable.
    reply = handler.lambda_handler(D.report_state(who["access_token"]), None)
    assert reply["context"]["properties"][0]["value"]["value"] == "UNREACHABLE"


def test_lambda_handler_misconfigured_still_answers(monkeypatch, tmp_path):
    monkeypatch.setattr(handler, "_skill", None)
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUD", "aws")
    monkeypatch.delenv("ALEXA_DOORBELL_LWA_CLIENT_ID", raising=False)
    monkeypatch.setenv("ALEXA_DOORBELL_STORE_URL", f"sqlite:///{tmp_path / 's.sqlite3'}")
    reply = handler.lambda_handler(D.report_state("t"), None)
    assert schema_errors(reply) == []
    assert reply["event"]["payload"]["type"] == "INTERNAL_ERROR"
    assert "LWA_CLIENT_ID" in reply["event"]["payload"]["message"]
    assert handler._skill is None


def test_invoke_cli_prints_the_reply(local_cloud, tmp_path, capsys):
    who = link(local_cloud, "amzn1.account.CLI")
    path = tmp_path / "grant.json"
    path.write_text(json.dumps(D.accept_grant(who["code"], who["access_token"])))
    assert invoke_cli(local_cloud, str(path)) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["event"]["header"]["name"] == "AcceptGrant.Response"
    path.write_text(json.dumps(D.report_state("Atza|forged")))
    assert invoke_cli(local_cloud, str(path)) == 0  # an ErrorResponse is a valid reply
    reply = json.loads(capsys.readouterr().out)
    assert reply["event"]["payload"]["type"] == "INVALID_AUTHORIZATION_CREDENTIAL"
    path.write_text("{not json")
    assert invoke_cli(local_cloud, str(path)) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_command_reads_stdin(local_cloud):
    env = {
        **os.environ,
        "ALEXA_DOORBELL_DATA_DIR": str(local_cloud.data_dir),
        "ALEXA_DOORBELL_LOCAL__PORT": str(local_cloud.local.port),
        "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(local_cloud.local.tls_port),
    }
    out = subprocess.run(
        [sys.executable, "-m", "alexa_doorbell.cli", "skill", "invoke", "-"],
        input=json.dumps(D.discover("Atza|forged")),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert schema_errors(reply) == []
    assert reply["event"]["payload"]["type"] == "INVALID_AUTHORIZATION_CREDENTIAL"
