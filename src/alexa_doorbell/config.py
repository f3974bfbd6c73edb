"""Settings for the tools that run outside Lambda (CLI, camera agent, local cloud).

Sources, highest first: environment variables prefixed ``ALEXA_DOORBELL_``
(nested with ``__``, e.g. ``ALEXA_DOORBELL_LOCAL__PORT``), then the TOML file
named by ``ALEXA_DOORBELL_CONFIG`` (default ``alexa-doorbell.toml`` in the
working directory, when present), then the defaults below. Unknown keys are
errors at every level, and ``load_settings`` turns every mistake (malformed
TOML, a bad value, a misspelt key, a named file that is missing) into one
``ConfigError`` line that names the file or variable, the key and what is allowed.

The defaults are the embedded local cloud: no account needed. Set
``cloud = "aws"`` to use AWS KVS, Login with Amazon and the Alexa event gateway;
AWS credentials then come from the standard AWS chain and the LWA client
secret from the environment or AWS Secrets Manager, never from this file.

The Lambda path does not import this module (pydantic is not in the Lambda
runtime); it reads the same ``ALEXA_DOORBELL_`` variables with the stdlib in
``alexa_doorbell.lambda_config``, where the defaults both share live.
``Settings.lambda_config()`` turns these settings into that module's
``SkillConfig``, from which the skill and the notifier are built.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from alexa_doorbell import config_errors
from alexa_doorbell.amazon.events import GATEWAYS as EVENT_GATEWAYS
from alexa_doorbell.lambda_config import (
    LAMBDA_VARIABLES,
    LOCAL_LWA_CLIENT_ID,
    LOCAL_LWA_CLIENT_SECRET,
    LWA_URL,
    ConfigError,
    SkillConfig,
    default_data_dir,
    default_store_url,
    read_secret,
)
from alexa_doorbell.store.base import Device

ENV_PREFIX = "ALEXA_DOORBELL_"
CONFIG_VARIABLE = f"{ENV_PREFIX}CONFIG"
DEFAULT_CONFIG_FILE = "alexa-doorbell.toml"
# ALEXA_DOORBELL_* names that are no Settings field yet no typo either: read by the
# Lambda functions (lambda_config/), beside the settings for secrets that never live in
# the file (web/auth.py, cloud/admin.py), or by the test suite's own knobs (README).
OTHER_VARIABLES = frozenset(
    {"CONFIG", "DASHBOARD_PASSWORD", "DASHBOARD_PASSWORD_FILE", "DASHBOARD_PASSWORD_ARN"}
    | {"LOCAL_ADMIN_TOKEN"}
    | {"MQTT_USERNAME", "MQTT_PASSWORD", "MQTT_PASSWORD_FILE"}  # inputs/mqtt.py
    | {"WEBHOOK_SECRET", "WEBHOOK_SECRET_FILE"}  # inputs/webhook.py
    | LAMBDA_VARIABLES
    | {"NETEM_OPTIONAL", "RELIABILITY_REPORT", "TOKEN_TRIALS", "SOAK_SESSIONS", "SOAK_BURSTS"}
    | {"LOSSY_SEED"}
)

log = logging.getLogger(__name__)

# The local cloud's emulator credentials. They open nothing but the emulator on
# loopback and are documented in the README, like LocalStack's "test"/"test".
LOCAL_AWS_ACCESS_KEY_ID = "AKIALOCALDOORBELL000"
LOCAL_AWS_SECRET_ACCESS_KEY = "local-cloud-emulator-only"
# LOCAL_LWA_CLIENT_ID/SECRET, LWA_URL and EVENT_GATEWAYS (per region, docs/PROTOCOLS.md §3)
# come from the Lambda path's stdlib modules, so both sides use the same values.


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
    def full_duplex(self) -> bool:
        """Discovery's isFullDuplexAudioSupported."""
        return self.talk_mode == "full"

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


class LocalCloudConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8750  # plain HTTP: REST APIs (KVS, LWA, event gateway)
    tls_port: int = 8751  # TLS: WSS signaling (the official JS SDK needs wss://)
    aws_access_key_id: str = LOCAL_AWS_ACCESS_KEY_ID
    aws_secret_access_key: SecretStr = SecretStr(LOCAL_AWS_SECRET_ACCESS_KEY)
    lwa_client_id: str = LOCAL_LWA_CLIENT_ID
    lwa_client_secret: SecretStr = SecretStr(LOCAL_LWA_CLIENT_SECRET)
    access_token_lifetime: int = 3600  # seconds; tests shorten it to see expiry
    idle_timeout: float = 600.0  # KVS drops a silent WebSocket after ~10 min
    connection_max_age: float = 3600.0  # and caps a connection at about an hour
    max_viewers: int = 10
    message_ttl: int = 60  # seconds, per channel default (KVS allows 5-120)
    # SendAlexaOfferToMaster waits for the master's answer at most min(channel TTL, this)
    offer_wait_max: float = 10.0
    # Host names it answers to besides loopback, `host` and address literals (DNS rebinding)
    allowed_hosts: list[str] = Field(default_factory=list)
    # A real STUN/TURN server behind GetIceServerConfig: Debian's coturn, started on the
    # first call when installed (cloud/turn.py); false: an empty IceServerList
    turn: bool = True
    turn_port: int = Field(3478, ge=0, le=65535)  # STUN and TURN, UDP and TCP (0: any free)
    turn_tls_port: int = Field(5349, ge=0, le=65535)  # TURN over TLS (KVS: 443; 0: any free)
    turn_credential_ttl: int = Field(300, ge=30, le=86400)  # seconds, as KVS's Ttl

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def wss_url(self) -> str:
        return f"wss://{self.host}:{self.tls_port}"


class DashboardConfig(BaseModel):
    """``[dashboard]``. Its password is never here: ALEXA_DOORBELL_DASHBOARD_PASSWORD(_FILE)."""

    model_config = ConfigDict(extra="forbid")

    # Host names it answers to besides loopback, --host and address literals (DNS rebinding)
    allowed_hosts: list[str] = Field(default_factory=list)


