"""The demo's doorbell press: rung at the camera agent, as a real doorbell rings it.

The press goes to the camera agent's webhook (the secret as a Bearer token, as a
vendor doorbell or a Node-RED flow sends it), so the agent does what it does for
every press: pre-warms the camera's view, sends DoorbellPress through its notifier
and keeps the camera's picture of the moment in the door timeline. The simulated
Echo Show then opens the live view as a real one does after the announcement, and
its time from the answer to the first decoded frame is the press path's figure.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from alexa_doorbell.cloud.alexa import SimulatedAlexa
from alexa_doorbell.demo.person import DemoWebhook, OpenView
from alexa_doorbell.demo.report import fmt_ms
from alexa_doorbell.demo.steps import expect
from alexa_doorbell.store.timeline import DoorEvent, Timeline

SNAPSHOT_WAIT = 15.0  # seconds: the agent writes the press once its picture is stored


async def doorbell_press(
    cloud: Any,  # the demo's LocalCloud: its gateway
    alexa: SimulatedAlexa | None,  # None before the link step: a step out of order
    eid: str,
    open_view: OpenView,
    webhook: DemoWebhook,
    settings: Any,  # the demo's Settings: the agent's data_dir and the snapshot bucket
    out_dir: Path,
) -> tuple[str, dict[str, Any]]:
    """The step's line and its figures."""
    assert alexa is not None, "the skill must be linked first"
    before = len(cloud.gateway.messages("DoorbellPress"))
    pressed_at = time.time()
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=webhook.url, timeout=10) as client:
        reply = await client.post(
            f"/hooks/{eid}/press", headers={"Authorization": f"Bearer {webhook.secret}"}
        )
    expect(
        reply.status_code == 202,
        "the camera's webhook to accept the press (202)",
        f"{reply.status_code} {reply.text[:200]}",
    )
    presses = await asyncio.to_thread(cloud.gateway.wait_for, "DoorbellPress", before + 1, 15.0)
    press_ms = (time.perf_counter() - t0) * 1000
    expect(
        len(presses) > before,
        "a DoorbellPress accepted by the event gateway",
        "none within 15 s (camera log)",
    )
    event = presses[-1]["event"]
    expect(
        event["endpoint"]["endpointId"] == eid,
        f"the press for {eid}",
        event["endpoint"]["endpointId"],
    )
    # A real Echo announces the press and opens the live view for ~15 s.
    echo, session_id = await open_view("doorbell_press")
    r = echo.report()
    await asyncio.to_thread(alexa.session_event, "SessionDisconnected", eid, session_id)
    await echo.close()
    entry = await _press_entry(settings.data_dir, eid, pressed_at)
    picture = await _save_snapshot(settings, entry, out_dir) if entry else None
    figures: dict[str, Any] = {
        "press_to_202_ms": round(press_ms, 1),
        "gateway_reply": entry.status if entry else "202",  # what the gateway holds is accepted
        "live_view_answer_ms": round(r.answer_ms or 0, 1),
        "live_view_frames": r.frames,
        "first_frame_ms": round(r.first_frame_ms, 1) if r.first_frame_ms is not None else None,
        "snapshot_in_timeline": bool(entry and entry.snapshot_key),
        "snapshot": str(picture) if picture else None,
    }
    shown = "in the timeline" if figures["snapshot_in_timeline"] else "NOT in the timeline"
    line = (
        f"rung at the camera: gateway accepted DoorbellPress in {press_ms:.0f} ms; "
        f"live view first frame {fmt_ms(r.first_frame_ms)} after the answer ({r.frames} "
        f"frames); press snapshot {shown}"
    )
    return line, figures


async def _press_entry(data_dir: Path, eid: str, since: float) -> DoorEvent | None:
    """The press's entry in the door timeline the agent writes, once it has its picture."""
    timeline = Timeline.in_dir(data_dir)
    try:
        deadline = time.monotonic() + SNAPSHOT_WAIT
        while True:
            found = [
                e
                for e in await asyncio.to_thread(timeline.recent, 20, eid)
                if e.kind == "press" and e.at >= since - 1
            ]
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            await asyncio.sleep(0.1)
    finally:
        timeline.close()


async def _save_snapshot(settings: Any, entry: DoorEvent, out_dir: Path) -> Path | None:
    """The press's picture, read back from the snapshot bucket as the dashboard does."""
    if not entry.snapshot_key:
        return None
    from alexa_doorbell.amazon.snapshots import SnapshotStore

    def fetch() -> bytes:
        with SnapshotStore.from_settings(settings) as store:
            return store.get(entry.snapshot_key)  # type: ignore[arg-type]

    picture = out_dir / "press-snapshot.jpg"
    picture.write_bytes(await asyncio.to_thread(fetch))
    return picture
