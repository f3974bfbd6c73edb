"""The camera agent as the KVS MASTER of the local cloud: Alexa, browser viewers, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from botocore.credentials import Credentials

from alexa_doorbell.camera import rtc_hooks
from alexa_doorbell.camera.agent import CameraAgent, store_connectivity
from alexa_doorbell.camera.sdp import summarize
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.messages import (
    ClientMessage,
    ServerMessage,
    candidate_payload,
    decode_sdp,
    refusal_reason,
    sdp_payload,
)
from alexa_doorbell.kvs.presign import presign_wss_url
from alexa_doorbell.kvs.signaling import SignalingClient, ssl_context_for
from alexa_doorbell.skill.rtc import sender_client_id
from alexa_doorbell.store import open_store
from alexa_doorbell.store.base import RtcSession
from tests.helpers.viewer import FrameCollector

SMALL = [CameraConfig(width=320, height=240, fps=15, audio="tone")]


def _alexa(settings: Settings) -> Callable[[str, str], str]:
    """SendAlexaOfferToMaster through boto3, as the skill calls it."""
    kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
    arn = api.describe_channel_arn(kv, "front-door")
    sig = api.signaling_client(
        settings.boto_session(), api.get_channel_endpoints(kv, arn, "VIEWER").https
    )

    def send(sender: str, offer: str) -> str:
        return api.send_alexa_offer_to_master(sig, arn, sender, offer)

    return send


async def _frames_grow(echo: EchoShow, more: int, timeout: float = 8.0) -> bool:
    target = echo.report().frames + more
    return await echo.wait_frames(target, timeout) >= target


async def test_alexa_offer_through_kvs_and_session_disconnected(make_cloud) -> None:  # type: ignore[no-untyped-def]
    settings = make_cloud(cameras=SMALL).settings
    store = open_store(settings.store_location)
    agent = CameraAgent(
        settings, store=store, on_connectivity=store_connectivity(store), preset="ultrafast"
    )
    await agent.start()
    try:
        await agent.wait_ready(10)
        await asyncio.sleep(0.2)
        assert store.get_health("front-door").connectivity == "OK"
        send = _alexa(settings)
        session_id = "amzn1.rtc.session/e1"
        peer = sender_client_id(session_id)
        echo = EchoShow()
        answer = await echo.watch(lambda offer: asyncio.to_thread(send, peer, offer))
        assert summarize(answer).first("video").codec_names() == ["H264"]
        assert await _frames_grow(echo, 15)
        assert echo.report().answer_ms < 1000
        # the skill records SessionDisconnected; the agent tears the session down
        store.put_session(RtcSession(session_id, "front-door", "DISCONNECTED"))
        for _ in range(40):
            if peer not in agent.sessions:
                break
            await asyncio.sleep(0.1)
        assert peer not in agent.sessions
        await echo.close()
    finally:
        await agent.stop()
        assert store.get_health("front-door").connectivity == "UNREACHABLE"
        store.close()


async def test_trickle_viewer_like_a_browser(local_cloud: Settings) -> None:
    settings = local_cloud
    async with CameraAgent(settings, preset="ultrafast") as agent:
        await agent.wait_ready(10)
        kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
        arn = api.describe_channel_arn(kv, "front-door")
        wss = api.get_channel_endpoints(kv, arn, "VIEWER").wss
        inbox: asyncio.Queue[ServerMessage] = asyncio.Queue()
        viewer = SignalingClient(
            lambda: presign_wss_url(
                wss,
                arn,
                settings.boto_session().get_credentials(),
                settings.region,
                client_id="browser-1",
            ),
            inbox.put,
            role="VIEWER",
            ssl_context=ssl_context_for(settings.ca_file),
        )
        viewer.start()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            await viewer.wait_connected(10)
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="sendrecv")

            received = FrameCollector(pc)
            await pc.setLocalDescription(await pc.createOffer())
            full = pc.localDescription.sdp
            # a browser sends the offer first and its candidates one by one after it
            lines = full.split("\r\n")
            candidates = [ln[2:] for ln in lines if ln.startswith("a=candidate:")]
            bare = "\r\n".join(
                ln for ln in lines if not ln.startswith(("a=candidate:", "a=end-of-candidates"))
            )
            await viewer.send(ClientMessage("SDP_OFFER", sdp_payload("offer", bare)))
            for cand in dict.fromkeys(candidates):
                await viewer.send(ClientMessage("ICE_CANDIDATE", candidate_payload(cand, "0", 0)))
            msg = await asyncio.wait_for(inbox.get(), 10)
            assert msg.message_type == "SDP_ANSWER"
            answer = decode_sdp(msg.message_payload, "answer")
            assert summarize(answer).first("video").codec_names()[0] == "H264"
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            assert await received.wait(5) >= 5
            session = agent.sessions["browser-1"]
            transceiver = session.pc.getTransceivers()[0]
            ice = rtc_hooks.ice_connection(transceiver)
            # the trickled candidates reached the camera's ICE agent
            assert {c.port for c in ice.remote_candidates} >= {
                int(c.split()[5]) for c in candidates
            }
        finally:
            await pc.close()
            await viewer.stop()


async def test_busy_and_garbage_offers_get_a_refusal_answer(make_cloud) -> None:  # type: ignore[no-untyped-def]
    settings = make_cloud(cameras=SMALL, max_viewers=1).settings
    async with CameraAgent(settings, preset="ultrafast") as agent:
        await agent.wait_ready(10)
        send = _alexa(settings)
        echo = EchoShow()
        await echo.watch(lambda o: asyncio.to_thread(send, sender_client_id("s1"), o))
        second = EchoShow()
        busy = await asyncio.to_thread(send, sender_client_id("s2"), await second.create_offer())
        assert refusal_reason(busy) == "ENDPOINT_BUSY"
        await second.close()
        garbage = await asyncio.to_thread(send, "alexa.s3.00000000", "v=0\r\nnot an offer\r\n")
        assert refusal_reason(garbage) == "INVALID_DIRECTIVE"
        assert await _frames_grow(echo, 5)  # the first viewer is unaffected
        assert agent.stats()["refused"] == 1 and agent.stats()["rejected"] == 1
        await echo.close()


async def test_go_away_reconnects_and_sessions_keep_their_media(make_cloud) -> None:  # type: ignore[no-untyped-def]
    settings = make_cloud(cameras=SMALL, local={"connection_max_age": 1.0}).settings
    states: list[str] = []
    async with CameraAgent(
        settings, preset="ultrafast", on_connectivity=lambda _e, c: states.append(c)
    ) as agent:
        await agent.wait_ready(10)
        send = _alexa(settings)
        echo = EchoShow()
        await echo.watch(lambda o: asyncio.to_thread(send, sender_client_id("g1"), o))
        await asyncio.sleep(2.5)
        assert agent.signaling.connections >= 2  # GO_AWAY, then a freshly signed URL
        assert await _frames_grow(echo, 10)  # media never depended on signaling
        await agent.wait_ready(5)
        late = EchoShow()
        answer = await late.watch(lambda o: asyncio.to_thread(send, sender_client_id("g2"), o))
        assert refusal_reason(answer) is None
        assert await _frames_grow(late, 3)
        await echo.close()
        await late.close()
    assert "OK" in states and states[-1] == "UNREACHABLE"


async def test_presigned_url_shape_and_wrong_secret(local_cloud: Settings) -> None:
    settings = local_cloud
    kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
    arn = api.describe_channel_arn(kv, "front-door")
    wss = api.get_channel_endpoints(kv, arn, "MASTER").wss
    creds = settings.boto_session().get_credentials()
    url = presign_wss_url(wss, arn, creds, settings.region)
    q = parse_qs(urlsplit(url).query)
    assert q["X-Amz-ChannelARN"] == [arn] and "X-Amz-ClientId" not in q
    assert q["X-Amz-Expires"] == ["299"] and q["X-Amz-SignedHeaders"] == ["host"]
    assert q["X-Amz-Credential"][0].endswith(f"/{settings.region}/kinesisvideo/aws4_request")
    with pytest.raises(ValueError, match="wss://"):
        presign_wss_url(wss.replace("wss://", "https://"), arn, creds, settings.region)
    bad = presign_wss_url(wss, arn, Credentials(creds.access_key, "wrong"), settings.region)
    with pytest.raises(websockets.InvalidStatus) as err:
        await websockets.connect(bad, ssl=ssl_context_for(settings.ca_file))
    assert err.value.response.status_code == 403
    ws = await websockets.connect(url, ssl=ssl_context_for(settings.ca_file))
    await ws.close()


async def test_connection_errors_never_log_the_presigned_signature(caplog) -> None:  # type: ignore[no-untyped-def]
    """A wrong endpoint makes websockets quote the whole URL: the signature is cut."""
    secret_bits = "X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIAEXAMPLE"
    client = SignalingClient(
        lambda: f"https://127.0.0.1:1/?X-Amz-ChannelARN=arn&{secret_bits}",  # not wss://
        lambda message: None,
        ssl_context=ssl_context_for(None),
        backoff_initial=0.05,
        backoff_max=0.05,
    )
    client.start()
    try:
        for _ in range(100):
            if client.last_error:
                break
            await asyncio.sleep(0.02)
    finally:
        await client.stop()
    assert client.last_error and "InvalidURI" in client.last_error, client.last_error
    assert "deadbeefcafe" not in client.last_error and "AKIAEXAMPLE" not in client.last_error
    assert "deadbeefcafe" not in caplog.text and "AKIAEXAMPLE" not in caplog.text
