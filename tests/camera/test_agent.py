"""The camera agent answering real aiortc viewers directly over loopback (no signaling)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from alexa_doorbell.camera import rtc_hooks
from alexa_doorbell.camera.agent import (
    CameraAgent,
    OfferError,
    ViewerLimitError,
    alexa_session_key,
    session_key,
)
from alexa_doorbell.camera.media import ToneSource
from alexa_doorbell.camera.sdp import summarize
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.skill.rtc import sender_client_id
from tests.helpers.viewer import FrameCollector, vp8_only_offer


def small_settings(tmp_path: Path, **overrides: object) -> Settings:
    cam = CameraConfig(
        width=320, height=240, fps=15, audio="tone", sink=str(tmp_path / "talk-{session}.wav")
    )
    return Settings(cloud="local", data_dir=tmp_path, cameras=[cam], **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[CameraAgent]:
    a = CameraAgent(small_settings(tmp_path, max_viewers=3), signaling=False, preset="ultrafast")
    await a.start()
    yield a
    await a.stop()


async def _watch(agent: CameraAgent, peer_id: str, **kw: object) -> tuple[EchoShow, str]:
    echo = EchoShow(**kw)  # type: ignore[arg-type]
    answer = await echo.watch(lambda offer: agent.handle_offer(peer_id, offer))
    return echo, answer


async def test_echo_show_offer_gets_video_and_two_way_audio(agent: CameraAgent) -> None:
    peer = sender_client_id("amzn1.echo-session/1")
    echo, answer = await _watch(agent, peer)
    try:
        s = summarize(answer)
        video, audio = s.first("video"), s.first("audio")
        assert video.active and video.direction == "sendonly"
        assert video.codec_names() == ["H264"] and video.codecs[0].payload_type == 99
        assert video.codecs[0].parameters["packetization-mode"] == "1"
        assert audio.active and audio.direction == "sendrecv"  # full duplex camera
        assert audio.codec_names()[0] == "OPUS"
        assert video.candidates, "Alexa does not trickle: the answer must carry candidates"
        assert await echo.wait_frames(20, timeout=10) >= 20
        await asyncio.sleep(0.5)
        r = echo.report()
        assert r.video_codec == "H264" and (r.width, r.height) == (320, 240)
        assert r.last_counter - r.first_counter >= 15  # the pattern's counter advances
        assert r.stamps_read >= 18
        assert 0 < r.latency_ms_median < 1000
        assert r.audio_seconds > 0.5 and r.audio_rms > 0.05  # the camera's tone reached the Echo
        sink = agent.sessions[peer].sink
        assert sink.seconds > 0.5 and sink.rms > 0.05  # the Echo's talk-back reached the camera
    finally:
        await echo.close()


async def test_discard_sink_keeps_two_way_audio_but_decodes_no_talk_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cam = CameraConfig(width=320, height=240, fps=15, audio="tone", sink="discard", talk="full")
    settings = Settings(cloud="local", data_dir=tmp_path, cameras=[cam])
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        assert "dropped unheard" in caplog.text  # talk set without a sink: a warning
        echo, answer = await _watch(agent, "talker", talk="tone")
        try:
            # The answer still says what discovery advertised (full duplex).
            assert summarize(answer).first("audio").direction == "sendrecv"
            assert await echo.wait_frames(10, timeout=10) >= 10
            session = agent.sessions["talker"]
            dtls = session.pc.getTransceivers()[0].receiver.transport
            rx = dtls._get_stats()[dtls._stats_id].packetsReceived
            await asyncio.sleep(1.0)
            assert echo.report().talk_seconds > 0.8  # the Echo kept talking...
            # ...it arrived: 50 packets of 20 ms a second; 40 counted on a loaded machine
            assert dtls._get_stats()[dtls._stats_id].packetsReceived - rx > 25
            assert session.sink is None  # ...and nothing decoded it
            for t in session.pc.getTransceivers():
                assert t.receiver.track is None or t.receiver.track._queue.qsize() == 0
            assert echo.report().audio_seconds > 0.5  # the camera's own audio still flows
        finally:
            await echo.close()


async def test_a_sink_that_cannot_open_drops_talk_back_not_the_picture(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # the sink's folder cannot be made: WavSink fails to open
    cam = CameraConfig(width=320, height=240, fps=15, audio="tone", sink=str(blocker / "talk.wav"))
    settings = Settings(cloud="local", data_dir=tmp_path, cameras=[cam])
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        echo, _ = await _watch(agent, "talker", talk="tone")
        try:
            assert await echo.wait_frames(10, timeout=10) >= 10
            assert "talk-back from talker is dropped" in caplog.text
            session = agent.sessions["talker"]
            assert session.sink is None
            await asyncio.sleep(0.5)  # what arrives is dropped, not queued for nobody
            for t in session.pc.getTransceivers():
                assert t.receiver.track is None or t.receiver.track._queue.qsize() == 0
        finally:
            await echo.close()


class _Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.source = ToneSource(330.0)

    async def recv(self) -> av.AudioFrame:
        return await self.source.read()


async def test_media_nobody_reads_is_dropped_not_queued(agent: CameraAgent) -> None:
    """A viewer sending on m-lines the camera does not listen to cannot grow its memory."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(_Tone(), direction="sendrecv")  # talk-back to the camera's sink
    pc.addTransceiver(_Tone(), direction="sendonly")  # a second microphone
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await agent.handle_offer("two-mics", pc.localDescription.sdp)
    audio = [m for m in summarize(answer).media if m.kind == "audio"]
    assert [m.direction for m in audio] == ["sendrecv", "recvonly"]
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    try:
        session = agent.sessions["two-mics"]
        for _ in range(60):
            if session.sink is not None and session.sink.seconds > 1.0:
                break
            await asyncio.sleep(0.05)
        assert session.sink is not None and session.sink.seconds > 1.0  # the first is heard
        second = session.pc.getTransceivers()[2]  # created by aiortc for the second m-line
        assert second.receiver.track is not None
        # aiortc would decode it into a queue that nobody reads, ~50 frames a second.
        assert second.receiver.track._queue.qsize() == 0
    finally:
        await pc.close()


