"""The Lambda's stdlib settings: a bad variable is one log line naming it, and an answer."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.lambda_config import ConfigError, SkillConfig
from alexa_doorbell.notifier import lambda_handler as notify
from alexa_doorbell.skill import handler
from tests import directives as D


@pytest.fixture
def lambda_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("ALEXA_DOORBELL_"):
            monkeypatch.delenv(name)
    env = {
        "ALEXA_DOORBELL_CLOUD": "aws",
        "ALEXA_DOORBELL_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "ALEXA_DOORBELL_LWA_CLIENT_ID": "amzn1.application-oa2-client.test",
        "ALEXA_DOORBELL_LWA_CLIENT_SECRET": "test-secret",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("CLOUD", "locall", "must be one of aws, local"),
        ("EVENT_REGION", "US", "must be one of NA, EU, FE"),
        ("SINGLE_USER", "maybe", "must be true or false"),
        ("SKILL_DEADLINE", "soon", "must be a number of seconds (default 5)"),
        ("HEALTH_MAX_AGE", "-1", "must be a number of seconds (default 150)"),
        ("TOKEN_CACHE_TTL", "nan", "must be a number of seconds (default 300)"),
        ("PRESS_DEBOUNCE", "often", "must be a number of seconds (default 5)"),
        ("CAMERAS", "[{", "ALEXA_DOORBELL_CAMERAS is not JSON"),
    ],
)
def test_a_bad_lambda_variable_names_itself_and_what_it_takes(
    lambda_env: dict[str, str], name: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        SkillConfig.from_env({**lambda_env, f"ALEXA_DOORBELL_{name}": value})
    message = str(caught.value)
    assert f"ALEXA_DOORBELL_{name}" in message and allowed in message
    assert "\n" not in message


def test_both_readers_take_the_same_words_for_true_and_false(lambda_env: dict[str, str]) -> None:
    for word, expected in [("off", False), ("No", False), ("t", True), ("1", True)]:
        env = {**lambda_env, "ALEXA_DOORBELL_SINGLE_USER": word}
        assert SkillConfig.from_env(env).single_user is expected


def test_the_skill_lambda_logs_one_line_and_answers_an_error_response(
    lambda_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ALEXA_DOORBELL_SKILL_DEADLINE", "soon")
    monkeypatch.setattr(handler, "_skill", None)
    with caplog.at_level(logging.INFO, logger="alexa_doorbell"):
        replies = [handler.lambda_handler(D.discover("token"), None) for _ in range(2)]
    for reply in replies:
        assert schema_errors(reply) == []
        assert reply["event"]["header"]["name"] == "ErrorResponse"
        assert "ALEXA_DOORBELL_SKILL_DEADLINE" in reply["event"]["payload"]["message"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2  # one line per invocation, and still no skill: it retries
    for record in errors:
        assert record.exc_info is None
        assert record.getMessage() == (
            "skill not ready: ALEXA_DOORBELL_SKILL_DEADLINE = 'soon': "
            "must be a number of seconds (default 5)"
        )
    assert handler._skill is None


def test_the_notifier_lambda_logs_one_line_and_answers_not_ok(
    lambda_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ALEXA_DOORBELL_PRESS_DEBOUNCE", "often")
    monkeypatch.setattr(notify, "_notifier", None)
    with caplog.at_level(logging.INFO, logger="alexa_doorbell"):
        reply = notify.lambda_handler({"action": "press"}, None)
    assert reply["ok"] is False and "ALEXA_DOORBELL_PRESS_DEBOUNCE" in reply["error"]
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is None and "ALEXA_DOORBELL_PRESS_DEBOUNCE = 'often'" in (
        record.getMessage()
    )


def test_a_variable_the_lambda_does_not_read_is_a_warning(
    lambda_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="alexa_doorbell"):
        SkillConfig.from_env({**lambda_env, "ALEXA_DOORBELL_SKILL_DEADLNE": "3"})
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring ALEXA_DOORBELL_SKILL_DEADLNE: the Lambda functions do not read it "
        "(did you mean ALEXA_DOORBELL_SKILL_DEADLINE?)"
    ]
