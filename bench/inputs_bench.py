"""Inputs benchmark: how fast an event from home reaches the sink, and what the built-in
detectors cost.

Prints one JSON object:
- ``mqtt``: a device's message published to Debian's mosquitto (on a free loopback port)
  until the EventSink is called, p50/p95: a zigbee2mqtt button press, a motion sensor,
  and a Frigate person (its snapshot already published, as Frigate does).
- ``webhook``: POST /hooks/<camera>/press with the Bearer secret until the sink is called.
- ``to_gateway``: the whole way to Alexa, a device's MQTT message until the local
  event gateway accepted the event (202), p50/p95, through the NotifierSink and the
  notifier in this process with the user's access token already in the store (no
  refresh): a zigbee2mqtt press (DoorbellPress), motion (MotionSensor ChangeReport,
  hold 0 so each message is a transition) and a Frigate person (its snapshot put in
  the local cloud's S3 over HTTPS, then ObjectDetection; cooldown 0). Target 50 ms.
- ``pixel_motion``: CPU of the pixel motion detector on 720p yuv420p frames (the Y plane
  read in place, 8x8 block means, the difference): per sample, and the share of one core
  at ``pixel_motion_fps`` (default 4), measured on the analyser's worker thread while
  frames are offered at 30 fps; plus what ``offer()`` costs the video path per frame.
- ``person_detector``: one HOG look at a 720p frame (scaled to 640 wide).
- ``unwatched_camera``: the process's CPU (``time.process_time``) for a 720p30 test
  pattern camera nobody watches, through the agent's own supervised source and video
  fan-out: with pixel motion at 4 fps (its frame tap keeps the source read; nothing is
  encoded), and without a detector (nothing is opened).

    uv run python bench/inputs_bench.py [--messages 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.helpers

from tests.helpers import netguard  # noqa: E402
from tests.helpers.inputs import Z2M_BUTTON_SINGLE, frigate_event, tiny_jpeg, z2m_motion  # noqa: E402
from tests.helpers.mosquitto import MosquittoBroker  # noqa: E402

from alexa_doorbell.config import CameraConfig, LocalCloudConfig, Settings, WebhookConfig  # noqa: E402
from alexa_doorbell.inputs.frames import FrameAnalyzer  # noqa: E402
from alexa_doorbell.inputs.pixels import PixelMotion, downscale, luma_plane  # noqa: E402
from alexa_doorbell.inputs.runner import Inputs  # noqa: E402

SECRET = "bench-webhook-secret-0123456789abcdef"


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[max(0, int(len(ms) * 0.95) - 1)], 3),
        "max_ms": round(ms[-1], 3),
        "n": len(ms),
    }


class TimingSink:
    """Sets a future when the event it waits for arrives."""

    def __init__(self) -> None:
        self.waiting: asyncio.Future[float] | None = None

    def _hit(self) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(time.perf_counter())

    async def press(self, endpoint_id: str, cause: str) -> None:
        self._hit()

    async def motion(self, endpoint_id: str, detected: bool, at: float) -> None:
        self._hit()

    async def detection(
        self, endpoint_id: str, label: str, score: Any, at: float, jpeg: Any
    ) -> None:
        self._hit()


async def one(sink: TimingSink, send) -> float:  # type: ignore[no-untyped-def]
    sink.waiting = asyncio.get_running_loop().create_future()
    t0 = time.perf_counter()
    await send()
    async with asyncio.timeout(10):
        t1 = await sink.waiting
    return t1 - t0


async def event_latency(n: int, workdir: Path) -> dict[str, Any]:
    import aiomqtt

    with MosquittoBroker(workdir / "broker") as broker:
        cam = CameraConfig(
            frigate_camera="front_door",
            press_topic="zigbee2mqtt/Doorbell button",
            press_field="action",
            press_payload="single",
            motion_topic="zigbee2mqtt/Porch sensor",
            motion_field="occupancy",
            motion=True,
            detection=["person"],
        )
        settings = Settings(
            data_dir=workdir / "data",
            mqtt_url=broker.url,
            cameras=[cam],
            webhook=WebhookConfig(enabled=True, port=0),
            ha_discovery=False,  # Alexa's path alone; HA would be a second sink
        )
        sink = TimingSink()
        env = {"ALEXA_DOORBELL_WEBHOOK_SECRET": SECRET}
        async with Inputs(settings, sink, environ=env) as inputs:  # type: ignore[arg-type]
            assert inputs.mqtt is not None and inputs.webhook is not None
            await inputs.mqtt.wait_ready(10)
            async with aiomqtt.Client("127.0.0.1", broker.port) as device:
                press, motion, person = [], [], []
                jpeg = tiny_jpeg()
                for i in range(n):
                    press.append(
                        await one(
                            sink,
                            lambda: device.publish(
                                "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE, qos=1
                            ),
                        )
                    )
                    occupied = z2m_motion(i % 2 == 0)
                    motion.append(
                        await one(
                            sink,
                            lambda o=occupied: device.publish("zigbee2mqtt/Porch sensor", o, qos=1),
                        )
                    )
                    await device.publish(
                        "frigate/front_door/person/snapshot", jpeg, qos=1, retain=True
                    )
                    await asyncio.sleep(0.002)
                    event = frigate_event("new", event_id=f"bench-{i}")
                    person.append(
                        await one(sink, lambda e=event: device.publish("frigate/events", e, qos=1))
                    )
            async with httpx.AsyncClient(base_url=inputs.webhook.url) as http:
                auth = {"Authorization": f"Bearer {SECRET}"}
                hook = [
                    await one(sink, lambda: http.post("/hooks/front-door/press", headers=auth))
                    for _ in range(n)
                ]
    return {
        "mqtt": {
            "zigbee2mqtt_press": stats(press),
            "zigbee2mqtt_motion": stats(motion),
            "frigate_person": stats(person),
        },
        "webhook": {"press": stats(hook)},
    }


async def gateway_latency(n: int, workdir: Path) -> dict[str, Any]:
    import aiomqtt
    from tests.notifier.test_state_report import link

    from alexa_doorbell.amazon.snapshots import SnapshotStore
    from alexa_doorbell.cloud.server import start_cloud_thread
    from alexa_doorbell.inputs.notifier_sink import NotifierSink
    from alexa_doorbell.notifier.client import LocalNotifier
    from alexa_doorbell.notifier.state_report import EventSender
    from alexa_doorbell.store.base import Health

    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[float]] = {}

    def accepted(user_id: str, message: dict[str, Any]) -> None:  # on the cloud's loop
        at = time.perf_counter()
        name = message["event"]["header"]["name"]

        def hit() -> None:
            fut = waiting.get(name)
            if fut is not None and not fut.done():
                fut.set_result(at)

        loop.call_soon_threadsafe(hit)

    async def to_gateway(name: str, send) -> float:  # type: ignore[no-untyped-def]
        waiting[name] = loop.create_future()
        t0 = time.perf_counter()
        await send()
        async with asyncio.timeout(10):
            return await waiting[name] - t0

    with MosquittoBroker(workdir / "broker2") as broker:
        cam = CameraConfig(
            frigate_camera="front_door",
            press_topic="zigbee2mqtt/Doorbell button",
            press_field="action",
            press_payload="single",
            motion_topic="zigbee2mqtt/Porch sensor",
            motion_field="occupancy",
            motion=True,
            detection=["person"],
        )
        settings = Settings(
            cloud="local",
            data_dir=workdir / "cloud",
            local=LocalCloudConfig(port=0, tls_port=0, turn_port=0, turn_tls_port=0),
            mqtt_url=broker.url,
            cameras=[cam],
            ha_discovery=False,
            press_debounce=0.0,
            motion_hold=0.0,
            detection_cooldown=0.0,
        )
        cloud = start_cloud_thread(settings)
        try:
            link(cloud)
            cloud.cloud.gateway.listeners.append(accepted)
            sender = EventSender.from_config(settings.lambda_config())
            sender.store.put_health(Health("front-door", "OK", time.time()))
            notifier = LocalNotifier(sender)
            snapshots = SnapshotStore.from_settings(settings)
            sink = NotifierSink(settings, notifier, snapshots)
            async with Inputs(settings, sink, environ={}) as inputs:  # type: ignore[arg-type]
                assert inputs.mqtt is not None
                await inputs.mqtt.wait_ready(10)
                async with aiomqtt.Client("127.0.0.1", broker.port) as device:
                    jpeg = tiny_jpeg()
                    await device.publish(
                        "frigate/front_door/person/snapshot", jpeg, qos=1, retain=True
                    )
                    press, motion, person = [], [], []
                    for i in range(n):
                        press.append(
                            await to_gateway(
                                "DoorbellPress",
                                lambda: device.publish(
                                    "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE, qos=1
                                ),
                            )
                        )
                        occupied = z2m_motion(i % 2 == 0)
                        motion.append(
                            await to_gateway(
                                "ChangeReport",
                                lambda o=occupied: device.publish(
                                    "zigbee2mqtt/Porch sensor", o, qos=1
                                ),
                            )
                        )
                        await device.publish(
                            "frigate/front_door/person/snapshot", jpeg, qos=1, retain=True
                        )
                        await asyncio.sleep(0.002)
                        event = frigate_event("new", event_id=f"gw-{i}")
                        person.append(
                            await to_gateway(
                                "ObjectDetection",
                                lambda e=event: device.publish("frigate/events", e, qos=1),
                            )
                        )
            notifier.close()
            snapshots.close()
        finally:
            cloud.stop()
    return {
        "to_gateway": {
            "zigbee2mqtt_press": stats(press),
            "zigbee2mqtt_motion": stats(motion),
            "frigate_person_with_snapshot": stats(person),
            "target_ms": 50,
            "token": "cached (no refresh)",
            # Of those figures, what the local gateway spends validating each event against
            # the schemas (Amazon's gateway does its own checks; ours is jsonschema).
            "gateway_schema_check_ms": schema_cost(cloud.cloud.gateway.messages()),
        }
    }


def schema_cost(messages: list[dict[str, Any]]) -> dict[str, float]:
    from alexa_doorbell.alexa.schema import schema_errors

    out: dict[str, float] = {}
    for name in ("DoorbellPress", "ChangeReport", "ObjectDetection"):
        sample = next(m for m in messages if m["event"]["header"]["name"] == name)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            schema_errors(sample)
            times.append(time.perf_counter() - t0)
        out[name] = round(statistics.median(times) * 1000, 2)
    return out


def frame_720p(seed: int) -> av.VideoFrame:
    rng = np.random.default_rng(seed)
    buf = np.full((1080, 1280), 128, np.uint8)
    buf[:720] = np.clip(rng.normal(120, 20, (720, 1280)), 0, 255).astype(np.uint8)
    return av.VideoFrame.from_ndarray(buf, format="yuv420p")


async def pixel_cost(seconds: float, fps: float = 4.0) -> dict[str, Any]:
    frames = [frame_720p(s) for s in range(8)]
    # One sample alone, on this thread's CPU clock
    detector = PixelMotion()
    per_sample = []
    for i in range(200):
        t0 = time.thread_time()
        detector.feed(downscale(luma_plane(frames[i % 8])), i / fps)
        per_sample.append(time.thread_time() - t0)
    # The analyser as the agent runs it: 30 fps offered, ``fps`` analysed on its worker
    analyzer = FrameAnalyzer("bench", lambda e: None, motion=True, fps=fps)
    offer = []
    start = time.perf_counter()
    i = 0
    try:
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            analyzer.offer(frames[i % 8])
            offer.append(time.perf_counter() - t0)
            i += 1
            await asyncio.sleep(1 / 30)
        wall = time.perf_counter() - start
        await asyncio.sleep(0.3)
    finally:
        analyzer.close()
    p50 = statistics.median(per_sample)
    return {
        "width": 1280,
        "height": 720,
        "sample_fps": fps,
        "per_sample_cpu_ms": {
            "p50": round(p50 * 1000, 3),
            "p95": round(sorted(per_sample)[int(len(per_sample) * 0.95) - 1] * 1000, 3),
        },
        "core_percent_at_sample_fps": round(p50 * fps * 100, 2),
        "core_percent_measured": round(analyzer.busy_seconds / wall * 100, 2),
        "frames_offered": i,
        "frames_analysed": analyzer.samples,
        "offer_us_p50": round(statistics.median(offer) * 1e6, 1),
        "target_core_percent": 5.0,
    }


async def unwatched_cost(seconds: float) -> dict[str, Any]:
    from alexa_doorbell.camera.fanout import VideoFanout
    from alexa_doorbell.camera.supervisor import camera_video
    from alexa_doorbell.config import CameraConfig

    out: dict[str, Any] = {"width": 1280, "height": 720, "fps": 30, "sample_fps": 4.0}
    for name, detector in (("idle", False), ("pixel_motion", True)):
        video = camera_video(CameraConfig(width=1280, height=720, fps=30))
        fan = VideoFanout(video, preset="ultrafast")
        analyzer = FrameAnalyzer("bench", lambda e: None, motion=True, fps=4.0)
        fan.start()
        if detector:  # what ServedCamera.add_frame_tap(offer, unwatched=True) does
            fan.frame_taps.append(analyzer.offer)
            video.add_reader()
            fan.wake()
        try:
            await asyncio.sleep(1.5)  # opened and steady
            cpu, wall, read = time.process_time(), time.perf_counter(), fan.frames_read
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            out[name] = {
                "core_percent": round(cpu / wall * 100, 2),
                "frames_read_per_s": round((fan.frames_read - read) / wall, 1),
                "frames_encoded": fan.frames_encoded,
                "source_state": video.status.state,
            }
        finally:
            await fan.stop()
            analyzer.close()
    return out


def person_cost(n: int = 10) -> dict[str, Any]:
    try:
        from alexa_doorbell.inputs.person import HogPersonDetector

        hog = HogPersonDetector()
    except Exception as exc:  # the detect extra is optional
        return {"skipped": str(exc)}
    luma = luma_plane(frame_720p(1))
    times = []
    for _ in range(n):
        t0 = time.thread_time()
        hog.detect(luma)
        times.append(time.thread_time() - t0)
    p50 = statistics.median(times)
    return {
        "look_cpu_ms_p50": round(p50 * 1000, 1),
        "core_percent_at_one_look_per_second": round(p50 * 100, 1),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        latency = asyncio.run(event_latency(args.messages, Path(tmp)))
        latency.update(asyncio.run(gateway_latency(args.messages, Path(tmp))))
    pixels = asyncio.run(pixel_cost(args.seconds))
    unwatched = asyncio.run(unwatched_cost(min(args.seconds, 6.0)))
    print(
        json.dumps(
            {
                "benchmark": "inputs",
                **latency,
                "pixel_motion": pixels,
                "person_detector": person_cost(),
                "unwatched_camera": unwatched,
                "messages": args.messages,
            }
        )
    )


if __name__ == "__main__":
    netguard.run_guarded(main)
