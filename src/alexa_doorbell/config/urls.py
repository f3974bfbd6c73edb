"""The URL forms settings take, checked where they are read and used where they connect.

``stun:host[:port]`` (RFC 7064) for ``stun_urls``, and ``mqtt://`` / ``mqtts://`` for
``mqtt_url``: pure parsers, so the settings check them at load and ``camera/ice.py``
and ``inputs/mqtt.py`` read them the same way.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

KVS_STUN_URL = "stun:stun.kinesisvideo.{region}.amazonaws.com:443"
STUN_URL_RE = re.compile(r"stun:(?P<host>[^?:\s]+)(?::(?P<port>[0-9]{1,5}))?")
MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def kvs_stun_url(region: str) -> str:
    """The KVS STUN server of a region (AWS's KVS WebRTC requirements page)."""
    return KVS_STUN_URL.format(region=region)


def parse_stun_url(url: str) -> tuple[str, int]:
    """``stun:host[:port]`` → (host, port); ValueError with the expected form otherwise."""
    m = STUN_URL_RE.fullmatch(url.strip())
    if not m:
        raise ValueError(
            f"{url!r} is not a STUN URL: stun:host[:port], e.g. {kvs_stun_url('us-east-1')}"
        )
    port = int(m["port"] or 3478)
    if not 0 < port < 65536:
        raise ValueError(f"{url!r}: port must be 1-65535")
    return m["host"], port


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of ``mqtt://host:port`` / ``mqtts://host``; ValueError says why."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is no URL ({exc})") from None
    if parts.scheme not in MQTT_PORTS:
        raise ValueError(f"{url!r}: use mqtt://host:1883 or mqtts://host:8883 (TLS)")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "no credentials in mqtt_url: set ALEXA_DOORBELL_MQTT_USERNAME and "
            "ALEXA_DOORBELL_MQTT_PASSWORD (or _PASSWORD_FILE) in the environment"
        )
    if not parts.hostname:
        raise ValueError(f"{url!r} names no broker host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: only scheme, host and port (no path or query)")
    return parts.hostname, port or MQTT_PORTS[parts.scheme], parts.scheme == "mqtts"
