"""The dashboard's server side against the local cloud: presigned VIEWER URLs the
emulator accepts, the press endpoint through the notifier (with gateway faults),
the status JSON (never a token), cache headers, cross-site refusal, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from alexa_doorbell.camera import runstate
from alexa_doorbell.camera.press_socket import PressNotice, PressSocket
from alexa_doorbell.cloud.tls import client_context
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import Settings
from alexa_doorbell.kvs.messages import ClientMessage, sdp_payload
from alexa_doorbell.store import open_store
from alexa_doorbell.store.base import EventRecord, Health, Tokens
from alexa_doorbell.web.app import create_app
from alexa_doorbell.web.status import StatusInputs, build_status, event_advice, token_health
from tests import directives as D
from tests.helpers.kvs_master import KvsTestMaster

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "src" / "alexa_doorbell" / "web" / "static" / "vendor"
NPM_SDK = ROOT / "node_modules" / "amazon-kinesis-video-streams-webrtc" / "dist"


@pytest.fixture
def store(local_cloud: Settings):
    s = open_store(local_cloud.store_location)
    yield s
    s.close()


def client(settings: Settings, store) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    app = create_app(settings, store=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


def link(settings: Settings, store, user_id: str = "amzn1.account.DASH") -> dict:  # type: ignore[no-untyped-def]
    who = httpx.post(f"{settings.local.url}/_local/lwa/link", json={"user_id": user_id}).json()
    reply = build_skill(settings, store).handle(D.accept_grant(who["code"], who["access_token"]))
    assert reply["event"]["header"]["name"] == "AcceptGrant.Response", reply
    return who


# -- live view -----------------------------------------------------------------------------
async def test_viewer_url_is_presigned_and_accepted_by_signaling(local_cloud, store) -> None:
    secret = local_cloud.local.aws_secret_access_key.get_secret_value()
    async with client(local_cloud, store) as http:
        reply = await http.post("/api/cameras/front-door/viewer")
    assert reply.status_code == 200, reply.text
    assert reply.headers["cache-control"] == "no-store"
    assert secret not in reply.text
    cfg = reply.json()
    assert cfg["channelEndpoint"].startswith("wss://")
    assert cfg["clientId"].startswith("dashboard-")
    assert f"X-Amz-ClientId={cfg['clientId']}" in cfg["signedURL"]
    assert "X-Amz-Signature=" in cfg["signedURL"] and cfg["iceServers"] == []
    assert cfg["relayPath"].startswith("/api/signaling/")
    assert cfg["relayPath"].rsplit("/", 1)[1] not in cfg["signedURL"]

    # The emulator checks the signature; an offer on that connection reaches the MASTER
    # from exactly that client id.
    async with KvsTestMaster(local_cloud, answer="v=0\r\n") as master:
        ssl = client_context(local_cloud.ca_file)
        async with websockets.connect(cfg["signedURL"], ssl=ssl) as ws:
            offer = ClientMessage("SDP_OFFER", sdp_payload("offer", "v=0\r\ns=dash\r\n"))
            await ws.send(offer.to_json())
            got = await master.next("SDP_OFFER", timeout=5)
            assert got.sender_client_id == cfg["clientId"]
        # A tampered URL is refused.
        bad = cfg["signedURL"].replace(cfg["clientId"], cfg["clientId"] + "x")
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(bad, ssl=ssl):
                pass


async def test_signaling_relay_is_one_time_and_same_origin(local_cloud, store) -> None:
    from alexa_doorbell.web.app import DashboardServer

    async with DashboardServer(local_cloud, store=store) as server:
        base = server.url.replace("http://", "ws://")

        async def new_viewer() -> dict:
            async with httpx.AsyncClient() as http:
                reply = await http.post(server.url + "/api/cameras/front-door/viewer")
            return reply.json()

        cfg = await new_viewer()
        assert "direct" not in cfg
        async with KvsTestMaster(local_cloud, answer="v=0\r\ns=relayed\r\n") as master:
            # Plain ws:// to the dashboard: no certificate for the browser to trust.
            async with websockets.connect(base + cfg["relayPath"]) as ws:
                offer = ClientMessage("SDP_OFFER", sdp_payload("offer", "v=0\r\ns=dash\r\n"))
                await ws.send(offer.to_json())
                got = await master.next("SDP_OFFER", timeout=5)
                assert got.sender_client_id == cfg["clientId"]
                answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert answer["messageType"] == "SDP_ANSWER"
            # A token works once.
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(base + cfg["relayPath"])
            assert refused.value.response.status_code == 403
            # Another site's page cannot use one, and trying spends it.
            cfg = await new_viewer()
            evil = {"Origin": "http://evil.example"}
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(base + cfg["relayPath"], additional_headers=evil)
            assert refused.value.response.status_code == 403
            with pytest.raises(websockets.InvalidStatus):
                await websockets.connect(base + cfg["relayPath"])


async def test_viewer_for_unknown_camera_and_cross_site_requests(local_cloud, store) -> None:
    async with client(local_cloud, store) as http:
        assert (await http.post("/api/cameras/back-door/viewer")).status_code == 404
        evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        assert (await http.post("/api/cameras/front-door/viewer", headers=evil)).status_code == 403
        assert (await http.post("/api/cameras/front-door/press", headers=evil)).status_code == 403
        assert (await http.get("/api/cameras/front-door/viewer")).status_code == 405
    assert httpx.get(f"{local_cloud.local.url}/_local/events").json() == []


async def test_viewer_failure_says_what_to_do(local_cloud, store) -> None:
    local_cloud.cameras[0] = local_cloud.cameras[0].model_copy(update={"channel_name": "nope"})
    async with client(local_cloud, store) as http:
        reply = await http.post("/api/cameras/front-door/viewer")
        assert reply.status_code == 502
        assert "No signaling channel named 'nope'" in reply.json()["error"]
        status = (await http.get("/api/status")).json()
    assert any("nope" in p["fix"] for p in status["problems"])


# -- doorbell -----------------------------------------------------------------------------
async def test_press_is_accepted_then_a_disabled_skill_asks_to_relink(local_cloud, store) -> None:
    who = link(local_cloud, store)
    local_cloud.press_debounce = 0.0
    async with client(local_cloud, store) as http:
        ok = (await http.post("/api/cameras/front-door/press")).json()
        assert ok["ok"] is True and ok["status"] == "202", ok
        httpx.post(
            f"{local_cloud.local.url}/_local/gateway/faults",
            json={"status": 403, "code": "SKILL_DISABLED_EXCEPTION", "count": 5},
        )
        bad = (await http.post("/api/cameras/front-door/press")).json()
        status = (await http.get("/api/status")).json()
    assert bad["ok"] is False and "403" in bad["status"], bad
    assert "enable it again" in bad["fix"]
    assert who["access_token"] not in json.dumps([ok, bad, status])
    user = status["users"][0]
    assert user["token_health"] == "relink needed" and user["relink_needed"] is True
    assert [e["ok"] for e in status["events"][:2]] == [False, True]
    assert any("linked again" in p["what"] for p in status["problems"])


async def test_a_press_tells_the_camera_agent_before_and_after(local_cloud, store) -> None:
    """The button's two notices to the agent's press socket (which records the press in
    the door timeline): the press before the notifier's call, its status after, "error"
    when the call raised."""
    link(local_cloud, store)
    # A process runstate takes for the agent (its command line names alexa-doorbell);
    # the test listens on its socket on its behalf.
    agent = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "alexa-doorbell camera"]
    )
    heard: list[PressNotice] = []
    listener = None
    try:
        cmdline = Path(f"/proc/{agent.pid}/cmdline")
        for _ in range(200):  # until it has exec'd
            if b"alexa" in cmdline.read_bytes():
                break
            await asyncio.sleep(0.01)
        data_dir = local_cloud.data_dir
        runstate.write_state(data_dir, runstate.AgentState("front-door", pid=agent.pid))
        listener = await PressSocket.open(
            runstate.press_socket_path(data_dir, agent.pid), heard.append
        )
        assert listener is not None
        async with client(local_cloud, store) as http:
            ok = (await http.post("/api/cameras/front-door/press")).json()
        assert ok["status"] == "202", ok

        def refused(endpoint_id: str) -> list:
            raise RuntimeError("the notifier Lambda is not reachable")

        app = create_app(local_cloud, store=store, press=refused)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            failed = await http.post("/api/cameras/front-door/press")
        assert failed.status_code == 502
        for _ in range(100):
            if len(heard) >= 4:
                break
            await asyncio.sleep(0.01)
    finally:
        if listener is not None:
            listener.close()
        agent.kill()
        agent.wait()
    first, answer, first_2, answer_2 = heard
    assert first == PressNotice(
        "front-door", first.press, source="dashboard", cause="APP_INTERACTION"
    )
    assert first.press and answer == PressNotice("front-door", first.press, status="202")
    assert first_2.source == "dashboard" and first_2.press not in (None, first.press)
    assert answer_2 == PressNotice("front-door", first_2.press, status="error")


async def test_press_without_a_linked_account(local_cloud, store) -> None:
    async with client(local_cloud, store) as http:
        reply = (await http.post("/api/cameras/front-door/press")).json()
    assert reply["ok"] is False and reply["status"] == "not linked", reply
    assert "Link the skill in the Alexa app" in reply["fix"]
    assert httpx.get(f"{local_cloud.local.url}/_local/events").json() == []


# -- status ------------------------------------------------------------------------------
async def test_status_from_the_store_never_shows_tokens(local_cloud, store) -> None:
    who = link(local_cloud, store)
    tokens = store.get_tokens("amzn1.account.DASH")
    store.put_health(Health("front-door", "OK"))
    async with client(local_cloud, store) as http:
        reply = await http.get("/api/status")
    assert reply.headers["cache-control"] == "no-store"
    body = reply.text
    for secret in (tokens.access_token, tokens.refresh_token, who["access_token"]):
        assert secret not in body
    st = reply.json()
    cam = st["cameras"][0]
    assert cam["online"] is True and cam["connectivity"] == "OK"
    assert cam["viewers"] == 0 and cam["browser_viewers"] == 0
    assert st["users"][0]["token_health"] == "ok" and st["users"][0]["expires_in"] > 3000
    assert st["problems"] == []


async def test_status_when_the_local_cloud_is_down(tmp_path) -> None:
    from tests.conftest import local_settings

    settings = local_settings(tmp_path)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        settings.local.port = s.getsockname()[1]
    s2 = open_store(settings.store_location)
    try:
        async with client(settings, s2) as http:
            st = (await http.get("/api/status")).json()
    finally:
        s2.close()
    whats = " ".join(p["what"] + p["fix"] for p in st["problems"])
    assert "local cloud is not answering" in whats and "alexa-doorbell cloud" in whats
    assert "never reported" in whats and "No Alexa account is linked" in whats


def _inputs(**kw) -> StatusInputs:  # type: ignore[no-untyped-def]
    from alexa_doorbell.config import CameraConfig

    base = dict(
        cloud="local",
        region="us-east-1",
        cameras=[CameraConfig()],
        health={},
        sessions={},
        tokens=[],
        events=[],
        signaling_viewers={},
        now=10_000.0,
    )
    base.update(kw)
    return StatusInputs(**base)  # type: ignore[arg-type]


def test_stale_heartbeat_is_offline_and_viewers_count_alexa_and_browsers() -> None:
    from alexa_doorbell.store.base import RtcSession

    sessions = {
        "front-door": [
            RtcSession("s1", "front-door", "CONNECTED", 9_990.0),
            RtcSession("s0", "front-door", "DISCONNECTED", 9_000.0),
        ]
    }
    fresh = build_status(
        _inputs(
            health={"front-door": Health("front-door", "OK", 9_950.0)},
            sessions=sessions,
            signaling_viewers={"front-door": ["dashboard-1"]},
        )
    )["cameras"][0]
    assert fresh["online"] and fresh["viewers"] == 2 and fresh["last_session"]["session_id"] == "s1"
    stale = build_status(
        _inputs(
            health={"front-door": Health("front-door", "OK", 9_000.0)},
            sessions=sessions,
            signaling_viewers={"front-door": ["dashboard-1"]},  # waiting, not watching
        )
    )
    assert stale["cameras"][0]["connectivity"] == "UNREACHABLE"
    assert stale["cameras"][0]["viewers"] == 0
    assert any("heartbeat is stale" in p["what"] for p in stale["problems"])


def test_only_failures_since_the_last_success_are_problems() -> None:
    ev = [
        EventRecord(9_900.0, "u", "front-door", "DoorbellPress", "429 THROTTLING_EXCEPTION"),
        EventRecord(9_800.0, "u", "front-door", "DoorbellPress", "202"),
        EventRecord(9_700.0, "u", "front-door", "DoorbellPress", "500 INTERNAL_SERVICE_EXCEPTION"),
    ]
    st = build_status(_inputs(events=ev, tokens=[Tokens("u", "a", "r", 20_000.0)]))
    assert [e["ok"] for e in st["events"]] == [False, True, False]
    assert [p["what"] for p in st["problems"] if "429" in p["what"]]
    assert not [p for p in st["problems"] if "500" in p["what"]]


@pytest.mark.parametrize(
    ("expires_at", "relink", "want"),
    [(20_000.0, False, "ok"), (10_100.0, False, "refresh due"), (9_000.0, False, "expired"),
     (20_000.0, True, "relink needed")],
)  # fmt: skip
def test_token_health(expires_at: float, relink: bool, want: str) -> None:
    assert token_health(Tokens("u", "a", "r", expires_at, relink_needed=relink), 10_000.0) == want


@pytest.mark.parametrize(
    ("status", "says"),
    [
        ("403 SKILL_DISABLED_EXCEPTION", "enable it again"),
        ("relink needed", "enable it again"),
        ("403 INSUFFICIENT_PERMISSION_EXCEPTION", "Send Alexa Events"),
        ("401 INVALID_ACCESS_TOKEN_EXCEPTION", "Alexa Skill Messaging"),
        ("404 ACCOUNT_NOT_FOUND", "ALEXA_DOORBELL_EVENT_REGION"),
        ("503 SERVICE_UNAVAILABLE", "retried"),
        ("400 INVALID_REQUEST_EXCEPTION", "report it"),
        ("not linked", "Link the skill"),
        ("refresh failed", "doctor"),
    ],
)
def test_event_advice(status: str, says: str) -> None:
    assert says in event_advice(status)


# -- static files ------------------------------------------------------------------------
async def test_page_and_assets_with_cache_headers(local_cloud, store) -> None:
    async with client(local_cloud, store) as http:
        page = await http.get("/")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        assert '<script src="/static/vendor/kvs-webrtc.min.js"' in page.text
        assert "https://" not in page.text  # nothing from a CDN
        js = await http.get("/static/app.js")
        assert js.headers["cache-control"] == "no-cache" and "etag" in js.headers
        again = await http.get("/static/app.js", headers={"If-None-Match": js.headers["etag"]})
        assert again.status_code == 304
        sdk = await http.get("/static/vendor/kvs-webrtc.min.js")
        assert sdk.status_code == 200 and "max-age=86400" in sdk.headers["cache-control"]
        assert "javascript" in sdk.headers["content-type"]
        assert (await http.get("/static/vendor/LICENSE.txt")).status_code == 200
        assert (await http.get("/static/../app.py")).status_code == 404


@pytest.mark.skipif(not NPM_SDK.exists(), reason="node_modules is missing (npm ci)")
def test_vendored_sdk_matches_the_npm_package() -> None:
    for name in ("kvs-webrtc.min.js", "kvs-webrtc.LICENSE"):
        assert (VENDOR / name).read_bytes() == (NPM_SDK / name).read_bytes(), (
            f"{name} differs from node_modules: run scripts/vendor-kvs-sdk"
        )


# -- the command ------------------------------------------------------------------------
def test_dashboard_command_serves_the_page(local_cloud: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "ALEXA_DOORBELL_DATA_DIR": str(local_cloud.data_dir),
        "ALEXA_DOORBELL_LOCAL__PORT": str(local_cloud.local.port),
        "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(local_cloud.local.tls_port),
        "ALEXA_DOORBELL_CONFIG": os.devnull,  # no config file
    }
    cmd = [sys.executable, "-m", "alexa_doorbell.cli", "dashboard", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"dashboard did not start: {out}")
                time.sleep(0.1)
        assert page.status_code == 200 and "Live view" in page.text
        viewer = httpx.post(f"http://127.0.0.1:{port}/api/cameras/front-door/viewer", timeout=5)
        assert viewer.status_code == 200 and viewer.json()["signedURL"].startswith("wss://")
    finally:
        proc.terminate()
        proc.wait(10)


async def test_dashboard_server_picks_a_free_port(local_cloud, store) -> None:
    from alexa_doorbell.web.app import DashboardServer

    async with DashboardServer(local_cloud, store=store) as server:
        assert server.port != 0
        async with httpx.AsyncClient() as http:
            reply = await http.get(server.url + "/api/cameras")
        assert reply.json()["cameras"][0]["endpoint_id"] == "front-door"
    await asyncio.sleep(0)


async def test_dashboard_sweeps_cameras_that_went_silent(cloud, store) -> None:  # type: ignore[no-untyped-def]
    """On one machine the dashboard runs the notifier's sweep (AWS schedules it)."""
    from alexa_doorbell.web.app import DashboardServer

    settings = cloud.settings.model_copy(update={"health_max_age": 0.4})
    await asyncio.to_thread(link, settings, store)
    # The camera said OK, then lost power: no goodbye, only a stale heartbeat.
    store.put_health(Health("front-door", "OK", time.time() - 60))
    async with DashboardServer(settings, store=store):
        reports = await asyncio.to_thread(cloud.cloud.gateway.wait_for, "ChangeReport", 1, 5)
    value = reports[0]["event"]["payload"]["change"]["properties"][0]["value"]["value"]
    assert value == "UNREACHABLE"
    assert store.get_health("front-door").connectivity == "UNREACHABLE"
