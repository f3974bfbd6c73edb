"""The SQLite store: one file, WAL journal, every write one atomic transaction.

Safe to share between threads (one connection behind a lock) and between
processes (WAL, busy timeout). ``synchronous=FULL`` so a committed refresh
token survives a power cut, not only a process crash.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alexa_doorbell.store.base import (
    ConflictError,
    DetectionClasses,
    Device,
    EventRecord,
    Health,
    Motion,
    RtcSession,
    Store,
    StoreError,
    Tokens,
    cooldown_over,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    user_id TEXT PRIMARY KEY,
    access_token TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    expires_at REAL NOT NULL,
    region TEXT NOT NULL,
    last_refresh_at REAL,
    relink_needed INTEGER NOT NULL DEFAULT 0,
    last_gateway_status TEXT,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    endpoint_id TEXT PRIMARY KEY,
    friendly_name TEXT NOT NULL,
    channel_name TEXT NOT NULL,
    description TEXT NOT NULL,
    manufacturer TEXT NOT NULL,
    channel_arn TEXT,
    doorbell INTEGER NOT NULL,
    full_duplex INTEGER NOT NULL,
    owner TEXT,
    motion INTEGER NOT NULL DEFAULT 0,
    detection_classes TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_endpoint ON sessions (endpoint_id, updated_at);
CREATE TABLE IF NOT EXISTS health (
    endpoint_id TEXT PRIMARY KEY,
    connectivity TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS motion (
    endpoint_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS detection_classes (
    user_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    classes TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (user_id, endpoint_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    user_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS detection_claims (
    endpoint_id TEXT NOT NULL,
    image_net_class TEXT NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (endpoint_id, image_net_class)
);
CREATE TABLE IF NOT EXISTS press_claims (
    endpoint_id TEXT PRIMARY KEY,
    claim_id TEXT NOT NULL,
    claimed_at REAL NOT NULL
);
"""

# Columns added since the first release, for stores created before them: (table, column, DDL).
MIGRATIONS = (
    ("devices", "motion", "motion INTEGER NOT NULL DEFAULT 0"),
    ("devices", "detection_classes", "detection_classes TEXT NOT NULL DEFAULT ''"),
)

KEEP_EVENTS = 1000  # status pages show the recent ones; older records are pruned
KEEP_SESSIONS_SECONDS = 7 * 24 * 3600

_TOKEN_COLS = (
    "user_id, access_token, refresh_token, expires_at, region, last_refresh_at, "
    "relink_needed, last_gateway_status, version"
)
_DEVICE_COLS = (
    "endpoint_id, friendly_name, channel_name, description, manufacturer, channel_arn, "
    "doorbell, full_duplex, owner, motion, detection_classes"
)


def _tokens(row: tuple) -> Tokens:
    return Tokens(
        user_id=row[0],
        access_token=row[1],
        refresh_token=row[2],
        expires_at=row[3],
        region=row[4],
        last_refresh_at=row[5],
        relink_needed=bool(row[6]),
        last_gateway_status=row[7],
        version=row[8],
    )


def _device(row: tuple) -> Device:
    return Device(
        endpoint_id=row[0],
        friendly_name=row[1],
        channel_name=row[2],
        description=row[3],
        manufacturer=row[4],
        channel_arn=row[5],
        doorbell=bool(row[6]),
        full_duplex=bool(row[7]),
        owner=row[8],
        motion=bool(row[9]),
        detection_classes=_classes(row[10]),
    )


def _classes(text: str) -> tuple[str, ...]:
    """Object classes stored as "person,package" (class names have no commas)."""
    return tuple(c for c in text.split(",") if c)


