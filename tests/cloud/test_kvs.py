"""The KVS signaling emulator with real boto3 clients and real websockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import boto3
import httpx
import pytest
import websockets
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from alexa_doorbell.cloud.tls import client_context
from alexa_doorbell.config import Settings
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.messages import (
    ClientMessage,
    MessageError,
    candidate_payload,
    decode_payload,
    decode_sdp,
    sdp_payload,
)
from tests.helpers.kvs_master import ANSWER_SDP, CANDIDATES, KvsTestMaster, presign

OFFER_SDP = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=a 2 z\r\nt=0 0\r\n"


def kv_client(settings: Settings, **session_kw: str):
    session = (
        boto3.session.Session(region_name=settings.region, **session_kw)
        if session_kw
        else settings.boto_session()
    )
    return api.kinesisvideo_client(session, settings.endpoint_url())


def sig_client(settings: Settings, arn: str):
    endpoints = api.get_channel_endpoints(kv_client(settings), arn, "VIEWER")
    assert endpoints.https is not None
    return api.signaling_client(settings.boto_session(), endpoints.https)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


def front_door(settings: Settings) -> str:
    return api.describe_channel_arn(kv_client(settings), "front-door")


# -- control plane -------------------------------------------------------------------


def test_camera_channel_exists_and_endpoints(local_cloud: Settings) -> None:
    kv = kv_client(local_cloud)
    info = kv.describe_signaling_channel(ChannelName="front-door")["ChannelInfo"]
    assert info["ChannelType"] == "SINGLE_MASTER"
    assert info["ChannelStatus"] == "ACTIVE"
    assert info["ChannelARN"].startswith("arn:aws:kinesisvideo:us-east-1:")
    assert info["SingleMasterConfiguration"]["MessageTtlSeconds"] == 60
    again = kv.describe_signaling_channel(ChannelARN=info["ChannelARN"])["ChannelInfo"]
    assert again["ChannelName"] == "front-door"
    for role in ("MASTER", "VIEWER"):
        ep = api.get_channel_endpoints(kv, info["ChannelARN"], role)
        assert ep.wss == f"wss://127.0.0.1:{local_cloud.local.tls_port}"
        assert ep.https == f"http://127.0.0.1:{local_cloud.local.port}"


def test_channel_life_cycle_and_errors(local_cloud: Settings) -> None:
    kv = kv_client(local_cloud)
    arn = kv.create_signaling_channel(
        ChannelName="garage", SingleMasterConfiguration={"MessageTtlSeconds": 5}
    )["ChannelARN"]
    with pytest.raises(ClientError) as exc:
        kv.create_signaling_channel(ChannelName="garage")
    assert error_of(exc) == (400, "ResourceInUseException")
    with pytest.raises(ClientError) as exc:
        kv.create_signaling_channel(
            ChannelName="bad-ttl", SingleMasterConfiguration={"MessageTtlSeconds": 121}
        )
    assert error_of(exc) == (400, "InvalidArgumentException")
    with pytest.raises(ClientError) as exc:
        kv.create_signaling_channel(ChannelName="mesh", ChannelType="FULL_MESH")
    assert error_of(exc) == (400, "InvalidArgumentException")

    names = [c["ChannelName"] for c in kv.list_signaling_channels()["ChannelInfoList"]]
    assert names == ["front-door", "garage"]
    only = kv.list_signaling_channels(
        ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "gar"}
    )["ChannelInfoList"]
    assert [c["ChannelARN"] for c in only] == [arn]
    page = kv.list_signaling_channels(MaxResults=1)
    assert len(page["ChannelInfoList"]) == 1 and page["NextToken"]
    rest = kv.list_signaling_channels(MaxResults=1, NextToken=page["NextToken"])
    assert [c["ChannelName"] for c in rest["ChannelInfoList"]] == ["garage"]
    assert "NextToken" not in rest

    with pytest.raises(ClientError) as exc:
        kv.get_signaling_channel_endpoint(
            ChannelARN=arn,
            SingleMasterChannelEndpointConfiguration={"Protocols": ["WEBRTC"], "Role": "MASTER"},
        )
    assert error_of(exc) == (400, "InvalidArgumentException")
    with pytest.raises(ClientError) as exc:
        kv.delete_signaling_channel(ChannelARN=arn, CurrentVersion="notTheVersion0")
    assert error_of(exc) == (400, "VersionMismatchException")
    version = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    kv.delete_signaling_channel(ChannelARN=arn, CurrentVersion=version)
    for call in (
        lambda: kv.describe_signaling_channel(ChannelARN=arn),
        lambda: kv.describe_signaling_channel(ChannelName="garage"),
        lambda: kv.delete_signaling_channel(ChannelARN=arn),
        lambda: api.get_channel_endpoints(kv, arn, "VIEWER"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as exc:
        kv.describe_signaling_channel(ChannelARN="arn:not-an-arn")
    assert error_of(exc) == (400, "InvalidArgumentException")


def test_a_trailing_newline_is_no_name_arn_or_client_id(make_cloud) -> None:
    """AWS matches botocore's patterns against the whole value (botocore checks none
    of them client side): ``front-door\\n`` is refused, never a channel of its own."""
    settings = make_cloud(local={"offer_wait_max": 1.0}).settings
    kv = kv_client(settings)
    arn = front_door(settings)
    sig = sig_client(settings, arn)
    payload = sdp_payload("offer", OFFER_SDP)
    calls = {
        "create name": lambda: kv.create_signaling_channel(ChannelName="front-door\n"),
        "describe name": lambda: kv.describe_signaling_channel(ChannelName="front-door\n"),
        "describe ARN": lambda: kv.describe_signaling_channel(ChannelARN=arn + "\n"),
        "endpoint ARN": lambda: api.get_channel_endpoints(kv, arn + "\n", "VIEWER"),
        "delete ARN": lambda: kv.delete_signaling_channel(ChannelARN=arn + "\n"),
        "delete version": lambda: kv.delete_signaling_channel(
            ChannelARN=arn, CurrentVersion="v1\n"
        ),
        "list prefix": lambda: kv.list_signaling_channels(
            ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "f\n"}
        ),
        "ICE ARN": lambda: sig.get_ice_server_config(ChannelARN=arn + "\n"),
        "ICE client id": lambda: sig.get_ice_server_config(ChannelARN=arn, ClientId="x\n"),
        "offer ARN": lambda: sig.send_alexa_offer_to_master(
            ChannelARN=arn + "\n", SenderClientId="alexa.x", MessagePayload=payload
        ),
        "offer sender": lambda: sig.send_alexa_offer_to_master(
            ChannelARN=arn, SenderClientId="alexa.x\n", MessagePayload=payload
        ),
        "offer payload": lambda: sig.send_alexa_offer_to_master(
            ChannelARN=arn, SenderClientId="alexa.x", MessagePayload=payload + "\n"
        ),
    }
    for what, call in calls.items():
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == (400, "InvalidArgumentException"), what
    names = [c["ChannelName"] for c in kv.list_signaling_channels()["ChannelInfoList"]]
    assert names == ["front-door"]
    # The patterns themselves are botocore's, as AWS applies them.
    stream_arn = arn.replace(":channel/", ":stream/")  # well formed: not found, not invalid
    with pytest.raises(ClientError) as exc:
        kv.describe_signaling_channel(ChannelARN=stream_arn)
    assert error_of(exc) == (404, "ResourceNotFoundException")
    with pytest.raises(MessageError):
        ClientMessage.parse(
            json.dumps(
                {"action": "SDP_ANSWER", "messagePayload": "e30=", "recipientClientId": "v\n"}
            )
        )


def test_channels_persist_across_restart(make_cloud, tmp_path) -> None:
    first = make_cloud(tmp_path / "d")
    arn = kv_client(first.settings).create_signaling_channel(ChannelName="porch")["ChannelARN"]
    camera_arn = front_door(first.settings)
    first.stop()
    second = make_cloud(tmp_path / "d")
    kv = kv_client(second.settings)
    assert kv.describe_signaling_channel(ChannelName="porch")["ChannelInfo"]["ChannelARN"] == arn
    assert front_door(second.settings) == camera_arn


# -- SigV4 ---------------------------------------------------------------------------------


def test_wrong_secret_and_unknown_key_are_refused(local_cloud: Settings) -> None:
    bad_secret = kv_client(
        local_cloud,
        aws_access_key_id=local_cloud.local.aws_access_key_id,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError) as exc:
        bad_secret.list_signaling_channels()
    assert error_of(exc) == (403, "InvalidSignatureException")
    assert "signature we calculated does not match" in str(exc.value)
    unknown = kv_client(local_cloud, aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key="x")
    with pytest.raises(ClientError) as exc:
        unknown.list_signaling_channels()
    assert error_of(exc) == (403, "UnrecognizedClientException")
    arn = front_door(local_cloud)
    sig = api.signaling_client(
        boto3.session.Session(
            aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key="x", region_name="us-east-1"
        ),
        local_cloud.local.url,
    )
    with pytest.raises(ClientError) as exc:
        sig.get_ice_server_config(ChannelARN=arn)
    assert error_of(exc) == (403, "UnrecognizedClientException")


def _signed_post(settings: Settings, path: str, body: bytes, when: dt.datetime) -> httpx.Response:
    url = settings.local.url + path
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    creds = Credentials(
        settings.local.aws_access_key_id, settings.local.aws_secret_access_key.get_secret_value()
    )
    signer = SigV4Auth(creds, "kinesisvideo", settings.region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    return httpx.post(url, content=body, headers=dict(request.headers.items()))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/listSignalingChannels", {"ChannelNameCondition": "front"}),
        ("/createSignalingChannel", {"ChannelName": "x", "SingleMasterConfiguration": [60]}),
        (
            "/getSignalingChannelEndpoint",
            {"ChannelARN": "<front-door>", "SingleMasterChannelEndpointConfiguration": "VIEWER"},
        ),
    ],
)
def test_fields_of_the_wrong_type_get_a_400(local_cloud: Settings, path: str, body: dict) -> None:
    """Hand-made requests (boto3 validates types itself) get AWS's error, not a 500."""
    if body.get("ChannelARN") == "<front-door>":
        body = {**body, "ChannelARN": front_door(local_cloud)}
    reply = _signed_post(local_cloud, path, json.dumps(body).encode(), dt.datetime.now(dt.UTC))
    assert reply.status_code == 400, reply.text
    assert reply.headers["x-amzn-ErrorType"] == "SerializationException"
    assert reply.json()["message"].startswith("A field has the wrong type")


