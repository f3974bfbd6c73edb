"""From the devices at home to what Alexa says: the inputs (a real webhook on uvicorn, a
real mosquitto broker) through the notifier sink, the snapshot in the local cloud's S3,
the local event gateway (which validates every event against the schemas) and the
simulated Alexa, which fetches frameImageUri over HTTPS as a real one would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alexa_doorbell.amazon.snapshots import SnapshotStore
from alexa_doorbell.config import CameraConfig, WebhookConfig
from alexa_doorbell.inputs.notifier_sink import NotifierSink
from alexa_doorbell.inputs.runner import Inputs
from alexa_doorbell.notifier.client import LocalNotifier
from alexa_doorbell.store.base import DetectionClasses, Health
from alexa_doorbell.store.timeline import Timeline
from tests.helpers.inputs import frigate_event, publish
from tests.helpers.mosquitto import MosquittoBroker
from tests.notifier.test_state_report import USER, Sent, link, make_notifier

SECRET = "3c0e9a7f52d14b86a1f09e7c2d5b8a41"
AUTH = {"Authorization": f"Bearer {SECRET}"}
FRONT = CameraConfig(motion=True, detection=["person", "package"], frigate_camera="front_door")


def doorstep_jpeg() -> bytes:
    """A 640x480 JPEG (Amazon asks for 360 pixels a side at least)."""
    import av
    import numpy as np

    from alexa_doorbell.camera.jpeg import encode_jpeg

    y = np.linspace(0, 255, 640 * 480, dtype=np.uint8).reshape(480, 640)
    return encode_jpeg(av.VideoFrame.from_ndarray(y, format="gray"))


class Door:
    """A linked user, the notifier in this process and the inputs, all on one cloud."""

    def __init__(self, cloud: Any, inputs: Inputs, sender: Any, timeline: Timeline) -> None:
        self.cloud = cloud
        self.inputs = inputs
        self.sender = sender
        self.timeline = timeline
        self.gateway = cloud.cloud.gateway
        self.alexa = cloud.cloud.alexa

    async def settle(self) -> None:
        await asyncio.sleep(0.05)
        await self.inputs.dispatcher.drain()


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    with MosquittoBroker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
async def door(make_cloud, broker, tmp_path) -> AsyncIterator[Door]:
    cloud = make_cloud(
        cameras=[FRONT],
        mqtt_url=broker.url,
        ha_discovery=False,
        webhook=WebhookConfig(enabled=True, port=0),
        motion_hold=0.3,
    )
    link(cloud)
    sent = Sent()
    sender = make_notifier(cloud, sent)
    sender.store.put_health(Health("front-door", "OK", time.time()))
    notifier = LocalNotifier(sender)
    snapshots = SnapshotStore.from_settings(cloud.settings)
    timeline = Timeline.in_dir(tmp_path / "camera")
    sink = NotifierSink(cloud.settings, notifier, snapshots, timeline=timeline)
    env = {"ALEXA_DOORBELL_WEBHOOK_SECRET": SECRET}
    inputs = Inputs(cloud.settings, sink, environ=env, mqtt_backoff=(0.05, 0.3))
    await inputs.start()
    try:
        assert inputs.mqtt is not None and await inputs.mqtt.wait_ready(10)
        yield Door(cloud, inputs, sender, timeline)
    finally:
        await inputs.stop()
        notifier.close()
        snapshots.close()
        timeline.close()
    from alexa_doorbell.alexa.schema import schema_errors

    for message in sent.messages:  # the gateway validated them too (400 otherwise)
        assert schema_errors(message) == [], message


async def test_a_webhook_person_is_announced_with_the_same_picture(door: Door) -> None:
    jpeg = doorstep_jpeg()
    body = {"label": "person", "score": 0.88, "snapshot": base64.b64encode(jpeg).decode()}
    async with httpx.AsyncClient(base_url=door.inputs.webhook.url, timeout=5) as client:  # type: ignore[union-attr]
        assert (await client.post("/hooks/front-door/detection", json=body)).status_code == 401
        reply = await client.post("/hooks/front-door/detection", headers=AUTH, json=body)
        assert reply.status_code == 202
        await door.settle()
        [message] = await asyncio.to_thread(door.gateway.wait_for, "ObjectDetection")
        item = message["event"]["payload"]["events"][0]
        assert item["imageNetClass"] == "person"
        uri = item["frameImageUri"]
        assert uri.startswith("https://127.0.0.1:") and "X-Amz-Signature=" in uri
        # Alexa fetches it: the same bytes as the webhook sent.
        [said] = await asyncio.to_thread(door.alexa.wait_for, 1)
        assert said.text == "Person detected at Front Door"
        assert said.image_error is None, said.image_error
        assert said.image_sha256 == hashlib.sha256(jpeg).hexdigest()
        assert said.image_type == "image/jpeg"
        # A second look within the cooldown: no upload, no event.
        again = await client.post("/hooks/front-door/detection", headers=AUTH, json=body)
        assert again.status_code == 202
        await door.settle()
    assert len(door.gateway.messages("ObjectDetection")) == 1
    [entry] = door.timeline.recent()
    assert (entry.kind, entry.what, entry.score, entry.status) == (
        "detection",
        "person",
        0.88,
        "202",
    )
    assert entry.snapshot_key and entry.snapshot_key.startswith("snapshots/front-door/")


async def test_press_and_motion_through_the_webhook(door: Door) -> None:
    async with httpx.AsyncClient(base_url=door.inputs.webhook.url, timeout=5) as client:  # type: ignore[union-attr]
        assert (await client.post("/hooks/front-door/press", headers=AUTH)).status_code == 202
        for _ in range(5):  # "motion now", five times within the hold
            assert (await client.post("/hooks/front-door/motion", headers=AUTH)).status_code == 202
        await door.settle()
    await asyncio.to_thread(door.gateway.wait_for, "ChangeReport", 2, 5.0)
    said = await asyncio.to_thread(door.alexa.wait_for, 3)
    assert [(a.kind, a.text) for a in said] == [
        ("announcement", "Someone is at the Front Door"),
        ("routine", "Motion at Front Door"),
        ("routine", "No motion at Front Door"),
    ]
    assert [(e.kind, e.status) for e in reversed(door.timeline.recent())] == [
        ("press", "202"),
        ("motion", "202"),
    ]


async def test_a_class_the_user_turned_off_is_not_sent(door: Door) -> None:
    door.sender.store.put_detection_classes(DetectionClasses(USER, "front-door", ("package",)))
    jpeg = doorstep_jpeg()
    snap = base64.b64encode(jpeg).decode()
    async with httpx.AsyncClient(base_url=door.inputs.webhook.url, timeout=5) as client:  # type: ignore[union-attr]
        for label in ("person", "package"):
            body = {"label": label, "snapshot": snap}
            reply = await client.post("/hooks/front-door/detection", headers=AUTH, json=body)
            assert reply.status_code == 202
        await door.settle()
    messages = await asyncio.to_thread(door.gateway.wait_for, "ObjectDetection")
    assert [m["event"]["payload"]["events"][0]["imageNetClass"] for m in messages] == ["package"]
    statuses = {e.what: e.status for e in door.timeline.recent()}
    assert statuses == {"person": "turned off", "package": "202"}


async def test_frigate_through_a_broker_that_restarts_sends_nothing_twice(
    door: Door, broker: MosquittoBroker
) -> None:
    jpeg = doorstep_jpeg()
    start = time.time() - 1
    await publish(broker.port, "frigate/front_door/person/snapshot", jpeg, retain=True)
    await publish(broker.port, "frigate/front_door/motion", "ON")
    await publish(
        broker.port, "frigate/events", frigate_event("new", event_id="e1", start_time=start)
    )
    await asyncio.to_thread(door.gateway.wait_for, "ObjectDetection")
    mqtt = door.inputs.mqtt
    assert mqtt is not None
    broker.kill()
    for _ in range(100):
        if not mqtt.ready.is_set():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    broker.start()
    assert await mqtt.wait_ready(10), "did not reconnect"
    # Frigate still tracks the person and says so again; the motion is still on.
    await publish(
        broker.port, "frigate/events", frigate_event("update", event_id="e1", start_time=start)
    )
    await publish(broker.port, "frigate/front_door/motion", "ON")
    await publish(broker.port, "frigate/front_door/motion", "OFF")
    await door.settle()
    await asyncio.to_thread(door.gateway.wait_for, "ChangeReport", 2, 5.0)
    await asyncio.sleep(0.5)  # past the hold: nothing more may come
    assert len(door.gateway.messages("ObjectDetection")) == 1
    states = [
        p["value"]
        for m in door.gateway.messages("ChangeReport")
        for p in m["event"]["payload"]["change"]["properties"]
    ]
    assert states == ["DETECTED", "NOT_DETECTED"]
    [said] = [a for a in door.alexa.announcements if a.event == "ObjectDetection"]
    assert said.image_sha256 == hashlib.sha256(jpeg).hexdigest()


async def test_the_camera_agent_gives_its_inputs_frames_and_a_snapshot(make_cloud) -> None:
    """``alexa-doorbell camera``'s wiring: the inputs start with the service, a detection
    without a picture is announced with the camera's current frame, pixel motion sees
    the camera's frames while it is watched, and everything stops with the service."""
    from alexa_doorbell.camera.service import CameraService
    from alexa_doorbell.commands.inputs import attach_inputs
    from alexa_doorbell.notifier.client import local_notifier
    from alexa_doorbell.store import open_store

    cam = CameraConfig(
        width=640, height=480, fps=15, audio="silence", motion=True, detection=["person"],
        pixel_motion=True,
    )  # fmt: skip
    cloud = make_cloud(cameras=[cam], webhook=WebhookConfig(enabled=True, port=0))
    link(cloud)
    settings = cloud.settings
    store = open_store(settings.store_location)
    notifier = local_notifier(settings, store)
    service = CameraService(
        settings, notifier=notifier, agent_options={"signaling": False, "preset": "ultrafast"}
    )
    import os

    os.environ["ALEXA_DOORBELL_WEBHOOK_SECRET"] = SECRET
    try:
        detach = await attach_inputs(service)
    finally:
        del os.environ["ALEXA_DOORBELL_WEBHOOK_SECRET"]
    await service.start()
    try:
        agent = service.camera("front-door").agent
        assert agent.video is not None
        track = agent.video.subscribe()  # somebody watches: the source opens
        for _ in range(10):
            await asyncio.wait_for(track.recv(), 10)
        assert detach.inputs is not None and detach.inputs.webhook is not None
        async with httpx.AsyncClient(base_url=detach.inputs.webhook.url, timeout=5) as client:
            body = {"label": "person", "score": 0.7}
            reply = await client.post("/hooks/front-door/detection", headers=AUTH, json=body)
            assert reply.status_code == 202, reply.text
        [said] = await asyncio.to_thread(cloud.cloud.alexa.wait_for, 1, 10.0, "announcement")
        assert said.text == "Person detected at Front Door"
        assert said.image_type == "image/jpeg" and said.image_size > 1000
        assert said.image_error is None
        assert detach.inputs.analyzers["front-door"].samples > 0  # pixel motion looked
    finally:
        await detach()
        await service.stop()
        notifier.close()
        store.close()
    entries = Timeline.in_dir(settings.data_dir).recent()
    assert [(e.kind, e.what, e.status) for e in entries][-1] == ("detection", "person", "202")


