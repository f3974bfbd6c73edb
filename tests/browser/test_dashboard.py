"""The dashboard in Debian's Chromium against the local cloud and a real camera agent.

The page joins the camera's channel as a KVS VIEWER with the vendored official
SDK and a server-presigned URL, plays the agent's H.264 test pattern, talks
back with Chromium's fake microphone (heard at the agent's sink only while the
button is held), rings the doorbell through the notifier into the gateway
emulator, and shows the camera offline once the agent stops. Screenshots are
saved under artifacts/. By default the browser does not trust the local
cloud's certificate, as a user's would not: the dashboard relays signaling.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from alexa_doorbell.camera.agent import CameraAgent, store_connectivity
from alexa_doorbell.config import Settings
from alexa_doorbell.store import open_store
from alexa_doorbell.web.app import DashboardServer
from tests.helpers.chromium import chromium, requires_chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
VENDOR = ROOT / "src" / "alexa_doorbell" / "web" / "static" / "vendor" / "kvs-webrtc.min.js"
# A fake microphone (a beep) that needs no permission prompt.
FAKE_MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = [
    pytest.mark.browser,
    requires_chromium,
    pytest.mark.skipif(not VENDOR.exists(), reason="the vendored KVS WebRTC SDK is missing"),
]


def _cloud_json(settings: Settings, path: str, body: dict | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        settings.local.url + path,
        data=data,
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _small_camera(settings: Settings) -> None:
    # A small picture keeps the encoder light on a shared 2-core machine.
    cam = settings.cameras[0].model_copy(update={"width": 320, "height": 240, "fps": 15})
    settings.cameras[0] = cam


@asynccontextmanager
async def _dashboard_page(
    settings: Settings, store: Any, path: str = "/", *extra: str, **page_options: Any
) -> AsyncIterator[Any]:
    """A running dashboard, opened at ``path`` in Chromium; both stopped on exit."""
    dashboard = DashboardServer(settings, store=store)
    await dashboard.start()
    try:
        async with chromium(*FAKE_MEDIA_ARGS, *extra) as browser:
            page = await browser.new_page(**page_options)
            await page.goto(dashboard.url + path)
            yield page
    finally:
        await dashboard.stop()


async def _window(page: Any, expr: str, timeout: float = 30000) -> Any:
    try:
        await page.wait_for_function(expr, timeout=timeout)
    except Exception:
        state = await page.evaluate("JSON.stringify(window.dashboard)")
        pytest.fail(f"timed out waiting for {expr}: {state}")
    return await page.evaluate("window.dashboard")


async def test_live_view_talk_and_offline(local_cloud: Settings) -> None:
    _small_camera(local_cloud)
    store = open_store(local_cloud.store_location)
    agent = CameraAgent(
        local_cloud,
        store=store,
        on_connectivity=store_connectivity(store),
        preset="ultrafast",
        sink=str(local_cloud.data_dir / "talk-{session}.wav"),  # "discard" decodes nothing
    )
    await agent.start()
    await agent.wait_ready()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        async with _dashboard_page(
            local_cloud, store, viewport={"width": 1280, "height": 860}
        ) as page:
            # Live view: decoded frames keep coming.
            await _window(page, "window.dashboard.viewer.framesDecoded > 5")
            first = await page.evaluate("window.dashboard.viewer.framesDecoded")
            later = await _window(page, f"window.dashboard.viewer.framesDecoded > {first + 10}")
            stats = later["viewer"]["stats"]
            assert later["viewer"]["via"] == "relay"  # no trust in the cloud's certificate
            assert later["viewer"]["firstFrameMs"] < 15000
            print(
                f"dashboard live view: first frame <= {later['viewer']['firstFrameMs']:.0f} ms,"
                f" {stats['bitrateKbps']:.0f} kbit/s, RTT {stats['rttMs']:.1f} ms,"
                f" buffer {stats['bufferMs']:.0f} ms"
            )
            assert later["viewer"]["state"] == "connected"
            assert stats["width"] == 320 and stats["height"] == 240
            assert stats["bitrateKbps"] and stats["bitrateKbps"] > 10
            # Measured and sane (a loaded 2-core CI machine has shown 643 ms through the
            # relay on loopback); the figure itself belongs to bench/dashboard_bench.py.
            assert stats["rttMs"] is not None and 0 <= stats["rttMs"] < 3000
            assert await page.evaluate("document.getElementById('video').videoWidth") == 320
            assert await page.evaluate("!document.getElementById('video').paused")

            # The status panel: camera online, with this browser as a viewer.
            await page.wait_for_selector("#cameras li[data-connectivity=OK]", timeout=10000)
            await _window(page, "window.dashboard.status.cameras[0].viewers >= 1")
            await page.wait_for_function(
                "document.getElementById('st-latency').textContent.includes('ms')"
            )

            # Push-to-talk: the agent hears the fake microphone only while held.
            session = next(iter(agent.sessions.values()))
            talk = page.locator("#talk")
            box = await talk.bounding_box()
            assert box is not None
            await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await page.mouse.down()
            await _window(page, "window.dashboard.talk.micEnabled === true")
            await _wait_for(lambda: session.sink is not None and session.sink.seconds > 0.3)
            sink = session.sink
            assert sink is not None
            before = (sink.samples, sink._sum_sq)
            await asyncio.sleep(1.0)
            held_rms = _window_rms(sink, before)
            await page.mouse.up()
            await _window(page, "window.dashboard.talk.micEnabled === false")
            await asyncio.sleep(0.5)  # what was in flight
            before = (sink.samples, sink._sum_sq)
            await asyncio.sleep(1.0)
            released_rms = _window_rms(sink, before)
            assert held_rms > 0.01, held_rms
            assert released_rms < held_rms / 10, (held_rms, released_rms)

            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # Phone width: one column, nothing wider than the screen.
            await page.set_viewport_size({"width": 390, "height": 844})
            await asyncio.sleep(0.3)
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0
            await page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)

            # The agent stops: the status panel says offline, with what to do.
            await agent.stop()
            await page.wait_for_selector(
                "#cameras li[data-connectivity=UNREACHABLE]", timeout=10000
            )
            status = await page.evaluate("window.dashboard.status")
            assert status["cameras"][0]["online"] is False
            assert any("offline" in p["what"] for p in status["problems"])
            assert "offline" in await page.locator("#cameras").inner_text()
    finally:
        await agent.stop()
        store.close()


def _window_rms(sink: Any, before: tuple[int, float]) -> float:
    samples = sink.samples - before[0]
    energy = sink._sum_sq - before[1]
    return (energy / samples) ** 0.5 / 32768 if samples else 0.0


async def _wait_for(cond: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.05)


async def test_press_button_reaches_the_gateway(local_cloud: Settings) -> None:
    from alexa_doorbell.alexa.schema import schema_errors
    from alexa_doorbell.commands.skill import build_skill
    from tests import directives as D

    store = open_store(local_cloud.store_location)
    who = _cloud_json(local_cloud, "/_local/lwa/link", {"user_id": "amzn1.account.DASH"})
    skill = build_skill(local_cloud, store)
    reply = skill.handle(D.accept_grant(who["code"], who["access_token"]))
    assert reply["event"]["header"]["name"] == "AcceptGrant.Response", reply
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        async with _dashboard_page(
            local_cloud, store, viewport={"width": 390, "height": 844}
        ) as page:
            await page.wait_for_selector("#users li >> text=amzn1.account.DASH")
            await page.click("#press")
            state = await _window(page, "window.dashboard.lastPress !== null")
            assert state["lastPress"]["ok"] is True, state["lastPress"]
            assert state["lastPress"]["status"] == "202"
            assert "accepted" in await page.locator("#press-result").inner_text()
            # The events table shows what was sent and the gateway's reply.
            await page.wait_for_selector("#events td.ok >> text=202")
            assert "DoorbellPress" in await page.locator("#events").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "dashboard-press.png"), full_page=True)
            body = await page.content()
            assert who["access_token"] not in body
    finally:
        store.close()
    accepted = _cloud_json(local_cloud, "/_local/events?name=DoorbellPress")
    assert len(accepted) == 1, accepted
    event = accepted[0]
    assert schema_errors(event) == []
    assert event["event"]["endpoint"]["endpointId"] == "front-door"
    assert event["event"]["payload"]["cause"]["type"] == "APP_INTERACTION"


async def test_direct_signaling_when_the_browser_trusts_the_certificate(
    local_cloud: Settings,
) -> None:
    """``?direct=1``: the SDK connects to the presigned wss:// URL itself (as on AWS)."""
    _small_camera(local_cloud)
    store = open_store(local_cloud.store_location)
    agent = CameraAgent(local_cloud, store=store, preset="ultrafast")
    await agent.start()
    await agent.wait_ready()
    try:
        # Stands in for a user who trusted the local cloud's certificate.
        async with _dashboard_page(
            local_cloud, store, "/?direct=1", "--ignore-certificate-errors"
        ) as page:
            state = await _window(page, "window.dashboard.viewer.framesDecoded > 5")
            assert state["viewer"]["via"] == "direct"
    finally:
        await agent.stop()
        store.close()


