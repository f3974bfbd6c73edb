"""A press through the inputs pre-warms its camera and keeps its picture: the camera
agent's cameras (the test pattern, a dead RTSP camera), the local cloud's gateway and
S3, the door timeline in SQLite."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from alexa_doorbell.amazon.snapshots import SnapshotStore
from alexa_doorbell.camera.press_socket import PressNotice, PressSocket
from alexa_doorbell.camera.service import CameraService
from alexa_doorbell.commands.inputs import LatestFrames, PressCamera, attach_inputs
from alexa_doorbell.config import CameraConfig, WebhookConfig
from alexa_doorbell.inputs.notifier_sink import DoorCamera, NotifierSink
from alexa_doorbell.notifier.client import Notifier, local_notifier
from alexa_doorbell.store import open_store
from alexa_doorbell.store.timeline import DoorEvent, Timeline
from tests.notifier.test_state_report import link
from tests.reliability.home import until

SECRET = "5b1f0c7e93a24d68b0e1f7a3c9d2e6b4"
AUTH = {"Authorization": f"Bearer {SECRET}"}
SMALL = {"width": 640, "height": 480, "fps": 15, "audio": "silence"}
AGENT = {"signaling": False, "preset": "ultrafast"}


def size_of(jpeg: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
    return frame.width, frame.height


def dead_rtsp() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"rtsp://127.0.0.1:{port}/nothing-here"  # nothing listens: connection refused


@dataclass
class Agent:
    cloud: Any
    service: CameraService
    notifier: Notifier
    snapshots: SnapshotStore


@pytest.fixture
async def agent(make_cloud, request) -> AsyncIterator[Agent]:
    cloud = make_cloud(cameras=request.param, webhook=WebhookConfig(enabled=True, port=0))
    link(cloud)
    store = open_store(cloud.settings.store_location)
    notifier = local_notifier(cloud.settings, store)
    service = CameraService(cloud.settings, notifier=notifier, agent_options=AGENT)
    snapshots = SnapshotStore.from_settings(cloud.settings)
    try:
        yield Agent(cloud, service, notifier, snapshots)
    finally:
        await service.stop()
        notifier.close()
        store.close()
        snapshots.close()


@pytest.mark.parametrize("agent", [[CameraConfig(**SMALL)]], indirect=True)  # type: ignore[arg-type]
async def test_a_webhook_press_prewarms_the_camera_and_keeps_its_picture(agent: Agent) -> None:
    """``alexa-doorbell camera``'s wiring: a doorbell without a detector has its snapshot
    store; the press warms the camera nobody watches (the encoder made, nothing encoded)
    and its timeline entry has the camera's picture, at the camera's size."""
    os.environ["ALEXA_DOORBELL_WEBHOOK_SECRET"] = SECRET
    try:
        detach = await attach_inputs(agent.service)
    finally:
        del os.environ["ALEXA_DOORBELL_WEBHOOK_SECRET"]
    await agent.service.start()
    video = agent.service.camera("front-door").agent.video
    assert video is not None and video.encoder is None  # idle: nothing open, nothing made
    try:
        assert detach.inputs is not None and detach.inputs.webhook is not None
        async with httpx.AsyncClient(base_url=detach.inputs.webhook.url, timeout=5) as client:
            reply = await client.post("/hooks/front-door/press", headers=AUTH)
            assert reply.status_code == 202, reply.text
        gateway = agent.cloud.cloud.gateway
        assert await asyncio.to_thread(gateway.wait_for, "DoorbellPress", 1, 10.0)
        assert await until(lambda: video.encoder is not None, 10), "the press warmed nothing"
        assert not video.tracks and video.frames_encoded == 0  # ready, not encoding for nobody
    finally:
        await detach()  # waits for the press's picture to reach the timeline
    timeline = Timeline.in_dir(agent.cloud.settings.data_dir)
    try:
        [entry] = timeline.recent()
    finally:
        timeline.close()
    assert (entry.kind, entry.what, entry.status) == ("press", "PHYSICAL_INTERACTION", "202")
    assert entry.snapshot_key and entry.snapshot_key.startswith("snapshots/front-door/")
    assert size_of(agent.snapshots.get(entry.snapshot_key)) == (640, 480)


class Gated:
    """A camera whose picture waits for the test's word: proves what does not wait for it."""

    def __init__(self, camera: DoorCamera, gate: asyncio.Event | None) -> None:
        self.camera, self.gate = camera, gate
        self.prewarmed = 0

    def prewarm(self) -> None:
        self.prewarmed += 1
        self.camera.prewarm()

    async def picture(self) -> av.VideoFrame | None:
        if self.gate is not None:
            await self.gate.wait()
        return await self.camera.picture()


FRONT = CameraConfig(**SMALL, detection=["person"])  # type: ignore[arg-type]
GARAGE = CameraConfig(**SMALL, endpoint_id="garage", channel_name="garage", source=dead_rtsp())  # type: ignore[arg-type]