async def test_viewers_share_one_encoding_and_one_packetization(agent: CameraAgent) -> None:
    from alexa_doorbell.camera.fanout import SharedPayloadEncoder

    echoes = [(await _watch(agent, f"viewer-{i}"))[0] for i in range(2)]
    try:
        for echo in echoes:
            assert await echo.wait_frames(10, timeout=10) >= 10
        await asyncio.sleep(0.5)
        for echo in echoes:  # both hear the camera's tone, from one Opus encoder
            assert echo.report().audio_rms > 0.05
        assert agent.audio.frames_encoded <= agent.audio.frames_read + 1
        assert agent.video.frames_encoded <= agent.video.frames_read
        for session in agent.sessions.values():  # aiortc only adds RTP headers and SRTP
            for tr in session.pc.getTransceivers():
                assert isinstance(rtc_hooks.payload_encoder(tr.sender), SharedPayloadEncoder)
    finally:
        for echo in echoes:
            await echo.close()


async def test_pli_from_a_viewer_makes_a_keyframe(agent: CameraAgent) -> None:
    echo, _ = await _watch(agent, "viewer-pli")
    try:
        await echo.wait_frames(5)
        await asyncio.sleep(0.3)
        session = agent.sessions["viewer-pli"]
        sender = next(t.sender for t in session.pc.getTransceivers() if t.kind == "video")
        receiver = next(t.receiver for t in echo.pc.getTransceivers() if t.kind == "video")
        before = agent.video.keyframes
        await receiver._send_rtcp_pli(sender._ssrc)  # a real RTCP PLI over the wire
        for _ in range(20):
            await asyncio.sleep(0.05)
            if agent.video.keyframes > before:
                break
        assert agent.video.keyframes > before
    finally:
        await echo.close()


async def test_browser_offer_prefers_h264_and_vp8_only_offer_still_works(
    agent: CameraAgent,
) -> None:
    # A plain aiortc offer lists VP8 first, like Chrome: the camera still picks H.264.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await agent.handle_offer("browser-1", pc.localDescription.sdp)
    assert summarize(answer).first("video").codec_names()[0] == "H264"
    assert summarize(answer).first("audio").direction == "sendonly"
    await pc.close()

    vp8 = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    offer = await vp8_only_offer(vp8)
    received = FrameCollector(vp8)
    answer = await agent.handle_offer("browser-vp8", offer)
    assert summarize(answer).first("video").codec_names()[0] == "VP8"
    await vp8.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    assert await received.wait(3) >= 3
    await vp8.close()


