"""MQTT inputs against Debian's mosquitto on a free loopback port: Frigate, zigbee2mqtt
topics, Home Assistant discovery, bad payloads, TLS, credentials, a broker that crashes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.inputs.runner import Inputs
from tests.helpers.inputs import (
    Z2M_BUTTON_DOUBLE,
    Z2M_BUTTON_SINGLE,
    Z2M_BUTTON_STATE,
    RecordingSink,
    frigate_event,
    publish,
    tiny_jpeg,
    z2m_motion,
)
from tests.helpers.mosquitto import MISSING, MOSQUITTO, MosquittoBroker

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason=MISSING)

ROOT = Path(__file__).resolve().parents[2]
FRONT = CameraConfig(
    endpoint_id="front-door",
    friendly_name="Front Door",
    motion=True,
    detection=["person", "package"],
    frigate_camera="front_door",
    press_topic="zigbee2mqtt/Doorbell button",
    press_field="action",
    press_payload="single",
)
PORCH = CameraConfig(
    endpoint_id="porch",
    friendly_name="Porch",
    channel_name="porch",
    doorbell=False,
    motion=True,
    motion_topic="zigbee2mqtt/Porch sensor",
    motion_field="occupancy",
)


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    with MosquittoBroker(tmp_path / "broker") as b:
        yield b


def settings(broker: MosquittoBroker, tmp_path: Path, *cams: CameraConfig, **kw: Any) -> Settings:
    return Settings(
        cloud="local",
        data_dir=tmp_path / "data",
        mqtt_url=kw.pop("url", broker.url),
        cameras=list(cams or (FRONT, PORCH)),
        **kw,
    )


@contextlib.asynccontextmanager
async def running(s: Settings, sink: RecordingSink, **kw: Any) -> AsyncIterator[Inputs]:
    wait = kw.pop("wait", True)
    kw.setdefault("environ", {})
    inputs = Inputs(s, sink, mqtt_backoff=(0.05, 0.3), **kw)
    await inputs.start()
    try:
        assert inputs.mqtt is not None
        if wait:
            assert await inputs.mqtt.wait_ready(10), "never connected and subscribed"
        yield inputs
    finally:
        await inputs.stop()


async def settle(inputs: Inputs) -> None:
    await asyncio.sleep(0.05)
    await inputs.dispatcher.drain()


# -- Frigate -----------------------------------------------------------------------------
async def test_a_frigate_person_is_one_detection_with_frigates_snapshot(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    sink = RecordingSink()
    jpeg = tiny_jpeg(90)
    async with running(settings(broker, tmp_path), sink) as inputs:
        start = time.time()
        # In Frigate's order: the object's first snapshot, then "new", then updates, "end".
        await publish(broker.port, "frigate/front_door/person/snapshot", jpeg, retain=True)
        await publish(broker.port, "frigate/events", frigate_event("new", start_time=start))
        for _ in range(3):
            await publish(broker.port, "frigate/events", frigate_event("update", start_time=start))
        await publish(broker.port, "frigate/events", frigate_event("end", start_time=start))
        [det] = await sink.wait_for("detection")
        await settle(inputs)
    assert det.endpoint_id == "front-door"
    label, score, _at, snapshot = det.args
    assert (label, score, snapshot) == ("person", 0.958984375, jpeg)  # top_score
    assert len(sink.of("detection")) == 1


async def test_a_detection_waits_for_the_snapshot_frigate_sends_after_the_event(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    sink = RecordingSink()
    jpeg = tiny_jpeg(200)
    async with running(settings(broker, tmp_path), sink):
        await publish(
            broker.port, "frigate/events", frigate_event("new", label="package", event_id="pk-1")
        )
        await asyncio.sleep(0.2)
        await publish(broker.port, "frigate/front_door/package/snapshot", jpeg, retain=True)
        [det] = await sink.wait_for("detection")
    assert det.args[0] == "package" and det.args[3] == jpeg


async def test_a_retained_snapshot_from_an_earlier_visit_is_never_sent(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    old = tiny_jpeg(30)
    await publish(broker.port, "frigate/front_door/person/snapshot", old, retain=True)
    sink = RecordingSink()
    async with running(settings(broker, tmp_path), sink):
        await publish(broker.port, "frigate/events", frigate_event("new"))
        [det] = await sink.wait_for("detection", timeout=5)
    assert det.args[3] is None  # the agent then takes the camera's own frame


async def test_frigate_labels_alexa_has_no_class_for_and_false_positives_are_not_sent(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    sink = RecordingSink()
    async with running(settings(broker, tmp_path), sink) as inputs:
        await publish(
            broker.port, "frigate/events", frigate_event("new", label="car", event_id="c")
        )
        await publish(
            broker.port, "frigate/events", frigate_event("update", label="dog", event_id="d")
        )
        await publish(
            broker.port,
            "frigate/events",
            frigate_event("update", event_id="fp", false_positive=True),
        )
        await publish(
            broker.port, "frigate/events", frigate_event("new", camera="driveway", event_id="other")
        )
        await publish(broker.port, "frigate/front_door/motion", "ON")  # a sentinel
        await sink.wait_for("motion")
        await asyncio.sleep(1.2)  # longer than a detection would wait for its snapshot
        await settle(inputs)
    assert sink.of("detection") == []


async def test_frigate_zones_announce_an_object_once_it_enters_one(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    cam = FRONT.model_copy(update={"frigate_zones": ["porch"]})
    sink = RecordingSink()
    async with running(settings(broker, tmp_path, cam), sink) as inputs:
        await publish(broker.port, "frigate/events", frigate_event("new", zones=["street"]))
        await publish(broker.port, "frigate/front_door/motion", "ON")
        await sink.wait_for("motion")
        await settle(inputs)
        assert sink.of("detection") == []
        await publish(
            broker.port, "frigate/events", frigate_event("update", zones=["street", "porch"])
        )
        await sink.wait_for("detection")


async def test_frigate_motion_on_and_off(broker: MosquittoBroker, tmp_path: Path) -> None:
    sink = RecordingSink()
    async with running(settings(broker, tmp_path), sink):
        await publish(broker.port, "frigate/front_door/motion", "ON")
        await publish(broker.port, "frigate/front_door/motion", "OFF")
        calls = await sink.wait_for("motion", 2)
    assert [(c.endpoint_id, c.args[0]) for c in calls] == [
        ("front-door", True),
        ("front-door", False),
    ]


# -- a camera's own topics (zigbee2mqtt) -------------------------------------------------
async def test_a_zigbee2mqtt_button_rings_on_its_single_action_only(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    sink = RecordingSink()
    async with running(settings(broker, tmp_path), sink) as inputs:
        for payload in (Z2M_BUTTON_STATE, Z2M_BUTTON_DOUBLE, Z2M_BUTTON_SINGLE):
            await publish(broker.port, "zigbee2mqtt/Doorbell button", payload)
        [press] = await sink.wait_for("press")
        await settle(inputs)
    assert (press.endpoint_id, press.args) == ("front-door", ("PHYSICAL_INTERACTION",))
    assert len(sink.of("press")) == 1


async def test_a_zigbee2mqtt_motion_sensor_reports_occupancy(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    sink = RecordingSink()
    async with running(settings(broker, tmp_path), sink):
        await publish(broker.port, "zigbee2mqtt/Porch sensor", z2m_motion(True))
        await publish(broker.port, "zigbee2mqtt/Porch sensor", z2m_motion(False))
        calls = await sink.wait_for("motion", 2)
    assert [(c.endpoint_id, c.args[0]) for c in calls] == [("porch", True), ("porch", False)]


async def test_plain_on_off_topics(broker: MosquittoBroker, tmp_path: Path) -> None:
    cam = CameraConfig(press_topic="tasmota/bell", motion_topic="tasmota/pir")
    sink = RecordingSink()
    async with running(settings(broker, tmp_path, cam), sink):
        for payload in ("ON", "1", "true"):
            await publish(broker.port, "tasmota/pir", payload)
        await publish(broker.port, "tasmota/pir", "OFF")
        await publish(broker.port, "tasmota/bell", "OFF")  # the release: no ring
        await publish(broker.port, "tasmota/bell", "ON")
        await sink.wait_for("press")
        motions = await sink.wait_for("motion", 4)
    assert [c.args[0] for c in motions] == [True, True, True, False]


async def test_bad_payloads_are_logged_once_and_ignored(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    bad = [
        ("frigate/events", b"not json"),
        ("frigate/events", json.dumps({"type": "new", "after": {"id": "x", "camera": 7}}).encode()),
        ("frigate/events", json.dumps([1, 2]).encode()),
        ("frigate/front_door/motion", b"maybe"),
        ("frigate/front_door/person/snapshot", b"GIF89a..."),
        ("zigbee2mqtt/Porch sensor", b"{oops"),
        ("zigbee2mqtt/Porch sensor", json.dumps({"occupancy": "perhaps"}).encode()),
        ("zigbee2mqtt/Porch sensor", b"\xff\xfe\x00"),
    ]
    with caplog.at_level(logging.INFO, logger="alexa_doorbell.inputs"):
        async with running(settings(broker, tmp_path), sink) as inputs:
            for _ in range(3):  # the same garbage again and again
                for topic, payload in bad:
                    await publish(broker.port, topic, payload)
            await publish(broker.port, "frigate/events", frigate_event("new", camera="garage"))
            await publish(broker.port, "frigate/events", frigate_event("new", camera="garage"))
            # ... and the inputs still work
            await publish(broker.port, "zigbee2mqtt/Porch sensor", z2m_motion(True))
            await publish(broker.port, "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE)
            await sink.wait_for("motion")
            await sink.wait_for("press")
            await settle(inputs)
    assert [c.kind for c in sink.calls] == ["motion", "press"]
    logged = [r for r in caplog.records if r.levelno >= logging.INFO and "ignor" in r.message]
    assert len(logged) == len(bad) + 1, "\n".join(r.message for r in logged)
    text = "\n".join(r.message for r in logged)
    assert "not JSON" in text and "after.camera is 7" in text and "'garage'" in text
    assert "'perhaps' is neither on nor off" in text and "no JPEG" in text


# -- retained messages, and a broker that crashes ----------------------------------------
async def test_the_broker_crashes_and_comes_back_nothing_is_sent_twice(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A button whose zigbee2mqtt device has retain: true: the broker keeps the last press.
    await publish(broker.port, "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE, retain=True)
    await publish(broker.port, "zigbee2mqtt/Porch sensor", z2m_motion(True), retain=True)
    sink = RecordingSink()
    with caplog.at_level(logging.WARNING, logger="alexa_doorbell.inputs"):
        async with running(settings(broker, tmp_path), sink) as inputs:
            assert inputs.mqtt is not None
            await publish(broker.port, "frigate/front_door/motion", "ON")  # sentinel
            await sink.wait_for("motion")
            assert sink.of("press") == []  # the retained press replayed: no ring
            await publish(broker.port, "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE)
            await sink.wait_for("press")
            await publish(broker.port, "frigate/events", frigate_event("new", event_id="e1"))
            await sink.wait_for("detection")

            broker.kill()
            for _ in range(100):
                if not inputs.mqtt.ready.is_set():
                    break
                await asyncio.sleep(0.02)
            assert not inputs.mqtt.ready.is_set()
            await asyncio.sleep(0.5)  # a few failed attempts while it is down
            broker.start()
            assert await inputs.mqtt.wait_ready(10), "did not reconnect"
            assert inputs.mqtt.connects == 2

            # Retained press and motion replay on resubscribe; Frigate re-sends an update of
            # the object it still tracks: none of them is news.
            await publish(broker.port, "frigate/events", frigate_event("update", event_id="e1"))
            await publish(broker.port, "frigate/front_door/motion", "OFF")  # sentinel
            await sink.wait_for("motion", 2)
            await publish(broker.port, "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE)
            await sink.wait_for("press", 2)
            await settle(inputs)
    assert [(c.kind, c.endpoint_id) for c in sink.calls] == [
        ("motion", "front-door"),
        ("press", "front-door"),
        ("detection", "front-door"),
        ("motion", "front-door"),
        ("press", "front-door"),
    ]
    lost = [r for r in caplog.records if "mqtt" in r.message and r.levelno == logging.WARNING]
    assert len(lost) == 1 and "lost" in lost[0].message  # one warning for the whole outage


async def test_a_broker_that_is_not_there_yet_is_waited_for(tmp_path: Path) -> None:
    b = MosquittoBroker(tmp_path / "late")
    sink = RecordingSink()
    async with running(settings(b, tmp_path), sink, wait=False) as inputs:
        assert inputs.mqtt is not None
        await asyncio.sleep(0.4)
        assert not inputs.mqtt.ready.is_set()
        b.start()
        try:
            assert await inputs.mqtt.wait_ready(10)
            await publish(b.port, "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE)
            await sink.wait_for("press")
        finally:
            await inputs.stop()
            b.stop()


# -- Home Assistant discovery ------------------------------------------------------------
async def retained(port: int, topic_filter: str, quiet: float = 0.5) -> dict[str, bytes]:
    """What the broker holds retained under ``topic_filter``, as a new subscriber sees it."""
    got: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic_filter)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(quiet):
                async for message in client.messages:
                    assert message.retain, message.topic.value
                    got[message.topic.value] = bytes(message.payload)  # type: ignore[arg-type]
    return got


async def test_home_assistant_sees_the_cameras_with_availability(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    sink = RecordingSink()
    async with running(settings(broker, tmp_path), sink) as inputs:
        configs = await retained(broker.port, "homeassistant/#")
        status = await retained(broker.port, "alexa-doorbell/#")
        # What HA would see on its state topics
        async with aiomqtt.Client("127.0.0.1", broker.port) as ha:
            await ha.subscribe("alexa-doorbell/front-door/press")
            await ha.subscribe("alexa-doorbell/front-door/detection")
            await publish(broker.port, "zigbee2mqtt/Doorbell button", Z2M_BUTTON_SINGLE)
            await publish(broker.port, "frigate/events", frigate_event("new"))
            seen = {}
            async with asyncio.timeout(5):
                async for message in ha.messages:
                    seen[message.topic.value] = json.loads(message.payload)  # type: ignore[arg-type]
                    if len(seen) == 2:
                        break
        await publish(broker.port, "zigbee2mqtt/Porch sensor", z2m_motion(True))
        await sink.wait_for("motion")
        await settle(inputs)
        states = await retained(broker.port, "alexa-doorbell/+/motion")
    after = await retained(broker.port, "alexa-doorbell/status")

    node = "alexa_doorbell_front-door"
    doorbell = json.loads(configs[f"homeassistant/event/{node}_doorbell/config"])
    assert doorbell["event_types"] == ["press"] and doorbell["device_class"] == "doorbell"
    assert doorbell["state_topic"] == "alexa-doorbell/front-door/press"
    motion = json.loads(configs[f"homeassistant/binary_sensor/{node}_motion/config"])
    assert motion["device_class"] == "motion" and motion["payload_on"] == "ON"
    detection = json.loads(configs[f"homeassistant/event/{node}_detection/config"])
    assert detection["event_types"] == ["person", "package"]
    snapshot = json.loads(configs[f"homeassistant/camera/{node}_snapshot/config"])
    assert snapshot["topic"] == "alexa-doorbell/front-door/snapshot"
    porch = "alexa_doorbell_porch"
    assert f"homeassistant/event/{porch}_doorbell/config" not in configs  # doorbell = false
    assert f"homeassistant/binary_sensor/{porch}_motion/config" in configs
    for topic, raw in configs.items():
        config = json.loads(raw)
        assert config["availability_topic"] == "alexa-doorbell/status", topic
        assert config["unique_id"] in topic
        assert config["device"]["identifiers"][0] in (node, porch)
        assert config["origin"]["name"] == "alexa-doorbell"
    assert status["alexa-doorbell/status"] == b"online"
    assert seen == {
        "alexa-doorbell/front-door/press": {"event_type": "press"},
        "alexa-doorbell/front-door/detection": {"event_type": "person", "score": 0.959},
    }
    assert states == {
        "alexa-doorbell/front-door/motion": b"OFF",
        "alexa-doorbell/porch/motion": b"ON",
    }
    assert after == {"alexa-doorbell/status": b"offline"}  # a clean stop says goodbye


CRASHER = """
import asyncio, sys
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.inputs.runner import Inputs
from tests.helpers.inputs import RecordingSink

