"""Offer normalisation, table-tested, and checked against aiortc's own negotiation."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from alexa_doorbell.camera.sdp import (
    ECHO_H264_FMTP,
    OfferError,
    normalize_offer,
    summarize,
)
from tests.sdp_samples import ECHO_SHOW_OFFER, FP


def _replace(old: str, new: str, sdp: str = ECHO_SHOW_OFFER) -> str:
    assert old in sdp, old
    return sdp.replace(old, new)


def test_echo_show_offer_gets_h264_fmtp_and_static_rtpmaps() -> None:
    out = normalize_offer(ECHO_SHOW_OFFER)
    assert f"a=fmtp:99 {ECHO_H264_FMTP}\r\n" in out.sdp
    assert "a=rtpmap:0 PCMU/8000\r\n" in out.sdp
    assert "a=rtpmap:8 PCMA/8000\r\n" in out.sdp
    assert len(out.changes) == 2
    video = out.summary.first("video")
    assert video.codecs[0].parameters["packetization-mode"] == "1"
    assert [c.name for c in out.summary.first("audio").codecs] == ["opus", "PCMU", "PCMA"]
    assert out.summary.name == "a 2 z"
    assert out.summary.bundle == ("audio", "video")


def test_normalising_twice_changes_nothing() -> None:
    once = normalize_offer(ECHO_SHOW_OFFER).sdp
    again = normalize_offer(once)
    assert again.sdp == once
    assert again.changes == ()


@pytest.mark.parametrize(
    ("old", "new", "expect_in", "expect_out"),
    [
        # rtpmap present for 0 but not 8: only 8 is added
        (
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            None,
        ),
        # an existing H264 fmtp is left alone
        (
            "a=rtpmap:99 H264/90000",
            "a=rtpmap:99 H264/90000\r\na=fmtp:99 packetization-mode=1;profile-level-id=42001f",
            "a=fmtp:99 packetization-mode=1;profile-level-id=42001f",
            ECHO_H264_FMTP,
        ),
        # fmtp for a payload type that has no codec would crash aiortc's parser
        (
            "a=fmtp:96 minptime=10;useinbandfec=1",
            "a=fmtp:96 minptime=10;useinbandfec=1\r\na=fmtp:120 apt=99",
            None,
            "a=fmtp:120",
        ),
        # LF-only line endings are accepted and written back as CRLF
        ("\r\n", "\n", "a=mid:video\r\n", None),
    ],
)
def test_rewrites(old: str, new: str, expect_in: str | None, expect_out: str | None) -> None:
    out = normalize_offer(_replace(old, new))
    if expect_in:
        assert expect_in in out.sdp
    if expect_out:
        assert expect_out not in out.sdp


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        ("", "empty"),
        ("hello world", "not an SDP"),
        ("v=0\r\ns=x\r\nt=0 0\r\n", "no media"),
        (
            _replace(
                "a=rtpmap:99 H264/90000",
                "a=rtpmap:99 H264/90000\r\na=fmtp:99 packetization-mode=1;profile-level-id=640c1f",
            ),
            "profile-level-id=640c1f",
        ),
        (
            _replace(
                "a=rtpmap:99 H264/90000",
                "a=rtpmap:99 H264/90000\r\na=fmtp:99 profile-level-id=42e01f",
            ),
            "packetization-mode=0",
        ),
        (_replace("a=rtpmap:99 H264/90000", "a=rtpmap:99 AV1/90000"), "AV1/99"),
        (
            _replace(
                "m=audio 1 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 1 UDP/TLS/RTP/SAVPF 96"
            ).replace("a=rtpmap:96 opus/48000/2", "a=rtpmap:96 speex/16000"),
            "audio m-line",
        ),
        (ECHO_SHOW_OFFER.replace("a=ice-ufrag:EcHo\r\n", ""), "ice-ufrag"),
        (ECHO_SHOW_OFFER.replace(f"a=fingerprint:{FP}\r\n", ""), "fingerprint"),
        (
            _replace("m=video 1 UDP/TLS/RTP/SAVPF 99", "m=video 1 UDP/TLS/RTP/SAVPF 99 abc"),
            "invalid payload",
        ),
    ],
)
def test_unanswerable_offers_raise_with_a_reason(sdp: str, reason: str) -> None:
    with pytest.raises(OfferError, match=reason):
        normalize_offer(sdp)


def test_summarize_reads_directions_ports_candidates() -> None:
    s = summarize(ECHO_SHOW_OFFER)
    audio, video = s.media
    assert (audio.kind, audio.port, audio.direction, audio.mid) == ("audio", 1, "sendrecv", "audio")
    assert video.active
    assert any(" tcp " in c for c in video.candidates)
    assert [c.payload_type for c in audio.codecs] == [96, 0, 8]  # static types understood


async def _answer(offer: str) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        answer = await pc.createAnswer()
        return answer.sdp
    finally:
        await pc.close()


async def test_aiortc_rejects_raw_echo_offer_but_accepts_normalised_one() -> None:
    # The reason the normaliser exists: without it aiortc refuses the whole offer.
    with pytest.raises(Exception, match="video"):
        await _answer(ECHO_SHOW_OFFER)
    answer = summarize(await _answer(normalize_offer(ECHO_SHOW_OFFER).sdp))
    video = answer.first("video")
    assert video.active and video.codec_names() == ["H264"]
    assert video.codecs[0].payload_type == 99
    assert video.codecs[0].parameters["profile-level-id"] == "42e01f"
    assert answer.first("audio").codec_names()[0] == "OPUS"


def test_video_bandwidth_is_read_from_b_as() -> None:
    summary = normalize_offer(ECHO_SHOW_OFFER).summary
    assert summary is not None
    video, audio = summary.first("video"), summary.first("audio")
    assert video is not None and video.bandwidth_kbps == 2500  # the Echo's video limit
    assert audio is not None and audio.bandwidth_kbps is None  # none given: no limit
    odd = ECHO_SHOW_OFFER.replace("b=AS:2500", "b=AS:lots")
    assert summarize(odd).first("video").bandwidth_kbps is None  # unreadable: ignored
