"""The simulated Echo Show offers what a real one offers (docs/PROTOCOLS.md §5)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from alexa_doorbell.camera.pattern import TestPattern
from alexa_doorbell.camera.sdp import normalize_offer, summarize
from alexa_doorbell.cloud.echo import EchoShow, echo_show_offer, save_png


async def test_offer_has_the_echo_show_shape() -> None:
    echo = EchoShow()
    try:
        sdp = await echo.create_offer()
    finally:
        await echo.close()
    s = summarize(sdp)
    assert s.name == "a 2 z"
    assert len(s.bundle) == 2
    audio, video = s.media
    assert (audio.kind, audio.port, audio.protocol) == ("audio", 1, "UDP/TLS/RTP/SAVPF")
    assert (video.kind, video.port) == ("video", 1)
    assert audio.direction == video.direction == "sendrecv"
    assert "m=audio 1 UDP/TLS/RTP/SAVPF 96 0 8\r\n" in sdp
    assert "a=rtpmap:0 " not in sdp and "a=rtpmap:8 " not in sdp  # static types unmapped
    assert "m=video 1 UDP/TLS/RTP/SAVPF 99\r\n" in sdp
    assert "a=rtpmap:99 H264/90000\r\n" in sdp
    assert "a=fmtp:99" not in sdp  # no profile-level-id, no packetization-mode
    for fb in ("nack", "nack pli", "ccm fir"):
        assert f"a=rtcp-fb:99 {fb}\r\n" in sdp
    assert "b=AS:2500\r\n" in sdp
    assert "a=setup:actpass" in sdp and "a=rtcp-mux" in sdp
    assert any(" tcp " in c for c in video.candidates)
    assert any(" udp " in c for c in video.candidates)
    assert "VP8" not in sdp and "rtx" not in sdp
    # ...and the camera's normaliser makes it acceptable
    assert (
        normalize_offer(sdp).summary.first("video").codecs[0].parameters["packetization-mode"]
        == "1"
    )


def test_rewrite_drops_rtx_vp8_and_fmtp_and_adds_a_tcp_candidate() -> None:
    sample = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 97 98 99\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        "a=rtpmap:97 VP8/90000\r\na=rtpmap:98 rtx/90000\r\na=fmtp:98 apt=97\r\n"
        "a=rtpmap:99 H264/90000\r\na=fmtp:99 packetization-mode=1\r\n"
        "a=ssrc-group:FID 1 2\r\na=ssrc:1 cname:x\r\na=ssrc:2 cname:x\r\n"
        "a=candidate:abc 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
    )
    out = echo_show_offer(sample)
    assert echo_show_offer(out).count("a=candidate:") == out.count("a=candidate:") + 1
    assert "a=ssrc:2 " not in out and "a=ssrc-group" not in out
    assert "a=fmtp" not in out
    assert "a=candidate:abc9 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active" in out


def test_snapshot_png_is_a_real_picture(tmp_path: Path) -> None:
    frame = av.VideoFrame.from_ndarray(TestPattern(320, 240).render(7), format="yuv420p")
    path = save_png(frame, tmp_path / "snap.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with av.open(str(path)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert img.shape == (240, 320, 3)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 5  # not one flat colour
