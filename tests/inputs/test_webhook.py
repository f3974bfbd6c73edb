"""The webhook on a real uvicorn server on a loopback port, called with httpx: the secret
(Bearer or signature), unknown cameras, bad bodies, other sites' Host names."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alexa_doorbell.config import CameraConfig, Settings, WebhookConfig
from alexa_doorbell.inputs.runner import Inputs
from alexa_doorbell.inputs.webhook import MIN_SECRET, read_secret, signature
from alexa_doorbell.lambda_config import ConfigError
from tests.helpers.inputs import RecordingSink, tiny_jpeg

SECRET = "b1f4c9e27a3d8e6f0c5a9b2d7e4f1a8c"
AUTH = {"Authorization": f"Bearer {SECRET}"}


def settings(tmp_path: Path, **webhook: object) -> Settings:
    return Settings(
        data_dir=tmp_path,
        cameras=[
            CameraConfig(endpoint_id="front-door"),
            CameraConfig(endpoint_id="garage", channel_name="garage", doorbell=False),
        ],
        webhook=WebhookConfig(**{"enabled": True, "port": 0, **webhook}),  # type: ignore[arg-type]
    )


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def hook(tmp_path: Path, sink: RecordingSink) -> AsyncIterator[httpx.AsyncClient]:
    env = {"ALEXA_DOORBELL_WEBHOOK_SECRET": SECRET}
    async with Inputs(settings(tmp_path), sink, environ=env, webhook_fail_delay=0) as inputs:
        assert inputs.webhook is not None
        async with httpx.AsyncClient(base_url=inputs.webhook.url, timeout=5) as client:
            client.inputs = inputs  # type: ignore[attr-defined]
            yield client


async def delivered(client: httpx.AsyncClient) -> None:
    await client.inputs.dispatcher.drain()  # type: ignore[attr-defined]


WRONG = [
    {},
    {"Authorization": "Bearer wrong-secret-but-long-enough"},
    {"Authorization": f"Basic {SECRET}"},
    {"Authorization": f"Bearer {SECRET[:-1]}"},
    {"X-Doorbell-Timestamp": "1", "X-Doorbell-Signature": "sha256=00"},
]


async def test_without_the_secret_nothing_happens(
    hook: httpx.AsyncClient, sink: RecordingSink
) -> None:
    for headers in WRONG:
        for what in ("press", "motion", "detection"):
            for camera in ("front-door", "nobody"):  # an unknown camera is not revealed
                reply = await hook.post(f"/hooks/{camera}/{what}", headers=headers, json={})
                assert reply.status_code == 401, (headers, reply.text)
                assert "secret is missing or wrong" in reply.json()["error"]
                assert reply.headers["www-authenticate"].startswith("Bearer")
    await delivered(hook)
    assert sink.calls == []


async def test_a_press_a_motion_and_a_detection(
    hook: httpx.AsyncClient, sink: RecordingSink
) -> None:
    jpeg = tiny_jpeg()
    r = await hook.post("/hooks/front-door/press", headers=AUTH)
    assert (r.status_code, r.json()) == (202, {"accepted": "press", "endpoint_id": "front-door"})
    r = await hook.post("/hooks/front-door/press", headers=AUTH, json={"cause": "RULE_TRIGGER"})
    assert r.status_code == 202
    r = await hook.post("/hooks/garage/motion", headers=AUTH, json={"detected": True})
    assert r.status_code == 202
    r = await hook.post("/hooks/garage/motion", headers=AUTH)  # "motion now"
    assert r.status_code == 202
    body = {"label": "Person", "score": 0.93, "snapshot": base64.b64encode(jpeg).decode()}
    r = await hook.post("/hooks/front-door/detection", headers=AUTH, json=body)
    assert r.status_code == 202
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    r = await hook.post(
        "/hooks/garage/detection", headers=AUTH, json={"label": "package", "snapshot": data_url}
    )
    assert r.status_code == 202
    await delivered(hook)
    assert [(c.kind, c.endpoint_id) for c in sink.calls] == [
        ("press", "front-door"),
        ("press", "front-door"),
        ("motion", "garage"),
        ("motion", "garage"),
        ("motion", "garage"),
        ("detection", "front-door"),
        ("detection", "garage"),
    ]
    assert [c.args[0] for c in sink.of("press")] == ["PHYSICAL_INTERACTION", "RULE_TRIGGER"]
    assert [c.args[0] for c in sink.of("motion")] == [True, True, False]
    person, package = sink.of("detection")
    assert person.args[:2] == ("person", 0.93) and person.args[3] == jpeg
    assert package.args[:2] == ("package", None) and package.args[3] == jpeg
    assert abs(person.args[2] - time.time()) < 5


async def test_a_signed_request_instead_of_the_bearer(
    hook: httpx.AsyncClient, sink: RecordingSink
) -> None:
    body = json.dumps({"detected": False}).encode()
    now = str(int(time.time()))
    good = {"X-Doorbell-Timestamp": now, "X-Doorbell-Signature": signature(SECRET, now, body)}
    r = await hook.post("/hooks/garage/motion", headers=good, content=body)
    assert r.status_code == 202, r.text
    old = str(int(time.time()) - 600)  # a recorded request played again later
    stale = {"X-Doorbell-Timestamp": old, "X-Doorbell-Signature": signature(SECRET, old, body)}
    assert (await hook.post("/hooks/garage/motion", headers=stale, content=body)).status_code == 401
    other = json.dumps({"detected": True}).encode()  # the signature of another body
    assert (await hook.post("/hooks/garage/motion", headers=good, content=other)).status_code == 401
    await delivered(hook)
    assert [c.args[0] for c in sink.of("motion")] == [False]


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/hooks/porch/press", b"", 404, "no camera 'porch' (configured: front-door, garage)"),
        ("/hooks/front-door/ring", b"", 404, "use press, motion or detection"),
        ("/hooks/garage/press", b"", 409, "garage is no doorbell"),
        ("/hooks/front-door/press", b"{nope", 400, "not JSON"),
        ("/hooks/front-door/press", b"[1]", 400, "a JSON list, not an object"),
        ("/hooks/front-door/press", b'{"cause": "KNOCK"}', 400, "cause must be one of"),
        ("/hooks/front-door/press", b'{"caus": "RULE_TRIGGER"}', 400, "unknown field 'caus'"),
        ("/hooks/front-door/motion", b'{"detected": "yes"}', 400, "detected must be true or"),
        ("/hooks/front-door/detection", b"{}", 400, "label must be one of person, package"),
        ("/hooks/front-door/detection", b'{"label": "cat"}', 400, "label must be one of"),
        ("/hooks/front-door/detection", b'{"label": "person", "score": 7}', 400, "from 0 to 1"),
        (
            "/hooks/front-door/detection",
            b'{"label": "person", "snapshot": "***"}',
            400,
            "not valid base64",
        ),
        (
            "/hooks/front-door/detection",
            json.dumps({"label": "person", "snapshot": base64.b64encode(b"GIF89a").decode()}),
            400,
            "not a JPEG",
        ),
        ("/hooks/front-door/detection", b'{"label": "person", "snapshot": 5}', 400, "base64"),
    ],
)
async def test_a_bad_request_says_what_is_wrong(
    hook: httpx.AsyncClient,
    sink: RecordingSink,
    path: str,
    body: bytes | str,
    status: int,
    says: str,
) -> None:
    r = await hook.post(path, headers=AUTH, content=body)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]
    await delivered(hook)
    assert sink.calls == []


async def test_a_body_too_large_and_another_sites_host(
    hook: httpx.AsyncClient, sink: RecordingSink
) -> None:
    r = await hook.post("/hooks/front-door/press", headers=AUTH, content=b" " * (9 * 1024 * 1024))
    assert r.status_code == 413
    r = await hook.post("/hooks/front-door/press", headers={**AUTH, "Host": "rebind.example:8770"})
    assert r.status_code == 421  # a DNS-rebinding page reaches nothing
    assert (await hook.get("/hooks/front-door/press", headers=AUTH)).status_code == 405
    await delivered(hook)
    assert sink.calls == []


async def test_the_secret_comes_from_the_environment_or_a_file(
    tmp_path: Path, sink: RecordingSink
) -> None:
    with pytest.raises(ConfigError, match="has no secret: set ALEXA_DOORBELL_WEBHOOK_SECRET"):
        async with Inputs(settings(tmp_path), sink, environ={}):
            pass
    with pytest.raises(ConfigError, match=f"use at least {MIN_SECRET}"):
        read_secret({"ALEXA_DOORBELL_WEBHOOK_SECRET": "hunter2"})
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    env = {"ALEXA_DOORBELL_WEBHOOK_SECRET_FILE": str(secret_file)}
    assert read_secret(env) == SECRET
    allowed = settings(tmp_path, allowed_hosts=["door.lan"])
    async with Inputs(allowed, sink, environ=env) as inputs:
        assert inputs.webhook is not None
        async with httpx.AsyncClient(base_url=inputs.webhook.url) as client:
            r = await client.post(
                "/hooks/front-door/press", headers={**AUTH, "Host": "door.lan:8770"}
            )
            assert r.status_code == 202
        await inputs.dispatcher.drain()
    assert len(sink.of("press")) == 1


async def test_a_port_in_use_is_a_clear_error(tmp_path: Path, sink: RecordingSink) -> None:
    env = {"ALEXA_DOORBELL_WEBHOOK_SECRET": SECRET}
    async with Inputs(settings(tmp_path), sink, environ=env) as first:
        assert first.webhook is not None
        taken = settings(tmp_path, port=first.webhook.port)
        with pytest.raises(
            ConfigError, match=r"webhook cannot listen on 127.0.0.1:\d+: .*Set \[webhook\] port"
        ):
            async with Inputs(taken, sink, environ=env):
                pass
