"""The demo's talk-modes step: both utterances on a full, a half and a no-talk camera.

Three more cameras run in the demo's process as KVS masters of their own
channels, each with a visitor humming at the door (a 440 Hz tone) and, for
full and half duplex, a recorder as its speaker. For each camera the
simulated Echo Show reads the camera's Discovery, says "Alexa, show me ..."
and then "Alexa, talk to ..." through the skill (InitiateSessionWithOffer,
KVS, the camera's answer), and reports what it shows and what each side
heard, next to the reference table (docs/camera.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alexa_doorbell.config import CameraConfig, Settings

# The reference table: what an Echo Show shows, per camera and utterance.
REFERENCE: dict[tuple[str, str], str] = {
    ("full", "show"): "feed, talk icon disabled, tap to talk",
    ("full", "talk"): "feed, microphone on, tap to stop",
    ("half", "show"): "feed, talk icon disabled, push to talk, release to stop",
    ("half", "talk"): "feed, push to talk, release to stop",
    ("none", "show"): "feed, no talk button",
    ("none", "talk"): "feed, no talk button",
}
SILENT = 0.003  # RMS (of full scale) below which a side heard nothing
TALK_SECONDS = 1.2  # how long the user talks (holds the button) per session


@dataclass
class ModeCamera:
    mode: str
    endpoint_id: str
    friendly_name: str


MODE_CAMERAS = [
    ModeCamera("full", "intercom-full", "Gate Intercom"),
    ModeCamera("half", "intercom-half", "Back Door"),
    ModeCamera("none", "camera-no-talk", "Garage"),
]


def mode_camera_configs(data_dir: Path) -> list[CameraConfig]:
    """The three cameras: a recorder as the speaker of full and half, nothing for none."""
    out = []
    for c in MODE_CAMERAS:
        sink = str(data_dir / f"{c.endpoint_id}-{{session}}.wav") if c.mode != "none" else "discard"
        out.append(
            CameraConfig(
                endpoint_id=c.endpoint_id,
                friendly_name=c.friendly_name,
                description=f"Camera, talk {c.mode}",
                channel_name=c.endpoint_id,
                doorbell=False,
                talk=c.mode,  # type: ignore[arg-type]
                audio="tone:440",
                sink=sink,
                width=320,
                height=240,
                fps=15,
            )
        )
    return out


async def run_talk_modes(
    settings: Settings, store: Any, alexa: Any, discovery: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per camera and utterance (see :data:`REFERENCE`)."""
    from alexa_doorbell.camera.agent import CameraAgent, store_connectivity

    agents = [
        CameraAgent(
            settings,
            c.endpoint_id,
            store=store,
            on_connectivity=store_connectivity(store),
            preset="ultrafast",
        )
        for c in MODE_CAMERAS
    ]
    rows: list[dict[str, Any]] = []
    try:
        await asyncio.gather(*(a.start() for a in agents))
        await asyncio.gather(*(a.wait_ready(15) for a in agents))
        for cam, agent in zip(MODE_CAMERAS, agents, strict=True):
            for utterance in ("show", "talk"):
                rows.append(
                    await _session(alexa, agent, cam, utterance, discovery[cam.endpoint_id])
                )
    finally:
        await asyncio.gather(*(a.stop() for a in agents), return_exceptions=True)
    return rows


async def _session(
    alexa: Any, agent: Any, cam: ModeCamera, utterance: str, endpoint: dict[str, Any]
) -> dict[str, Any]:
    from alexa_doorbell.cloud.alexa import answer_of, new_session_id
    from alexa_doorbell.cloud.echo import EchoShow, answer_audio_direction, full_duplex_of

    echo = EchoShow(discovery=endpoint, utterance=utterance)  # type: ignore[arg-type]
    session_id = new_session_id()

    async def send_offer(offer: str) -> str:
        reply = await asyncio.to_thread(alexa.initiate_session, cam.endpoint_id, session_id, offer)
        return answer_of(reply)

    row: dict[str, Any] = {
        "camera": cam.mode,
        "endpoint_id": cam.endpoint_id,
        "utterance": utterance,
        "is_full_duplex_audio_supported": full_duplex_of(endpoint),
        "reference": REFERENCE[(cam.mode, utterance)],
    }
    try:
        answer = await echo.watch(send_offer)
        row["answer_audio"] = answer_audio_direction(answer)
        await echo.wait_frames(5, timeout=10)
        row["echo_mode"] = echo.mode
        row["echo_shows"] = echo.screen
        t0 = time.monotonic()
        if utterance == "talk" and echo.mode == "push-to-talk":
            await asyncio.sleep(0.6)
            pressed, released = await echo.push_to_talk(TALK_SECONDS)
            await asyncio.sleep(0.6)
            muted, _ = echo.heard.rms(pressed + 0.3, released)
            back = echo.heard.first_above(released, SILENT * 10)
            row["door_muted_while_pressed_rms"] = round(muted, 4)
            row["door_back_after_release_ms"] = None if back is None else round(back * 1000)
        else:
            await asyncio.sleep(TALK_SECONDS + 0.6)
        heard_rms, heard_s = echo.heard.rms(t0, time.monotonic())
        report = echo.report()
        session = next(iter(agent.sessions.values()), None)
        sink = session.sink if session is not None else None
        row.update(
            {
                "echo_sent_voice_s": round(report.talk_seconds, 2),
                "echo_heard_s": round(heard_s, 2),
                "echo_heard_rms": round(heard_rms, 4),
                "door_heard_s": round(sink.seconds, 2) if sink else 0.0,
                "door_heard_rms": round(sink.rms, 4) if sink else 0.0,
            }
        )
        row["ok"] = _check(row)
    finally:
        await asyncio.to_thread(
            alexa.session_event, "SessionDisconnected", cam.endpoint_id, session_id
        )
        await echo.close()
        for peer in list(agent.sessions):
            await agent.close_session(peer, "demo: next utterance")
    return row


def _check(row: dict[str, Any]) -> bool:
    """The row matches the reference table and each side heard what it should."""
    mode, utterance = row["camera"], row["utterance"]
    shows_ok = row["echo_shows"] == row["reference"]
    echo_heard = row["echo_heard_rms"] > SILENT  # the visitor, always
    user_talked = (mode == "full" and utterance == "talk") or (
        mode == "half" and utterance == "talk"
    )
    door_heard = row["door_heard_rms"] > SILENT
    ok = shows_ok and echo_heard and door_heard == user_talked
    if mode == "none":
        ok = ok and row["answer_audio"] == "sendonly" and row["echo_sent_voice_s"] == 0
    if mode == "half" and utterance == "talk":
        back = row.get("door_back_after_release_ms")
        ok = ok and row["door_muted_while_pressed_rms"] < SILENT and back is not None
    return ok
