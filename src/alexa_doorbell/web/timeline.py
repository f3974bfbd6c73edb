"""The dashboard's timeline: presses, motion and detections at each door, with pictures.

    GET /api/timeline[?limit=50&camera=front-door]  -> {"entries": [...]}, newest first
    GET /api/timeline/{id}/snapshot                 -> the detection's JPEG

Read from the door timeline the camera agent writes on this machine
(``store/timeline.py``); a picture is read from the snapshot bucket with the
camera's own credentials (the page cannot open a presigned URL of the local
cloud, whose certificate browsers do not trust, and in AWS the URL expires).
Only pictures the timeline names are served, behind the dashboard's Host check
and login like every other API.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alexa_doorbell.amazon.snapshots import SnapshotError, SnapshotStore
from alexa_doorbell.config import Settings
from alexa_doorbell.store.timeline import FILE_NAME, Timeline

log = logging.getLogger("alexa_doorbell.web.app")

MAX_LIMIT = 200


class TimelineView:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = {c.endpoint_id: c.friendly_name for c in settings.cameras}
        self._timeline: Timeline | None = None
        self._snapshots: SnapshotStore | None = None
        self._lock = threading.Lock()

    def timeline(self) -> Timeline | None:
        """None until the camera agent wrote one (opening it would create an empty file)."""
        with self._lock:
            if self._timeline is None and (self.settings.data_dir / FILE_NAME).exists():
                self._timeline = Timeline.in_dir(self.settings.data_dir)
            return self._timeline

    def snapshots(self) -> SnapshotStore:
        with self._lock:
            if self._snapshots is None:
                self._snapshots = SnapshotStore.from_settings(self.settings)
            return self._snapshots

    async def entries(self, request: Request) -> JSONResponse:
        try:
            limit = min(MAX_LIMIT, max(1, int(request.query_params.get("limit", "50"))))
        except ValueError:
            return JSONResponse({"error": "limit must be a number"}, status_code=400)
        camera = request.query_params.get("camera") or None
        timeline = self.timeline()
        rows = timeline.recent(limit, camera) if timeline is not None else []
        entries = [
            {
                "id": e.id,
                "at": e.at,
                "endpoint_id": e.endpoint_id,
                "camera": self.names.get(e.endpoint_id, e.endpoint_id),
                "kind": e.kind,
                "what": e.what,
                "score": e.score,
                "status": e.status,
                "snapshot": f"/api/timeline/{e.id}/snapshot" if e.snapshot_key else None,
            }
            for e in rows
        ]
        return JSONResponse({"entries": entries}, headers={"Cache-Control": "no-store"})

    async def snapshot(self, request: Request) -> Response:
        try:
            entry_id = int(request.path_params["entry_id"])
        except ValueError:
            return JSONResponse({"error": "no such entry"}, status_code=404)
        timeline = self.timeline()
        entry = timeline.get(entry_id) if timeline is not None else None
        if entry is None or not entry.snapshot_key:
            return JSONResponse({"error": "no picture for this entry"}, status_code=404)
        try:
            data = await asyncio.to_thread(self.snapshots().get, entry.snapshot_key)
        except SnapshotError as exc:
            log.warning("dashboard: timeline picture %s: %s", entry_id, exc)
            return JSONResponse({"error": str(exc)}, status_code=502)
        ctype = "image/png" if entry.snapshot_key.endswith(".png") else "image/jpeg"
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(data, media_type=ctype, headers=headers)

    def close(self) -> None:
        with self._lock:
            if self._timeline is not None:
                self._timeline.close()
            if self._snapshots is not None:
                self._snapshots.close()
