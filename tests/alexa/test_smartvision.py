"""Motion (Alexa.MotionSensor) and person/package detection
(Alexa.SmartVision.ObjectDetectionSensor) messages: each validates, Amazon's parts against
Amazon's schema and the SmartVision parts against this project's own schema; broken ones
are refused naming the field."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from alexa_doorbell.alexa import events, responses, smartvision
from alexa_doorbell.alexa.common import detection_state_property
from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.errors import InvalidDirective
from alexa_doorbell.alexa.schema import schema_errors, validate
from alexa_doorbell.alexa.smartvision import Detection
from alexa_doorbell.store.base import Device

AT = 1_800_000_000.0  # 2027-01-15T08:00:00Z
SNAPSHOT = "https://snapshots.example-bucket.s3.amazonaws.com/front-door/1.jpg?X-Amz-Signature=ab"
PORCH = Device(
    "porch",
    "Porch",
    "porch",
    "Camera",
    doorbell=True,
    full_duplex=True,
    motion=True,
    detection_classes=("person", "package"),
)


def directive(namespace: str, name: str, payload: dict | None = None, version: str = "3"):
    return Directive.parse(
        {
            "directive": {
                "header": {
                    "namespace": namespace,
                    "name": name,
                    "messageId": "m-1",
                    "correlationToken": "corr-abc==",
                    "payloadVersion": version,
                },
                "endpoint": {
                    "scope": {"type": "BearerToken", "token": "Atza|user"},
                    "endpointId": "porch",
                },
                "payload": payload or {},
            }
        }
    )


def set_classes(*names: str, version: str = "1.0") -> Directive:
    return directive(
        smartvision.NAMESPACE,
        "SetObjectDetectionClasses",
        {"objectDetectionClasses": [{"imageNetClass": n} for n in names]},
        version,
    )


def discover_reply(*devices: Device) -> dict:
    d = Directive.parse(
        {
            "directive": {
                "header": {
                    "namespace": "Alexa.Discovery",
                    "name": "Discover",
                    "messageId": "m-2",
                    "payloadVersion": "3",
                },
                "payload": {"scope": {"type": "BearerToken", "token": "Atza|x"}},
            }
        }
    )
    return responses.discover_response(d, devices)


def one_error(msg: dict) -> str:
    errors = schema_errors(msg)
    assert len(errors) >= 1, msg
    return errors[0]


# -- the schema files ---------------------------------------------------------------
def test_our_smartvision_schema_is_kept_apart_and_says_it_is_ours():
    folder = resources.files("alexa_doorbell.alexa").joinpath("schema")
    ours = json.loads(folder.joinpath("alexa_doorbell_smartvision_schema.json").read_text())
    assert "alexa-doorbell's own, not Amazon's" in ours["$comment"]
    assert "written by this project from Amazon's documentation" in ours["$comment"]
    amazon = folder.joinpath("alexa_smart_home_message_schema.json").read_text()
    assert "SmartVision" not in amazon  # Amazon's file is as Amazon ships it


# -- discovery ------------------------------------------------------------------------
def test_discovery_of_a_camera_with_motion_and_detection():
    msg = discover_reply(PORCH, Device("garage", "Garage", "garage"))
    assert schema_errors(msg) == []
    porch, garage = msg["event"]["payload"]["endpoints"]
    assert [c["interface"] for c in porch["capabilities"]] == [
        "Alexa",
        "Alexa.RTCSessionController",
        "Alexa.DoorbellEventSource",
        "Alexa.MotionSensor",
        "Alexa.SmartVision.ObjectDetectionSensor",
        "Alexa.EndpointHealth",
    ]
    motion = porch["capabilities"][3]
    assert motion["version"] == "3"
    assert motion["properties"] == {
        "supported": [{"name": "detectionState"}],
        "proactivelyReported": True,
        "retrievable": True,
    }
    vision = porch["capabilities"][4]
    assert vision["version"] == "1.0"
    assert vision["properties"]["supported"] == [{"name": "objectDetectionClasses"}]
    assert vision["configuration"] == {
        "objectDetectionConfiguration": [{"imageNetClass": "person"}, {"imageNetClass": "package"}]
    }
    assert porch["displayCategories"] == ["CAMERA", "DOORBELL"]  # the icon stays a camera
    ifaces = [c["interface"] for c in garage["capabilities"]]
    assert "Alexa.MotionSensor" not in ifaces
    assert smartvision.NAMESPACE not in ifaces
    # AddOrUpdateReport carries the same descriptions.
    assert schema_errors(events.add_or_update_report([PORCH], "Atza|t")) == []


def test_only_classes_alexa_accepts_are_discovered():
    car_only = Device("drive", "Drive", "drive", detection_classes=("car",))
    [drive] = discover_reply(car_only)["event"]["payload"]["endpoints"]
    assert smartvision.NAMESPACE not in [c["interface"] for c in drive["capabilities"]]
    mixed = Device("yard", "Yard", "yard", detection_classes=("car", "Person", "person"))
    msg = discover_reply(mixed)
    assert schema_errors(msg) == []
    vision = msg["event"]["payload"]["endpoints"][0]["capabilities"][-2]
    assert vision["configuration"]["objectDetectionConfiguration"] == [{"imageNetClass": "person"}]
    with pytest.raises(ValueError):
        smartvision.capability(["car"])


def test_a_broken_smartvision_capability_is_named_where_it_is():
    msg = discover_reply(PORCH)
    vision = msg["event"]["payload"]["endpoints"][0]["capabilities"][4]
    vision["configuration"]["objectDetectionConfiguration"][0]["imageNetClass"] = "dog"
    assert one_error(msg).startswith(
        "event/payload/endpoints/0/capabilities/4/configuration/objectDetectionConfiguration/0"
        "/imageNetClass: 'dog' is not one of"
    )
    vision["configuration"]["objectDetectionConfiguration"][0]["imageNetClass"] = "person"
    vision["version"] = "3"  # the peer's v3 for a 1.0 interface
    assert one_error(msg).startswith("event/payload/endpoints/0/capabilities/4/version")
    del vision["configuration"]
    assert "configuration" in one_error(msg)
    with pytest.raises(ValueError, match="capabilities/4"):
        validate(msg)


def test_amazon_errors_after_a_smartvision_capability_keep_their_own_index():
    """Amazon's part is checked without our capability; its errors still name the item sent."""
    msg = discover_reply(PORCH)
    health = msg["event"]["payload"]["endpoints"][0]["capabilities"][5]
    assert health["interface"] == "Alexa.EndpointHealth"
    health["version"] = "2"
    errors = schema_errors(msg)
    assert errors and all("capabilities/5" in e for e in errors), errors


