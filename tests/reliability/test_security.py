"""Security: forged or stale credentials and other accounts' tokens are refused, and no
refusal leaks anything (tokens, user ids, channel names or ARNs, camera names).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

import pytest
import websockets
from botocore.exceptions import ClientError

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.signaling import ssl_context_for
from alexa_doorbell.store.base import Health
from tests import directives as D
from tests.helpers.kvs_master import KvsTestMaster, channel_arn, presign

ALICE, BOB = "amzn1.account.ALICE0000000000", "amzn1.account.BOB00000000000000"
CAMERAS = [
    CameraConfig(
        endpoint_id="alice-door", friendly_name="Alice Door", channel_name="alice-chan", owner=ALICE
    ),
    CameraConfig(
        endpoint_id="bob-garden",
        friendly_name="Bob Secret Garden",
        channel_name="bob-chan",
        owner=BOB,
    ),
]


def _wrong_key_session(settings: Any, *, key: str | None = None, secret: str = "wrong") -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=key or settings.local.aws_access_key_id,
        aws_secret_access_key=secret,
        region_name=settings.region,
    )


def _assert_no_leak(text: str, *secrets: str) -> None:
    for s in secrets:
        assert s not in text, f"{s!r} leaked in {text!r}"


@pytest.mark.parametrize("key", [None, "AKIAWRONGWRONGWRONG0"])
def test_rest_calls_signed_with_the_wrong_key_are_refused(local_cloud, key) -> None:  # type: ignore[no-untyped-def]
    settings = local_cloud
    arn = channel_arn(settings, "front-door")
    bad = _wrong_key_session(settings, key=key)
    kv = api.kinesisvideo_client(bad, settings.endpoint_url())
    calls = [
        lambda: kv.describe_signaling_channel(ChannelName="front-door"),
        lambda: kv.list_signaling_channels(),
        lambda: kv.get_signaling_channel_endpoint(ChannelARN=arn),
        lambda: api.signaling_client(bad, settings.local.url).send_alexa_offer_to_master(
            ChannelARN=arn, SenderClientId="x", MessagePayload="eyJ9"
        ),
        lambda: kv.delete_signaling_channel(ChannelARN=arn),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        resp = err.value.response
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 403
        expected = "InvalidSignatureException" if key is None else "UnrecognizedClientException"
        assert resp["Error"]["Code"] == expected
        _assert_no_leak(json.dumps(resp, default=str), arn, "front-door", "local-cloud-emulator")
    # Nothing was deleted by the forged call.
    assert channel_arn(settings, "front-door") == arn


async def _refused(url: str, settings: Any) -> tuple[int, str]:
    with pytest.raises(websockets.InvalidStatus) as err:
        await websockets.connect(url, ssl=ssl_context_for(settings.ca_file))
    resp = err.value.response
    return resp.status_code, bytes(resp.body or b"").decode("utf-8", "replace")


async def test_presigned_urls_wrong_key_expired_and_replayed(local_cloud, record_figures) -> None:  # type: ignore[no-untyped-def]
    settings = local_cloud
    arn = await asyncio.to_thread(channel_arn, settings, "front-door")
    # Signed with the wrong secret.
    status, body = await _refused(presign(settings, arn, secret_key="wrong"), settings)
    assert status == 403 and "signature" in body.lower(), body
    _assert_no_leak(body, arn, "local-cloud-emulator")
    # Unknown access key.
    status, body = await _refused(
        presign(settings, arn, access_key="AKIANOBODY0000000000"), settings
    )
    assert status == 403
    # Expired: signed 10 minutes ago for 299 s.
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    status, body = await _refused(presign(settings, arn, signed_at=old), settings)
    assert status == 403 and "expired" in body.lower()
    # Tampered: a valid URL pointed at another channel.
    url = presign(settings, arn, "viewer-1")
    status, _ = await _refused(url.replace("viewer-1", "viewer-2"), settings)
    assert status == 403
    # Replayed after expiry: good once, refused once its lifetime has passed.
    short = presign(settings, arn, "viewer-replay", expires=2)
    ws = await websockets.connect(short, ssl=ssl_context_for(settings.ca_file))
    await ws.close()
    await asyncio.sleep(2.2)
    status, body = await _refused(short, settings)
    assert status == 403 and "expired" in body.lower()
    # A master connection made with a forged URL would have displaced the real master:
    # the real one is still there and still gets offers.
    async with KvsTestMaster(settings) as master:
        await _refused(presign(settings, arn, secret_key="wrong"), settings)
        kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
        https = api.get_channel_endpoints(kv, arn, "VIEWER").https
        sig = api.signaling_client(settings.boto_session(), https)
        answer = await asyncio.to_thread(
            api.send_alexa_offer_to_master, sig, arn, "alexa.sec.00000000", "v=0\r\n"
        )
        assert answer.startswith("v=0") and not master.closed.is_set()
    record_figures("security_presigned", refused_cases=5)


@pytest.fixture
def two_users(make_cloud):  # type: ignore[no-untyped-def]
    handle = make_cloud(cameras=CAMERAS, single_user=False, skill_deadline=1.0)
    settings = handle.settings
    skill = build_skill(settings)
    tokens = {}
    for user in (ALICE, BOB):
        who = handle.cloud.lwa.link(user, name=user[-5:], email=f"{user}@example.invalid")
        reply = skill.handle(D.accept_grant(who["code"], who["access_token"]))
        assert reply["event"]["header"]["name"] == "AcceptGrant.Response", reply
        tokens[user] = who["access_token"]
    for cam in CAMERAS:
        skill.store.put_health(Health(cam.endpoint_id, "OK"))
    yield handle, skill, tokens
    skill.store.close()


def _directives(token: str, endpoint_id: str) -> list[dict[str, Any]]:
    return [
        D.initiate_session(token, endpoint_id=endpoint_id),
        D.session_event("SessionConnected", token, endpoint_id=endpoint_id),
        D.session_event("SessionDisconnected", token, endpoint_id=endpoint_id),
        D.report_state(token, endpoint_id=endpoint_id),
    ]


def test_other_users_endpoints_and_foreign_ids_are_refused_alike(two_users, record_figures) -> None:  # type: ignore[no-untyped-def]
    _handle, skill, tokens = two_users
    alice = tokens[ALICE]
    secrets = [alice, tokens[BOB], BOB, ALICE, "Bob Secret Garden", "bob-chan", "alice-chan"]
    refused = 0
    for endpoint_id in ("bob-garden", "carol-frontdoor-from-another-account"):
        for directive in _directives(alice, endpoint_id):
            t0 = time.monotonic()
            reply = skill.handle(directive)
            assert time.monotonic() - t0 < 1.0  # refused before any KVS call
            assert schema_errors(reply) == [], reply
            payload = reply["event"]["payload"]
            assert payload["type"] == "NO_SUCH_ENDPOINT", (endpoint_id, payload)
            # The same words for "someone else's" and "does not exist": nothing to probe.
            assert payload["message"].replace(endpoint_id, "<id>") == (
                "no endpoint '<id>' for this account"
            )
            _assert_no_leak(json.dumps(reply), *secrets)
            refused += 1
    # Nothing was recorded against Bob's camera.
    assert skill.store.list_sessions("bob-garden") == []
    # Discovery shows each user their own cameras only.
    found = skill.handle(D.discover(alice))["event"]["payload"]["endpoints"]
    assert [e["endpointId"] for e in found] == ["alice-door"]
    _assert_no_leak(json.dumps(found), "Bob Secret Garden", "bob-chan", BOB)
    record_figures("security_ownership", refused_directives=refused)


def test_revoked_forged_and_missing_tokens_are_refused(two_users) -> None:  # type: ignore[no-untyped-def]
    handle, warm, tokens = two_users
    forged = "Atza|" + "A" * 60
    handle.cloud.lwa.revoke(BOB)
    # A warm skill trusts a token it resolved for up to token_cache_ttl (300 s; documented):
    # a fresh instance (a new Lambda container, or the warm one after the TTL) refuses it.
    skill = build_skill(handle.settings, warm.store)
    for token, expected in (
        (forged, "INVALID_AUTHORIZATION_CREDENTIAL"),
        (tokens[BOB], "INVALID_AUTHORIZATION_CREDENTIAL"),
    ):
        for directive in [*_directives(token, "bob-garden"), D.discover(token)]:
            reply = skill.handle(directive)
            assert schema_errors(reply) == [], reply
            assert reply["event"]["payload"]["type"] == expected, reply
            _assert_no_leak(json.dumps(reply), token, BOB, "Bob Secret Garden", "bob-chan")
    # A directive without any token.
    bare = D.report_state(tokens[ALICE], endpoint_id="alice-door")
    del bare["directive"]["endpoint"]["scope"]
    reply = skill.handle(bare)
    assert reply["event"]["payload"]["type"] == "INVALID_AUTHORIZATION_CREDENTIAL"
