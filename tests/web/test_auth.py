"""What the dashboard refuses: a wrong ``Host`` (DNS rebinding) before anything else, and
without a session, when it has a password (required beyond loopback), every API and
WebSocket. The login page in Chromium is in test_dashboard_browser.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from alexa_doorbell.config import Settings
from alexa_doorbell.httpguard import REFUSED_BODY
from alexa_doorbell.store import open_store
from alexa_doorbell.web import auth
from alexa_doorbell.web.app import DashboardServer, create_app
from alexa_doorbell.web.auth import COOKIE, PASSWORD_ENV, DashboardLogin, LoginNotConfigured
from tests.helpers.handshake import upgrade_status

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(local_cloud: Settings):  # type: ignore[no-untyped-def]
    s = open_store(local_cloud.store_location)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_password_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for suffix in ("", "_FILE", "_ARN"):
        monkeypatch.delenv(PASSWORD_ENV + suffix, raising=False)


def asgi_client(app, base_url: str = "http://127.0.0.1:8760") -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


# -- Host ---------------------------------------------------------------------------------
async def test_a_rebinding_page_gets_421_and_nothing_else(cloud, store) -> None:  # type: ignore[no-untyped-def]
    """evil.example resolving to 127.0.0.1: its page's Origin equals its Host."""
    app = create_app(cloud.settings, store=store)
    rebound = {"Origin": "http://evil.example:8760", "Sec-Fetch-Site": "same-origin"}
    async with asgi_client(app, "http://evil.example:8760") as http:
        for method, path in (
            ("GET", "/"),
            ("GET", "/api/status"),
            ("GET", "/api/cameras"),
            ("POST", "/api/cameras/front-door/viewer"),
            ("POST", "/api/cameras/front-door/press"),
            ("GET", "/static/app.js"),
            ("GET", "/login"),
        ):
            r = await http.request(method, path, headers=rebound)
            assert r.status_code == 421, (path, r.status_code)
            assert r.content == REFUSED_BODY and "set-cookie" not in r.headers
    assert cloud.cloud.gateway.messages() == []
    async with asgi_client(app, "http://localhost:8760") as http:
        assert (await http.get("/api/cameras")).status_code == 200
    async with asgi_client(app, "http://[::1]:8760") as http:
        assert (await http.get("/api/cameras")).status_code == 200


async def test_allowed_hosts_and_the_listen_address(local_cloud, store) -> None:  # type: ignore[no-untyped-def]
    local_cloud.dashboard.allowed_hosts = ["door.lan"]  # ALEXA_DOORBELL_DASHBOARD__ALLOWED_HOSTS
    app = create_app(local_cloud, store=store)
    async with asgi_client(app, "http://door.lan:8760") as http:
        assert (await http.get("/api/cameras")).status_code == 200
    async with asgi_client(app, "http://door.lan.evil.example") as http:
        assert (await http.get("/api/cameras")).status_code == 421
    # The name it listens on answers too (beyond loopback: with a login).
    app = create_app(local_cloud, store=store, host="doorbell.home.arpa", password=PASSWORD)
    async with asgi_client(app, "http://doorbell.home.arpa:8760") as http:
        assert (await http.get("/login")).status_code == 200
    async with asgi_client(app, "http://other.home.arpa:8760") as http:
        assert (await http.get("/login")).status_code == 421


async def test_websocket_with_a_wrong_host_is_closed_before_accept(local_cloud, store) -> None:  # type: ignore[no-untyped-def]
    async with DashboardServer(local_cloud, store=store) as server:
        async with httpx.AsyncClient() as http:
            cfg = (await http.post(server.url + "/api/cameras/front-door/viewer")).json()
        evil = f"evil.example:{server.port}"
        origin = {"Origin": f"http://{evil}"}
        got = await asyncio.to_thread(
            upgrade_status, "127.0.0.1", server.port, cfg["relayPath"], evil, origin
        )
        assert got == 403
        # The token was not even looked at: the right host can still use it.
        own = f"127.0.0.1:{server.port}"
        got = await asyncio.to_thread(
            upgrade_status, "127.0.0.1", server.port, cfg["relayPath"], own
        )
        assert got == 101


# -- the password ---------------------------------------------------------------------------
def test_beyond_loopback_without_a_password_refuses_to_start(local_cloud) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LoginNotConfigured, match=PASSWORD_ENV):
        create_app(local_cloud, host="0.0.0.0")
    for loopback in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert create_app(local_cloud, host=loopback).state.login is False


