"""The demo's "person at the door" step: a detection through the camera's webhook.

No broker and no detector needed: the camera agent's webhook takes a detection as a
Node-RED flow or a vendor doorbell would send it (the secret as a Bearer token), the
agent takes the snapshot from the last frame it decoded (the Echo watched a moment
before), puts it in the local cloud's S3 and the notifier sends ObjectDetection with
the presigned URL; the simulated Alexa announces it and fetches the picture.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from alexa_doorbell.cloud.alexa import SimulatedAlexa
from alexa_doorbell.demo.steps import StepFailed, expect

# (step name) -> the simulated Echo watching the camera, and its Alexa session id
OpenView = Callable[[str], Awaitable[tuple[Any, str]]]

WEBHOOK_HOST = "127.0.0.1"


class DemoWebhook:
    """The camera's webhook for the demo: a free loopback port and a fresh secret."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind((WEBHOOK_HOST, 0))
            self.port = s.getsockname()[1]
        self.secret = secrets.token_hex(16)

    def env(self) -> dict[str, str]:
        return {
            "ALEXA_DOORBELL_WEBHOOK__ENABLED": "true",
            "ALEXA_DOORBELL_WEBHOOK__HOST": WEBHOOK_HOST,
            "ALEXA_DOORBELL_WEBHOOK__PORT": str(self.port),
            "ALEXA_DOORBELL_WEBHOOK_SECRET": self.secret,
        }

    @property
    def url(self) -> str:
        return f"http://{WEBHOOK_HOST}:{self.port}"


async def person_at_door(
    cloud: Any,  # the demo's LocalCloud: its gateway and simulated Alexa
    alexa: SimulatedAlexa | None,  # None before the link step: a step out of order
    eid: str,
    open_view: OpenView,
    webhook: DemoWebhook,
    out_dir: Path,
) -> tuple[str, dict[str, Any], Path]:
    """The step's line, its figures and the picture Alexa fetched."""
    assert alexa is not None, "the skill must be linked first"
    announcer = cloud.alexa
    before = len(announcer.announcements)
    # The Echo watches for a moment, so the camera has a current frame to snapshot.
    echo, session_id = await open_view("person_at_door")
    await asyncio.to_thread(alexa.session_event, "SessionDisconnected", eid, session_id)
    await echo.close()
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=webhook.url, timeout=10) as client:
        reply = await client.post(
            f"/hooks/{eid}/detection",
            headers={"Authorization": f"Bearer {webhook.secret}"},
            json={"label": "person", "score": 0.92},
        )
    expect(
        reply.status_code == 202,
        "the webhook to accept the detection (202)",
        f"{reply.status_code} {reply.text[:200]}",
    )
    messages = await asyncio.to_thread(cloud.gateway.wait_for, "ObjectDetection", 1, 15.0)
    gateway_ms = (time.perf_counter() - t0) * 1000
    expect(bool(messages), "an ObjectDetection accepted by the event gateway", "none (camera log)")
    item = messages[-1]["event"]["payload"]["events"][0]
    uri = item.get("frameImageUri") or ""
    expect(uri.startswith("https://"), "a frameImageUri over HTTPS", uri or "none")
    said = await asyncio.to_thread(announcer.wait_for, before + 1, 10.0)
    spoken = [a for a in said[before:] if a.event == "ObjectDetection"]
    if not spoken:
        raise StepFailed("Alexa to announce the person", "no announcement")
    person = spoken[-1]
    expect(
        person.image is not None,
        "the snapshot fetched from frameImageUri",
        person.image_error or "no picture",
    )
    picture = out_dir / "person-at-door.jpg"
    picture.write_bytes(person.image or b"")
    figures = {
        "webhook_to_gateway_ms": round(gateway_ms, 1),
        "announcement": person.text,
        "snapshot": str(picture),
        "snapshot_bytes": person.image_size,
    }
    line = f'"{person.text}" ({gateway_ms:.0f} ms from the webhook), snapshot {picture.name}'
    return line, figures, picture
