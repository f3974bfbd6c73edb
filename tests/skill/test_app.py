"""The skill end to end against the local cloud: real LWA emulator, real KVS emulator
(with a test MASTER over WSS), real SQLite. Every reply is checked against Amazon's schema."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.request

import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.amazon.lwa import LwaClient
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.messages import sdp_payload
from alexa_doorbell.store.base import Device, Health
from tests import directives as D
from tests.helpers.kvs_master import KvsTestMaster
from tests.sdp_samples import ECHO_SHOW_OFFER

ANSWER = (
    "v=0\r\no=- 7 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE audio video\r\n"
    "m=audio 50000 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n"
)


def post(settings, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        settings.local.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def link(settings, user_id: str) -> dict:
    return post(settings, "/_local/lwa/link", {"user_id": user_id})


def check(reply: dict, namespace: str, name: str) -> dict:
    assert schema_errors(reply) == [], reply
    header = reply["event"]["header"]
    assert (header["namespace"], header["name"]) == (namespace, name), reply["event"]["payload"]
    return reply["event"]["payload"]


def error_type(reply: dict) -> str:
    check(reply, reply["event"]["header"]["namespace"], "ErrorResponse")
    return reply["event"]["payload"]["type"]


@pytest.fixture
def skill(local_cloud, tmp_path):
    local_cloud.skill_deadline = 2.0
    s = build_skill(local_cloud)
    yield s
    s.store.close()


@pytest.fixture
def owner(local_cloud, skill) -> dict:
    """A user who linked the skill (AcceptGrant done), with the camera online."""
    who = link(local_cloud, "amzn1.account.OWNER")
    check(
        skill.handle(D.accept_grant(who["code"], who["access_token"])),
        "Alexa.Authorization",
        "AcceptGrant.Response",
    )
    skill.store.put_health(Health("front-door", "OK"))
    return who


# -- AcceptGrant ------------------------------------------------------------------
def test_accept_grant_stores_tokens_that_refresh(local_cloud, skill, owner):
    tokens = skill.store.get_tokens("amzn1.account.OWNER")
    assert tokens is not None and tokens.access_token.startswith("Atza|")
    assert tokens.refresh_token.startswith("Atzr|")
    assert tokens.expires_in() > 3000 and tokens.region == "NA" and not tokens.relink_needed
    # The stored refresh token is a real one: LWA refreshes it.
    lwa = LwaClient(local_cloud.lwa_url, *local_cloud.lwa_credentials())
    assert lwa.refresh(tokens.refresh_token).access_token.startswith("Atza|")


def test_accept_grant_failures_name_the_cause(local_cloud, skill):
    who = link(local_cloud, "amzn1.account.B")
    # A bad grantee token fails before the one-time code is spent...
    reply = skill.handle(D.accept_grant(who["code"], "Atza|not-a-token"))
    assert error_type(reply) == "ACCEPT_GRANT_FAILED"
    assert reply["event"]["header"]["namespace"] == "Alexa.Authorization"
    # ...so the same code still works.
    ok = skill.handle(D.accept_grant(who["code"], who["access_token"]))
    check(ok, "Alexa.Authorization", "AcceptGrant.Response")
    again = skill.handle(D.accept_grant(who["code"], who["access_token"]))
    assert error_type(again) == "ACCEPT_GRANT_FAILED"
    assert "invalid_grant" in again["event"]["payload"]["message"]


def test_accept_grant_with_wrong_client_secret_mentions_skill_messaging(local_cloud, tmp_path):
    from pydantic import SecretStr

    local_cloud.lwa_client_id = local_cloud.local.lwa_client_id
    local_cloud.lwa_client_secret = SecretStr("account-linking-secret-by-mistake")
    s = build_skill(local_cloud)
    who = link(local_cloud, "amzn1.account.C")
    reply = s.handle(D.accept_grant(who["code"], who["access_token"]))
    assert error_type(reply) == "ACCEPT_GRANT_FAILED"
    msg = reply["event"]["payload"]["message"]
    assert "Alexa Skill Messaging" in msg and "account-linking" in msg
    assert "by-mistake" not in json.dumps(reply)
    assert s.store.get_tokens("amzn1.account.C") is None


def test_accept_grant_when_lwa_is_down(local_cloud, skill):
    who = link(local_cloud, "amzn1.account.D")
    skill.handle(D.discover(who["access_token"]))  # profile cached; token calls will fail
    post(local_cloud, "/_local/lwa/faults", {"status": 503, "count": 2})
    reply = skill.handle(D.accept_grant(who["code"], who["access_token"]))
    assert error_type(reply) == "ACCEPT_GRANT_FAILED"
    assert "unavailable" in reply["event"]["payload"]["message"]


# -- Discover ---------------------------------------------------------------------
def test_discover_lists_the_owners_cameras_only(local_cloud, skill, owner):
    skill.store.put_device(Device("someone-elses", "Theirs", "theirs", owner="amzn1.account.X"))
    payload = check(
        skill.handle(D.discover(owner["access_token"])), "Alexa.Discovery", "Discover.Response"
    )
    [bell] = payload["endpoints"]
    assert bell["endpointId"] == "front-door"
    assert bell["displayCategories"] == ["CAMERA", "DOORBELL"]
    rtc = next(c for c in bell["capabilities"] if c["interface"] == "Alexa.RTCSessionController")
    # The default camera has no speaker (sink "discard"): no talk, so not full duplex.
    assert rtc["configuration"]["isFullDuplexAudioSupported"] is False

    # Another Amazon account with a valid token, but it never linked: nothing to see.
    stranger = link(local_cloud, "amzn1.account.STRANGER")
    payload = check(
        skill.handle(D.discover(stranger["access_token"])), "Alexa.Discovery", "Discover.Response"
    )
    assert payload["endpoints"] == []
    # The owner of a device with an explicit owner sees it.
    x = link(local_cloud, "amzn1.account.X")
    payload = check(
        skill.handle(D.discover(x["access_token"])), "Alexa.Discovery", "Discover.Response"
    )
    assert [e["endpointId"] for e in payload["endpoints"]] == ["someone-elses"]


def test_bad_tokens(skill):
    assert error_type(skill.handle(D.discover("Atza|forged"))) == (
        "INVALID_AUTHORIZATION_CREDENTIAL"
    )
    no_scope = D.directive("Alexa.Discovery", "Discover", {})
    assert error_type(skill.handle(no_scope)) == "INVALID_AUTHORIZATION_CREDENTIAL"
    assert error_type(skill.handle(D.report_state("Atza|forged"))) == (
        "INVALID_AUTHORIZATION_CREDENTIAL"
    )


def test_profile_lookups_are_cached(local_cloud, skill, owner):
    calls = []
    real = skill.lwa.profile
    skill.lwa.profile = lambda t: calls.append(1) or real(t)
    for _ in range(3):
        skill.handle(D.report_state(owner["access_token"]))
    assert len(calls) == 0  # resolved once during AcceptGrant, then cached


# -- InitiateSessionWithOffer -------------------------------------------------------
async def test_offer_reaches_the_master_and_the_answer_comes_back(local_cloud, skill, owner):
    async with KvsTestMaster(local_cloud, answer=ANSWER) as master:
        reply = await asyncio.to_thread(skill.handle, D.initiate_session(owner["access_token"]))
        payload = check(reply, "Alexa.RTCSessionController", "AnswerGeneratedForSession")
        assert payload == {"answer": {"format": "SDP", "value": ANSWER}}
        assert reply["event"]["endpoint"]["endpointId"] == "front-door"
        [(sender, offer)] = master.offers
        assert offer == ECHO_SHOW_OFFER
        assert re.fullmatch(
            r"alexa\.amzn1\.echo-api\.session\.5e2a7d8c-4b7e-4f0b-9f3a-1c2d3e4f5a6b\.[0-9a-f]{8}",
            sender,
        )
        # A warm second offer reuses the channel look-ups.
        odd = "sess/with spaces+and=signs"
        reply = await asyncio.to_thread(
            skill.handle, D.initiate_session(owner["access_token"], session_id=odd)
        )
        check(reply, "Alexa.RTCSessionController", "AnswerGeneratedForSession")
        assert re.fullmatch(r"alexa\.sess_with_spaces_and_signs\.[0-9a-f]{8}", master.offers[1][0])
    assert skill.kvs.stats == {"describe": 1, "get_endpoint": 1, "send": 2}
    assert skill.store.get_session(D.SESSION_ID).state == "OFFERED"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("ENDPOINT_BUSY", "ENDPOINT_BUSY"),
        ("INVALID_DIRECTIVE", "INVALID_DIRECTIVE"),
        ("SOMETHING_NEW", "INTERNAL_ERROR"),
    ],
)
async def test_camera_refusals_become_their_error_types(
    local_cloud, skill, owner, reason, expected
):
    """A camera at its viewer limit (or unable to answer) refuses; Alexa hears why."""
    from alexa_doorbell.camera.sdp import refusal_answer

    def refuse(_sender: str, offer: str) -> str:
        return refusal_answer(offer, reason)

    async with KvsTestMaster(local_cloud, answer=refuse):
        reply = await asyncio.to_thread(skill.handle, D.initiate_session(owner["access_token"]))
    assert error_type(reply) == expected
    assert "camera" in reply["event"]["payload"]["message"]


async def test_silent_camera_is_unreachable_within_the_deadline(local_cloud, skill, owner):
    skill.deadline = 1.0
    # No master at all.
    t0 = time.monotonic()
    reply = await asyncio.to_thread(skill.handle, D.initiate_session(owner["access_token"]))
    assert error_type(reply) == "ENDPOINT_UNREACHABLE"
    assert time.monotonic() - t0 < 1.6
    # A master that is connected but never answers.
    async with KvsTestMaster(local_cloud, answer=None) as master:
        t0 = time.monotonic()
        reply = await asyncio.to_thread(skill.handle, D.initiate_session(owner["access_token"]))
        assert error_type(reply) == "ENDPOINT_UNREACHABLE"
        assert time.monotonic() - t0 < 1.6
        assert (await master.next("SDP_OFFER")).sender_client_id.startswith("alexa.")


async def test_offline_camera_fails_fast_without_touching_kvs(local_cloud, skill, owner):
    skill.store.put_health(Health("front-door", "UNREACHABLE"))
    async with KvsTestMaster(local_cloud, answer=ANSWER) as master:
        t0 = time.monotonic()
        reply = await asyncio.to_thread(skill.handle, D.initiate_session(owner["access_token"]))
        assert error_type(reply) == "ENDPOINT_UNREACHABLE"
        assert time.monotonic() - t0 < 0.3
        assert master.offers == []
    # A heartbeat older than health_max_age counts as offline too.
    skill.store.put_health(Health("front-door", "OK", time.time() - 3600))
    assert error_type(skill.handle(D.initiate_session(owner["access_token"]))) == (
        "ENDPOINT_UNREACHABLE"
    )
    assert skill.kvs.stats["send"] == 0


def test_missing_channel_is_unreachable(local_cloud, skill, owner):
    skill.store.put_device(Device("ghost", "Ghost", "no-such-channel"))
    skill.store.put_health(Health("ghost", "OK"))
    reply = skill.handle(D.initiate_session(owner["access_token"], endpoint_id="ghost"))
    assert error_type(reply) == "ENDPOINT_UNREACHABLE"
    assert "no-such-channel" in reply["event"]["payload"]["message"]


@pytest.mark.parametrize(
    "payload",
    [
        {"sessionId": "s"},
        {"offer": {"format": "SDP", "value": ECHO_SHOW_OFFER}},
        {"sessionId": "s", "offer": {"format": "JSON", "value": "{}"}},
        {"sessionId": "s", "offer": {"format": "SDP", "value": "v=0" + "a" * 9000}},
    ],
)
def test_bad_offers_are_invalid_directives(skill, owner, payload):
    d = D.directive(
        "Alexa.RTCSessionController",
        "InitiateSessionWithOffer",
        payload,
        token=owner["access_token"],
        endpoint_id="front-door",
    )
    assert error_type(skill.handle(d)) == "INVALID_DIRECTIVE"


# An offer with loopback candidates only, grown to an exact SendAlexaOfferToMaster size.
_BASE_OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=a 2 z\r\nt=0 0\r\n"
    "m=video 1 UDP/TLS/RTP/SAVPF 99\r\nc=IN IP4 127.0.0.1\r\n"
    "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0\r\n"
)


def sized_offer(payload_chars: int, line: str) -> str:
    """An offer of ``line`` repeated whose KVS MessagePayload is exactly ``payload_chars``."""
    size = lambda sdp: len(sdp_payload("offer", sdp))  # noqa: E731 - the exact payload
    sdp = _BASE_OFFER
    while size(sdp + line + "\r\n") <= payload_chars - 64:
        sdp += line + "\r\n"
    pad = ""
    while size(sdp + f"a=x-pad:{pad}\r\n") < payload_chars:
        pad += "p"
    sdp += f"a=x-pad:{pad}\r\n"
    assert size(sdp) == payload_chars
    return sdp


@pytest.mark.parametrize(
    "line",
    [
        "a=x",  # many CRLFs: each is 2 characters of SDP, 4 of JSON
        "a=x-note:T\u00fcrklingel \u2603",  # non-ASCII: 1 character of SDP, 6 of JSON
    ],
    ids=["crlf", "non-ascii"],
)
async def test_offer_size_is_the_payload_kvs_would_carry(local_cloud, skill, owner, caplog, line):
    """Over KVS's 10,000 characters (base64 of the offer as JSON) is INVALID_DIRECTIVE
    before any KVS call, with no OFFERED row and no word of the channel; at the limit
    the offer goes through."""
    channel = "porch-channel-7"
    await asyncio.to_thread(
        lambda: api.kinesisvideo_client(
            local_cloud.boto_session(), local_cloud.endpoint_url()
        ).create_signaling_channel(ChannelName=channel)
    )
    skill.store.put_device(Device("porch", "Porch", channel))
    skill.store.put_health(Health("porch", "OK"))
    over, fits = sized_offer(10_004, line), sized_offer(10_000, line)
    assert (len(over) + 30) * 4 // 3 < 10_000  # what an estimate from the SDP length said
    async with KvsTestMaster(local_cloud, channel, answer=ANSWER) as master:
        with caplog.at_level(logging.DEBUG):
            reply = await asyncio.to_thread(
                skill.handle,
                D.initiate_session(owner["access_token"], "porch", "too-big", offer=over),
            )
        assert error_type(reply) == "INVALID_DIRECTIVE"
        assert "10,000" in reply["event"]["payload"]["message"]
        assert channel not in json.dumps(reply) and channel not in caplog.text
        assert skill.kvs.stats == {"describe": 0, "get_endpoint": 0, "send": 0}
        assert skill.store.get_session("too-big") is None
        assert skill.store.list_sessions("porch") == []

        reply = await asyncio.to_thread(
            skill.handle, D.initiate_session(owner["access_token"], "porch", "fits", offer=fits)
        )
        check(reply, "Alexa.RTCSessionController", "AnswerGeneratedForSession")
        assert [offer for _, offer in master.offers] == [fits]
        assert skill.store.get_session("fits").state == "OFFERED"


def test_foreign_endpoint_is_no_such_endpoint(local_cloud, skill, owner):
    stranger = link(local_cloud, "amzn1.account.STRANGER")
    for d in (
        D.initiate_session(stranger["access_token"]),
        D.report_state(stranger["access_token"]),
        D.session_event("SessionDisconnected", stranger["access_token"]),
        D.report_state(owner["access_token"], endpoint_id="nope"),
    ):
        reply = skill.handle(d)
        assert error_type(reply) == "NO_SUCH_ENDPOINT"
        assert "scope" not in reply["event"].get("endpoint", {})  # no token echoed in errors


class _RecordingStore:
    """The skill's real store, with a record of every call and its arguments."""

    def __init__(self, store) -> None:
        self._store = store
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return attr(*args, **kwargs)

        return call


