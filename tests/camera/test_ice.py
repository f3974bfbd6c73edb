"""The camera's STUN and TURN: KVS's STUN by default in AWS, the KVS list and the
transport choice, credentials kept fresh, relays over UDP and TLS gathered past aiortc's
one-server limit, the UDP-blocked shortcut and the one line a failed session logs.

The relays are the local cloud's coturn on loopback (tests/cloud/test_turn.py); those tests
skip, saying so, where Debian's coturn is not installed. The routed topology is
tests/reliability/test_nat.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from alexa_doorbell.camera import gather, ice
from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.camera.sdp import summarize
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.config import CameraConfig, Settings
from tests.helpers.ice import BlackHole, ice_config, needs_coturn

SMALL = [CameraConfig(width=320, height=240, fps=15, audio="tone")]
# What KVS's GetIceServerConfig returns (the URI order seen in the SDKs' logs).
KVS_LIKE = [
    {
        "Uris": [
            "turn:127.0.0.1:3478?transport=udp",
            "turns:127-0-0-1.t-1.kinesisvideo.us-east-1.amazonaws.com:443?transport=udp",
            "turns:127-0-0-1.t-1.kinesisvideo.us-east-1.amazonaws.com:443?transport=tcp",
        ],
        "Username": "1700000300:channel",
        "Password": "pw",
        "Ttl": 300,
    }
]


# -- pure parts ----------------------------------------------------------------------------
def test_kvs_stun_and_turn_are_the_default_in_aws_only() -> None:
    assert Settings(cloud="aws", region="eu-west-1").stun_urls == [
        "stun:stun.kinesisvideo.eu-west-1.amazonaws.com:443"
    ]
    assert Settings(cloud="aws", stun_urls=[]).stun_urls == []  # explicitly none
    assert Settings(cloud="aws", stun_urls=["stun:10.0.0.1"]).stun_urls == ["stun:10.0.0.1"]
    assert Settings(cloud="local").stun_urls == []
    # TURN too, where the figures say it costs a round trip (bench/ice_bench.py).
    assert Settings(cloud="aws").use_turn is True
    assert Settings(cloud="aws", use_turn=False).use_turn is False
    assert Settings(cloud="local").use_turn is False
    with pytest.raises(ValueError, match="not a STUN URL"):
        Settings(cloud="aws", stun_urls=["stun.l.google.com:19302"])


def test_kvs_ice_server_list_and_the_transport_choice() -> None:
    servers = ice.turn_servers(KVS_LIKE, now=1000.0)
    # turns: over UDP would be DTLS, which aioice cannot speak: skipped.
    assert [(s.kind, s.port) for s in servers] == [("udp", 3478), ("tls", 443)]
    assert all(s.expires == 1300.0 for s in servers)
    assert [s.kind for s in ice.choose_relays(servers, "udp")] == ["udp"]
    assert [s.kind for s in ice.choose_relays(servers, "tls")] == ["tls"]
    assert [s.kind for s in ice.choose_relays(servers, "auto")] == ["udp", "tls"]
    # aiortc alone would keep only the first usable URI: the UDP one.
    from aiortc import RTCIceServer
    from aiortc.rtcicetransport import connection_kwargs

    e = KVS_LIKE[0]
    kw = connection_kwargs([RTCIceServer(e["Uris"], e["Username"], e["Password"])])
    assert (kw["turn_transport"], kw["turn_ssl"]) == ("udp", False)


def test_no_media_reasons_name_the_setting() -> None:
    plan = ice.IcePlan(stun=("127.0.0.1", 9), stun_url="stun:127.0.0.1:9")
    report = gather.GatherReport(plan, host=1, stun="no answer", elapsed=2.0)
    line = gather.no_media_reason(report)
    assert "did not answer" in line and "use_turn = true" in line
    plan = ice.IcePlan(use_turn=True, turn_transport="udp")
    report = gather.GatherReport(plan, host=1, relays={"udp": "no answer"}, elapsed=2.0)
    assert 'turn_transport = "auto"' in gather.no_media_reason(report)


class FakeKvs:
    """GetIceServerConfig as a callable: counts calls, can fail, Ttl chosen by the test."""

    def __init__(self, ttl: int = 300) -> None:
        self.ttl, self.calls, self.fail = ttl, 0, False

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("endpoint unreachable")
        return [{**KVS_LIKE[0], "Ttl": self.ttl, "Username": f"u{self.calls}"}]


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_turn_credentials_are_fetched_ahead_and_refreshed_before_they_expire() -> None:
    now = [1000.0]
    kvs = FakeKvs(ttl=300)
    settings = Settings(cloud="aws", stun_urls=[], use_turn=True)
    servers = ice.IceServers(settings, kvs, clock=lambda: now[0])
    await servers.start()
    try:
        await _until(lambda: kvs.calls == 1)  # fetched at start, before any offer
        plan = await servers.plan()
        assert [r.username for r in plan.relays] == ["u1", "u1"] and kvs.calls == 1
        now[0] += 0.8 * 300 + 1  # past the refresh point, well before the Ttl ends
        plan = await servers.plan()  # this offer does not wait: the old ones still work
        assert [r.username for r in plan.relays] == ["u1", "u1"]
        await _until(lambda: kvs.calls == 2)
        assert [r.username for r in (await servers.plan()).relays] == ["u2", "u2"]
        # A failed refresh keeps the credentials it has while they last...
        kvs.fail = True
        now[0] += 250
        assert (await servers.plan()).relays
        await _until(lambda: kvs.calls == 3)
        # ...and once they are gone the offer says why there is no relay.
        now[0] += 100
        plan = await servers.plan()
        assert plan.relays == () and "endpoint unreachable" in (plan.turn_error or "")
        # KVS's RECONNECT_ICE_SERVER: fetch again at once.
        kvs.fail = False
        calls = kvs.calls
        servers.refresh_soon()
        await _until(lambda: kvs.calls > calls)
        assert (await servers.plan()).relays
    finally:
        await servers.stop()


# -- coturn on loopback --------------------------------------------------------------------
@pytest.fixture
def turn_cloud(make_cloud: Any) -> Iterator[CloudThread]:
    handle = make_cloud(cameras=SMALL)
    yield handle


def _relay_candidates(sdp: str) -> set[str]:
    """The answer's relay candidates (each bundled m-line repeats them)."""
    return {c.strip() for c in re.findall(r"a=candidate:(.*)", sdp) if " typ relay" in c}


