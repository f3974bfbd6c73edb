"""What the local cloud refuses to other sites: a wrong ``Host`` anywhere (DNS rebinding),
cross-site calls to ``/_local/...``, and beyond loopback any admin call without the token;
``GET /_local/events`` never hands out a bearer token."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from alexa_doorbell.cloud.admin import ADMIN_TOKEN_ENV, redacted, required_admin_token
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.cloud.tls import client_context
from alexa_doorbell.httpguard import REFUSED_BODY, HostAllowList, same_origin
from alexa_doorbell.web.app import Dashboard
from tests.cloud.test_gateway import doorbell_press, post, skill_token
from tests.cloud.test_lwa import CLIENT, link
from tests.helpers.handshake import upgrade_status
from tests.helpers.kvs_master import channel_arn, presign

EVIL = "evil.example"


# -- Host ------------------------------------------------------------------------------
def test_allow_list_names_ports_and_address_literals() -> None:
    allowed = HostAllowList(["localhost", "127.0.0.1", "::1", "door.lan", "cloud.lan:8750"])
    for ok in (
        "localhost",
        "LOCALHOST:8750",
        "localhost.",
        "[::1]:8760",
        "127.0.0.1:1",
        "door.lan",
        "door.lan:443",
        "cloud.lan:8750",
        "192.168.1.20:8760",
        "[fe80::1]",
    ):
        assert allowed(ok), ok
    for bad in (
        EVIL,
        f"{EVIL}:8750",
        "cloud.lan:8751",
        "localhost.evil.example",
        "door.lan.evil",
        "127.0.0.1.nip.io",
        "",
        None,
    ):
        assert not allowed(bad), bad
    # Equal Origin and Host is what a rebinding page sends: same origin, wrong host.
    assert same_origin({"host": f"{EVIL}:8750", "origin": f"http://{EVIL}:8750"})
    assert not same_origin({"host": "127.0.0.1:8750", "origin": "http://127.0.0.1:8760"})
    assert not same_origin({"host": "127.0.0.1:8750", "origin": "null"})
    assert not same_origin({"host": "127.0.0.1:8750", "sec-fetch-site": "same-site"})  # fmt: skip


def test_a_wrong_host_gets_421_and_nothing_else(cloud: CloudThread) -> None:
    settings = cloud.settings
    url = settings.local.url
    port = settings.local.port
    rebound = {"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"}
    calls = [
        ("GET", "/_local/status", None),
        ("GET", "/_local/events", None),
        ("POST", "/_local/lwa/link", {"user_id": "amzn1.account.EVIL"}),
        ("POST", "/_local/gateway/faults", {"status": 503, "count": 9}),
        ("POST", "/auth/o2/token", {"grant_type": "refresh_token", "refresh_token": "x"}),
        ("POST", "/v3/events", {}),
        ("POST", "/describeSignalingChannel", {"ChannelName": "front-door"}),
    ]
    for method, path, body in calls:
        r = httpx.request(method, url + path, json=body, headers=rebound)
        assert r.status_code == 421, (path, r.status_code, r.text)
        assert r.content == REFUSED_BODY, path
    assert cloud.cloud.gateway.faults.take() is None
    assert cloud.cloud.lwa.user_for_token("x", kinds=("link", "access")) is None
    for host in (f"localhost:{port}", f"[::1]:{port}", f"127.0.0.1:{port}", "127.0.0.1"):
        assert httpx.get(url + "/_local/status", headers={"Host": host}).status_code == 200, host


def test_signaling_websockets_answer_only_allowed_hosts(cloud: CloudThread) -> None:
    """A presigned URL signed for the rebinding name is valid SigV4: only the Host check
    stops it, on the WSS port and the ws:// one."""
    settings = cloud.settings
    arn = channel_arn(settings, "front-door")
    tls = client_context(settings.ca_file)
    for port, ssl in ((settings.local.tls_port, tls), (settings.local.port, None)):
        scheme = "wss" if ssl else "ws"
        for host, want in ((f"localhost:{port}", 101), (f"{EVIL}:{port}", 403)):
            url = presign(settings, arn, "viewer-1", endpoint=f"{scheme}://{host}")
            parts = urlsplit(url)
            target = f"{parts.path or '/'}?{parts.query}"
            got = upgrade_status("127.0.0.1", port, target, host_header=host, ssl=ssl)
            assert got == want, (scheme, host, got)


def test_allowed_hosts_setting_adds_names(make_cloud) -> None:  # type: ignore[no-untyped-def]
    cloud = make_cloud(local={"allowed_hosts": ["cloud.lan"]})
    url = cloud.settings.local.url
    assert httpx.get(url + "/_local/status", headers={"Host": "cloud.lan:1"}).status_code == 200
    assert httpx.get(url + "/_local/status", headers={"Host": "cloud.lan2"}).status_code == 421


