"""The loopback RTSP test camera made live, in its own process (``bench/instant_bench.py``).

``tests/helpers/rtsp_server.py`` streams its clip from the first IDR to every new
session; a real camera encodes all the time, so a session starts where its stream is
now, mid-GOP. ``LiveCamera`` does that (``at_idr``: a camera that starts each session
with an IDR, as some do). H.264 constrained baseline 640x360@15, SPS/PPS only in the SDP.

    uv run python bench/live_camera.py GOP_S [--at-idr]   # prints its rtsp:// URL
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.helpers

from tests.helpers.rtsp_server import Clip, RtspTestServer, encode_clip

WIDTH, HEIGHT, FPS = 640, 360, 15


class LiveCamera(RtspTestServer):
    """The test camera as a real one: each session starts where its stream is now
    (``at_idr``: at the clip's IDR, as a camera that starts each session with one)."""

    def __init__(self, clip: Clip, at_idr: bool = False) -> None:
        super().__init__(clip, inband_parameters=False, live=not at_idr)


def camera_clip(gop_s: int) -> Clip:
    return encode_clip(frames=FPS * gop_s * 2, gop=FPS * gop_s, fps=FPS, width=WIDTH, height=HEIGHT)


def serve(gop_s: int, at_idr: bool) -> None:
    with LiveCamera(camera_clip(gop_s), at_idr) as cam:
        print(cam.url, flush=True)
        threading.Event().wait()


class CameraProcess:
    def __init__(self, gop_s: int, at_idr: bool = False) -> None:
        self.gop_s = gop_s
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(gop_s), *(["--at-idr"] * at_idr)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("rtsp://"):
            raise RuntimeError(f"the test camera did not start ({self.proc.poll()})")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("gop", type=int, help="seconds between IDRs")
    p.add_argument("--at-idr", action="store_true", help="each session starts at an IDR")
    args = p.parse_args()
    serve(args.gop, args.at_idr)
