"""The camera agent at home, with real processes: a camera that reboots under a live
Echo Show, an agent started before its camera, four cameras in one process (one of them
broken), failed attempts that must not lock a camera out."""

from __future__ import annotations

import asyncio
import time

import pytest

from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.store import open_store
from tests.notifier.test_state_report import link
from tests.reliability.home import (
    CameraCommand,
    RtspCamera,
    alexa_offers,
    free_port,
    health_reports,
    until,
    wait_ready,
    watch,
)

SMALL = {"width": 320, "height": 240, "fps": 10, "audio": "silence"}
GRACE = 1.0  # source_grace_seconds: shortened by the setting, not by sleeping


def camera(endpoint_id: str, source: str) -> dict[str, object]:
    return {"endpoint_id": endpoint_id, "channel_name": endpoint_id, "source": source, **SMALL}


def stamped(echo: EchoShow) -> int:
    """Frames whose test-pattern stamp the Echo read: the camera's own pictures."""
    return echo.report().stamps_read


@pytest.fixture
def home(make_cloud):  # type: ignore[no-untyped-def]
    def make(*cameras: dict[str, object]):  # type: ignore[no-untyped-def]
        cloud = make_cloud(cameras=list(cameras))
        link(cloud)  # so Alexa hears ChangeReports
        return cloud

    return make


async def test_rtsp_camera_killed_and_restarted_under_a_live_echo_show(  # type: ignore[no-untyped-def]
    home, record_figures
) -> None:
    with RtspCamera() as cam:
        cloud = home(camera("front-door", cam.url))
        agent = CameraCommand(cloud, [camera("front-door", cam.url)], source_grace_seconds=GRACE)
        echo: EchoShow | None = None
        try:
            wait_ready(agent)
            assert await until(lambda: health_reports(cloud, "front-door")[-1:] == ["OK"], 10)
            echo = await watch(cloud, "front-door", "reboot")
            assert await until(lambda: stamped(echo) >= 10, 10), agent.log()
            returns = []
            for _ in range(2):  # the camera reboots twice during one view
                cam.kill()
                killed, frames_at_kill = time.monotonic(), echo.report().frames
                # Meanwhile: the slate (frames keep coming, none of them the camera's once
                # those in flight are in).
                n = frames_at_kill + 5
                assert await until(lambda n=n: echo.report().frames >= n, 5)
                before, n = stamped(echo), echo.report().frames + 5
                assert await until(lambda n=n: echo.report().frames >= n, 5)
                assert stamped(echo) == before
                # Down past the grace period: Alexa hears UNREACHABLE.
                assert await until(
                    lambda: health_reports(cloud, "front-door")[-1:] == ["UNREACHABLE"], 5
                ), health_reports(cloud, "front-door")
                slate = echo.report().frames - frames_at_kill
                restarted = cam.start()
                assert await until(lambda b=before: stamped(echo) > b, 5), agent.log()
                returns.append(time.monotonic() - restarted)
                assert await until(lambda: health_reports(cloud, "front-door")[-1:] == ["OK"], 5), (
                    health_reports(cloud, "front-door")
                )
                assert restarted - killed > GRACE
            # The same session all along: no new offer, the camera's pictures again.
            assert len(cloud.cloud.gateway.messages("ChangeReport")) >= 5
            assert max(returns) <= 2.0, returns
            assert echo.report().width == 320
            record_figures(
                "camera_source_return",
                return_to_frames_s=[round(r, 3) for r in returns],
                slate_frames_during_outage=slate,
            )
        finally:
            if echo is not None:
                await echo.close()
            assert agent.stop() == 0, agent.log()
    assert "video source rtsp://127.0.0.1" in agent.log() and "is back" in agent.log()


