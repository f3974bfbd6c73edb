"""The local event gateway takes ObjectDetection and motion ChangeReports as Alexa would:
checked against the same schemas the tests use (ours for SmartVision), refused with a 400
naming the field, and listed by name under /_local/events."""

from __future__ import annotations

import httpx

from alexa_doorbell.alexa import events, smartvision
from alexa_doorbell.cloud.server import CloudThread
from tests.cloud.test_gateway import assert_gateway_error, post, skill_token

SNAPSHOT = "https://127.0.0.1:8751/snapshots/front-door/1.jpg?X-Amz-Signature=00"


def detection(token: str) -> dict:
    seen = smartvision.Detection(
        "person", 1_800_000_000.0, frame_image_uri=SNAPSHOT, event_identifier="frigate-1"
    )
    return smartvision.object_detection("front-door", token, [seen])


def test_accepts_and_lists_object_detection_and_motion(cloud: CloudThread) -> None:
    settings = cloud.settings
    bearer = skill_token(settings)
    seen = detection(bearer)
    assert post(settings, seen, bearer).status_code == 202
    motion = events.motion_change_report("front-door", bearer, "DETECTED")
    assert post(settings, motion, bearer).status_code == 202
    listed = httpx.get(settings.local.url + "/_local/events?name=ObjectDetection").json()
    [got] = listed
    item = got["event"]["payload"]["events"][0]
    assert item["imageNetClass"] == "person" and item["frameImageUri"] == SNAPSHOT
    [changed] = httpx.get(settings.local.url + "/_local/events?name=ChangeReport").json()
    prop = changed["event"]["payload"]["change"]["properties"][0]
    assert (prop["namespace"], prop["value"]) == ("Alexa.MotionSensor", "DETECTED")
    assert cloud.cloud.gateway.wait_for("ObjectDetection", timeout=1) == [seen]


def test_refuses_a_malformed_object_detection_naming_the_field(cloud: CloudThread) -> None:
    settings = cloud.settings
    bearer = skill_token(settings)
    cases = [
        ("frameImageUri", "http://127.0.0.1:8750/snapshots/1.jpg"),
        ("imageNetClass", "dog"),
        ("timeOfSample", "yesterday"),
    ]
    for field, value in cases:
        bad = detection(bearer)
        bad["event"]["payload"]["events"][0][field] = value
        why = assert_gateway_error(post(settings, bad, bearer), 400, "INVALID_REQUEST_EXCEPTION")
        assert f"event/payload/events/0/{field}" in why, why
    peer_style = detection(bearer)
    peer_style["event"]["header"]["payloadVersion"] = "3"
    why = assert_gateway_error(post(settings, peer_style, bearer), 400, "INVALID_REQUEST_EXCEPTION")
    assert "event/header/payloadVersion" in why
    motion = events.motion_change_report("front-door", bearer, "DETECTED")
    motion["event"]["payload"]["change"]["properties"][0]["value"] = "MOVING"
    why = assert_gateway_error(post(settings, motion, bearer), 400, "INVALID_REQUEST_EXCEPTION")
    assert "event/payload/change/properties/0/value" in why
    # Nothing broken was recorded.
    assert httpx.get(settings.local.url + "/_local/events").json() == []
    # The event's token must be the caller's, as for every other event.
    other = detection("Atza|someone-else")
    assert_gateway_error(post(settings, other, bearer), 400, "INVALID_REQUEST_EXCEPTION")