def test_unsigned_tampered_and_stale_requests_are_refused(local_cloud: Settings) -> None:
    path = "/listSignalingChannels"
    now = dt.datetime.now(dt.UTC)
    ok = _signed_post(local_cloud, path, b"{}", now)
    assert ok.status_code == 200, ok.text
    unsigned = httpx.post(local_cloud.local.url + path, content=b"{}")
    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    stale = _signed_post(local_cloud, path, b"{}", now - dt.timedelta(minutes=6))
    assert stale.status_code == 403
    assert stale.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert stale.json()["message"].startswith("Signature expired")
    # The body is signed: changing it after signing breaks the signature.
    url = local_cloud.local.url + path
    request = AWSRequest(method="POST", url=url, data=b"{}")
    SigV4Auth(
        Credentials(
            local_cloud.local.aws_access_key_id,
            local_cloud.local.aws_secret_access_key.get_secret_value(),
        ),
        "kinesisvideo",
        "us-east-1",
    ).add_auth(request)
    tampered = httpx.post(url, content=b'{"MaxResults": 1}', headers=dict(request.headers.items()))
    assert tampered.status_code == 403
    assert tampered.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


async def test_presigned_url_refusals(local_cloud: Settings) -> None:
    arn = await asyncio.to_thread(front_door, local_cloud)
    ssl = client_context(local_cloud.ca_file)
    cases = {
        "expired": presign(
            local_cloud, arn, signed_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=300)
        ),
        "wrong secret": presign(local_cloud, arn, secret_key="nope"),
        "unknown key": presign(local_cloud, arn, access_key="AKIAUNKNOWN"),
        "tampered": presign(local_cloud, arn, "viewer-1").replace("viewer-1", "viewer-2"),
        "unsigned": f"{local_cloud.local.wss_url}/?X-Amz-ChannelARN={arn}",
    }
    expected = {
        "expired": "AccessDeniedException",
        "wrong secret": "InvalidSignatureException",
        "unknown key": "UnrecognizedClientException",
        "tampered": "InvalidSignatureException",
        "unsigned": "MissingAuthenticationTokenException",
    }
    for name, url in cases.items():
        with pytest.raises(websockets.InvalidStatus) as exc:
            await websockets.connect(url, ssl=ssl)
        response = exc.value.response
        assert response.status_code == 403, name
        assert response.headers["x-amzn-ErrorType"] == expected[name], name
    # Unknown channel: 404 like the REST API.
    missing = arn.replace("front-door", "nowhere")
    with pytest.raises(websockets.InvalidStatus) as exc:
        await websockets.connect(presign(local_cloud, missing), ssl=ssl)
    assert exc.value.response.status_code == 404
    # A trailing newline makes neither a channel ARN nor a client id.
    for url in (presign(local_cloud, arn + "\n"), presign(local_cloud, arn, "viewer-1\n")):
        with pytest.raises(websockets.InvalidStatus) as exc:
            await websockets.connect(url, ssl=ssl)
        assert exc.value.response.status_code == 400
        assert exc.value.response.headers["x-amzn-ErrorType"] == "InvalidArgumentException"


