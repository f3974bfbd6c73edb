"""KVS signaling emulator: control plane, data plane and the WebSocket hub.

Speaks what boto3's ``kinesisvideo`` / ``kinesis-video-signaling`` clients and
the official KVS WebRTC SDKs speak (docs/PROTOCOLS.md §4): restJson with AWS's
field names and errors (``x-amzn-ErrorType`` + ``{"message"}``), SigV4 on
every call, and a presigned-URL WebSocket that routes SDP/ICE messages
between one MASTER and up to ``max_viewers`` VIEWERs per channel. This module
is the REST side and the WebSocket's admission; ``kvs_hub.py`` routes the messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from alexa_doorbell.cloud.db import ChannelRow, CloudDB
from alexa_doorbell.cloud.kvs_hub import Peer, SignalingHub
from alexa_doorbell.cloud.sigv4 import (
    SigV4Error,
    header_lists,
    verify_header_auth,
    verify_presigned,
)
from alexa_doorbell.config import Settings
from alexa_doorbell.kvs.errors import KvsError
from alexa_doorbell.kvs.messages import CLIENT_ID_RE
from alexa_doorbell.kvs.names import CHANNEL_NAME_RE

log = logging.getLogger(__name__)

SERVICE = "kinesisvideo"
ACCOUNT_ID = "000000000000"  # the emulator's pretend AWS account
# botocore's service-model patterns (kinesisvideo, kinesis-video-signaling), always used
# with .fullmatch as AWS matches the whole value: "front-door\n" is no channel name.
NAME_RE = CHANNEL_NAME_RE
PAYLOAD_RE = re.compile(r"[a-zA-Z0-9+/=]{1,10000}")
# ResourceARN: any partition on the control plane, "aws" on the signaling data plane.
CONTROL_ARN_RE = re.compile(
    r"arn:[a-z0-9-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+"
)
SIGNALING_ARN_RE = re.compile(
    r"arn:aws:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+"
)
MAX_ARN = 1024
VERSION_RE = re.compile(r"[a-zA-Z0-9]{1,64}")
TTL_MIN, TTL_MAX = 5, 120


def aws_error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type}
    )


def _invalid(message: str) -> KvsError:
    return KvsError(message, error_type="InvalidArgumentException", status=400)


def _check_name(name: Any, field: str = "ChannelName") -> None:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{field} must be a string")  # SerializationException, as AWS answers
    if name is None or not NAME_RE.fullmatch(name):
        raise _invalid(f"{field} must be 1-256 characters of [a-zA-Z0-9_.-]")


def _not_found(what: str) -> KvsError:
    message = f"The requested channel is not found: {what}"
    return KvsError(message, error_type="ResourceNotFoundException", status=404)


class KvsEmulator:
    """Channels (persisted), the REST calls on them, and the way into the signaling hub."""

    def __init__(self, settings: Settings, db: CloudDB) -> None:
        self.settings = settings
        self.db = db
        self.hub = SignalingHub(db, settings.local)
        # GetIceServerConfig's IceServerList for a ClientId (the cloud's coturn); none: []
        self.ice_servers: Callable[[str | None], Awaitable[list[dict[str, Any]]]] | None = None

    # -- helpers ------------------------------------------------------------
    @property
    def secrets(self) -> dict[str, str]:
        local = self.settings.local
        return {local.aws_access_key_id: local.aws_secret_access_key.get_secret_value()}

    def arn_for(self, name: str) -> str:
        return (
            f"arn:aws:kinesisvideo:{self.settings.region}:{ACCOUNT_ID}:channel/"
            f"{name}/{int(time.time() * 1000)}"
        )

    def ensure_channel(self, name: str, ttl: int | None = None) -> ChannelRow:
        """The channel named ``name``, created when missing (cameras' channels on start)."""
        row = self.db.channel_by_name(name)
        if row is None:
            row = ChannelRow(
                name,
                self.arn_for(name),
                "SINGLE_MASTER",
                ttl or self.settings.local.message_ttl,
                time.time(),
                uuid.uuid4().hex[:20],
            )
            if not self.db.add_channel(row):
                row = self.db.channel_by_name(name)
                assert row is not None
        return row

    def _channel(self, arn: Any, pattern: re.Pattern[str] = CONTROL_ARN_RE) -> ChannelRow:
        if not isinstance(arn, str) or not arn:
            raise _invalid("ChannelARN is required")
        if len(arn) > MAX_ARN or not pattern.fullmatch(arn):
            raise _invalid(f"Invalid ARN: {arn!r}")
        row = self.db.channel_by_arn(arn)
        if row is None:
            raise _not_found(arn)
        return row

    @staticmethod
    def _info(row: ChannelRow) -> dict[str, Any]:
        return {
            "ChannelName": row.name,
            "ChannelARN": row.arn,
            "ChannelType": row.channel_type,
            "ChannelStatus": "ACTIVE",
            "CreationTime": row.created_at,
            "SingleMasterConfiguration": {"MessageTtlSeconds": row.message_ttl},
            "Version": row.version,
        }

    @property
    def masters(self) -> dict[str, Peer]:
        """Each channel's MASTER connection (the hub's)."""
        return self.hub.masters

    @property
    def viewers(self) -> dict[str, dict[str, Peer]]:
        """Each channel's VIEWER connections by ClientId (the hub's)."""
        return self.hub.viewers

    def master_connected(self, channel_arn: str) -> bool:
        return self.hub.master_connected(channel_arn)

    def viewer_ids(self, channel_arn: str) -> list[str]:
        return self.hub.viewer_ids(channel_arn)

    # -- REST entry --------------------------------------------------------
    async def rest(self, request: Request) -> Response:
        """Every SigV4-signed KVS REST call (control and data plane)."""
        body = await request.body()
        try:
            verify_header_auth(
                method=request.method,
                path=request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
                query=request.scope.get("query_string", b"").decode("latin-1"),
                headers=header_lists(request.headers.raw),
                body=body,
                secrets=self.secrets,
                service=SERVICE,
            )
        except SigV4Error as exc:
            return aws_error(exc.status, exc.error_type, exc.message)
        try:
            params = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return aws_error(400, "SerializationException", "The request body is not valid JSON")
        if not isinstance(params, dict):
            return aws_error(400, "SerializationException", "The request body must be an object")
        op = self.OPERATIONS[request.url.path]
        try:
            result = await op(self, params)
        except KvsError as exc:
            return aws_error(exc.status, exc.error_type, exc.message)
        except (AttributeError, TypeError, ValueError) as exc:
            # A field of the wrong JSON type (boto3 validates before sending; hand-made
            # requests do not): AWS answers 400 SerializationException, not a 500.
            return aws_error(400, "SerializationException", f"A field has the wrong type: {exc}")
        return JSONResponse(result)

    # -- control plane ------------------------------------------------------
    async def create_signaling_channel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("ChannelName")
        _check_name(name)
        ctype = p.get("ChannelType", "SINGLE_MASTER")
        if ctype != "SINGLE_MASTER":
            raise _invalid(f"ChannelType {ctype!r} is not supported by the local cloud")
        conf = p.get("SingleMasterConfiguration") or {}
        ttl = conf.get("MessageTtlSeconds", self.settings.local.message_ttl)
        if not isinstance(ttl, int) or not TTL_MIN <= ttl <= TTL_MAX:
            raise _invalid(f"MessageTtlSeconds must be between {TTL_MIN} and {TTL_MAX}")
        row = ChannelRow(name, self.arn_for(name), ctype, ttl, time.time(), uuid.uuid4().hex[:20])
        if not self.db.add_channel(row):
            raise KvsError(
                f"The signaling channel {name} already exists",
                error_type="ResourceInUseException",
                status=400,
            )
        return {"ChannelARN": row.arn}

    async def describe_signaling_channel(self, p: dict[str, Any]) -> dict[str, Any]:
        name, arn = p.get("ChannelName"), p.get("ChannelARN")
        if bool(name) == bool(arn):
            raise _invalid("Specify exactly one of ChannelName and ChannelARN")
        if name:
            _check_name(name)
            row = self.db.channel_by_name(name)
            if row is None:
                raise _not_found(str(name))
        else:
            row = self._channel(arn)
        return {"ChannelInfo": self._info(row)}

    async def get_signaling_channel_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._channel(p.get("ChannelARN"))
        conf = p.get("SingleMasterChannelEndpointConfiguration") or {}
        protocols = conf.get("Protocols") or ["WSS", "HTTPS"]
        role = conf.get("Role", "MASTER")
        if role not in ("MASTER", "VIEWER"):
            raise _invalid(f"Role must be MASTER or VIEWER, not {role!r}")
        local = self.settings.local
        urls = {"WSS": f"wss://{local.host}:{local.tls_port}", "HTTPS": local.url}
        out = []
        for proto in protocols:
            if proto not in urls:
                raise _invalid(
                    f"Protocol {proto!r} is not available for channel {row.name} "
                    "(the local cloud offers WSS and HTTPS)"
                )
            out.append({"Protocol": proto, "ResourceEndpoint": urls[proto]})
        return {"ResourceEndpointList": out}

    async def list_signaling_channels(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = self.db.list_channels()
        cond = p.get("ChannelNameCondition")
        if cond:
            if cond.get("ComparisonOperator", "BEGINS_WITH") != "BEGINS_WITH":
                raise _invalid("ComparisonOperator must be BEGINS_WITH")
            prefix = cond.get("ComparisonValue") or ""
            if prefix:
                _check_name(prefix, "ComparisonValue")
            rows = [r for r in rows if r.name.startswith(prefix)]
        limit = p.get("MaxResults", 500)
        if not isinstance(limit, int) or not 1 <= limit <= 10000:
            raise _invalid("MaxResults must be between 1 and 10000")
        start = 0
        if p.get("NextToken"):
            try:
                start = int(base64.b64decode(p["NextToken"]).decode())
            except (ValueError, binascii.Error):
                raise _invalid("NextToken is invalid") from None
        page = rows[start : start + limit]
        out: dict[str, Any] = {"ChannelInfoList": [self._info(r) for r in page]}
        if start + limit < len(rows):
            out["NextToken"] = base64.b64encode(str(start + limit).encode()).decode()
        return out

    async def delete_signaling_channel(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._channel(p.get("ChannelARN"))
        version = p.get("CurrentVersion")
        if version is not None and not VERSION_RE.fullmatch(version):
            raise _invalid("CurrentVersion must be 1-64 characters of [a-zA-Z0-9]")
        if version is not None and version != row.version:
            raise KvsError(
                f"The version {version} does not match the channel's version {row.version}",
                error_type="VersionMismatchException",
                status=400,
            )
        self.db.delete_channel(row.arn)
        await self.hub.drop_channel(row.arn)
        return {}

    # -- data plane ----------------------------------------------------------
    async def get_ice_server_config(self, p: dict[str, Any]) -> dict[str, Any]:
        self._channel(p.get("ChannelARN"), SIGNALING_ARN_RE)
        client_id = p.get("ClientId")
        if client_id is not None and (
            not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id)
        ):
            raise _invalid("ClientId must be 1-256 characters of [a-zA-Z0-9_.-]")
        if p.get("Service", "TURN") != "TURN":
            raise _invalid("Service must be TURN")
        if self.ice_servers is None:
            return {"IceServerList": []}
        return {"IceServerList": await self.ice_servers(client_id)}

    async def send_alexa_offer_to_master(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._channel(p.get("ChannelARN"), SIGNALING_ARN_RE)
        sender = p.get("SenderClientId")
        if not isinstance(sender, str) or not CLIENT_ID_RE.fullmatch(sender):
            raise _invalid("SenderClientId must be 1-256 characters of [a-zA-Z0-9_.-]")
        payload = p.get("MessagePayload")
        if not isinstance(payload, str) or not PAYLOAD_RE.fullmatch(payload):
            raise _invalid("MessagePayload must be 1-10000 characters of base64")
        wait = min(float(row.message_ttl), self.settings.local.offer_wait_max)
        answer = await self.hub.offer_from_alexa(row, sender, payload, wait)
        return {} if answer is None else {"Answer": answer}

    OPERATIONS: ClassVar[dict[str, Any]] = {
        "/createSignalingChannel": create_signaling_channel,
        "/describeSignalingChannel": describe_signaling_channel,
        "/getSignalingChannelEndpoint": get_signaling_channel_endpoint,
        "/listSignalingChannels": list_signaling_channels,
        "/deleteSignalingChannel": delete_signaling_channel,
        "/v1/get-ice-server-config": get_ice_server_config,
        "/v1/send-alexa-offer-to-master": send_alexa_offer_to_master,
    }

    # -- WebSocket entry ---------------------------------------------------------
    async def websocket(self, ws: WebSocket) -> None:
        try:
            peer = await self._admit(ws)
        except KvsError as exc:
            await self._refuse(ws, exc.status, exc.error_type, exc.message)
            return
        await self.hub.serve(ws, peer)

    async def _refuse(self, ws: WebSocket, status: int, error_type: str, message: str) -> None:
        log.info("refused signaling connection: %s %s %s", status, error_type, message)
        try:
            await ws.send_denial_response(aws_error(status, error_type, message))
        except RuntimeError:  # server without the denial-response extension
            await ws.close(1008)

    async def _admit(self, ws: WebSocket) -> Peer:
        try:
            _, params = verify_presigned(
                method="GET",
                path=ws.scope.get("raw_path", b"").decode("latin-1") or ws.url.path,
                query=ws.scope.get("query_string", b"").decode("latin-1"),
                headers=header_lists(ws.headers.raw),
                secrets=self.secrets,
                service=SERVICE,
            )
        except SigV4Error as exc:
            raise KvsError(exc.message, error_type=exc.error_type, status=exc.status) from None
        row = self._channel(params.get("X-Amz-ChannelARN"), SIGNALING_ARN_RE)
        client_id = params.get("X-Amz-ClientId") or None
        if client_id is not None and not CLIENT_ID_RE.fullmatch(client_id):
            raise _invalid("X-Amz-ClientId must be 1-256 characters of [a-zA-Z0-9_.-]")
        return await self.hub.connect(ws, row, client_id)

    async def close_all(self) -> None:
        await self.hub.close_all()