def test_an_unknown_smartvision_interface_is_refused():
    msg = discover_reply(PORCH)
    caps = msg["event"]["payload"]["endpoints"][0]["capabilities"]
    other = {"type": "AlexaInterface", "interface": "Alexa.SmartVision.Other", "version": "1"}
    caps.insert(1, other)
    assert any(e.startswith("event/payload/endpoints/0/capabilities/1") for e in schema_errors(msg))


# -- motion ---------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["DETECTED", "NOT_DETECTED"])
def test_motion_change_report(state):
    msg = events.motion_change_report("porch", "Atza|t", state, at=AT)
    assert schema_errors(msg) == []
    change = msg["event"]["payload"]["change"]
    assert change["cause"] == {"type": "PHYSICAL_INTERACTION"}
    assert change["properties"] == [
        {
            "namespace": "Alexa.MotionSensor",
            "name": "detectionState",
            "value": state,
            "timeOfSample": "2027-01-15T08:00:00Z",
            "uncertaintyInMilliseconds": 0,
        }
    ]
    assert msg["event"]["endpoint"]["scope"] == {"type": "BearerToken", "token": "Atza|t"}
    assert "context" not in msg


def test_motion_change_report_with_the_unchanged_connectivity_in_context():
    from alexa_doorbell.alexa.common import connectivity_property

    msg = events.motion_change_report(
        "porch", "Atza|t", "DETECTED", at=AT, unchanged=[connectivity_property("OK", AT)]
    )
    assert schema_errors(msg) == []
    assert msg["context"]["properties"][0]["namespace"] == "Alexa.EndpointHealth"


def test_motion_values_are_checked():
    with pytest.raises(ValueError):
        events.motion_change_report("porch", "t", "MAYBE")
    with pytest.raises(ValueError):
        events.motion_change_report("porch", "t", "DETECTED", cause="MAGIC")
    msg = events.motion_change_report("porch", "t", "DETECTED")
    msg["event"]["payload"]["change"]["properties"][0]["value"] = "MAYBE"
    assert "change/properties/0/value" in one_error(msg)