@pytest.mark.parametrize("agent", [[FRONT, GARAGE]], indirect=True)
async def test_the_announcement_never_waits_for_the_picture(agent: Agent, tmp_path: Path) -> None:
    """The press reaches the gateway while its picture is still to come; a detection
    without a picture meanwhile waits for that picture and is announced with it (the
    same frame: the same JPEG bytes); a camera that is down gives no picture, and its
    press is announced and recorded all the same."""
    await agent.service.start()
    latest, gate = LatestFrames(), asyncio.Event()
    cams: dict[str, Gated] = {}

    def camera_for(eid: str) -> DoorCamera | None:
        if eid not in cams:
            press = PressCamera(agent.service.camera(eid), latest.tap(eid), timeout=1.5)
            cams[eid] = Gated(press, gate if eid == "front-door" else None)
        return cams[eid]

    settings = agent.cloud.settings
    timeline = Timeline.in_dir(tmp_path / "camera")
    sink = NotifierSink(
        settings, agent.notifier, agent.snapshots, timeline=timeline, frames=latest,
        cameras=camera_for,
    )  # fmt: skip
    gateway = agent.cloud.cloud.gateway
    try:
        await asyncio.wait_for(sink.press("front-door", "PHYSICAL_INTERACTION"), 10)
        assert len(gateway.messages("DoorbellPress")) == 1  # sent, the picture still gated
        assert cams["front-door"].prewarmed == 1 and timeline.recent() == []
        assert latest("front-door") is None
        seen = asyncio.ensure_future(sink.detection("front-door", "person", 0.9, time.time(), None))
        await asyncio.sleep(0.3)
        assert not seen.done(), "the detection did not wait for the press's picture"
        gate.set()
        await asyncio.wait_for(seen, 15)
        await sink.settle()
        assert latest("front-door") is not None  # the press's frame, the camera's latest
        entries: dict[str, DoorEvent] = {e.kind: e for e in timeline.recent()}
        press, person = entries["press"], entries["detection"]
        assert press.status == "202" and person.status == "202"
        assert press.snapshot_key and person.snapshot_key
        jpeg = agent.snapshots.get(press.snapshot_key)
        assert size_of(jpeg) == (640, 480)
        assert agent.snapshots.get(person.snapshot_key) == jpeg  # one frame for both

        t0 = time.monotonic()
        await asyncio.wait_for(sink.press("garage", "PHYSICAL_INTERACTION"), 10)
        assert time.monotonic() - t0 < 1.5  # announced before the picture gave up
        assert len(gateway.messages("DoorbellPress")) == 2
        await sink.settle()
        [down] = timeline.recent(endpoint_id="garage")
        assert (down.kind, down.snapshot_key) == ("press", None) and down.status
    finally:
        timeline.close()


@pytest.mark.parametrize("agent", [[CameraConfig(**SMALL)]], indirect=True)  # type: ignore[arg-type]
async def test_a_press_elsewhere_is_recorded_once_with_its_picture(
    agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The press socket's notices through ``attach_inputs``: the first takes the picture
    (once, however often it comes), the answer records the press with its status and
    source; a press never answered is recorded as "no reply"; a camera not served here
    and a bare endpoint id (an older sender) record nothing."""
    service = agent.service
    monkeypatch.setenv("ALEXA_DOORBELL_WEBHOOK_SECRET", SECRET)  # the fixture's webhook
    detach = await attach_inputs(service)
    assert detach.sink is not None
    detach.sink.reply_wait = 1.0
    await service.start()
    cam = service.camera("front-door")
    taken: list[float] = []
    real_picture = cam.picture

    async def picture(timeout: float = 8.0) -> av.VideoFrame | None:
        taken.append(time.monotonic())
        return await real_picture(timeout)

    cam.picture = picture  # type: ignore[method-assign]
    timeline = Timeline.in_dir(agent.cloud.settings.data_dir)  # the sink's, read beside it
    path = tmp_path / "agent.press"
    listener = await PressSocket.open(path, service.press_elsewhere)
    assert listener is not None

    def send(notice: PressNotice) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(notice.encode(), os.fsencode(path))

    video = cam.agent.video
    assert video is not None and video.encoder is None  # idle
    try:
        first = PressNotice("front-door", "p1", source="dashboard", cause="APP_INTERACTION")
        send(first)
        send(first)  # a repeat: the same press
        send(PressNotice("garage", "p3", source="press command"))  # not served here
        send(PressNotice("front-door"))  # pre-warms only
        assert await until(lambda: video.encoder is not None, 10), "the notice warmed nothing"
        await asyncio.sleep(0.3)
        assert len(taken) == 1
        send(PressNotice("front-door", "p1", status="202"))
        t0 = time.monotonic()
        send(PressNotice("front-door", "p2", source="press command", cause="PHYSICAL_INTERACTION"))
        assert await until(lambda: len(taken) == 2, 5)
        assert await until(lambda: len(timeline.recent()) == 2, 10), timeline.recent()
        assert time.monotonic() - t0 >= 0.9  # p2 waited its second for an answer
        entries = {e.status: e for e in timeline.recent()}
    finally:
        listener.close()
        await detach()
        timeline.close()
    assert set(entries) == {"202", "no reply"}, entries
    answered, unanswered = entries["202"], entries["no reply"]
    assert (answered.kind, answered.what, answered.source) == (
        "press",
        "APP_INTERACTION",
        "dashboard",
    )
    assert (unanswered.what, unanswered.source) == ("PHYSICAL_INTERACTION", "press command")
    for entry in (answered, unanswered):
        assert entry.endpoint_id == "front-door" and entry.snapshot_key
        assert size_of(agent.snapshots.get(entry.snapshot_key)) == (640, 480)
    assert len(taken) == 2  # one picture per press
