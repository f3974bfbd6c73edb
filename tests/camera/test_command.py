"""``alexa-doorbell camera`` as a process: health reaches Alexa, SIGUSR1 rings the doorbell,
``alexa-doorbell press`` elsewhere readies its live view and lands in the door timeline
with the camera's picture."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import av

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.amazon.snapshots import SnapshotStore
from alexa_doorbell.camera import runstate
from alexa_doorbell.store.timeline import Timeline
from tests.notifier.test_state_report import link

SMALL_CAMERA = {
    "endpoint_id": "front-door",
    "channel_name": "front-door",
    "doorbell": True,
    "width": 320,
    "height": 240,
    "fps": 10,
}


def _wait(check, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        **os.environ,
        "ALEXA_DOORBELL_CONFIG": os.devnull,  # no config file
        "ALEXA_DOORBELL_DATA_DIR": str(settings.data_dir),
        "ALEXA_DOORBELL_LOCAL__PORT": str(settings.local.port),
        "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(settings.local.tls_port),
        "ALEXA_DOORBELL_CAMERAS": json.dumps([SMALL_CAMERA]),
    }


def _camera(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alexa_doorbell.cli", "camera"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_camera_process_reports_health_and_rings_on_sigusr1(cloud) -> None:  # type: ignore[no-untyped-def]
    link(cloud)
    settings = cloud.settings
    gateway = cloud.cloud.gateway
    env = _env(settings)
    proc = _camera(env)
    try:

        def health_reports(value: str) -> list[dict]:
            return [
                m
                for m in gateway.messages("ChangeReport")
                if m["event"]["payload"]["change"]["properties"][0]["value"]["value"] == value
            ]

        # Connected: Alexa hears the camera is OK (it was unknown, i.e. unreachable).
        assert _wait(lambda: health_reports("OK")), "no ChangeReport OK after the agent started"
        proc.send_signal(signal.SIGUSR1)
        assert _wait(lambda: gateway.messages("DoorbellPress")), "SIGUSR1 sent no DoorbellPress"
        [press] = gateway.messages("DoorbellPress")
        assert press["event"]["endpoint"]["endpointId"] == "front-door"
        assert press["event"]["payload"]["cause"]["type"] == "PHYSICAL_INTERACTION"
        # `alexa-doorbell press` in another process: the agent readies the view at once
        # (the press itself is debounced, within 5 s of the first).
        ring = subprocess.run(
            [sys.executable, "-m", "alexa_doorbell.cli", "press", "front-door"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ring.returncode == 0, ring.stderr
        assert runstate.press_socket_path(settings.data_dir, proc.pid).exists()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        # Shutting down: Alexa hears UNREACHABLE.
        assert _wait(lambda: health_reports("UNREACHABLE"), timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, output
    assert "Atza|" not in output and "Atzr|" not in output  # tokens never logged
    # The command set logging up: the agent's INFO lines reach the terminal.
    assert "camera agent for front-door started" in output, output
    assert "signaling connected as MASTER" in output, output
    assert "doorbell front-door pressed: readying its live view" in output, output
    assert not runstate.press_socket_path(settings.data_dir, proc.pid).exists()  # removed
    for message in gateway.messages():
        assert schema_errors(message) == []


def test_a_press_elsewhere_lands_in_the_timeline_with_its_picture(cloud) -> None:  # type: ignore[no-untyped-def]
    """`alexa-doorbell press` in another process sends DoorbellPress itself; the agent,
    told before and after on its press socket, records the press in the door timeline
    with the command's source, the gateway's answer and the camera's picture."""
    link(cloud)
    settings = cloud.settings
    gateway = cloud.cloud.gateway
    env = _env(settings)
    proc = _camera(env)
    timeline = Timeline.in_dir(settings.data_dir)
    snapshots = SnapshotStore.from_settings(settings)
    try:
        assert _wait(lambda: gateway.messages("ChangeReport")), "the agent did not come up"
        assert _wait(lambda: runstate.press_socket_path(settings.data_dir, proc.pid).exists())
        assert timeline.recent() == []
        ring = subprocess.run(
            [sys.executable, "-m", "alexa_doorbell.cli", "press", "front-door", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ring.returncode == 0, ring.stderr
        [result] = json.loads(ring.stdout)["results"]
        assert result["ok"] and result["status"].startswith("2"), result  # Alexa accepted
        assert len(gateway.messages("DoorbellPress")) == 1
        assert _wait(timeline.recent), "the press never reached the timeline"
        [entry] = timeline.recent()
        assert (entry.endpoint_id, entry.kind, entry.what) == (
            "front-door",
            "press",
            "PHYSICAL_INTERACTION",
        )
        assert (entry.source, entry.status) == ("press command", result["status"])
        assert entry.snapshot_key, "recorded without the camera's picture"
        jpeg = snapshots.get(entry.snapshot_key)
        with av.open(io.BytesIO(jpeg)) as picture:
            frame = next(picture.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        assert len(timeline.recent()) == 1  # one press, one entry: none more at shutdown
    finally:
        timeline.close()
        snapshots.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, output
    assert "doorbell front-door pressed: readying its live view" in output, output


def test_bad_source_or_endpoint_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "ALEXA_DOORBELL_CONFIG": os.devnull,  # no config file
        "ALEXA_DOORBELL_DATA_DIR": str(tmp_path),
    }
    two = json.dumps(
        [
            {"endpoint_id": "a", "channel_name": "a"},
            {"endpoint_id": "b", "channel_name": "b", "source": "http://camera/stream"},
        ]
    )
    for args, expected, cameras in (
        (["--source", str(tmp_path / "missing.mp4")], "not testsrc, rtsp://", None),
        (["--endpoint-id", "back-door"], "no camera with endpoint_id 'back-door'", None),
        # Every camera is served: one whose source can never work is named at start.
        ([], "camera b: video source 'http://camera/stream' is not testsrc", two),
        (["--source", "testsrc"], "pick it with --endpoint-id", two),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "alexa_doorbell.cli", "camera", *args],
            env={**env, "ALEXA_DOORBELL_CAMERAS": cameras} if cameras else env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2, run.stderr
        assert expected in run.stderr
        assert "Traceback" not in run.stderr + run.stdout
