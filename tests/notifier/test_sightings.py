"""Motion and person/package events through the notifier, to the local event gateway
(which validates every message against Amazon's schema, and ours for SmartVision):
the hold, its end by a timer and by the sweep, the cooldown kept in the store, the
classes each user turned off, and the same through the notifier Lambda's actions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.notifier.client import LambdaNotifier, LocalNotifier, local_notifier
from alexa_doorbell.notifier.lambda_handler import handle
from alexa_doorbell.store.base import DetectionClasses, Health, Motion
from tests.commands.test_press import LambdaStandIn
from tests.notifier.test_state_report import USER, Sent, link, make_notifier

URL = "https://127.0.0.1:1/alexa-doorbell-snapshots/snapshots/front-door/x.jpg?X-Amz-Signature=0"


@pytest.fixture
def cloud(make_cloud):
    return make_cloud(
        cameras=[
            CameraConfig(motion=True, detection=["person", "package"]),
            CameraConfig(
                endpoint_id="garage", friendly_name="Garage", channel_name="garage", doorbell=False
            ),
        ]
    )


@pytest.fixture
def sent():
    s = Sent()
    yield s
    assert s.messages, "nothing was sent"
    for m in s.messages:
        assert schema_errors(m) == [], m


@pytest.fixture
def sender(cloud, sent):
    link(cloud)
    n = make_notifier(cloud, sent)
    n.store.put_health(Health("front-door", "OK", time.time()))
    yield n
    n.close()


def motion_states(cloud) -> list[str]:
    return [
        p["value"]
        for m in cloud.cloud.gateway.messages("ChangeReport")
        for p in m["event"]["payload"]["change"]["properties"]
        if p["name"] == "detectionState"
    ]


def test_flapping_motion_is_one_pair_and_ends_by_itself(cloud, sender):
    sender.hold.hold = 0.4
    notifier = LocalNotifier(sender)
    t0 = time.time()
    for i in range(20):  # a sensor chattering for a second
        notifier.motion("front-door", i % 2 == 0, t0 + i * 0.05)
    assert motion_states(cloud) == ["DETECTED"]
    deadline = time.monotonic() + 5
    while motion_states(cloud) == ["DETECTED"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert motion_states(cloud) == ["DETECTED", "NOT_DETECTED"]
    report = cloud.cloud.gateway.messages("ChangeReport")[0]
    context = report["context"]["properties"]
    assert [(p["name"], p["value"]) for p in context] == [("connectivity", {"value": "OK"})]
    # The expiry timer records its event after the gateway's 202: wait for that write.
    want = {"motion DETECTED", "motion NOT_DETECTED"}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        records = [r for r in sender.store.recent_event_records(10) if r.name == "ChangeReport"]
        if {r.detail for r in records} == want:
            break
        time.sleep(0.05)
    assert {r.detail for r in records} == want
    assert sender.store.get_motion("front-door").state == "NOT_DETECTED"
    notifier.close()


def test_a_restart_neither_repeats_detected_nor_forgets_to_end_it(cloud, sender, sent):
    sender.store.put_motion(Motion("front-door", "DETECTED", time.time() - 5))
    sender.hold.hold = 0.2
    now = time.time()
    assert sender.motion("front-door", True, now) == []  # Alexa was told already
    assert sender.motion("front-door", False, now + 0.05) == []
    out = sender.sweep()  # the hold has not run out yet
    assert [o for o in out if o.name == "ChangeReport"] == []
    out = sender.expire_motion(now + 1.0)
    assert [o.status for o in out] == ["202"]
    assert motion_states(cloud) == ["NOT_DETECTED"]


def test_motion_of_a_camera_without_motion_sensor_is_refused(cloud, sender, sent):
    out = sender.motion("garage", True, time.time())
    assert [(o.status, o.ok) for o in out] == [("no motion sensor", False)]
    assert "motion = true" in out[0].detail
    sender.press("front-door")  # something valid, for the fixture's check


def test_detection_once_per_visit_with_the_snapshot(cloud, sender):
    t0 = time.time()
    first = sender.detection("front-door", "Person", 0.91, t0, URL, "frigate-1718-abc")
    assert [o.status for o in first] == ["202"]
    assert first[0].detail == "person 0.91"
    for i in range(1, 6):  # standing at the door, reported on every look
        out = sender.detection("front-door", "person", 0.9, t0 + i * 10, URL, f"e{i}")
        assert [o.status for o in out] == ["cooldown"]
    assert [o.status for o in sender.detection("front-door", "package", 0.8, t0 + 60, URL)] == [
        "202"
    ]
    later = t0 + 50 + sender.detection_cooldown  # 120 s unseen since the last look
    assert [o.status for o in sender.detection("front-door", "person", 0.9, later, URL)] == ["202"]
    messages = cloud.cloud.gateway.messages("ObjectDetection")
    items = [m["event"]["payload"]["events"][0] for m in messages]
    assert [i["imageNetClass"] for i in items] == ["person", "package", "person"]
    assert items[0]["eventIdentifier"] == "frigate-1718-abc"
    assert items[0]["frameImageUri"] == URL
    header = messages[0]["event"]["header"]
    assert (header["namespace"], header["payloadVersion"]) == (
        "Alexa.SmartVision.ObjectDetectionSensor",
        "1.0",
    )


def test_a_second_process_does_not_announce_the_same_visit(cloud, sender, sent):
    other = make_notifier(cloud, sent)  # another process, same store file
    t0 = time.time()
    assert sender.detection("front-door", "person", 0.9, t0, URL)[0].status == "202"
    assert other.detection("front-door", "person", 0.9, t0 + 1, URL)[0].status == "cooldown"
    assert len(cloud.cloud.gateway.messages("ObjectDetection")) == 1
    other.close()


def test_a_class_the_user_turned_off_is_not_sent(cloud, sender):
    sender.store.put_detection_classes(DetectionClasses(USER, "front-door", ("package",)))
    out = sender.detection("front-door", "person", 0.9, time.time(), URL)
    assert [(o.status, o.user_id) for o in out] == [("turned off", USER)]
    assert sender.detection("front-door", "package", 0.9, time.time(), URL)[0].status == "202"
    out = sender.detection("garage", "person", 0.9, time.time(), URL)
    assert out[0].status == "not configured" and "none" in out[0].detail
    assert [m["event"]["payload"]["events"][0]["imageNetClass"] for m in
            cloud.cloud.gateway.messages("ObjectDetection")] == ["package"]  # fmt: skip


def test_lambda_actions(cloud, sender):
    sender.hold.hold = 0.0
    t0 = time.time()
    reply = handle(sender, {"action": "motion", "endpoint_id": "front-door", "state": "DETECTED",
                            "at": t0})  # fmt: skip
    assert reply["ok"] and reply["results"][0]["status"] == "202"
    again = handle(sender, {"action": "motion", "endpoint_id": "front-door", "state": "DETECTED",
                            "at": t0})  # fmt: skip
    assert again["results"][0]["status"] == "unchanged"
    raw = {"action": "motion", "endpoint_id": "front-door", "detected": False, "at": t0 + 1}
    assert handle(sender, raw)["results"][0]["status"] == "202"  # hold 0: ends at once
    bad = handle(sender, {"action": "motion", "endpoint_id": "front-door", "at": t0})
    assert not bad["ok"] and "state" in bad["error"]
    request = {
        "action": "detection",
        "endpoint_id": "front-door",
        "label": "person",
        "score": 0.8,
        "at": t0,
        "snapshot_url": URL,
        "event_id": "ev-1",
    }
    assert handle(sender, request)["results"][0]["status"] == "202"
    plain = handle(sender, {**request, "snapshot_url": "http://insecure/x.jpg", "label": "package"})
    assert not plain["ok"] and "https" in plain["error"]
    assert motion_states(cloud) == ["DETECTED", "NOT_DETECTED"]


@pytest.fixture
def lambda_notifier(cloud, sender, monkeypatch, tmp_path) -> Any:
    stand_in = LambdaStandIn(sender, "doorbell-notifier")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLECAMERA000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-only")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", stand_in.url)
    settings = Settings(
        cloud="aws",
        data_dir=tmp_path / "camera",
        notifier_function="doorbell-notifier",
        motion_hold=0.3,
    )
    cam = local_notifier(settings)
    assert isinstance(cam, LambdaNotifier)
    yield cam, stand_in
    cam.close()
    stand_in.close()


def test_the_camera_holds_motion_and_the_lambda_hears_transitions(cloud, lambda_notifier):
    cam, stand_in = lambda_notifier
    t0 = time.time()
    for i in range(10):
        cam.motion("front-door", i % 2 == 0, t0 + i * 0.02)
    cloud.cloud.gateway.wait_for("ChangeReport", 2)
    assert [r.get("state") for r in stand_in.requests] == ["DETECTED", "NOT_DETECTED"]
    assert motion_states(cloud) == ["DETECTED", "NOT_DETECTED"]
    out = cam.detection("front-door", "person", 0.7, time.time(), URL, "ev-9")
    assert [o.status for o in out] == ["202"]
    assert stand_in.requests[-1]["snapshot_url"] == URL


def test_a_quiet_camera_after_a_restart_ends_a_stored_detected(cloud, sender, lambda_notifier):
    sender.store.put_motion(Motion("front-door", "DETECTED", time.time() - 60))
    cam, stand_in = lambda_notifier
    cam.motion("front-door", False, time.time())  # the sink's first word: quiet
    cloud.cloud.gateway.wait_for("ChangeReport")
    time.sleep(0.4)  # past the hold: nothing more comes
    assert [r.get("state") for r in stand_in.requests] == ["NOT_DETECTED"]
    assert motion_states(cloud) == ["NOT_DETECTED"]
