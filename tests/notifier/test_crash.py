"""A notifier process killed with SIGKILL in the middle of a token refresh loses nothing.

The notifier Lambda entry point runs in a real subprocess against the local
cloud. Its LWA traffic goes through a relay that lets the refresh request reach
the LWA emulator (a new access token is issued) but holds the reply back; the
test then SIGKILLs the process and inspects the SQLite store it left behind.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request

from alexa_doorbell.notifier.state_report import EventSender
from alexa_doorbell.store.sqlite import SqliteStore
from tests.helpers.http_stub import LoopbackServer, QuietHandler
from tests.notifier.test_state_report import USER, Sent, link, make_notifier

PRESS = (
    "import json, sys\n"
    "from alexa_doorbell.notifier.lambda_handler import lambda_handler\n"
    "print(json.dumps(lambda_handler({'action': 'press', 'endpoint_id': 'front-door'})))\n"
)


class HoldingRelay(LoopbackServer):
    """Forwards POST /auth/o2/token upstream, then keeps the reply until released."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.refreshed = threading.Event()  # LWA answered the refresh
        self.release = threading.Event()
        relay = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                req = urllib.request.Request(
                    relay.upstream + self.path,
                    data=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                    method="POST",
                )
                try:
                    with urllib.request.urlopen(req, timeout=5) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                if b'"refresh_token"' in data and b"refresh_token" in body:
                    relay.refreshed.set()
                    relay.release.wait(30)
                self.reply(status, data)

        super().__init__(Handler)

    def close(self) -> None:
        self.release.set()
        super().close()


def test_refresh_token_survives_sigkill_during_refresh(cloud, tmp_path):
    settings = cloud.settings
    link(cloud)
    store_path = settings.data_dir / "store.sqlite3"
    store = SqliteStore(store_path)
    before = store.get_tokens(USER)
    # Due for a refresh, and no longer accepted by the gateway either.
    store.put_tokens(before.with_(expires_at=before.expires_at - 7200))
    cloud.cloud.lwa.expire_access_tokens(USER)
    before = store.get_tokens(USER)
    store.close()

    relay = HoldingRelay(settings.local.url)
    env = {
        **os.environ,
        "ALEXA_DOORBELL_CLOUD": "local",
        "ALEXA_DOORBELL_DATA_DIR": str(settings.data_dir),
        "ALEXA_DOORBELL_STORE_URL": f"sqlite:///{store_path}",
        "ALEXA_DOORBELL_LOCAL__PORT": str(settings.local.port),
        "ALEXA_DOORBELL_LWA_URL": relay.url,
        "ALEXA_DOORBELL_PRESS_DEBOUNCE": "0",
    }
    calls = cloud.cloud.lwa.token_requests
    proc = subprocess.Popen(
        [sys.executable, "-c", PRESS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert relay.refreshed.wait(30), proc.communicate(timeout=5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        relay.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert cloud.cloud.lwa.token_requests == calls + 1  # LWA did issue a new token

    # The store the dead process left behind: intact, the refresh token still there.
    db = sqlite3.connect(store_path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    store = SqliteStore(store_path)
    after = store.get_tokens(USER)
    assert after.refresh_token == before.refresh_token
    assert after.access_token == before.access_token  # the new one never got stored
    assert not after.relink_needed
    assert after.version == before.version
    store.close()

    # A new process carries on from it: one refresh, and the press is delivered.
    n: EventSender = make_notifier(cloud, Sent())
    [out] = n.press("front-door")
    assert out.ok and out.status == "202", out
    assert cloud.cloud.lwa.token_requests == calls + 2
    assert n.store.get_tokens(USER).refresh_token == before.refresh_token
    n.close()


def test_lambda_entry_point_in_a_subprocess(cloud):
    """The same subprocess, left alone, delivers the press (the Lambda path works)."""
    settings = cloud.settings
    link(cloud)
    env = {
        **os.environ,
        "ALEXA_DOORBELL_CLOUD": "local",
        "ALEXA_DOORBELL_DATA_DIR": str(settings.data_dir),
        "ALEXA_DOORBELL_LOCAL__PORT": str(settings.local.port),
    }
    out = subprocess.run(
        [sys.executable, "-c", PRESS], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["ok"] and reply["results"][0]["status"] == "202", reply
    assert "Atz" not in out.stdout + out.stderr
    assert cloud.cloud.gateway.wait_for("DoorbellPress")
