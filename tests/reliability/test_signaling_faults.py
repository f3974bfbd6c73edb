"""Signaling faults: the cloud killed and restarted, dropped sockets, GO_AWAY, connection caps.

In every case the media of an established session keeps flowing (it never
depended on signaling), the camera agent is back on signaling within 2 s of
the cloud being reachable again, and the next offer is answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, LocalCloudConfig, Settings
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.messages import ServerMessage, refusal_reason
from alexa_doorbell.skill.rtc import sender_client_id
from tests.reliability.conftest import CloudProcess, free_port_pair

SMALL = [CameraConfig(width=320, height=240, fps=15, audio="tone")]
RECONNECT_BUDGET = 2.0


def _offer_sender(settings: Settings) -> Callable[[str, str], str]:
    """SendAlexaOfferToMaster through boto3 (fresh look-ups: the cloud may have restarted)."""

    def send(sender: str, offer: str) -> str:
        kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
        arn = api.describe_channel_arn(kv, settings.cameras[0].channel_name)
        https = api.get_channel_endpoints(kv, arn, "VIEWER").https
        sig = api.signaling_client(settings.boto_session(), https)
        return api.send_alexa_offer_to_master(sig, arn, sender, offer)

    return send


async def _watch(settings: Settings, name: str) -> EchoShow:
    echo = EchoShow(talk=None)
    send = _offer_sender(settings)
    answer = await echo.watch(lambda o: asyncio.to_thread(send, sender_client_id(name), o))
    assert refusal_reason(answer) is None
    assert await echo.wait_frames(3, 10) >= 3
    return echo


async def _frames_grow(echo: EchoShow, more: int, timeout: float = 8.0) -> bool:
    target = echo.report().frames + more
    return await echo.wait_frames(target, timeout) >= target


async def _reconnected(agent: CameraAgent, before: int, timeout: float = 15.0) -> float:
    """Seconds until the agent has a newer signaling connection than ``before``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        sig = agent.signaling
        if sig.connections > before and sig.connected.is_set():
            return time.monotonic() - t0
        await asyncio.sleep(0.01)
    raise AssertionError(f"agent not reconnected after {timeout} s: {agent.signaling.last_error}")


@pytest.mark.slow
async def test_cloud_process_killed_and_restarted_mid_session(tmp_path, record_figures) -> None:  # type: ignore[no-untyped-def]
    port = free_port_pair()
    cloud = CloudProcess(tmp_path / "data", port)
    settings = Settings(
        cloud="local",
        data_dir=tmp_path / "data",
        local=LocalCloudConfig(port=port, tls_port=port + 1),
        cameras=SMALL,
    )
    await asyncio.to_thread(cloud.start)
    states: list[tuple[float, str]] = []
    try:
        agent = CameraAgent(
            settings,
            preset="ultrafast",
            on_connectivity=lambda _e, c: states.append((time.monotonic(), c)),
        )
        async with agent:
            await agent.wait_ready(10)
            echo = await _watch(settings, "before-kill")
            before = agent.signaling.connections
            cloud.kill()
            down_at = time.monotonic()
            # Established media does not need the cloud.
            assert await _frames_grow(echo, 15), "media stopped with the cloud"
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - down_at)))
            assert not agent.signaling.connected.is_set()
            up_at = await asyncio.to_thread(cloud.start)
            delay = await _reconnected(agent, before)
            # _reconnected started polling after the port answered: count from up_at.
            reconnect = time.monotonic() - up_at if delay else 0.0
            assert reconnect <= RECONNECT_BUDGET, f"reconnected {reconnect:.2f} s after return"
            assert await _frames_grow(echo, 10)
            late = await _watch(settings, "after-restart")  # the next offer is answered
            assert await _frames_grow(echo, 5)
            await late.close()
            await echo.close()
    finally:
        cloud.kill()
    assert [c for _, c in states][:3] == ["OK", "UNREACHABLE", "OK"]
    record_figures(
        "signaling_cloud_restart",
        cloud_down_seconds=round(up_at - down_at, 2),
        reconnect_after_return_s=round(reconnect, 3),
        budget_s=RECONNECT_BUDGET,
    )


# -- in-process faults ----------------------------------------------------------------
async def _drop_tcp(handle: Any, agent: CameraAgent) -> None:
    # An abrupt loss: no close frame, the TCP connection is reset.
    agent.signaling._ws.transport.abort()


async def _go_away(handle: Any, agent: CameraAgent) -> None:
    kvs = handle.cloud.kvs
    arn = agent._channel_arn
    await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(
            kvs.masters[arn].send(ServerMessage("GO_AWAY")), handle.loop
        )
    )


async def _server_close(handle: Any, agent: CameraAgent) -> None:
    kvs = handle.cloud.kvs
    arn = agent._channel_arn
    await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(kvs.masters[arn].close(1011), handle.loop)
    )


async def _wait_for_cap(handle: Any, agent: CameraAgent) -> None:
    pass  # the cloud's connection_max_age (1.5 s) ends the connection by itself


FAULTS = {
    "tcp_reset": (_drop_tcp, {}),
    "server_close": (_server_close, {}),
    "go_away": (_go_away, {}),
    "connection_age_cap": (_wait_for_cap, {"connection_max_age": 1.5}),
    "idle_timeout": (_wait_for_cap, {"idle_timeout": 1.0}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_signaling_fault(fault: str, make_cloud, record_figures) -> None:  # type: ignore[no-untyped-def]
    inject, local = FAULTS[fault]
    handle = make_cloud(cameras=SMALL, local=local)
    settings = handle.settings
    states: list[tuple[float, str]] = []
    agent = CameraAgent(
        settings,
        preset="ultrafast",
        on_connectivity=lambda _e, c: states.append((time.monotonic(), c)),
    )
    async with agent:
        await agent.wait_ready(10)
        echo = await _watch(settings, f"{fault}-1")
        before = agent.signaling.connections
        await inject(handle, agent)
        await _reconnected(agent, before)
        await asyncio.sleep(0.2)  # the OK report runs on a worker thread
        # Signaling was down from the drop (UNREACHABLE reported) to the next OK.
        down = next(t for t, c in states if c == "UNREACHABLE")
        delay = next(t for t, c in states if c == "OK" and t > down) - down
        assert delay <= RECONNECT_BUDGET, f"{fault}: reconnected after {delay:.2f} s"
        assert await _frames_grow(echo, 10), f"{fault}: media stopped"
        late = await _watch(settings, f"{fault}-2")
        assert await _frames_grow(echo, 3)
        await late.close()
        await echo.close()
    record_figures(f"signaling_{fault}", reconnect_s=round(delay, 3), budget_s=RECONNECT_BUDGET)
