"""What happened at each door, for the dashboard: presses, motion and detections.

    timeline = Timeline.in_dir(settings.data_dir)     # data_dir/timeline.sqlite3
    entry_id = timeline.add(DoorEvent(at, "front-door", "detection", "person",
                                      score=0.91, snapshot_key=snap.key, status="202"))
    timeline.recent(50)                               # newest first
    timeline.get(entry_id).snapshot_key               # the picture, in the snapshot bucket

Kept on the camera's machine beside its other state (in AWS the camera has no
store of its own, and the dashboard runs there): the camera side writes it as
its inputs' events go to the notifier, the dashboard reads it. One SQLite file
in WAL mode, so the two processes share it; the newest ``KEEP`` entries stay.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from alexa_doorbell.store.base import StoreError

KEEP = 500
KINDS = ("press", "motion", "detection")
FILE_NAME = "timeline.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS door_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    endpoint_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    what TEXT NOT NULL,
    score REAL,
    snapshot_key TEXT,
    status TEXT NOT NULL,
    source TEXT NOT NULL
);
"""
_COLS = "id, at, endpoint_id, kind, what, score, snapshot_key, status, source"


@dataclass(frozen=True)
class DoorEvent:
    """One thing that happened at a door and what Alexa was told of it."""

    at: float  # unix seconds
    endpoint_id: str
    kind: str  # press, motion, detection
    what: str  # the cause of a press, "motion", or the class seen ("person", "package")
    score: float | None = None
    snapshot_key: str | None = None  # the picture's key in the snapshot bucket
    status: str = ""  # the notifier's: "202", "cooldown", "debounced", "not linked", ...
    source: str = ""  # which input: webhook, mqtt, gpio, pixels, hog, demo
    id: int = 0


class Timeline:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the timeline {self.path}: {exc}") from exc

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> Timeline:
        return cls(Path(data_dir) / FILE_NAME)

    def add(self, event: DoorEvent) -> int:
        if event.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {event.kind!r}")
        row = (
            event.at,
            event.endpoint_id,
            event.kind,
            event.what,
            event.score,
            event.snapshot_key,
            event.status,
            event.source,
        )
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO door_events (at, endpoint_id, kind, what, score, snapshot_key, "
                    "status, source) VALUES (?,?,?,?,?,?,?,?)",
                    row,
                )
                new_id = int(cur.lastrowid or 0)
                self._db.execute("DELETE FROM door_events WHERE id <= ?", (new_id - KEEP,))
            except sqlite3.Error as exc:
                raise StoreError(f"timeline write failed: {exc}") from exc
        return new_id

    def recent(self, limit: int = 50, endpoint_id: str | None = None) -> list[DoorEvent]:
        """Newest first."""
        where, args = ("WHERE endpoint_id = ?", (endpoint_id,)) if endpoint_id else ("", ())
        rows = self._read(
            f"SELECT {_COLS} FROM door_events {where} ORDER BY at DESC, id DESC LIMIT ?",
            (*args, max(0, int(limit))),
        )
        return [_event(r) for r in rows]

    def get(self, entry_id: int) -> DoorEvent | None:
        rows = self._read(f"SELECT {_COLS} FROM door_events WHERE id = ?", (int(entry_id),))
        return _event(rows[0]) if rows else None

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"timeline read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _event(row: tuple) -> DoorEvent:
    id_, at, eid, kind, what, score, key, status, source = row
    return DoorEvent(at, eid, kind, what, score, key, status, source, id=id_)