def test_an_endpoint_id_with_a_newline_never_reaches_the_store(skill, owner, caplog):
    """``^...$`` with .match lets "front-door\\n" through; Amazon's pattern does not."""
    skill.store = _RecordingStore(skill.store)
    token = owner["access_token"]
    for d in (
        D.initiate_session(token, endpoint_id="front-door\n"),
        D.session_event("SessionConnected", token, endpoint_id="front-door\n"),
        D.session_event("SessionDisconnected", token, endpoint_id="front-door\n"),
        D.report_state(token, endpoint_id="front-door\n"),
    ):
        reply = skill.handle(d)
        assert error_type(reply) == "INVALID_DIRECTIVE"
        assert "endpoint" not in reply["event"]  # nothing echoed that Amazon would refuse
    assert skill.store.calls == []
    assert skill.kvs.stats["send"] == 0
    assert skill.store.get_session(D.SESSION_ID) is None
    # Nor does a messageId with a newline forge a line of the skill's log.
    d = D.report_state(token)
    d["directive"]["header"]["messageId"] = "m-1\nINFO forged line"
    with caplog.at_level(logging.INFO, logger="alexa_doorbell.skill"):
        check(skill.handle(d), "Alexa", "StateReport")
    assert not any("\n" in r.getMessage() for r in caplog.records)


