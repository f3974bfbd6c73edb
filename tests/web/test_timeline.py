"""The dashboard's "At the door" timeline in Debian's Chromium: a press, motion and a
person (the snapshot is the camera's own frame, stored in the local cloud's S3) reach
the gateway through the notifier sink, and the page shows them with the picture, read
through the dashboard. The API answers only behind the dashboard's Host check. The
screenshot goes to artifacts/ (docs/images/dashboard-timeline.png is one of them)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from alexa_doorbell.amazon.snapshots import SnapshotStore
from alexa_doorbell.camera.agent import CameraAgent, store_connectivity
from alexa_doorbell.inputs.notifier_sink import NotifierSink
from alexa_doorbell.notifier.client import local_notifier
from alexa_doorbell.store import open_store
from alexa_doorbell.store.timeline import Timeline
from alexa_doorbell.web.app import DashboardServer
from tests.helpers.chromium import chromium, requires_chromium
from tests.notifier.test_state_report import link

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "artifacts" / "dashboard-timeline.png"

pytestmark = [pytest.mark.browser, requires_chromium]


async def test_the_timeline_shows_press_motion_and_a_person_with_the_picture(cloud) -> None:
    settings = cloud.settings
    settings.cameras[0] = settings.cameras[0].model_copy(
        update={"width": 640, "height": 360, "fps": 15, "motion": True, "detection": ["person"]}
    )
    link(cloud)
    store = open_store(settings.store_location)
    notifier = local_notifier(settings, store)
    snapshots = SnapshotStore.from_settings(settings)
    timeline = Timeline.in_dir(settings.data_dir)
    agent = CameraAgent(
        settings, store=store, on_connectivity=store_connectivity(store), preset="ultrafast"
    )
    await agent.start()
    await agent.wait_ready()
    latest: dict[str, Any] = {}
    assert agent.video is not None
    agent.video.frame_taps.append(lambda frame: latest.__setitem__("front-door", frame))
    sink = NotifierSink(settings, notifier, snapshots, timeline=timeline, frames=latest.get)
    dashboard = DashboardServer(settings, store=store)
    await dashboard.start()
    try:
        async with httpx.AsyncClient(base_url=dashboard.url, timeout=5) as client:
            assert (await client.get("/api/timeline")).json() == {"entries": []}
            other = await client.get("/api/timeline", headers={"Host": "evil.example"})
            assert other.status_code == 421
        async with chromium("--autoplay-policy=no-user-gesture-required") as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            await page.goto(dashboard.url + "/")
            await page.wait_for_function("window.dashboard.viewer.framesDecoded > 5", timeout=30000)
            assert "front-door" in latest  # the page watches: the camera decodes frames
            await sink.press("front-door", "PHYSICAL_INTERACTION")
            await sink.motion("front-door", True, time.time())
            await sink.detection("front-door", "person", 0.87, time.time(), None)
            await page.wait_for_function(
                "document.querySelectorAll('#timeline li[data-kind]').length === 3", timeout=10000
            )
            await page.wait_for_function(
                "(() => { const i = document.querySelector('#timeline [data-kind=detection] img');"
                " return i && i.complete && i.naturalWidth === 640; })()",
                timeout=10000,
            )
            kinds = await page.evaluate("window.dashboard.timeline.map(e => [e.kind, e.status])")
            assert kinds == [["detection", "202"], ["motion", "202"], ["press", "202"]]
            text = await page.inner_text("#timeline")
            assert "Person detected (87 %)" in text and "Doorbell pressed" in text
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
        # What the page showed is what Alexa fetched from frameImageUri.
        said = await asyncio.to_thread(cloud.cloud.alexa.wait_for, 3)
        assert [a.text for a in said][:1] == ["Someone is at the Front Door"]
        person = next(a for a in said if a.event == "ObjectDetection")
        [entry] = [e for e in timeline.recent() if e.kind == "detection"]
        stored = snapshots.get(entry.snapshot_key or "")
        assert person.image_sha256 == hashlib.sha256(stored).hexdigest()
        async with httpx.AsyncClient(base_url=dashboard.url, timeout=5) as client:
            picture = await client.get(f"/api/timeline/{entry.id}/snapshot")
            assert picture.content == stored and picture.headers["content-type"] == "image/jpeg"
            assert (await client.get("/api/timeline/9999/snapshot")).status_code == 404
    finally:
        await dashboard.stop()
        await agent.stop()
        notifier.close()
        snapshots.close()
        timeline.close()
        store.close()
