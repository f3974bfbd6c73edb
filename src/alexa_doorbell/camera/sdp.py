"""Offer normalisation: make any viewer's SDP offer acceptable to aiortc.

Pure text in, text out (docs/PROTOCOLS.md §5). Echo Show devices offer
``H264/90000`` with no ``a=fmtp`` line, which aiortc reads as
packetization-mode 0 and rejects whole; they also list the static payload
types 0 (PCMU) and 8 (PCMA) without ``a=rtpmap``, which aiortc then ignores.
:func:`normalize_offer` repairs both, drops attribute lines that would crash
aiortc's parser, and raises :class:`OfferError` with a readable reason for an
offer the camera cannot answer at all, so one bad offer ends one session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from alexa_doorbell.kvs.messages import REFUSAL_ATTR

# What an fmtp-less H.264 offer is taken to mean: constrained baseline 3.1,
# non-interleaved packetization (what Echo Show devices decode).
ECHO_H264_FMTP = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

# Static RTP payload types (RFC 3551) that aiortc can encode.
STATIC_AUDIO = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000"}

AUDIO_CODECS = {"opus", "pcmu", "pcma", "g722"}
# profile_idc 0x42 = Baseline / Constrained Baseline: the profiles aiortc offers.
_H264_SENDABLE_PROFILE_IDC = {0x42}

_RTPMAP_RE = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)(?:/(\d+))?\s*$")
_PT_ATTR_RE = re.compile(r"^a=(fmtp|rtcp-fb):(\d+|\*)\b")
_MLINE_RE = re.compile(r"^m=(\w+) (\d+)(?:/\d+)? ([A-Za-z/]+) ?(.*)$")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class OfferError(ValueError):
    """An offer the camera cannot answer; the message says why, for the log."""


@dataclass(frozen=True)
class Codec:
    payload_type: int
    name: str  # as in a=rtpmap, e.g. "H264", "opus", "PCMU"
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None

    @property
    def parameters(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in (self.fmtp or "").split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip()] = v.strip()
        return out


@dataclass(frozen=True)
class Media:
    """One m-line, summarised: enough for decisions, logs and test assertions."""

    kind: str
    port: int
    protocol: str
    direction: str
    mid: str | None
    codecs: tuple[Codec, ...]
    candidates: tuple[str, ...] = ()
    # b=AS (RFC 4566 5.8): the most the offerer wants on this m-line, kbit/s; the
    # Echo Show offers b=AS:2500 on video. None: no limit given.
    bandwidth_kbps: int | None = None

    @property
    def active(self) -> bool:
        """Port 0 rejects the m-line; anything else (Echo uses 1, aiortc 9) is live."""
        return self.port != 0 and self.direction != "inactive"

    def codec_names(self) -> list[str]:
        return [c.name.upper() for c in self.codecs]


@dataclass(frozen=True)
class SessionSummary:
    name: str
    bundle: tuple[str, ...]
    media: tuple[Media, ...]

    def first(self, kind: str) -> Media | None:
        return next((m for m in self.media if m.kind == kind), None)


@dataclass(frozen=True)
class NormalizedOffer:
    sdp: str
    changes: tuple[str, ...] = field(default=())
    summary: SessionSummary | None = None


def _sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    session: list[str] = []
    media: list[list[str]] = []
    for raw in sdp.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    return session, media


def _join(session: list[str], media: list[list[str]]) -> str:
    lines = session + [line for section in media for line in section]
    return "\r\n".join(lines) + "\r\n"


def _section_codecs(section: list[str]) -> tuple[Codec, ...]:
    m = _MLINE_RE.match(section[0])
    fmts = m.group(4).split() if m else []
    rtpmaps: dict[int, tuple[str, int, int | None]] = {}
    fmtps: dict[int, str] = {}
    for line in section[1:]:
        if rm := _RTPMAP_RE.match(line):
            ch = int(rm.group(4)) if rm.group(4) else None
            rtpmaps[int(rm.group(1))] = (rm.group(2), int(rm.group(3)), ch)
        elif line.startswith("a=fmtp:"):
            pt, _, value = line[7:].partition(" ")
            if pt.isdigit():
                fmtps[int(pt)] = value.strip()
    out = []
    for f in fmts:
        if not f.isdigit():
            continue
        pt = int(f)
        if pt in rtpmaps:
            name, rate, ch = rtpmaps[pt]
        elif pt in STATIC_AUDIO:
            name, rate_s = STATIC_AUDIO[pt].split("/")
            rate, ch = int(rate_s), None
        else:
            continue
        out.append(Codec(pt, name, rate, ch, fmtps.get(pt)))
    return tuple(out)


def summarize(sdp: str) -> SessionSummary:
    """Parse the parts of an SDP this project reasons about (offers and answers)."""
    session, sections = _sections(sdp)
    name = next((line[2:] for line in session if line.startswith("s=")), "")
    bundle: tuple[str, ...] = ()
    for line in session:
        if line.startswith("a=group:BUNDLE"):
            bundle = tuple(line.split()[1:])
    session_dir = next((d for d in DIRECTIONS for ln in session if ln == f"a={d}"), "sendrecv")
    media = []
    for section in sections:
        m = _MLINE_RE.match(section[0])
        if not m:
            raise OfferError(f"malformed media line {section[0]!r}")
        direction = next(
            (d for d in DIRECTIONS for ln in section[1:] if ln == f"a={d}"), session_dir
        )
        mid = next((ln[6:] for ln in section if ln.startswith("a=mid:")), None)
        cands = tuple(ln[12:] for ln in section if ln.startswith("a=candidate:"))
        bandwidth = next(
            (int(ln[5:]) for ln in section if ln.startswith("b=AS:") and ln[5:].isdigit()), None
        )
        media.append(
            Media(
                kind=m.group(1),
                port=int(m.group(2)),
                protocol=m.group(3),
                direction=direction,
                mid=mid,
                codecs=_section_codecs(section),
                candidates=cands,
                bandwidth_kbps=bandwidth,
            )
        )
    return SessionSummary(name, bundle, tuple(media))


def h264_sendable(codec: Codec) -> tuple[bool, str]:
    """Whether aiortc can send this H.264 variant, and if not, why."""
    params = codec.parameters
    mode = params.get("packetization-mode", "0")
    if mode != "1":
        return False, f"H264 PT {codec.payload_type} packetization-mode={mode} (need 1)"
    pli = params.get("profile-level-id", "42e01f")
    if not re.fullmatch(r"[0-9a-fA-F]{6}", pli):
        return False, f"H264 PT {codec.payload_type} profile-level-id={pli!r} is not 6 hex digits"
    if int(pli[:2], 16) not in _H264_SENDABLE_PROFILE_IDC:
        return False, f"H264 PT {codec.payload_type} profile-level-id={pli} (need baseline 42xxxx)"
    return True, ""


def normalize_offer(sdp: str) -> NormalizedOffer:
    """Rewrite an offer so aiortc negotiates what the sender meant.

    Raises OfferError for an offer no rewrite can save (no media, missing ICE
    or DTLS credentials, no codec the camera can send).
    """
    session, sections = _offer_sections(sdp)
    changes: list[str] = []
    usable = 0
    for index, section in enumerate(sections):
        kind, port, fmts = _media_line(section)
        if kind not in ("audio", "video"):
            continue  # data channels etc.: aiortc answers or rejects them itself
        _check_payload_types(kind, fmts)
        if port != 0:
            _check_credentials(kind, session, section)
        where = f"m-line {index} ({kind})"
        section, mapped = _add_static_rtpmaps(where, kind, fmts, section, changes)
        section = _assume_h264_fmtp(f"m-line {index} (video)", section, changes)
        section = _drop_orphan_pt_attributes(where, section, mapped, changes)
        sections[index] = section
        if port == 0:
            continue
        _require_sendable_codec(kind, _section_codecs(section))
        usable += 1

    if not usable:
        raise OfferError("offer has no active audio or video m-line")
    text = _join(session, sections)
    return NormalizedOffer(text, tuple(changes), summarize(text))


def _offer_sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    """The offer's session lines and media sections; OfferError if it is no SDP offer."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise OfferError("empty offer")
    session, sections = _sections(sdp)
    if not session or not session[0].startswith("v="):
        raise OfferError("offer does not start with v=: not an SDP")
    if not sections:
        raise OfferError("offer has no media lines")
    return session, sections


