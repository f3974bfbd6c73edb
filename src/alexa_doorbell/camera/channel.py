"""A camera's KVS signaling channel: its ARN, endpoints, the MASTER URL and TURN servers.

Blocking boto3 calls: the agent runs them in a worker thread.
"""

from __future__ import annotations

from typing import Any

from alexa_doorbell.config import CameraConfig, Settings


class Channel:
    def __init__(self, settings: Settings, camera: CameraConfig) -> None:
        self.settings, self.camera = settings, camera
        self.arn: str | None = camera.channel_arn
        self._endpoints: Any = None

    def setup(self) -> tuple[str, Any]:
        from alexa_doorbell.kvs import api

        session = self.settings.boto_session()
        if self._endpoints is None or self.arn is None:
            kv = api.kinesisvideo_client(session, self.settings.endpoint_url())
            if self.arn is None:
                self.arn = api.describe_channel_arn(kv, self.camera.channel_name)
            self._endpoints = api.get_channel_endpoints(kv, self.arn, "MASTER")
        return self.arn, self._endpoints

    def master_url(self) -> str:
        """A presigned WSS URL to connect as the channel's MASTER."""
        from alexa_doorbell.kvs.presign import presign_wss_url

        try:
            arn, eps = self.setup()
        except Exception:
            self._endpoints = None
            raise
        if not eps.wss:
            self._endpoints = None
            raise RuntimeError("GetSignalingChannelEndpoint returned no WSS endpoint")
        creds = self.settings.boto_session().get_credentials()
        if creds is None:
            raise RuntimeError("no AWS credentials found (standard AWS credential chain)")
        return presign_wss_url(eps.wss, arn, creds, self.settings.region)

    def ice_servers(self) -> list[dict[str, Any]]:
        """GetIceServerConfig's IceServerList, Ttl included (camera/ice.py refreshes it)."""
        from alexa_doorbell.kvs import api

        arn, eps = self.setup()
        sig = api.signaling_client(self.settings.boto_session(), eps.https)
        reply = sig.get_ice_server_config(ChannelARN=arn, Service="TURN")
        return list(reply.get("IceServerList", []))
