"""The pure Alexa message layer: every builder's output validates against Amazon's schema."""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from alexa_doorbell.alexa import events, responses
from alexa_doorbell.alexa.common import timestamp
from alexa_doorbell.alexa.directive import Directive, salvage
from alexa_doorbell.alexa.errors import InvalidDirective
from alexa_doorbell.alexa.schema import is_valid, schema_errors
from alexa_doorbell.store.base import Device

DOORBELL = Device(
    "front-door", "Front Door", "front-door", "Video doorbell", doorbell=True, full_duplex=True
)
CAMERA = Device("garage", "Garage", "garage-chan", "Camera", doorbell=False, full_duplex=False)


def directive(namespace: str, name: str, payload: dict | None = None, endpoint: bool = True):
    d: dict = {
        "header": {
            "namespace": namespace,
            "name": name,
            "messageId": "m-1",
            "correlationToken": "corr-abc==",
            "payloadVersion": "3",
        },
        "payload": payload or {},
    }
    if endpoint:
        d["endpoint"] = {
            "scope": {"type": "BearerToken", "token": "Atza|user"},
            "endpointId": "front-door",
        }
    return Directive.parse({"directive": d})


def assert_valid(msg: dict) -> None:
    assert schema_errors(msg) == []


def test_discover_response_lists_camera_first_and_doorbell_capability():
    d = directive(
        "Alexa.Discovery",
        "Discover",
        {"scope": {"type": "BearerToken", "token": "Atza|x"}},
        endpoint=False,
    )
    assert d.token == "Atza|x"
    msg = responses.discover_response(d, [DOORBELL, CAMERA])
    assert_valid(msg)
    assert "endpoint" not in msg["event"]
    bell, cam = msg["event"]["payload"]["endpoints"]
    assert bell["displayCategories"] == ["CAMERA", "DOORBELL"]
    assert cam["displayCategories"] == ["CAMERA"]
    ifaces = [c["interface"] for c in bell["capabilities"]]
    assert ifaces == [
        "Alexa",
        "Alexa.RTCSessionController",
        "Alexa.DoorbellEventSource",
        "Alexa.EndpointHealth",
    ]
    assert "Alexa.DoorbellEventSource" not in [c["interface"] for c in cam["capabilities"]]
    rtc = bell["capabilities"][1]
    assert rtc["configuration"] == {"isFullDuplexAudioSupported": True}
    assert cam["capabilities"][1]["configuration"] == {"isFullDuplexAudioSupported": False}
    # An empty catalog is still a valid reply.
    assert_valid(responses.discover_response(d, []))


def test_responses_validate_and_echo_correlation_token():
    d = directive("Alexa.RTCSessionController", "InitiateSessionWithOffer")
    msgs = [
        responses.answer_generated_for_session(d, "v=0\r\n"),
        responses.session_connected(d, "s1"),
        responses.session_disconnected(d, "s1"),
        responses.state_report(d, "OK"),
        responses.state_report(d, "UNREACHABLE"),
        responses.accept_grant_response(d),
    ]
    for msg in msgs:
        assert_valid(msg)
        assert msg["event"]["header"]["correlationToken"] == "corr-abc=="
    assert "endpoint" not in msgs[-1]["event"]  # AcceptGrant.Response has none
    assert msgs[0]["event"]["endpoint"]["scope"]["token"] == "Atza|user"


def test_answer_payload_allows_only_answer():
    d = directive("Alexa.RTCSessionController", "InitiateSessionWithOffer")
    msg = responses.answer_generated_for_session(d, "v=0")
    msg["event"]["payload"]["sessionId"] = "x"
    assert not is_valid(msg)  # the schema really checks this branch