def _media_line(section: list[str]) -> tuple[str, int, list[str]]:
    """(kind, port, formats) of a section's m-line."""
    m = _MLINE_RE.match(section[0])
    if not m:
        raise OfferError(f"malformed media line {section[0]!r}")
    return m.group(1), int(m.group(2)), m.group(4).split()


def _check_payload_types(kind: str, fmts: list[str]) -> None:
    """RTP payload types are 0-127 (aiortc's parser fails on anything else)."""
    if not all(f.isdigit() and int(f) < 128 for f in fmts):
        raise OfferError(f"{kind} m-line has invalid payload types {fmts}")


def _check_credentials(kind: str, session: list[str], section: list[str]) -> None:
    """A live m-line needs ICE credentials and a DTLS fingerprint (session or media level)."""

    def has(prefix: str) -> bool:
        return any(ln.startswith(prefix) for ln in session) or any(
            ln.startswith(prefix) for ln in section
        )

    if not has("a=ice-ufrag:"):
        raise OfferError(f"{kind} m-line has no a=ice-ufrag")
    if not has("a=fingerprint:"):
        raise OfferError(f"{kind} m-line has no a=fingerprint (DTLS)")


def _add_static_rtpmaps(
    where: str, kind: str, fmts: list[str], section: list[str], changes: list[str]
) -> tuple[list[str], set[int]]:
    """Give static audio payload types listed without a=rtpmap (Echo Show's 0 and 8) one.

    Returns the section and every payload type that now has an rtpmap.
    """
    mapped = {int(rm.group(1)) for ln in section if (rm := _RTPMAP_RE.match(ln))}
    added = [
        f"a=rtpmap:{pt} {STATIC_AUDIO[pt]}"
        for pt in map(int, fmts)
        if kind == "audio" and pt in STATIC_AUDIO and pt not in mapped
    ]
    if not added:
        return section, mapped
    last_map = max((i for i, ln in enumerate(section) if ln.startswith("a=rtpmap:")), default=0)
    section = section[: last_map + 1] + added + section[last_map + 1 :]
    changes.append(f"{where}: added {', '.join(added)}")
    return section, mapped | {int(a.split()[0][9:]) for a in added}


