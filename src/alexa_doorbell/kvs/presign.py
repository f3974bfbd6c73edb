"""Presigned KVS signaling WebSocket URLs (SigV4 query auth, service ``kinesisvideo``).

The same URL shape the official KVS WebRTC SDKs build: the channel's WSS
endpoint, ``X-Amz-ChannelARN`` (and ``X-Amz-ClientId`` for a viewer), signed
for the ``host`` header with ``X-Amz-Expires`` 299 and, with temporary
credentials, ``X-Amz-Security-Token``. Pure apart from the clock.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest

SERVICE = "kinesisvideo"
EXPIRES = 299  # seconds; KVS accepts at most 300


def presign_wss_url(
    endpoint: str,
    channel_arn: str,
    credentials: Any,
    region: str,
    *,
    client_id: str | None = None,
    expires: int = EXPIRES,
) -> str:
    """Sign ``endpoint`` (``wss://...``) for a MASTER (no client id) or a VIEWER.

    ``credentials`` are botocore credentials (``session.get_credentials()``,
    frozen or refreshable). Signed afresh on each call: use a new URL per connection.
    """
    parts = urlsplit(endpoint)
    if parts.scheme != "wss":
        raise ValueError(f"signaling endpoint must be wss://, got {endpoint!r}")
    if parts.query:
        raise ValueError("signaling endpoint must not carry a query string")
    params = {"X-Amz-ChannelARN": channel_arn}
    if client_id is not None:
        params["X-Amz-ClientId"] = client_id
    path = parts.path or "/"
    request = AWSRequest(method="GET", url=f"wss://{parts.netloc}{path}?{urlencode(params)}")
    frozen = getattr(credentials, "get_frozen_credentials", lambda: credentials)()
    signer = SigV4QueryAuth(frozen, SERVICE, region, expires=expires)
    signer.add_auth(request)
    return request.url
