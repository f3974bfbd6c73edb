"""`alexa-doorbell doctor` against the running local cloud: all green, then each fault."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from alexa_doorbell.amazon.lwa import LwaClient
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.doctor import run_doctor
from alexa_doorbell.store import open_store
from alexa_doorbell.store.base import Tokens
from tests.helpers.kvs_master import KvsTestMaster


def doctor(settings: Settings, **kwargs: Any) -> tuple[int, dict[str, tuple[str, str]]]:
    """Run it; return the exit code and {check name: (status, text incl. fix)}."""
    out = io.StringIO()
    rc = run_doctor(settings, out=out, **kwargs)
    checks: dict[str, tuple[str, str]] = {}
    last = None
    for line in out.getvalue().splitlines()[1:-1]:
        if line.startswith("        fix: ") and last:
            status, text = checks[last]
            checks[last] = (status, text + "\n" + line.strip())
        else:
            status, rest = line.split(maxsplit=1)
            name, _, detail = rest.partition("  ")
            last = name.strip()
            checks[last] = (status, detail.strip())
    return rc, checks


def link_user(settings: Settings, user_id: str = "amzn1.account.DOCTOR") -> Tokens:
    """What AcceptGrant does: exchange a fresh code and store the tokens."""
    code = httpx.post(f"{settings.local.url}/_local/lwa/link", json={"user_id": user_id}).json()
    lwa = LwaClient(settings.lwa_url, *settings.lwa_credentials())
    grant = lwa.exchange_code(code["code"])
    store = open_store(settings.store_location)
    try:
        return store.put_tokens(
            Tokens(user_id, grant.access_token, grant.refresh_token, grant.expires_at)
        )
    finally:
        store.close()


def variant(settings: Settings, **changes: Any) -> Settings:
    """The same configuration with a few settings changed (a fresh object: no caches)."""
    data = settings.model_dump()
    local = {**data.pop("local"), **changes.pop("local", {})}
    return Settings(**{**data, **changes, "local": local})


async def run_with_master(cloud: Settings, settings: Settings | None = None, **kwargs: Any):
    """Doctor ``settings`` while a camera (a test master) is connected to ``cloud``."""
    async with KvsTestMaster(cloud):
        return await asyncio.to_thread(doctor, settings or cloud, **kwargs)


async def test_all_green(local_cloud: Settings) -> None:
    link_user(local_cloud)
    rc, checks = await run_with_master(local_cloud)
    assert rc == 0, checks
    assert {name: status for name, (status, _) in checks.items()} == {
        "region": "ok",
        "aws credentials": "ok",
        "clock skew": "ok",
        "channel front-door": "ok",
        "camera front-door": "ok",
        "lwa client": "ok",
        "user amzn1.account.DOCTOR": "ok",
        "skill": "ok",
    }


async def test_doctor_changes_nothing(local_cloud: Settings) -> None:
    saved = link_user(local_cloud)
    await run_with_master(local_cloud)
    store = open_store(local_cloud.store_location)
    try:
        assert store.get_tokens(saved.user_id) == saved  # same tokens, same version
        assert store.recent_event_records() == []
    finally:
        store.close()
    # No event reached Alexa (the gateway), no token was handed out to the store.
    assert httpx.get(f"{local_cloud.local.url}/_local/events").json() == []


@pytest.mark.parametrize(
    ("fault", "check", "fix"),
    [
        ("bad_region", "region", "ALEXA_DOORBELL_REGION"),
        ("bad_aws_secret", "aws credentials", "emulator keys"),
        ("missing_channel", "channel no-such-channel", "restart `alexa-doorbell cloud`"),
        ("no_master", "camera front-door", "alexa-doorbell camera --endpoint-id front-door"),
        ("bad_lwa_secret", "lwa client", "Alexa Skill Messaging"),
        ("revoked_user", "user amzn1.account.DOCTOR", "link again"),
        ("broken_store", "skill", "ALEXA_DOORBELL_STORE_URL"),
        ("clock_skew", "clock skew", "NTP"),
        ("cloud_down", "aws credentials", "alexa-doorbell cloud"),
    ],
)
async def test_each_fault_fails_its_check_with_the_fix(
    local_cloud: Settings, tmp_path: Path, fault: str, check: str, fix: str
) -> None:
    link_user(local_cloud)
    settings, kwargs, master = local_cloud, {}, True
    if fault == "bad_region":
        settings = variant(local_cloud, region="moon-west-1")
    elif fault == "bad_aws_secret":
        settings = variant(local_cloud, local={"aws_secret_access_key": "not-the-key"})
    elif fault == "missing_channel":
        settings = variant(local_cloud, cameras=[CameraConfig(channel_name="no-such-channel")])
        master = False
    elif fault == "no_master":
        master = False
    elif fault == "bad_lwa_secret":
        settings = variant(
            local_cloud,
            lwa_client_id=local_cloud.local.lwa_client_id,
            lwa_client_secret="the-security-profile-secret",
        )
    elif fault == "revoked_user":
        httpx.post(
            f"{local_cloud.local.url}/_local/lwa/revoke", json={"user_id": "amzn1.account.DOCTOR"}
        ).raise_for_status()
    elif fault == "broken_store":
        settings = variant(local_cloud, store_url="nosuchdb://x")
    elif fault == "clock_skew":
        kwargs = {"now": lambda: time.time() + 600}
    elif fault == "cloud_down":
        settings = variant(local_cloud, local={"port": _free_port()})
        master = False
    if master:
        rc, checks = await run_with_master(local_cloud, settings, **kwargs)
    else:
        rc, checks = await asyncio.to_thread(doctor, settings, **kwargs)
    assert rc == 1
    status, text = checks[check]
    assert status == "FAIL", checks
    assert "fix: " in text and fix in text, text
    # Everything the fault does not touch stays green.
    if fault in ("bad_region", "clock_skew", "revoked_user", "no_master"):
        failed = sorted(n for n, (s, _) in checks.items() if s == "FAIL")
        assert failed == [check], checks


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_aws_camera_online_comes_from_the_agent_heartbeat(tmp_path: Path) -> None:
    """AWS cannot say who is connected: the doctor reads the heartbeat, as the skill does."""
    from alexa_doorbell.doctor import FAIL, OK, WARN, Doctor
    from alexa_doorbell.store.base import Health

    settings = Settings(
        cloud="aws", data_dir=tmp_path, store_url=f"sqlite:///{tmp_path / 's.sqlite3'}"
    )
    cam = settings.cameras[0]
    doc = Doctor(settings, now=lambda: 10_000.0)
    doc._channels_ok[cam.endpoint_id] = True  # as if `channel` had passed
    try:
        missing = doc.camera_online(cam)
        assert missing.status == FAIL and "never reported" in missing.detail
        store = doc._store_or_raise()
        store.put_health(Health(cam.endpoint_id, "OK", 10_000.0 - 20))
        fresh = doc.camera_online(cam)
        assert fresh.status == OK and "20 s ago" in fresh.detail
        store.put_health(Health(cam.endpoint_id, "OK", 10_000.0 - settings.health_max_age - 1))
        stale = doc.camera_online(cam)
        assert stale.status == FAIL and "alexa-doorbell camera" in stale.fix
        store.put_health(Health(cam.endpoint_id, "UNREACHABLE", 10_000.0))
        assert doc.camera_online(cam).status == FAIL
        # Without the deployed function's name the skill cannot be probed: say how.
        skill = doc.skill()
        assert skill.status == WARN and "ALEXA_DOORBELL_SKILL_FUNCTION" in skill.fix
    finally:
        doc.close()


async def test_the_command_prints_its_checks_and_nothing_else(local_cloud: Settings) -> None:
    """The skill check's made-up token is refused on purpose: no stray warning after it."""
    import os
    import subprocess
    import sys

    link_user(local_cloud)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEXA_DOORBELL_")}
    env |= {
        "ALEXA_DOORBELL_CONFIG": os.devnull,
        "ALEXA_DOORBELL_DATA_DIR": str(local_cloud.data_dir),
        "ALEXA_DOORBELL_LOCAL__PORT": str(local_cloud.local.port),
        "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(local_cloud.local.tls_port),
    }
    async with KvsTestMaster(local_cloud):
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "alexa_doorbell.cli", "doctor"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.splitlines()[-1] == "all good"
    assert "  ok    skill " in proc.stdout
