"""The dashboard's viewer count: sessions that are live, never offers that went nowhere.

End to end: the local cloud, a real camera agent as the KVS MASTER, the skill, real
aiortc Echo Show peers and the dashboard's /api/status over one SQLite store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from alexa_doorbell.camera.agent import CameraAgent, store_connectivity
from alexa_doorbell.cloud.alexa import answer_of
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.store import open_store
from alexa_doorbell.store.base import Health, RtcSession
from alexa_doorbell.web.app import create_app
from alexa_doorbell.web.status import StatusInputs, build_status
from tests import directives as D

SMALL = [CameraConfig(width=320, height=240, fps=15, audio="tone")]


def _error_type(reply: dict[str, Any]) -> str:
    assert reply["event"]["header"]["name"] == "ErrorResponse", reply["event"]["header"]
    return reply["event"]["payload"]["type"]


async def _camera_status(settings: Settings, store: Any) -> dict[str, Any]:
    app = create_app(settings, store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        reply = await http.get("/api/status")
    assert reply.status_code == 200, reply.text
    return reply.json()["cameras"][0]


async def test_refused_failed_and_unconnected_offers_are_no_viewers(make_cloud) -> None:  # type: ignore[no-untyped-def]
    settings = make_cloud(cameras=SMALL, max_viewers=2).settings
    store = open_store(settings.store_location)
    skill = build_skill(settings, store)
    who = httpx.post(f"{settings.local.url}/_local/lwa/link", json={"user_id": "amzn1.account.V"})
    token = who.json()["access_token"]
    accepted = skill.handle(D.accept_grant(who.json()["code"], token))
    assert accepted["event"]["header"]["name"] == "AcceptGrant.Response"

    def offer(session_id: str, sdp: str) -> dict[str, Any]:
        return skill.handle(D.initiate_session(token, session_id=session_id, offer=sdp))

    agent = CameraAgent(
        settings, store=store, on_connectivity=store_connectivity(store), preset="ultrafast"
    )
    await agent.start()
    echoes: list[EchoShow] = []
    try:
        await agent.wait_ready(10)
        # One live session: answered, media flowing, SessionConnected from Alexa.
        live = EchoShow()
        echoes.append(live)
        await live.watch(lambda sdp: asyncio.to_thread(lambda: answer_of(offer("live", sdp))))
        assert await live.wait_frames(5, timeout=10) >= 5
        await asyncio.to_thread(
            skill.handle, D.session_event("SessionConnected", token, "front-door", "live")
        )
        # Answered, but the Echo never connects (it went away before ICE).
        gone = EchoShow()
        echoes.append(gone)
        answer_of(await asyncio.to_thread(offer, "never-connected", await gone.create_offer()))
        # Refused by the camera: at its viewer limit, and an offer it cannot answer.
        busy = EchoShow()
        echoes.append(busy)
        reply = await asyncio.to_thread(offer, "refused-busy", await busy.create_offer())
        assert _error_type(reply) == "ENDPOINT_BUSY"
        reply = await asyncio.to_thread(offer, "refused-garbage", "v=0\r\nnot an offer\r\n")
        assert _error_type(reply) == "INVALID_DIRECTIVE"
        # Failed: no time left to reach the camera.
        skill.deadline, deadline = 0.0, skill.deadline
        reply = await asyncio.to_thread(offer, "failed", live.offer_sdp)
        skill.deadline = deadline
        assert _error_type(reply) == "ENDPOINT_UNREACHABLE"

        states = {s.session_id: s.state for s in store.list_sessions("front-door")}
        assert states == {
            "live": "CONNECTED",
            "never-connected": "OFFERED",
            "refused-busy": "OFFERED",
            "refused-garbage": "OFFERED",
            "failed": "OFFERED",
        }
        cam = await _camera_status(settings, store)
        assert cam["online"] is True
        assert (cam["viewers"], cam["alexa_viewers"], cam["browser_viewers"]) == (1, 1, 0)

        # The live one ends: nobody is watching any more.
        await live.close()
        await asyncio.to_thread(
            skill.handle, D.session_event("SessionDisconnected", token, "front-door", "live")
        )
        cam = await _camera_status(settings, store)
        assert (cam["viewers"], cam["alexa_viewers"]) == (0, 0)
        assert cam["last_session"]["state"] == "DISCONNECTED"
    finally:
        for echo in echoes:
            await echo.close()
        await agent.stop()
        store.close()


def test_only_connected_sessions_within_the_maximum_length_count() -> None:
    now = 10_000.0
    rows = [
        RtcSession("offered", "front-door", "OFFERED", now - 5),  # refused, failed or pending
        RtcSession("ended", "front-door", "DISCONNECTED", now - 4),
        RtcSession("too-old", "front-door", "CONNECTED", now - 601),  # the camera ended it
        RtcSession("live", "front-door", "CONNECTED", now - 30),
    ]
    status = build_status(
        StatusInputs(
            cloud="local",
            region="us-east-1",
            cameras=SMALL,
            health={"front-door": Health("front-door", "OK", now - 1)},
            sessions={"front-door": rows},
            tokens=[],
            events=[],
            signaling_viewers={"front-door": []},
            max_session_seconds=600.0,
            now=now,
        )
    )
    cam = status["cameras"][0]
    assert (cam["viewers"], cam["alexa_viewers"]) == (1, 1)
