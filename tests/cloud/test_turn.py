"""The local cloud's STUN/TURN server: GetIceServerConfig hands out Debian's coturn with
REST-API credentials (``<expiry>:<name>``, an HMAC password) in KVS's shape; they open real
allocations over UDP and TLS, expire as KVS's do, and without coturn the list is empty.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from typing import Any

import pytest

from alexa_doorbell.camera import ice
from alexa_doorbell.cloud.turn import rest_credentials
from alexa_doorbell.config import CameraConfig
from tests.helpers.ice import BlackHole, ice_config, needs_coturn

SMALL = [CameraConfig(width=320, height=240, fps=15, audio="tone")]


def test_rest_credentials_are_coturns() -> None:
    user, password = rest_credentials("s3cret", "viewer-1", 300, now=1_700_000_000.5)
    assert user == "1700000300:viewer-1"
    assert (
        password
        == base64.b64encode(hmac.new(b"s3cret", user.encode(), hashlib.sha1).digest()).decode()
    )


@needs_coturn
async def test_local_get_ice_server_config_hands_out_coturn(make_cloud: Any) -> None:
    handle = make_cloud(cameras=SMALL)
    settings = handle.settings
    reply = await asyncio.to_thread(ice_config, settings, "viewer-7")
    [entry] = reply["IceServerList"]  # parsed by botocore's model: the KVS shape
    turn = handle.cloud.turn
    host = settings.local.host
    assert entry["Uris"] == [
        f"turn:{host}:{turn.port}?transport=udp",
        f"turns:{host}:{turn.tls_port}?transport=udp",
        f"turns:{host}:{turn.tls_port}?transport=tcp",
    ]
    expiry, _, name = entry["Username"].partition(":")
    assert name == "viewer-7" and abs(int(expiry) - (time.time() + 300)) < 5
    assert entry["Ttl"] == 300
    expected = base64.b64encode(
        hmac.new(turn._secret.encode(), entry["Username"].encode(), hashlib.sha1).digest()
    ).decode()
    assert entry["Password"] == expected
    conf = turn.dir / "turnserver.conf"
    assert conf.stat().st_mode & 0o777 == 0o600  # the secret is in no command line
    assert turn._secret not in " ".join(turn.proc.args)  # type: ignore[union-attr]

    # The credentials open a real allocation over UDP and over TLS (the cloud's certificate).
    servers = ice.turn_servers(reply["IceServerList"], time.time())
    tls = ice.IceServers(settings).tls_context
    for server in servers:
        relayed, _ = await ice.turn_probe(server, tls, timeout=5)
        assert relayed[0] == host, server
    # Expired credentials are refused, as KVS's are after their Ttl.
    user, password = rest_credentials(turn._secret, "late", -60, time.time())
    stale = servers[0].__class__(**{**servers[0].__dict__, "username": user, "password": password})
    with pytest.raises(Exception, match="401"):
        await ice.turn_probe(stale, tls, timeout=5)


async def test_without_coturn_the_list_is_empty_and_said_once(
    make_cloud: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handle = make_cloud(cameras=SMALL, local={"turn": False})
    for _ in range(2):
        reply = await asyncio.to_thread(ice_config, handle.settings)
        assert reply["IceServerList"] == []
    said = [r for r in caplog.records if "no TURN server" in r.getMessage()]
    assert len(said) == 1 and "local.turn = false" in said[0].getMessage()


@needs_coturn
async def test_stun_probe_sees_the_address(make_cloud: Any) -> None:
    handle = make_cloud(cameras=SMALL)
    turn = handle.cloud.turn
    assert handle.call(turn.ensure_started())
    (ip, port), took = await ice.stun_probe(turn.stun_url, timeout=2)
    assert ip == "127.0.0.1" and port > 0 and took < 1.0
    hole = BlackHole()
    try:
        with pytest.raises(TimeoutError):
            await ice.stun_probe(f"stun:127.0.0.1:{hole.port}", timeout=0.6)
    finally:
        hole.close()


@needs_coturn
async def test_doctor_sees_the_public_address_and_the_relays(
    make_cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """doctor on a camera machine: STUN answers with this machine's address, TURN allocates
    over UDP and TLS; a STUN server that never answers fails with the TURN fix."""
    from tests.doctor.test_run import doctor, run_with_master, variant

    handle = make_cloud(cameras=SMALL)
    turn = handle.cloud.turn
    assert handle.call(turn.ensure_started())
    settings = variant(handle.settings, stun_urls=[turn.stun_url], use_turn=True)
    rc, checks = await run_with_master(handle.settings, settings)
    status, text = checks["stun 127.0.0.1"]
    assert status == "ok" and "public address 127.0.0.1:" in text, checks
    status, text = checks["turn"]
    assert status == "ok", checks
    assert re.search(r"UDP relay 127\.0\.0\.1:\d+ in \d+ ms; TLS relay 127\.0\.0\.1:\d+", text)
    monkeypatch.setattr("alexa_doorbell.doctor.media.STUN_TIMEOUT", 1.0)
    hole = BlackHole()
    try:
        silent = variant(handle.settings, stun_urls=[f"stun:127.0.0.1:{hole.port}"])
        rc, checks = await asyncio.to_thread(doctor, silent)
    finally:
        hole.close()
    status, text = checks["stun 127.0.0.1"]
    assert rc == 1 and status == "FAIL" and "no answer" in text
    assert "use_turn = true" in text and 'turn_transport = "auto"' in text


async def test_without_turnserver_installed_the_cloud_says_what_to_install(
    make_cloud: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("alexa_doorbell.cloud.turn.coturn_binary", lambda: None)
    handle = make_cloud(cameras=SMALL)
    reply = await asyncio.to_thread(ice_config, handle.settings)
    assert reply["IceServerList"] == []
    [said] = [r.getMessage() for r in caplog.records if "no TURN server" in r.getMessage()]
    assert "apt-get install coturn" in said
