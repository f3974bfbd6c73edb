"""The official KVS WebRTC JS SDK, in Debian's Chromium, against the emulator.

As VIEWER: the master is an aiortc peer behind the test signaling client; it
answers the SDK's offer, sends its ICE candidates, takes the browser's
trickled ones, and a data channel proves the two peers really connected.
As MASTER: boto3's SendAlexaOfferToMaster carries an aiortc offer to the SDK,
whose answer comes back as the API's Answer (Alexa's own path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from alexa_doorbell.config import Settings
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.messages import candidate_payload, decode_payload
from tests.helpers.chromium import chromium, requires_chromium
from tests.helpers.http_stub import LoopbackServer, QuietHandler
from tests.helpers.kvs_master import KvsTestMaster, channel_arn

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "node_modules" / "amazon-kinesis-video-streams-webrtc" / "dist" / "kvs-webrtc.min.js"
PAGE = Path(__file__).parent / "kvs_viewer.html"

pytestmark = [
    pytest.mark.browser,
    requires_chromium,
    pytest.mark.skipif(
        not SDK.exists(), reason="node_modules is missing: run scripts/setup-test-deps (npm ci)"
    ),
]


def sdk_config(settings: Settings, arn: str, **extra: str) -> dict[str, str]:
    """What the page hands to the SDK's SignalingClient (it signs the URL itself)."""
    return {
        "channelARN": arn,
        "endpoint": settings.local.wss_url,
        "region": settings.region,
        "accessKeyId": settings.local.aws_access_key_id,
        "secretAccessKey": settings.local.aws_secret_access_key.get_secret_value(),
        **extra,
    }


class AiortcMaster:
    """An aiortc answerer behind the KVS test master."""

    def __init__(self) -> None:
        # No ICE servers: with none given aiortc asks Google's public STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pings: list[str] = []

        @self.pc.on("datachannel")
        def on_channel(channel) -> None:  # type: ignore[no-untyped-def]
            @channel.on("message")
            def on_message(message: str) -> None:
                self.pings.append(message)
                channel.send("pong")

    async def answer(self, offer: str, sender: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def candidates(self) -> list[tuple[str, str, int]]:
        sdp = self.pc.localDescription.sdp
        lines = [ln[2:] for ln in sdp.splitlines() if ln.startswith("a=candidate:")]
        return [(line, "0", 0) for line in lines]

    async def add_remote(self, payload: str) -> None:
        obj = decode_payload(payload)
        text = obj["candidate"]
        if not text:
            return
        cand = candidate_from_sdp(text.split(":", 1)[1])
        cand.sdpMid = obj.get("sdpMid")
        cand.sdpMLineIndex = obj.get("sdpMLineIndex")
        await self.pc.addIceCandidate(cand)


FILES = {"/index.html": (PAGE, "text/html"), "/kvs-webrtc.min.js": (SDK, "text/javascript")}


class _Files(QuietHandler):
    def do_GET(self) -> None:
        path, ctype = FILES.get(self.path, (None, ""))
        if path is None:
            self.send_error(404)
            return
        self.reply(200, path.read_bytes(), ctype)


@pytest.fixture
def pages() -> Iterator[str]:
    """The page and the SDK bundle, served from loopback: a secure context (the SDK
    signs with WebCrypto) that Chromium's local-network checks let reach 127.0.0.1."""
    server = LoopbackServer(_Files)
    yield server.url
    server.close()


async def test_official_sdk_viewer_against_emulator(local_cloud: Settings, pages: str) -> None:
    arn = await asyncio.to_thread(channel_arn, local_cloud, "front-door")
    peer = AiortcMaster()
    master = KvsTestMaster(local_cloud, answer=peer.answer)
    await master.connect()

    async def relay_candidates() -> None:
        while True:
            msg = await master.next("ICE_CANDIDATE", timeout=60)
            await peer.add_remote(msg.message_payload)

    relay = asyncio.create_task(relay_candidates())
    try:
        async with chromium("--ignore-certificate-errors") as browser:
            context = await browser.new_context(ignore_https_errors=True)
            page = await context.new_page()
            await page.goto(f"{pages}/index.html")
            await page.evaluate(
                "cfg => window.runViewer(cfg)",
                sdk_config(local_cloud, arn, clientId="chromium-viewer"),
            )
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            try:
                await page.wait_for_function("window.results.answer !== null", timeout=15000)
            except Exception:
                pytest.fail(f"no answer: {await page.evaluate('window.results')} {console}")
            # The master's candidates go to the viewer as ICE_CANDIDATE messages.
            for cand, mid, index in peer.candidates():
                await master.send(
                    "ICE_CANDIDATE", candidate_payload(cand, mid, index), "chromium-viewer"
                )
            try:
                await page.wait_for_function(
                    "window.results.candidates.length > 0 && window.results.pong === 'pong'",
                    timeout=15000,
                )
            except Exception:
                pytest.fail(f"not connected: {await page.evaluate('window.results')}")
            results = await page.evaluate("window.results")
    finally:
        relay.cancel()
        await master.close()
        await peer.pc.close()

    assert results["opened"]
    assert results["answer"]["type"] == "answer"
    assert results["answer"]["sdp"] == peer.pc.localDescription.sdp
    assert len(results["candidates"]) == len(peer.candidates())
    assert results["errors"] == [] and results["status"] == []
    assert master.offers and master.offers[0][0] == "chromium-viewer"
    assert "m=application" in master.offers[0][1]
    assert peer.pings == ["ping"]


async def test_official_sdk_master_answers_send_alexa_offer(
    local_cloud: Settings, pages: str
) -> None:
    """Alexa's path with a browser camera: boto3 SendAlexaOfferToMaster → SDK MASTER → Answer."""
    arn = await asyncio.to_thread(channel_arn, local_cloud, "front-door")
    sig = await asyncio.to_thread(
        lambda: api.signaling_client(
            local_cloud.boto_session(),
            api.get_channel_endpoints(
                api.kinesisvideo_client(local_cloud.boto_session(), local_cloud.endpoint_url()),
                arn,
                "VIEWER",
            ).https,
        )
    )
    alexa = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = alexa.createDataChannel("probe")
    pong = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: channel.send("ping"))
    channel.on("message", lambda m: pong.done() or pong.set_result(m))
    await alexa.setLocalDescription(await alexa.createOffer())
    sender = "alexa.amzn1_echo_session.1a2b3c4d"
    try:
        async with chromium("--ignore-certificate-errors") as browser:
            page = await (await browser.new_context(ignore_https_errors=True)).new_page()
            await page.goto(f"{pages}/index.html")
            await page.evaluate("cfg => window.runMaster(cfg)", sdk_config(local_cloud, arn))
            await page.wait_for_function("window.results.opened", timeout=10000)
            answer = await asyncio.to_thread(
                api.send_alexa_offer_to_master, sig, arn, sender, alexa.localDescription.sdp
            )
            await alexa.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            assert await asyncio.wait_for(pong, 15) == "pong"
            results = await page.evaluate("window.results")
    finally:
        await alexa.close()
    assert results["offers"] == [sender]
    assert results["pong"] == "ping"
    assert results["errors"] == [] and results["status"] == []
    assert "a=candidate:" in answer
