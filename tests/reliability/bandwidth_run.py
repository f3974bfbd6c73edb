"""One live view through a capped uplink: the camera agent and the simulated Echo Show.

    figures = await view_through_cap(adapt=True, seconds=20, bandwidth=1_000_000)

The camera sends the test pattern at 1280x720, 30 fps with a camera sensor's noise
(:class:`NoisyPattern`; the clean pattern compresses to about 620 kbit/s, which fits
1 Mbit/s unadapted and would prove nothing) at the encoder's 1.9 Mbit/s to an Echo
Show whose ICE sockets receive through a bottleneck of ``bandwidth`` bit/s with a
100 ms drop-tail queue (:class:`~tests.reliability.impairment.ImpairedLink`), 20 ms
each way. Returns when each frame was decoded, the freezes (gaps between decoded
frames), the bitrate on the wire each second and the encoder's target over time.
Shared by tests/reliability/test_bandwidth.py and bench/bandwidth_bench.py.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import av
import numpy as np

from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.camera.sources.base import VIDEO_CLOCK, VIDEO_TIME_BASE
from alexa_doorbell.camera.sources.testsrc import TestPatternSource
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings
from tests.reliability.impairment import ImpairedLink

NOISE = 6  # luma steps of noise, plus or minus: a camera's picture indoors
NOISE_FRAMES = 16  # noise fields drawn once, cycled (drawing one a frame costs a core)


class NoisyPattern(TestPatternSource):
    """The test pattern as a camera sees it: with sensor noise, so it needs its bitrate."""

    def __init__(self, width: int, height: int, fps: float, seed: int = 15) -> None:
        super().__init__(width, height, fps)
        rng = np.random.default_rng(seed)
        size = width * height * 3 // 2
        self._noise = rng.integers(-NOISE, NOISE + 1, (NOISE_FRAMES, size), dtype=np.int16)

    def picture(self, n: int) -> av.VideoFrame:
        """The ``n``-th picture, noise added (the pattern's stamp gets noisy too)."""
        planes = self.pattern.render(n).astype(np.int16)
        noise = self._noise[n % NOISE_FRAMES].reshape(planes.shape)
        noisy = np.clip(planes + noise, 0, 255).astype(np.uint8)
        return av.VideoFrame.from_ndarray(noisy, format="yuv420p")

    async def read(self) -> av.VideoFrame:
        await self._pacer.wait()
        self.counter += 1
        frame = self.picture(self.counter)
        frame.pts = int((time.monotonic() - self._pacer.start) * VIDEO_CLOCK)
        frame.time_base = VIDEO_TIME_BASE
        return frame


FREEZE = 1.0  # seconds without a decoded frame (after the first) count as a freeze
STUTTER = 0.3  # ... and this long as a visible stutter


async def view_through_cap(
    *,
    adapt: bool,
    seconds: float = 20.0,
    bandwidth: float = 1_000_000,
    delay: float = 0.020,
    preset: str = "veryfast",
    seed: int = 15,
) -> dict[str, Any]:
    camera = CameraConfig(
        source="testsrc", width=1280, height=720, fps=30, audio="tone", adapt_bitrate=adapt
    )
    settings = Settings(cameras=[camera], ice_gather_timeout=1.0)
    link = ImpairedLink(loss=0.0, delay=delay, seed=seed, bandwidth=bandwidth)
    frame_times: list[float] = []
    source = NoisyPattern(camera.width, camera.height, camera.fps, seed)
    async with CameraAgent(settings, signaling=False, preset=preset, video_source=source) as cam:
        echo = EchoShow(talk="off")
        try:
            offer = await echo.create_offer()
            link.attach(echo.pc)
            answer = await cam.handle_offer("capped-viewer", offer)
            await echo.accept(answer)
            start = time.monotonic()
            seen = 0
            while (now := time.monotonic()) - start < seconds:
                await asyncio.sleep(0.02)
                count = echo.report_.frames
                if count > seen:
                    frame_times += [now - start] * (count - seen)
                    seen = count
            assert cam.video is not None
            uplink = cam.video.uplink
            targets = [(round(t - start, 1), b // 1000) for t, b in uplink.history if t >= start]
            before = [b for t, b in uplink.history if t < start]
            encoder = cam.video.encoder
            reports = [
                (
                    round(t - start, 1),
                    round(loss * 100, 1),
                    round(jit),
                    b // 1000,
                    rtt and round(rtt),
                )
                for p in uplink.paths
                for t, loss, jit, b, rtt in p.history
            ]
            stats = cam.stats()
        finally:
            report = await echo.close()
    first = frame_times[0] if frame_times else None
    gaps = [b - a for a, b in itertools.pairwise(frame_times)]
    if frame_times:
        gaps.append(seconds - frame_times[-1])  # a stall at the end counts too
    after_first = seconds - first if first is not None else 0.0
    kbps = link.delivered_kbps()
    assert link.bottleneck is not None
    drops = [link.bottleneck.drops[s] for s in range(len(kbps))]
    return {
        "adapt_bitrate": adapt,
        "cap_kbps": round(bandwidth / 1000),
        "seconds": seconds,
        "first_frame_s": round(first, 2) if first is not None else None,
        "frames": len(frame_times),
        "fps": round((len(frame_times) - 1) / after_first, 1) if after_first > 0 else 0.0,
        "freezes": sum(1 for g in gaps if g > FREEZE),
        "stutters": sum(1 for g in gaps if g > STUTTER),
        "longest_gap_s": round(max(gaps), 2) if gaps else None,
        "frozen_s": round(sum(g for g in gaps if g > FREEZE), 1),
        "wire_kbps_per_second": kbps,
        "drops_per_second": drops,
        "encoder_target_kbps": [(0.0, before[-1] // 1000 if before else None), *targets],
        "reports": reports,  # (s, loss %, jitter ms, path kbit/s, round trip ms)
        "gaps": [
            (round(t, 1), round(g, 2))
            for t, g in zip(frame_times, gaps, strict=False)
            if g > STUTTER
        ],
        "encoder_reopened": encoder.reopened if encoder is not None else 0,
        "keyframes": stats["keyframes"],
        "bottleneck": link.figures()["bottleneck"],
        "nacks_repeated_by_echo": report.nacks_repeated,
    }
