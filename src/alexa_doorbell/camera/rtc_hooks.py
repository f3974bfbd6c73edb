"""Every aiortc and aioice internal this project reaches into, in one place.

aiortc has no public API for what these do (shared encoding, keyframes on
demand, a shorter audio jitter buffer, our own ICE gathering...). Each hook is
one small function saying why it is needed; ``tests/camera/test_rtc_hooks.py`` checks
every internal it touches against the installed aiortc and aioice, and
``pyproject.toml`` pins both to the minor versions below. Upgrading either:
raise :data:`TESTED_VERSIONS` and the pins together, and run that test first.

The camera agent, its fanout, the simulated Echo Show (``cloud/echo.py``) and
the benchmarks use these; nothing else touches a ``_``-prefixed aiortc name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc.rtcrtpreceiver
from aioice import Candidate, Connection, TransportPolicy
from aioice.ice import CandidatePair, StunProtocol
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import NackGenerator

TESTED_VERSIONS = {"aiortc": "1.16", "aioice": "0.13"}  # major.minor, as pinned

DecoderFactory = Callable[[RTCRtpCodecParameters], Decoder]
ComponentGatherer = Callable[[int, list[str], int], Awaitable[list[Candidate]]]


# -- senders --------------------------------------------------------------------
def set_payload_encoder(sender: RTCRtpSender, encoder: Encoder) -> None:
    """Give ``sender`` our encoder before media starts.

    The sender creates its encoder lazily on the first frame unless one is set;
    ours passes payloads encoded and packetized once per camera through as they
    are, so each viewer only adds its RTP header and SRTP.
    """
    sender._RTCRtpSender__encoder = encoder  # type: ignore[attr-defined]


def payload_encoder(sender: RTCRtpSender) -> Encoder | None:
    """The encoder ``sender`` uses (None until the first frame if none was set)."""
    return sender._RTCRtpSender__encoder  # type: ignore[attr-defined,no-any-return]


def route_keyframe_requests(sender: RTCRtpSender, request_keyframe: Callable[[], None]) -> None:
    """Send this viewer's PLI/FIR to ``request_keyframe`` instead of the sender's encoder.

    The sender only knows how to force a keyframe on its own encoder; with
    shared encoding the keyframe has to come from the camera's one encoder.
    """
    sender._send_keyframe = request_keyframe  # type: ignore[method-assign]


def limit_retransmissions(sender: RTCRtpSender, allow: Callable[[int], bool]) -> None:
    """Resend a NACKed packet only when ``allow(sequence_number)`` says so.

    aiortc resends every packet a NACK lists, at once and without limit; on a
    congested uplink the resends add to the congestion (a receiver that asks again
    each round trip turns loss into a storm), so they must fit within a budget.
    """
    original = sender._retransmit

    async def retransmit(sequence_number: int) -> None:
        if allow(sequence_number):
            await original(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]


def h264_payloads(access_unit: bytes) -> list[bytes]:
    """RTP payloads (single NAL, STAP-A, FU-A) of one Annex B access unit.

    aiortc's own H.264 packetizer, called once per frame for every viewer
    instead of once per viewer.
    """
    return H264Encoder._packetize(H264Encoder._split_bitstream(access_unit))


# -- receivers ------------------------------------------------------------------
def drop_incoming_media(receiver: RTCRtpReceiver) -> None:
    """Discard RTP on arrival, as aiortc does for an inactive m-line.

    For a receiver nobody reads: otherwise aiortc decodes every packet (a
    thread hop each) into a queue that grows for the whole session.
    """
    receiver._enabled = False


def set_jitter_buffer(receiver: RTCRtpReceiver, *, capacity: int, prefetch: int) -> None:
    """Replace an audio receiver's jitter buffer (aiortc: 16 packets, 4 prefetched).

    aiortc waits for 4 packets (80 ms) before playing any, whatever the path;
    fewer is enough on a clean one, and every 20 ms saved is heard. Call before
    the first packet arrives.
    """
    receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(  # type: ignore[attr-defined]
        capacity=capacity, prefetch=prefetch
    )


class KeyframeSkippingJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, plus what libwebrtc's frame buffer does after a loss
    no retransmission repaired: skip to the next complete keyframe.

    aiortc hands frames out strictly in order, so one packet lost for good holds every
    later frame until 512 more packets have come (seconds at any bitrate); a real
    receiver (an Echo Show) decodes the next keyframe as soon as it is whole. For the
    simulated Echo Show: without it, a test measures aiortc's jitter buffer, not the
    camera.
    """

    def __init__(self, capacity: int = 512, give_up: float = 0.3) -> None:  # aiortc's size
        super().__init__(capacity=capacity, is_video=True)
        self.give_up = give_up  # seconds a hole may stay before a keyframe is asked for
        self.skipped = 0  # times a hole was skipped to a keyframe
        self.keyframes_asked = 0
        self._stuck_since: float | None = None
        self._asked_at = 0.0

    def add(self, packet: Any) -> tuple[bool, Any]:
        pli, frame = super().add(packet)
        now = time.monotonic()
        if frame is not None or self._origin is None:
            self._stuck_since = None
        elif self._stuck_since is None:
            self._stuck_since = now
        elif now - self._stuck_since > self.give_up and now - self._asked_at > self.give_up:
            # Nothing decodable for a while: the resends did not come (libwebrtc asks
            # for a keyframe once NACKs give up, rather than wait for the next GOP).
            self._asked_at = now
            self.keyframes_asked += 1
            pli = True
        return pli, frame

    def _remove_frame(self, sequence_number: int) -> Any:
        frame = super()._remove_frame(sequence_number)
        if frame is None and self._origin is not None:
            start = self._keyframe_after_hole()
            if start:
                self.remove(start)  # the hole and what cannot be decoded without it
                self.skipped += 1
                frame = super()._remove_frame(sequence_number)
        return frame

    def _keyframe_after_hole(self) -> int | None:
        """Offset from the origin of the first whole keyframe after a missing packet."""
        assert self._origin is not None
        packets, cap = self._packets, self._capacity
        hole = False
        for offset in range(cap):
            packet = packets[(self._origin + offset) % cap]
            if packet is None:
                hole = True
            elif hole and _starts_idr_access_unit(packet.payload):
                # Whole when every packet up to its marker is here (aiortc hands it out
                # once the next frame has begun).
                for end in range(offset, cap):
                    p = packets[(self._origin + end) % cap]
                    if p is None:
                        break
                    if p.marker or p.timestamp != packet.timestamp:
                        return offset
        return None


