"""The inputs' pure parts, tabled: payload dialects, Frigate's messages, broker URLs and
credentials, Home Assistant's discovery configs, the settings, the dispatcher."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.inputs.frigate import parse_event
from alexa_doorbell.inputs.homeassistant import HaCamera, Topics, discovery_configs, object_id
from alexa_doorbell.inputs.mqtt import parse_mqtt_url, read_credentials
from alexa_doorbell.inputs.payloads import ON_WORDS, PRESS_WORDS, PayloadError, read_state
from alexa_doorbell.inputs.sink import QUEUE_LIMIT, Detection, Dispatcher, Motion, OnceLog, Press
from alexa_doorbell.lambda_config import ConfigError
from tests.helpers.inputs import (
    Z2M_BUTTON_SINGLE,
    Z2M_BUTTON_STATE,
    RecordingSink,
    frigate_event,
    z2m_motion,
)


# -- payloads ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "options", "expected"),
    [
        (b"ON", {}, True),
        (b"off", {}, False),
        (b" true\n", {}, True),
        (b"0", {}, False),
        (b"1", {}, True),
        (b'"ON"', {}, True),  # a JSON string
        (b"true", {}, True),
        (b"null", {}, None),
        (z2m_motion(True).encode(), {"field": "occupancy"}, True),
        (z2m_motion(False).encode(), {"field": "occupancy"}, False),
        (Z2M_BUTTON_SINGLE.encode(), {"field": "action", "on": "single"}, True),
        (Z2M_BUTTON_SINGLE.encode(), {"field": "action", "on": "double"}, None),
        (Z2M_BUTTON_STATE.encode(), {"field": "action"}, None),  # a battery report
        (b'{"action": ""}', {"field": "action"}, None),  # zigbee2mqtt clearing the action
        (b'{"action": null}', {"field": "action"}, None),
        (b'{"state": {"motion": 1}}', {"field": "state.motion"}, True),
        (b'{"event": "S", "event_cnt": 3}', {"field": "event", "on": "s"}, True),  # Shelly
        (b"DING", {"on": "ding", "off": "dong"}, True),
        (b"dong", {"on": "ding", "off": "dong"}, False),
        (b"other", {"on": "ding"}, None),
        (b"single", {"on_words": ON_WORDS | PRESS_WORDS}, True),
    ],
)
def test_read_state(payload: bytes, options: dict, expected: bool | None) -> None:
    assert read_state(payload, **options) is expected


@pytest.mark.parametrize(
    ("payload", "options", "says"),
    [
        (b"maybe", {}, "'maybe' is neither on nor off"),
        (b"single", {}, "neither on nor off"),  # not a motion word
        (b"{oops", {"field": "occupancy"}, "not JSON"),
        (b"[1]", {"field": "occupancy"}, "a JSON list, not an object"),
        (b'{"occupancy": "perhaps"}', {"field": "occupancy"}, "'perhaps'"),
        (b'{"occupancy": 7}', {"field": "occupancy"}, "'7' is neither"),
        (b'{"occupancy": [true]}', {"field": "occupancy"}, "a list, not a state"),
        (b'{"state": "ON"}', {}, "set the field key"),
        (b"\xff\xfe", {}, "not UTF-8"),
        (b"x" * 70000, {}, "more than a state message"),
    ],
)
def test_unreadable_payloads_say_why(payload: bytes, options: dict, says: str) -> None:
    with pytest.raises(PayloadError, match=None) as err:
        read_state(payload, **options)
    assert says in str(err.value)


# -- Frigate -----------------------------------------------------------------------------
def test_a_frigate_event_as_frigate_sends_it() -> None:
    obj = parse_event(frigate_event("new", zones=["porch"], start_time=1607123955.475377).encode())
    assert (obj.type, obj.id, obj.camera, obj.label) == (
        "new",
        "1607123955.475377-mxklsc",
        "front_door",
        "person",
    )
    assert obj.score == 0.958984375  # top_score wins over the frame's score
    assert obj.start_time == 1607123955.475377
    assert obj.entered_zones == ("porch",) and obj.has_snapshot and not obj.false_positive


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"type": "begin", "after": {}}, "type is 'begin'"),
        ({"type": "new"}, "no 'after' object"),
        ({"type": "new", "after": {"id": "a", "camera": "c", "label": 3}}, "after.label is 3"),
        (
            {"type": "new", "after": {"id": "a", "camera": "c", "label": "person", "score": "x"}},
            "after.score is 'x', not a number",
        ),
        (
            {"type": "new", "after": {"id": "a", "camera": "c", "label": "person", "score": True}},
            "after.score is True",
        ),
        (
            {"type": "new", "after": {"id": "a", "camera": "c", "label": "p", "entered_zones": 1}},
            "after.entered_zones is 1",
        ),
    ],
)
def test_a_malformed_frigate_event_says_what_is_wrong(message: dict, says: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_event(json.dumps(message).encode())
    assert says in str(err.value)


# -- broker URL and credentials ----------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", ("127.0.0.1", 1883, False)),
        ("mqtt://broker.lan", ("broker.lan", 1883, False)),
        ("mqtts://broker.lan", ("broker.lan", 8883, True)),
        ("mqtts://[::1]:8884", ("::1", 8884, True)),
        (" mqtt://localhost:1884/ ", ("localhost", 1884, False)),
    ],
)
def test_broker_urls(url: str, expected: tuple) -> None:
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("tcp://broker:1883", "use mqtt://host:1883"),
        ("mqtt://user:pw@broker", "no credentials in mqtt_url"),
        ("mqtt://:1883", "names no broker host"),
        ("mqtt://broker:99999", "no URL"),
        ("mqtt://broker/topic", "no path"),
    ],
)
def test_bad_broker_urls(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        parse_mqtt_url(url)
    assert says in str(err.value)


def test_credentials_come_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert read_credentials({}) == (None, None)
    env = {"ALEXA_DOORBELL_MQTT_USERNAME": "door", "ALEXA_DOORBELL_MQTT_PASSWORD": "pw"}
    assert read_credentials(env) == ("door", "pw")
    secret = tmp_path / "mqtt-password"
    secret.write_text("from-a-file\n")
    env = {"ALEXA_DOORBELL_MQTT_USERNAME": "door", "ALEXA_DOORBELL_MQTT_PASSWORD_FILE": str(secret)}
    assert read_credentials(env) == ("door", "from-a-file")
    with pytest.raises(ConfigError, match="MQTT_USERNAME is not"):
        read_credentials({"ALEXA_DOORBELL_MQTT_PASSWORD": "pw"})
    with pytest.raises(ConfigError, match="No such file"):
        read_credentials({"ALEXA_DOORBELL_MQTT_PASSWORD_FILE": str(tmp_path / "absent")})


# -- Home Assistant ----------------------------------------------------------------------
def test_discovery_configs_per_camera() -> None:
    cams = [
        HaCamera("front-door", "Front Door", "acme", "Video doorbell", True, True, True),
        HaCamera("garage.side", "Garage", "acme", "Camera", False, False, False),
    ]
    configs = dict(discovery_configs(cams, Topics("alexa-doorbell", "homeassistant")))
    assert sorted(configs) == [
        "homeassistant/binary_sensor/alexa_doorbell_front-door_motion/config",
        "homeassistant/camera/alexa_doorbell_front-door_snapshot/config",
        "homeassistant/event/alexa_doorbell_front-door_detection/config",
        "homeassistant/event/alexa_doorbell_front-door_doorbell/config",
    ]
    bell = configs["homeassistant/event/alexa_doorbell_front-door_doorbell/config"]
    assert bell["device"] == {
        "identifiers": ["alexa_doorbell_front-door"],
        "name": "Front Door",
        "manufacturer": "acme",
        "model": "Video doorbell",
    }
    assert (bell["availability_topic"], bell["payload_available"]) == (
        "alexa-doorbell/status",
        "online",
    )
    assert object_id("garage.side/x") == "garage_side_x"


# -- settings ----------------------------------------------------------------------------
def test_input_keys_that_need_their_input(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="press_field is set but press_topic is not"):
        CameraConfig(press_field="action")
    with pytest.raises(ValidationError, match="frigate_zones is set but frigate_camera"):
        CameraConfig(frigate_zones=["porch"])
    with pytest.raises(ValidationError, match="gpio_bounce_ms"):
        CameraConfig(gpio_pin=17, gpio_bounce_ms=0)
    with pytest.raises(ValidationError, match="no wildcards"):
        Settings(data_dir=tmp_path, frigate_topic_prefix="frigate/#")
    s = Settings(data_dir=tmp_path, mqtt_base_topic="/home/doorbell/")
    assert s.mqtt_base_topic == "home/doorbell"


def test_every_toml_example_in_the_inputs_guide_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import re

    from alexa_doorbell.config import load_settings

    for name in list(os.environ):
        if name.upper().startswith("ALEXA_DOORBELL_"):
            monkeypatch.delenv(name)
    guide = (Path(__file__).resolve().parents[2] / "docs" / "inputs.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", guide, re.DOTALL)
    assert len(blocks) >= 6
    for i, block in enumerate(blocks):
        path = tmp_path / f"example-{i}.toml"
        path.write_text(f'data_dir = "{tmp_path}"\n' + block)
        monkeypatch.setenv("ALEXA_DOORBELL_CONFIG", str(path))
        try:
            load_settings()
        except ConfigError as exc:
            raise AssertionError(f"docs/inputs.md toml block {i + 1}: {exc}\n{block}") from None


# -- the dispatcher and the log ----------------------------------------------------------
class SlowSink(RecordingSink):
    """Takes its time at the front door, fails on a package, is quick elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def press(self, endpoint_id: str, cause: str) -> None:
        if endpoint_id == "front-door":
            await self.gate.wait()
        await super().press(endpoint_id, cause)

    async def detection(self, endpoint_id, label, score, at, snapshot_jpeg) -> None:  # type: ignore[no-untyped-def]
        if label == "package":
            raise RuntimeError("the notifier fell over")
        await super().detection(endpoint_id, label, score, at, snapshot_jpeg)


