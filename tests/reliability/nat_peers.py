"""The two ends of the routed-topology test, each run inside its network namespace by
``nat_topology.py``; one JSON spec as the argument, one JSON line per reply on stdout.

    nat_peers.py camera SPEC   the camera agent (KVS master) behind the home router: prints
                               {"ready": ...} once signaling is up (and TURN credentials
                               are in, with use_turn), then runs until stdin closes; its
                               log goes to stderr
    nat_peers.py echo SPEC     the simulated Echo Show on the media relay's address, with
                               the skill: links a user, then per line read on stdin runs one
                               "show me the front door" (offer through the skill, answer,
                               first frame) and prints its figures and ICE path
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
import urllib.request
import uuid
from typing import Any

from alexa_doorbell.camera import gather
from alexa_doorbell.camera.agent import CameraAgent, store_connectivity
from alexa_doorbell.cloud.admin import admin_headers
from alexa_doorbell.cloud.alexa import SimulatedAlexa, answer_of, reply_name
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig, LocalCloudConfig, Settings
from alexa_doorbell.store import open_store

ENDPOINT = "front-door"


def settings_of(spec: dict[str, Any]) -> Settings:
    return Settings(
        cloud="local",
        data_dir=spec["data_dir"],
        local=LocalCloudConfig(**spec["local"]),
        cameras=[CameraConfig(width=320, height=240, fps=15, audio="tone")],
        **spec.get("settings", {}),
    )


def say(**values: Any) -> None:
    print(json.dumps(values), flush=True)


def lines() -> asyncio.Queue[str | None]:
    """stdin, line by line, as a queue (None at EOF)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, daemon=True).start()
    return queue


async def camera(spec: dict[str, Any]) -> None:
    settings = settings_of(spec)
    store = open_store(settings.store_location)
    agent = CameraAgent(
        settings,
        store=store,
        on_connectivity=store_connectivity(store),
        preset="ultrafast",
        connect_timeout=spec.get("connect_timeout", 20.0),
        disconnect_poll=0.2,
    )
    await agent.start()
    try:
        await agent.wait_ready(20)
        deadline = time.monotonic() + 10  # the skill reads the health the agent reports
        while time.monotonic() < deadline:
            health = await asyncio.to_thread(store.get_health, agent.endpoint_id)
            if health is not None and health.connectivity == "OK":
                break
            await asyncio.sleep(0.05)
        if settings.use_turn:  # credentials fetched ahead of the first offer
            deadline = time.monotonic() + 10
            while not (await agent.ice.plan()).relays and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        plan = await agent.ice.plan()
        say(ready=True, relays=[r.url for r in plan.relays], stun=plan.stun_url)
        queue = lines()
        while await queue.get() is not None:
            pass
    finally:
        await agent.stop()
        store.close()


async def echo(spec: dict[str, Any]) -> None:
    settings = settings_of(spec)
    store = open_store(settings.store_location)
    skill = build_skill(settings, store)
    req = urllib.request.Request(
        f"{settings.local.url}/_local/lwa/link",
        data=json.dumps({"user_id": "amzn1.account.NATTEST"}).encode(),
        headers={"Content-Type": "application/json", **admin_headers()},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        linked = json.load(r)
    alexa = SimulatedAlexa(skill.handle, linked["access_token"])
    granted = await asyncio.to_thread(alexa.accept_grant, linked["code"])
    assert reply_name(granted) == "Alexa.Authorization.AcceptGrant.Response", granted
    say(ready=True)
    queue = lines()
    while (line := await queue.get()) is not None:
        say(**await watch(alexa, json.loads(line)))
    store.close()


async def watch(alexa: SimulatedAlexa, ask: dict[str, Any]) -> dict[str, Any]:
    """One live view: offer through the skill, answer, frames; what it took and its path."""
    session_id = f"amzn1.echo-api.session.{uuid.uuid4()}"
    echo = EchoShow(talk="off")
    out: dict[str, Any] = {"trial": ask.get("trial")}
    try:
        offer = await echo.create_offer()
        t0 = time.perf_counter()
        reply = await asyncio.to_thread(alexa.initiate_session, ENDPOINT, session_id, offer)
        out["answer_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        out["reply"] = reply_name(reply)
        try:
            answer = answer_of(reply)
        except ValueError as exc:
            out["error"] = str(exc)
            return out
        await echo.accept(answer)
        frames = await echo.wait_frames(ask.get("frames", 10), timeout=ask.get("wait", 8.0))
        report = echo.report()
        first = round(report.first_frame_ms, 1) if report.first_frame_ms is not None else None
        out.update(frames=frames, first_frame_ms=first, fps=round(report.fps, 1))
        path = gather.selected_path(echo.pc)
        if path is not None:  # the Echo's view: its own candidate, and the camera's
            out.update(echo_local=path.local, camera_candidate=path.remote)
            out.update(camera_address=path.remote_address)
    finally:
        await asyncio.to_thread(alexa.session_event, "SessionDisconnected", ENDPOINT, session_id)
        await echo.close()
    return out


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for noisy in ("aioice", "aiortc", "botocore", "urllib3", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    role, spec = sys.argv[1], json.loads(sys.argv[2])
    asyncio.run(camera(spec) if role == "camera" else echo(spec))