async def main():
    s = Settings(cloud="local", data_dir=sys.argv[2], mqtt_url=sys.argv[1],
                 cameras=[CameraConfig()])
    inputs = Inputs(s, RecordingSink(), environ={})
    await inputs.start()
    await inputs.mqtt.wait_ready(10)
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_an_agent_that_dies_is_offline_in_home_assistant(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHER, broker.url, str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == b"ready"
        assert await retained(broker.port, "alexa-doorbell/status") == {
            "alexa-doorbell/status": b"online"
        }
        proc.kill()  # no clean goodbye: the broker publishes the will
        proc.wait(10)
        for _ in range(50):
            if await retained(broker.port, "alexa-doorbell/status", 0.1) == {
                "alexa-doorbell/status": b"offline"
            }:
                break
        else:
            raise AssertionError("the will (offline) was not published")
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


# -- TLS and credentials -----------------------------------------------------------------
async def test_mqtts_with_the_brokers_ca_and_a_password_from_the_environment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from alexa_doorbell.cloud.tls import ensure_certificate

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, "localhost")
    with MosquittoBroker(tmp_path / "tls", users={"door": "s3cret-pass"}, tls=(cert, key)) as b:
        good = {
            "ALEXA_DOORBELL_MQTT_USERNAME": "door",
            "ALEXA_DOORBELL_MQTT_PASSWORD": "s3cret-pass",
        }
        s = settings(
            b, tmp_path, CameraConfig(press_topic="bell"), url=b.tls_url, mqtt_ca_file=cert
        )
        sink = RecordingSink()
        async with running(s, sink, environ=good):
            async with aiomqtt.Client(
                "127.0.0.1", b.port, username="door", password="s3cret-pass"
            ) as device:
                await device.publish("bell", "ON", qos=1)
            await sink.wait_for("press")

        with caplog.at_level(logging.WARNING, logger="alexa_doorbell.inputs"):
            wrong = {**good, "ALEXA_DOORBELL_MQTT_PASSWORD": "nope"}
            async with running(s, RecordingSink(), environ=wrong, wait=False) as inputs:
                assert inputs.mqtt is not None
                assert not await inputs.mqtt.wait_ready(1.0)
            untrusted = settings(b, tmp_path, CameraConfig(press_topic="bell"), url=b.tls_url)
            async with running(untrusted, RecordingSink(), environ=good, wait=False) as inputs:
                assert inputs.mqtt is not None
                assert not await inputs.mqtt.wait_ready(1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert any("unreachable" in m and "authoriz" in m.lower() for m in messages), messages
    assert any("CERTIFICATE_VERIFY_FAILED" in m for m in messages), messages
    assert not any("nope" in m or "s3cret" in m for m in messages)


async def test_the_configs_are_published_again_when_home_assistant_comes_back(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    live: list[str] = []
    async with (
        running(settings(broker, tmp_path), RecordingSink()),
        aiomqtt.Client("127.0.0.1", broker.port) as ha,
    ):
        await ha.subscribe("homeassistant/+/+/config")
        kept: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for message in ha.messages:  # the retained ones first
                    assert message.retain
                    kept.append(message.topic.value)
        await ha.publish("homeassistant/status", "online")  # HA's birth message
        async with asyncio.timeout(5):
            async for message in ha.messages:
                assert not message.retain  # sent just now, to a subscriber
                live.append(message.topic.value)
                if len(live) == len(kept):
                    break
    assert sorted(live) == sorted(kept) and len(kept) == 5  # front door 4, porch motion
