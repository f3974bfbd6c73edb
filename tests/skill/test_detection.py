"""Motion and person/package detection through the skill: discovery from the camera's
settings, SetObjectDetectionClasses stored per user in a real SQLite store, ReportState with
motion and the enabled classes; the same through the Lambda entry point. Every reply is
checked against the schemas (Amazon's, and ours for SmartVision)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig
from alexa_doorbell.lambda_config import ConfigError, SkillConfig
from alexa_doorbell.skill import handler
from alexa_doorbell.skill.detection import enabled_classes
from alexa_doorbell.store import open_store
from alexa_doorbell.store.base import DetectionClasses, Device, Health, Motion
from tests import directives as D
from tests.skill.test_app import check, link

VISION = "Alexa.SmartVision.ObjectDetectionSensor"
OWNER = "amzn1.account.OWNER"


@pytest.fixture
def skill(local_cloud):
    local_cloud.cameras = [
        CameraConfig(motion=True, detection=["person", "package"]),
        CameraConfig(
            endpoint_id="garage", friendly_name="Garage", channel_name="garage", doorbell=False
        ),
    ]
    s = build_skill(local_cloud)
    yield s
    s.store.close()


def linked(local_cloud, skill, user_id: str) -> str:
    who = link(local_cloud, user_id)
    reply = skill.handle(D.accept_grant(who["code"], who["access_token"]))
    check(reply, "Alexa.Authorization", "AcceptGrant.Response")
    return who["access_token"]


@pytest.fixture
def token(local_cloud, skill) -> str:
    """The owner linked the skill; the front door is online."""
    t = linked(local_cloud, skill, OWNER)
    skill.store.put_health(Health("front-door", "OK", skill.clock()))
    return t


def properties(reply: dict) -> dict[tuple[str, str], dict]:
    check(reply, "Alexa", "StateReport")
    return {(p["namespace"], p["name"]): p for p in reply["context"]["properties"]}


def classes_of(prop: dict) -> list[str]:
    return [c["imageNetClass"] for c in prop["value"]]


def test_discovery_follows_the_camera_settings(skill, token):
    payload = check(skill.handle(D.discover(token)), "Alexa.Discovery", "Discover.Response")
    by_id = {e["endpointId"]: e for e in payload["endpoints"]}
    front = [c["interface"] for c in by_id["front-door"]["capabilities"]]
    assert "Alexa.MotionSensor" in front and VISION in front
    vision = next(c for c in by_id["front-door"]["capabilities"] if c["interface"] == VISION)
    assert vision["configuration"]["objectDetectionConfiguration"] == [
        {"imageNetClass": "person"},
        {"imageNetClass": "package"},
    ]
    garage = [c["interface"] for c in by_id["garage"]["capabilities"]]
    assert "Alexa.MotionSensor" not in garage and VISION not in garage


def test_set_classes_is_stored_per_user_and_reported(local_cloud, skill, token):
    reply = skill.handle(D.set_object_detection_classes(token, "person"))
    check(reply, "Alexa", "Response")
    assert reply["event"]["header"]["correlationToken"]
    [prop] = reply["context"]["properties"]
    assert (prop["namespace"], prop["name"]) == (VISION, "objectDetectionClasses")
    assert classes_of(prop) == ["person"]
    stored = skill.store.get_detection_classes(OWNER, "front-door")
    assert stored.classes == ("person",)
    front = skill.store.get_device("front-door")
    assert enabled_classes(skill.store, OWNER, front) == ("person",)

    # Another member of the household (single-user mode: whoever linked) chooses apart.
    other = linked(local_cloud, skill, "amzn1.account.PARTNER")
    assert enabled_classes(skill.store, "amzn1.account.PARTNER", front) == ("person", "package")
    check(skill.handle(D.set_object_detection_classes(other, "package")), "Alexa", "Response")
    mine = properties(skill.handle(D.report_state(token)))[(VISION, "objectDetectionClasses")]
    theirs = properties(skill.handle(D.report_state(other)))[(VISION, "objectDetectionClasses")]
    assert classes_of(mine) == ["person"] and classes_of(theirs) == ["package"]

    # Everything off is a choice too; "3" as payloadVersion is taken as well.
    check(
        skill.handle(D.set_object_detection_classes(token, payload_version="3")),
        "Alexa",
        "Response",
    )
    assert skill.store.get_detection_classes(OWNER, "front-door").classes == ()
    assert enabled_classes(skill.store, OWNER, front) == ()


def test_classes_the_camera_cannot_detect_are_an_invalid_value(skill, token):
    reply = skill.handle(D.set_object_detection_classes(token, "person", "dog", "vehicle"))
    assert schema_errors(reply) == [], reply
    header = reply["event"]["header"]
    assert (header["namespace"], header["name"], header["payloadVersion"]) == (
        VISION,
        "ErrorResponse",
        "1.0",
    )
    payload = reply["event"]["payload"]
    assert payload["type"] == "INVALID_VALUE"
    assert payload["errorClasses"] == [{"imageNetClass": "dog"}, {"imageNetClass": "vehicle"}]
    # What could be enabled is, and the reply says so.
    assert payload["objectDetectionClasses"] == [{"imageNetClass": "person"}]
    assert skill.store.get_detection_classes(OWNER, "front-door").classes == ("person",)
    assert token not in json.dumps(reply)

    # A camera with no detector: nothing can be enabled.
    reply = skill.handle(D.set_object_detection_classes(token, "person", endpoint_id="garage"))
    assert schema_errors(reply) == []
    assert reply["event"]["payload"]["objectDetectionClasses"] == []
    assert "detects no object class" in reply["event"]["payload"]["message"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"objectDetectionClasses": "person"}, {"objectDetectionClasses": [{"name": "person"}]}],
)
def test_a_malformed_set_classes_changes_nothing(skill, token, payload):
    check(skill.handle(D.set_object_detection_classes(token, "package")), "Alexa", "Response")
    d = D.set_object_detection_classes(token)
    d["directive"]["payload"] = payload
    reply = skill.handle(d)
    check(reply, "Alexa", "ErrorResponse")
    assert reply["event"]["payload"]["type"] == "INVALID_DIRECTIVE"
    assert "objectDetectionClasses" in reply["event"]["payload"]["message"]
    assert skill.store.get_detection_classes(OWNER, "front-door").classes == ("package",)


def test_set_classes_on_someone_elses_camera(local_cloud, skill, token):
    skill.store.put_device(
        Device("theirs", "Theirs", "theirs", owner="amzn1.account.X", detection_classes=("person",))
    )
    reply = skill.handle(D.set_object_detection_classes(token, "person", endpoint_id="theirs"))
    check(reply, "Alexa", "ErrorResponse")
    assert reply["event"]["payload"]["type"] == "NO_SUCH_ENDPOINT"
    assert skill.store.get_detection_classes(OWNER, "theirs") is None
    reply = skill.handle(D.set_object_detection_classes("Atza|forged", "person"))
    assert reply["event"]["payload"]["type"] == "INVALID_AUTHORIZATION_CREDENTIAL"
    assert skill.store.get_detection_classes(OWNER, "front-door") is None


def test_report_state_carries_motion(skill, token):
    props = properties(skill.handle(D.report_state(token)))
    # Nothing reported yet: no motion, sampled now; never chosen: every configured class.
    motion = props[("Alexa.MotionSensor", "detectionState")]
    assert motion["value"] == "NOT_DETECTED"
    assert classes_of(props[(VISION, "objectDetectionClasses")]) == ["person", "package"]

    skill.store.put_motion(Motion("front-door", "DETECTED", 1_800_000_000.0))
    props = properties(skill.handle(D.report_state(token)))
    motion = props[("Alexa.MotionSensor", "detectionState")]
    assert motion["value"] == "DETECTED"
    assert motion["timeOfSample"] == "2027-01-15T08:00:00Z"  # when Alexa was told

    # A camera that is not reachable: its motion is unknown, so it is left out.
    skill.store.put_health(Health("front-door", "UNREACHABLE", skill.clock()))
    props = properties(skill.handle(D.report_state(token)))
    assert props[("Alexa.EndpointHealth", "connectivity")]["value"] == {"value": "UNREACHABLE"}
    assert ("Alexa.MotionSensor", "detectionState") not in props

    # A camera without motion or detection reports connectivity alone.
    skill.store.put_health(Health("garage", "OK", skill.clock()))
    props = properties(skill.handle(D.report_state(token, endpoint_id="garage")))
    assert list(props) == [("Alexa.EndpointHealth", "connectivity")]


def test_a_choice_outlives_a_camera_that_stops_detecting_a_class(skill, token):
    skill.store.put_detection_classes(DetectionClasses(OWNER, "front-door", ("package",)))
    skill.store.put_device(
        Device("front-door", "Front Door", "front-door", detection_classes=("person",))
    )
    front = skill.store.get_device("front-door")
    assert enabled_classes(skill.store, OWNER, front) == ()  # package: no longer detected
    prop = properties(skill.handle(D.report_state(token)))[(VISION, "objectDetectionClasses")]
    assert prop["value"] == []


def test_camera_settings_take_only_the_classes_alexa_accepts():
    assert CameraConfig(detection=["person"]).detection == ["person"]
    with pytest.raises(ValidationError) as info:
        CameraConfig(detection=["person", "dog"])
    assert "detection" in str(info.value)
    with pytest.raises(ConfigError, match="detection of 'a'"):
        SkillConfig.from_env(
            {
                "ALEXA_DOORBELL_CAMERAS": json.dumps([{"endpoint_id": "a", "detection": ["dog"]}]),
            }
        )


# -- through the Lambda entry point ------------------------------------------------------
@pytest.fixture
def lambda_env(local_cloud, tmp_path, monkeypatch):
    store_path = tmp_path / "lambda.sqlite3"
    camera = {
        "endpoint_id": "front-door",
        "channel_name": "front-door",
        "doorbell": True,
        "motion": True,
        "detection": ["person", "package"],
    }
    env = {
        "ALEXA_DOORBELL_CLOUD": "local",
        "ALEXA_DOORBELL_LOCAL__PORT": str(local_cloud.local.port),
        "ALEXA_DOORBELL_STORE_URL": f"sqlite:///{store_path}",
        "ALEXA_DOORBELL_CAMERAS": json.dumps([camera]),
        "ALEXA_DOORBELL_SKILL_DEADLINE": "1",
        **local_cloud.aws_env(),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(handler, "_skill", None)
    yield local_cloud, store_path
    if handler._skill is not None:
        handler._skill.store.close()
    monkeypatch.setattr(handler, "_skill", None)


def test_set_classes_through_the_lambda_handler(lambda_env):
    local_cloud, store_path = lambda_env
    who = link(local_cloud, "amzn1.account.LAMBDA")
    token = who["access_token"]
    reply = handler.lambda_handler(D.accept_grant(who["code"], token), None)
    check(reply, "Alexa.Authorization", "AcceptGrant.Response")
    payload = check(
        handler.lambda_handler(D.discover(token), None), "Alexa.Discovery", "Discover.Response"
    )
    [front] = payload["endpoints"]
    assert VISION in [c["interface"] for c in front["capabilities"]]

    reply = handler.lambda_handler(D.set_object_detection_classes(token, "package"), None)
    check(reply, "Alexa", "Response")
    reply = handler.lambda_handler(D.set_object_detection_classes(token, "cat"), None)
    assert schema_errors(reply) == [] and reply["event"]["payload"]["type"] == "INVALID_VALUE"

    # The choice is in the store the notifier reads (another connection to the same file).
    other = open_store(f"sqlite:///{store_path}")
    try:
        assert other.get_detection_classes("amzn1.account.LAMBDA", "front-door").classes == ()
        other.put_detection_classes(
            DetectionClasses("amzn1.account.LAMBDA", "front-door", ("package",))
        )
        other.put_motion(Motion("front-door", "DETECTED"))
        other.put_health(Health("front-door", "OK"))
    finally:
        other.close()
    props = properties(handler.lambda_handler(D.report_state(token), None))
    assert props[("Alexa.MotionSensor", "detectionState")]["value"] == "DETECTED"
    assert classes_of(props[(VISION, "objectDetectionClasses")]) == ["package"]