def test_dashboard_command_beyond_loopback_without_a_password(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(PASSWORD_ENV)}
    env.update(
        ALEXA_DOORBELL_DATA_DIR=str(tmp_path), ALEXA_DOORBELL_CONFIG=str(tmp_path / "empty.toml")
    )
    cmd = [sys.executable, "-m", "alexa_doorbell.cli", "dashboard", "--host", "0.0.0.0"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and PASSWORD_ENV in lines[0] and "127.0.0.1" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_password_from_a_file_never_from_toml(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    assert auth.read_password("us-east-1", {PASSWORD_ENV + "_FILE": str(secret)}) == PASSWORD
    assert auth.read_password("us-east-1", {PASSWORD_ENV: "direct"}) == "direct"
    assert auth.read_password("us-east-1", {}) is None
    with pytest.raises(LoginNotConfigured, match=f"{PASSWORD_ENV}_FILE="):
        auth.read_password("us-east-1", {PASSWORD_ENV + "_FILE": str(tmp_path / "missing")})
    # The settings model has no field a TOML file could put a password in.
    assert "password" not in Settings.model_fields["dashboard"].annotation.model_fields  # type: ignore[union-attr]


async def _login(http: httpx.AsyncClient, password: str) -> httpx.Response:
    return await http.post("/login", data={"password": password})


async def test_without_a_session_everything_is_refused(cloud, store) -> None:  # type: ignore[no-untyped-def]
    app = create_app(cloud.settings, store=store, host="0.0.0.0", password=PASSWORD)
    async with asgi_client(app) as http:
        for method, path in (
            ("GET", "/api/status"),
            ("GET", "/api/cameras"),
            ("POST", "/api/cameras/front-door/viewer"),
            ("POST", "/api/cameras/front-door/press"),
        ):
            r = await http.request(method, path)
            assert r.status_code == 401, path
            assert r.json()["error"] == "login required"
            assert "front-door" not in r.text and "signedURL" not in r.text
        page = await http.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert (await http.get("/static/app.js")).status_code == 303
        assert (await http.get("/static/app.css")).status_code == 200  # the login page's
        form = await http.get("/login")
        assert form.status_code == 200 and 'type="password"' in form.text
        assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert cloud.cloud.gateway.messages() == []


async def test_login_gives_a_signed_session_cookie(local_cloud, store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)  # where the command reads it
    app = create_app(local_cloud, store=store, host="0.0.0.0")
    async with asgi_client(app) as http:
        started = time.monotonic()
        wrong = await _login(http, "password")
        assert wrong.status_code == 401 and "Wrong password" in wrong.text
        assert time.monotonic() - started >= auth.FAIL_DELAY * 0.9
        assert "set-cookie" not in wrong.headers
        # Another site cannot log a browser in (or out).
        evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        r = await http.post("/login", data={"password": PASSWORD}, headers=evil)
        assert r.status_code == 403 and "set-cookie" not in r.headers

        ok = await _login(http, PASSWORD)
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"]
        for attribute in (
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            f"Max-Age={auth.SESSION_SECONDS}",
        ):
            assert attribute in cookie, cookie
        assert "Secure" not in cookie  # plain http: the browser would drop it
        assert PASSWORD not in cookie
        cams = await http.get("/api/cameras")  # httpx keeps the cookie
        assert cams.status_code == 200 and cams.json()["login"] is True
        assert (await http.get("/api/status")).status_code == 200
        assert (await http.get("/")).status_code == 200

        value = http.cookies[COOKIE]
        expiry, nonce, signature = value.split(".")
        forgeries = [
            f"{expiry}.{nonce}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
            f"{int(expiry) + 86400}.{nonce}.{signature}",
            f"{expiry}.{nonce}x.{signature}",
            "1.2.3",
            "",
        ]
        async with asgi_client(app) as other:  # no cookie jar of its own
            for forged in forgeries:
                r = await other.get("/api/status", headers={"Cookie": f"{COOKIE}={forged}"})
                assert r.status_code == 401, forged
            r = await other.get("/api/status", headers={"Cookie": f"x=1; {COOKIE}={value}"})
            assert r.status_code == 200
        out = await http.post("/logout")
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        assert (await http.get("/api/status")).status_code == 401
    # Over https (a TLS proxy in front) the cookie is Secure.
    async with asgi_client(app, "https://127.0.0.1:8760") as http:
        assert "Secure" in (await _login(http, PASSWORD)).headers["set-cookie"]


def test_sessions_expire_and_do_not_outlive_the_key() -> None:
    login = DashboardLogin(PASSWORD, session_seconds=60)
    now = time.time()
    cookie = login.issue(now)
    assert login.valid(cookie, now + 59) and not login.valid(cookie, now + 61)
    assert not DashboardLogin(PASSWORD).valid(cookie, now)  # another start, another key
    with pytest.raises(LoginNotConfigured):
        DashboardLogin("")


async def test_guessing_is_slowed_then_locked_out(local_cloud, store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(auth, "FAIL_DELAY", 0.0)
    app = create_app(local_cloud, store=store, password=PASSWORD)  # loopback, password set
    async with asgi_client(app) as http:
        assert (await http.get("/api/status")).status_code == 401
        assert (await _login(http, PASSWORD)).status_code == 303  # a success forgets typos
        http.cookies.clear()
        guesses = await asyncio.gather(*(_login(http, f"guess {i}") for i in range(8)))
        codes = sorted(r.status_code for r in guesses)
        assert codes == [401] * auth.FAIL_LIMIT + [429] * (8 - auth.FAIL_LIMIT), codes
        locked = await _login(http, PASSWORD)  # even the right one, from that address
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert "set-cookie" not in locked.headers


async def test_websockets_need_a_session(local_cloud, store) -> None:  # type: ignore[no-untyped-def]
    async with DashboardServer(local_cloud, store=store, password=PASSWORD) as server:
        base = server.url.replace("http://", "ws://")
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await _login(http, PASSWORD)).status_code == 303
            cfg = (await http.post("/api/cameras/front-door/viewer")).json()
            cookie = f"{COOKIE}={http.cookies[COOKIE]}"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(base + cfg["relayPath"])
        assert refused.value.response.status_code == 403
        # Refused before the relay looked at its one-time token: with the session it works.
        async with websockets.connect(
            base + cfg["relayPath"], additional_headers={"Cookie": cookie}
        ) as ws:
            await ws.send("{}")  # reaches signaling, which ignores an empty message
