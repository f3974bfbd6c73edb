"""Test pattern, encoder and encode-once fan-out, without any network."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from alexa_doorbell.camera.fanout import (
    KEYFRAME_MIN_INTERVAL,
    H264Encoder,
    VideoFanout,
    default_bitrate,
)
from alexa_doorbell.camera.media import (
    MediaSourceError,
    TestPatternSource,
    ToneSource,
    WavSink,
    open_audio_source,
    open_sink,
    open_video_source,
)
from alexa_doorbell.camera.pattern import Stamp, TestPattern, read_stamp


def _frame(pattern: TestPattern, counter: int, wall: float) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(pattern.render(counter, wall), format="yuv420p")


@pytest.mark.parametrize(("w", "h"), [(320, 240), (640, 360), (1280, 720)])
def test_stamp_survives_h264_round_trip(w: int, h: int) -> None:
    pattern = TestPattern(w, h)
    # At the bitrate the agent gives this size: a 720p picture starved to 300 kbit/s by
    # a 0.1 s VBV may repeat the previous picture (skipped macroblocks) instead.
    enc = H264Encoder(w, h, 15, bitrate=default_bitrate(w, h, 15), preset="ultrafast")
    dec = av.CodecContext.create("h264", "r")
    seen = []
    for i in range(1, 6):
        frame = _frame(pattern, i, 1_700_000_000.0 + i / 15)
        frame.pts = i * 6000
        for pkt in enc.encode(frame, keyframe=i == 1):
            for out in dec.decode(pkt):
                seen.append(read_stamp(out.to_ndarray(format="gray")))
    assert [s.counter for s in seen if s] == list(range(1, len(seen) + 1))
    assert seen[0].wallclock_ms == int((1_700_000_000.0 + 1 / 15) * 1000)
    assert len(seen) == 5


def test_stamp_rejects_corrupted_bits() -> None:
    bits = Stamp(42, 1_700_000_000_123).bits()
    assert Stamp.from_bits(bits) == Stamp(42, 1_700_000_000_123)
    bits[5] ^= 1
    assert Stamp.from_bits(bits) is None
    assert read_stamp(np.full((240, 320), 128, np.uint8)) is None  # no stamp: flat grey


def _sps_profile(data: bytes) -> tuple[int, int]:
    """(profile_idc, constraint flags) of the first SPS in an Annex B buffer."""
    i = data.find(b"\x00\x00\x01\x67")
    assert i >= 0, "no SPS in keyframe"
    return data[i + 4], data[i + 5]


def test_encoder_is_constrained_baseline_short_gop_idr_on_demand() -> None:
    w, h, fps = 320, 240, 15
    enc = H264Encoder(w, h, fps, gop_seconds=1.0, preset="veryfast")
    pattern = TestPattern(w, h)
    keyframes, pts = [], []
    for i in range(40):
        frame = _frame(pattern, i, 0.0)
        frame.pts = i * 6000
        for pkt in enc.encode(frame, keyframe=(i == 20)):
            pts.append(pkt.pts)
            if pkt.is_keyframe:
                keyframes.append(i)
                profile, flags = _sps_profile(bytes(pkt))  # SPS repeated with every IDR
                assert profile == 66 and flags & 0x40, "not constrained baseline"
    assert pts == sorted(pts), "B-frames reorder output"
    assert 0 in keyframes and 20 in keyframes  # first frame and the forced one
    gaps = np.diff(keyframes)
    assert gaps.max() <= fps  # never more than one second between keyframes


async def test_fanout_encodes_once_for_many_viewers_and_starts_each_on_a_keyframe() -> None:
    fanout = VideoFanout(TestPatternSource(160, 120, 30), preset="ultrafast")
    fanout.start()
    try:
        tracks = [fanout.subscribe() for _ in range(3)]
        got: list[list[av.Packet]] = [[] for _ in tracks]
        for _ in range(10):
            for i, t in enumerate(tracks):
                got[i].append(await asyncio.wait_for(t.recv(), 2))
        # the very same packet objects reach every viewer: no per-viewer encoding
        assert all(a is b for a, b in zip(got[0][:5], got[1][:5], strict=True))
        assert fanout.frames_encoded <= fanout.frames_read
        assert all(g[0].is_keyframe for g in got)
        late = fanout.subscribe()
        first = await asyncio.wait_for(late.recv(), 2)
        assert first.is_keyframe  # the late viewer did not wait for the GOP
        await asyncio.sleep(KEYFRAME_MIN_INTERVAL + 0.1)  # past the keyframe rate limit
        before = fanout.keyframes
        tracks[0].request_keyframe()  # a viewer's PLI reaches the shared encoder
        tracks[1].request_keyframe()  # ... and a PLI storm costs one keyframe
        await asyncio.sleep(0.15)
        assert fanout.keyframes == before + 1
        for t in [*tracks, late]:
            t.stop()
        assert not fanout.tracks
    finally:
        await fanout.stop()


async def test_stalled_viewer_is_resynced_without_slowing_others() -> None:
    fanout = VideoFanout(TestPatternSource(160, 120, 60), preset="ultrafast")
    fanout.start()
    try:
        fast, stalled = fanout.subscribe(), fanout.subscribe()
        stalled._queue = asyncio.Queue(3)  # tiny backlog limit
        for _ in range(15):
            await asyncio.wait_for(fast.recv(), 2)
        assert stalled.dropped > 0
        first = await asyncio.wait_for(stalled.recv(), 2)
        assert first.is_keyframe or stalled.sent == 1
    finally:
        await fanout.stop()


async def test_a_viewer_switched_to_frames_gets_no_packet_queued_before() -> None:
    """A VP8 viewer's track starts as H.264 while its answer is negotiated: nothing
    queued then may reach its VP8 sender (aiortc's sender dies on an H.264 packet)."""
    fanout = VideoFanout(TestPatternSource(160, 120, 30), preset="ultrafast")
    fanout.start()
    try:
        track = fanout.subscribe()
        for _ in range(50):  # negotiating: the shared encoder's packets queue up
            if track._queue.qsize() >= 2:
                break
            await asyncio.sleep(0.02)
        assert track._queue.qsize() >= 2
        track.mode = "frames"
        for _ in range(3):
            assert isinstance(await asyncio.wait_for(track.recv(), 2), av.VideoFrame)
    finally:
        await fanout.stop()


async def test_tone_and_wav_sink(tmp_path: Path) -> None:
    src, sink = ToneSource(440), WavSink(tmp_path / "t.wav")
    for _ in range(10):
        sink.write(await src.read())
    sink.close()
    assert sink.seconds == pytest.approx(0.2)
    assert 0.15 < sink.rms < 0.25  # 0.3 amplitude sine: RMS 0.21
    with wave.open(str(tmp_path / "t.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (48000, 1, 9600)


async def test_file_source_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        pattern = TestPattern(320, 240)
        for i in range(6):
            frame = _frame(pattern, i + 1, 0.0)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    src = open_video_source(str(path), 320, 240, 30)
    counters = [read_stamp((await src.read()).to_ndarray(format="gray")) for _ in range(9)]
    src.close()
    assert [c.counter for c in counters if c] == [1, 2, 3, 4, 5, 6, 1, 2, 3]
    audio = open_audio_source("auto", str(path))  # no audio stream: silence
    assert not (await audio.read()).to_ndarray().any()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: open_video_source("/nonexistent.mp4", 320, 240, 15), "existing file"),
        (lambda: open_audio_source("/nonexistent.wav"), "audio source"),
        (lambda: open_sink("out.mp3"), "sink"),
    ],
)
def test_bad_sources_say_what_to_fix(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MediaSourceError, match=message):
        call()


