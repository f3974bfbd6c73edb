"""One side of the media-path test, run inside a network namespace by ``test_netem.py``.

    netns_peer.py agent SECONDS    reads an offer line (JSON), prints the answer line,
                                   serves it for SECONDS, prints agent stats
    netns_peer.py viewer SECONDS   prints an Echo Show offer line, reads the answer
                                   line, watches for SECONDS, prints its report

Frames are counted per second so the test can see whether video keeps decoding.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings


async def agent(seconds: float) -> None:
    settings = Settings(
        cameras=[CameraConfig(width=320, height=240, fps=15, audio="tone")],
        ice_gather_timeout=1.0,
    )
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as cam:
        offer = json.loads(await asyncio.to_thread(sys.stdin.readline))["sdp"]
        answer = await cam.handle_offer("netem-viewer", offer)
        print(json.dumps({"sdp": answer}), flush=True)
        await asyncio.sleep(seconds)
        print(json.dumps(cam.stats()), flush=True)


async def viewer(seconds: float) -> None:
    echo = EchoShow(talk="tone")
    offer = await echo.create_offer()
    print(json.dumps({"sdp": offer}), flush=True)
    answer = json.loads(await asyncio.to_thread(sys.stdin.readline))["sdp"]
    await echo.accept(answer)
    per_second: list[int] = []
    audio: list[float] = []
    start = time.monotonic()
    last = 0
    while time.monotonic() - start < seconds:
        await asyncio.sleep(1.0)
        frames = echo.report().frames
        per_second.append(frames - last)
        last = frames
        audio.append(echo.sink.seconds)
    report = echo.report().as_dict()
    await echo.close()
    print(json.dumps({**report, "per_second": per_second, "audio_by_second": audio}), flush=True)


if __name__ == "__main__":
    role, seconds = sys.argv[1], float(sys.argv[2])
    asyncio.run(agent(seconds) if role == "agent" else viewer(seconds))