class WebhookConfig(BaseModel):
    """``[webhook]``: POST /hooks/<endpoint_id>/press|motion|detection on the camera agent.

    Its secret is never here: ALEXA_DOORBELL_WEBHOOK_SECRET(_FILE)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8770, ge=0, le=65535)
    # Host names it answers to besides loopback, `host` and address literals (DNS rebinding)
    allowed_hosts: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",  # unknown TOML keys; unknown variables get a warning (load_settings)
    )

    cloud: Literal["local", "aws"] = "local"
    region: str = "us-east-1"
    data_dir: Path = Field(default_factory=default_data_dir)
    # "sqlite:///path/to/file.sqlite3" or "dynamodb://table-name"; empty = SQLite in data_dir
    store_url: str = ""
    single_user: bool = True

    # Login with Amazon: the skill's "Alexa Skill Messaging" client (Permissions
    # page, "Send Alexa Events"), not the account-linking security profile.
    lwa_client_id: str | None = None
    lwa_client_secret: SecretStr | None = None
    lwa_client_secret_arn: str | None = None  # Secrets Manager / SSM alternative
    event_region: Literal["NA", "EU", "FE"] = "NA"
    # The deployed skill Lambda (stack output SkillFunctionArn; ARN or name), for `doctor`.
    skill_function: str | None = None
    # The deployed notifier Lambda (stack output NotifierFunctionArn; ARN or name): the
    # camera side invokes it to ring the doorbell and report health when cloud = "aws".
    notifier_function: str | None = None

    local: LocalCloudConfig = Field(default_factory=LocalCloudConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    cameras: list[CameraConfig] = Field(default_factory=lambda: [CameraConfig()])

    # Timings
    skill_deadline: float = 5.0  # InitiateSessionWithOffer budget, below Alexa's 6-8 s
    # A camera whose last health report (heartbeat) is older than this is UNREACHABLE
    health_max_age: float = 150.0
    # Seconds the skill trusts a bearer token it resolved to a user (LWA /user/profile)
    token_cache_ttl: float = Field(300.0, ge=0)
    ice_gather_timeout: float = 2.0
    # STUN for the camera's answer: unset with cloud = "aws", the region's KVS STUN server;
    # none on the local cloud
    stun_urls: list[str] = Field(default_factory=list)
    # TURN relays from KVS GetIceServerConfig: unset with cloud = "aws", true; false locally
    use_turn: bool = False
    # Which TURN relays: "udp", "tls" (TCP 443 at KVS) or "auto", both at once (camera/ice.py)
    turn_transport: Literal["auto", "udp", "tls"] = "auto"
    max_viewers: int = 10
    # No cap by default: a view ends on SessionDisconnected, ICE consent loss or DTLS
    # close. A number (seconds) ends longer views; 0 or unset: no cap.
    max_session_seconds: float | None = Field(None, ge=0)
    # A viewer whose ICE has not connected by then frees its slot (Alexa gives up sooner)
    ice_connect_timeout: float = Field(10.0, gt=0)
    # A camera whose source is down this long is UNREACHABLE to Alexa (OK again with frames)
    source_grace_seconds: float = Field(15.0, ge=0)
    gop_seconds: float = 1.0
    press_debounce: float = 5.0
    # Motion: NOT_DETECTED only after this long without motion (flapping makes one pair)
    motion_hold: float = Field(30.0, ge=0)
    # Detection: a class seen at a camera is announced again only after this long unseen
    detection_cooldown: float = Field(120.0, ge=0)

    # Snapshots behind an event's frameImageUri: the S3 bucket (stack output
    # SnapshotBucketName; unset on the local cloud, which makes its own) and how long a
    # presigned URL to one works (SigV4 allows 7 days at most).
    snapshot_bucket: str | None = None
    snapshot_url_expiry: int = Field(default=3600, ge=60, le=604800)

    # Inputs (docs/inputs.md). The MQTT broker: mqtt://host:1883 or mqtts://host:8883;
    # its user name and password only from ALEXA_DOORBELL_MQTT_USERNAME / _PASSWORD.
    mqtt_url: str | None = None
    mqtt_ca_file: Path | None = None  # CA bundle for mqtts:// (default: the system's)
    mqtt_client_id: str | None = None  # default: alexa-doorbell-<6 random hex digits>
    mqtt_base_topic: str = "alexa-doorbell"  # our own topics: <base>/status, <base>/<camera>/...
    frigate_topic_prefix: str = "frigate"  # Frigate's mqtt.topic_prefix
    ha_discovery: bool = True  # announce the cameras to Home Assistant (MQTT discovery)
    ha_discovery_prefix: str = "homeassistant"
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_is_a_broker(cls, value: str | None) -> str | None:
        if value:
            from alexa_doorbell.inputs.mqtt import parse_mqtt_url

            parse_mqtt_url(value)
        return value or None

    @field_validator("stun_urls")
    @classmethod
    def _stun_urls(cls, value: list[str]) -> list[str]:
        from alexa_doorbell.camera.ice import parse_stun_url

        for url in value:
            parse_stun_url(url)
        return [url.strip() for url in value]

    @model_validator(mode="after")
    def _kvs_stun_and_turn_by_default(self) -> Settings:
        # Amazon wants a server-reflexive or relay candidate from a camera behind NAT; a
        # relay costs one round trip more and gets through UDP-blocking networks
        # (bench/ice_bench.py, docs/camera.md#home-networks-nat-and-firewalls).
        if self.cloud == "aws":
            if "stun_urls" not in self.model_fields_set:
                from alexa_doorbell.camera.ice import kvs_stun_url

                self.stun_urls = [kvs_stun_url(self.region)]
            if "use_turn" not in self.model_fields_set:
                self.use_turn = True
        return self

    @field_validator("mqtt_base_topic", "frigate_topic_prefix", "ha_discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        value = value.strip().strip("/")
        if not value or any(c in value for c in "+#\0"):
            raise ValueError("a topic prefix: not empty, no wildcards (+ #)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _TomlFile(settings_cls, toml_file=config_file()[0]),
        )

    # -- derived values -------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.cloud == "local"

    @property
    def store_location(self) -> str:
        return self.store_url or default_store_url(self.data_dir)

    @property
    def cloud_dir(self) -> Path:
        """Where the local cloud keeps its database and TLS certificate."""
        return self.data_dir / "cloud"

    @property
    def ca_file(self) -> Path:
        """The local cloud's self-made certificate, trusted by our clients."""
        return self.cloud_dir / "cert.pem"

    def camera(self, endpoint_id: str | None = None) -> CameraConfig:
        if endpoint_id is None:
            return self.cameras[0]
        for cam in self.cameras:
            if cam.endpoint_id == endpoint_id:
                return cam
        known = ", ".join(c.endpoint_id for c in self.cameras) or "none"
        raise KeyError(f"no camera with endpoint_id {endpoint_id!r} (configured: {known})")

    @property
    def lwa_url(self) -> str:
        return self.local.url if self.is_local else LWA_URL

    def event_gateway_url(self, region: str | None = None) -> str:
        if self.is_local:
            return self.local.url
        return EVENT_GATEWAYS[region or self.event_region]

    def lwa_credentials(self) -> tuple[str, str]:
        """(client_id, client_secret) for LWA; raises with what to configure."""
        if self.is_local and not self.lwa_client_id:
            return self.local.lwa_client_id, self.local.lwa_client_secret.get_secret_value()
        if self.lwa_client_id and self.lwa_client_secret:
            return self.lwa_client_id, self.lwa_client_secret.get_secret_value()
        if self.lwa_client_id and self.lwa_client_secret_arn:
            return self.lwa_client_id, read_secret(self.lwa_client_secret_arn, self.region)
        raise RuntimeError(
            "Login with Amazon is not configured: set ALEXA_DOORBELL_LWA_CLIENT_ID and "
            "ALEXA_DOORBELL_LWA_CLIENT_SECRET (or ALEXA_DOORBELL_LWA_CLIENT_SECRET_ARN) to the "
            "skill's Alexa Skill Messaging client id/secret (developer console, Permissions)."
        )

    def aws_env(self) -> dict[str, str]:
        """Environment that points boto3 (and the skill) at the chosen cloud."""
        if not self.is_local:
            return {"AWS_DEFAULT_REGION": self.region}
        return {
            "AWS_ENDPOINT_URL": self.local.url,
            "AWS_ACCESS_KEY_ID": self.local.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.local.aws_secret_access_key.get_secret_value(),
            "AWS_DEFAULT_REGION": self.region,
        }

    @cached_property
    def _boto_session(self):  # type: ignore[no-untyped-def]
        import boto3

        if self.is_local:
            return boto3.session.Session(
                aws_access_key_id=self.local.aws_access_key_id,
                aws_secret_access_key=self.local.aws_secret_access_key.get_secret_value(),
                region_name=self.region,
            )
        return boto3.session.Session(region_name=self.region)

    def boto_session(self):  # type: ignore[no-untyped-def]
        """A boto3 session: the local cloud's credentials, or the standard AWS chain."""
        return self._boto_session

    def endpoint_url(self) -> str | None:
        """endpoint_url for boto3 clients: the local cloud, or None for AWS."""
        return self.local.url if self.is_local else None

    def lambda_config(self) -> SkillConfig:
        """These settings as the Lambda functions read theirs, to build the skill or the
        notifier in this process (each is built one way, in Lambda or not).

        Resolves the LWA client secret (raises with what to configure).
        """
        client_id, secret = self.lwa_credentials()
        return SkillConfig(
            store_url=self.store_location,
            lwa_url=self.lwa_url,
            lwa_client_id=client_id,
            lwa_client_secret=secret,
            region=self.region,
            event_region=self.event_region,
            kvs_endpoint_url=self.endpoint_url(),
            event_gateway_url=self.local.url if self.is_local else None,
            deadline=self.skill_deadline,
            single_user=self.single_user,
            health_max_age=self.health_max_age,
            token_cache_ttl=self.token_cache_ttl,
            press_debounce=self.press_debounce,
            motion_hold=self.motion_hold,
            detection_cooldown=self.detection_cooldown,
            cameras=[device_of(c) for c in self.cameras],
        )