@pytest.mark.parametrize(
    "type_",
    [
        "ENDPOINT_UNREACHABLE",
        "NO_SUCH_ENDPOINT",
        "INVALID_DIRECTIVE",
        "INTERNAL_ERROR",
        "INVALID_AUTHORIZATION_CREDENTIAL",
        "EXPIRED_AUTHORIZATION_CREDENTIAL",
        "ENDPOINT_BUSY",
        "RATE_LIMIT_EXCEEDED",
    ],
)
def test_error_responses_validate(type_):
    assert_valid(responses.error_response(type_, "why", correlation_token="c", endpoint_id="e"))
    assert_valid(responses.error_response(type_, "why"))


def test_accept_grant_failed_validates_only_in_its_namespace():
    ns = "Alexa.Authorization"
    ok = responses.error_response("ACCEPT_GRANT_FAILED", "bad code", namespace=ns)
    assert_valid(ok)
    assert not is_valid(responses.error_response("ACCEPT_GRANT_FAILED", "bad code"))


def test_doorbell_press_and_change_report():
    press = events.doorbell_press("front-door", "Atza|t", at=1_800_000_000.75)
    assert_valid(press)
    assert press["event"]["payload"]["timestamp"] == "2027-01-15T08:00:00Z"
    assert press["event"]["endpoint"]["scope"] == {"type": "BearerToken", "token": "Atza|t"}
    assert_valid(events.doorbell_press("front-door", "t", cause="APP_INTERACTION"))
    for conn in ("OK", "UNREACHABLE"):
        rep = events.change_report("front-door", "Atza|t", conn)
        assert_valid(rep)
        prop = rep["event"]["payload"]["change"]["properties"][0]
        assert prop["value"] == {"value": conn}
    with pytest.raises(ValueError):
        events.change_report("front-door", "t", "DOWN")
    with pytest.raises(ValueError):
        events.doorbell_press("front-door", "t", cause="MAGIC")


def test_timestamp_has_no_fraction():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", timestamp())


def test_add_or_update_report():
    msg = events.add_or_update_report([DOORBELL], "Atza|t")
    assert_valid(msg)
    with pytest.raises(ValueError):
        events.add_or_update_report([], "t")


def test_delete_report_matches_documented_shape():
    msg = events.delete_report(["front-door", "garage"], "Atza|t")
    assert schema_errors(msg) == []
    bad = copy.deepcopy(msg)
    bad["event"]["payload"]["endpoints"][0]["friendlyName"] = "x"
    assert schema_errors(bad)


@pytest.mark.parametrize(
    "event,fragment",
    [
        (None, "JSON object"),
        ({}, "directive"),
        ({"directive": {"header": {}}}, "namespace"),
        (
            {"directive": {"header": {"namespace": "A", "name": "B", "messageId": "m"}}},
            "payloadVersion",
        ),
        (
            {
                "directive": {
                    "header": {
                        "namespace": "A",
                        "name": "B",
                        "messageId": "m",
                        "payloadVersion": "3",
                    },
                    "endpoint": {"endpointId": "a b"},
                }
            },
            "endpointId",
        ),
        (
            {
                "directive": {
                    "header": {
                        "namespace": "A",
                        "name": "B",
                        "messageId": "m",
                        "payloadVersion": "3",
                    },
                    "endpoint": {"endpointId": "ok", "scope": {"type": "Basic"}},
                }
            },
            "BearerToken",
        ),
        (
            {
                "directive": {
                    "header": {
                        "namespace": "A",
                        "name": "B",
                        "messageId": "m",
                        "payloadVersion": "3",
                        "correlationToken": 7,
                    }
                }
            },
            "correlationToken",
        ),
    ],
)
def test_parse_rejects_malformed(event, fragment):
    with pytest.raises(InvalidDirective) as info:
        Directive.parse(event)
    assert fragment in info.value.message


def test_salvage_keeps_only_valid_pieces():
    good = {"directive": {"header": {"correlationToken": "c"}, "endpoint": {"endpointId": "e"}}}
    assert salvage(good) == ("c", "e")
    assert salvage(
        {"directive": {"header": {"correlationToken": ""}, "endpoint": {"endpointId": "bad id"}}}
    ) == (None, None)
    assert salvage([1]) == (None, None)


