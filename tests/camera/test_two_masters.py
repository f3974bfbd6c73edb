"""Two camera agents on one channel: the newer one serves, the older one says so and waits.

KVS lets the most recent MASTER connection of a channel take precedence. Before, the
replaced agent reconnected within a second, replaced the other, and the two took turns
forever without a word. Now the local cloud closes the replaced connection with
CLOSE_MASTER_REPLACED, and that agent logs one warning and backs off.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.kvs.signaling import SignalingClient, ssl_context_for
from tests.helpers.kvs_master import channel_arn, presign

SMALL = [CameraConfig(width=160, height=120, fps=5, audio="silence")]


def _master(settings: Settings, **options: float) -> SignalingClient:
    arn = channel_arn(settings, "front-door")
    return SignalingClient(
        lambda: presign(settings, arn),
        lambda _msg: None,
        role="MASTER",
        ssl_context=ssl_context_for(settings.ca_file),
        backoff_max=1.5,  # what the agent uses: a dropped line is back within 2 s
        name="front-door",
        **options,
    )


def _replacement_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "alexa_doorbell.kvs.signaling" and "took it over" in r.getMessage()
    ]


async def test_a_replaced_master_warns_once_and_backs_off(
    local_cloud: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = _master(local_cloud, replaced_backoff=1.0)
    second = _master(local_cloud, replaced_backoff=1.0)
    first.start()
    try:
        await first.wait_connected(10)
        second.start()
        await second.wait_connected(10)
        await asyncio.sleep(0.5)
        assert not first.connected.is_set() and first.replaced
        assert first.last_error == "replaced by another MASTER of the channel"
        [warning] = _replacement_warnings(caplog)
        assert "channel front-door" in warning and "waits 1 s" in warning
        assert "channel_name" in warning
        # After its wait it takes the channel back (the newest connection wins)...
        await first.wait_connected(5)
        assert first.connections == 2
        # ...and now the other one waits; each one's next wait is twice as long.
        await asyncio.sleep(0.3)
        assert not second.connected.is_set() and second.replaced
        await asyncio.sleep(1.8)
        waits = [w.split("waits ")[1].split(" s")[0] for w in _replacement_warnings(caplog)]
        assert waits[:3] == ["1", "1", "2"], waits
        # Without the backoff they take turns every 0.25-0.5 s: over 10 connections by now.
        assert first.connections + second.connections <= 5, (
            first.connections,
            second.connections,
        )
    finally:
        await first.stop()
        await second.stop()


async def test_an_ordinary_drop_is_no_replacement(make_cloud) -> None:  # type: ignore[no-untyped-def]
    """GO_AWAY and the cloud's own closes still reconnect at once (no long wait)."""
    settings = make_cloud(local={"connection_max_age": 1.0}).settings
    client = _master(settings, replaced_backoff=60.0)
    client.start()
    try:
        await client.wait_connected(10)
        await asyncio.sleep(2.5)
        assert client.connections >= 2 and not client.replaced and client.replacements == 0
    finally:
        await client.stop()


async def test_two_agents_on_one_channel(
    make_cloud,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Real agents: the one started second serves; the first warns and reports nothing
    that would make Alexa think the camera went away."""
    caplog.set_level(logging.INFO)
    settings = make_cloud(cameras=SMALL).settings
    first_states: list[str] = []
    second_states: list[str] = []
    first = CameraAgent(
        settings, preset="ultrafast", on_connectivity=lambda _e, c: first_states.append(c)
    )
    second = CameraAgent(
        settings, preset="ultrafast", on_connectivity=lambda _e, c: second_states.append(c)
    )
    await first.start()
    try:
        await first.wait_ready(10)
        await second.start()
        await second.wait_ready(10)
        await asyncio.sleep(2.0)
        assert second.signaling.connected.is_set()
        assert not first.signaling.connected.is_set()
        assert first.signaling.connections == 1 and second.signaling.connections == 1
        assert len(_replacement_warnings(caplog)) == 1
        assert first_states == ["OK"]  # no UNREACHABLE: another agent serves the camera
        assert second_states == ["OK"]
    finally:
        await second.stop()
        await first.stop()
