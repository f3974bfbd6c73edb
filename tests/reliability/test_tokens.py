"""Tokens survive a process killed at any point of a refresh or an AcceptGrant.

Each trial forks a worker (a real process with its own SQLite connection and
HTTP pool) that refreshes tokens through the notifier, or accepts grants
through the skill, in a loop; the test SIGKILLs it after a random delay and
then checks the store it left behind: SQLite's integrity check passes, the
user's tokens are there, not marked for relinking, and the stored refresh
token is one Login with Amazon still honours (a real refresh with it succeeds).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from alexa_doorbell.amazon.lwa import LwaClient
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.store.sqlite import SqliteStore
from tests import directives as D
from tests.reliability.conftest import settings_spec, spawn_worker

TRIALS = int(os.environ.get("ALEXA_DOORBELL_TOKEN_TRIALS", "200"))
USER = "amzn1.account.TOKENTRIALS"


class Forker:
    def __init__(self, settings, user_id: str) -> None:  # type: ignore[no-untyped-def]
        spec = {"settings": settings_spec(settings), "user_id": user_id}
        self.proc = spawn_worker(
            [sys.executable, str(Path(__file__).with_name("token_worker.py")), json.dumps(spec)]
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            del self.stderr[:-100]

    def start(self, mode: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"go {mode}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("ready "), (line, "".join(self.stderr[-20:]))
        return int(line.split()[1])

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    for _ in range(500):  # reaped by the forker (SIGCHLD ignored)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.002)
    raise AssertionError(f"worker {pid} did not die")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["refresh", "grant"])
def test_kill_during_token_writes(mode: str, cloud, record_figures) -> None:  # type: ignore[no-untyped-def]
    settings = cloud.settings
    lwa_emulator = cloud.cloud.lwa
    skill = build_skill(settings)
    who = lwa_emulator.link(USER)
    assert (
        skill.handle(D.accept_grant(who["code"], who["access_token"]))["event"]["header"]["name"]
        == "AcceptGrant.Response"
    )
    skill.store.close()
    db_path = settings.data_dir / "store.sqlite3"
    client_id, secret = settings.lwa_credentials()
    lwa = LwaClient(settings.lwa_url, client_id, secret)
    rng = random.Random(f"{mode}-{TRIALS}")
    forker = Forker(settings, USER)
    changed = 0
    requests_before = lwa_emulator.token_requests
    try:
        for trial in range(TRIALS):
            before = SqliteStore(db_path)
            previous = before.get_tokens(USER)
            before.close()
            pid = forker.start(mode)
            time.sleep(rng.uniform(0.0, 0.06))
            _kill(pid)

            raw = sqlite3.connect(db_path)
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",), trial
            raw.close()
            store = SqliteStore(db_path)
            tokens = store.get_tokens(USER)
            store.close()
            assert tokens is not None, f"trial {trial}: tokens lost"
            assert not tokens.relink_needed, f"trial {trial}: marked for relinking"
            assert tokens.refresh_token and tokens.access_token
            assert tokens.version >= previous.version
            changed += tokens.version != previous.version
            # The refresh token the store kept is one LWA still honours.
            assert lwa_emulator.user_for_token(tokens.refresh_token, ("refresh",)) == USER
            if trial % 20 == 0:
                lwa.refresh(tokens.refresh_token)
    finally:
        forker.close()
    record_figures(
        f"tokens_kill_{mode}",
        trials=TRIALS,
        trials_with_completed_writes=changed,
        lwa_token_requests=lwa_emulator.token_requests - requests_before,
        corrupt=0,
        lost=0,
    )
    # The kills landed at many different points, not all before or after the work.
    assert 0 < changed < TRIALS