# -- ReportState ----------------------------------------------------------------------
def test_state_report_with_motion_and_enabled_classes():
    d = directive("Alexa", "ReportState")
    msg = responses.state_report(
        d,
        "OK",
        AT,
        properties=[
            detection_state_property("DETECTED", AT),
            smartvision.classes_property(["person"], AT),
        ],
    )
    assert schema_errors(msg) == []
    props = msg["context"]["properties"]
    assert [(p["namespace"], p["name"]) for p in props] == [
        ("Alexa.EndpointHealth", "connectivity"),
        ("Alexa.MotionSensor", "detectionState"),
        (smartvision.NAMESPACE, "objectDetectionClasses"),
    ]
    assert props[2]["value"] == [{"imageNetClass": "person"}]
    props[2]["value"] = [{"imageNetClass": "cat"}]
    assert one_error(msg).startswith("context/properties/2/value/0/imageNetClass")
    props[2]["value"] = []
    props[1]["value"] = "YES"
    assert one_error(msg).startswith("context/properties/1/value")


# -- SetObjectDetectionClasses ------------------------------------------------------
def test_set_classes_directive_parses_with_its_own_payload_version():
    d = set_classes("person", "package", "person")
    assert (d.namespace, d.name) == (smartvision.NAMESPACE, "SetObjectDetectionClasses")
    assert smartvision.requested_classes(d.payload) == ["person", "package"]
    assert smartvision.requested_classes(set_classes(version="3").payload) == []
    with pytest.raises(InvalidDirective, match="payloadVersion"):
        set_classes("person", version="2")
    with pytest.raises(InvalidDirective, match="payloadVersion"):
        directive("Alexa", "ReportState", version="1.0")  # v3 interfaces stay v3


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "objectDetectionClasses must be a list"),
        ({"objectDetectionClasses": {"imageNetClass": "person"}}, "must be a list"),
        ({"objectDetectionClasses": ["person"]}, "[0].imageNetClass"),
        ({"objectDetectionClasses": [{"imageNetClass": 7}]}, "[0].imageNetClass"),
        ({"objectDetectionClasses": [{"imageNetClass": ""}]}, "[0].imageNetClass"),
        ({"objectDetectionClasses": [{"imageNetClass": "x" * 65}]}, "1-64 characters"),
        ({"objectDetectionClasses": [{"imageNetClass": "person"}] * 33}, "over 32"),
    ],
)
def test_set_classes_payload_of_the_wrong_shape(payload, fragment):
    with pytest.raises(InvalidDirective) as info:
        smartvision.requested_classes(payload)
    assert fragment in info.value.message


def test_set_classes_replies():
    d = set_classes("person")
    ok = responses.object_detection_classes_set(d, ["person"], AT)
    assert schema_errors(ok) == []
    header = ok["event"]["header"]
    assert (header["namespace"], header["name"], header["payloadVersion"]) == (
        "Alexa",
        "Response",
        "3",
    )
    assert header["correlationToken"] == "corr-abc=="
    assert ok["event"]["endpoint"]["endpointId"] == "porch"
    assert ok["context"]["properties"] == [smartvision.classes_property(["person"], AT)]
    assert schema_errors(responses.object_detection_classes_set(d, [], AT)) == []  # all off

    bad = responses.object_detection_classes_invalid(d, ["dog", "car"], ["person"], ["person"])
    assert schema_errors(bad) == []
    header = bad["event"]["header"]
    assert (header["namespace"], header["name"], header["payloadVersion"]) == (
        smartvision.NAMESPACE,
        "ErrorResponse",
        "1.0",
    )
    assert header["correlationToken"] == "corr-abc=="
    assert bad["event"]["endpoint"] == {"endpointId": "porch"}  # no token echoed
    payload = bad["event"]["payload"]
    assert payload["type"] == "INVALID_VALUE"
    assert payload["errorClasses"] == [{"imageNetClass": "dog"}, {"imageNetClass": "car"}]
    assert payload["objectDetectionClasses"] == [{"imageNetClass": "person"}]
    assert "'dog'" in payload["message"] and "detects person" in payload["message"]
    broken = copy.deepcopy(bad)
    broken["event"]["payload"]["type"] = "ENDPOINT_BUSY"
    assert one_error(broken).startswith("event/payload/type")
    broken = copy.deepcopy(bad)
    broken["event"]["header"]["payloadVersion"] = "3"
    assert one_error(broken).startswith("event/header/payloadVersion")


