"""The Login with Amazon emulator over real HTTP."""

from __future__ import annotations

import base64
import time

import httpx

from alexa_doorbell.config import LOCAL_LWA_CLIENT_ID, LOCAL_LWA_CLIENT_SECRET, Settings

CLIENT = {"client_id": LOCAL_LWA_CLIENT_ID, "client_secret": LOCAL_LWA_CLIENT_SECRET}


def link(settings: Settings, user_id: str = "amzn1.account.TEST1", **extra: object) -> dict:
    r = httpx.post(
        settings.local.url + "/_local/lwa/link",
        json={"user_id": user_id, "name": "Ada", "email": "ada@example.com", **extra},
    )
    r.raise_for_status()
    return r.json()


def token(settings: Settings, json: bool = False, **form: str) -> httpx.Response:
    url = settings.lwa_url + "/auth/o2/token"
    return httpx.post(url, json=form) if json else httpx.post(url, data=form)


def profile(settings: Settings, bearer: str) -> httpx.Response:
    return httpx.get(
        settings.lwa_url + "/user/profile", headers={"Authorization": f"Bearer {bearer}"}
    )


def test_code_exchange_refresh_and_profile(local_cloud: Settings) -> None:
    linked = link(local_cloud)
    assert linked["user_id"] == "amzn1.account.TEST1"
    assert profile(local_cloud, linked["access_token"]).json() == {
        "user_id": "amzn1.account.TEST1",
        "name": "Ada",
        "email": "ada@example.com",
    }
    r = token(local_cloud, grant_type="authorization_code", code=linked["code"], **CLIENT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].startswith("Atza|")
    assert body["refresh_token"].startswith("Atzr|")
    assert profile(local_cloud, body["access_token"]).json()["user_id"] == "amzn1.account.TEST1"
    # A code is single-use.
    again = token(local_cloud, grant_type="authorization_code", code=linked["code"], **CLIENT)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # Refresh, as JSON this time: a new access token, the same refresh token.
    r = token(
        local_cloud,
        json=True,
        grant_type="refresh_token",
        refresh_token=body["refresh_token"],
        **CLIENT,
    )
    assert r.status_code == 200, r.text
    assert r.json()["access_token"] != body["access_token"]
    assert r.json()["refresh_token"] == body["refresh_token"]


def test_lwa_error_bodies(local_cloud: Settings) -> None:
    code = link(local_cloud)["code"]
    cases = [
        ({"code": code, **CLIENT}, 400, "invalid_request"),  # no grant_type
        ({"grant_type": "password", **CLIENT}, 400, "unsupported_grant_type"),
        (
            {"grant_type": "authorization_code", "code": code, "client_id": LOCAL_LWA_CLIENT_ID},
            400,
            "invalid_request",
        ),
        (
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": LOCAL_LWA_CLIENT_ID,
                "client_secret": "wrong",
            },
            401,
            "invalid_client",
        ),
        ({"grant_type": "authorization_code", "code": "ANnope", **CLIENT}, 400, "invalid_grant"),
        (
            {"grant_type": "refresh_token", "refresh_token": "Atzr|x", **CLIENT},
            400,
            "invalid_grant",
        ),
    ]
    for form, status, error in cases:
        r = token(local_cloud, **form)
        assert (r.status_code, r.json()["error"]) == (status, error), form
        assert r.json()["error_description"]
    # The code survived the failed attempts; HTTP Basic client authentication works too.
    basic = base64.b64encode(f"{LOCAL_LWA_CLIENT_ID}:{LOCAL_LWA_CLIENT_SECRET}".encode()).decode()
    r = httpx.post(
        local_cloud.lwa_url + "/auth/o2/token",
        data={"grant_type": "authorization_code", "code": code},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200, r.text
    bad = profile(local_cloud, "Atza|not-a-token")
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_token")


def test_access_tokens_expire_and_refresh_tokens_stay(make_cloud) -> None:
    settings = make_cloud(local={"access_token_lifetime": 1}).settings
    code = link(settings)["code"]
    body = token(settings, grant_type="authorization_code", code=code, **CLIENT).json()
    assert body["expires_in"] == 1
    assert profile(settings, body["access_token"]).status_code == 200
    time.sleep(1.2)
    assert profile(settings, body["access_token"]).status_code == 401
    fresh = token(
        settings, grant_type="refresh_token", refresh_token=body["refresh_token"], **CLIENT
    )
    assert fresh.status_code == 200
    assert profile(settings, fresh.json()["access_token"]).status_code == 200


def test_revoke_and_faults(local_cloud: Settings) -> None:
    linked = link(local_cloud, "amzn1.account.REVOKE")
    body = token(local_cloud, grant_type="authorization_code", code=linked["code"], **CLIENT).json()
    url = local_cloud.local.url
    httpx.post(url + "/_local/lwa/faults", json={"status": 503, "count": 2}).raise_for_status()
    for _ in range(2):
        r = token(
            local_cloud, grant_type="refresh_token", refresh_token=body["refresh_token"], **CLIENT
        )
        assert r.status_code == 503
    r = token(
        local_cloud, grant_type="refresh_token", refresh_token=body["refresh_token"], **CLIENT
    )
    assert r.status_code == 200
    httpx.post(url + "/_local/lwa/revoke", json={"user_id": "amzn1.account.REVOKE"})
    r = token(
        local_cloud, grant_type="refresh_token", refresh_token=body["refresh_token"], **CLIENT
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    assert profile(local_cloud, linked["access_token"]).status_code == 401


def test_tokens_survive_a_restart(make_cloud, tmp_path) -> None:
    first = make_cloud(tmp_path / "d")
    linked = link(first.settings, "amzn1.account.DURABLE")
    body = token(first.settings, grant_type="authorization_code", code=linked["code"], **CLIENT)
    refresh = body.json()["refresh_token"]
    first.stop()
    second = make_cloud(tmp_path / "d").settings
    assert profile(second, linked["access_token"]).json()["user_id"] == "amzn1.account.DURABLE"
    r = token(second, grant_type="refresh_token", refresh_token=refresh, **CLIENT)
    assert r.status_code == 200