async def test_the_dispatcher_keeps_order_per_camera_and_one_slow_camera_holds_up_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = SlowSink()
    d = Dispatcher([sink])
    d.emit(Press("front-door"))
    d.emit(Motion("front-door", True, 1.0))
    for i in range(3):
        d.emit(Motion("garage", i % 2 == 0, float(i)))
    d.emit(Detection("garage", "package", 0.5, 4.0))  # the sink raises: logged, goes on
    d.emit(Detection("garage", "person", 0.9, 5.0))
    await sink.wait_for("detection")
    assert [c.endpoint_id for c in sink.calls] == ["garage"] * 4  # the front door waits
    for _ in range(QUEUE_LIMIT + 10):  # while it waits, its queue fills: the rest dropped
        d.emit(Motion("front-door", False, 2.0))
    sink.gate.set()
    await d.drain()
    front = [c for c in sink.calls if c.endpoint_id == "front-door"]
    assert [c.kind for c in front[:2]] == ["press", "motion"]  # in the order emitted
    assert len(front) == 1 + QUEUE_LIMIT  # the press being sent, and a full queue
    assert any("the notifier fell over" in r.exc_text for r in caplog.records if r.exc_text)
    assert sum("dropping Motion" in r.getMessage() for r in caplog.records) == 1
    await d.close()


def test_a_recurring_problem_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.oncelog")
    once = OnceLog(log, limit=2)
    with caplog.at_level(logging.DEBUG, logger="test.oncelog"):
        for key in ("a", "a", "b", "a", "c", "c"):
            once.warning(key, "problem %s", key)
    levels = [(r.getMessage(), r.levelname) for r in caplog.records]
    assert levels == [
        ("problem a", "WARNING"),
        ("problem a", "DEBUG"),
        ("problem b", "WARNING"),
        ("problem a", "DEBUG"),
        ("problem c", "DEBUG"),  # past the limit: no new warnings at all
        ("problem c", "DEBUG"),
    ]
