"""The SQLite store: the shared contract, plus durability across processes and crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from alexa_doorbell.store import open_store
from alexa_doorbell.store.base import Device, StoreError
from alexa_doorbell.store.sqlite import SqliteStore
from tests.store_contract import StoreContract, make_tokens


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        s = SqliteStore(tmp_path / "store.sqlite3")
        yield s
        s.close()

    @pytest.fixture
    def connect(self, store):
        return lambda: SqliteStore(store.path)


def test_open_store_urls(tmp_path):
    path = tmp_path / "sub" / "s.sqlite3"
    s = open_store(f"sqlite:///{path}")
    assert isinstance(s, SqliteStore) and path.exists()
    journal = s._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    s.close()
    mem = open_store("sqlite:///:memory:")
    mem.put_tokens(make_tokens())
    assert mem.get_tokens("amzn1.account.A") is not None
    for bad in ("", "sqlite://", "postgres://x", "/just/a/path"):
        with pytest.raises(StoreError):
            open_store(bad)


def test_a_store_from_before_motion_and_detection_opens_and_keeps_its_rows(tmp_path):
    """A store created before the motion/detection columns: opened, migrated, nothing lost."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE devices (
            endpoint_id TEXT PRIMARY KEY, friendly_name TEXT NOT NULL,
            channel_name TEXT NOT NULL, description TEXT NOT NULL,
            manufacturer TEXT NOT NULL, channel_arn TEXT, doorbell INTEGER NOT NULL,
            full_duplex INTEGER NOT NULL, owner TEXT
        );
        INSERT INTO devices VALUES
            ('front-door', 'Front Door', 'front-door', 'Doorbell', 'acme', NULL, 1, 1, 'u1');
        """
    )
    db.commit()
    db.close()
    # Two processes' worth of connections open the old file at once; both must work.
    first, second = SqliteStore(path), SqliteStore(path)
    old = first.get_device("front-door")
    assert old == Device(
        "front-door", "Front Door", "front-door", "Doorbell", "acme", None, True, True, "u1"
    )
    assert old.motion is False and old.detection_classes == ()
    second.put_device(Device("porch", "Porch", "porch", motion=True, detection_classes=("person",)))
    assert first.get_device("porch").detection_classes == ("person",)
    first.close()
    second.close()
    again = SqliteStore(path)  # already migrated: opens without altering anything
    assert [d.endpoint_id for d in again.list_devices()] == ["front-door", "porch"]
    again.close()


def test_two_processes_see_each_others_writes(tmp_path):
    path = tmp_path / "store.sqlite3"
    mine = SqliteStore(path)
    code = textwrap.dedent(f"""
        from alexa_doorbell.store.sqlite import SqliteStore
        from alexa_doorbell.store.base import Tokens
        s = SqliteStore({str(path)!r})
        s.put_tokens(Tokens("other", "Atza|o", "Atzr|o", 1.0))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert mine.get_tokens("other").refresh_token == "Atzr|o"
    mine.close()


def test_killed_writer_never_loses_a_refresh_token(tmp_path):
    """SIGKILL a process in the middle of a stream of token writes: the row stays whole."""
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path)
    store.put_tokens(make_tokens(n=0))
    code = textwrap.dedent(f"""
        import sys
        from alexa_doorbell.store.sqlite import SqliteStore
        from alexa_doorbell.store.base import Tokens
        s = SqliteStore({str(path)!r})
        n = 0
        print("ready", flush=True)
        while True:
            n += 1
            s.put_tokens(Tokens("amzn1.account.A", f"Atza|access-{{n}}",
                                f"Atzr|refresh-{{n}}", 1.8e9 + n))
    """)
    for delay in (0.05, 0.2):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        got = store.get_tokens("amzn1.account.A")
        n = got.access_token.split("-")[-1]
        assert got.refresh_token == f"Atzr|refresh-{n}"  # a pair from one committed write
        assert got.expires_at == 1.8e9 + int(n)
        assert int(n) > 0
    store.close()
