"""The built-in input on synthetic frames: pixel motion (noise, a light switched on, a
figure walking in, quiet again), the HOG person detector, and the frame analyser as the
agent feeds it (av.VideoFrame in yuv420p, a worker thread, a JPEG snapshot)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import numpy as np
import pytest

from alexa_doorbell.camera.pattern import TestPattern
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.inputs.frames import FrameAnalyzer
from alexa_doorbell.inputs.pixels import PixelMotion, changed_fraction, downscale, luma_plane
from alexa_doorbell.inputs.runner import Inputs
from alexa_doorbell.inputs.sink import Detection, Event, Motion
from tests.helpers.inputs import RecordingSink

# The figures are drawn with OpenCV, which the person detector needs too.
cv2 = pytest.importorskip("cv2", reason="the detect extra (opencv-python-headless) is missing")

H, W = 720, 1280
rng = np.random.default_rng(7)


def scene(brightness: int = 120, noise: float = 3.0) -> np.ndarray:
    """A doorstep: a gradient wall and a floor, plus sensor noise (new on every frame)."""
    y = np.linspace(0, 40, W, dtype=np.float32)[None, :] + brightness
    picture = np.repeat(y, H, axis=0)
    picture[H * 2 // 3 :] -= 30
    picture += rng.normal(0, noise, picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8)


def figure(picture: np.ndarray, x: int, y: int = 120, scale: float = 1.0) -> np.ndarray:
    """A dark standing figure (head, torso, arms, legs) drawn onto ``picture``, centred at x."""
    out = picture.copy()
    s = lambda v: int(v * scale)  # noqa: E731
    ink = 40
    cv2.circle(out, (x, y + s(25)), s(22), ink, -1)
    cv2.rectangle(out, (x - s(8), y + s(45)), (x + s(8), y + s(55)), ink, -1)
    torso = [[x - s(45), y + s(55)], [x + s(45), y + s(55)], [x + s(38), y + s(200)],
             [x - s(38), y + s(200)]]  # fmt: skip
    cv2.fillPoly(out, [np.array(torso, np.int32)], ink)
    for dx, ex in ((-45, -60), (45, 60)):
        cv2.line(out, (x + s(dx), y + s(60)), (x + s(ex), y + s(190)), ink, s(18))
    for dx, ex in ((-20, -30), (20, 30)):
        cv2.line(out, (x + s(dx), y + s(200)), (x + s(ex), y + s(380)), ink, s(26))
    return cv2.GaussianBlur(out, (5, 5), 0)


def yuv_frame(luma: np.ndarray) -> av.VideoFrame:
    """A yuv420p frame as the agent decodes them (gray chroma)."""
    h, w = luma.shape
    buf = np.full((h * 3 // 2, w), 128, np.uint8)
    buf[:h] = luma
    return av.VideoFrame.from_ndarray(buf, format="yuv420p")


# -- the pure parts ----------------------------------------------------------------------
def test_luma_is_read_in_place_from_the_decoders_planes() -> None:
    luma = scene()
    frame = yuv_frame(luma)
    plane = luma_plane(frame)
    assert plane.shape == (H, W) and np.array_equal(plane, luma)
    rgb = np.stack([luma] * 3, axis=2)
    assert np.allclose(luma_plane(rgb), luma, atol=1)
    assert downscale(luma).shape == (90, 160)
    assert downscale(luma[:100, :101]).shape == (12, 12)  # edges that fill no block dropped


def test_noise_and_a_light_switched_on_are_not_motion() -> None:
    a, b = downscale(scene()), downscale(scene())
    assert changed_fraction(a, b) == 0.0  # fresh sensor noise on every frame
    brighter = downscale(scene(brightness=160))  # the porch light: the whole picture +40
    assert changed_fraction(a, brighter) == 0.0
    walking = downscale(figure(scene(), 640))
    assert changed_fraction(a, walking) > 0.02


def test_motion_starts_with_a_figure_and_ends_after_the_quiet_time() -> None:
    detector = PixelMotion(area=0.02, quiet=2.0)
    changes = []
    t = 0.0
    for _ in range(4):  # an empty doorstep
        changes.append((t, detector.feed(downscale(scene()), t)))
        t += 0.25
    for x in range(300, 900, 60):  # someone walks across
        changes.append((t, detector.feed(downscale(figure(scene(), x)), t)))
        t += 0.25
    still = figure(scene(noise=0), 900)
    for _ in range(12):  # and stands still: no change, so after 2 s motion is over
        changes.append((t, detector.feed(downscale(still), t)))
        t += 0.25
    transitions = [(round(when, 2), c) for when, c in changes if c is not None]
    assert transitions == [(1.0, True), (5.5, False)]  # 2 s after the last change, at 3.5


def test_a_new_picture_size_starts_again() -> None:
    detector = PixelMotion()
    assert detector.feed(downscale(scene()), 0) is None
    assert detector.feed(np.zeros((45, 80), np.float32), 0.25) is None  # no comparison


# -- the person detector -----------------------------------------------------------------
def test_hog_finds_a_standing_figure_and_nothing_on_an_empty_doorstep() -> None:
    from alexa_doorbell.inputs.person import HogPersonDetector

    hog = HogPersonDetector()
    found = hog.detect(figure(scene(), 640, y=100))
    assert found is not None and found.score > 0.8
    x, _, w, h = found.box
    assert x < 640 < x + w and h > 300  # around the figure, in 720p pixels
    assert hog.detect(scene()) is None
    pattern = TestPattern(W, H).render(5)[:H]  # bars, stamp and text: no person
    assert hog.detect(pattern) is None


# -- the analyser as the agent feeds it ----------------------------------------------------
async def wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_the_analyser_reports_motion_and_a_person_with_a_snapshot() -> None:
    events: list[Event] = []
    analyzer = FrameAnalyzer("front-door", events.append, motion=True, person=True, fps=50)
    try:
        empty = scene()
        assert analyzer.offer(yuv_frame(empty))
        for x in (500, 560, 620):
            await wait_until(lambda: not analyzer.busy)
            await asyncio.sleep(0.03)  # 1/fps
            assert analyzer.offer(yuv_frame(figure(scene(), x, y=100)))
        await wait_until(lambda: any(isinstance(e, Detection) for e in events))
    finally:
        analyzer.close()
    motion = [e for e in events if isinstance(e, Motion)]
    [person] = [e for e in events if isinstance(e, Detection)]
    assert [m.detected for m in motion] == [True]
    assert person.label == "person" and person.source == "hog" and person.score > 0.8
    assert person.snapshot_jpeg is not None and person.snapshot_jpeg.startswith(b"\xff\xd8\xff")
    decoded = next(av.open(__import__("io").BytesIO(person.snapshot_jpeg)).decode(video=0))
    assert (decoded.width, decoded.height) == (W, H)


async def test_frames_are_sampled_and_never_wait_for_the_analyser() -> None:
    events: list[Event] = []
    analyzer = FrameAnalyzer("front-door", events.append, motion=True, fps=4)
    frame = yuv_frame(scene())
    try:
        started = time.perf_counter()
        taken = sum(analyzer.offer(frame) for _ in range(300))  # a burst: 300 frames at once
        spent = time.perf_counter() - started
    finally:
        analyzer.close()
    assert taken == 1  # one per 1/fps seconds
    assert spent < 0.5  # the video path did not wait


async def test_the_inputs_layer_offers_frames_only_where_asked(tmp_path: Path) -> None:
    s = Settings(
        data_dir=tmp_path,
        cameras=[
            CameraConfig(endpoint_id="front-door", pixel_motion=True, pixel_motion_fps=30),
            CameraConfig(endpoint_id="garage", channel_name="garage"),
        ],
    )
    sink = RecordingSink()
    async with Inputs(s, sink, environ={}) as inputs:
        assert inputs.frame_sink("garage") is None  # no detector: the agent decodes nothing
        offer = inputs.frame_sink("front-door")
        assert offer is not None
        pattern = TestPattern(W, H)
        for n in range(0, 40, 8):  # the test pattern's bar moves 32 px a step
            offer(av.VideoFrame.from_ndarray(pattern.render(n), format="yuv420p"))
            await asyncio.sleep(0.05)
        [motion] = await sink.wait_for("motion")
    assert motion.endpoint_id == "front-door" and motion.args[0] is True
