"""The aiortc/aioice internals camera/rtc_hooks.py reaches into are still there.

Each hook gets a shape check (the attribute or method exists, holds what aiortc
put there, and aiortc's code still reads it where the hook relies on it) and,
where cheap, a behaviour check on the installed aiortc. A failure here after an
upgrade names the hook to rework before video, audio or ICE silently break.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aioice
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)

from alexa_doorbell.camera import bitrate, rtc_hooks

ROOT = Path(__file__).resolve().parents[2]
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def source(obj: Any) -> str:
    return inspect.getsource(obj)


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    conn = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield conn
    await conn.close()


def transceiver(pc: RTCPeerConnection, kind: str) -> RTCRtpTransceiver:
    return pc.addTransceiver(kind, direction="sendrecv")


# -- versions -----------------------------------------------------------------------
@pytest.mark.parametrize("package", ["aiortc", "aioice"])
def test_installed_and_pinned_versions_are_the_tested_ones(package: str) -> None:
    tested = rtc_hooks.TESTED_VERSIONS[package]
    assert version(package).startswith(tested + "."), (
        f"{package} {version(package)} is installed but camera/rtc_hooks.py was tested "
        f"with {tested}: re-check every hook (this file), then raise TESTED_VERSIONS and the pin"
    )
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    major, minor = map(int, tested.split("."))
    assert f"{package}>={tested},<{major}.{minor + 1}" in deps


def test_no_other_module_touches_aiortc_internals() -> None:
    """The hooks module is the one door: no other source names these internals."""
    internals = re.compile(
        r"_RTCRtp(Sender|Receiver)__|\._send_keyframe\b|\.receiver\._enabled\b"
        r"|iceGatherer\._connection|\._send_rtcp_nack\b|\._retransmit\b|H264Encoder\._|rtcrtpreceiver\.get_decoder"
        r"|(?<!self)\._(protocols|nominated|transport_policy)\b"  # aioice's Connection
    )
    hooks = ROOT / "src/alexa_doorbell/camera/rtc_hooks.py"
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("src", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != hooks
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if internals.search(line)
    ]
    assert not offenders, f"use camera/rtc_hooks.py instead: {offenders}"


# -- senders --------------------------------------------------------------------------
class _Payloads(Encoder):
    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise AssertionError("a pre-encoded packet must not be encoded again")

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        return packet.payloads, packet.timestamp


class _PacketTrack(MediaStreamTrack):
    kind = "video"

    async def recv(self) -> Any:
        packet = type("Encoded", (), {})()
        packet.payloads, packet.timestamp = [b"one", b"two"], 1234
        return packet


async def test_payload_encoder_is_used_for_pre_encoded_packets(pc: RTCPeerConnection) -> None:
    assert "if self.__encoder is None:" in source(RTCRtpSender._next_encoded_frame)
    sender = pc.addTransceiver(_PacketTrack(), direction="sendonly").sender
    assert rtc_hooks.payload_encoder(sender) is None  # aiortc creates one on the first frame
    ours = _Payloads()
    rtc_hooks.set_payload_encoder(sender, ours)
    assert rtc_hooks.payload_encoder(sender) is ours
    codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
    frame = await sender._next_encoded_frame(codec)
    assert frame is not None
    assert (frame.payloads, frame.timestamp) == ([b"one", b"two"], 1234)
    assert rtc_hooks.payload_encoder(sender) is ours


@pytest.mark.parametrize("fmt", [RTCP_PSFB_PLI, RTCP_PSFB_FIR])
async def test_keyframe_requests_reach_the_routed_callback(pc: RTCPeerConnection, fmt: int) -> None:
    sender = transceiver(pc, "video").sender
    assert callable(sender._send_keyframe)
    assert "self._send_keyframe()" in source(RTCRtpSender._handle_rtcp_packet)
    asked: list[int] = []
    rtc_hooks.route_keyframe_requests(sender, lambda: asked.append(fmt))
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
    assert asked == [fmt]


async def test_retransmissions_go_through_the_limit(pc: RTCPeerConnection) -> None:
    sender = transceiver(pc, "video").sender
    assert "await self._retransmit(seq)" in source(RTCRtpSender._handle_rtcp_packet)
    asked: list[int] = []
    rtc_hooks.limit_retransmissions(sender, lambda seq: asked.append(seq) or False)
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc)
    nack.lost = [7, 9]
    await sender._handle_rtcp_packet(nack)  # refused: nothing sent (no transport yet)
    assert asked == [7, 9]


async def test_receiver_reports_reach_public_stats_as_rfc3550_fixed_point(
    pc: RTCPeerConnection,
) -> None:
    """camera/bitrate.py reads the viewer's RR from getStats(): fractionLost is the
    report's 8-bit field (not the W3C fraction), jitter in RTP clock units."""
    sender = transceiver(pc, "video").sender
    report = RtcpReceiverInfo(
        ssrc=sender._ssrc,
        fraction_lost=64,
        packets_lost=5,
        highest_sequence=100,
        jitter=900,
        lsr=0,
        dlsr=0,
    )
    await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=1, reports=[report]))
    got = bitrate.remote_inbound(await sender.getStats())
    assert got is not None
    assert (got[1].fraction_lost, got[1].jitter_ms) == (0.25, 10.0)  # as camera/bitrate.py reads
    stats = (await sender.getStats()).values()
    remote = next(s for s in stats if s.type == "remote-inbound-rtp")
    assert (remote.fractionLost, remote.jitter, remote.packetsLost) == (64, 900, 5)
    assert "remote-inbound-rtp" in source(RTCRtpSender._handle_rtcp_packet)


