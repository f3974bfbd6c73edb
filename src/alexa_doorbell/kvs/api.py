"""KVS control- and data-plane calls through boto3 (synchronous; Lambda-safe).

Clients honour ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_KINESIS_VIDEO`` (boto3
reads them itself) or an explicit ``endpoint_url``, so the same calls reach
AWS or the local cloud.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from alexa_doorbell.kvs.messages import MessageError, decode_sdp, sdp_payload

# Short timeouts: every call sits inside Alexa's answer deadline.
_FAST = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})


@dataclass(frozen=True)
class ChannelEndpoints:
    channel_arn: str
    wss: str | None
    https: str | None


def kinesisvideo_client(session: Any, endpoint_url: str | None = None, config: Config = _FAST):
    """The control-plane client (``kinesisvideo``)."""
    return session.client("kinesisvideo", endpoint_url=endpoint_url, config=config)


def signaling_client(session: Any, https_endpoint: str, config: Config = _FAST):
    """The data-plane client (``kinesis-video-signaling``) for one channel's HTTPS endpoint."""
    return session.client("kinesis-video-signaling", endpoint_url=https_endpoint, config=config)


def describe_channel_arn(kv: Any, channel_name: str) -> str:
    info = kv.describe_signaling_channel(ChannelName=channel_name)["ChannelInfo"]
    return info["ChannelARN"]


def get_channel_endpoints(kv: Any, channel_arn: str, role: str) -> ChannelEndpoints:
    """``GetSignalingChannelEndpoint`` for both WSS and HTTPS, as MASTER or VIEWER."""
    reply = kv.get_signaling_channel_endpoint(
        ChannelARN=channel_arn,
        SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": role},
    )
    found = {e["Protocol"]: e["ResourceEndpoint"] for e in reply.get("ResourceEndpointList", [])}
    return ChannelEndpoints(channel_arn, found.get("WSS"), found.get("HTTPS"))


def new_sender_client_id(prefix: str = "viewer") -> str:
    """A fresh ``SenderClientId`` (``[a-zA-Z0-9_.-]``, at most 256 characters)."""
    return f"{prefix}-{uuid.uuid4()}"[:256]


def send_alexa_offer_to_master(
    sig: Any, channel_arn: str, sender_client_id: str, offer_sdp: str
) -> str:
    """Deliver an offer to the channel's master and return the answer SDP.

    Raises MessageError when the service returns no answer or one that is not
    base64 JSON of ``{"type": "answer", "sdp"}``.
    """
    reply = sig.send_alexa_offer_to_master(
        ChannelARN=channel_arn,
        SenderClientId=sender_client_id,
        MessagePayload=sdp_payload("offer", offer_sdp),
    )
    answer = reply.get("Answer")
    if not answer:
        raise MessageError("SendAlexaOfferToMaster returned an empty Answer (no master answered)")
    return decode_sdp(answer, "answer")


def get_ice_servers(sig: Any, channel_arn: str, client_id: str | None = None) -> list[dict]:
    """TURN servers from ``GetIceServerConfig`` as ``[{"urls", "username", "credential"}]``."""
    kwargs: dict[str, Any] = {"ChannelARN": channel_arn, "Service": "TURN"}
    if client_id:
        kwargs["ClientId"] = client_id
    reply = sig.get_ice_server_config(**kwargs)
    return [
        {"urls": s["Uris"], "username": s.get("Username"), "credential": s.get("Password")}
        for s in reply.get("IceServerList", [])
    ]
