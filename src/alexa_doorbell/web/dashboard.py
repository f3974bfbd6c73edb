"""The dashboard's handlers and state: cameras, viewer URLs, the press, the status."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.websockets import WebSocket

from alexa_doorbell.camera import runstate
from alexa_doorbell.cloud.admin import ADMIN_TOKEN_ENV, admin_headers
from alexa_doorbell.config import Settings
from alexa_doorbell.httpguard import same_origin
from alexa_doorbell.store.base import Store
from alexa_doorbell.web.press import NotifierPress, PressFn, press_reply
from alexa_doorbell.web.relay import SignalingRelay
from alexa_doorbell.web.status import Problem, StatusInputs, build_status, event_advice
from alexa_doorbell.web.viewer import ViewerError, ViewerSigner

log = logging.getLogger("alexa_doorbell.web.app")

STATIC = Path(__file__).parent / "static"
# Page code revalidates on every load (ETag), so an upgrade shows at once; the
# vendored SDK changes only with a release.
CACHE_PAGE = "no-cache"
CACHE_VENDOR = "public, max-age=86400"
NO_STORE = {"Cache-Control": "no-store"}


class Dashboard:
    """The app's state: settings, the store, the signer and recent failures."""

    def __init__(
        self, settings: Settings, store: Store | None = None, press: PressFn | None = None
    ):
        self.settings = settings
        self._store = store
        self._own_store = store is None
        # Its own notifier, unless the caller rings some other way (then it sweeps nothing).
        self.notifier: NotifierPress | None = None
        if press is None:
            press = self.notifier = NotifierPress(settings, store)
        self.press_fn: PressFn = press
        self.signer = ViewerSigner(settings)
        self.problems: collections.deque[Problem] = collections.deque(maxlen=10)
        self.relays = SignalingRelay(settings, self._problem)

    @property
    def store(self) -> Store:
        if self._store is None:
            from alexa_doorbell.store import open_store

            self._store = open_store(self.settings.store_location)
        return self._store

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def _problem(self, what: str, fix: str, where: str) -> None:
        self.problems.appendleft(Problem(what, fix, where, time.time()))

    # -- handlers -------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return FileResponse(
            STATIC / "index.html",
            headers={"Cache-Control": CACHE_PAGE, "X-Content-Type-Options": "nosniff"},
        )

    async def cameras(self, request: Request) -> JSONResponse:
        cams = [
            {
                "endpoint_id": c.endpoint_id,
                "friendly_name": c.friendly_name,
                "doorbell": c.doorbell,
                "full_duplex": c.full_duplex,
            }
            for c in self.settings.cameras
        ]
        reply = {"cloud": self.settings.cloud, "cameras": cams, "login": request.app.state.login}
        return JSONResponse(reply, headers=NO_STORE)

    def _camera_or_404(self, request: Request) -> tuple[str, JSONResponse | None]:
        endpoint_id = request.path_params["endpoint_id"]
        try:
            self.settings.camera(endpoint_id)
        except KeyError as exc:
            return endpoint_id, JSONResponse({"error": str(exc.args[0])}, 404, headers=NO_STORE)
        if not same_origin(request.headers):  # another page must not ring or get a viewer URL
            return endpoint_id, JSONResponse({"error": "cross-site request"}, 403)
        return endpoint_id, None

    async def viewer(self, request: Request) -> JSONResponse:
        endpoint_id, refused = self._camera_or_404(request)
        if refused is not None:
            return refused
        try:
            config = await asyncio.to_thread(self.signer.viewer, endpoint_id)
        except ViewerError as exc:
            self.signer.forget(endpoint_id)
            self._problem(f"Live view of {endpoint_id} failed.", str(exc), endpoint_id)
            return JSONResponse({"error": str(exc)}, 502, headers=NO_STORE)
        if self.settings.is_local and request.query_params.get("direct") != "1":
            # Browsers distrust the local cloud's self-made certificate: relay the
            # signaling WebSocket through this (same-origin) server instead.
            config["relayPath"] = f"/api/signaling/{self.relays.token(config['signedURL'])}"
        return JSONResponse(config, headers=NO_STORE)

    async def relay(self, ws: WebSocket) -> None:
        """``/api/signaling/{token}``: the browser's signaling, piped to the local cloud."""
        await self.relays.serve(ws)

    async def press(self, request: Request) -> JSONResponse:
        endpoint_id, refused = self._camera_or_404(request)
        if refused is not None:
            return refused
        # The camera agent on this machine readies the view, takes its picture, and
        # records the press in the door timeline with the status it is told after.
        data_dir, press = self.settings.data_dir, runstate.new_press_id()
        runstate.ask_prewarm(
            data_dir, endpoint_id, press=press, source="dashboard", cause="APP_INTERACTION"
        )
        try:
            result = press_reply(await asyncio.to_thread(self.press_fn, endpoint_id))
            runstate.tell_press_outcome(data_dir, endpoint_id, press, result["status"])
        except Exception as exc:  # the notifier's exceptions carry the user-facing message
            runstate.tell_press_outcome(data_dir, endpoint_id, press, "error")
            log.warning("press on %s failed: %s", endpoint_id, exc)
            fix = event_advice(str(exc))
            self._problem(f"Doorbell press on {endpoint_id} failed: {exc}", fix, endpoint_id)
            return JSONResponse(
                {"ok": False, "status": "error", "detail": str(exc), "fix": fix},
                502,
                headers=NO_STORE,
            )
        if not result["ok"]:
            self._problem(
                f"Doorbell press on {endpoint_id}: {result['status']}", result["fix"], endpoint_id
            )
        return JSONResponse(result, headers=NO_STORE)

    async def status(self, request: Request) -> JSONResponse:
        signaling, cloud_error = await self._signaling_viewers()
        inputs = await asyncio.to_thread(self._gather, signaling, cloud_error)
        return JSONResponse(build_status(inputs), headers=NO_STORE)

    async def _signaling_viewers(self) -> tuple[dict[str, list[str]] | None, str | None]:
        """Browser viewers per channel, from the local cloud (AWS does not list them)."""
        if not self.settings.is_local:
            return None, None
        try:
            async with httpx.AsyncClient(timeout=2.0, headers=admin_headers()) as client:
                reply = await client.get(self.settings.local.url + "/_local/status")
            if reply.status_code == 401:
                return None, f"{self.settings.local.url}: 401, set {ADMIN_TOKEN_ENV} to its token"
            reply.raise_for_status()
            channels = reply.json().get("channels", [])
        except (httpx.HTTPError, ValueError) as exc:
            return None, f"{self.settings.local.url}: {type(exc).__name__}"
        return {c["ChannelName"]: list(c.get("viewers", [])) for c in channels}, None

    def _gather(self, signaling: dict[str, list[str]] | None, cloud_error: str | None):  # type: ignore[no-untyped-def]
        from alexa_doorbell.camera.runstate import read_state

        s = self.settings
        inputs = StatusInputs(
            cloud=s.cloud,
            region=s.region,
            cameras=s.cameras,
            health={},
            sessions={},
            tokens=[],
            events=[],
            signaling_viewers=signaling,
            cloud_error=cloud_error,
            recent_problems=list(self.problems),
            health_max_age=s.health_max_age,
            max_session_seconds=s.max_session_seconds,
            agents={c.endpoint_id: read_state(s.data_dir, c.endpoint_id) for c in s.cameras},
            source_grace_seconds=s.source_grace_seconds,
        )
        try:
            store = self.store
            since = time.time() - 86400
            for cam in s.cameras:
                inputs.health[cam.endpoint_id] = store.get_health(cam.endpoint_id)
                inputs.sessions[cam.endpoint_id] = store.list_sessions(cam.endpoint_id, since=since)
            inputs.tokens = store.list_tokens()
            inputs.events = store.recent_event_records(20)
        except Exception as exc:
            inputs.store_error = str(exc)
        return inputs
