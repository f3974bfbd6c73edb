"""The snapshot JPEG: one frame converted in many threads at once (a press's snapshot
and a detection's take the same frame) must not share FFmpeg's converter."""

from __future__ import annotations

import io
import subprocess
import sys

import av
import numpy as np

from alexa_doorbell.camera.jpeg import encode_jpeg

# In a child: a crash (SIGSEGV, as one SwsContext cached on the frame used from two
# threads gave) fails this test instead of ending the test run.
AT_ONCE = """
import concurrent.futures, av, numpy as np
from alexa_doorbell.camera.jpeg import encode_jpeg
from alexa_doorbell.inputs.pixels import luma_plane
frame = av.VideoFrame.from_ndarray(np.random.randint(0, 255, (360, 640, 3), np.uint8), "rgb24")
look = lambda _: (len(encode_jpeg(frame)) > 0, luma_plane(frame).shape)
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    sizes = set(pool.map(look, range(600)))
print(sorted(sizes))
"""


def test_one_frame_in_many_threads_at_once() -> None:
    run = subprocess.run(
        [sys.executable, "-c", AT_ONCE], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert run.stdout.strip() == "[(True, (360, 640))]"


def test_the_jpeg_is_the_frame() -> None:
    frame = av.VideoFrame.from_ndarray(np.full((241, 321, 3), 200, np.uint8), "rgb24")
    data = encode_jpeg(frame)
    [decoded] = av.open(io.BytesIO(data), format="image2pipe").decode(video=0)
    assert (decoded.width, decoded.height) == (320, 240)  # odd sizes cropped by one
    assert abs(float(decoded.to_ndarray(format="gray").mean()) - 200) < 8