# -- cross-site admin calls --------------------------------------------------------------
def test_another_site_cannot_inject_faults_or_revoke_a_user(cloud: CloudThread) -> None:
    """What a hostile page can send without a CORS preflight: a text/plain POST."""
    settings = cloud.settings
    url = settings.local.url
    own = f"http://127.0.0.1:{settings.local.port}"
    who = link(settings, "amzn1.account.VICTIM")
    tries = [
        ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),
        ({"Origin": "http://127.0.0.1:8760", "Content-Type": "application/json"}, 403),  # same-site
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),
        ({"Origin": "null", "Content-Type": "application/json"}, 403),
        ({"Content-Type": "text/plain"}, 415),
        ({"Origin": own, "Content-Type": "text/plain;charset=UTF-8"}, 415),
        ({}, 415),
    ]
    for headers, want in tries:
        for path, body in (
            ("/_local/gateway/faults", b'{"status": 503, "count": 5}'),
            ("/_local/lwa/faults", b'{"status": 503, "count": 5}'),
            ("/_local/lwa/revoke", b'{"user_id": "amzn1.account.VICTIM"}'),
        ):
            r = httpx.post(url + path, content=body, headers=headers)
            assert r.status_code == want, (path, headers, r.status_code)
            assert "error" in r.json()
    assert cloud.cloud.gateway.faults.take() is None
    assert cloud.cloud.lwa.faults.take() is None
    assert cloud.cloud.lwa.user_for_token(who["access_token"], kinds=("link",))
    # DELETE is never a simple request, but is refused from another site all the same.
    r = httpx.delete(url + "/_local/events", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    # This machine's programs (no Origin) and the cloud's own origin still work.
    same = {"Origin": own, "Sec-Fetch-Site": "same-origin"}
    r = httpx.post(url + "/_local/lwa/revoke", json={"user_id": "amzn1.account.X"}, headers=same)
    assert r.status_code == 200, r.text
    assert httpx.get(url + "/_local/status").status_code == 200


def test_events_never_hand_out_bearer_tokens(cloud: CloudThread) -> None:
    settings = cloud.settings
    bearer = skill_token(settings)
    event = doorbell_press(bearer)
    assert post(settings, event, bearer).status_code == 202
    listed = httpx.get(settings.local.url + "/_local/events")
    assert bearer not in listed.text
    scope = listed.json()[0]["event"]["endpoint"]["scope"]
    assert scope == {"type": "BearerToken", "token": redacted(bearer)}
    assert listed.headers["cache-control"] == "no-store"
    # In process (tests, the simulated Alexa) the bodies are whole.
    assert cloud.cloud.gateway.messages()[0] == event


# -- the admin token -----------------------------------------------------------------------
def test_admin_token_beyond_loopback_or_when_configured() -> None:
    assert required_admin_token("127.0.0.1", {}) is None
    assert required_admin_token("localhost", {}) is None
    assert required_admin_token("::1", {}) is None
    first, second = required_admin_token("0.0.0.0", {}), required_admin_token("::", {})
    assert first and second and first != second and len(first) >= 32
    assert required_admin_token("127.0.0.1", {ADMIN_TOKEN_ENV: "chosen"}) == "chosen"


def test_a_configured_token_is_required_and_the_amazon_apis_stay_open(
    make_cloud, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "local-admin-token-for-tests")
    cloud = make_cloud()
    url = cloud.settings.local.url
    assert httpx.get(url + "/_local/status").status_code == 401
    wrong = {"Authorization": "Bearer local-admin-token-for-test"}
    assert httpx.get(url + "/_local/status", headers=wrong).status_code == 401
    good = {"Authorization": "Bearer local-admin-token-for-tests"}
    assert httpx.get(url + "/_local/status", headers=good).status_code == 200
    r = httpx.post(url + "/_local/lwa/link", json={"user_id": "amzn1.account.T"}, headers=good)
    assert r.status_code == 200
    # LWA and KVS keep their own authentication, as Amazon's do.
    reply = httpx.post(
        url + "/auth/o2/token", data={"grant_type": "authorization_code", "code": r.json()["code"],
                                      **CLIENT},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert channel_arn(cloud.settings, "front-door").startswith("arn:aws:kinesisvideo:")
    # Our own callers send the configured token: the dashboard lists browser viewers...
    dash = Dashboard(cloud.settings, press=lambda endpoint_id: None)
    assert asyncio.run(dash._signaling_viewers()) == ({"front-door": []}, None)
    # ...and without it says what to set.
    monkeypatch.delenv(ADMIN_TOKEN_ENV)
    viewers, error = asyncio.run(dash._signaling_viewers())
    assert viewers is None and error is not None and ADMIN_TOKEN_ENV in error


def test_cloud_command_beyond_loopback_warns_and_prints_the_token(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if k != ADMIN_TOKEN_ENV}
    env.update(
        PYTHONUNBUFFERED="1",
        ALEXA_DOORBELL_DATA_DIR=str(tmp_path),
        ALEXA_DOORBELL_LOCAL__PORT="0",
        ALEXA_DOORBELL_LOCAL__TLS_PORT="0",
        ALEXA_DOORBELL_CONFIG=str(tmp_path / "empty.toml"),
        COLUMNS="200",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "alexa_doorbell.cli", "cloud", "--host", "0.0.0.0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        assert "Listening beyond this machine" in text, text
        token = re.search(r"/_local/\.\.\.\): Authorization: Bearer (\S+)", text)
        port = re.search(r"REST \(KVS, LWA, event gateway\): http://0\.0\.0\.0:(\d+)", text)
        assert token and port, text
        status = f"http://127.0.0.1:{port[1]}/_local/status"
        assert httpx.get(status).status_code == 401
        assert httpx.get(status, headers={"Authorization": f"Bearer {token[1]}"}).json()["channels"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