def _starts_idr_access_unit(payload: bytes) -> bool:
    """An H.264 RTP payload that opens a keyframe: SPS first (alone or in a STAP-A)."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal == 24 and len(payload) > 3:  # STAP-A: 2-byte size, then the first NAL
        nal = payload[3] & 0x1F
    return nal == 7


def install_jitter_buffer(receiver: RTCRtpReceiver, buffer: JitterBuffer) -> None:
    """Give a video receiver ``buffer`` instead of aiortc's (before the first packet)."""
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]


def set_nack_generator(receiver: RTCRtpReceiver, generator: NackGenerator) -> None:
    """Replace a video receiver's NACK generator (aiortc NACKs each loss once only)."""
    receiver._RTCRtpReceiver__nack_generator = generator  # type: ignore[attr-defined]


async def send_nack(receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]) -> None:
    """Send an RTCP NACK for ``lost`` sequence numbers now (a repeat, as libwebrtc does)."""
    await receiver._send_rtcp_nack(media_ssrc, lost)


def decoder_factory() -> DecoderFactory:
    """The function aiortc's receivers create decoders with."""
    return aiortc.rtcrtpreceiver.get_decoder


def set_decoder_factory(factory: DecoderFactory) -> None:
    """Make every receiver created from now on decode with ``factory(codec)``.

    For benchmarks that count frames without paying for decoding them.
    """
    aiortc.rtcrtpreceiver.get_decoder = factory


# -- ICE --------------------------------------------------------------------------
def ice_connection(transceiver: RTCRtpTransceiver) -> Connection:
    """The aioice connection under a transceiver's ICE transport."""
    return transceiver.sender.transport.transport.iceGatherer._connection


def replace_gathering(conn: Connection, gather: ComponentGatherer) -> None:
    """Gather ``conn``'s candidates with ``gather`` instead of aioice's STUN and TURN.

    aioice takes one STUN and one TURN server (aiortc passes the first usable
    URI of each); camera/gather.py gathers from several, in parallel, with its own
    bound. ``gather`` gets aioice's ``(component, addresses, timeout)`` call and
    may call the original (saved first) for host candidates: it is told no server.
    """
    conn.stun_server = conn.turn_server = None
    conn.get_component_candidates = gather  # type: ignore[method-assign]


def ice_protocols(conn: Connection) -> list[StunProtocol]:
    """The connection's sockets (host and relay), the list its pairs are made from.

    A relay protocol appended here is paired with the remote candidates as
    aioice's own TURN relay is.
    """
    return conn._protocols


def relay_only(conn: Connection) -> bool:
    """Whether the connection gathers relays only (``iceTransportPolicy = "relay"``)."""
    return conn._transport_policy == TransportPolicy.RELAY


def nominated_pair(conn: Connection, component: int = 1) -> CandidatePair | None:
    """The candidate pair ICE selected for ``component`` (None until connected)."""
    return conn._nominated.get(component)
