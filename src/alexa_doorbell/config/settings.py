"""``Settings``: every setting, from the environment, the TOML file and the defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from alexa_doorbell import config_errors
from alexa_doorbell.amazon.events import GATEWAYS as EVENT_GATEWAYS
from alexa_doorbell.config.camera import CameraConfig
from alexa_doorbell.config.tables import DashboardConfig, LocalCloudConfig, WebhookConfig
from alexa_doorbell.config.urls import kvs_stun_url, parse_mqtt_url, parse_stun_url
from alexa_doorbell.lambda_config import (
    LWA_URL,
    SkillConfig,
    default_data_dir,
    default_store_url,
    read_secret,
)
from alexa_doorbell.store.base import Device

ENV_PREFIX = "ALEXA_DOORBELL_"
CONFIG_VARIABLE = f"{ENV_PREFIX}CONFIG"
DEFAULT_CONFIG_FILE = "alexa-doorbell.toml"
# EVENT_GATEWAYS (per region, docs/PROTOCOLS.md §3) and LWA_URL come from the Lambda
# path's stdlib modules, so both sides use the same values.


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
            parse_mqtt_url(value)
        return value or None

    @field_validator("stun_urls")
    @classmethod
    def _stun_urls(cls, value: list[str]) -> list[str]:
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
