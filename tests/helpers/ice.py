"""STUN/TURN pieces for tests: is coturn installed, GetIceServerConfig, a silent UDP port."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from alexa_doorbell.cloud.turn import coturn_binary
from alexa_doorbell.config import Settings
from alexa_doorbell.kvs import api

needs_coturn = pytest.mark.skipif(
    coturn_binary() is None,
    reason="Debian's coturn (turnserver) is not installed: scripts/setup-test-deps installs it",
)


def ice_config(settings: Settings, client_id: str | None = None) -> dict[str, Any]:
    """GetIceServerConfig for the front door's channel, as the camera asks it (boto3)."""
    session = settings.boto_session()
    kv = api.kinesisvideo_client(session, settings.endpoint_url())
    arn = api.describe_channel_arn(kv, "front-door")
    eps = api.get_channel_endpoints(kv, arn, "MASTER")
    sig = api.signaling_client(session, eps.https)
    kwargs: dict[str, Any] = {"ChannelARN": arn, "Service": "TURN"}
    if client_id:
        kwargs["ClientId"] = client_id
    return sig.get_ice_server_config(**kwargs)


class BlackHole:
    """A UDP port that swallows everything, as a firewall's drop rule does."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()
