"""Hostile and malformed directives: every reply validates against the schema, nothing raises."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.store.base import Health
from tests import directives as D
from tests.skill.test_app import link

HOSTILE_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "a b",
        "x" * 5000,
        "../../etc/passwd",
        "'; DROP TABLE tokens; --",
        "\x00\x01\x02",
        "\ud7ff\ue000",
        "😀" * 50,
        "<script>alert(1)</script>",
        "Atza|" + "A" * 3000,
        "front-door\n",
        "front-door",
        "3",
        "SDP",
        "v=0\r\n",
    ]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    HOSTILE_STRINGS,
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: dict, path: tuple, action: str, value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@pytest.fixture(scope="module")
def fuzz_skill(tmp_path_factory):
    """One cloud and skill for all examples (a function-scoped fixture would restart per test)."""
    from alexa_doorbell.cloud.server import start_cloud_thread
    from tests.conftest import local_settings

    settings_ = local_settings(tmp_path_factory.mktemp("fuzz"))
    handle = start_cloud_thread(settings_)
    settings_.skill_deadline = 0.5
    skill = build_skill(settings_)
    who = link(settings_, "amzn1.account.FUZZ")
    skill.handle(D.accept_grant(who["code"], who["access_token"]))
    # Offline camera: offers that get through answer at once instead of waiting on KVS.
    skill.store.put_health(Health("front-door", "UNREACHABLE", 4e9))
    yield skill, who["access_token"]
    skill.store.close()
    handle.stop()


def _assert_reply(reply: Any) -> dict:
    assert isinstance(reply, dict)
    json.dumps(reply)  # serialisable as the Lambda runtime will do
    assert schema_errors(reply) == [], reply
    # An "unexpected" INTERNAL_ERROR means some input slipped past validation into a crash.
    assert not reply["event"]["payload"].get("message", "").startswith("unexpected"), reply
    return reply


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(event=JSON)
def test_arbitrary_json_gets_an_error_response(fuzz_skill, event):
    skill, _ = fuzz_skill
    reply = _assert_reply(skill.handle(event))
    assert reply["event"]["header"]["name"] == "ErrorResponse"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    which=st.sampled_from(["discover", "grant", "offer", "connected", "disconnected", "state"]),
    data=st.data(),
    action=st.sampled_from(["replace", "delete"]),
    value=JSON,
)
def test_mutated_directives_get_schema_valid_replies(fuzz_skill, which, data, action, value):
    skill, token = fuzz_skill
    base = {
        "discover": D.discover(token),
        "grant": D.accept_grant("ANused", token),
        "offer": D.initiate_session(token),
        "connected": D.session_event("SessionConnected", token),
        "disconnected": D.session_event("SessionDisconnected", token),
        "state": D.report_state(token),
    }[which]
    path = data.draw(st.sampled_from(_paths(base)))
    event = _mutate(base, path, action, value)
    reply = _assert_reply(skill.handle(event))
    header = reply["event"]["header"]
    if header["name"] != "ErrorResponse":
        # Only a mutation that left the directive well-formed may succeed.
        d = event["directive"]
        assert isinstance(d["header"], dict) and d["header"]["payloadVersion"] == "3"