def device_of(cam: CameraConfig) -> Device:
    """A configured camera as the skill's device catalog holds it."""
    return Device(
        endpoint_id=cam.endpoint_id,
        friendly_name=cam.friendly_name,
        channel_name=cam.channel_name,
        description=cam.description,
        manufacturer=cam.manufacturer,
        channel_arn=cam.channel_arn,
        doorbell=cam.doorbell,
        full_duplex=cam.full_duplex,
        owner=cam.owner,
        motion=cam.motion,
        detection_classes=tuple(cam.detection),
    )


class _TomlFile(TomlConfigSettingsSource):
    """The TOML source, whose parse errors are one ConfigError line with line and column."""

    def _read_file(self, file_path: Path) -> dict[str, object]:  # type: ignore[override]
        return config_errors.read_toml(file_path)


def config_file(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The TOML file to read, and whether ALEXA_DOORBELL_CONFIG named it."""
    named = (os.environ if environ is None else environ).get(CONFIG_VARIABLE) or ""
    return Path(named or DEFAULT_CONFIG_FILE), bool(named)


def load_settings(**overrides: object) -> Settings:
    """Settings for a command; any mistake is one ConfigError line (the CLI exits 2).

    Beyond ``Settings()``: the file ALEXA_DOORBELL_CONFIG names must exist (``/dev/null``
    means none), and an ``ALEXA_DOORBELL_*`` variable that nothing reads is logged as a
    warning (other tools may share the prefix, so it is not an error).
    """
    environ = dict(os.environ)
    path, named = config_file(environ)
    if named and (not path.exists() or path.is_dir()):
        raise ConfigError(
            f"{CONFIG_VARIABLE}={path}: {'a directory' if path.exists() else 'no such file'}; "
            f"point it at your TOML file, or unset it to read ./{DEFAULT_CONFIG_FILE} if present"
        )
    for warning in config_errors.unknown_variables(environ, Settings.model_fields, OTHER_VARIABLES):
        log.warning("alexa-doorbell: %s", warning)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        toml = config_errors.read_toml(path) if path.is_file() else {}
        raise ConfigError(
            config_errors.describe_validation_error(
                exc,
                Settings,
                toml=toml,
                toml_path=path.absolute() if path.is_file() else None,
                environ=environ,
            )
        ) from None
    except SettingsError as exc:  # a variable holding JSON that does not parse
        raise ConfigError(config_errors.describe_settings_error(exc, Settings, environ)) from None
