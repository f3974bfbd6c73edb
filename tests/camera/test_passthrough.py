"""RTSP cameras: H.264 passed through untouched when Alexa can take it, transcoded otherwise.

A tiny RTSP server (tests/helpers/rtsp_server.py) streams a clip encoded with
PyAV at test time over loopback, RTP over TCP interleaved with FU-A; the agent
reads it like any camera and real aiortc viewers decode what it sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.camera.fanout import EncodedFrame
from alexa_doorbell.camera.h264 import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    AccessUnitWriter,
    SpsInfo,
    join_annexb,
    nal_type,
    parameter_sets,
    parse_avcc,
    parse_sps,
    split_annexb,
    split_length_prefixed,
    transcode_reason,
)
from alexa_doorbell.camera.media import H264PassthroughSource, redact_url
from alexa_doorbell.camera.pattern import read_stamp
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings
from tests.helpers.rtsp_server import Clip, RtspTestServer, encode_clip
from tests.helpers.viewer import FrameCollector, vp8_only_offer

SPS = bytes([0x67, 0x42, 0xC0, 0x1F, 0xAA])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84, 0x00, 0x10])
SLICE = bytes([0x41, 0x9A, 0x02])
AUD = bytes([0x09, 0xF0])


# -- pure bitstream facts -------------------------------------------------------


def test_split_annexb_handles_3_and_4_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + IDR + b"\x00"
    assert split_annexb(data) == [SPS, PPS, IDR]
    assert split_annexb(b"") == [] and split_annexb(b"\x01\x02") == []


def test_length_prefixed_and_avcc() -> None:
    sample = len(SLICE).to_bytes(4, "big") + SLICE + len(IDR).to_bytes(4, "big") + IDR
    assert split_length_prefixed(sample) == [SLICE, IDR]
    with pytest.raises(ValueError):
        split_length_prefixed(sample[:-1])
    avcc = (
        bytes([1, 0x42, 0xC0, 0x1F, 0xFF, 0xE1])
        + len(SPS).to_bytes(2, "big")
        + SPS
        + b"\x01"
        + len(PPS).to_bytes(2, "big")
        + PPS
    )
    assert parse_avcc(avcc).length_size == 4
    assert parameter_sets(avcc) == [SPS, PPS]
    assert parameter_sets(join_annexb([SPS, PPS])) == [SPS, PPS]
    assert parameter_sets(None) == []


def test_sps_profile_names() -> None:
    assert parse_sps(SPS).profile_level_id == "42c01f"
    assert parse_sps(SPS).profile_name == "Constrained Baseline"
    assert SpsInfo(66, 0x00, 31).profile_name == "Baseline"
    assert SpsInfo(100, 0, 40).profile_name == "High"
    with pytest.raises(ValueError):
        parse_sps(PPS)


@pytest.mark.parametrize(
    ("sps", "bframes", "size", "policy", "passes"),
    [
        (SpsInfo(66, 0xE0, 31), False, (1280, 720), "auto", True),  # 42e01f: what Echo asks for
        (SpsInfo(66, 0x00, 31), False, (1280, 720), "auto", True),  # Baseline
        (SpsInfo(77, 0x40, 40), False, (1920, 1080), "auto", True),  # Main, no B-frames
        (SpsInfo(77, 0x40, 40), True, (1920, 1080), "auto", False),  # Main with B-frames
        (SpsInfo(100, 0, 40), False, (1920, 1080), "auto", False),  # High
        (SpsInfo(66, 0xE0, 51), False, (3840, 2160), "auto", False),  # 4K
        (SpsInfo(66, 0xE0, 31), False, (1280, 720), "never", False),
        (None, False, (1280, 720), "auto", False),
    ],
)
def test_transcode_reason(
    sps: SpsInfo | None, bframes: bool, size: tuple[int, int], policy: str, passes: bool
) -> None:
    reason = transcode_reason(
        sps, has_b_frames=bframes, width=size[0], height=size[1], policy=policy
    )
    assert (reason is None) == passes, reason


def test_access_unit_writer_puts_parameter_sets_before_idrs() -> None:
    writer = AccessUnitWriter(join_annexb([SPS, PPS]))  # out of band, as sprop-parameter-sets
    au, idr = writer.write(join_annexb([AUD, IDR]))
    assert idr and split_annexb(au) == [SPS, PPS, IDR]  # AUD dropped, params first
    au, idr = writer.write(join_annexb([SLICE]))
    assert not idr and split_annexb(au) == [SLICE]
    new_sps = SPS[:-1] + b"\xbb"  # the camera sends new parameters in band: they win
    au, _ = writer.write(join_annexb([new_sps, PPS, IDR]))
    assert split_annexb(au) == [new_sps, PPS, IDR] and writer.inserted == 1
    assert split_annexb(writer.write(join_annexb([IDR]))[0]) == [new_sps, PPS, IDR]
    # MP4 samples: length-prefixed NAL units become Annex B
    avcc = bytes([1, 0x42, 0xC0, 0x1F, 0xFF, 0xE1, 0, len(SPS), *SPS, 1, 0, len(PPS), *PPS])
    mp4 = AccessUnitWriter(avcc)
    au, idr = mp4.write(len(IDR).to_bytes(4, "big") + IDR)
    assert idr and split_annexb(au) == [SPS, PPS, IDR]


def test_redact_url() -> None:
    assert redact_url("rtsp://admin:s3cret@10.0.0.2:554/h264") == "rtsp://***@10.0.0.2:554/h264"
    assert redact_url("rtsp://10.0.0.2/x") == "rtsp://10.0.0.2/x"


# -- a real RTSP camera over loopback --------------------------------------------


@pytest.fixture(scope="module")
def baseline_clip() -> Clip:
    return encode_clip(profile="Baseline", bframes=0)


@pytest.fixture(scope="module")
def high_clip() -> Clip:
    return encode_clip(profile="High", bframes=2)


@pytest.fixture
def baseline_camera(baseline_clip: Clip) -> Iterator[RtspTestServer]:
    # Parameter sets only in the SDP: the agent must put them before each IDR.
    with RtspTestServer(baseline_clip, inband_parameters=False) as cam:
        yield cam


def _agent(tmp_path: Path, url: str) -> CameraAgent:
    cam = CameraConfig(source=url, width=320, height=240, fps=15, audio="silence")
    settings = Settings(cloud="local", data_dir=tmp_path, cameras=[cam])
    return CameraAgent(settings, signaling=False, preset="ultrafast")


def _slices(au: bytes) -> list[bytes]:
    return [n for n in split_annexb(au) if nal_type(n) not in (NAL_SPS, NAL_PPS, NAL_AUD)]


async def test_baseline_rtsp_is_passed_through_unchanged(
    tmp_path: Path, baseline_camera: RtspTestServer, baseline_clip: Clip
) -> None:
    agent = _agent(tmp_path, baseline_camera.url)
    await agent.start()
    echo = EchoShow(talk=None)
    try:
        assert agent.video is not None
        tap = agent.video.subscribe()  # sees exactly what every viewer's sender gets
        await echo.watch(lambda offer: agent.handle_offer("viewer-1", offer))
        assert await echo.wait_frames(20, timeout=10) >= 20
        got: list[EncodedFrame] = [await asyncio.wait_for(tap.recv(), 5) for _ in range(20)]
        tap.stop()

        # Not re-encoded: no encoder exists, and the slices are the camera's own bytes.
        assert agent.video.encoder is None and agent.video.frames_encoded == 0
        assert agent.stats()["passthrough"] is True
        clip = [_slices(au) for au, _, _ in baseline_clip.units]
        first = clip.index(_slices(bytes(got[0].packet)))
        for i, frame in enumerate(got):
            assert _slices(bytes(frame.packet)) == clip[(first + i) % len(clip)]
        # The first one a viewer gets is an IDR, with the SPS/PPS that came only in the SDP.
        assert got[0].is_keyframe
        types = [nal_type(n) for n in split_annexb(bytes(got[0].packet))]
        assert types[:2] == [NAL_SPS, NAL_PPS] and NAL_IDR in types
        assert agent.video.passthrough  # the source opened with the first viewer
        assert agent.video.source.current.writer.inserted >= 1
        assert baseline_camera.stats.fu_a_packets > 0  # keyframes arrived in FU-A fragments

        # The viewer decodes the camera's pictures: the clip's burned-in counter.
        r = echo.report()
        assert (r.width, r.height) == (320, 240) and r.video_codec == "H264"
        assert r.stamps_read >= 18
        assert 1 <= r.last_counter <= len(baseline_clip.units)

        # A PLI cannot force the camera's keyframe: the viewer is bridged (an IDR of the
        # current picture now) until the camera's next one; the stream goes on.
        session = agent.sessions["viewer-1"]
        joins = agent.video.bridge_joins
        session.video.request_keyframe()
        await asyncio.sleep(0.2)
        assert agent.video.bridge_joins > joins or not session.video.bridged
        before = echo.report().frames
        await asyncio.sleep(0.5)
        assert echo.report().frames > before
    finally:
        await echo.close()
        await agent.stop()


async def test_passthrough_serves_a_vp8_only_viewer_by_decoding(
    tmp_path: Path, baseline_camera: RtspTestServer
) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    agent = _agent(tmp_path, baseline_camera.url)
    await agent.start()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offer = await vp8_only_offer(pc)
        received = FrameCollector(pc)
        answer = await agent.handle_offer("browser-vp8", offer)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        assert await received.wait(3) >= 3
        assert agent.video.frames_decoded > 0 and agent.video.frames_encoded == 0
    finally:
        await pc.close()
        await agent.stop()


async def test_high_profile_with_b_frames_is_transcoded(tmp_path: Path, high_clip: Clip) -> None:
    with RtspTestServer(high_clip) as camera:
        agent = _agent(tmp_path, camera.url)
        await agent.start()
        echo = EchoShow(talk=None)
        try:
            assert agent.video is not None and not agent.video.passthrough
            tap = agent.video.subscribe()
            await echo.watch(lambda offer: agent.handle_offer("viewer-1", offer))
            assert await echo.wait_frames(15, timeout=10) >= 15
            first: EncodedFrame = await asyncio.wait_for(tap.recv(), 5)
            tap.stop()
            assert not agent.video.passthrough  # opened with the viewer, and transcoded
            assert agent.video.frames_encoded > 0
            # What viewers get is our constrained baseline, not the camera's High profile.
            sps = next(n for n in split_annexb(bytes(first.packet)) if nal_type(n) == NAL_SPS)
            assert parse_sps(sps).constrained_baseline
            r = echo.report()
            assert r.stamps_read >= 10  # the camera's pictures, decoded and re-encoded in order
        finally:
            await echo.close()
            await agent.stop()


async def test_baseline_mp4_file_is_passed_through(tmp_path: Path) -> None:
    import av

    from alexa_doorbell.camera.pattern import TestPattern

    path, frames = tmp_path / "clip.mp4", 10
    with av.open(str(path), "w") as out:  # MP4: length-prefixed NAL units and an avcC record
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.profile = "Baseline"
        stream.codec_context.options = {"x264-params": "bframes=0:keyint=30"}
        pattern = TestPattern(160, 120)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern.render(i + 1, 0.0), format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    src = H264PassthroughSource(str(path), loop=True)
    try:
        assert src.transcode_reason() is None
        packets = [bytes(await src.read_packet()) for _ in range(frames + 1)]
        decoder = av.CodecContext.create("h264", "r")
        counters = []
        for data in (packets[0], packets[frames]):  # the first IDR, and again after the loop
            assert [nal_type(n) for n in split_annexb(data)][:2] == [NAL_SPS, NAL_PPS]
            for picture in decoder.decode(av.Packet(data)):
                counters.append(read_stamp(picture.to_ndarray(format="gray")).counter)
        assert counters == [1, 1]
    finally:
        src.close()


@pytest.mark.parametrize("over_budget", ["transcode", "keep"])
async def test_passthrough_over_a_viewers_bandwidth_is_transcoded_or_kept(
    tmp_path: Path,
    baseline_camera: RtspTestServer,
    over_budget: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera's own stream cannot change its bitrate: a viewer whose offer allows
    less (b=AS) gets it re-encoded, or, with passthrough_over_budget = "keep", as it
    is, and the log says why once."""
    cam = CameraConfig(
        source=baseline_camera.url,
        width=320,
        height=240,
        fps=15,
        audio="silence",
        passthrough_over_budget=over_budget,
    )
    settings = Settings(cloud="local", data_dir=tmp_path, cameras=[cam])
    agent = CameraAgent(settings, signaling=False, preset="ultrafast")
    await agent.start()
    echo = EchoShow(talk=None)
    try:
        assert agent.video is not None

        def small(offer: str) -> str:  # this viewer asks for 20 kbit/s of video
            return offer.replace("b=AS:2500", "b=AS:20")

        await echo.watch(lambda offer: agent.handle_offer("viewer-1", small(offer)))
        assert await echo.wait_frames(10, timeout=10) >= 10
        await asyncio.sleep(2.5)  # the stream's bitrate known, then the next IDR
        stream = agent.video.passthrough_bitrate()
        assert stream is not None and stream > 20_000, stream
        before = echo.report().frames
        await asyncio.sleep(1.0)
        assert echo.report().frames > before + 5  # still decoding, either way
        said = [r for r in caplog.records if "passthrough cannot change" in r.getMessage()]
        if over_budget == "transcode":
            assert agent.video.transcoding and agent.video.frames_encoded > 0
            assert agent.video.encoder is not None
            assert agent.video.encoder.bitrate <= 19_000  # b=AS less RTP overhead
            assert len(said) == 1 and "re-encoding" in said[0].getMessage()
        else:
            assert not agent.video.transcoding and agent.video.frames_encoded == 0
            assert (
                len(said) == 1 and 'passthrough_over_budget = "transcode"' in said[0].getMessage()
            )
    finally:
        await echo.close()
        await agent.stop()