@needs_coturn
@pytest.mark.parametrize(
    ("transport", "expect"),
    [("udp", {"udp"}), ("tls", {"tls"}), ("auto", {"udp"})],
)
async def test_agent_answers_with_relays_of_the_chosen_transport(
    turn_cloud: CloudThread, tmp_path: Path, transport: str, expect: set[str]
) -> None:
    settings = turn_cloud.settings.model_copy(
        update={"use_turn": True, "turn_transport": transport, "cameras": SMALL}
    )
    agent = CameraAgent(settings, signaling=False, preset="ultrafast")
    await agent.start()
    echo = EchoShow()
    try:
        await _until(lambda: agent.ice.fetches >= 1)
        answer = await echo.watch(lambda offer: agent.handle_offer("viewer-1", offer))
        session = agent.sessions["viewer-1"]
        report = gather.report_of(session.pc)
        assert report is not None
        ok = {k for k, v in report.relays.items() if v.startswith("ok")}
        assert ok == expect, report.relays
        if transport == "auto":  # UDP reached the server: the TLS relay was not needed
            assert report.relays["tls"].startswith("not needed")
        relays = _relay_candidates(answer)
        assert len(relays) == len(expect), relays
        assert await echo.wait_frames(5, timeout=10) >= 5
        assert agent.ice.fetches == 1  # the offer used the credentials fetched at start
    finally:
        await echo.close()
        await agent.stop()


@needs_coturn
async def test_udp_blocked_costs_a_tls_handshake_not_the_whole_timeout(
    turn_cloud: CloudThread,
) -> None:
    """STUN and the UDP relay unanswered, the TLS relay there: gathering ends soon after it."""
    settings = turn_cloud.settings
    reply = await asyncio.to_thread(ice_config, settings)
    servers = ice.turn_servers(reply["IceServerList"], time.time())
    hole = BlackHole()
    try:
        udp = next(s for s in servers if s.kind == "udp")
        udp = udp.__class__(**{**udp.__dict__, "port": hole.port})
        tls = next(s for s in servers if s.kind == "tls")
        plan = ice.IcePlan(
            stun=("127.0.0.1", hole.port),
            stun_url=f"stun:127.0.0.1:{hole.port}",
            relays=(udp, tls),
            timeout=2.0,
            tls_context=ice.IceServers(settings).tls_context,
            use_turn=True,
        )
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="sendonly")
        offer = await pc.createOffer()
        gather.prepare(pc, plan)
        t0 = time.monotonic()
        await pc.setLocalDescription(offer)
        took = time.monotonic() - t0
        report = gather.report_of(pc)
        assert report is not None
        assert report.relays["tls"].startswith("ok") and report.relays["udp"] == "no answer"
        assert report.stun == "no answer"
        assert took < 1.0, report.summary()  # not the 2 s bound
        sdp = summarize(pc.localDescription.sdp)
        assert sdp.first("video") is not None
        assert len(_relay_candidates(pc.localDescription.sdp)) == 1
        await pc.close()
    finally:
        hole.close()
