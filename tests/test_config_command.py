"""``alexa-doorbell config``: the effective settings, where each came from, secrets hidden;
and settings that the Lambda and the command line read alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import load_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and an environment with no ALEXA_DOORBELL_* settings."""
    for name in list(os.environ):
        if name.upper().startswith("ALEXA_DOORBELL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_token_cache_ttl_is_a_setting_outside_lambda_too(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skill built from the settings (demo, `skill invoke`, doctor) honours it."""
    (home / "alexa-doorbell.toml").write_text("token_cache_ttl = 7\n")
    skill = build_skill(load_settings())
    assert skill.users.ttl == 7
    skill.store.close()
    monkeypatch.setenv("ALEXA_DOORBELL_TOKEN_CACHE_TTL", "12.5")
    skill = build_skill(load_settings())
    assert skill.users.ttl == 12.5
    skill.store.close()
