"""A camera's own MQTT topics: a button that rings, a sensor that sees motion.

Per camera (all optional):

    press_topic = "zigbee2mqtt/Doorbell button"   # zigbee2mqtt publishes the device's state
    press_field = "action"                        # ... as JSON: {"action": "single", ...}
    press_payload = "single"                      # which value rings (default: ON, single...)
    motion_topic = "zigbee2mqtt/Porch sensor"
    motion_field = "occupancy"                    # {"occupancy": true, "battery": 100, ...}
    motion_payload_on = "ON"                      # exact values, when not the usual words
    motion_payload_off = "OFF"

Payloads are read by ``payloads.read_state``. A message that is about
something else (no such field, another button action) is skipped quietly; one
that cannot be read is logged once per topic and skipped.

Retained messages are the broker's memory, replayed on every (re)subscribe: a
retained press is never a press (it would ring the bell after each broker
restart), and a retained "motion" can end motion but never start it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from alexa_doorbell.config import CameraConfig
from alexa_doorbell.inputs.mqtt import MqttConnection, Received
from alexa_doorbell.inputs.payloads import ON_WORDS, PRESS_WORDS, PayloadError, read_state
from alexa_doorbell.inputs.sink import Event, Motion, OnceLog, Press

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicRule:
    """What one topic means for one camera."""

    endpoint_id: str
    kind: str  # "press" or "motion"
    topic: str
    field: str | None = None
    on: str | None = None
    off: str | None = None


def rules_for(camera: CameraConfig) -> list[TopicRule]:
    """The rules a camera's settings ask for."""
    rules = []
    if camera.press_topic:
        rules.append(
            TopicRule(
                camera.endpoint_id,
                "press",
                camera.press_topic,
                camera.press_field,
                camera.press_payload,
            )
        )
    if camera.motion_topic:
        rules.append(
            TopicRule(
                camera.endpoint_id,
                "motion",
                camera.motion_topic,
                camera.motion_field,
                camera.motion_payload_on,
                camera.motion_payload_off,
            )
        )
    return rules


class TopicInput:
    def __init__(self, rules: list[TopicRule], emit: Callable[[Event], None]) -> None:
        self.rules: dict[str, list[TopicRule]] = {}
        for rule in rules:
            self.rules.setdefault(rule.topic, []).append(rule)
        self.emit = emit
        self._warn = OnceLog(log)

    def attach(self, conn: MqttConnection) -> None:
        for topic in self.rules:
            conn.route(topic, self.on_message)

    def on_message(self, msg: Received) -> None:
        for rule in self.rules.get(msg.topic, []):
            self._apply(rule, msg)

    def _apply(self, rule: TopicRule, msg: Received) -> None:
        words = ON_WORDS | PRESS_WORDS if rule.kind == "press" else ON_WORDS
        try:
            state = read_state(
                msg.payload, field=rule.field, on=rule.on, off=rule.off, on_words=words
            )
        except PayloadError as exc:
            self._warn.warning(
                (rule.topic, rule.kind, str(exc)),
                "mqtt: ignoring %s on %s (%s of %s): %s",
                _shown(msg.payload),
                msg.topic,
                rule.kind,
                rule.endpoint_id,
                exc,
            )
            return
        if state is None:
            return
        if rule.kind == "press":
            if not state:
                return
            if msg.retained:
                self._warn.info(
                    (rule.topic, "retained"),
                    "mqtt: %s holds a retained press; a replay is no press, ignored",
                    msg.topic,
                )
                return
            self.emit(Press(rule.endpoint_id, "PHYSICAL_INTERACTION", source=f"mqtt {msg.topic}"))
        else:
            if msg.retained and state:
                return
            self.emit(Motion(rule.endpoint_id, state, msg.at, source=f"mqtt {msg.topic}"))


def _shown(payload: bytes) -> str:
    text = payload[:60].decode(errors="replace")
    return repr(text + ("..." if len(payload) > 60 else ""))