async def test_login_page_wrong_password_then_a_session_that_works(
    local_cloud: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dashboard with a password (required beyond loopback): the login page, a wrong
    password, then a session whose cookie opens the API and the signaling WebSocket."""
    from alexa_doorbell.web import auth

    monkeypatch.setattr(auth, "FAIL_DELAY", 0.2)
    password = "open sesame, says the test"
    _small_camera(local_cloud)
    store = open_store(local_cloud.store_location)
    agent = CameraAgent(local_cloud, store=store, preset="ultrafast")
    await agent.start()
    await agent.wait_ready()
    dashboard = DashboardServer(local_cloud, store=store, password=password)
    await dashboard.start()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        async with chromium(*FAKE_MEDIA_ARGS) as browser:
            context = await browser.new_context(viewport={"width": 390, "height": 844})
            page = await context.new_page()
            await page.goto(dashboard.url + "/")
            assert page.url == dashboard.url + "/login"  # sent to the login page
            await page.screenshot(path=str(ARTIFACTS / "dashboard-login.png"))
            # Without a session the API says so (and gives nothing away).
            refused = await page.evaluate(
                "fetch('/api/status').then(async r => [r.status, await r.text()])"
            )
            assert refused[0] == 401 and "front-door" not in refused[1]

            await page.fill("#password", "not the password")
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            assert page.url == dashboard.url + "/login"
            assert "Wrong password" in await page.locator("#login-result").inner_text()
            assert await context.cookies() == []

            await page.fill("#password", password)
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            assert page.url == dashboard.url + "/"
            (cookie,) = await context.cookies()
            assert cookie["name"] == auth.COOKIE and cookie["httpOnly"] is True
            assert cookie["sameSite"] == "Strict" and cookie["expires"] > 0
            assert password not in cookie["value"]
            assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it

            # The session works: the live view API answers, and the relayed signaling
            # WebSocket carries the cookie (same-site) so frames arrive.
            state = await _window(page, "window.dashboard.viewer.framesDecoded > 5")
            assert state["viewer"]["via"] == "relay" and state["login"] is True
            viewer = await page.evaluate(
                "fetch('/api/cameras/front-door/viewer', {method: 'POST', headers: "
                "{'Content-Type': 'application/json'}, body: '{}'}).then(r => r.json())"
            )
            assert viewer["signedURL"].startswith("wss://") and viewer["relayPath"]
            await _window(page, "window.dashboard.status !== null")

            # Sign out: back to the login page, and the API is closed again.
            async with page.expect_navigation():
                await page.click("#logout button")
            assert page.url == dashboard.url + "/login"
            assert await page.evaluate("fetch('/api/status').then(r => r.status)") == 401
    finally:
        await dashboard.stop()
        await agent.stop()
        store.close()
