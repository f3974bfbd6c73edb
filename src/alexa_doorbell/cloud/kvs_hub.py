"""The KVS signaling hub: the WebSocket side of each channel, as KVS routes it.

One MASTER and up to ``max_viewers`` VIEWERs per channel. A message for a peer
that is not connected is kept for the channel's message TTL and delivered when it
connects (KVS does the same). The master's answer to a ``SendAlexaOfferToMaster``
caller goes back to that REST call (:meth:`SignalingHub.offer_from_alexa`), not to a
socket: Alexa does not trickle, so candidates for it are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketDisconnect

from alexa_doorbell.cloud.db import ChannelRow, CloudDB
from alexa_doorbell.config import LocalCloudConfig
from alexa_doorbell.kvs.errors import KvsError
from alexa_doorbell.kvs.messages import (
    CLOSE_MASTER_REPLACED,
    ClientMessage,
    MessageError,
    ServerMessage,
    status_response,
)

log = logging.getLogger("alexa_doorbell.cloud.kvs")


@dataclass(eq=False)
class Peer:
    """One WebSocket client of a channel."""

    ws: WebSocket
    channel_arn: str
    client_id: str | None  # None for the MASTER
    connected_at: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    open: bool = True

    @property
    def role(self) -> str:
        return "MASTER" if self.client_id is None else "VIEWER"

    async def send(self, msg: ServerMessage) -> bool:
        if not self.open:
            return False
        try:
            async with self.lock:
                await self.ws.send_text(msg.to_json())
            return True
        except Exception:  # the socket went away under us
            self.open = False
            return False

    async def close(self, code: int = 1000) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(Exception):
                await self.ws.close(code)


class SignalingHub:
    """Who is connected to which channel, what waits for them, and who waits for an answer."""

    def __init__(self, db: CloudDB, local: LocalCloudConfig) -> None:
        self.db = db
        self.local = local  # max_viewers, idle_timeout, connection_max_age
        self.masters: dict[str, Peer] = {}
        self.viewers: dict[str, dict[str, Peer]] = defaultdict(dict)
        # Undelivered messages per (channel ARN, recipient; "" = master), kept for the TTL.
        self._pending: dict[tuple[str, str], list[tuple[float, ServerMessage]]] = defaultdict(list)
        self._alexa: dict[tuple[str, str], asyncio.Future[str]] = {}

    def master_connected(self, channel_arn: str) -> bool:
        return channel_arn in self.masters

    def viewer_ids(self, channel_arn: str) -> list[str]:
        return sorted(self.viewers.get(channel_arn, {}))

    async def offer_from_alexa(
        self, row: ChannelRow, sender: str, payload: str, wait: float
    ) -> str | None:
        """Deliver Alexa's offer to the master and wait up to ``wait`` s for its answer
        (None: none came, or a newer offer from the same SenderClientId replaced this one)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        key = (row.arn, sender)
        old = self._alexa.get(key)
        if old is not None and not old.done():
            old.cancel()
        self._alexa[key] = fut
        # Like KVS: delivered now if the master is connected, else when it connects (within TTL).
        await self._deliver(row, "", ServerMessage("SDP_OFFER", payload, sender_client_id=sender))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), wait)
        except TimeoutError:
            # AWS keeps redelivering until the TTL and then answers without an Answer.
            return None
        except asyncio.CancelledError:
            if fut.cancelled():  # a newer offer from the same SenderClientId replaced this one
                return None
            raise
        finally:
            if self._alexa.get(key) is fut:
                del self._alexa[key]

    async def drop_channel(self, arn: str) -> None:
        """A deleted channel: its peers disconnected, its waiting messages gone."""
        peers = [self.masters.pop(arn, None), *self.viewers.pop(arn, {}).values()]
        for peer in peers:
            if peer is not None:
                await peer.close(1000)
        for key in [k for k in self._pending if k[0] == arn]:
            del self._pending[key]

    # -- routing ---------------------------------------------------------------
    def _peer(self, arn: str, recipient: str) -> Peer | None:
        if recipient == "":
            return self.masters.get(arn)
        return self.viewers.get(arn, {}).get(recipient)

    async def _deliver(self, row: ChannelRow, recipient: str, msg: ServerMessage) -> None:
        peer = self._peer(row.arn, recipient)
        if peer is not None and await peer.send(msg):
            return
        now = time.monotonic()
        queue = self._pending[(row.arn, recipient)]
        queue[:] = [(t, m) for t, m in queue if t > now]
        queue.append((now + row.message_ttl, msg))
        self._prune(now)

    def _prune(self, now: float) -> None:
        for key in [k for k, q in self._pending.items() if not q or q[-1][0] <= now]:
            del self._pending[key]

    async def _flush(self, peer: Peer) -> None:
        key = (peer.channel_arn, peer.client_id or "")
        queue = self._pending.pop(key, [])
        now = time.monotonic()
        for expires, msg in queue:
            if expires > now:
                await peer.send(msg)

    async def _route(self, peer: Peer, text: str) -> None:
        corr = None
        with contextlib.suppress(Exception):
            obj = json.loads(text)
            corr = obj.get("correlationId") if isinstance(obj, dict) else None
        try:
            msg = ClientMessage.parse(text)
        except MessageError as exc:
            await peer.send(status_response("InvalidArgumentException", str(exc), "400", corr))
            return
        row = self.db.channel_by_arn(peer.channel_arn)
        if row is None:  # deleted under us
            await peer.close(1000)
            return
        if peer.client_id is None:  # master → one viewer (or a SendAlexaOfferToMaster caller)
            recipient = msg.recipient_client_id
            if not recipient:
                await peer.send(
                    status_response(
                        "InvalidArgumentException",
                        "recipientClientId is required for messages from the MASTER",
                        "400",
                        msg.correlation_id,
                    )
                )
                return
            waiter = self._alexa.get((row.arn, recipient))
            if waiter is not None:
                # Alexa does not trickle: only the answer matters, candidates are dropped.
                if msg.action == "SDP_ANSWER" and not waiter.done():
                    waiter.set_result(msg.message_payload)
                return
            out = ServerMessage(msg.action, msg.message_payload, sender_client_id=None)
            await self._deliver(row, recipient, out)
        else:  # viewer → master
            out = ServerMessage(msg.action, msg.message_payload, sender_client_id=peer.client_id)
            await self._deliver(row, "", out)

    # -- WebSocket peers -------------------------------------------------------
    async def serve(self, ws: WebSocket, peer: Peer) -> None:
        """Accept an admitted peer's socket and route what it sends until it goes."""
        await ws.accept()
        await self._flush(peer)
        try:
            while True:
                now = time.monotonic()
                idle_left = peer.last_seen + self.local.idle_timeout - now
                age_left = peer.connected_at + self.local.connection_max_age - now
                if age_left <= 0:
                    # KVS caps a connection's life: it asks the client to reconnect.
                    await peer.send(ServerMessage("GO_AWAY"))
                    break
                if idle_left <= 0:
                    break
                try:
                    event = await asyncio.wait_for(ws.receive(), min(idle_left, age_left))
                except TimeoutError:
                    continue
                if event["type"] == "websocket.disconnect":
                    break
                peer.last_seen = time.monotonic()
                text = event.get("text")
                if text is None and event.get("bytes") is not None:
                    text = event["bytes"].decode("utf-8", "replace")
                if text:
                    await self._route(peer, text)
        except WebSocketDisconnect:
            pass
        finally:
            self._forget(peer)
            await peer.close(1000)

    def _forget(self, peer: Peer) -> None:
        if peer.client_id is None:
            if self.masters.get(peer.channel_arn) is peer:
                del self.masters[peer.channel_arn]
        else:
            viewers = self.viewers.get(peer.channel_arn, {})
            if viewers.get(peer.client_id) is peer:
                del viewers[peer.client_id]

    async def connect(self, ws: WebSocket, row: ChannelRow, client_id: str | None) -> Peer:
        """A new peer of ``row``: the newest MASTER takes over; a VIEWER past the limit is
        refused (``ClientLimitExceededException``); a ClientId reconnecting replaces its old
        socket."""
        peer = Peer(ws, row.arn, client_id)
        if client_id is None:
            old = self.masters.get(row.arn)
            self.masters[row.arn] = peer
            if old is not None:  # the newest master connection takes over
                log.warning(
                    "a new MASTER connection replaced the one of %s: two camera agents on "
                    "one channel?",
                    row.name,
                )
                await old.close(CLOSE_MASTER_REPLACED)
            return peer
        viewers = self.viewers[row.arn]
        old = viewers.get(client_id)
        if old is None and len(viewers) >= self.local.max_viewers:
            raise KvsError(
                f"The channel already has {len(viewers)} viewers connected "
                f"(limit {self.local.max_viewers})",
                error_type="ClientLimitExceededException",
                status=400,
            )
        viewers[client_id] = peer
        if old is not None:  # same ClientId reconnecting
            await old.close(1000)
        return peer

    async def close_all(self) -> None:
        peers = list(self.masters.values())
        for v in self.viewers.values():
            peers.extend(v.values())
        for peer in peers:
            await peer.close(1001)
        for fut in self._alexa.values():
            if not fut.done():
                fut.cancel()
