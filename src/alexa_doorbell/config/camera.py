"""One camera or doorbell in the settings: ``[[cameras]]``."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alexa_doorbell.alexa.directive import ENDPOINT_ID_RE
from alexa_doorbell.kvs.names import CHANNEL_NAME_RE

log = logging.getLogger("alexa_doorbell.config")


class CameraConfig(BaseModel):
    """One camera or doorbell: its Alexa endpoint and its KVS channel."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key must not fall back to a default

    endpoint_id: str = "front-door"
    friendly_name: str = "Front Door"
    description: str = "Video doorbell"
    manufacturer: str = "alexa-doorbell"
    channel_name: str = "front-door"
    channel_arn: str | None = None
    doorbell: bool = True
    # Talk at the door: "full" (tap to talk), "half" (push to talk) or "none"; "auto"
    # follows the hardware (see talk_mode). Replaces full_duplex (still read, deprecated).
    talk: Literal["auto", "full", "half", "none"] = "auto"
    aec: bool = True  # echo cancellation for a microphone next to the speaker (full duplex)
    owner: str | None = None  # LWA user_id; None = whoever links (single-user)
    motion: bool = False  # a motion input feeds Alexa.MotionSensor (routines: "when motion...")
    # Object classes announced with a snapshot (Alexa.SmartVision): "person", "package"
    detection: list[Literal["person", "package"]] = Field(default_factory=list)
    # Inputs (docs/inputs.md). Frigate: this camera's name in Frigate, and the zones an
    # object must enter to be announced (none: anywhere in the picture).
    frigate_camera: str | None = None
    frigate_zones: list[str] = Field(default_factory=list)
    # A button and a motion sensor on MQTT: the topic, the JSON field that holds the
    # state (zigbee2mqtt "action", "occupancy") and the exact values, when not ON/OFF.
    press_topic: str | None = None
    press_field: str | None = None
    press_payload: str | None = None  # the value that rings, e.g. "single"
    motion_topic: str | None = None
    motion_field: str | None = None
    motion_payload_on: str | None = None
    motion_payload_off: str | None = None
    # A push button on a GPIO pin (extra "gpio"): 17 or "GPIO17", "BOARD11"; wired to
    # ground (active low, the internal pull-up) or to 3.3 V.
    gpio_pin: int | str | None = None
    gpio_bounce_ms: int = Field(50, ge=1, le=2000)
    gpio_active_low: bool = True
    # Built in: motion from the picture (fraction of it that must change, frames a
    # second looked at) and the HOG person detector (extra "detect").
    pixel_motion: bool = False
    pixel_motion_area: float = Field(0.02, gt=0, le=1)
    pixel_motion_fps: float = Field(4.0, gt=0, le=30)
    person_detector: bool = False
    # Media: "testsrc", a file path, "rtsp://...", "webcam" or "webcam:/dev/video0"
    source: str = "testsrc"
    audio: str = "auto"  # "auto" (from source or silence), "tone", "mic", a file path
    width: int = 1280
    height: int = 720
    fps: int = 30
    sink: str = "discard"  # talk-back audio: "discard", "speaker", or a .wav path
    # H.264 from rtsp:// or a file sent as it is when its profile suits Alexa
    # ("auto"), or always decoded and re-encoded ("never").
    passthrough: Literal["auto", "never"] = "auto"
    # Upload for this camera's video to all its viewers together, kbit/s (0: no cap).
    # 4000 is two viewers at full 720p30 quality on a 5-10 Mbit/s home uplink with
    # room left for the house; more viewers share it (docs/camera.md).
    max_upload_kbps: int = Field(4000, ge=0)
    # Lower the video bitrate when a viewer's receiver reports show loss, raise it
    # when the path clears (false: always the full bitrate, as before).
    adapt_bitrate: bool = True
    # A passthrough stream cannot change its bitrate: over the budget, re-encode it
    # ("transcode") or send it as it is ("keep").
    passthrough_over_budget: Literal["transcode", "keep"] = "transcode"
    # Keep the source connected and demuxed while nobody watches (no decoding, no
    # encoding), so the first viewer waits for no handshake and no keyframe. Unset: on
    # for doorbells, off for other cameras. The test pattern has nothing to keep warm.
    warm: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _full_duplex_is_talk(cls, data: Any) -> Any:
        """``full_duplex`` (deprecated for one release): true is talk "full", false "half"."""
        if not isinstance(data, dict) or "full_duplex" not in data:
            return data
        data = dict(data)
        value = data.pop("full_duplex")
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            value = value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ValueError("full_duplex must be true or false (deprecated: use talk)")
        mapped = "full" if value else "half"
        name = data.get("endpoint_id", "front-door")
        log.warning("camera %s: full_duplex is deprecated, use talk = %r instead", name, mapped)
        data.setdefault("talk", mapped)
        return data

    @property
    def talk_mode(self) -> Literal["full", "half", "none"]:
        """``talk``; for "auto", what the hardware at the door allows (docs/camera.md)."""
        if self.talk != "auto":
            return self.talk
        if self.sink in ("discard", "", "none"):  # nothing plays the user's voice
            return "none"
        if self.sink == "speaker":  # its sound reaches the door's microphone
            return "full" if self.aec else "half"
        return "full"  # a .wav recorder: no sound at the door to come back

    @property
    def keep_warm(self) -> bool:
        """``warm`` as set, else whether this is a doorbell (never for the test pattern)."""
        if self.source in ("testsrc", "test", "pattern"):
            return False
        return self.doorbell if self.warm is None else self.warm

    @property
    def full_duplex(self) -> bool:
        """Discovery's isFullDuplexAudioSupported."""
        return self.talk_mode == "full"

    @field_validator("endpoint_id")
    @classmethod
    def _alexa_endpoint_id(cls, value: str) -> str:
        # Alexa's endpointId pattern, matched whole: "front-door\n" must not reach Alexa.
        if not ENDPOINT_ID_RE.fullmatch(value):
            raise ValueError("must be 1-256 of the letters, digits and _ - = # ; : ? @ &")
        return value

    @field_validator("channel_name")
    @classmethod
    def _kvs_channel_name(cls, value: str) -> str:
        if not CHANNEL_NAME_RE.fullmatch(value):
            raise ValueError("must be 1-256 of the letters, digits and _ . - (a KVS channel name)")
        return value

    @model_validator(mode="after")
    def _input_keys_have_their_input(self) -> CameraConfig:
        needs = {
            "press_topic": ("press_field", "press_payload"),
            "motion_topic": ("motion_field", "motion_payload_on", "motion_payload_off"),
            "frigate_camera": ("frigate_zones",),
        }
        for base, keys in needs.items():
            for key in keys:
                if getattr(self, key) and not getattr(self, base):
                    raise ValueError(f"{key} is set but {base} is not: set {base} too")
        return self
