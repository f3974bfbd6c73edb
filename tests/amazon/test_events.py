"""The event gateway client's pure parts: reply classification (docs/PROTOCOLS.md §3),
the retry schedule, region URLs and token redaction; plus the Lambda path's weight."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from alexa_doorbell.amazon.events import (
    _ERRORS,
    ACCEPTED,
    REFRESH,
    REJECTED,
    RETRY,
    USER_ACTION,
    EventGatewayClient,
    EventRejected,
    GatewayReply,
    GatewayUnavailable,
    InvalidAccessToken,
    UserActionRequired,
    classify,
    gateway_url,
    redact,
)


def body(code: str, description: str = "why") -> bytes:
    return json.dumps(
        {
            "header": {"namespace": "System", "name": "Exception", "messageId": "m"},
            "payload": {"code": code, "description": description},
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (202, "", ACCEPTED),
        (200, "", ACCEPTED),
        (401, "INVALID_ACCESS_TOKEN_EXCEPTION", REFRESH),
        (429, "THROTTLING_EXCEPTION", RETRY),
        (500, "INTERNAL_SERVICE_EXCEPTION", RETRY),
        (502, "", RETRY),
        (503, "SERVICE_UNAVAILABLE_EXCEPTION", RETRY),
        (504, "", RETRY),
        (403, "SKILL_DISABLED_EXCEPTION", USER_ACTION),
        (403, "SKILL_NEVER_ENABLED_EXCEPTION", USER_ACTION),
        (403, "INSUFFICIENT_PERMISSION_EXCEPTION", USER_ACTION),
        (404, "ACCOUNT_NOT_FOUND_EXCEPTION", USER_ACTION),
        (404, "SKILL_NOT_FOUND_EXCEPTION", REJECTED),
        (400, "INVALID_REQUEST_EXCEPTION", REJECTED),
        (413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION", REJECTED),
        (418, "", REJECTED),
    ],
)
def test_classify(status, code, outcome):
    reply = classify(status, body(code, "the reason") if code else b"")
    assert (reply.outcome, reply.code) == (outcome, code)
    assert reply.label == (f"{status} {code}" if code else str(status))
    if code:
        assert reply.description == "the reason"


def test_classify_odd_bodies_and_retry_after():
    assert classify(503, b"<html>busy</html>").description == "<html>busy</html>"
    assert classify(500, b"[1]").code == ""
    assert classify(400, {"message": "flat"}).description == "flat"
    assert classify(429, b"", "3").retry_after == 3.0
    assert classify(429, b"", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after is None


def test_exceptions_name_the_remedy():
    assert {
        REFRESH: InvalidAccessToken,
        USER_ACTION: UserActionRequired,
        REJECTED: EventRejected,
        RETRY: GatewayUnavailable,
    } == _ERRORS
    exc = UserActionRequired(classify(403, body("SKILL_DISABLED_EXCEPTION", "disabled")))
    assert "403 SKILL_DISABLED_EXCEPTION: disabled" in str(exc) and "relink" in str(exc)
    assert exc.status == 403 and exc.code == "SKILL_DISABLED_EXCEPTION"
    assert "will not help" in str(EventRejected(GatewayReply(400, "X", outcome=REJECTED)))


def test_retry_schedule_is_at_least_a_second_apart_and_capped():
    gw = EventGatewayClient("http://127.0.0.1:9", rng=lambda: 0.0)
    assert [gw.delay(n) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    gw = EventGatewayClient("http://127.0.0.1:9", rng=lambda: 0.999)
    assert 1.99 < gw.delay(1) < 2.0  # jitter adds up to one base delay
    assert gw.delay(1, retry_after=5.0) == 5.0  # the server's Retry-After wins when longer
    assert gw.delay(1, retry_after=60.0) == 8.0  # but never beyond the cap


def test_send_stops_retrying_at_the_budget():
    slept: list[float] = []
    gw = EventGatewayClient(
        "http://127.0.0.1:9", timeout=0.2, budget=2.5, sleep=slept.append, rng=lambda: 0.0
    )
    with pytest.raises(GatewayUnavailable) as info:
        gw.send({"event": {}}, "Atza|secret")
    assert slept == [1.0]  # the 2 s retry would end past the 2.5 s budget
    assert info.value.reply.code == "unreachable"
    assert "secret" not in str(info.value)


def test_regions_and_redaction():
    assert gateway_url("NA") == "https://api.amazonalexa.com"
    assert gateway_url("eu") == "https://api.eu.amazonalexa.com"
    assert gateway_url("FE") == "https://api.fe.amazonalexa.com"
    with pytest.raises(ValueError):
        gateway_url("APAC")
    assert redact('token "Atza|IwEBIA-x_y" and Atzr|abc.def') == 'token "Atz*|***" and Atz*|***'


def test_notifier_import_stays_light():
    """The Lambda path: no pydantic, jsonschema, aiortc or web framework, urllib3 on use."""
    code = (
        "import sys, alexa_doorbell.notifier.lambda_handler\n"
        "heavy = {'pydantic', 'jsonschema', 'aiortc', 'av', 'starlette', 'typer', 'rich',"
        " 'urllib3', 'boto3'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
