"""Where the S3 emulator keeps buckets and objects: SQLite, one file, one lock."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    etag TEXT NOT NULL,
    last_modified REAL NOT NULL,
    checksum_algorithm TEXT,     -- 'crc32', 'sha1', 'sha256' or NULL
    checksum TEXT,               -- base64, as in x-amz-checksum-*
    metadata TEXT NOT NULL,      -- JSON of the x-amz-meta-* headers
    PRIMARY KEY (bucket, key)
);
"""


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    body: bytes
    content_type: str
    etag: str
    last_modified: float
    checksum_algorithm: str | None
    checksum: str | None
    metadata: dict[str, str]


class ObjectStore:
    """Buckets and objects in SQLite (thread-safe, one lock)."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # No fsync per object (a put runs on the cloud's event loop); WAL still keeps the
        # file whole if the process dies, and a snapshot lost to a power cut is no loss.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add_bucket(self, name: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO buckets (name, created_at) VALUES (?, ?)",
                (name, time.time()),
            )
        return cur.rowcount == 1

    def has_bucket(self, name: str) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone()
        return row is not None

    def put(self, obj: StoredObject) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    obj.bucket,
                    obj.key,
                    obj.body,
                    obj.content_type,
                    obj.etag,
                    obj.last_modified,
                    obj.checksum_algorithm,
                    obj.checksum,
                    json.dumps(obj.metadata),
                ),
            )

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
        if row is None:
            return None
        return StoredObject(*row[:8], metadata=json.loads(row[8]))

    def expire(self, older_than: float) -> int:
        """Delete objects last written before ``older_than`` (the lifecycle rule)."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM objects WHERE last_modified < ?", (older_than,))
        return cur.rowcount
