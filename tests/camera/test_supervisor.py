"""The source supervisor, the slate and the camera's health, in one process on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import pytest

from alexa_doorbell.camera.fanout import VideoFanout
from alexa_doorbell.camera.health import CameraHealth
from alexa_doorbell.camera.pattern import read_stamp
from alexa_doorbell.camera.slate import Slate
from alexa_doorbell.camera.sources import (
    MediaSourceError,
    TestPatternSource,
    VideoSource,
    check_video_spec,
    source_present,
)
from alexa_doorbell.camera.supervisor import Backoff, SourceStatus, SupervisedVideo
from tests.helpers.rtsp_server import RtspTestServer, encode_clip


class FlakySource(VideoSource):
    """The test pattern that fails after ``frames`` pictures, as a camera that reboots."""

    def __init__(self, frames: int) -> None:
        self.inner = TestPatternSource(320, 240, 30)
        self.width, self.height, self.fps = 320, 240, 30
        self.left = frames
        self.closed = False

    async def read(self) -> av.VideoFrame:
        if self.left <= 0:
            raise MediaSourceError("camera rebooted")
        self.left -= 1
        return await self.inner.read()

    def close(self) -> None:
        self.closed = True


def _luma(frame: av.VideoFrame) -> object:
    return frame.to_ndarray(format="gray")


def test_backoff_is_bounded() -> None:
    b = Backoff()
    delays = [b.next_delay() for _ in range(10)]
    assert delays[0] <= 0.5 and max(delays) == 5.0  # first retry soon, never 5 s apart
    assert delays == sorted(delays)
    watched = Backoff()
    assert max(watched.next_delay(1.0) for _ in range(10)) == 1.0  # while someone watches
    b.reset()
    assert b.next_delay() == delays[0]


def test_the_slate_is_the_stream_size_and_no_test_pattern() -> None:
    for w, h in ((320, 240), (1280, 720)):
        buf = Slate(w, h).render(3.0)
        assert buf.shape == (h * 3 // 2, w)
        assert read_stamp(buf[:h]) is None
        assert (buf[:h] > 200).any() and (buf[:h] == 40).mean() > 0.8  # text on dark grey
    assert not (Slate(320, 240).render(0.0) == Slate(320, 240).render(1.0)).all()  # it moves


async def test_a_failing_source_gives_the_slate_then_pictures_again() -> None:
    opened: list[float] = []
    changes: list[SourceStatus] = []

    def opener(reopen: bool) -> VideoSource:
        opened.append(time.monotonic())
        if len(opened) in (2, 3):  # the camera is away for two attempts
            raise MediaSourceError("connection refused")
        return FlakySource(10)

    video = SupervisedVideo(
        "rtsp://cam", opener, width=320, height=240, fps=30, on_change=changes.append
    )
    try:
        kinds, pts = [], []
        for _ in range(40):
            frame = await asyncio.wait_for(video.next(), 5)
            assert (frame.width, frame.height) == (320, 240)
            kinds.append("camera" if read_stamp(_luma(frame)) else "slate")
            pts.append(frame.pts)
            if kinds.count("camera") >= 15:
                break
        assert pts == sorted(pts) and len(set(pts)) == len(pts)  # one clock, never back
        first_slate = kinds.index("slate")
        assert kinds[:first_slate] == ["camera"] * 10
        back = kinds.index("camera", first_slate)
        assert set(kinds[first_slate:back]) == {"slate"}
        # Retried soon (0.25 s, then 0.5 s), and the state says what happened.
        assert opened[1] - opened[0] < 1.0 and len(opened) == 4
        states = [c.state for c in changes]
        assert states[:3] == ["starting", "live", "down"] and states[-1] == "live"
        assert changes[-1].outages == 1 and changes[-1].reopens == 1
        assert "connection refused" in {c.error for c in changes}
    finally:
        await video.close()


async def test_every_viewer_restarts_at_a_keyframe_when_the_source_returns() -> None:
    n = 0

    def opener(reopen: bool) -> VideoSource:
        nonlocal n
        n += 1
        if n == 2:
            raise MediaSourceError("gone")
        return FlakySource(15)

    video = SupervisedVideo("rtsp://cam", opener, width=320, height=240, fps=30)
    fan = VideoFanout(video, preset="ultrafast")
    fan.start()
    track = fan.subscribe()
    try:
        seen: list[tuple[bool, int]] = []  # (keyframe, generation)
        while len(seen) < 40:
            packet = await asyncio.wait_for(track.recv(), 5)
            seen.append((packet.is_keyframe, video.generation))
        gens = [g for _, g in seen]
        for i in range(1, len(seen)):
            if gens[i] != gens[i - 1]:
                # The first packet of each new stream (slate, camera again) is an IDR.
                j = next(k for k in range(i, len(seen)) if seen[k][1] == gens[i])
                assert seen[j][0], seen
        assert len(set(gens)) >= 3 and video.slate_frames > 0
    finally:
        track.stop()
        await fan.stop()


async def test_nobody_watching_opens_nothing_and_a_source_is_closed_after_its_viewers(
    tmp_path: Path,
) -> None:
    made: list[FlakySource] = []

    def opener(reopen: bool) -> VideoSource:
        made.append(FlakySource(10_000))
        return made[-1]

    video = SupervisedVideo("testsrc", opener, width=320, height=240, fps=30, linger=0.0)
    fan = VideoFanout(video, preset="ultrafast")
    fan.start()
    try:
        await asyncio.sleep(0.3)
        assert not made and fan.frames_read == 0  # idle: no source, no encoding
        track = fan.subscribe()
        await asyncio.wait_for(track.recv(), 5)
        assert len(made) == 1 and video.status.state == "live"
        track.stop()
        for _ in range(50):
            if made[0].closed:
                break
            await asyncio.sleep(0.05)
        assert made[0].closed and video.status.state == "idle"
    finally:
        await fan.stop()


async def test_a_source_closes_a_linger_after_its_last_viewer() -> None:
    made: list[FlakySource] = []

    def opener(reopen: bool) -> VideoSource:
        made.append(FlakySource(10_000))
        return made[-1]

    video = SupervisedVideo("testsrc", opener, width=320, height=240, fps=30, linger=0.4)
    fan = VideoFanout(video, preset="ultrafast")
    fan.start()
    try:
        track = fan.subscribe()
        await asyncio.wait_for(track.recv(), 5)
        track.stop()
        left = time.monotonic()
        while not made[0].closed and time.monotonic() - left < 5:
            await asyncio.sleep(0.05)
        assert made[0].closed and video.status.state == "idle"
        assert time.monotonic() - left >= 0.35  # the linger, then closed
    finally:
        await fan.stop()


async def test_a_reader_keeps_the_source_read_with_nobody_watching_and_recovers_it() -> None:
    """A detector's tap: the source is opened, decoded and brought back after a failure as
    for a viewer, nothing is encoded; when the reader goes, it closes after the linger."""
    made: list[FlakySource] = []

    def opener(reopen: bool) -> VideoSource:
        made.append(FlakySource(20 if not made else 10_000))  # the first one fails
        return made[-1]

    states: list[str] = []
    video = SupervisedVideo(
        "testsrc", opener, width=320, height=240, fps=30, linger=0.2,
        on_change=lambda s: states.append(s.state),
    )  # fmt: skip
    fan = VideoFanout(video, preset="ultrafast")
    tapped: list[av.VideoFrame] = []
    fan.frame_taps.append(tapped.append)
    fan.start()
    try:
        await asyncio.sleep(0.2)
        assert not made  # no viewer, no reader: nothing open
        done = video.add_reader()
        fan.wake()
        for _ in range(100):
            if len(made) == 2 and len(tapped) > 30:
                break
            await asyncio.sleep(0.05)
        assert len(made) == 2 and made[0].closed  # failed, reopened within a second or so
        assert states[:4] == ["starting", "live", "down", "live"], states
        assert len(tapped) > 30 and not fan.tracks
        assert fan.frames_encoded == 0 and fan.encoder is None  # decoded, not encoded
        done()
        done()  # twice is once
        for _ in range(100):
            if made[1].closed:
                break
            await asyncio.sleep(0.05)
        assert made[1].closed and video.status.state == "idle" and video.readers == 0
    finally:
        await fan.stop()


async def test_a_source_that_stalls_shows_the_slate_until_it_answers() -> None:
    release = asyncio.Event()

    class Stalling(FlakySource):
        async def read(self) -> av.VideoFrame:
            if self.left == 45:
                await release.wait()  # a camera that stops sending, socket still open
            return await super().read()

    video = SupervisedVideo(
        "rtsp://cam", lambda reopen: Stalling(50), width=320, height=240, fps=30, stall=0.3
    )
    try:
        kinds = []
        for _ in range(12):
            frame = await asyncio.wait_for(video.next(), 5)
            kinds.append("camera" if read_stamp(_luma(frame)) else "slate")
        assert kinds[:5] == ["camera"] * 5 and "slate" in kinds
        assert video.status.down and "no picture" in (video.status.error or "")
        release.set()
        frame = await asyncio.wait_for(video.next(), 5)
        while read_stamp(_luma(frame)) is None:
            frame = await asyncio.wait_for(video.next(), 5)
        assert video.status.state == "live"
    finally:
        await video.close()


async def test_health_is_unreachable_after_the_grace_period_and_ok_with_frames() -> None:
    reports: list[str] = []

    async def report(endpoint_id: str, value: str) -> None:
        reports.append(value)

    health = CameraHealth("front-door", report, grace=0.3)
    health.signaling(True)
    await asyncio.sleep(0.05)
    assert reports == ["OK"]
    health.source(SourceStatus("down", time.time(), "refused", 1))
    await asyncio.sleep(0.1)
    assert reports == ["OK"] and health.connectivity == "OK"  # within the grace period
    await asyncio.sleep(0.35)
    assert reports == ["OK", "UNREACHABLE"]
    health.source(SourceStatus("live", time.time(), None, 1, 1))
    await asyncio.sleep(0.05)
    assert reports == ["OK", "UNREACHABLE", "OK"]
    health.signaling(False)
    await asyncio.sleep(0.05)
    assert reports[-1] == "UNREACHABLE"
    await health.stop()


def test_a_source_that_can_never_work_is_refused_at_start(tmp_path: Path) -> None:
    for spec, words in (
        (str(tmp_path / "missing.mp4"), "not testsrc, rtsp://"),
        ("http://camera/stream", "not testsrc, rtsp://"),
        ("rtsp:///stream", "no camera address"),
    ):
        with pytest.raises(MediaSourceError, match=words):
            check_video_spec(spec)
    for spec in ("testsrc", "rtsp://user:pw@192.0.2.1/stream", "webcam"):
        check_video_spec(spec)  # might work later: not refused


def test_the_idle_check_of_an_rtsp_camera_is_a_connection() -> None:
    with RtspTestServer(encode_clip(frames=15)) as cam:
        assert source_present(cam.url)
        url = cam.url
    assert not source_present(url)
