"""The camera side with ``cloud = "aws"``: what it needs is checked at start, and ``doctor``
tells an agent that is not running from one whose heartbeats do not reach the table.

Without ``notifier_function`` (or without AWS credentials) the agent used to start, write
its heartbeats to a SQLite file on the camera machine and leave Alexa answering
ENDPOINT_UNREACHABLE. Now ``camera``, ``press`` and ``tokens status`` refuse to start:
one line saying what to set, exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alexa_doorbell.camera.runstate import AgentState, read_state, state_path, write_state
from alexa_doorbell.cli import app
from alexa_doorbell.config import Settings
from alexa_doorbell.doctor import FAIL, OK, Doctor
from alexa_doorbell.preflight import credential_method
from alexa_doorbell.store.base import Health
from tests.commands.test_press import LambdaStandIn
from tests.notifier.test_state_report import Sent, link, make_notifier

SMALL_CAMERA = {"endpoint_id": "front-door", "channel_name": "front-door", "doorbell": True}
SMALL_CAMERA |= {"width": 160, "height": 120, "fps": 5, "audio": "silence"}


@pytest.fixture
def no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment with no AWS credentials anywhere and no ALEXA_DOORBELL_* settings."""
    for name in list(os.environ):
        if name.upper().startswith(("ALEXA_DOORBELL_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", os.devnull)
    monkeypatch.setenv("ALEXA_DOORBELL_CLOUD", "aws")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("alexa-doorbell: ")
    return lines[0]


COMMANDS = [["camera"], ["press", "front-door"], ["tokens", "status"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_without_notifier_function_nothing_starts(no_aws: Path, command: list[str]) -> None:
    line = one_line(command)
    assert "needs notifier_function" in line and "NotifierFunctionArn" in line
    assert "ALEXA_DOORBELL_NOTIFIER_FUNCTION" in line
    assert not (no_aws / "xdg").exists()  # no SQLite store made on the camera machine


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_without_credentials_nothing_starts(
    no_aws: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("ALEXA_DOORBELL_NOTIFIER_FUNCTION", "alexa-doorbell-NotifierFunction-1")
    line = one_line(command)
    assert "no AWS credentials" in line
    assert "aws configure --profile doorbell-camera" in line and "AWS_PROFILE" in line
    monkeypatch.setenv("AWS_PROFILE", "doorbell-kamera")  # a profile that does not exist
    line = one_line(command)
    assert "AWS_PROFILE=doorbell-kamera: no such profile" in line


def test_credentials_are_found_along_the_chain_without_the_network(
    no_aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert credential_method() is None  # and no instance-metadata call (the net guard)
    (no_aws / "aws-credentials").write_text(
        "[doorbell-camera]\naws_access_key_id = AKIAEXAMPLECAMERA000\n"
        "aws_secret_access_key = example-only\n"
    )
    assert credential_method() is None  # the profile exists, but nobody chose it
    monkeypatch.setenv("AWS_PROFILE", "doorbell-camera")
    assert credential_method() == "shared-credentials-file"
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLECAMERA000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-only")
    assert credential_method() == "env"


def test_the_installed_command_refuses_at_once(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.upper().startswith(("ALEXA_DOORBELL_", "AWS_"))
    }
    env |= {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    (tmp_path / "alexa-doorbell.toml").write_text('cloud = "aws"\n')
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "alexa_doorbell.cli", "camera"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "notifier_function" in proc.stderr
    assert time.monotonic() - started < 20  # no connection attempts, no timeouts
    assert not (tmp_path / "xdg").exists()


# -- doctor: the two causes of a camera Alexa cannot reach --------------------------------
def _aws_doctor(tmp_path: Path, table: Path | None, now: float = 10_000.0) -> Doctor:
    settings = Settings(
        cloud="aws",
        data_dir=tmp_path / "camera",
        store_url=f"sqlite:///{table}" if table else "",
    )
    doc = Doctor(settings, now=lambda: now)
    doc._channels_ok[settings.cameras[0].endpoint_id] = True  # as if `channel` had passed
    return doc


def test_no_agent_and_no_heartbeat_names_both_causes(tmp_path: Path) -> None:
    doc = _aws_doctor(tmp_path, tmp_path / "table.sqlite3")
    try:
        check = doc.camera_online(doc.s.cameras[0])
    finally:
        doc.close()
    assert check.status == FAIL and "never reported" in check.detail
    assert "start the camera agent" in check.fix and "notifier_function" in check.fix
    assert "NotifierFunctionArn" in check.fix


def test_on_the_camera_machine_no_agent_is_said_as_such(tmp_path: Path) -> None:
    doc = _aws_doctor(tmp_path, None)
    try:
        check = doc.camera_online(doc.s.cameras[0])
    finally:
        doc.close()
    assert check.status == FAIL and check.detail == "no camera agent runs on this machine"
    assert "alexa-doorbell camera --endpoint-id front-door" in check.fix


def test_a_dead_agents_state_file_is_no_agent(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    write_state(tmp_path, AgentState("front-door", pid=int(proc.stdout)))
    assert state_path(tmp_path, "front-door").exists()
    assert read_state(tmp_path, "front-door") is None
    write_state(tmp_path, AgentState("front-door"))  # this process: alive, but no agent
    assert read_state(tmp_path, "front-door") is None
    assert state_path(tmp_path, "a/b:c").parent == tmp_path / "agents"


def _camera_env(cloud, data_dir: Path, stand_in: LambdaStandIn, function: str) -> dict:  # type: ignore[no-untyped-def]
    """A camera machine in AWS mode whose "AWS" is the local cloud (KVS) and a Lambda stand-in."""
    s = cloud.settings
    env = {
        k: v for k, v in os.environ.items() if not k.upper().startswith(("ALEXA_DOORBELL_", "AWS_"))
    }
    return env | {
        "ALEXA_DOORBELL_CONFIG": os.devnull,
        "ALEXA_DOORBELL_CLOUD": "aws",
        "ALEXA_DOORBELL_DATA_DIR": str(data_dir),
        "ALEXA_DOORBELL_NOTIFIER_FUNCTION": function,
        "ALEXA_DOORBELL_CAMERAS": json.dumps([SMALL_CAMERA]),
        "ALEXA_DOORBELL_STUN_URLS": "[]",  # not the region's KVS STUN: nothing leaves here
        "AWS_ENDPOINT_URL": s.local.url,
        "AWS_ENDPOINT_URL_LAMBDA": stand_in.url,
        "AWS_ACCESS_KEY_ID": s.local.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": s.local.aws_secret_access_key.get_secret_value(),
        "AWS_DEFAULT_REGION": s.region,
        "SSL_CERT_FILE": str(s.ca_file),  # trust the local cloud's wss:// as AWS's
        "HOME": str(data_dir),
    }


def _wait_state(data_dir: Path, ready, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(data_dir, "front-door")
        if state is not None and ready(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"no such agent state: {read_state(data_dir, 'front-door')}")


@pytest.mark.slow
def test_doctor_tells_a_wrong_notifier_function_from_a_stopped_agent(cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A real agent process in AWS mode: connected to KVS, heartbeats to a function that is
    not there. doctor on its machine says so and names the fix; with the right function
    the heartbeat lands in the table and the check passes."""
    link(cloud)
    notifier = make_notifier(cloud, Sent())
    stand_in = LambdaStandIn(notifier, "doorbell-notifier")
    data_dir = tmp_path / "camera"
    table = cloud.settings.data_dir / "store.sqlite3"
    procs: list[subprocess.Popen[str]] = []
    try:
        for function in ("doorbell-notfier", "doorbell-notifier"):
            proc = subprocess.Popen(
                [sys.executable, "-m", "alexa_doorbell.cli", "camera"],
                env=_camera_env(cloud, data_dir, stand_in, function),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            procs.append(proc)
            state = _wait_state(data_dir, lambda s: s.report_at is not None)
            assert state.pid == proc.pid and state.connected
            doc = _aws_doctor(tmp_path, table, now=time.time())
            try:
                check = doc.camera_online(doc.s.cameras[0])
            finally:
                doc.close()
            if function == "doorbell-notfier":
                assert check.status == FAIL, check
                assert f"an agent runs here (pid {proc.pid})" in check.detail
                assert "do not reach the table" in check.detail
                assert "cannot invoke the notifier Lambda doorbell-notfier" in check.detail
                assert "NotifierFunctionArn" in check.fix and "CameraAgentPolicy" in check.fix
            else:
                assert check.status == OK and "agent heartbeat" in check.detail, check
                health = notifier.store.get_health("front-door")
                assert isinstance(health, Health) and health.connectivity == "OK"
            proc.terminate()
            proc.wait(20)
            assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
            assert read_state(data_dir, "front-door") is None  # gone with the agent
        assert not (data_dir / "store.sqlite3").exists()  # no table of its own in AWS mode
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stand_in.close()
        notifier.close()


def test_on_the_camera_machine_doctor_asks_the_notifier(cloud, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No LWA secret and no table there: the Alexa side is checked through the notifier
    Lambda (real boto3 invoke of our handler), not as failures of checks it cannot run."""
    from alexa_doorbell.doctor import WARN

    notifier = make_notifier(cloud, Sent())
    stand_in = LambdaStandIn(notifier, "doorbell-notifier")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLECAMERA000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-only")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", stand_in.url)
    settings = Settings(
        cloud="aws", data_dir=tmp_path / "camera", notifier_function="doorbell-notifier"
    )
    doc = Doctor(settings)
    try:
        assert doc.camera_machine
        nobody = doc.notifier()
        assert nobody.status == WARN and "nobody has linked" in nobody.detail
        link(cloud)
        linked = doc.notifier()
        assert linked.status == OK and "1 linked user(s)" in linked.detail, linked
        wrong = Doctor(settings.model_copy(update={"notifier_function": "doorbell-notfier"}))
        missing = wrong.notifier()
        assert missing.status == FAIL and "ResourceNotFoundException" in missing.detail
        assert "NotifierFunctionArn" in missing.fix
        # The stack's own settings (a table named) still check LWA, users and the skill.
        admin = Settings(cloud="aws", store_url="dynamodb://t", notifier_function="x")
        assert not Doctor(admin).camera_machine
    finally:
        doc.close()
        stand_in.close()
        notifier.close()