# -- ObjectDetection ------------------------------------------------------------------
def test_object_detection_event():
    msg = smartvision.object_detection(
        "porch",
        "Atza|t",
        [
            Detection(
                "person",
                AT,
                frame_image_uri=SNAPSHOT,
                object_identifier="1767862201.5-abc123",
                event_identifier="evt-1",
            ),
            Detection("Package", AT + 0.25, uncertainty_ms=500),
        ],
    )
    assert schema_errors(msg) == []
    header = msg["event"]["header"]
    assert (header["namespace"], header["name"], header["payloadVersion"]) == (
        smartvision.NAMESPACE,
        "ObjectDetection",
        "1.0",
    )
    assert "correlationToken" not in header
    assert msg["event"]["endpoint"] == {
        "scope": {"type": "BearerToken", "token": "Atza|t"},
        "endpointId": "porch",
    }
    person, package = msg["event"]["payload"]["events"]
    assert person == {
        "eventIdentifier": "evt-1",
        "imageNetClass": "person",
        "timeOfSample": "2027-01-15T08:00:00Z",
        "uncertaintyInMilliseconds": 0,
        "objectIdentifier": "1767862201.5-abc123",
        "frameImageUri": SNAPSHOT,
    }
    assert package["imageNetClass"] == "package" and "frameImageUri" not in package
    assert package["eventIdentifier"] != person["eventIdentifier"]
    with pytest.raises(ValueError):
        smartvision.object_detection("porch", "t", [])
    with pytest.raises(ValueError):
        smartvision.object_detection("porch", "t", [Detection("dog", AT)])


def _event(m: dict) -> dict:
    return m["event"]["payload"]["events"][0]


BREAKERS = [
    ("plain http", lambda m: _event(m).update(frameImageUri="http://x/a.jpg"), "frameImageUri"),
    ("not a URL", lambda m: _event(m).update(frameImageUri="snap.jpg"), "frameImageUri"),
    ("unknown class", lambda m: _event(m).update(imageNetClass="dog"), "imageNetClass"),
    ("no event id", lambda m: _event(m).pop("eventIdentifier"), "eventIdentifier"),
    (
        "time with an offset",
        lambda m: _event(m).update(timeOfSample="2027-01-15T08:00:00+01:00"),
        "timeOfSample",
    ),
    ("negative", lambda m: _event(m).update(uncertaintyInMilliseconds=-1), "uncertainty"),
    ("unknown field", lambda m: _event(m).update(snapshot="x"), "snapshot"),
    ("v3", lambda m: m["event"]["header"].update(payloadVersion="3"), "payloadVersion"),
    ("no events", lambda m: m["event"]["payload"].update(events=[]), "events"),
    ("no scope", lambda m: m["event"]["endpoint"].pop("scope"), "scope"),
    ("bad id", lambda m: m["event"]["endpoint"].update(endpointId="a b"), "endpointId"),
    ("correlation", lambda m: m["event"]["header"].update(correlationToken="c"), "header"),
]


@pytest.mark.parametrize(("case", "breaks", "field"), BREAKERS, ids=[b[0] for b in BREAKERS])
def test_a_malformed_object_detection_is_refused_naming_the_field(case, breaks, field):
    msg = smartvision.object_detection(
        "porch", "Atza|t", [Detection("person", AT, frame_image_uri=SNAPSHOT)]
    )
    breaks(msg)
    errors = schema_errors(msg)
    assert errors, case
    assert field in " ".join(errors), errors


def test_classes_helpers():
    assert smartvision.image_net_class(" Person ") == "person"
    assert smartvision.image_net_class("car") is None
    assert smartvision.image_net_class(None) is None
    assert smartvision.accepted(["package", "car", "person", "package"]) == ("package", "person")
    # Never chosen: everything the camera detects; chosen: only what the camera detects.
    assert smartvision.effective_classes(["person", "package"], None) == ("person", "package")
    assert smartvision.effective_classes(["person", "package"], ["package"]) == ("package",)
    assert smartvision.effective_classes(["person"], ["package"]) == ()
    assert smartvision.effective_classes(["person"], []) == ()