# -- Session events, ReportState, the rest ---------------------------------------------
def test_session_connected_and_disconnected_are_recorded(skill, owner):
    for name, state in (("SessionConnected", "CONNECTED"), ("SessionDisconnected", "DISCONNECTED")):
        reply = skill.handle(D.session_event(name, owner["access_token"]))
        assert check(reply, "Alexa.RTCSessionController", name) == {"sessionId": D.SESSION_ID}
        assert reply["event"]["header"]["correlationToken"]
        assert skill.store.get_session(D.SESSION_ID).state == state
    assert [s.state for s in skill.store.list_sessions("front-door")] == ["DISCONNECTED"]


def test_report_state(skill, owner):
    def connectivity() -> str:
        reply = skill.handle(D.report_state(owner["access_token"]))
        check(reply, "Alexa", "StateReport")
        [prop] = reply["context"]["properties"]
        assert prop["namespace"] == "Alexa.EndpointHealth" and prop["name"] == "connectivity"
        return prop["value"]["value"]

    assert connectivity() == "OK"
    skill.store.put_health(Health("front-door", "UNREACHABLE"))
    assert connectivity() == "UNREACHABLE"
    skill.store.put_health(Health("front-door", "OK", time.time() - skill.health_max_age - 1))
    assert connectivity() == "UNREACHABLE"


def test_unsupported_and_malformed(skill, owner):
    reply = skill.handle(
        D.directive(
            "Alexa.PowerController", "TurnOn", token=owner["access_token"], endpoint_id="front-door"
        )
    )
    assert error_type(reply) == "INVALID_DIRECTIVE"
    assert reply["event"]["header"]["correlationToken"]
    assert error_type(skill.handle({"directive": "nope"})) == "INVALID_DIRECTIVE"
    assert error_type(skill.handle(None)) == "INVALID_DIRECTIVE"


def test_store_failure_is_internal_error(skill, owner):
    skill.store.close()
    reply = skill.handle(D.report_state(owner["access_token"]))
    assert error_type(reply) == "INTERNAL_ERROR"
