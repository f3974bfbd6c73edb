"""Viewer credentials for the page: a presigned KVS VIEWER URL and ICE servers.

The server signs; the page only receives a URL valid for 299 s and bound to
one client id, so no AWS secret ever reaches the browser. The official JS SDK
takes the URL through its ``requestSigner`` hook.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.presign import EXPIRES, presign_wss_url

ENDPOINT_CACHE_SECONDS = 300.0  # channel ARN and endpoints rarely change; avoid a call per view


class ViewerError(RuntimeError):
    """A viewer URL could not be made; the message says what to do."""


@dataclass(frozen=True)
class _Endpoints:
    arn: str
    wss: str
    https: str | None
    at: float


def new_viewer_client_id() -> str:
    """``X-Amz-ClientId`` for one browser connection (``[a-zA-Z0-9_.-]``)."""
    return f"dashboard-{secrets.token_hex(6)}"


class ViewerSigner:
    """Makes VIEWER connection settings for the configured cameras (blocking: run in a thread)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[str, _Endpoints] = {}
        self._lock = threading.Lock()

    def _endpoints(self, cam: CameraConfig) -> _Endpoints:
        with self._lock:
            hit = self._cache.get(cam.endpoint_id)
        if hit is not None and time.monotonic() - hit.at < ENDPOINT_CACHE_SECONDS:
            return hit
        session = self.settings.boto_session()
        kv = api.kinesisvideo_client(session, self.settings.endpoint_url())
        try:
            arn = cam.channel_arn or api.describe_channel_arn(kv, cam.channel_name)
            eps = api.get_channel_endpoints(kv, arn, "VIEWER")
        except Exception as exc:
            raise ViewerError(_kvs_advice(self.settings, cam, exc)) from exc
        if not eps.wss:
            raise ViewerError("GetSignalingChannelEndpoint returned no WSS endpoint")
        found = _Endpoints(arn, eps.wss, eps.https, time.monotonic())
        with self._lock:
            self._cache[cam.endpoint_id] = found
        return found

    def forget(self, endpoint_id: str) -> None:
        with self._lock:
            self._cache.pop(endpoint_id, None)

    def viewer(self, endpoint_id: str) -> dict[str, Any]:
        """What the page needs to join ``endpoint_id``'s channel as a VIEWER."""
        cam = self.settings.camera(endpoint_id)
        eps = self._endpoints(cam)
        session = self.settings.boto_session()
        creds = session.get_credentials()
        if creds is None:
            raise ViewerError(
                "No AWS credentials found for signing: configure the standard AWS chain "
                "(AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for the dashboard."
            )
        client_id = new_viewer_client_id()
        url = presign_wss_url(eps.wss, eps.arn, creds, self.settings.region, client_id=client_id)
        return {
            "endpointId": cam.endpoint_id,
            "channelARN": eps.arn,
            "channelEndpoint": eps.wss,
            "region": self.settings.region,
            "clientId": client_id,
            "signedURL": url,
            "expiresIn": EXPIRES,
            "iceServers": self._ice_servers(eps, client_id),
        }

    def _ice_servers(self, eps: _Endpoints, client_id: str) -> list[dict[str, Any]]:
        servers: list[dict[str, Any]] = [{"urls": u} for u in self.settings.stun_urls]
        if not self.settings.is_local and not servers:
            # The channel's own STUN server, as the KVS SDK samples use.
            region = self.settings.region
            servers.append({"urls": f"stun:stun.kinesisvideo.{region}.amazonaws.com:443"})
        if self.settings.use_turn and eps.https:
            sig = api.signaling_client(self.settings.boto_session(), eps.https)
            # Without TURN, STUN and host candidates still work on most home networks.
            with contextlib.suppress(Exception):
                servers += api.get_ice_servers(sig, eps.arn, client_id)
        return servers


def _kvs_advice(settings: Settings, cam: CameraConfig, exc: Exception) -> str:
    text = str(exc)
    if "ResourceNotFound" in text:
        how = (
            "restart the local cloud (it creates configured channels)"
            if settings.is_local
            else "deploy the stack (it creates one channel per camera) or fix channel_name"
        )
        return f"No signaling channel named {cam.channel_name!r}: {how}."
    if settings.is_local and ("Connect" in type(exc).__name__ or "Endpoint" in type(exc).__name__):
        return (
            f"The local cloud is not answering at {settings.local.url}: start it with "
            "`alexa-doorbell cloud` (or `alexa-doorbell demo --keep-running`)."
        )
    if "AccessDenied" in text or "UnrecognizedClient" in text or "Signature" in text:
        return (
            "AWS refused the dashboard's credentials for Kinesis Video Streams: allow "
            "kinesisvideo:DescribeSignalingChannel, GetSignalingChannelEndpoint and "
            f"ConnectAsViewer on the channel ({text})."
        )
    return f"Kinesis Video Streams call failed: {text}"
