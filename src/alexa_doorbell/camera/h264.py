"""H.264 bitstream facts for passing a camera's stream through unchanged. Pure: no I/O.

What the fan-out sends is one Annex B access unit per frame (start codes
before every NAL unit) with SPS and PPS in front of every IDR, so that a
viewer joining at any keyframe can decode. Cameras deliver either Annex B
(RTSP: FFmpeg's RTP depacketizer adds start codes, parameter sets often only
in the SDP's ``sprop-parameter-sets``, which becomes the stream's extradata) or
length-prefixed NAL units with an ``avcC`` record (MP4 files).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

START_CODE = b"\x00\x00\x00\x01"

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

PROFILE_BASELINE = 66
PROFILE_MAIN = 77
PROFILE_EXTENDED = 88
PROFILE_HIGH = 100

# The biggest picture Echo Show devices are known to take (docs/PROTOCOLS.md §5).
MAX_PASSTHROUGH_PIXELS = 1920 * 1080


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B buffer (3- or 4-byte start codes), without start codes."""
    nals: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        # The zero before a 4-byte start code belongs to the start code, and
        # trailing_zero_8bits are not part of a NAL unit (which never ends in 0x00).
        nal = data[start:end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        i = j
    return nals


def split_length_prefixed(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of an AVCC (MP4) sample: each prefixed by its big-endian length."""
    nals: list[bytes] = []
    i = 0
    while i + length_size <= len(data):
        n = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if n == 0 or i + n > len(data):
            raise ValueError(f"bad NAL length {n} at offset {i - length_size}")
        nals.append(data[i : i + n])
        i += n
    return nals


def join_annexb(nals: Iterable[bytes]) -> bytes:
    return b"".join(START_CODE + n for n in nals)


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


@dataclass(frozen=True)
class Avcc:
    """An ``AVCDecoderConfigurationRecord`` (ISO/IEC 14496-15)."""

    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]


def parse_avcc(extradata: bytes) -> Avcc:
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (extradata[4] & 0x03) + 1
    i = 5
    out: list[list[bytes]] = [[], []]
    for which in (0, 1):
        count = extradata[i] & (0x1F if which == 0 else 0xFF)
        i += 1
        for _ in range(count):
            n = int.from_bytes(extradata[i : i + 2], "big")
            i += 2
            if i + n > len(extradata):
                raise ValueError("truncated avcC record")
            out[which].append(extradata[i : i + n])
            i += n
    return Avcc(length_size, tuple(out[0]), tuple(out[1]))


def is_avcc(extradata: bytes | None) -> bool:
    return bool(extradata) and extradata[0] == 1  # type: ignore[index]


def parameter_sets(extradata: bytes | None) -> list[bytes]:
    """SPS and PPS NAL units carried out of band (avcC record or Annex B extradata)."""
    if not extradata:
        return []
    if is_avcc(extradata):
        rec = parse_avcc(extradata)
        return [*rec.sps, *rec.pps]
    return [n for n in split_annexb(extradata) if nal_type(n) in (NAL_SPS, NAL_PPS)]


@dataclass(frozen=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int  # constraint_set0..5 flags: the byte after profile_idc
    level_idc: int

    @property
    def constrained_baseline(self) -> bool:
        return self.profile_idc == PROFILE_BASELINE and bool(self.constraint_flags & 0x40)

    @property
    def profile_name(self) -> str:
        if self.constrained_baseline:
            return "Constrained Baseline"
        return {
            PROFILE_BASELINE: "Baseline",
            PROFILE_MAIN: "Main",
            PROFILE_EXTENDED: "Extended",
            PROFILE_HIGH: "High",
            110: "High 10",
            122: "High 4:2:2",
            244: "High 4:4:4",
        }.get(self.profile_idc, f"profile {self.profile_idc}")

    @property
    def profile_level_id(self) -> str:
        """As SDP's ``profile-level-id`` spells it (RFC 6184), e.g. ``42e01f``."""
        return f"{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


def parse_sps(nal: bytes) -> SpsInfo:
    """profile_idc, constraint flags and level_idc: the three bytes after the NAL header."""
    if len(nal) < 4 or nal_type(nal) != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    return SpsInfo(nal[1], nal[2], nal[3])


def transcode_reason(
    sps: SpsInfo | None,
    *,
    has_b_frames: bool,
    width: int,
    height: int,
    policy: str = "auto",
) -> str | None:
    """Why a stream must be re-encoded for Alexa, or None when it can pass through.

    Echo Show devices are known to take Constrained Baseline (42e01f, what the
    answer declares); Baseline streams and Main streams without B-frames decode
    on the same devices and in every browser. B-frames reorder pictures (and
    add latency), High profile tools and pictures above 1080p are not known to
    work, so those are transcoded.
    """
    if policy == "never":
        return "passthrough disabled"
    if sps is None:
        return "no SPS in the stream's parameters or first keyframe"
    allowed = {PROFILE_BASELINE, PROFILE_MAIN}
    if sps.profile_idc not in allowed:
        return f"H.264 {sps.profile_name} profile ({sps.profile_level_id})"
    if has_b_frames:
        return f"H.264 {sps.profile_name} with B-frames"
    if width * height > MAX_PASSTHROUGH_PIXELS:
        return f"{width}x{height} is larger than 1080p"
    return None


class AccessUnitWriter:
    """Turns demuxed H.264 packets into self-contained Annex B access units.

    Remembers the latest SPS/PPS (out of band from extradata, or in band as
    the camera sends them) and puts them in front of every IDR that lacks them.
    Drops access unit delimiters (useless on RTP, RFC 6184 allows dropping).
    """

    def __init__(self, extradata: bytes | None = None) -> None:
        self.length_size = parse_avcc(extradata).length_size if is_avcc(extradata) else 0
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        for nal in parameter_sets(extradata):
            self._remember(nal)
        self.inserted = 0  # IDRs that got parameter sets from us

    def _remember(self, nal: bytes) -> None:
        t = nal_type(nal)
        if t == NAL_SPS:
            self.sps = nal
        elif t == NAL_PPS:
            self.pps = nal

    @property
    def sps_info(self) -> SpsInfo | None:
        return parse_sps(self.sps) if self.sps else None

    def write(self, data: bytes) -> tuple[bytes, bool]:
        """(Annex B access unit, contains an IDR)."""
        nals = split_length_prefixed(data, self.length_size) if self.length_size else None
        if nals is None:
            nals = split_annexb(data)
        types = [nal_type(n) for n in nals]
        for n, t in zip(nals, types, strict=True):
            if t in (NAL_SPS, NAL_PPS):
                self._remember(n)
        idr = NAL_IDR in types
        out = [n for n, t in zip(nals, types, strict=True) if t != NAL_AUD]
        if idr and (NAL_SPS not in types or NAL_PPS not in types) and self.sps and self.pps:
            # Parameter sets lead the access unit, as encoders write them.
            out = [self.sps, self.pps, *(n for n in out if nal_type(n) not in (NAL_SPS, NAL_PPS))]
            self.inserted += 1
        return join_annexb(out), idr
