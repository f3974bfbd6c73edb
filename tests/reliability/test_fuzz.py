"""Hostile input: the SDP normaliser, the signaling codec and the directive parser never crash;
the skill answers 10,000 random directives with schema-valid ErrorResponses only; a
hostile signaling peer cannot hurt the camera agent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.errors import InvalidDirective
from alexa_doorbell.alexa.schema import is_valid, schema_errors
from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.camera.sdp import OfferError, normalize_offer, summarize
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.messages import (
    ClientMessage,
    MessageError,
    ServerMessage,
    decode_payload,
    decode_sdp,
    encode_payload,
    refusal_reason,
    sdp_payload,
)
from alexa_doorbell.skill.rtc import sender_client_id
from alexa_doorbell.store.base import Health
from tests import directives as D
from tests.helpers.kvs_master import KvsTestMaster
from tests.reliability.conftest import ROOT, child_env
from tests.sdp_samples import ECHO_SHOW_OFFER

SMALL = [CameraConfig(width=320, height=240, fps=15, audio="tone")]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
SDP_LINES = st.sampled_from(
    [
        "a=rtpmap:99 H264/90000",
        "a=rtpmap:abc H264/90000",
        "a=rtpmap:99",
        "a=fmtp:99",
        "a=fmtp:99 packetization-mode=1;profile-level-id=zzzzzz",
        "a=fmtp:99 profile-level-id=64001f",
        "a=rtcp-fb:* nack",
        "a=rtcp-fb:99",
        "m=video 0 UDP/TLS/RTP/SAVPF",
        "m=video 1 UDP/TLS/RTP/SAVPF 99 99 99",
        "m=audio 1 RTP/AVP 0",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "m=video abc UDP/TLS/RTP/SAVPF 99",
        "a=candidate:1 1 udp 1 127.0.0.1 5 typ host",
        "a=candidate:garbage",
        "a=ssrc:1 cname:x",
        "a=ssrc:abc",
        "a=ssrc-group:FID 1",
        "a=group:BUNDLE",
        "a=mid:",
        "a=extmap:99999 urn:x",
        "a=setup:foo",
        "a=fingerprint:sha-256",
        "a=ice-ufrag:",
        "a=sendrecv",
        "a=inactive",
        "c=IN IP4",
        "b=AS:abc",
        "t=0",
        "o=-",
        "",
        "\x00",
        "x" * 5000,
    ]
)


# -- SDP normaliser -----------------------------------------------------------------
@FUZZ
@given(st.text(max_size=2000))
def test_sdp_normaliser_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(OfferError):
        summarize(normalize_offer(text).sdp)


@FUZZ
@given(data=st.data(), edits=st.integers(1, 6))
def test_sdp_normaliser_on_mutated_echo_offers(data: Any, edits: int) -> None:
    lines = ECHO_SHOW_OFFER.split("\r\n")
    for _ in range(edits):
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate", "dup"]))
        i = data.draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "insert":
            lines.insert(i, data.draw(SDP_LINES))
        elif op == "delete" and lines:
            del lines[i]
        elif op == "replace" and lines:
            lines[i] = data.draw(SDP_LINES)
        elif op == "truncate" and lines:
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
        elif op == "dup" and lines:
            lines.insert(i, lines[i])
    sep = data.draw(st.sampled_from(["\r\n", "\n"]))
    with contextlib.suppress(OfferError):
        normalize_offer(sep.join(lines))


@pytest.fixture(scope="module")
def offline_agent():  # type: ignore[no-untyped-def]
    """An agent without signaling: handle_offer alone, as each SDP_OFFER reaches it."""
    from alexa_doorbell.config import Settings

    loop = asyncio.new_event_loop()
    agent = CameraAgent(
        Settings(cameras=SMALL, ice_gather_timeout=0.5), signaling=False, preset="ultrafast"
    )
    loop.run_until_complete(agent.start())
    yield loop, agent
    loop.run_until_complete(agent.stop())
    loop.close()


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), edits=st.integers(1, 4))
def test_agent_answers_or_refuses_mutated_offers(offline_agent, data: Any, edits: int) -> None:
    """The normaliser does not promise aiortc can parse what it passes (e.g. a malformed
    c= line); the agent turns any failure to answer into OfferError, one session only."""
    loop, agent = offline_agent
    lines = ECHO_SHOW_OFFER.split("\r\n")
    for _ in range(edits):
        i = data.draw(st.integers(0, len(lines) - 1))
        if data.draw(st.booleans()):
            lines.insert(i, data.draw(SDP_LINES))
        else:
            lines[i] = data.draw(SDP_LINES)
    peer = f"fuzz-{data.draw(st.integers(0, 3))}"

    async def run() -> None:
        try:
            answer = await agent.handle_offer(peer, "\r\n".join(lines))
            assert answer.startswith("v=0")
        except OfferError:
            pass
        finally:
            await agent.close_session(peer, "fuzz example done")

    loop.run_until_complete(run())
    assert agent.sessions == {}


# -- signaling codec --------------------------------------------------------------
def _message_objects() -> Any:
    key = st.sampled_from(
        [
            "action",
            "messageType",
            "messagePayload",
            "recipientClientId",
            "senderClientId",
            "correlationId",
            "statusResponse",
        ]
    )
    value = st.one_of(
        JSON,
        st.sampled_from(["SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE", "GO_AWAY", "STATUS_RESPONSE"]),
        st.just(sdp_payload("offer", "v=0\r\n")),
    )
    return st.dictionaries(key, value, max_size=7)


@FUZZ
@given(obj=st.one_of(_message_objects(), JSON))
def test_signaling_parsers_on_wrong_types(obj: Any) -> None:
    text = json.dumps(obj)
    for parse in (ServerMessage.parse, ClientMessage.parse):
        with contextlib.suppress(MessageError):
            parse(text)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_signaling_parsers_on_arbitrary_bytes(raw: Any) -> None:
    for parse in (ServerMessage.parse, ClientMessage.parse):
        with contextlib.suppress(MessageError):
            parse(raw)


@FUZZ
@given(
    payload=st.one_of(
        st.text(max_size=200),
        st.builds(lambda b: base64.b64encode(b).decode(), st.binary(max_size=200)),
        st.builds(lambda o: base64.b64encode(json.dumps(o).encode()).decode(), JSON),
    )
)
def test_payload_decoders(payload: str) -> None:
    for decode in (decode_payload, lambda p: decode_sdp(p, "offer")):
        with contextlib.suppress(MessageError):
            decode(payload)


def test_oversized_and_deeply_nested_messages() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for text in (
        json.dumps({"action": "SDP_OFFER", "messagePayload": "A" * 5_000_000}),
        json.dumps({"messageType": "SDP_OFFER", "messagePayload": "A" * 5_000_000}),
        deep,
        '{"action": ' + deep + "}",
        '{"messageType": ' + deep + "}",
    ):
        for parse in (ServerMessage.parse, ClientMessage.parse):
            with contextlib.suppress(MessageError):
                parse(text)
    with pytest.raises(MessageError):
        decode_payload(base64.b64encode(deep.encode()).decode())


# -- directive parser ---------------------------------------------------------------
@FUZZ
@given(event=JSON)
def test_directive_parser_on_arbitrary_json(event: Any) -> None:
    with contextlib.suppress(InvalidDirective):
        Directive.parse(event)


def test_directive_parser_on_deep_nesting() -> None:
    event: Any = {}
    for _ in range(100_000):
        event = {"directive": event}
    with pytest.raises(InvalidDirective):
        Directive.parse(event)


# -- atheris ----------------------------------------------------------------------
SEEDS = {
    "sdp": [ECHO_SHOW_OFFER],
    "signaling": [
        ServerMessage("SDP_OFFER", sdp_payload("offer", ECHO_SHOW_OFFER), "viewer-1").to_json(),
        ClientMessage("ICE_CANDIDATE", encode_payload({"candidate": "c"}), "v", "1").to_json(),
    ],
    "directive": [json.dumps(D.initiate_session("Atza|x")), json.dumps(D.discover("Atza|x"))],
}
ATHERIS_RUNS = 20_000


@pytest.mark.parametrize("target", list(SEEDS))
def test_atheris(target: str, tmp_path: Path, record_figures) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("atheris", reason="atheris does not install on this platform")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS[target]):
        (corpus / f"seed{i}").write_text(seed)
    t0 = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("fuzz_atheris.py")),
            target,
            f"-runs={ATHERIS_RUNS}",
            "-max_len=12000",
            "-seed=1",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    done = [ln for ln in out.stderr.splitlines() if "DONE" in ln]
    record_figures(
        f"atheris_{target}",
        runs=ATHERIS_RUNS,
        seconds=round(time.monotonic() - t0, 1),
        libfuzzer=done[-1].split("DONE", 1)[1].strip() if done else "",
    )


# -- 10,000 random directives through the skill -------------------------------------
NAMES = [
    ("Alexa.Discovery", "Discover"),
    ("Alexa.Authorization", "AcceptGrant"),
    ("Alexa.RTCSessionController", "InitiateSessionWithOffer"),
    ("Alexa.RTCSessionController", "SessionConnected"),
    ("Alexa.RTCSessionController", "SessionDisconnected"),
    ("Alexa", "ReportState"),
    ("Alexa.PowerController", "TurnOn"),
    ("Alexa.RTCSessionController", "Bogus"),
    ("", ""),
]


def _junk(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 3, 2**63, 1e308, float("nan")])
    if kind == 3:
        return "".join(rng.choices(string.printable, k=rng.randrange(0, 40)))
    if kind == 4:
        return rng.choice(["", "v=0\r\n", "SDP", "3", "x" * 20_000, "\u0000\ud7ff😀", "Atza|AAAA"])
    if kind == 5:
        return base64.b64encode(rng.randbytes(rng.randrange(1, 60))).decode()
    if kind == 6:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["type", "token", "value", "format", "sessionId", "offer", "x"]): _junk(
            rng, depth + 1
        )
        for _ in range(rng.randrange(4))
    }


def random_directive(rng: random.Random, tokens: list[str]) -> Any:
    """A directive damaged in up to three random ways, then broken for certain."""
    namespace, name = rng.choice(NAMES)
    token = rng.choice(tokens)
    endpoint = rng.choice(["front-door"] * 4 + ["no-such-camera", "x" * 300, "bad id", "", 7])
    payload: Any = {
        "Discover": {"scope": {"type": "BearerToken", "token": token}},
        "AcceptGrant": {
            "grant": {"type": "OAuth2.AuthorizationCode", "code": "ANnotacode"},
            "grantee": {"type": "BearerToken", "token": token},
        },
        "InitiateSessionWithOffer": {
            "sessionId": "s-1",
            "offer": {"format": "SDP", "value": ECHO_SHOW_OFFER},
        },
    }.get(name, {"sessionId": "s-1"})
    event: Any = {
        "directive": {
            "header": {
                "namespace": namespace,
                "name": name,
                "messageId": "m-1",
                "payloadVersion": "3",
                "correlationToken": "c-1",
            },
            "endpoint": {"endpointId": endpoint, "scope": {"type": "BearerToken", "token": token}},
            "payload": payload,
        }
    }
    paths = [
        ("directive",),
        ("directive", "header"),
        ("directive", "header", "namespace"),
        ("directive", "header", "name"),
        ("directive", "header", "messageId"),
        ("directive", "header", "payloadVersion"),
        ("directive", "header", "correlationToken"),
        ("directive", "endpoint"),
        ("directive", "endpoint", "endpointId"),
        ("directive", "endpoint", "scope"),
        ("directive", "endpoint", "scope", "token"),
        ("directive", "payload"),
    ]
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        path = rng.choice(paths)
        parent = event
        try:
            for key in path[:-1]:
                parent = parent[key]
            if rng.random() < 0.3:
                del parent[path[-1]]
            else:
                parent[path[-1]] = _junk(rng)
        except (KeyError, TypeError, IndexError):
            pass
    return _break(rng, event)


def _break(rng: random.Random, event: Any) -> Any:
    """The last damage, one that no earlier mutation can undo: the directive must fail."""
    d = event.get("directive") if isinstance(event, dict) else None
    header = d.get("header") if isinstance(d, dict) else None
    if not isinstance(header, dict):
        return event  # already not a directive
    how = rng.randrange(7)
    if how == 0:
        return _junk(rng) if rng.random() < 0.5 else {"directive": _junk(rng)}
    if how == 1:
        header["namespace"] = rng.choice(["Alexa.PowerController", "alexa.discovery", "", 3])
    elif how == 2:
        header["payloadVersion"] = rng.choice(["2", 3, None, "3 "])
    else:
        # Every bearer token it carries is forged (or there is none at all).
        forged = rng.choice(["Atza|forged", "", None, "Atza|" + "B" * 9000, "tok en\r\n"])
        endpoint, payload = d.get("endpoint"), d.get("payload")
        holders = [
            endpoint.get("scope") if isinstance(endpoint, dict) else None,
            payload.get("scope") if isinstance(payload, dict) else None,
            payload.get("grantee") if isinstance(payload, dict) else None,
        ]
        for holder in holders:
            if isinstance(holder, dict):
                holder["token"] = forged
    return event


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_10000_random_directives_get_schema_valid_error_responses(
    make_cloud, record_figures
) -> None:  # type: ignore[no-untyped-def]
    handle = make_cloud(skill_deadline=0.5)
    skill = build_skill(handle.settings)
    who = handle.cloud.lwa.link("amzn1.account.FUZZ10K")
    skill.handle(D.accept_grant(who["code"], who["access_token"]))
    skill.store.put_health(Health("front-door", "UNREACHABLE"))  # no KVS waits
    rng = random.Random(10_000)
    tokens = [who["access_token"], "Atza|forged", "", "Atza|" + "A" * 9000, "tok en\r\n"]
    types: dict[str, int] = {}
    t0 = time.monotonic()
    for i in range(10_000):
        event = random_directive(rng, tokens)
        # Through JSON, as the Lambda runtime delivers it (NaN and huge ints included).
        reply = skill.handle(json.loads(json.dumps(event)))
        json.dumps(reply, allow_nan=False)
        assert reply["event"]["header"]["name"] == "ErrorResponse", (i, event, reply)
        assert is_valid(reply), (i, schema_errors(reply), reply)
        message = reply["event"]["payload"]["message"]
        assert not message.startswith("unexpected"), (i, event, reply)
        assert who["access_token"] not in json.dumps(reply)
        kind = reply["event"]["payload"]["type"]
        types[kind] = types.get(kind, 0) + 1
    elapsed = time.monotonic() - t0
    skill.store.close()
    record_figures("random_directives", count=10_000, seconds=round(elapsed, 1), error_types=types)


# -- a hostile signaling peer against the real agent ---------------------------------


async def test_hostile_viewer_cannot_hurt_the_agent(make_cloud, record_figures) -> None:  # type: ignore[no-untyped-def]
    settings = make_cloud(cameras=SMALL).settings
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    hostile = [
        '{"action": "SDP_OFFER", "messagePayload": "!!!not base64!!!"}',
        json.dumps({"action": "SDP_OFFER", "messagePayload": b64("not json")}),
        json.dumps({"action": "SDP_OFFER", "messagePayload": b64('{"type": 5, "sdp": []}')}),
        json.dumps({"action": "SDP_OFFER", "messagePayload": b64('["offer"]')}),
        json.dumps({"action": "SDP_OFFER", "messagePayload": sdp_payload("offer", "v=0\r\nx")}),
        json.dumps(
            {"action": "SDP_OFFER", "messagePayload": sdp_payload("offer", "v=0\r\n" * 900)}
        ),
        json.dumps({"action": "ICE_CANDIDATE", "messagePayload": b64('{"candidate": 7}')}),
        json.dumps(
            {
                "action": "ICE_CANDIDATE",
                "messagePayload": encode_payload({"candidate": "candidate:x y z"}),
            }
        ),
        json.dumps({"action": ["SDP_OFFER"], "messagePayload": "AAAA"}),
        json.dumps({"action": "SDP_OFFER", "messagePayload": {"type": "offer"}}),
        json.dumps({"action": "SDP_OFFER", "messagePayload": "A" * 300_000}),
        "[" * 50_000,
        "\x00\xff garbage",
    ]
    async with CameraAgent(settings, preset="ultrafast") as agent:
        await agent.wait_ready(10)
        connections = agent.signaling.connections
        async with KvsTestMaster(settings, client_id="hostile-viewer", answer=None) as viewer:
            for text in hostile:
                await viewer.send_raw(text)
            # Many ICE candidates for a session that does not exist: bounded, not hoarded.
            for i in range(500):
                await viewer.send(
                    "ICE_CANDIDATE",
                    encode_payload({"candidate": f"candidate:{i} 1 udp 1 127.0.0.1 {i} typ host"}),
                )
            await asyncio.sleep(1.0)
        # The agent is still connected on the same socket and answers a real viewer.
        assert agent.signaling.connected.is_set()
        assert agent.signaling.connections == connections
        assert len(agent._pending_candidates.get("hostile-viewer", [])) <= 50
        kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
        arn = api.describe_channel_arn(kv, "front-door")
        sig = api.signaling_client(
            settings.boto_session(), api.get_channel_endpoints(kv, arn, "VIEWER").https
        )
        echo = EchoShow(talk=None)
        answer = await echo.watch(
            lambda o: asyncio.to_thread(
                api.send_alexa_offer_to_master, sig, arn, sender_client_id("after-fuzz"), o
            )
        )
        assert refusal_reason(answer) is None
        assert await echo.wait_frames(3, 10) >= 3
        await echo.close()
        record_figures(
            "hostile_viewer",
            messages=len(hostile) + 500,
            agent_reconnects=0,
            stats={k: agent.stats()[k] for k in ("offers", "answers", "rejected")},
        )
