"""A tiny KVS signaling peer for tests: presigned URL + websockets, MASTER or VIEWER.

As MASTER it answers every ``SDP_OFFER`` with ``answer`` (a fixed SDP or a
function, sync or async, of the offer SDP and sender) and then sends ``candidates`` to that
sender as ``ICE_CANDIDATE`` messages. Every received message is kept.

    async with KvsTestMaster(settings, answer=ANSWER_SDP) as master:
        ...
        offer = await master.next("SDP_OFFER")
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import websockets
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from alexa_doorbell.cloud.tls import client_context
from alexa_doorbell.config import Settings
from alexa_doorbell.kvs import api
from alexa_doorbell.kvs.messages import (
    ClientMessage,
    ServerMessage,
    candidate_payload,
    decode_sdp,
    sdp_payload,
)

AnswerFn = Callable[[str, str], str | Awaitable[str]]

ANSWER_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)
CANDIDATES = (
    ("candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "0", 0),
    ("candidate:2 1 udp 2130706431 127.0.0.1 50002 typ host", "0", 0),
)


def presign(
    settings: Settings,
    channel_arn: str,
    client_id: str | None = None,
    *,
    endpoint: str | None = None,
    expires: int = 299,
    access_key: str | None = None,
    secret_key: str | None = None,
    signed_at: dt.datetime | None = None,
) -> str:
    """A SigV4 presigned signaling URL, as the KVS SDKs build it (service ``kinesisvideo``)."""
    query = {"X-Amz-ChannelARN": channel_arn}
    if client_id:
        query["X-Amz-ClientId"] = client_id
    url = (endpoint or settings.local.wss_url).rstrip("/") + "/?" + urlencode(query)
    request = AWSRequest(method="GET", url=url)
    creds = Credentials(
        access_key or settings.local.aws_access_key_id,
        secret_key or settings.local.aws_secret_access_key.get_secret_value(),
    )
    signer = SigV4QueryAuth(creds, "kinesisvideo", settings.region, expires=expires)
    when = signed_at or dt.datetime.now(dt.UTC)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    # add_auth() would stamp "now"; these are its steps with a chosen timestamp.
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    return request.url


def channel_arn(settings: Settings, channel_name: str) -> str:
    kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
    return api.describe_channel_arn(kv, channel_name)


class KvsTestMaster:
    """One signaling client (MASTER by default; VIEWER when ``client_id`` is given)."""

    def __init__(
        self,
        settings: Settings,
        channel_name: str | None = None,
        *,
        answer: str | AnswerFn | None = ANSWER_SDP,
        candidates: Sequence[tuple[str, str | None, int | None]] = (),
        client_id: str | None = None,
        url: str | None = None,
    ) -> None:
        self.settings = settings
        self.channel_name = channel_name or settings.cameras[0].channel_name
        self.answer = answer
        self.candidates = list(candidates)
        self.client_id = client_id
        self.url = url
        self.received: list[ServerMessage] = []
        self.offers: list[tuple[str, str]] = []  # (sender, offer SDP)
        self._queue: asyncio.Queue[ServerMessage] = asyncio.Queue()
        self._ws: Any = None
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def __aenter__(self) -> KvsTestMaster:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        if self.url is None:
            arn = await asyncio.to_thread(channel_arn, self.settings, self.channel_name)
            self.url = presign(self.settings, arn, self.client_id)
        ssl = client_context(self.settings.ca_file) if self.url.startswith("wss:") else None
        self._ws = await websockets.connect(self.url, ssl=ssl, ping_interval=None)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def _read(self) -> None:
        try:
            async for text in self._ws:
                msg = ServerMessage.parse(text)
                self.received.append(msg)
                await self._queue.put(msg)
                if msg.message_type == "SDP_OFFER" and self.answer is not None:
                    await self._answer(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def _answer(self, msg: ServerMessage) -> None:
        sender = msg.sender_client_id or ""
        offer = decode_sdp(msg.message_payload, "offer")
        self.offers.append((sender, offer))
        sdp = self.answer(offer, sender) if callable(self.answer) else self.answer
        if inspect.isawaitable(sdp):
            sdp = await sdp
        await self.send("SDP_ANSWER", sdp_payload("answer", sdp), sender)
        for cand, mid, index in self.candidates:
            await self.send("ICE_CANDIDATE", candidate_payload(cand, mid, index), sender)

    async def send(
        self,
        action: str,
        payload: str,
        recipient: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        await self._ws.send(ClientMessage(action, payload, recipient, correlation_id).to_json())

    async def send_raw(self, text: str) -> None:
        await self._ws.send(text)

    async def next(self, message_type: str | None = None, timeout: float = 5.0) -> ServerMessage:
        """The next received message (of ``message_type``, skipping others)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self._queue.get()
                if message_type is None or msg.message_type == message_type:
                    return msg