def test_h264_payloads_round_trip_through_aiortcs_depacketizer() -> None:
    sps, pps = b"\x67\x42\xe0\x1f\xda\x02\x80\xbf\xe5", b"\x68\xce\x3c\x80"
    idr = b"\x65" + bytes(range(256)) * 20  # 5121 bytes: more than one packet
    access_unit = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x00\x01" + idr
    payloads = rtc_hooks.h264_payloads(access_unit)
    assert payloads[0][0] & 0x1F == 24  # STAP-A: SPS and PPS together
    assert [p[0] & 0x1F for p in payloads[1:]] == [28] * (len(payloads) - 1)  # FU-A
    assert all(len(p) <= 1300 for p in payloads)
    rebuilt = b"".join(H264PayloadDescriptor.parse(p)[1] for p in payloads)
    start = b"\x00\x00\x00\x01"
    assert rebuilt == start + sps + start + pps + start + idr


# -- receivers ------------------------------------------------------------------------
async def test_dropped_receiver_ignores_arriving_packets(pc: RTCPeerConnection) -> None:
    assert "if not self._enabled:" in source(RTCRtpReceiver._handle_rtp_packet)
    kept, dropped = transceiver(pc, "audio").receiver, transceiver(pc, "audio").receiver
    assert kept._enabled is True
    rtc_hooks.drop_incoming_media(dropped)
    for receiver in (kept, dropped):
        await receiver._handle_rtp_packet(RtpPacket(payload_type=111, ssrc=42), arrival_time_ms=0)
    # getSynchronizationSources lists the SSRCs a receiver took packets from.
    assert [s.source for s in kept.getSynchronizationSources()] == [42]
    assert dropped.getSynchronizationSources() == []


def _jitter_buffer(receiver: RTCRtpReceiver) -> JitterBuffer:
    return receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined,no-any-return]


async def test_jitter_buffer_replaced_with_the_prefetch_asked(pc: RTCPeerConnection) -> None:
    receiver = transceiver(pc, "audio").receiver
    default = _jitter_buffer(receiver)
    assert (default.capacity, default._prefetch) == (16, 4)  # aiortc's, which the hook shortens
    assert "self.__jitter_buffer.add(packet)" in source(RTCRtpReceiver._handle_rtp_packet)
    rtc_hooks.set_jitter_buffer(receiver, capacity=16, prefetch=2)
    buffer = _jitter_buffer(receiver)
    assert buffer is not default and buffer.capacity == 16
    # With prefetch 2 the first packet comes out once 2 more wait behind it.
    out = []
    for seq in range(4):
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960)
        packet._data = b"x"  # type: ignore[attr-defined]  # depayloaded, as aiortc sets it
        out.append(buffer.add(packet)[1])
    assert [f is not None for f in out] == [False, False, True, True]
    assert out[2] is not None and out[2].timestamp == 0