# -- WebSocket routing ------------------------------------------------------------------


async def test_master_viewer_routing(local_cloud: Settings) -> None:
    async with (
        KvsTestMaster(local_cloud, candidates=CANDIDATES) as master,
        KvsTestMaster(local_cloud, client_id="viewer-a", answer=None) as viewer,
    ):
        await viewer.send("SDP_OFFER", sdp_payload("offer", OFFER_SDP), correlation_id="c1")
        answer = await viewer.next("SDP_ANSWER")
        assert decode_sdp(answer.message_payload, "answer") == ANSWER_SDP
        cands = [await viewer.next("ICE_CANDIDATE") for _ in CANDIDATES]
        assert [decode_payload(c.message_payload)["candidate"] for c in cands] == [
            c[0] for c in CANDIDATES
        ]
        assert master.offers == [("viewer-a", OFFER_SDP)]
        # viewer → master carries the viewer's id as senderClientId
        await viewer.send("ICE_CANDIDATE", candidate_payload("candidate:9 1 udp 1 x 1", "0", 0))
        got = await master.next("ICE_CANDIDATE")
        assert got.sender_client_id == "viewer-a"


async def test_bad_messages_get_status_response(local_cloud: Settings) -> None:
    async with KvsTestMaster(local_cloud) as master:
        await master.send_raw("not json")
        status = await master.next("STATUS_RESPONSE")
        assert status.status_response["statusCode"] == "400"
        await master.send_raw(
            json.dumps({"action": "DANCE", "messagePayload": "e30=", "correlationId": "k"})
        )
        status = await master.next("STATUS_RESPONSE")
        assert status.status_response["correlationId"] == "k"
        # a master must name the recipient
        await master.send("SDP_ANSWER", sdp_payload("answer", ANSWER_SDP))
        status = await master.next("STATUS_RESPONSE")
        assert "recipientClientId" in status.status_response["description"]


