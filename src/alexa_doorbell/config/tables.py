"""The settings' own tables: ``[local]`` (the local cloud), ``[dashboard]``, ``[webhook]``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alexa_doorbell.lambda_config import LOCAL_LWA_CLIENT_ID, LOCAL_LWA_CLIENT_SECRET

# The local cloud's emulator credentials. They open nothing but the emulator on
# loopback and are documented in docs/configuration.md, like LocalStack's "test"/"test".
LOCAL_AWS_ACCESS_KEY_ID = "AKIALOCALDOORBELL000"
LOCAL_AWS_SECRET_ACCESS_KEY = "local-cloud-emulator-only"
# LOCAL_LWA_CLIENT_ID/SECRET come from the Lambda path's stdlib module, so both sides
# use the same values.


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
