"""``alexa-doorbell press`` / ``tokens status``, locally and through the notifier Lambda.

The AWS path is real boto3 ``lambda.invoke`` (SigV4-signed HTTP) against a
stand-in of the Lambda Invoke API that runs our real ``handle`` with a notifier
on the local cloud.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from alexa_doorbell.commands.press import press_cli, tokens_status_cli
from alexa_doorbell.config import Settings
from alexa_doorbell.notifier.client import LambdaNotifier, local_notifier
from alexa_doorbell.notifier.lambda_handler import handle
from alexa_doorbell.notifier.state_report import EventSender
from alexa_doorbell.store.base import RtcSession
from alexa_doorbell.store.sqlite import SqliteStore
from tests.helpers.http_stub import LoopbackServer, QuietHandler
from tests.notifier.test_state_report import USER, Sent, link, make_notifier


def out_err(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_press_and_status_locally(cloud, capsys):
    settings = cloud.settings
    link(cloud)
    assert press_cli(settings, "front-door") == 0
    text = out_err(capsys)
    assert "accepted by Alexa (202)" in text and USER in text
    assert cloud.cloud.gateway.wait_for("DoorbellPress")
    assert press_cli(settings, "front-door") == 0  # within the debounce window
    assert "debounced" in out_err(capsys)
    assert len(cloud.cloud.gateway.messages("DoorbellPress")) == 1

    assert tokens_status_cli(settings) == 0
    text = out_err(capsys)
    assert USER in text and "202" in text and "linked" in text
    assert "Atza|" not in text and "Atzr|" not in text
    assert tokens_status_cli(settings, json_output=True) == 0
    [user] = json.loads(capsys.readouterr().out)["users"]
    assert (user["user_id"], user["relink_needed"], user["last_gateway_status"]) == (
        USER,
        False,
        "202",
    )


def test_status_shows_relink_needed(cloud, capsys):
    settings = cloud.settings
    link(cloud)
    cloud.cloud.gateway.add_fault(403, "SKILL_DISABLED_EXCEPTION")
    assert press_cli(settings, "front-door", json_output=True) == 1
    reply = json.loads(capsys.readouterr().out)
    assert reply["results"][0]["relink_needed"] is True
    assert tokens_status_cli(settings) == 1
    text = out_err(capsys)
    assert "relink needed" in text and "403 SKILL_DISABLED_EXCEPTION" in text


def test_setup_problems_exit_2(cloud, capsys, tmp_path):
    settings = cloud.settings
    assert press_cli(settings, "front-door") == 2  # nobody linked
    assert "not linked" in out_err(capsys)
    assert tokens_status_cli(settings) == 2
    assert "Nobody has linked" in out_err(capsys)
    link(cloud)
    assert press_cli(settings, "back-door") == 2
    assert "unknown endpoint" in out_err(capsys)
    assert press_cli(settings, "front-door", cause="KNOCK") == 2
    no_cloud = settings.model_copy(update={"local": settings.local.model_copy(update={"port": 9})})
    assert press_cli(no_cloud, "front-door") == 2
    assert "alexa-doorbell cloud" in out_err(capsys)


def test_the_command(cloud):
    link(cloud)
    settings = cloud.settings
    env = {
        **os.environ,
        "ALEXA_DOORBELL_DATA_DIR": str(settings.data_dir),
        "ALEXA_DOORBELL_LOCAL__PORT": str(settings.local.port),
        "ALEXA_DOORBELL_CONFIG": os.devnull,  # no config file
    }
    run = subprocess.run(
        [sys.executable, "-m", "alexa_doorbell.cli", "press", "front-door", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["results"][0]["status"] == "202"


# -- AWS: through the notifier Lambda ------------------------------------------------------
class LambdaStandIn(LoopbackServer):
    """``POST /2015-03-31/functions/{name}/invocations`` running our handler in-process."""

    def __init__(self, notifier: EventSender, name: str) -> None:
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                auth = self.headers.get("Authorization", "")
                ok = (
                    self.path == f"/2015-03-31/functions/{name}/invocations"
                    and auth.startswith("AWS4-HMAC-SHA256")
                    and "/lambda/aws4_request" in auth
                )
                if not ok:
                    data = json.dumps({"Message": "Function not found"}).encode()
                    error = {"x-amzn-ErrorType": "ResourceNotFoundException"}
                    self.reply(404, data, headers=error)
                else:
                    request = json.loads(body)
                    stand_in.requests.append(request)
                    self.reply(200, json.dumps(handle(notifier, request)).encode())

        super().__init__(Handler)


@pytest.fixture
def aws_settings(cloud, monkeypatch, tmp_path):
    link(cloud)
    notifier = make_notifier(cloud, Sent())
    stand_in = LambdaStandIn(notifier, "doorbell-notifier")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLECAMERA000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-only")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", stand_in.url)
    settings = Settings(
        cloud="aws",
        data_dir=tmp_path / "camera",
        notifier_function="doorbell-notifier",
        press_debounce=5.0,
        # In AWS the camera gathers through Amazon's STUN and TURN servers; this one
        # stays on loopback like every test.
        stun_urls=[],
        use_turn=False,
    )
    yield settings, stand_in
    stand_in.close()
    notifier.close()


def test_press_and_status_through_the_notifier_lambda(cloud, aws_settings, capsys):
    settings, stand_in = aws_settings
    assert press_cli(settings, "front-door") == 0
    assert "accepted by Alexa (202)" in out_err(capsys)
    assert stand_in.requests[0] == {
        "action": "press",
        "endpoint_id": "front-door",
        "cause": "PHYSICAL_INTERACTION",
    }
    assert cloud.cloud.gateway.wait_for("DoorbellPress")
    assert tokens_status_cli(settings) == 0
    assert USER in out_err(capsys)
    assert not (settings.data_dir / "store.sqlite3").exists()  # tokens stay in the cloud


def test_camera_side_lambda_notifier(cloud, aws_settings):
    settings, stand_in = aws_settings
    cam = local_notifier(settings)
    assert isinstance(cam, LambdaNotifier)
    assert cam.press("front-door")[0].status == "202"
    assert cam.press("front-door")[0].status == "debounced"  # before any invoke
    assert len(stand_in.requests) == 1
    cam.on_connectivity("front-door", "OK")
    assert stand_in.requests[-1]["action"] == "health"
    assert cloud.cloud.gateway.wait_for("ChangeReport")
    assert cam.status()[0]["user_id"] == USER


def test_lambda_errors_are_reported(cloud, aws_settings, capsys):
    settings, _ = aws_settings
    wrong = settings.model_copy(update={"notifier_function": "no-such-function"})
    assert press_cli(wrong, "front-door") == 1
    text = out_err(capsys)
    assert "cannot invoke the notifier Lambda no-such-function" in text
    assert "lambda:InvokeFunction" in text
    unset = settings.model_copy(update={"notifier_function": None})
    assert press_cli(unset, "front-door") == 2
    assert "ALEXA_DOORBELL_NOTIFIER_FUNCTION" in out_err(capsys)


def test_local_camera_side_notifier_records_health(cloud):
    link(cloud)
    store = SqliteStore(cloud.settings.data_dir / "store.sqlite3")
    cam = local_notifier(cloud.settings, store)
    cam.on_connectivity("front-door", "OK")
    cam.on_connectivity("front-door", "OK")  # heartbeat: no second report
    assert store.get_health("front-door").connectivity == "OK"
    assert len(cloud.cloud.gateway.wait_for("ChangeReport")) == 1
    cam.close()
    assert store.get_health("front-door") is not None  # the caller's store stays open
    store.close()


async def test_camera_in_aws_learns_of_session_disconnected_through_the_lambda(
    cloud, aws_settings, tmp_path
):
    """In AWS the camera cannot read the table: it asks the notifier Lambda (real boto3
    invoke of our handler) and ends the Alexa session the skill recorded as disconnected."""
    from alexa_doorbell.camera.agent import CameraAgent
    from alexa_doorbell.cloud.echo import EchoShow
    from alexa_doorbell.config import CameraConfig
    from alexa_doorbell.skill.rtc import sender_client_id

    settings, stand_in = aws_settings
    cam = local_notifier(settings)
    assert isinstance(cam, LambdaNotifier)
    skill_store = SqliteStore(cloud.settings.data_dir / "store.sqlite3")  # the "table"
    session_id = "amzn1.echo-api.session.aws-1"
    small = CameraConfig(width=320, height=240, fps=15, audio="tone", sink="discard")
    agent_settings = settings.model_copy(update={"cameras": [small]})
    agent = CameraAgent(
        agent_settings, signaling=False, store=cam, disconnect_poll=0.2, preset="ultrafast"
    )
    await agent.start()
    echo = EchoShow(talk=None)
    try:
        peer = sender_client_id(session_id)
        await echo.watch(lambda offer: agent.handle_offer(peer, offer))
        assert await echo.wait_frames(5, timeout=10) >= 5
        skill_store.put_session(RtcSession(session_id, "front-door", "CONNECTED", time.time()))
        await asyncio.sleep(0.5)
        assert peer in agent.sessions  # CONNECTED is not an end
        skill_store.put_session(RtcSession(session_id, "front-door", "DISCONNECTED", time.time()))
        for _ in range(50):
            if peer not in agent.sessions:
                break
            await asyncio.sleep(0.1)
        assert peer not in agent.sessions
        assert any(r["action"] == "sessions" for r in stand_in.requests)
    finally:
        await echo.close()
        await agent.stop()
        skill_store.close()
    # A bad request gets an error reply, not a crash of the Lambda.
    notifier = EventSender.from_config(cloud.settings.lambda_config())
    assert handle(notifier, {"action": "sessions"})["ok"] is False
    bad = {"action": "sessions", "endpoint_id": "front-door", "since": [1]}
    assert handle(notifier, bad)["ok"] is False
    notifier.close()
