"""The Lambda functions' settings from the environment, standard library only.

Both functions, the skill (``skill/``) and the notifier (``notifier/``), are built
from a ``SkillConfig``; it lives beneath both so neither imports the other. Here too
``ConfigError``, the one exception for a bad setting, which every floor above raises.

Reads the same ``ALEXA_DOORBELL_*`` variables as ``alexa_doorbell.config``
(which needs pydantic and so stays off the Lambda path; it takes the defaults
shared by both from here):

- ``ALEXA_DOORBELL_CLOUD``: ``aws`` in Lambda; ``local`` points LWA at the local cloud
- ``ALEXA_DOORBELL_STORE_URL``: ``dynamodb://table`` or ``sqlite:///path``
- ``ALEXA_DOORBELL_LWA_CLIENT_ID`` and ``ALEXA_DOORBELL_LWA_CLIENT_SECRET`` (or
  ``ALEXA_DOORBELL_LWA_CLIENT_SECRET_ARN``, a Secrets Manager or SSM parameter):
  the skill's Alexa Skill Messaging credentials
- ``ALEXA_DOORBELL_CAMERAS``: JSON list of cameras (``endpoint_id``,
  ``friendly_name``, ``channel_name``, ``channel_arn``, ``doorbell``,
  ``full_duplex``, ``owner``, ``motion``, ``detection``...) added to the device catalog at start
- ``ALEXA_DOORBELL_SKILL_DEADLINE`` (5 s), ``ALEXA_DOORBELL_SINGLE_USER`` (true),
  ``ALEXA_DOORBELL_HEALTH_MAX_AGE`` (150 s), ``ALEXA_DOORBELL_TOKEN_CACHE_TTL``
  (300 s), ``ALEXA_DOORBELL_EVENT_REGION`` (NA), ``ALEXA_DOORBELL_LWA_URL``
- the notifier's ``ALEXA_DOORBELL_PRESS_DEBOUNCE`` (5 s), ``ALEXA_DOORBELL_MOTION_HOLD``
  (30 s), ``ALEXA_DOORBELL_DETECTION_COOLDOWN`` (120 s) and
  ``ALEXA_DOORBELL_EVENT_GATEWAY_URL`` (default: each user's regional gateway; the
  local cloud when CLOUD=local)

``config.Settings.lambda_config()`` gives the same object for the skill and the
notifier run outside Lambda, so both are built one way wherever they run.

A bad value is a ``ConfigError`` whose one line names the variable and what it
takes; the Lambda handlers log that line and answer with an error, no traceback.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alexa_doorbell.store.base import Device

PREFIX = "ALEXA_DOORBELL_"
LWA_URL = "https://api.amazon.com"
# The local cloud's emulator-only LWA client: it opens nothing but the emulator on loopback.
LOCAL_LWA_CLIENT_ID = "amzn1.application-oa2-client.localdoorbell"
LOCAL_LWA_CLIENT_SECRET = "local-lwa-emulator-only"
# Every variable the Lambda functions read (the skill and the notifier, both from here).
LAMBDA_VARIABLES = frozenset(
    {"CLOUD", "STORE_URL", "DATA_DIR", "REGION", "EVENT_REGION", "CAMERAS", "LWA_URL"}
    | {"LWA_CLIENT_ID", "LWA_CLIENT_SECRET", "LWA_CLIENT_SECRET_ARN", "LOCAL__HOST"}
    | {"LOCAL__PORT", "SKILL_DEADLINE", "SINGLE_USER", "HEALTH_MAX_AGE", "TOKEN_CACHE_TTL"}
    | {"PRESS_DEBOUNCE", "EVENT_GATEWAY_URL", "MOTION_HOLD", "DETECTION_COOLDOWN"}
)
CLOUDS = ("aws", "local")
EVENT_REGIONS = ("NA", "EU", "FE")
# What pydantic accepts for a bool, so both readers agree on one environment.
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line saying which and what to set."""