# -- identifiers match Amazon's patterns whole: a trailing newline is no identifier ---------
def _header() -> dict:
    return {"namespace": "Alexa", "name": "ReportState", "messageId": "m-1", "payloadVersion": "3"}


@pytest.mark.parametrize(
    ("where", "value", "fragment"),
    [
        ("endpointId", "front-door\n", "endpointId"),
        ("namespace", "Alexa\n", "namespace"),
        ("name", "ReportState\nforged log line", "name"),
    ],
)
def test_parse_rejects_a_trailing_newline(where: str, value: str, fragment: str) -> None:
    d: dict = {"header": _header(), "endpoint": {"endpointId": "front-door"}}
    if where == "endpointId":
        d["endpoint"]["endpointId"] = value
    else:
        d["header"][where] = value
    with pytest.raises(InvalidDirective) as info:
        Directive.parse({"directive": d})
    assert fragment in info.value.message
    expected = None if where == "endpointId" else "front-door"
    assert salvage({"directive": d})[1] == expected


def test_salvage_drops_an_endpoint_id_with_a_newline() -> None:
    event = {"directive": {"header": {}, "endpoint": {"endpointId": "front-door\n"}}}
    assert salvage(event) == (None, None)


def test_log_message_id_cannot_forge_a_line() -> None:
    d = directive("Alexa", "ReportState")
    assert d.log_message_id == "m-1"
    forged = dataclasses.replace(d, message_id="m-1\nINFO forged")
    assert "\n" not in forged.log_message_id and "forged" in forged.log_message_id


def test_schema_patterns_end_at_the_end_as_in_ecma_262() -> None:
    """JSON Schema patterns are ECMA-262, where ``$`` ends the input; Python's ``$``
    also matches before a final newline, which would let these through."""
    good = responses.error_response(
        "NO_SUCH_ENDPOINT", "why", correlation_token="c", endpoint_id="e"
    )
    assert_valid(good)
    bad_id = copy.deepcopy(good)
    bad_id["event"]["endpoint"]["endpointId"] = "front-door\n"
    assert any("endpointId" in e for e in schema_errors(bad_id))
    bad_msg = copy.deepcopy(good)
    bad_msg["event"]["header"]["messageId"] += "\n"
    assert any("messageId" in e for e in schema_errors(bad_msg))
    press = events.doorbell_press("front-door\n", "Atza|t")
    assert not is_valid(press)
    assert is_valid(events.doorbell_press("front-door", "Atza|t"))
    stamp = events.doorbell_press("front-door", "Atza|t")
    stamp["event"]["payload"]["timestamp"] += "\n"
    assert not is_valid(stamp)
    assert not is_valid(events.delete_report(["front-door\n"], "Atza|t"))


def test_the_header_pruned_schema_gives_the_full_schemas_verdict() -> None:
    """schema_errors checks a message against only its header's branches first: the
    verdict must be the whole oneOf's, for valid messages and for broken ones."""
    from alexa_doorbell.alexa.schema import _validator, _validator_for

    press = events.doorbell_press("front-door", "Atza|t", at=1_800_000_000.75)
    report = events.change_report("front-door", "Atza|t", "OK")
    samples = [press, report]
    broken = copy.deepcopy(press)
    broken["event"]["payload"]["cause"]["type"] = "MAGIC"
    samples.append(broken)
    renamed = copy.deepcopy(report)
    renamed["event"]["header"]["name"] = "DoorbellPress"  # a ChangeReport's body, another name
    samples.append(renamed)
    extra = copy.deepcopy(press)
    extra["event"]["surprise"] = 1
    samples.append(extra)
    for msg in samples:
        header = msg["event"]["header"]
        full = _validator().is_valid(msg)
        assert _validator_for(header["namespace"], header["name"]).is_valid(msg) == full
        assert (schema_errors(msg) == []) == full
    assert [is_valid(m) for m in samples] == [True, True, False, False, False]