async def test_a_camera_with_pixel_motion_announces_motion_with_nobody_watching(
    make_cloud,
) -> None:
    """The door matters most when nobody watches: a pixel motion camera's source is read
    and decoded without a viewer (nothing encoded), its moving test pattern is motion at
    the gateway; a camera without a detector opens nothing."""
    from alexa_doorbell.camera.service import CameraService
    from alexa_doorbell.commands.inputs import attach_inputs
    from alexa_doorbell.notifier.client import local_notifier
    from alexa_doorbell.store import open_store

    small = {"width": 640, "height": 480, "fps": 15, "audio": "silence"}
    front = CameraConfig(**small, motion=True, pixel_motion=True)  # type: ignore[arg-type]
    garage = CameraConfig(**small, endpoint_id="garage", channel_name="garage")  # type: ignore[arg-type]
    cloud = make_cloud(cameras=[front, garage])
    link(cloud)
    settings = cloud.settings
    store = open_store(settings.store_location)
    notifier = local_notifier(settings, store)
    service = CameraService(
        settings, notifier=notifier, agent_options={"signaling": False, "preset": "ultrafast"}
    )
    detach = await attach_inputs(service)
    await service.start()
    try:
        assert detach.inputs is not None
        analyzer = detach.inputs.analyzers["front-door"]
        changes: list[dict[str, Any]] = []
        for _ in range(150):
            changes = [
                p
                for m in cloud.cloud.gateway.messages("ChangeReport")
                for p in m["event"]["payload"]["change"]["properties"]
                if p["namespace"] == "Alexa.MotionSensor" and p["value"] == "DETECTED"
            ]
            if changes:
                break
            await asyncio.sleep(0.1)
        assert changes, "no motion with nobody watching"
        front_agent = service.camera("front-door").agent
        assert front_agent.video is not None and front_agent.source is not None
        assert not front_agent.video.tracks and front_agent.source.status.state == "live"
        assert analyzer.samples >= 2 and front_agent.video.frames_read > analyzer.samples
        assert front_agent.video.frames_encoded == 0 and front_agent.video.encoder is None
        idle = service.camera("garage").agent
        assert idle.video is not None and idle.source is not None
        assert idle.source.current is None and idle.video.frames_read == 0
        assert idle.source.status.state == "idle"
    finally:
        await detach()
        await service.stop()
        notifier.close()
        store.close()
