"""Soak: hundreds of live-view sessions against one camera agent, through the skill and KVS.

The agent runs alone in a child process (``agent_proc.py``) so its memory,
descriptors, threads and asyncio tasks are measured without the viewers'.
Each session is what Alexa does: InitiateSessionWithOffer through the skill
(SendAlexaOfferToMaster on the local cloud), the Echo Show applies the answer
and must decode frames, then SessionDisconnected through the skill.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.cloud.alexa import new_session_id
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig
from tests import directives as D
from tests.reliability.conftest import AgentProcess

SEQUENTIAL = int(os.environ.get("ALEXA_DOORBELL_SOAK_SESSIONS", "300"))
BURSTS = int(os.environ.get("ALEXA_DOORBELL_SOAK_BURSTS", "5"))
BURST_SIZE = 10
WARM_UP = 20
SMALL = [CameraConfig(width=320, height=240, fps=15, audio="tone")]
# asyncio's default executor (to_thread) starts workers lazily up to this bound: a worker
# first needed after warm-up is the pool growing to its size, not a leak.
POOL_MAX = min(32, (os.cpu_count() or 1) + 4)


def _pool(stats: dict[str, Any]) -> int:
    return sum(name.startswith("asyncio_") for name in stats["thread_names"])


async def _session(skill: Any, token: str, frames: int = 2) -> float:
    """One live view; returns seconds from the directive to the first decoded frame."""
    echo = EchoShow(talk=None)
    sid = new_session_id()
    try:
        offer = await echo.create_offer()
        t0 = time.perf_counter()
        reply = await asyncio.to_thread(
            skill.handle, D.initiate_session(token, session_id=sid, offer=offer)
        )
        assert schema_errors(reply) == [], reply
        header, payload = reply["event"]["header"], reply["event"]["payload"]
        assert header["name"] == "AnswerGeneratedForSession", payload
        await echo.accept(payload["answer"]["value"])
        got = await echo.wait_frames(frames, timeout=10)
        assert got >= frames, f"session {sid} decoded {got} frames"
        return time.perf_counter() - t0
    finally:
        await echo.close()
        await asyncio.to_thread(
            skill.handle, D.session_event("SessionDisconnected", token, session_id=sid)
        )


async def _idle(agent: AgentProcess, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = await asyncio.to_thread(agent.stats)
        if stats["viewers"] == 0 or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.1)


async def _settled(agent: AgentProcess, baseline: dict[str, Any]) -> dict[str, Any]:
    """Resource figures once closing sessions have released what they held (bounded wait)."""
    stats = await _idle(agent)
    for _ in range(30):
        if all(stats[k] <= baseline[k] for k in ("fds", "threads", "tasks")):
            break
        await asyncio.sleep(0.2)
        stats = await asyncio.to_thread(agent.stats)
    return stats


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_soak_sequential_and_bursts(make_cloud, record_figures) -> None:  # type: ignore[no-untyped-def]
    handle = make_cloud(cameras=SMALL, skill_deadline=5.0)
    settings = handle.settings
    skill = build_skill(settings)
    who = handle.cloud.lwa.link("amzn1.account.SOAK")
    assert (
        skill.handle(D.accept_grant(who["code"], who["access_token"]))["event"]["header"]["name"]
        == "AcceptGrant.Response"
    )
    token = who["access_token"]
    agent = await asyncio.to_thread(AgentProcess, settings)
    started = time.monotonic()
    first_frame: list[float] = []
    burst_first_frame: list[float] = []
    samples: list[dict[str, Any]] = []
    try:
        # Warm-up, a burst included: pools (threads, encoder buffers) reach their size.
        for _ in range(WARM_UP):
            await _session(skill, token)
        await asyncio.gather(*(_session(skill, token) for _ in range(BURST_SIZE)))
        baseline = await _settled(agent, await asyncio.to_thread(agent.stats))
        samples.append(baseline)
        every = max(1, SEQUENTIAL // max(1, BURSTS))
        for i in range(SEQUENTIAL):
            first_frame.append(await _session(skill, token))
            if (i + 1) % every == 0 and len(samples) <= BURSTS:
                await _idle(agent)
                burst_first_frame += await asyncio.gather(
                    *(_session(skill, token, frames=3) for _ in range(BURST_SIZE))
                )
                samples.append(await _settled(agent, baseline))
        final = await _settled(agent, baseline)
    finally:
        elapsed = time.monotonic() - started
        await asyncio.to_thread(agent.stop)
        skill.store.close()

    growth = {k: final[k] - baseline[k] for k in ("rss_mb", "fds", "threads", "tasks")}
    growth["pool_threads"] = _pool(final) - _pool(baseline)
    growth["threads"] -= growth["pool_threads"]
    sessions = WARM_UP + BURST_SIZE + SEQUENTIAL + BURST_SIZE * (len(samples) - 1)
    record_figures(
        "soak",
        sessions=sessions,
        sequential=SEQUENTIAL,
        bursts=len(samples) - 1,
        burst_size=BURST_SIZE,
        seconds=round(elapsed, 1),
        first_frame_ms_median=round(statistics.median(first_frame) * 1000, 1),
        first_frame_ms_p95=round(sorted(first_frame)[int(len(first_frame) * 0.95)] * 1000, 1),
        burst_first_frame_ms_max=round(max(burst_first_frame, default=0) * 1000, 1),
        rss_mb_baseline=round(baseline["rss_mb"], 1),
        rss_mb_final=round(final["rss_mb"], 1),
        rss_mb_max=round(max(s["rss_mb"] for s in [*samples, final]), 1),
        growth=growth,
        baseline={k: baseline[k] for k in ("fds", "threads", "tasks")},
        agent_counters={k: final[k] for k in ("offers", "answers", "refused", "rejected", "ended")},
    )
    assert final["answers"] == sessions and final["refused"] == 0 and final["rejected"] == 0
    assert final["viewers"] == 0
    assert growth["rss_mb"] <= 20, growth
    assert _pool(final) <= POOL_MAX, final["thread_names"]
    assert growth["fds"] <= 0 and growth["threads"] <= 0 and growth["tasks"] <= 0, (
        growth,
        baseline["thread_names"],
        final["thread_names"],
    )
