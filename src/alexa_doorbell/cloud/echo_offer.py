"""What a simulated Echo Show offers, and what it reads of Discovery and the camera's answer.

Pure SDP text: :func:`echo_show_offer` turns aiortc's offer into the shape of a real
Echo Show's (docs/PROTOCOLS.md §5); :func:`full_duplex_of` and
:func:`answer_audio_direction` are what decide how the Echo lets the user talk.
"""

from __future__ import annotations

from typing import Any

ECHO_SESSION_NAME = "a 2 z"
ECHO_VIDEO_PT = 99
ECHO_AUDIO_FMTS = "96 0 8"


def full_duplex_of(discovery: Any) -> bool | None:
    """``isFullDuplexAudioSupported`` from a Discover.Response endpoint (or its capabilities)."""
    if isinstance(discovery, bool) or discovery is None:
        return discovery
    caps = discovery.get("capabilities", []) if isinstance(discovery, dict) else discovery
    for cap in caps:
        if cap.get("interface") == "Alexa.RTCSessionController":
            value = (cap.get("configuration") or {}).get("isFullDuplexAudioSupported", False)
            return value is True or str(value).lower() == "true"
    raise ValueError("the endpoint has no Alexa.RTCSessionController: not a camera")


def answer_audio_direction(answer_sdp: str) -> str | None:
    """The camera's direction on the answer's first audio m-line (None: no audio)."""
    direction: str | None = None
    in_audio = False
    for line in answer_sdp.splitlines():
        if line.startswith("m="):
            if in_audio:
                break
            in_audio = line.startswith("m=audio") and not line.startswith("m=audio 0 ")
            direction = "sendrecv" if in_audio else None
        elif in_audio and line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive"):
            direction = line[2:]
    return direction


def echo_show_offer(sdp: str, *, tcp_candidate: bool = True) -> str:
    """Rewrite an aiortc offer into the shape of an Echo Show's offer.

    ``s=a 2 z``; port 1; audio ``96 0 8`` with only Opus mapped (the static
    types 0/8 listed without ``a=rtpmap``); video a single ``H264/90000`` at
    PT 99 with no ``a=fmtp``, ``b=AS:2500`` and nack / nack pli / ccm fir;
    host candidates on UDP plus a TCP one. ICE, DTLS, mids, BUNDLE and SSRCs
    are kept so the aiortc peer can still use the answer.
    """
    out: list[str] = []
    kind = ""
    first_udp: str | None = None
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("s="):
            out.append(f"s={ECHO_SESSION_NAME}")
            continue
        if line.startswith("m="):
            _end_section(out, kind, first_udp, tcp_candidate)
            first_udp = None
            kind, _port, proto, *_ = line[2:].split()
            fmts = ECHO_AUDIO_FMTS if kind == "audio" else str(ECHO_VIDEO_PT)
            out.append(f"m={kind} 1 {proto} {fmts}")
            continue
        if kind in ("audio", "video"):
            if line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:", "b=")):
                continue  # replaced at the end of the section
            if line.startswith("a=ssrc-group:"):
                continue  # no RTX on an Echo
            if line.startswith("a=candidate:") and " udp " in line.lower() and first_udp is None:
                first_udp = line
        out.append(line)
        if kind == "video" and line.startswith("c="):
            out.append("b=AS:2500")
    _end_section(out, kind, first_udp, tcp_candidate)
    return "\r\n".join(_drop_rtx_ssrcs(out)) + "\r\n"


def _end_section(out: list[str], kind: str, first_udp: str | None, tcp: bool) -> None:
    if kind == "audio":
        out += ["a=rtpmap:96 opus/48000/2", "a=fmtp:96 minptime=10;useinbandfec=1"]
    elif kind == "video":
        out += [
            f"a=rtpmap:{ECHO_VIDEO_PT} H264/90000",
            f"a=rtcp-fb:{ECHO_VIDEO_PT} nack",
            f"a=rtcp-fb:{ECHO_VIDEO_PT} nack pli",
            f"a=rtcp-fb:{ECHO_VIDEO_PT} ccm fir",
        ]
    if kind and tcp and first_udp:
        bits = first_udp.split()
        # candidate:<foundation> <component> udp <priority> <ip> <port> typ host ...
        out.append(f"{bits[0]}9 {bits[1]} tcp 1518280447 {bits[4]} 9 typ host tcptype active")


def _drop_rtx_ssrcs(lines: list[str]) -> list[str]:
    """Keep only the first SSRC of each m-section (the media one, not RTX)."""
    result: list[str] = []
    first: str | None = None
    for line in lines:
        if line.startswith("m="):
            first = None
        if line.startswith("a=ssrc:"):
            ssrc = line[7:].split()[0]
            if first is None:
                first = ssrc
            elif ssrc != first:
                continue
        result.append(line)
    return result