def _bool(name: str, text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ConfigError(f"{PREFIX}{name} = {text!r}: must be true or false")


def _seconds(name: str, text: str | None, default: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{PREFIX}{name} = {text!r}: must be a number of seconds (default {default:g})"
        )
    return value


def _choice(name: str, text: str, allowed: tuple[str, ...]) -> str:
    if text not in allowed:
        raise ConfigError(f"{PREFIX}{name} = {text!r}: must be one of {', '.join(allowed)}")
    return text


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "alexa-doorbell"


def default_store_url(data_dir: str | Path) -> str:
    """The SQLite store in the data directory (when no store URL is set)."""
    return f"sqlite:///{Path(data_dir) / 'store.sqlite3'}"


@dataclass
class SkillConfig:
    store_url: str
    lwa_url: str = LWA_URL
    lwa_client_id: str | None = None
    lwa_client_secret: str | None = field(default=None, repr=False)
    lwa_client_secret_arn: str | None = None
    region: str = "us-east-1"
    event_region: str = "NA"
    kvs_endpoint_url: str | None = None  # None: boto3's default (AWS_ENDPOINT_URL* honoured)
    event_gateway_url: str | None = None  # None: each user's regional gateway
    deadline: float = 5.0
    single_user: bool = True
    health_max_age: float = 150.0
    token_cache_ttl: float = 300.0
    press_debounce: float = 5.0  # the notifier's window: presses within it send one event
    motion_hold: float = 30.0  # NOT_DETECTED after this long without motion
    detection_cooldown: float = 120.0  # a class is announced again after this long unseen
    cameras: list[Device] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SkillConfig:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else default

        local = _choice("CLOUD", get("CLOUD", "aws") or "aws", CLOUDS) == "local"
        data_dir = get("DATA_DIR") or default_data_dir(env)
        store_url = get("STORE_URL") or default_store_url(data_dir)
        lwa_url = get("LWA_URL")
        client_id = get("LWA_CLIENT_ID")
        secret = get("LWA_CLIENT_SECRET")
        gateway_url = get("EVENT_GATEWAY_URL")
        if local:
            host = get("LOCAL__HOST", "127.0.0.1")
            port = get("LOCAL__PORT", "8750")
            lwa_url = lwa_url or f"http://{host}:{port}"
            gateway_url = gateway_url or f"http://{host}:{port}"
            if not client_id:
                client_id, secret = LOCAL_LWA_CLIENT_ID, LOCAL_LWA_CLIENT_SECRET
        for name in sorted(env):
            if name.startswith(PREFIX) and name[len(PREFIX) :] not in LAMBDA_VARIABLES:
                close = difflib.get_close_matches(name[len(PREFIX) :], LAMBDA_VARIABLES, 1, 0.7)
                hint = f" (did you mean {PREFIX}{close[0]}?)" if close else ""
                log.warning("ignoring %s: the Lambda functions do not read it%s", name, hint)
        try:
            cameras = parse_cameras(get("CAMERAS"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            store_url=store_url,
            lwa_url=lwa_url or LWA_URL,
            lwa_client_id=client_id,
            lwa_client_secret=secret,
            lwa_client_secret_arn=get("LWA_CLIENT_SECRET_ARN"),
            region=get("REGION") or env.get("AWS_REGION") or "us-east-1",
            event_gateway_url=gateway_url,
            event_region=_choice("EVENT_REGION", get("EVENT_REGION", "NA") or "NA", EVENT_REGIONS),
            deadline=_seconds("SKILL_DEADLINE", get("SKILL_DEADLINE"), 5.0),
            single_user=_bool("SINGLE_USER", get("SINGLE_USER", "true") or "true"),
            health_max_age=_seconds("HEALTH_MAX_AGE", get("HEALTH_MAX_AGE"), 150.0),
            token_cache_ttl=_seconds("TOKEN_CACHE_TTL", get("TOKEN_CACHE_TTL"), 300.0),
            press_debounce=_seconds("PRESS_DEBOUNCE", get("PRESS_DEBOUNCE"), 5.0),
            motion_hold=_seconds("MOTION_HOLD", get("MOTION_HOLD"), 30.0),
            detection_cooldown=_seconds("DETECTION_COOLDOWN", get("DETECTION_COOLDOWN"), 120.0),
            cameras=cameras,
        )

    def lwa_credentials(self) -> tuple[str, str]:
        if self.lwa_client_id and self.lwa_client_secret:
            return self.lwa_client_id, self.lwa_client_secret
        if self.lwa_client_id and self.lwa_client_secret_arn:
            return self.lwa_client_id, _read_secret(self.lwa_client_secret_arn, self.region)
        raise ConfigError(
            f"set {PREFIX}LWA_CLIENT_ID and {PREFIX}LWA_CLIENT_SECRET (or "
            f"{PREFIX}LWA_CLIENT_SECRET_ARN) to the skill's Alexa Skill Messaging client id and "
            "secret (developer console, Permissions), not the account-linking profile's"
        )


def parse_cameras(text: str | None) -> list[Device]:
    """Devices from the JSON form of ``ALEXA_DOORBELL_CAMERAS`` (a list of objects)."""
    if not text:
        return []
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{PREFIX}CAMERAS is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise ValueError(f"{PREFIX}CAMERAS must be a JSON list")
    out = []
    for item in items:
        if not isinstance(item, dict) or not item.get("endpoint_id"):
            raise ValueError(f"{PREFIX}CAMERAS entries need an endpoint_id")
        eid = str(item["endpoint_id"])
        out.append(
            Device(
                endpoint_id=eid,
                friendly_name=str(item.get("friendly_name") or eid),
                channel_name=str(item.get("channel_name") or eid),
                description=str(item.get("description") or "Camera"),
                manufacturer=str(item.get("manufacturer") or "alexa-doorbell"),
                channel_arn=item.get("channel_arn") or None,
                doorbell=bool(item.get("doorbell", False)),
                full_duplex=_full_duplex(eid, item),
                owner=item.get("owner") or None,
                motion=bool(item.get("motion", False)),
                detection_classes=_detection(eid, item.get("detection")),
            )
        )
    return out


def _full_duplex(endpoint_id: str, item: dict[str, object]) -> bool:
    """Discovery's isFullDuplexAudioSupported from a camera's ``talk`` (full, half, none).

    The camera agent works ``talk = "auto"`` out from its hardware; the Lambda cannot
    see the door, so here it is said: only ``"full"`` is full duplex. ``full_duplex``
    (true/false) is still read for one release, with a warning.
    """
    talk = item.get("talk")
    if talk is not None:
        if talk not in ("full", "half", "none"):
            raise ValueError(
                f"{PREFIX}CAMERAS: camera {endpoint_id!r} talk = {talk!r}: must be one of"
                " full, half, none"
            )
        return talk == "full"
    if "full_duplex" in item:
        value = item["full_duplex"]
        mapped = "full" if value is True or str(value).lower() == "true" else "half"
        log.warning(
            'camera %s: full_duplex is deprecated, use "talk": %r instead', endpoint_id, mapped
        )
        return mapped == "full"
    return False


def _detection(endpoint_id: str, value: object) -> tuple[str, ...]:
    """A camera's ``detection`` classes: a list of "person"/"package" (Alexa's classes)."""
    from alexa_doorbell.alexa.smartvision import IMAGE_NET_CLASSES

    if value is None:
        return ()
    if not isinstance(value, list) or any(c not in IMAGE_NET_CLASSES for c in value):
        raise ValueError(
            f"{PREFIX}CAMERAS: detection of {endpoint_id!r} must be a list of "
            f"{' / '.join(IMAGE_NET_CLASSES)}, not {value!r}"
        )
    return tuple(dict.fromkeys(value))


def read_secret(arn: str, region: str) -> str:
    """An SSM parameter (ARN or ``/name``) or a Secrets Manager secret, decrypted."""
    import boto3

    if arn.startswith("arn:aws:ssm:") or arn.startswith("/"):
        name = arn.split(":parameter", 1)[-1] if arn.startswith("arn:") else arn
        ssm = boto3.client("ssm", region_name=region)
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    sm = boto3.client("secretsmanager", region_name=region)
    return sm.get_secret_value(SecretId=arn)["SecretString"]


def _read_secret(arn: str, region: str) -> str:
    try:
        return read_secret(arn, region)
    except Exception as exc:  # any AWS failure here is a configuration problem
        raise ConfigError(f"cannot read the LWA client secret from {arn}: {exc}") from None