async def test_eleventh_viewer_is_refused(local_cloud: Settings) -> None:
    arn = await asyncio.to_thread(front_door, local_cloud)
    ssl = client_context(local_cloud.ca_file)
    viewers = [
        await websockets.connect(presign(local_cloud, arn, f"v{i}"), ssl=ssl) for i in range(10)
    ]
    try:
        with pytest.raises(websockets.InvalidStatus) as exc:
            await websockets.connect(presign(local_cloud, arn, "v10"), ssl=ssl)
        assert exc.value.response.status_code == 400
        assert exc.value.response.headers["x-amzn-ErrorType"] == "ClientLimitExceededException"
        # The same ClientId reconnecting replaces its old connection instead.
        again = await websockets.connect(presign(local_cloud, arn, "v3"), ssl=ssl)
        await asyncio.wait_for(viewers[3].wait_closed(), 5)
        await again.close()
    finally:
        for ws in viewers:
            await ws.close()


async def test_plain_ws_on_http_port(local_cloud: Settings) -> None:
    arn = await asyncio.to_thread(front_door, local_cloud)
    url = presign(local_cloud, arn, endpoint=f"ws://127.0.0.1:{local_cloud.local.port}")
    async with (
        KvsTestMaster(local_cloud, url=url),
        KvsTestMaster(local_cloud, client_id="plain", answer=None) as viewer,
    ):
        await viewer.send("SDP_OFFER", sdp_payload("offer", OFFER_SDP))
        assert (await viewer.next("SDP_ANSWER")).message_payload


