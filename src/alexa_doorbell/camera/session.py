"""One viewer's peer: its aiortc connection answered from the camera's shared encoders.

    negotiator = Negotiator(camera, talk, talkback, open_sink, ice, gather_timeout)
    session = ViewerSession(peer_id, pc, video_track, audio_track, alexa_key)
    await negotiator.negotiate(session, offer_sdp, kinds, pending_candidates, on_failed)

The transceivers exist before the offer is applied (so codec preferences apply), only
for the kinds the offer has; the answer carries every local candidate (gathering is
bounded by ``ice_gather_timeout``); the viewer then gets the shared H.264 payloads and
once-encoded audio, and its talk-back plays into the camera's sink.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from alexa_doorbell.camera import gather, ice, rtc_hooks
from alexa_doorbell.camera.fanout import SHARED_AUDIO_CODECS, FanoutVideoTrack, share_payloads
from alexa_doorbell.camera.sdp import summarize
from alexa_doorbell.camera.sinks import AudioSink, discards
from alexa_doorbell.camera.talk import TalkbackHub, TalkbackStream, answer_direction
from alexa_doorbell.config import CameraConfig

log = logging.getLogger("alexa_doorbell.camera.agent")

TALKBACK_PREFETCH = 2  # talk-back packets (20 ms each) buffered before playing


class ViewerLimitError(RuntimeError):
    """The camera already serves its maximum number of viewers."""


@dataclass
class ViewerSession:
    peer_id: str
    pc: RTCPeerConnection
    video: FanoutVideoTrack
    audio: Any
    alexa_key: str | None
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    video_codec: str = ""
    sink: AudioSink | None = None
    talkback: TalkbackStream | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    connected_at: float | None = None
    ended: str | None = None
    ends_at: float | None = None  # monotonic; None: no cap (max_session_seconds unset)
    connected: asyncio.Event = field(default_factory=asyncio.Event)


def video_codec_preferences() -> list[RTCRtpCodecCapability]:
    """H.264 first (42e01f before other profiles), so browsers share the one encoder;
    VP8 only when H.264 is not offered; RTX for either."""
    caps = RTCRtpSender.getCapabilities("video").codecs
    rank = {"video/H264": 0, "video/VP8": 1, "video/rtx": 2}
    return sorted(
        (c for c in caps if c.mimeType in rank),
        key=lambda c: (rank[c.mimeType], c.parameters.get("profile-level-id") != "42e01f"),
    )


async def add_candidate(session: ViewerSession, payload: dict[str, Any]) -> None:
    """A trickled ICE candidate; a bad one is logged and never ends the session."""
    text = str(payload.get("candidate") or "")
    if not text:
        return  # end-of-candidates
    try:
        cand = candidate_from_sdp(text.removeprefix("candidate:"))
        cand.sdpMid = payload.get("sdpMid")
        cand.sdpMLineIndex = payload.get("sdpMLineIndex")
        await session.pc.addIceCandidate(cand)
    except Exception as exc:
        log.warning("ignoring ICE candidate from %s: %s", session.peer_id, exc)


class Negotiator:
    """Answers offers for one camera: what every session of it shares."""

    def __init__(
        self,
        camera: CameraConfig,
        talk: str,
        talkback: TalkbackHub,
        open_sink: Callable[[str, str], AudioSink],
        ice_servers: ice.IceServers,
        gather_timeout: float,
    ) -> None:
        self.camera, self.talk, self.talkback = camera, talk, talkback
        self.open_sink = open_sink
        self.ice = ice_servers
        self.gather_timeout = gather_timeout

    async def negotiate(
        self,
        session: ViewerSession,
        offer_sdp: str,
        kinds: set[str],
        pending: list[dict[str, Any]],
        on_failed: Callable[[ViewerSession, str], None],
    ) -> None:
        """Answer the offer on the session's peer connection, fed by the shared encoders."""
        video_tr = self._add_video(session, kinds)
        audio_tr = self._add_audio(session, kinds)
        if audio_tr is not None and self._decodes_talkback():
            self._receive_talkback(session, audio_tr)
        self._watch_connection(session, on_failed)
        await self._answer(session, offer_sdp, pending)
        self._drop_unread_media(session, audio_tr)
        # The offer's own video b=AS: aiortc drops b= lines from remoteDescription.
        offered = summarize(offer_sdp).first("video")
        self._share_encoders(session, video_tr, audio_tr, offered and offered.bandwidth_kbps)

    def _add_video(self, session: ViewerSession, kinds: set[str]) -> RTCRtpTransceiver | None:
        if "video" not in kinds:
            session.video.stop()
            return None
        video_tr = session.pc.addTransceiver(session.video, direction="sendonly")
        video_tr.setCodecPreferences(video_codec_preferences())
        return video_tr

    def _add_audio(self, session: ViewerSession, kinds: set[str]) -> RTCRtpTransceiver | None:
        if "audio" not in kinds:
            session.audio.stop()
            return None
        # Full and half duplex take the Echo's voice (sendrecv); without talk the
        # answer is sendonly, so the Echo has no way to send audio at all.
        return session.pc.addTransceiver(session.audio, direction=answer_direction(self.talk))

    def _decodes_talkback(self) -> bool:
        """Talk-back is decoded only when a sink plays or keeps it, or in half duplex,
        where its voice mutes the door's microphone."""
        return self.talk != "none" and (self.talk == "half" or not discards(self.camera.sink))

    def _receive_talkback(self, session: ViewerSession, audio_tr: RTCRtpTransceiver) -> None:
        """Play the viewer's voice into the camera's sink once its track arrives."""
        # aiortc holds 4 talk-back packets (80 ms) before playing any. Half of that
        # is enough against jitter, and every 20 ms saved is heard: in the user's
        # voice at the door, and in how soon a half-duplex door speaks again.
        rtc_hooks.set_jitter_buffer(audio_tr.receiver, capacity=16, prefetch=TALKBACK_PREFETCH)

        @session.pc.on("track")
        def on_track(track: Any) -> None:
            if track is not audio_tr.receiver.track:
                return
            try:
                session.sink = self.open_sink(self.camera.sink, session.peer_id)
            except Exception as exc:  # no speaker, unwritable path: the picture still goes
                log.warning("talk-back from %s is dropped: %s", session.peer_id, exc)
                return
            session.talkback = self.talkback.stream(
                session.peer_id, plays_aloud=session.sink.plays_aloud
            )
            session.sink.tap = session.talkback
            session.tasks.append(asyncio.create_task(session.sink.consume(track)))

    def _watch_connection(
        self, session: ViewerSession, on_failed: Callable[[ViewerSession, str], None]
    ) -> None:
        """Note when the viewer connects; end the session when its connection fails
        (ICE consent lost, DTLS closed)."""
        pc = session.pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and session.connected_at is None:
                session.connected_at = time.monotonic()
                session.connected.set()
                path = gather.selected_path(pc)
                log.info("viewer %s connected (%s)", session.peer_id, path and path.describe())
            elif state in ("failed", "closed") and session.ended is None:
                on_failed(session, f"connection {state}")

    async def _answer(
        self, session: ViewerSession, offer_sdp: str, pending: list[dict[str, Any]]
    ) -> None:
        """Apply the offer and the candidates trickled before it; gather; set the answer."""
        pc = session.pc
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for cand in pending:
            await add_candidate(session, cand)
        answer = await pc.createAnswer()
        gather.prepare(pc, await self.ice.plan())
        await asyncio.wait_for(pc.setLocalDescription(answer), self.gather_timeout + 3.0)

    def _drop_unread_media(
        self, session: ViewerSession, audio_tr: RTCRtpTransceiver | None
    ) -> None:
        """Nobody reads these receivers' tracks (all but a played talk-back): aiortc would
        still decode what arrives (a thread hop per packet) into a queue that grows for
        the whole session. Drop it on arrival instead, as for an inactive m-line."""
        for t in session.pc.getTransceivers():
            if not (t is audio_tr and session.sink is not None):
                rtc_hooks.drop_incoming_media(t.receiver)

    def _share_encoders(
        self,
        session: ViewerSession,
        video_tr: RTCRtpTransceiver | None,
        audio_tr: RTCRtpTransceiver | None,
        offer_video_kbps: int | None = None,
    ) -> None:
        """Feed the viewer from the camera's encoders for the codecs the answer chose."""
        answer = summarize(session.pc.localDescription.sdp)
        video = answer.first("video")
        codec = video.codecs[0].name.upper() if video and video.active and video.codecs else ""
        session.video_codec = codec
        audio = answer.first("audio")
        audio_ok = audio is not None and audio.active and audio.codecs
        audio_codec = audio.codecs[0].name.lower() if audio_ok else ""
        if audio_tr is not None and audio_codec in SHARED_AUDIO_CODECS:
            # Encoded once per camera for every viewer of this codec.
            session.audio.use_shared(audio_codec)
            share_payloads(audio_tr.sender)
        if codec == "H264" and video_tr is not None:
            session.video.mode = "h264"
            share_payloads(video_tr.sender)  # payloads cut once per frame for every viewer
            # This viewer's PLI/FIR go to the shared encoder.
            rtc_hooks.route_keyframe_requests(video_tr.sender, session.video.request_keyframe)
            # Its receiver reports steer the camera's bitrate, its b=AS caps it.
            session.video.adapt_to(video_tr.sender, offer_video_kbps)
        else:
            session.video.mode = "frames"
