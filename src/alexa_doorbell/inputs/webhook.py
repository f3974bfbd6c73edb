"""A URL to ring, report motion or a detection: for Node-RED, scripts, vendor doorbells.

    POST /hooks/<endpoint_id>/press      {"cause": "PHYSICAL_INTERACTION"}  (body optional)
    POST /hooks/<endpoint_id>/motion     {"detected": true}  (no body: motion now)
    POST /hooks/<endpoint_id>/detection  {"label": "person", "score": 0.9, "snapshot": "<base64>"}

Every request proves it knows the secret (``ALEXA_DOORBELL_WEBHOOK_SECRET``, or
the file named by ``ALEXA_DOORBELL_WEBHOOK_SECRET_FILE``; never the TOML file),
one of two ways, both compared in constant time:

- ``Authorization: Bearer <secret>``
- ``X-Doorbell-Timestamp: <unix seconds>`` and ``X-Doorbell-Signature: sha256=<hex>``,
  the HMAC-SHA256 under the secret of ``<timestamp>.<body>``: the secret never
  crosses the network and a recorded request is refused after 5 minutes.

Then: 401 without or with a wrong secret (before anything else is looked at),
404 for a camera that is not configured, 400 for a body that is not what the
path takes (the message says what is), 413 over 8 MiB, 202 when accepted. The
server answers only to its own host names (``httpguard.HostGuard``, as the
dashboard), and listens on loopback unless ``[webhook] host`` says otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alexa_doorbell.alexa.events import CAUSE_TYPES
from alexa_doorbell.alexa.smartvision import IMAGE_NET_CLASSES, image_net_class
from alexa_doorbell.httpguard import HostGuard, bearer_matches, is_loopback
from alexa_doorbell.httpserver import LoopServer, listen, server_config
from alexa_doorbell.inputs.sink import Detection, Event, Motion, Press
from alexa_doorbell.lambda_config import ConfigError

log = logging.getLogger(__name__)

SECRET_ENV = "ALEXA_DOORBELL_WEBHOOK_SECRET"
MIN_SECRET = 16  # characters; `openssl rand -hex 32` makes 64
MAX_BODY = 8 * 1024 * 1024  # a 4K JPEG in base64 fits
MAX_SNAPSHOT = 5 * 1024 * 1024
SIGNATURE_WINDOW = 300.0  # seconds a signed request stays good
FAIL_DELAY = 0.5  # seconds a wrong secret waits for its 401


def read_secret(environ: Mapping[str, str] = os.environ) -> str:
    """The webhook secret from the environment or its file; ConfigError with what to do."""
    secret = environ.get(SECRET_ENV)
    path = environ.get(SECRET_ENV + "_FILE")
    if not secret and path:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{SECRET_ENV}_FILE={path}: {exc.strerror}; point it at a file holding the secret"
            ) from None
    if not secret:
        raise ConfigError(
            f"[webhook] is enabled but has no secret: set {SECRET_ENV} (or {SECRET_ENV}_FILE), "
            "e.g. to the output of `openssl rand -hex 32`"
        )
    if len(secret) < MIN_SECRET:
        raise ConfigError(
            f"{SECRET_ENV} is {len(secret)} characters; use at least {MIN_SECRET} "
            "(e.g. `openssl rand -hex 32`)"
        )
    return secret


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Doorbell-Signature`` value for a request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Webhook:
    """The request handlers; ``cameras`` maps endpoint ids to whether each is a doorbell."""

    def __init__(
        self,
        cameras: Mapping[str, bool],
        secret: str,
        emit: Callable[[Event], None],
        *,
        fail_delay: float = FAIL_DELAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cameras = dict(cameras)
        self.secret = secret
        self.emit = emit
        self.fail_delay = fail_delay
        self.clock = clock

    def _authorized(self, request: Request, body: bytes) -> bool:
        headers = request.headers
        if headers.get("authorization"):
            return bearer_matches(headers, self.secret)
        stamp, given = headers.get("x-doorbell-timestamp"), headers.get("x-doorbell-signature")
        if not stamp or not given:
            return False
        try:
            age = abs(self.clock() - float(stamp))
        except ValueError:
            return False
        expected = signature(self.secret, stamp, body)
        good = hmac.compare_digest(given.strip().lower().encode(), expected.encode())
        return good and age <= SIGNATURE_WINDOW

    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise _BadRequest(413, f"the body is over {MAX_BODY} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise _BadRequest(413, f"the body is over {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle(self, request: Request) -> Response:
        what = request.path_params["what"]
        endpoint_id = request.path_params["endpoint_id"]
        try:
            body = await self._body(request)
        except _BadRequest as exc:
            return _error(exc.status, str(exc))
        if not self._authorized(request, body):
            await asyncio.sleep(self.fail_delay)  # guessing costs time
            return _error(
                401,
                "the webhook secret is missing or wrong: send Authorization: Bearer <secret> "
                "or a signature (docs/inputs.md)",
                headers={"WWW-Authenticate": 'Bearer realm="alexa-doorbell webhook"'},
            )
        if endpoint_id not in self.cameras:
            known = ", ".join(sorted(self.cameras)) or "none"
            return _error(404, f"no camera {endpoint_id!r} (configured: {known})")
        try:
            event = self._event(what, endpoint_id, body)
        except _BadRequest as exc:
            return _error(exc.status, str(exc))
        self.emit(event)
        return JSONResponse({"accepted": what, "endpoint_id": endpoint_id}, status_code=202)

    def _event(self, what: str, endpoint_id: str, body: bytes) -> Event:
        doc = _json_object(body)
        now = self.clock()
        if what == "press":
            if not self.cameras[endpoint_id]:
                raise _BadRequest(409, f"{endpoint_id} is no doorbell (its doorbell = false)")
            cause = doc.get("cause", "PHYSICAL_INTERACTION")
            if cause not in CAUSE_TYPES:
                raise _BadRequest(400, f"cause must be one of {', '.join(CAUSE_TYPES)}")
            _only(doc, {"cause"})
            return Press(endpoint_id, cause, source="webhook")
        if what == "motion":
            _only(doc, {"detected"})
            detected = doc.get("detected")
            if detected is None:  # "motion now": the pulse ends at once, the hold keeps it
                self.emit(Motion(endpoint_id, True, now, source="webhook"))
                return Motion(endpoint_id, False, now, source="webhook")
            if not isinstance(detected, bool):
                raise _BadRequest(400, "detected must be true or false")
            return Motion(endpoint_id, detected, now, source="webhook")
        _only(doc, {"label", "score", "snapshot"})
        label = image_net_class(doc.get("label"))
        if label is None:
            raise _BadRequest(
                400, f"label must be one of {', '.join(IMAGE_NET_CLASSES)} (Alexa's classes)"
            )
        score = doc.get("score")
        if score is not None and (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
            or not 0 <= score <= 1
        ):
            raise _BadRequest(400, "score must be a number from 0 to 1")
        return Detection(
            endpoint_id,
            label,
            None if score is None else float(score),
            now,
            _snapshot(doc.get("snapshot")),
            source="webhook",
        )


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _BadRequest(400, "the body is not JSON (send a JSON object, or nothing)") from None
    if not isinstance(doc, dict):
        raise _BadRequest(400, f"the body is a JSON {type(doc).__name__}, not an object")
    return doc


def _only(doc: Mapping[str, Any], keys: set[str]) -> None:
    extra = sorted(set(doc) - keys)
    if extra:
        raise _BadRequest(
            400, f"unknown field {extra[0]!r}; this path takes {', '.join(sorted(keys))}"
        )


def _snapshot(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _BadRequest(400, "snapshot must be a base64 string of a JPEG")
    if value.startswith("data:"):  # a data: URL, as browsers and Node-RED make them
        head, _, value = value.partition(",")
        if not head.endswith(";base64"):
            raise _BadRequest(400, "snapshot data: URL must be base64")
    if len(value) > MAX_SNAPSHOT * 4 // 3 + 4:
        raise _BadRequest(413, f"snapshot is over {MAX_SNAPSHOT} bytes")
    try:
        jpeg = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest(400, "snapshot is not valid base64") from None
    if not jpeg.startswith(b"\xff\xd8\xff"):
        raise _BadRequest(400, "snapshot is not a JPEG (it must start with FF D8 FF)")
    return jpeg


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(
    webhook: Webhook,
    *,
    bind_host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] = (),
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """The ASGI app; ``middleware`` runs inside the Host check (e.g. a rate limit)."""
    return Starlette(
        routes=[
            Route("/hooks/{endpoint_id}/{what:str}", _dispatch(webhook), methods=["POST"]),
        ],
        middleware=[Middleware(HostGuard, list(allowed_hosts), bind_host=bind_host), *middleware],
    )


def _dispatch(webhook: Webhook) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        if request.path_params["what"] not in ("press", "motion", "detection"):
            return _error(404, "no such hook: use press, motion or detection")
        return await webhook.handle(request)

    return endpoint


class WebhookServer:
    """The webhook app served in the running loop (``httpserver``); ``port=0`` picks one."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 8770) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: LoopServer | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        try:
            sock = listen(
                self.host, self.port, what="webhook", hint="Set [webhook] port to a free one."
            )
        except OSError as exc:
            raise ConfigError(str(exc)) from None
        self.port = sock.getsockname()[1]
        self._server = LoopServer(server_config(self.app, lifespan="off"), sock)
        await self._server.start()
        if not is_loopback(self.host):
            log.warning(
                "webhook: listening on %s beyond this machine over plain http: prefer signed "
                "requests (X-Doorbell-Signature), which never send the secret",
                self.url,
            )
        else:
            log.info("webhook: listening on %s/hooks/<camera>/press|motion|detection", self.url)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        self._server = None
