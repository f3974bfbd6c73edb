"""The Alexa event gateway emulator over real HTTP."""

from __future__ import annotations

import time
import uuid

import httpx

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.cloud.admin import redact_tokens
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.config import Settings
from tests.cloud.test_lwa import CLIENT, link, token


def skill_token(settings: Settings, user_id: str = "amzn1.account.GW") -> str:
    code = link(settings, user_id)["code"]
    return token(settings, grant_type="authorization_code", code=code, **CLIENT).json()[
        "access_token"
    ]


def doorbell_press(token: str, timestamp: str = "2026-11-24T19:13:27Z") -> dict:
    return {
        "context": {},
        "event": {
            "header": {
                "namespace": "Alexa.DoorbellEventSource",
                "name": "DoorbellPress",
                "messageId": str(uuid.uuid4()),
                "payloadVersion": "3",
            },
            "endpoint": {
                "scope": {"type": "BearerToken", "token": token},
                "endpointId": "front-door",
            },
            "payload": {"cause": {"type": "PHYSICAL_INTERACTION"}, "timestamp": timestamp},
        },
    }


def post(settings: Settings, body: dict, bearer: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.post(settings.event_gateway_url() + "/v3/events", json=body, headers=headers)


def assert_gateway_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["header"]["namespace"] == "System"
    assert body["header"]["name"] == "Exception"
    assert body["payload"]["code"] == code
    return body["payload"]["description"]


def test_accepts_and_records_a_doorbell_press(cloud: CloudThread) -> None:
    settings = cloud.settings
    bearer = skill_token(settings)
    event = doorbell_press(bearer)
    assert schema_errors(event) == []
    r = post(settings, event, bearer)
    assert r.status_code == 202
    listed = httpx.get(settings.local.url + "/_local/events")
    assert bearer not in listed.text  # the admin API never hands out a bearer token
    assert listed.json() == [redact_tokens(event)]
    assert listed.json()[0]["event"]["endpoint"]["scope"]["token"].startswith("redacted:")
    assert httpx.get(settings.local.url + "/_local/events?name=ChangeReport").json() == []
    assert cloud.cloud.gateway.wait_for("DoorbellPress", timeout=1) == [event]
    assert cloud.cloud.gateway.events[0].user_id == "amzn1.account.GW"
    httpx.delete(settings.local.url + "/_local/events")
    assert httpx.get(settings.local.url + "/_local/events").json() == []


def test_refuses_bad_tokens_and_bad_events(local_cloud: Settings) -> None:
    bearer = skill_token(local_cloud)
    assert_gateway_error(
        post(local_cloud, doorbell_press(bearer), None), 401, "INVALID_ACCESS_TOKEN_EXCEPTION"
    )
    # The account-linking token from a directive is not a skill-messaging token.
    link_token = link(local_cloud, "amzn1.account.OTHER")["access_token"]
    assert_gateway_error(
        post(local_cloud, doorbell_press(link_token), link_token),
        401,
        "INVALID_ACCESS_TOKEN_EXCEPTION",
    )
    # Millisecond timestamps break the schema; the description says where.
    why = assert_gateway_error(
        post(local_cloud, doorbell_press(bearer, "2026-11-24T19:13:27.123Z"), bearer),
        400,
        "INVALID_REQUEST_EXCEPTION",
    )
    assert "event/payload/timestamp" in why
    why = assert_gateway_error(
        post(local_cloud, doorbell_press("Atza|someone-else"), bearer),
        400,
        "INVALID_REQUEST_EXCEPTION",
    )
    assert "scope.token" in why
    r = httpx.post(
        local_cloud.local.url + "/v3/events",
        content=b"{not json",
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert_gateway_error(r, 400, "INVALID_REQUEST_EXCEPTION")
    assert httpx.get(local_cloud.local.url + "/_local/events").json() == []


def test_expired_token_gets_401(make_cloud) -> None:
    settings = make_cloud(local={"access_token_lifetime": 1}).settings
    bearer = skill_token(settings)
    assert post(settings, doorbell_press(bearer), bearer).status_code == 202
    time.sleep(1.2)
    assert_gateway_error(
        post(settings, doorbell_press(bearer), bearer), 401, "INVALID_ACCESS_TOKEN_EXCEPTION"
    )


def test_fault_injection(local_cloud: Settings) -> None:
    bearer = skill_token(local_cloud)
    admin = local_cloud.local.url + "/_local/gateway/faults"
    httpx.post(admin, json={"status": 429, "count": 2}).raise_for_status()
    httpx.post(admin, json={"status": 403, "code": "SKILL_NEVER_ENABLED_EXCEPTION"})
    for _ in range(2):
        assert_gateway_error(
            post(local_cloud, doorbell_press(bearer), bearer), 429, "THROTTLING_EXCEPTION"
        )
    assert_gateway_error(
        post(local_cloud, doorbell_press(bearer), bearer), 403, "SKILL_NEVER_ENABLED_EXCEPTION"
    )
    assert post(local_cloud, doorbell_press(bearer), bearer).status_code == 202
    assert len(httpx.get(local_cloud.local.url + "/_local/events").json()) == 1