def _assume_h264_fmtp(where: str, section: list[str], changes: list[str]) -> list[str]:
    """H.264 without fmtp (Echo Show): constrained baseline, packetization-mode 1."""
    with_fmtp = {
        int(pm.group(2))
        for ln in section
        if (pm := _PT_ATTR_RE.match(ln)) and pm.group(1) == "fmtp" and pm.group(2) != "*"
    }
    out: list[str] = []
    for ln in section:
        out.append(ln)
        rm = _RTPMAP_RE.match(ln)
        if rm and rm.group(2).upper() == "H264" and int(rm.group(1)) not in with_fmtp:
            pt = int(rm.group(1))
            out.append(f"a=fmtp:{pt} {ECHO_H264_FMTP}")
            changes.append(f"{where}: H264 PT {pt} had no fmtp, assumed one")
    return out


def _drop_orphan_pt_attributes(
    where: str, section: list[str], mapped: set[int], changes: list[str]
) -> list[str]:
    """Drop fmtp / rtcp-fb for payload types that have no codec: aiortc's parser dies on them."""
    kept = [section[0]]
    for ln in section[1:]:
        pm = _PT_ATTR_RE.match(ln)
        if pm and pm.group(2) != "*" and int(pm.group(2)) not in mapped:
            changes.append(f"{where}: dropped {ln!r} (no rtpmap for that PT)")
            continue
        kept.append(ln)
    return kept


def _require_sendable_codec(kind: str, codecs: tuple[Codec, ...]) -> None:
    """OfferError unless the m-line offers a codec the camera can send."""
    offered = ", ".join(f"{c.name}/{c.payload_type}" for c in codecs) or "nothing"
    if kind == "audio":
        if not any(c.name.lower() in AUDIO_CODECS for c in codecs):
            raise OfferError(
                f"audio m-line offers no codec the camera can send: {offered}; "
                "need opus, PCMU, PCMA or G722"
            )
        return
    reasons = []
    ok = False
    for c in codecs:
        if c.name.upper() == "VP8":
            ok = True
        elif c.name.upper() == "H264":
            sendable, why = h264_sendable(c)
            ok = ok or sendable
            if why:
                reasons.append(why)
    if not ok:
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        raise OfferError(
            f"video m-line offers no codec the camera can send: {offered}{detail}; "
            "need H264 constrained baseline with packetization-mode 1, or VP8"
        )


# -- refusals -----------------------------------------------------------------


def refusal_answer(offer_sdp: str, reason: str) -> str:
    """An answer that rejects every m-line (port 0, RFC 3264) and names the reason.

    ``reason`` is the Alexa ErrorResponse type the skill should reply with
    (``ENDPOINT_BUSY`` when the viewer limit is reached, ``INVALID_DIRECTIVE``
    for an offer the camera cannot answer); :func:`refusal_reason` reads it back.
    """
    lines = ["v=0", "o=- 0 0 IN IP4 0.0.0.0", "s=-", "t=0 0", f"{REFUSAL_ATTR}{reason}"]
    try:
        _, sections = _sections(offer_sdp)
    except Exception:  # a refusal must never fail
        sections = []
    for section in sections:
        m = _MLINE_RE.match(section[0])
        if not m:
            continue
        fmt = (m.group(4).split() or ["0"])[0]
        lines += [f"m={m.group(1)} 0 {m.group(3)} {fmt}", "c=IN IP4 0.0.0.0", "a=inactive"]
        mid = next((ln[6:] for ln in section if ln.startswith("a=mid:")), None)
        if mid is not None:
            lines.append(f"a=mid:{mid}")
    return "\r\n".join(lines) + "\r\n"