async def test_audio_is_encoded_once_per_codec_for_all_viewers() -> None:
    from alexa_doorbell.camera.fanout import AudioFanout, EncodedFrame

    fanout = AudioFanout(ToneSource(440))
    fanout.start()
    try:
        opus = [fanout.subscribe() for _ in range(3)]
        pcmu = fanout.subscribe()
        raw = fanout.subscribe()  # e.g. G.722: aiortc encodes for it
        for t in opus:
            t.use_shared("opus")
        pcmu.use_shared("pcmu")
        got = [[await asyncio.wait_for(t.recv(), 2) for _ in range(5)] for t in opus]
        # The very same encoded payloads for every Opus viewer.
        assert all(a is b is c for a, b, c in zip(*got, strict=True))
        assert all(isinstance(f, EncodedFrame) and f.payloads for f in got[0])
        assert [f.timestamp for f in got[0]] == sorted(f.timestamp for f in got[0])
        assert len((await pcmu.recv()).payloads[0]) == 160  # 20 ms of G.711 at 8 kHz
        assert isinstance(await raw.recv(), av.AudioFrame)
        # Two codecs in use: two encodes per frame, however many viewers.
        assert fanout.frames_encoded <= 2 * fanout.frames_read + 2
        # aiortc's Opus decoder hears the tone.
        dec = av.CodecContext.create("libopus", "r")
        pcm = np.concatenate(
            [
                f.to_ndarray().reshape(-1)
                for e in got[0]
                for f in dec.decode(av.Packet(e.payloads[0]))
            ]
        )
        assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) / 32768 > 0.05
    finally:
        await fanout.stop()
