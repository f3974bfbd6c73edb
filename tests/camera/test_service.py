"""Every camera in one process: long views, readiness for systemd, one doorbell at a time."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

from alexa_doorbell.camera import sdnotify
from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.camera.service import CameraService
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.notifier.state_report import Outcome

SMALL = {"width": 320, "height": 240, "fps": 15, "audio": "silence"}


class JumpingLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock can be moved ahead: every timer due before the new time
    fires at once, as if that much time had passed (what a cap or a timeout would do)."""

    skew = 0.0

    def time(self) -> float:
        return super().time() + self.skew


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(  # type: ignore[arg-type]
        cloud="local", data_dir=tmp_path, cameras=[CameraConfig(**SMALL)], **overrides
    )


async def _view_across_ten_minutes(settings: Settings) -> tuple[bool, int, int]:
    """A view, then the clock 601 s ahead: (still connected, frames before, frames after)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, JumpingLoop)
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        echo = EchoShow(talk=None)
        try:
            await echo.watch(lambda offer: agent.handle_offer("long-view", offer))
            assert await echo.wait_frames(10, timeout=10) >= 10
            loop.skew += 601.0  # ten minutes and a second, for every timer in the process
            await asyncio.sleep(1.0)
            before = echo.report().frames
            await asyncio.sleep(1.5)
            alive = "long-view" in agent.sessions
            return alive, before, echo.report().frames
        finally:
            await echo.close()


def _run_jumping(coro_factory):  # type: ignore[no-untyped-def]
    with asyncio.Runner(loop_factory=JumpingLoop) as runner:
        return runner.run(coro_factory())


def test_a_view_outlives_600_s_by_default_and_the_cap_is_opt_in(tmp_path: Path) -> None:
    default = _settings(tmp_path / "default")
    assert default.max_session_seconds is None
    alive, before, after = _run_jumping(lambda: _view_across_ten_minutes(default))
    assert alive and after > before + 10  # frames still flow past the old 600 s end
    # The same jump with the cap set as it used to be: the cap ends the view.
    capped = _settings(tmp_path / "capped", max_session_seconds=600)
    alive, _, _ = _run_jumping(lambda: _view_across_ten_minutes(capped))
    assert not alive


async def test_a_session_that_never_connects_frees_its_slot(tmp_path: Path) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection

    settings = _settings(tmp_path, max_viewers=1, ice_connect_timeout=0.5)
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        await agent.handle_offer("never", pc.localDescription.sdp)
        await pc.close()  # the viewer is gone before ICE could connect
        assert len(agent.sessions) == 1 and agent.stats()["session_caps"] == 0
        await asyncio.sleep(0.8)
        assert not agent.sessions  # its slot is free again
        echo = EchoShow(talk=None)
        try:
            await echo.watch(lambda offer: agent.handle_offer("real", offer))
            assert await echo.wait_frames(5, timeout=10) >= 5
        finally:
            await echo.close()


def test_sd_notify_sends_one_datagram_to_the_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        assert sdnotify.notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": str(path)})
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"
    name = f"alexa-doorbell-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)  # the abstract namespace systemd may use
        assert sdnotify.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"
    assert not sdnotify.notify("READY=1", {})  # not under systemd: nothing to do
    assert not sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
    env = {"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}
    assert sdnotify.watchdog_interval(env) == 10.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None


class Presses:
    """A Notifier's press, recorded (the press path itself is tested in test_notify*)."""

    last_error = None

    def __init__(self) -> None:
        self.rung: list[str | None] = []

    def press(self, endpoint_id: str | None = None, cause: str = "PHYSICAL_INTERACTION"):  # type: ignore[no-untyped-def]
        self.rung.append(endpoint_id)
        return [Outcome("DoorbellPress", endpoint_id or "-", "202", True)]


async def test_a_press_reaches_exactly_that_doorbell_and_sigusr1_needs_a_single_one(
    tmp_path: Path,
) -> None:
    cams = [
        CameraConfig(endpoint_id="front", channel_name="front", **SMALL),
        CameraConfig(endpoint_id="back", channel_name="back", **SMALL),
    ]
    settings = Settings(cloud="local", data_dir=tmp_path, cameras=cams)
    presses = Presses()
    service = CameraService(
        settings,
        notifier=presses,  # type: ignore[arg-type]
        agent_options={"signaling": False, "preset": "ultrafast"},
    )
    started: list[str] = []
    service.on_start.append(lambda cam: started.append(cam.endpoint_id))
    await service.start()
    try:
        assert sorted(started) == ["back", "front"]
        outcomes = await service.camera("back").press()
        assert presses.rung == ["back"] and outcomes[0].ok
        service.ring_on_signal()  # two doorbells here: ringing both is what it must not do
        await asyncio.sleep(0.1)
        assert presses.rung == ["back"]
        # The pressed doorbell's view is readied (its source read, the encoder made,
        # nothing encoded for nobody); the other stays idle: nothing opened or encoded.
        front, back = service.camera("front").agent, service.camera("back").agent
        assert front.source and front.source.status.state == "idle"
        assert front.video and front.video.frames_read == 0 and front.video.encoder is None
        assert back.video is not None
        for _ in range(100):
            if back.video.encoder is not None:
                break
            await asyncio.sleep(0.05)
        assert back.video.encoder is not None and back.video.frames_read > 0
        assert back.video.frames_encoded == 0
    finally:
        await service.stop()
    single = CameraService(
        settings,
        ["front"],
        notifier=presses,  # type: ignore[arg-type]
        agent_options={"signaling": False, "preset": "ultrafast"},
    )
    await single.start()
    try:
        single.ring_on_signal()  # one doorbell: rung, with a deprecation warning
        t0 = time.monotonic()
        while presses.rung[-1] != "front" and time.monotonic() - t0 < 5:
            await asyncio.sleep(0.02)
        assert presses.rung == ["back", "front"]
    finally:
        await single.stop()


def test_the_dashboard_shows_each_cameras_source_state(tmp_path: Path) -> None:
    from alexa_doorbell.camera.runstate import AgentState
    from alexa_doorbell.store.base import Health
    from alexa_doorbell.web.status import StatusInputs, build_status

    now = time.time()
    cams = [
        CameraConfig(endpoint_id="front", friendly_name="Front"),
        CameraConfig(endpoint_id="garage", friendly_name="Garage"),
        CameraConfig(endpoint_id="far", friendly_name="Far"),
    ]
    down = AgentState("garage", source_state="down", source_since=now - 20, source_error="refused")
    status = build_status(
        StatusInputs(
            cloud="local",
            region="us-east-1",
            cameras=cams,
            health={c.endpoint_id: Health(c.endpoint_id, "OK", now) for c in cams},
            sessions={},
            tokens=[],
            events=[],
            agents={"front": AgentState("front", source_state="live"), "garage": down},
            now=now,
        )
    )
    by_id = {c["endpoint_id"]: c for c in status["cameras"]}
    assert by_id["front"]["source"]["state"] == "live"
    assert by_id["garage"]["source"] == {"state": "down", "since": now - 20, "error": "refused"}
    assert by_id["far"]["source"] is None  # its agent runs elsewhere: unknown here
    [problem] = [p for p in status["problems"] if p["where"] == "garage"]
    assert "does not answer (refused)" in problem["what"] and "source" in problem["fix"]