def _video_packet(seq: int, ts: int, payload: bytes, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(payload_type=99, sequence_number=seq, timestamp=ts, marker=int(marker))
    packet.payload = payload
    packet._data = payload  # type: ignore[attr-defined]  # depayloaded, as aiortc sets it
    return packet


SPS_STAP_A = bytes([24, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE])  # SPS and PPS aggregated
IDR_SLICE, P_SLICE = bytes([0x65, 1]), bytes([0x41, 1])


async def test_keyframe_skipping_buffer_replaces_the_video_one(pc: RTCPeerConnection) -> None:
    receiver = transceiver(pc, "video").receiver
    default = _jitter_buffer(receiver)
    assert default.capacity == 512 and default._is_video  # what it stands in for
    assert "self.__jitter_buffer.add(packet)" in source(RTCRtpReceiver._handle_rtp_packet)
    ours = rtc_hooks.KeyframeSkippingJitterBuffer()
    rtc_hooks.install_jitter_buffer(receiver, ours)
    assert _jitter_buffer(receiver) is ours
    # aiortc's internals it builds on
    assert {"_origin", "_packets", "_capacity"} <= set(vars(ours))
    assert callable(ours._remove_frame) and callable(ours.remove)


def test_a_hole_no_resend_fills_is_skipped_to_the_next_whole_keyframe() -> None:
    buffer = rtc_hooks.KeyframeSkippingJitterBuffer(give_up=10.0)
    plain = JitterBuffer(capacity=512, is_video=True)
    stream = [
        _video_packet(0, 1000, P_SLICE, marker=True),
        _video_packet(1, 2000, P_SLICE),  # seq 2, the rest of this frame, is lost
        _video_packet(3, 3000, SPS_STAP_A),  # a keyframe: SPS/PPS, then its slice
        _video_packet(4, 3000, IDR_SLICE, marker=True),
        _video_packet(5, 4000, P_SLICE, marker=True),
        _video_packet(6, 5000, P_SLICE, marker=True),
    ]
    ours = [buffer.add(p)[1] for p in stream]
    theirs = [plain.add(p)[1] for p in stream]
    assert [f.timestamp for f in ours if f] == [1000, 3000, 4000]
    assert [f.timestamp for f in theirs if f] == [1000]  # aiortc waits for seq 2
    assert buffer.skipped == 1
    # No keyframe after the hole: nothing to skip to, it waits like aiortc's.
    waiting = rtc_hooks.KeyframeSkippingJitterBuffer(give_up=10.0)
    for p in (stream[0], stream[1], _video_packet(3, 3000, P_SLICE, marker=True)):
        waiting.add(p)
    assert waiting.skipped == 0


def test_a_hole_held_too_long_asks_for_a_keyframe() -> None:
    buffer = rtc_hooks.KeyframeSkippingJitterBuffer(give_up=0.0)
    buffer.add(_video_packet(0, 1000, P_SLICE, marker=True))
    buffer.add(_video_packet(1, 2000, P_SLICE, marker=True))  # frame 1000 out
    asked = [
        buffer.add(_video_packet(seq, seq * 1000, P_SLICE, marker=True))[0] for seq in (3, 4, 5)
    ]
    assert any(asked) and buffer.keyframes_asked >= 1


async def test_nack_generator_replaced_and_read_on_every_packet(pc: RTCPeerConnection) -> None:
    receiver = transceiver(pc, "video").receiver
    default = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
    assert isinstance(default, NackGenerator)
    assert "self.__nack_generator.add(packet)" in source(RTCRtpReceiver._handle_rtp_packet)
    ours = NackGenerator()
    rtc_hooks.set_nack_generator(receiver, ours)
    assert receiver._RTCRtpReceiver__nack_generator is ours  # type: ignore[attr-defined]


def test_send_nack_takes_the_media_ssrc_and_lost_sequence_numbers() -> None:
    method = RTCRtpReceiver._send_rtcp_nack
    assert inspect.iscoroutinefunction(method)
    assert list(inspect.signature(method).parameters) == ["self", "media_ssrc", "lost"]


def test_decoder_factory_is_what_receivers_create_decoders_with() -> None:
    assert rtc_hooks.decoder_factory() is aiortc.rtcrtpreceiver.get_decoder
    assert "decoder = get_decoder(codec)" in source(aiortc.rtcrtpreceiver.decoder_worker)
    real = rtc_hooks.decoder_factory()
    made: list[str] = []

    def counting(codec: RTCRtpCodecParameters) -> Any:
        made.append(codec.mimeType)
        return real(codec)

    rtc_hooks.set_decoder_factory(counting)
    try:
        assert aiortc.rtcrtpreceiver.get_decoder(OPUS) is not None
        assert made == ["audio/opus"]
    finally:
        rtc_hooks.set_decoder_factory(real)
    assert rtc_hooks.decoder_factory() is real
    assert get_encoder(OPUS) is not None  # the codec registry itself is untouched


# -- ICE ---------------------------------------------------------------------------------
async def test_ice_connection_is_aioices(pc: RTCPeerConnection) -> None:
    conn = rtc_hooks.ice_connection(transceiver(pc, "audio"))
    assert isinstance(conn, aioice.Connection)
    params = inspect.signature(aioice.Connection.get_component_candidates).parameters
    assert params["timeout"].default == 5  # gather.py keeps its own bound instead
    assert "self.get_component_candidates(component=component, addresses=addresses)" in (
        source(aioice.Connection.gather_candidates)
    )


async def test_gathering_can_be_replaced_and_its_relays_paired(pc: RTCPeerConnection) -> None:
    """camera/gather.py: its own gathering, relays added to the sockets ICE pairs from."""
    conn = rtc_hooks.ice_connection(transceiver(pc, "audio"))
    conn.stun_server = ("127.0.0.1", 9)  # what aiortc would set from its iceServers
    calls: list[int] = []
    original = conn.get_component_candidates

    async def gather(component: int, addresses: list[str], timeout: int = 5) -> list[Any]:
        calls.append(component)
        return await original(component=component, addresses=addresses)

    rtc_hooks.replace_gathering(conn, gather)
    assert conn.stun_server is None and conn.turn_server is None  # told no server
    await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), 4)
    assert calls == [1] and "typ host" in pc.localDescription.sdp
    protocols = rtc_hooks.ice_protocols(conn)
    assert protocols and all(isinstance(p, aioice.ice.StunProtocol) for p in protocols)
    assert protocols is conn._protocols  # the live list, not a copy
    assert "for protocol in self._protocols:" in source(aioice.Connection._pair_remote_candidate)
    assert rtc_hooks.relay_only(conn) is False
    assert rtc_hooks.nominated_pair(conn) is None  # not connected
    assert "self._nominated[" in source(aioice.Connection.check_complete)
