"""The local cloud's own SQLite database: signaling channels and LWA users/tokens.

Separate from the project's store (that one belongs to the skill); it lives in
``settings.cloud_dir`` so a restarted cloud keeps its channels and still knows
every linked user and token.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    name TEXT PRIMARY KEY,
    arn TEXT UNIQUE NOT NULL,
    channel_type TEXT NOT NULL,
    message_ttl INTEGER NOT NULL,
    created_at REAL NOT NULL,
    version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lwa_users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lwa_codes (
    code TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lwa_tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- 'access', 'refresh' or 'link'
    user_id TEXT NOT NULL,
    client_id TEXT,
    expires_at REAL,             -- NULL: until revoked
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS lwa_tokens_user ON lwa_tokens(user_id);
"""


@dataclass(frozen=True)
class ChannelRow:
    name: str
    arn: str
    channel_type: str
    message_ttl: int
    created_at: float
    version: str


@dataclass(frozen=True)
class TokenRow:
    token: str
    kind: str
    user_id: str
    client_id: str | None
    expires_at: float | None
    revoked: bool


class CloudDB:
    """Thread-safe (one lock) access to the cloud database."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _run(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    # -- channels -------------------------------------------------------
    def add_channel(self, row: ChannelRow) -> bool:
        """Insert; False when a channel with that name exists."""
        try:
            self._run(
                "INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?)",
                (
                    row.name,
                    row.arn,
                    row.channel_type,
                    row.message_ttl,
                    row.created_at,
                    row.version,
                ),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def channel_by_name(self, name: str) -> ChannelRow | None:
        rows = self._all("SELECT * FROM channels WHERE name = ?", (name,))
        return ChannelRow(*rows[0]) if rows else None

    def channel_by_arn(self, arn: str) -> ChannelRow | None:
        rows = self._all("SELECT * FROM channels WHERE arn = ?", (arn,))
        return ChannelRow(*rows[0]) if rows else None

    def list_channels(self) -> list[ChannelRow]:
        return [ChannelRow(*r) for r in self._all("SELECT * FROM channels ORDER BY name")]

    def delete_channel(self, arn: str) -> None:
        self._run("DELETE FROM channels WHERE arn = ?", (arn,))

    # -- LWA ------------------------------------------------------------
    def put_user(self, user_id: str, name: str, email: str) -> None:
        self._run(
            "INSERT INTO lwa_users VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET name = excluded.name, email = excluded.email",
            (user_id, name, email),
        )

    def get_user(self, user_id: str) -> tuple[str, str, str] | None:
        rows = self._all("SELECT user_id, name, email FROM lwa_users WHERE user_id = ?", (user_id,))
        return rows[0] if rows else None

    def add_code(self, code: str, user_id: str, expires_at: float) -> None:
        self._run("INSERT INTO lwa_codes VALUES (?, ?, ?, 0)", (code, user_id, expires_at))

    def use_code(self, code: str, now: float) -> str | None:
        """The code's user when it is valid and unused; marks it used (codes are single-use)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT user_id, expires_at, used FROM lwa_codes WHERE code = ?", (code,)
            ).fetchone()
            if row is None or row[2] or row[1] < now:
                return None
            self._conn.execute("UPDATE lwa_codes SET used = 1 WHERE code = ?", (code,))
            return row[0]

    def add_token(self, row: TokenRow) -> None:
        self._run(
            "INSERT INTO lwa_tokens VALUES (?, ?, ?, ?, ?, ?)",
            (row.token, row.kind, row.user_id, row.client_id, row.expires_at, int(row.revoked)),
        )

    def get_token(self, token: str) -> TokenRow | None:
        rows = self._all("SELECT * FROM lwa_tokens WHERE token = ?", (token,))
        if not rows:
            return None
        t = rows[0]
        return TokenRow(t[0], t[1], t[2], t[3], t[4], bool(t[5]))

    def revoke_user(self, user_id: str) -> int:
        return self._run("UPDATE lwa_tokens SET revoked = 1 WHERE user_id = ?", (user_id,))

    def expire_access_tokens(self, now: float, user_id: str | None = None) -> int:
        """Make access tokens expire now (tests use this to see the refresh path)."""
        if user_id is None:
            return self._run(
                "UPDATE lwa_tokens SET expires_at = ? WHERE kind = 'access'", (now - 1,)
            )
        return self._run(
            "UPDATE lwa_tokens SET expires_at = ? WHERE kind = 'access' AND user_id = ?",
            (now - 1, user_id),
        )