# -- SendAlexaOfferToMaster -------------------------------------------------------------


async def test_send_alexa_offer_to_master_round_trip(local_cloud: Settings) -> None:
    arn = await asyncio.to_thread(front_door, local_cloud)
    sig = await asyncio.to_thread(sig_client, local_cloud, arn)
    sender = "alexa.amzn1_session_1.0a1b2c3d"
    async with KvsTestMaster(local_cloud, candidates=CANDIDATES) as master:
        t0 = time.monotonic()
        answer = await asyncio.to_thread(
            api.send_alexa_offer_to_master, sig, arn, sender, OFFER_SDP
        )
        elapsed = time.monotonic() - t0
    assert answer == ANSWER_SDP
    assert master.offers == [(sender, OFFER_SDP)]
    assert elapsed < 2.0
    # coturn's credentials when it is installed (tests/camera/test_ice.py), else none.
    ice = await asyncio.to_thread(sig.get_ice_server_config, ChannelARN=arn, ClientId="x")
    assert all(s["Username"].endswith(":x") and s["Ttl"] == 300 for s in ice["IceServerList"])


async def test_offer_reaches_a_master_that_connects_late(local_cloud: Settings) -> None:
    arn = await asyncio.to_thread(front_door, local_cloud)
    sig = await asyncio.to_thread(sig_client, local_cloud, arn)
    call = asyncio.create_task(
        asyncio.to_thread(api.send_alexa_offer_to_master, sig, arn, "alexa.late.1", OFFER_SDP)
    )
    await asyncio.sleep(0.5)
    async with KvsTestMaster(local_cloud):
        assert await asyncio.wait_for(call, 5) == ANSWER_SDP


def test_send_alexa_offer_without_master_is_bounded(make_cloud) -> None:
    handle = make_cloud(local={"offer_wait_max": 1.0})
    settings = handle.settings
    arn = front_door(settings)
    sig = sig_client(settings, arn)
    t0 = time.monotonic()
    reply = sig.send_alexa_offer_to_master(
        ChannelARN=arn, SenderClientId="alexa.none.1", MessagePayload=sdp_payload("offer", "v=0")
    )
    elapsed = time.monotonic() - t0
    assert "Answer" not in reply
    assert 0.9 < elapsed < 3.0
    with pytest.raises(MessageError):
        api.send_alexa_offer_to_master(sig, arn, "alexa.none.2", "v=0")
    with pytest.raises(ClientError) as exc:
        sig.send_alexa_offer_to_master(
            ChannelARN=arn, SenderClientId="bad id!", MessagePayload="e30="
        )
    assert error_of(exc) == (400, "InvalidArgumentException")
    with pytest.raises(ClientError) as exc:
        sig.send_alexa_offer_to_master(
            ChannelARN=arn.replace("front-door", "gone"),
            SenderClientId="alexa.x",
            MessagePayload="e30=",
        )
    assert error_of(exc) == (404, "ResourceNotFoundException")


async def test_idle_timeout_and_go_away(make_cloud) -> None:
    idle = make_cloud(local={"idle_timeout": 0.5}).settings
    async with KvsTestMaster(idle) as master:
        await asyncio.wait_for(master.closed.wait(), 3)
        assert [m.message_type for m in master.received] == []
    aged = make_cloud(local={"connection_max_age": 0.8}).settings
    async with KvsTestMaster(aged) as master:
        t0 = time.monotonic()
        go_away = await master.next("GO_AWAY", timeout=3)
        assert go_away.message_type == "GO_AWAY"
        await asyncio.wait_for(master.closed.wait(), 3)
        assert 0.7 < time.monotonic() - t0 < 3


async def test_messages_wait_for_a_late_recipient(local_cloud: Settings) -> None:
    # A viewer's offer sent before the master connects is delivered when it does (TTL).
    async with KvsTestMaster(local_cloud, client_id="early", answer=None) as viewer:
        await viewer.send("SDP_OFFER", sdp_payload("offer", OFFER_SDP))
        await asyncio.sleep(0.2)
        async with KvsTestMaster(local_cloud) as master:
            answer = await viewer.next("SDP_ANSWER")
            assert decode_sdp(answer.message_payload, "answer") == ANSWER_SDP
            assert master.offers == [("early", OFFER_SDP)]