async def test_garbage_offers_end_only_their_session(agent: CameraAgent) -> None:
    echo, _ = await _watch(agent, "good")
    try:
        await echo.wait_frames(3)
        for bad in ("", "garbage", "v=0\r\nm=video 9 RTP/AVP 31\r\n", echo.offer_sdp[:200]):
            with pytest.raises(OfferError):
                await agent.handle_offer("bad", bad)
        high = echo.offer_sdp.replace(
            "a=rtpmap:99 H264/90000",
            "a=rtpmap:99 H264/90000\r\na=fmtp:99 profile-level-id=640c1f;packetization-mode=1",
        )
        with pytest.raises(OfferError, match="640c1f"):
            await agent.handle_offer("high-profile", high)
        assert list(agent.sessions) == ["good"]
        before = echo.report().frames
        await echo.wait_frames(before + 5)
        assert echo.report().frames >= before + 5  # the good viewer kept its video
        assert agent.counters["rejected"] == 5
    finally:
        await echo.close()


async def test_viewer_limit_refuses_the_next_viewer(agent: CameraAgent) -> None:
    echoes = [(await _watch(agent, f"v{i}"))[0] for i in range(3)]
    try:
        with pytest.raises(ViewerLimitError, match="max 3"):
            await _watch(agent, "v3")
        assert len(agent.sessions) == 3
        await agent.close_session("v0", "test")
        extra, _ = await _watch(agent, "v3")  # a freed slot is usable again
        echoes.append(extra)
    finally:
        for e in echoes:
            await e.close()


async def test_session_ends_at_max_length_and_frees_everything(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, max_session_seconds=1.0)
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        echo, _ = await _watch(agent, "short")
        await echo.wait_frames(3)
        for _ in range(40):
            if not agent.sessions:
                break
            await asyncio.sleep(0.1)
        assert not agent.sessions
        assert not agent.video.tracks and not agent.audio.tracks
        assert agent.counters["ended"] == 1
        await echo.close()


async def test_no_leak_over_many_sessions(agent: CameraAgent) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def one(i: int) -> None:
        echo = EchoShow(talk=None)
        await echo.watch(lambda offer: agent.handle_offer(f"leak-{i}", offer))
        await agent.close_session(f"leak-{i}", "test")
        await echo.close()

    for i in range(5):
        await one(i)
    baseline = fds()
    for i in range(5, 45):
        await one(i)
    assert not agent.sessions and not agent.video.tracks and not agent.audio.tracks
    assert fds() <= baseline + 5


def test_alexa_session_ids_round_trip() -> None:
    sid = "amzn1.ask.rtc.session/ABC+def=="
    peer = sender_client_id(sid)
    assert peer.startswith("alexa.") and len(peer) <= 256
    assert alexa_session_key(peer) == session_key(sid)
    assert alexa_session_key("viewer-123") is None


def test_skill_sender_ids_map_to_store_sessions() -> None:
    """The id the skill sends with SendAlexaOfferToMaster leads back to the stored session."""
    long_id = "amzn1.echo-api.session." + "a.b/" * 80  # clipped to fit a SenderClientId
    for sid in ("amzn1.echo-api.session.1ca8f832-50cb", "amzn1.ask.rtc.session/ABC+def==", long_id):
        assert alexa_session_key(sender_client_id(sid)) == session_key(sid)


async def test_candidates_from_viewers_that_never_offer_are_bounded(agent: CameraAgent) -> None:
    cand = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    for i in range(500):
        for _ in range(60):
            await agent.add_candidate(f"viewer-{i}", cand)
    pending = agent._pending_candidates
    assert len(pending) == 2 * agent.settings.max_viewers  # the most recent ones only
    assert "viewer-499" in pending and "viewer-0" not in pending
    assert all(len(c) == 50 for c in pending.values())