async def test_the_agent_started_before_its_camera(home) -> None:  # type: ignore[no-untyped-def]
    cam = RtspCamera()
    cloud = home(camera("front-door", cam.url))
    agent = CameraCommand(cloud, [camera("front-door", cam.url)], source_grace_seconds=GRACE)
    echo: EchoShow | None = None
    try:
        wait_ready(agent)  # no camera yet: signaling connects all the same (no exit 2)
        store = open_store(cloud.settings.store_location)
        try:
            # Past the grace period the camera is UNREACHABLE (what ReportState and the
            # skill read); Alexa got an OK only if signaling came up within the grace.
            assert await until(
                lambda: (
                    (h := store.get_health("front-door")) is not None
                    and h.connectivity == "UNREACHABLE"
                    and time.time() - h.updated_at < 30
                ),
                10,
            ), agent.log()
            await asyncio.sleep(0.3)
            assert health_reports(cloud, "front-door")[-1:] in ([], ["UNREACHABLE"])
        finally:
            store.close()
        assert agent.proc.poll() is None
        cam.start()
        # The idle check finds it (at most 5 s apart) and Alexa hears OK again.
        assert await until(lambda: health_reports(cloud, "front-door")[-1:] == ["OK"], 8), (
            agent.log()
        )
        echo = await watch(cloud, "front-door", "late")
        assert await until(lambda: stamped(echo) >= 10, 10), agent.log()
    finally:
        if echo is not None:
            await echo.close()
        cam.kill()
        assert agent.stop() == 0, agent.log()


async def test_four_cameras_in_one_process_one_of_them_broken(home) -> None:  # type: ignore[no-untyped-def]
    dead = f"rtsp://127.0.0.1:{free_port()}/nothing-here"
    cams = [camera(f"cam-{i}", "testsrc") for i in range(3)] + [camera("garage", dead)]
    cloud = home(*cams)
    agent = CameraCommand(cloud, cams, source_grace_seconds=GRACE)
    echoes: dict[str, EchoShow] = {}
    try:
        wait_ready(agent, count=4)
        for c in cams:
            echoes[str(c["endpoint_id"])] = await watch(cloud, str(c["channel_name"]), "four")
        for i in range(3):
            assert await until(lambda i=i: stamped(echoes[f"cam-{i}"]) >= 10, 10), agent.log()
        # The broken one: a viewer sees the slate, Alexa hears it is unreachable...
        garage = echoes["garage"]
        assert await until(lambda: garage.report().frames >= 5, 10), agent.log()
        assert stamped(garage) == 0
        # The broken camera is UNREACHABLE where ReportState and the skill read it; Alexa
        # got an OK (then this UNREACHABLE) only if signaling came up within the grace.
        store = open_store(cloud.settings.store_location)
        try:
            assert await until(
                lambda: (
                    (h := store.get_health("garage")) is not None
                    and h.connectivity == "UNREACHABLE"
                ),
                10,
            ), agent.log()
        finally:
            store.close()
        await asyncio.sleep(0.3)
        assert health_reports(cloud, "garage")[-1:] in ([], ["UNREACHABLE"])
        # ...and the others are fine, and still flowing.
        for i in range(3):
            assert health_reports(cloud, f"cam-{i}")[-1:] == ["OK"]
            before = stamped(echoes[f"cam-{i}"])
            assert await until(lambda i=i, b=before: stamped(echoes[f"cam-{i}"]) > b + 5, 5)
        assert agent.proc.poll() is None
    finally:
        for e in echoes.values():
            await e.close()
        assert agent.stop() == 0, agent.log()


async def _dead_offer() -> str:
    """An offer whose only candidate is a loopback port nobody answers: ICE never connects."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    port = free_port()  # closed again: nothing listens there
    lines = [ln for ln in sdp.split("\r\n") if not ln.startswith("a=candidate:")]
    out = []
    for ln in lines:
        out.append(ln)
        if ln.startswith("a=mid:"):
            out.append(f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host")
    return "\r\n".join(out)


async def test_ten_never_connecting_offers_then_a_real_one_gets_frames(home) -> None:  # type: ignore[no-untyped-def]
    cloud = home(camera("front-door", "testsrc"))
    agent = CameraCommand(cloud, [camera("front-door", "testsrc")])  # the defaults: 10 viewers
    echo: EchoShow | None = None
    try:
        wait_ready(agent)
        send = alexa_offers(cloud, "front-door")
        for i in range(10):
            answer = await asyncio.to_thread(send, f"alexa.dead-{i}", await _dead_offer())
            assert "a=fingerprint" in answer  # answered: each took a slot for now
        await asyncio.sleep(1.2)  # they are past the second a new offer waits for
        t0 = time.monotonic()
        echo = await watch(cloud, "front-door", "real")
        assert await until(lambda: stamped(echo) >= 5, 10), agent.log()
        assert time.monotonic() - t0 < 10
        assert "ENDPOINT_BUSY" not in agent.log()
        # Left alone, the others free their slots at ice_connect_timeout (10 s).
        assert await until(lambda: agent.log().count("ICE did not connect") >= 10, 15), agent.log()
    finally:
        if echo is not None:
            await echo.close()
        assert agent.stop() == 0, agent.log()
