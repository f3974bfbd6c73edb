"""``alexa-doorbell link``: a user linked to a running local cloud in one command, as the
Alexa app links one; then ``press``, ``tokens status`` and the dashboard have a user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alexa_doorbell.cli import app
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.store import open_store


@pytest.fixture
def env(cloud: CloudThread, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The variables that point every command at ``cloud`` (no config file)."""
    for name in list(os.environ):
        if name.upper().startswith("ALEXA_DOORBELL_"):
            monkeypatch.delenv(name)
    s = cloud.settings
    values = {
        "ALEXA_DOORBELL_CONFIG": os.devnull,
        "ALEXA_DOORBELL_DATA_DIR": str(s.data_dir),
        "ALEXA_DOORBELL_LOCAL__PORT": str(s.local.port),
        "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(s.local.tls_port),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _stored_tokens(cloud: CloudThread) -> list[str]:
    store = open_store(cloud.settings.store_location)
    try:
        return [v for t in store.list_tokens() for v in (t.access_token, t.refresh_token)]
    finally:
        store.close()


def test_link_then_press_and_tokens_status(cloud: CloudThread, env: dict[str, str]) -> None:
    code, out, err = run("link")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Linked amzn1.account.LOCALUSER to the skill on the local cloud ")
    assert lines[1] == "Alexa discovers: Front Door (front-door)"
    assert "Try next:" in lines
    assert any(line.split()[:3] == ["alexa-doorbell", "press", "front-door"] for line in lines)
    assert any("alexa-doorbell tokens status" in line for line in lines)
    assert any("alexa-doorbell dashboard" in line for line in lines)
    tokens = _stored_tokens(cloud)
    assert len(tokens) == 2  # AcceptGrant stored an access and a refresh token
    for secret in tokens:
        assert secret not in out and secret not in err
    assert "Atza|" not in out + err and "Atzr|" not in out + err
    # What it says to try works.
    code, out, err = run("press", "front-door")
    assert code == 0, out + err
    assert "accepted by Alexa (202)" in out
    [press] = cloud.cloud.gateway.wait_for("DoorbellPress", 1, 5)
    assert press["event"]["endpoint"]["endpointId"] == "front-door"
    code, out, _ = run("tokens", "status")
    assert code == 0 and "amzn1.account.LOCALUSER: linked" in out


def test_linking_again_and_another_user(cloud: CloudThread, env: dict[str, str]) -> None:
    assert run("link")[0] == 0
    assert run("link")[0] == 0  # the same user again: fresh tokens, still one user
    code, out, _ = run("link", "amzn1.account.SECOND", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["user_id"] == "amzn1.account.SECOND"
    assert doc["doorbell"] == "front-door"
    assert doc["endpoints"] == [
        {
            "endpoint_id": "front-door",
            "friendly_name": "Front Door",
            "categories": ["CAMERA", "DOORBELL"],
        }
    ]
    assert doc["store"] == cloud.settings.store_location
    assert len(_stored_tokens(cloud)) == 4  # two users


def test_what_cannot_link_is_one_line(
    cloud: CloudThread, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run("link", "not a user id")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "1-128 letters" in err
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUD", "aws")
    code, out, err = run("link")
    assert code == 2 and out == "" and "link your Amazon account in the Alexa app" in err
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUD", "local")
    monkeypatch.setenv("ALEXA_DOORBELL_LOCAL__PORT", str(_free_port()))
    code, out, err = run("link")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "no local cloud at" in err and "alexa-doorbell cloud" in err
    assert _stored_tokens(cloud) == []


def test_a_refused_code_exchange_exits_1_and_stores_nothing(
    cloud: CloudThread, env: dict[str, str]
) -> None:
    cloud.cloud.lwa.add_fault(400, "invalid_grant", count=3)
    code, out, err = run("link")
    assert code == 1 and out == ""
    assert err.startswith("alexa-doorbell link: AcceptGrant failed: ACCEPT_GRANT_FAILED")
    assert _stored_tokens(cloud) == []


def test_the_admin_token_when_the_cloud_wants_one(
    make_cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN", "local-admin-token-for-the-test")
    cloud = make_cloud(tmp_path / "guarded")
    for name in list(os.environ):
        if (
            name.upper().startswith("ALEXA_DOORBELL_")
            and name != "ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN"
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", os.devnull)
    monkeypatch.setenv("ALEXA_DOORBELL_DATA_DIR", str(cloud.settings.data_dir))
    monkeypatch.setenv("ALEXA_DOORBELL_LOCAL__PORT", str(cloud.settings.local.port))
    code, _, err = run("link")
    assert code == 0, err  # our own call sends the variable's token
    monkeypatch.delenv("ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN")
    code, out, err = run("link")
    assert code == 2 and out == ""
    assert "wants its admin token" in err and "ALEXA_DOORBELL_LOCAL_ADMIN_TOKEN" in err
    assert "local-admin-token-for-the-test" not in err


def test_the_installed_command(cloud: CloudThread, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "alexa_doorbell.cli", "link", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["user_id"] == "amzn1.account.LOCALUSER"
    for secret in _stored_tokens(cloud):
        assert secret not in proc.stdout + proc.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