class SqliteStore(Store):
    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) below.
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        """Add the columns an older store lacks (under the write lock: processes may race)."""

        def missing() -> list[tuple[str, str, str]]:
            have: dict[str, set[str]] = {}
            for table, _, _ in MIGRATIONS:
                if table not in have:
                    rows = self._db.execute(f"PRAGMA table_info({table})").fetchall()
                    have[table] = {r[1] for r in rows}
            return [m for m in MIGRATIONS if m[1] not in have[m[0]]]

        if not missing():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for table, _, ddl in missing():
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {ddl}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic write transaction (taken up front so readers never see half of it)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path} is unavailable: {exc}") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._db.execute("ROLLBACK")
                    raise StoreError(f"SQLite commit failed: {exc}") from exc

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite read failed: {exc}") from exc

    # -- tokens ----------------------------------------------------------
    def get_tokens(self, user_id: str) -> Tokens | None:
        rows = self._read(f"SELECT {_TOKEN_COLS} FROM tokens WHERE user_id = ?", (user_id,))
        return _tokens(rows[0]) if rows else None

    def put_tokens(self, tokens: Tokens, *, expected_version: int | None = None) -> Tokens:
        try:
            with self._tx() as db:
                row = db.execute(
                    "SELECT version FROM tokens WHERE user_id = ?", (tokens.user_id,)
                ).fetchone()
                current = row[0] if row else 0
                if expected_version is not None and current != expected_version:
                    raise ConflictError(
                        f"tokens of {tokens.user_id} are at version {current}, "
                        f"not {expected_version}"
                    )
                saved = tokens.with_(version=current + 1)
                db.execute(
                    f"INSERT OR REPLACE INTO tokens ({_TOKEN_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        saved.user_id,
                        saved.access_token,
                        saved.refresh_token,
                        saved.expires_at,
                        saved.region,
                        saved.last_refresh_at,
                        int(saved.relink_needed),
                        saved.last_gateway_status,
                        saved.version,
                    ),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc
        return saved

    def list_tokens(self) -> list[Tokens]:
        return [_tokens(r) for r in self._read(f"SELECT {_TOKEN_COLS} FROM tokens ORDER BY 1")]

    def delete_tokens(self, user_id: str) -> None:
        self._write("DELETE FROM tokens WHERE user_id = ?", (user_id,))

    def _write(self, sql: str, args: tuple) -> None:
        try:
            with self._tx() as db:
                db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    # -- devices ---------------------------------------------------------
    def put_device(self, device: Device) -> None:
        self._write(
            f"INSERT OR REPLACE INTO devices ({_DEVICE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                device.endpoint_id,
                device.friendly_name,
                device.channel_name,
                device.description,
                device.manufacturer,
                device.channel_arn,
                int(device.doorbell),
                int(device.full_duplex),
                device.owner,
                int(device.motion),
                ",".join(device.detection_classes),
            ),
        )

    def get_device(self, endpoint_id: str) -> Device | None:
        rows = self._read(
            f"SELECT {_DEVICE_COLS} FROM devices WHERE endpoint_id = ?", (endpoint_id,)
        )
        return _device(rows[0]) if rows else None

    def list_devices(self) -> list[Device]:
        return [_device(r) for r in self._read(f"SELECT {_DEVICE_COLS} FROM devices ORDER BY 1")]

    def delete_device(self, endpoint_id: str) -> None:
        self._write("DELETE FROM devices WHERE endpoint_id = ?", (endpoint_id,))

    # -- sessions --------------------------------------------------------
    def put_session(self, session: RtcSession) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?)",
                    (session.session_id, session.endpoint_id, session.state, session.updated_at),
                )
                db.execute(
                    "DELETE FROM sessions WHERE updated_at < ?",
                    (time.time() - KEEP_SESSIONS_SECONDS,),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    def get_session(self, session_id: str) -> RtcSession | None:
        rows = self._read(
            "SELECT session_id, endpoint_id, state, updated_at FROM sessions WHERE session_id = ?",
            (session_id,),
        )
        return RtcSession(*rows[0]) if rows else None

    def list_sessions(self, endpoint_id: str, *, since: float = 0.0) -> list[RtcSession]:
        rows = self._read(
            "SELECT session_id, endpoint_id, state, updated_at FROM sessions "
            "WHERE endpoint_id = ? AND updated_at >= ? ORDER BY updated_at, session_id",
            (endpoint_id, since),
        )
        return [RtcSession(*r) for r in rows]

    # -- health ----------------------------------------------------------
    def put_health(self, health: Health) -> None:
        self._write(
            "INSERT OR REPLACE INTO health VALUES (?,?,?)",
            (health.endpoint_id, health.connectivity, health.updated_at),
        )

    def get_health(self, endpoint_id: str) -> Health | None:
        rows = self._read(
            "SELECT endpoint_id, connectivity, updated_at FROM health WHERE endpoint_id = ?",
            (endpoint_id,),
        )
        return Health(*rows[0]) if rows else None

    # -- motion and object detection -------------------------------------
    def put_motion(self, motion: Motion) -> None:
        self._write(
            "INSERT OR REPLACE INTO motion VALUES (?,?,?)",
            (motion.endpoint_id, motion.state, motion.updated_at),
        )

    def get_motion(self, endpoint_id: str) -> Motion | None:
        rows = self._read(
            "SELECT endpoint_id, state, updated_at FROM motion WHERE endpoint_id = ?",
            (endpoint_id,),
        )
        return Motion(*rows[0]) if rows else None

    def put_detection_classes(self, classes: DetectionClasses) -> None:
        self._write(
            "INSERT OR REPLACE INTO detection_classes VALUES (?,?,?,?)",
            (classes.user_id, classes.endpoint_id, ",".join(classes.classes), classes.updated_at),
        )

    def get_detection_classes(self, user_id: str, endpoint_id: str) -> DetectionClasses | None:
        rows = self._read(
            "SELECT user_id, endpoint_id, classes, updated_at FROM detection_classes "
            "WHERE user_id = ? AND endpoint_id = ?",
            (user_id, endpoint_id),
        )
        if not rows:
            return None
        user, endpoint, classes, updated_at = rows[0]
        return DetectionClasses(user, endpoint, _classes(classes), updated_at)

    # -- event records ---------------------------------------------------
    def add_event_record(self, record: EventRecord) -> None:
        try:
            with self._tx() as db:
                cur = db.execute(
                    "INSERT INTO events (at, user_id, endpoint_id, name, status, detail) "
                    "VALUES (?,?,?,?,?,?)",
                    (
                        record.at,
                        record.user_id,
                        record.endpoint_id,
                        record.name,
                        record.status,
                        record.detail,
                    ),
                )
                db.execute("DELETE FROM events WHERE id <= ?", (cur.lastrowid - KEEP_EVENTS,))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    def recent_event_records(self, limit: int = 50) -> list[EventRecord]:
        rows = self._read(
            "SELECT at, user_id, endpoint_id, name, status, detail FROM events "
            "ORDER BY at DESC, id DESC LIMIT ?",
            (max(0, int(limit)),),
        )
        return [EventRecord(*r) for r in rows]

    # -- press claims ----------------------------------------------------
    def claim_press(self, endpoint_id: str, claim_id: str, *, at: float, window: float) -> bool:
        # One statement: insert, or take over a claim that no longer holds; the
        # write lock (BEGIN IMMEDIATE) makes it atomic across processes.
        try:
            with self._tx() as db:
                cur = db.execute(
                    "INSERT INTO press_claims (endpoint_id, claim_id, claimed_at) VALUES (?,?,?) "
                    "ON CONFLICT (endpoint_id) DO UPDATE SET claim_id = excluded.claim_id, "
                    "claimed_at = excluded.claimed_at "
                    "WHERE press_claims.claimed_at <= ? OR press_claims.claimed_at > ?",
                    (endpoint_id, claim_id, at, at - window, at + window),
                )
                return cur.rowcount == 1
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    def release_press(self, endpoint_id: str, claim_id: str) -> bool:
        try:
            with self._tx() as db:
                cur = db.execute(
                    "DELETE FROM press_claims WHERE endpoint_id = ? AND claim_id = ?",
                    (endpoint_id, claim_id),
                )
                return cur.rowcount == 1
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    # -- detection claims --------------------------------------------------
    def claim_detection(
        self, endpoint_id: str, image_net_class: str, *, at: float, cooldown: float
    ) -> bool:
        # Read and write under the write lock (BEGIN IMMEDIATE): atomic across processes.
        try:
            with self._tx() as db:
                row = db.execute(
                    "SELECT last_seen FROM detection_claims "
                    "WHERE endpoint_id = ? AND image_net_class = ?",
                    (endpoint_id, image_net_class),
                ).fetchone()
                last = None if row is None else row[0]
                fresh = cooldown_over(last, at, cooldown)
                if last is None or fresh or at > last:
                    db.execute(
                        "INSERT OR REPLACE INTO detection_claims VALUES (?,?,?)",
                        (endpoint_id, image_net_class, at),
                    )
                return fresh
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
