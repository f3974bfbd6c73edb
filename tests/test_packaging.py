"""The Lambda zip: small, reproducible, and enough to run the skill with boto3 alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.config import Settings
from alexa_doorbell.packaging import MAX_ZIP_BYTES, PackagingError, build_lambda_zip

# What never belongs on the Lambda path (DESIGN.md: stdlib + boto3/botocore/urllib3).
HEAVY = ("aiortc", "av", "starlette", "uvicorn", "typer", "rich", "pydantic", "jsonschema")


def test_zip_is_small_reproducible_and_lambda_only(tmp_path: Path) -> None:
    first = build_lambda_zip(tmp_path / "a" / "lambda.zip")
    second = build_lambda_zip(tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size <= MAX_ZIP_BYTES
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert names == sorted(names)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all(n.startswith("alexa_doorbell/") and n.endswith(".py") for n in names)
    for needed in (
        "alexa_doorbell/__init__.py",
        "alexa_doorbell/kvs/api.py",
        "alexa_doorbell/kvs/messages.py",
        "alexa_doorbell/store/base.py",
        "alexa_doorbell/store/sqlite.py",
        "alexa_doorbell/store/dynamodb.py",
        "alexa_doorbell/skill/handler.py",
        "alexa_doorbell/notifier/lambda_handler.py",
        "alexa_doorbell/skill/notify.py",  # the deprecated notifier handler path
    ):
        assert needed in names
    tops = {n.split("/")[1] for n in names if n.count("/") > 1}
    assert tops <= {"alexa", "skill", "notifier", "amazon", "kvs", "store", "lambda_config"}
    assert not [n for n in names if "schema.json" in n or "__pycache__" in n]
    # Only the KVS modules the skill uses (signaling/presign are the camera's).
    assert sorted(n for n in names if "/kvs/" in n) == [
        "alexa_doorbell/kvs/__init__.py",
        "alexa_doorbell/kvs/api.py",
        "alexa_doorbell/kvs/client_id.py",
        "alexa_doorbell/kvs/errors.py",
        "alexa_doorbell/kvs/messages.py",
    ]


def test_oversized_package_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "alexa_doorbell"
    (root / "store").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "store" / "base.py").write_text("")
    (root / "skill").mkdir()
    # Incompressible bytes, as a vendored library would be.
    (root / "skill" / "big.py").write_bytes(b"#" + os.urandom(MAX_ZIP_BYTES))
    with pytest.raises(PackagingError, match="budget"):
        build_lambda_zip(tmp_path / "out.zip", root=root)
    assert not (tmp_path / "out.zip").exists()


def _clean_venv(where: Path) -> Path:
    """A venv with boto3 only, as the Lambda runtime has (Python 3.12 when present)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    made = subprocess.run(
        [uv, "venv", "-q", "--python", "3.12", str(where)], env=env, capture_output=True
    )
    if made.returncode != 0:
        subprocess.run(
            [uv, "venv", "-q", "--python", sys.executable, str(where)], env=env, check=True
        )
    python = where / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), "boto3"], env=env, check=True
    )
    return python


def test_discovery_through_lambda_handler_in_a_clean_venv(
    tmp_path: Path, local_cloud: Settings
) -> None:
    code = tmp_path / "task"  # Lambda unpacks the zip into /var/task
    with zipfile.ZipFile(build_lambda_zip(tmp_path / "lambda.zip")) as zf:
        zf.extractall(code)
    python = _clean_venv(tmp_path / "venv")

    link = httpx.post(
        f"{local_cloud.local.url}/_local/lwa/link", json={"user_id": "amzn1.account.PKG"}
    ).json()
    cameras = [
        {
            "endpoint_id": "front-door",
            "friendly_name": "Front Door",
            "channel_name": "front-door",
            "doorbell": True,
            "full_duplex": True,
        }
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_LAMBDA_FUNCTION_NAME": "alexa-doorbell-skill",
        "AWS_ENDPOINT_URL": local_cloud.local.url,
        "AWS_ACCESS_KEY_ID": local_cloud.local.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": local_cloud.local.aws_secret_access_key.get_secret_value(),
        "AWS_DEFAULT_REGION": local_cloud.region,
        "ALEXA_DOORBELL_CLOUD": "local",
        "ALEXA_DOORBELL_LOCAL__HOST": local_cloud.local.host,
        "ALEXA_DOORBELL_LOCAL__PORT": str(local_cloud.local.port),
        "ALEXA_DOORBELL_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "ALEXA_DOORBELL_CAMERAS": json.dumps(cameras),
    }

    def directive(namespace: str, name: str, payload: dict) -> dict:
        header = {"namespace": namespace, "name": name, "payloadVersion": "3"}
        return {
            "directive": {"header": {**header, "messageId": str(uuid.uuid4())}, "payload": payload}
        }

    bearer = {"type": "BearerToken", "token": link["access_token"]}
    directives = [
        # Linking the skill comes first, as in the Alexa app: then discovery.
        directive(
            "Alexa.Authorization",
            "AcceptGrant",
            {
                "grant": {"type": "OAuth2.AuthorizationCode", "code": link["code"]},
                "grantee": bearer,
            },
        ),
        directive("Alexa.Discovery", "Discover", {"scope": bearer}),
    ]
    script = f"""
import json, sys
sys.path.insert(0, {str(code)!r})
from alexa_doorbell.skill.handler import lambda_handler
replies = [lambda_handler(d, None) for d in json.loads(sys.stdin.read())]
from alexa_doorbell.notifier.lambda_handler import lambda_handler as notifier  # the second
from alexa_doorbell.skill.notify import lambda_handler as old_notifier  # deployed stacks' path
status = [notifier({{"action": "status"}}), old_notifier({{"action": "status"}})]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
where = __import__("alexa_doorbell").__file__
print(json.dumps({{"replies": replies, "status": status, "heavy": heavy, "file": where}}))
"""
    # -I: no user site, no PYTHONPATH, no current directory: only the zip and boto3.
    run = subprocess.run(
        [str(python), "-I", "-c", script],
        input=json.dumps(directives),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(code))
    assert out["heavy"] == []
    grant, reply = out["replies"]
    assert grant["event"]["header"]["name"] == "AcceptGrant.Response", grant
    assert schema_errors(grant) == []
    assert reply["event"]["header"]["name"] == "Discover.Response", reply
    assert schema_errors(reply) == []
    endpoints = reply["event"]["payload"]["endpoints"]
    assert [e["endpointId"] for e in endpoints] == ["front-door"]
    interfaces = {c["interface"] for c in endpoints[0]["capabilities"]}
    assert {"Alexa.RTCSessionController", "Alexa.DoorbellEventSource"} <= interfaces
    # The notifier's handler, at its path and at the one earlier stacks were deployed with.
    for status in out["status"]:
        assert status["ok"], status
        assert [u["user_id"] for u in status["users"]] == ["amzn1.account.PKG"]
