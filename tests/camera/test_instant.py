"""Instant view on an RTSP camera with a keyframe every 4 s: a viewer joining at any
moment of the GOP sees a picture at once (the bridge), switches to the camera's own
stream at its next IDR, and a doorbell press readies the view before Alexa opens it.

Real processes on loopback: the RTSP test camera, the agent, aiortc viewers decoding
what it sends. The bounds here are generous (a loaded 2-core CI machine); the figures
are bench/instant_bench.py's.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings
from tests.helpers.rtsp_server import Clip, RtspTestServer, encode_clip

pytestmark = pytest.mark.slow

FPS, GOP_SECONDS = 15, 4
# What a join waited before the bridge: the rest of the GOP (median 2 s, up to 4 s).
FIRST_FRAME_BOUND_MS = 1500


@pytest.fixture(scope="module")
def four_second_gop() -> Clip:
    return encode_clip(frames=FPS * GOP_SECONDS * 2, gop=FPS * GOP_SECONDS, fps=FPS)


@pytest.fixture
def camera(four_second_gop: Clip) -> Iterator[RtspTestServer]:
    # Live: a session starts where the camera's stream is now, mid-GOP, as a real one.
    with RtspTestServer(four_second_gop, inband_parameters=False, live=True) as cam:
        yield cam


def _agent(tmp_path: Path, url: str, *, warm: bool, passthrough: str = "auto") -> CameraAgent:
    cam = CameraConfig(
        source=url,
        width=320,
        height=240,
        fps=FPS,
        audio="silence",
        warm=warm,
        doorbell=True,
        passthrough=passthrough,  # type: ignore[arg-type]
    )
    settings = Settings(cloud="local", data_dir=tmp_path, cameras=[cam])
    return CameraAgent(settings, signaling=False, preset="ultrafast")


async def _into_gop(camera: RtspTestServer, at: float) -> None:
    """Until the live camera is ``at`` seconds past an IDR (a stream opened now starts there)."""
    phase = (time.monotonic() - camera.t0) % GOP_SECONDS
    await asyncio.sleep((at - phase) % GOP_SECONDS)


async def _until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_ten_joins_at_random_moments_of_a_4s_gop_see_a_picture_at_once(
    tmp_path: Path, camera: RtspTestServer, four_second_gop: Clip
) -> None:
    agent = _agent(tmp_path, camera.url, warm=True)
    await agent.start()
    echoes: list[EchoShow] = []
    try:
        video = agent.video
        assert video is not None
        # Warm: demuxed while nobody watches, nothing decoded or encoded.
        await _until(lambda: video.gop.usable, 10)
        assert video.source.status.state == "live"
        assert video.bridge is None and video.encoder is None

        rng = random.Random(18)

        async def join(i: int) -> EchoShow:
            await asyncio.sleep(rng.uniform(0, GOP_SECONDS))
            echo = EchoShow(talk=None)
            echoes.append(echo)
            await echo.watch(lambda offer: agent.handle_offer(f"viewer-{i}", offer))
            assert await echo.wait_frames(1, timeout=10) >= 1
            return echo

        joined = await asyncio.gather(*(join(i) for i in range(10)))
        firsts = [e.report().first_frame_ms or 1e9 for e in joined]
        print(
            f"first frame after the answer, 10 joins of a {GOP_SECONDS} s GOP: median "
            f"{statistics.median(firsts):.0f} ms, max {max(firsts):.0f} ms"
        )
        assert max(firsts) < FIRST_FRAME_BOUND_MS, firsts
        assert video.bridge_joins >= 1
        stats = agent.stats()
        assert stats["warm"] is True and stats["bridge_joins"] == video.bridge_joins
        assert stats["source_open_ms"] is not None and stats["source_open_ms"] > 0
        # Past the camera's next IDR every viewer is on its stream again, and what each
        # decoded has no gap: the bridge's pictures, then the camera's, in order.
        sessions = list(agent.sessions.values())
        await _until(lambda: not any(s.video.bridged for s in sessions), GOP_SECONDS + 3)
        await asyncio.sleep(0.5)
        for echo in joined:
            counters = echo.report().counters
            assert len(counters) >= 8
            steps = {(b - a) % len(four_second_gop.units) for a, b in itertools.pairwise(counters)}
            # 0: a later join's IDR repeats the picture just sent (one tick later).
            assert steps <= {0, 1}, counters
        assert video.frames_encoded == 0 and video.encoder is None  # the bridge's, not ours
    finally:
        for echo in echoes:
            await echo.close()
        await agent.stop()


async def test_a_press_readies_a_cold_camera_so_the_view_after_it_starts_at_once(
    tmp_path: Path, camera: RtspTestServer
) -> None:
    from alexa_doorbell.camera.service import CameraService

    agent = _agent(tmp_path, camera.url, warm=False)
    settings = agent.settings
    service = CameraService(settings, agent_options={"signaling": False, "preset": "ultrafast"})
    served = next(iter(service.cameras.values()))
    await service.start()
    echo = EchoShow(talk=None)
    try:
        video = served.agent.video
        assert video is not None
        assert served.agent.source is not None and served.agent.source.current is None  # cold
        await _into_gop(camera, GOP_SECONDS / 2)
        await service.press(served.endpoint_id)  # no notifier: the press still prewarms
        picture = await served.picture(timeout=GOP_SECONDS + 5)  # the press's snapshot
        assert picture is not None and (picture.width, picture.height) == (320, 240)
        await asyncio.sleep(1.0)  # Alexa announces the press, then opens the view
        await echo.watch(lambda offer: served.agent.handle_offer("viewer-1", offer))
        assert await echo.wait_frames(1, timeout=10) >= 1
        first = echo.report().first_frame_ms
        print(f"first frame after a press: {first:.0f} ms after the answer")
        assert first is not None and first < FIRST_FRAME_BOUND_MS
    finally:
        await echo.close()
        await service.stop()


async def test_a_cold_decoded_camera_waits_for_its_first_keyframe_without_a_false_outage(
    tmp_path: Path, camera: RtspTestServer
) -> None:
    """Opened mid-GOP, a decoded camera has no picture until its next keyframe (up to
    4 s here): that is a camera starting, not one that stalled (no slate, no outage)."""
    agent = _agent(tmp_path, camera.url, warm=False, passthrough="never")
    await agent.start()
    echo = EchoShow(talk=None)
    try:
        # 3.5 s to the next IDR; the open reads 1 s of it: 2.5 s with nothing to decode.
        await _into_gop(camera, 0.5)
        await echo.watch(lambda offer: agent.handle_offer("viewer-1", offer))
        assert await echo.wait_frames(3, timeout=GOP_SECONDS + 6) >= 3
        assert agent.source is not None
        assert agent.source.status.outages == 0 and agent.source.slate_frames == 0
        assert echo.report().stamps_read >= 1  # the camera's own picture, first
    finally:
        await echo.close()
        await agent.stop()
