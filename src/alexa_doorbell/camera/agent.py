"""The camera agent: the KVS MASTER that answers Alexa and browsers.

    agent = CameraAgent(settings)
    await agent.start()      # media pipeline + supervised signaling
    ...
    await agent.stop()

Each viewer's offer (an ``SDP_OFFER`` from SendAlexaOfferToMaster or a browser
VIEWER) is normalised (:mod:`alexa_doorbell.camera.sdp`), answered by its own
aiortc peer connection after ICE gathering bounded to ``ice_gather_timeout``,
and fed from the shared encoder (:mod:`alexa_doorbell.camera.fanout`). A
session ends on SessionDisconnected (recorded by the skill in the store), ICE
failure or consent loss, the maximum session length, or agent shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from alexa_doorbell.camera import gather, ice, rtc_hooks
from alexa_doorbell.camera.fanout import (
    SHARED_AUDIO_CODECS,
    AudioFanout,
    FanoutVideoTrack,
    VideoFanout,
    share_payloads,
)
from alexa_doorbell.camera.media import (
    AudioSink,
    AudioSource,
    VideoSource,
    discards,
    open_audio_source,
    open_sink,
    open_video_source,
)
from alexa_doorbell.camera.sdp import OfferError, normalize_offer, refusal_answer, summarize
from alexa_doorbell.camera.talk import OutgoingAudio, TalkbackHub, TalkbackStream, answer_direction
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.kvs.client_id import alexa_session_key, session_key
from alexa_doorbell.kvs.messages import (
    ClientMessage,
    MessageError,
    ServerMessage,
    decode_payload,
    decode_sdp,
    sdp_payload,
)
from alexa_doorbell.notifier.client import Notifier, SessionSource, local_notifier
from alexa_doorbell.store.base import Health, Store

log = logging.getLogger(__name__)

ConnectivityCallback = Callable[[str, str], Any]
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


class CameraAgent:
    def __init__(
        self,
        settings: Settings,
        endpoint_id: str | None = None,
        source: str | None = None,
        *,
        camera: CameraConfig | None = None,
        video_source: VideoSource | None = None,
        audio_source: AudioSource | None = None,
        sink: str | None = None,
        sink_factory: Callable[[str, str], AudioSink] | None = None,
        store: SessionSource | None = None,  # the skill's RTC session records
        on_connectivity: ConnectivityCallback | None = None,
        heartbeat_interval: float = 60.0,
        signaling: bool = True,
        preset: str = "veryfast",
        connect_timeout: float = 20.0,
        disconnect_poll: float = 1.0,
    ) -> None:
        self.settings = settings
        self.camera = camera or settings.camera(endpoint_id)
        if source:
            self.camera = self.camera.model_copy(update={"source": source})
        if sink is not None:
            self.camera = self.camera.model_copy(update={"sink": sink})
        self.endpoint_id = self.camera.endpoint_id
        self._video_source = video_source
        self._audio_source = audio_source
        # How a session's talk-back sink is opened (spec, session): open_sink, or a
        # simulated door in tests and the demo.
        self._open_sink = sink_factory or (lambda spec, session: open_sink(spec, session=session))
        self.talk = self.camera.talk_mode
        self.talkback = TalkbackHub()
        self.outgoing: OutgoingAudio | None = None
        self.store = store
        self.on_connectivity = on_connectivity
        self.heartbeat_interval = heartbeat_interval
        self.use_signaling = signaling
        self.preset = preset
        self.connect_timeout = connect_timeout
        self.disconnect_poll = disconnect_poll
        self.sessions: dict[str, ViewerSession] = {}
        self.video: VideoFanout | None = None
        self.audio: AudioFanout | None = None
        self.signaling: Any = None
        self._pending_candidates: dict[str, list[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._closers: set[asyncio.Task[Any]] = set()
        self.ice = ice.IceServers(settings, self._fetch_turn)
        self._channel_arn: str | None = self.camera.channel_arn
        self._endpoints: Any = None
        self._closed_alexa: set[str] = set()
        self.counters = {"offers": 0, "answers": 0, "refused": 0, "rejected": 0, "ended": 0}
        self.answer_times: list[float] = []

    # -- life cycle -------------------------------------------------------------
    async def start(self) -> None:
        cam = self.camera
        # Opening an RTSP camera blocks on the network: not on the event loop.
        vsrc = self._video_source or await asyncio.to_thread(
            open_video_source,
            cam.source,
            cam.width,
            cam.height,
            cam.fps,
            passthrough=cam.passthrough,
        )
        asrc = self._audio_source or await asyncio.to_thread(
            open_audio_source, cam.audio, cam.source
        )
        self.outgoing = self._outgoing_audio(asrc)
        self.video = VideoFanout(vsrc, gop_seconds=self.settings.gop_seconds, preset=self.preset)
        self.audio = AudioFanout(asrc, self.outgoing)
        self.video.start()
        self.audio.start()
        await self.ice.start()
        if self.store is not None:
            self._tasks.append(asyncio.create_task(self._watch_disconnects()))
        if self.use_signaling:
            from alexa_doorbell.kvs.signaling import SignalingClient, ssl_context_for

            ca = self.settings.ca_file if self.settings.is_local else None
            self.signaling = SignalingClient(
                self._signaling_url,
                self._on_signaling_message,
                role="MASTER",
                ssl_context=ssl_context_for(ca),
                on_state=self._on_signaling_state,
                # A camera must be back within ~2 s of KVS returning: retry at most
                # 1.5 s apart (0.75-1.5 s with jitter) however long the outage was.
                backoff_max=1.5,
                name=cam.channel_name,
            )
            self.signaling.start()
            self._tasks.append(asyncio.create_task(self._heartbeat()))
        log.info(
            "camera agent for %s started (source %s, %dx%d@%s)",
            self.endpoint_id,
            cam.source,
            cam.width,
            cam.height,
            cam.fps,
        )

    def _outgoing_audio(self, source: AudioSource) -> OutgoingAudio:
        """The door's microphone path for this camera's talk mode (see camera/talk.py)."""
        cam = self.camera
        if self.talk != "none" and discards(cam.sink):
            log.warning(
                "%s offers talk (talk = %r) but its sink is %r: what viewers say is dropped"
                " unheard. Set sink = 'speaker' (or a .wav path), or talk = 'none' for a"
                " camera without a speaker.",
                self.endpoint_id,
                self.talk,
                cam.sink,
            )
        canceller = None
        if self.talk == "full" and source.captures_room:
            if cam.aec:
                from alexa_doorbell.camera.aec import EchoCanceller

                canceller = EchoCanceller()
            elif cam.sink == "speaker":
                log.warning(
                    "%s: full duplex with a speaker and no echo cancellation (aec = false):"
                    " viewers hear themselves. Set aec = true, or talk = 'half'.",
                    self.endpoint_id,
                )
        return OutgoingAudio(self.talk, self.talkback, canceller)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(
            *(self.close_session(pid, "agent stopping") for pid in list(self.sessions)),
            return_exceptions=True,
        )
        if self.signaling is not None:
            await self.signaling.stop()
            self.signaling = None
            await self._report("UNREACHABLE")
        await self.ice.stop()
        if self.video is not None:
            await self.video.stop()
        if self.audio is not None:
            await self.audio.stop()

    async def __aenter__(self) -> CameraAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        if self.signaling is not None:
            await self.signaling.wait_connected(timeout)

    def stats(self) -> dict[str, Any]:
        v = self.video
        return {
            "endpoint_id": self.endpoint_id,
            "viewers": len(self.sessions),
            **self.counters,
            "frames_read": v.frames_read if v else 0,
            "frames_encoded": v.frames_encoded if v else 0,
            "passthrough": bool(v and v.passthrough),
            "audio_frames_encoded": self.audio.frames_encoded if self.audio else 0,
            **(self.outgoing.stats() if self.outgoing else {"talk": self.talk}),
            "keyframes": v.keyframes if v else 0,
            "signaling_connected": bool(self.signaling and self.signaling.connected.is_set()),
            "signaling_connections": self.signaling.connections if self.signaling else 0,
        }

    # -- offers and answers -----------------------------------------------------
    async def handle_offer(self, peer_id: str, offer_sdp: str) -> str:
        """Answer one viewer's offer; the answer carries every local candidate.

        Raises OfferError (unanswerable offer) or ViewerLimitError; neither
        affects other sessions.
        """
        t0 = time.perf_counter()
        self.counters["offers"] += 1
        try:
            offer = normalize_offer(offer_sdp)
        except OfferError:
            self.counters["rejected"] += 1
            raise
        if peer_id in self.sessions:  # a new offer from the same viewer replaces its session
            await self.close_session(peer_id, "replaced by a new offer")
        if len(self.sessions) >= self.settings.max_viewers:
            self.counters["refused"] += 1
            raise ViewerLimitError(
                f"camera {self.endpoint_id} already has {len(self.sessions)} viewers "
                f"(max {self.settings.max_viewers})"
            )
        for change in offer.changes:
            log.debug("offer from %s: %s", peer_id, change)
        assert self.video is not None and self.audio is not None, "agent not started"

        # No servers for aiortc (it would keep one TURN URI; with None, a public STUN
        # server): gather.prepare() gathers from this camera's own.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        video = self.video.subscribe()
        audio = self.audio.subscribe()
        session = ViewerSession(peer_id, pc, video, audio, alexa_session_key(peer_id))
        self.sessions[peer_id] = session
        try:
            kinds = {m.kind for m in offer.summary.media} if offer.summary else set()
            await self._negotiate(session, offer.sdp, kinds)
        except Exception as exc:
            await self.close_session(peer_id, f"negotiation failed: {exc}")
            self.counters["rejected"] += 1
            if isinstance(exc, OfferError):
                raise
            raise OfferError(f"aiortc could not answer the offer: {exc}") from exc
        answer = pc.localDescription.sdp
        elapsed = time.perf_counter() - t0
        self.answer_times.append(elapsed)
        self.counters["answers"] += 1
        log.info(
            "answered %s in %.0f ms (video %s, %d viewer(s))",
            peer_id,
            elapsed * 1000,
            session.video_codec or "none",
            len(self.sessions),
        )
        return answer

    async def _negotiate(self, session: ViewerSession, offer_sdp: str, kinds: set[str]) -> None:
        """Answer the offer on the session's peer connection, fed by the shared encoders."""
        # Transceivers exist before the offer is applied so codec preferences
        # apply; only for kinds the offer has (aiortc cannot answer an extra one).
        video_tr = self._add_video(session, kinds)
        audio_tr = self._add_audio(session, kinds)
        if audio_tr is not None and self._decodes_talkback():
            self._receive_talkback(session, audio_tr)
        self._watch_connection(session)
        await self._answer(session, offer_sdp)
        self._drop_unread_media(session, audio_tr)
        self._share_encoders(session, video_tr, audio_tr)
        session.tasks.append(asyncio.create_task(self._supervise_session(session)))

    def _add_video(self, session: ViewerSession, kinds: set[str]) -> RTCRtpTransceiver | None:
        if "video" not in kinds:
            session.video.stop()
            return None
        video_tr = session.pc.addTransceiver(session.video, direction="sendonly")
        video_tr.setCodecPreferences(_video_codec_preferences())
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
                session.sink = self._open_sink(self.camera.sink, session.peer_id)
            except Exception as exc:  # no speaker, unwritable path: the picture still goes
                log.warning("talk-back from %s is dropped: %s", session.peer_id, exc)
                return
            session.talkback = self.talkback.stream(
                session.peer_id, plays_aloud=session.sink.plays_aloud
            )
            session.sink.tap = session.talkback
            session.tasks.append(asyncio.create_task(session.sink.consume(track)))

    def _watch_connection(self, session: ViewerSession) -> None:
        """Note when the viewer connects; end the session when its connection fails."""
        pc = session.pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and session.connected_at is None:
                session.connected_at = time.monotonic()
                path = gather.selected_path(pc)
                log.info("viewer %s connected (%s)", session.peer_id, path and path.describe())
            elif state in ("failed", "closed") and session.ended is None:
                task = asyncio.create_task(
                    self.close_session(session.peer_id, f"connection {state}")
                )
                self._closers.add(task)
                task.add_done_callback(self._closers.discard)

    async def _answer(self, session: ViewerSession, offer_sdp: str) -> None:
        """Apply the offer and the candidates trickled before it; gather; set the answer."""
        pc = session.pc
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for cand in self._pending_candidates.pop(session.peer_id, []):
            await self._add_candidate(session, cand)
        answer = await pc.createAnswer()
        gather.prepare(pc, await self.ice.plan())
        await asyncio.wait_for(
            pc.setLocalDescription(answer), self.settings.ice_gather_timeout + 3.0
        )

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
        else:
            session.video.mode = "frames"

    async def _supervise_session(self, session: ViewerSession) -> None:
        """Ends a session that never connects or outlives the maximum length."""
        limit = self.settings.max_session_seconds
        try:
            await asyncio.sleep(min(self.connect_timeout, limit))
            if session.connected_at is None:
                reason = "ICE did not connect" if self.connect_timeout < limit else "max length"
                await self.close_session(session.peer_id, reason)
                return
            await asyncio.sleep(max(0.0, limit - (time.monotonic() - session.started)))
            await self.close_session(session.peer_id, "maximum session length reached")
        except asyncio.CancelledError:
            pass

    async def add_candidate(self, peer_id: str, payload: dict[str, Any]) -> None:
        """A trickled ICE candidate from a (browser) viewer."""
        session = self.sessions.get(peer_id)
        if session is None or session.pc.remoteDescription is None:
            if peer_id not in self._pending_candidates:
                # Viewers that trickle but never offer must not grow memory: keep
                # candidates for the most recent few only.
                while len(self._pending_candidates) >= 2 * self.settings.max_viewers:
                    self._pending_candidates.pop(next(iter(self._pending_candidates)))
            pending = self._pending_candidates.setdefault(peer_id, [])
            if len(pending) < 50:
                pending.append(payload)
            return
        await self._add_candidate(session, payload)

    async def _add_candidate(self, session: ViewerSession, payload: dict[str, Any]) -> None:
        text = str(payload.get("candidate") or "")
        if not text:
            return  # end-of-candidates
        try:
            cand = candidate_from_sdp(text.removeprefix("candidate:"))
            cand.sdpMid = payload.get("sdpMid")
            cand.sdpMLineIndex = payload.get("sdpMLineIndex")
            await session.pc.addIceCandidate(cand)
        except Exception as exc:  # one bad candidate must not end the session
            log.warning("ignoring ICE candidate from %s: %s", session.peer_id, exc)

    async def close_session(self, peer_id: str, reason: str) -> None:
        session = self.sessions.pop(peer_id, None)
        self._pending_candidates.pop(peer_id, None)
        if session is None or session.ended:
            return
        session.ended = reason
        self.counters["ended"] += 1
        if session.connected_at is None and reason in ("ICE did not connect", "connection failed"):
            why = gather.no_media_reason(gather.report_of(session.pc))
            log.warning("no media reached viewer %s: %s", peer_id, why)
        current = asyncio.current_task()
        for t in session.tasks:
            if t is not current:
                t.cancel()
        session.video.stop()
        session.audio.stop()
        with contextlib.suppress(Exception):
            await session.pc.close()
        await asyncio.gather(
            *(t for t in session.tasks if t is not current), return_exceptions=True
        )
        if session.sink is not None:
            session.sink.close()
        if session.talkback is not None:
            session.talkback.close()
        log.info(
            "session %s ended after %.1f s: %s",
            peer_id,
            time.monotonic() - session.started,
            reason,
        )

    # -- signaling ----------------------------------------------------------------
    async def _on_signaling_message(self, msg: ServerMessage) -> None:
        sender = msg.sender_client_id or ""
        if msg.message_type == "SDP_OFFER":
            try:
                offer = decode_sdp(msg.message_payload, "offer")
            except MessageError as exc:
                log.warning("ignoring SDP_OFFER from %s: %s", sender or "?", exc)
                return
            try:
                answer = await self.handle_offer(sender, offer)
            except ViewerLimitError as exc:
                log.warning("refusing %s: %s", sender, exc)
                answer = refusal_answer(offer, "ENDPOINT_BUSY")
            except OfferError as exc:
                log.warning("cannot answer the offer from %s: %s", sender, exc)
                answer = refusal_answer(offer, "INVALID_DIRECTIVE")
            await self._send(ClientMessage("SDP_ANSWER", sdp_payload("answer", answer), sender))
        elif msg.message_type == "ICE_CANDIDATE":
            try:
                await self.add_candidate(sender, decode_payload(msg.message_payload))
            except MessageError as exc:
                log.warning("ignoring ICE_CANDIDATE from %s: %s", sender or "?", exc)
        elif msg.message_type == "STATUS_RESPONSE":
            log.warning("signaling status: %s", msg.status_response)
        elif msg.message_type == "RECONNECT_ICE_SERVER":
            self.ice.refresh_soon()

    async def _send(self, message: ClientMessage) -> None:
        if self.signaling is None:
            return
        try:
            await self.signaling.send(message)
        except Exception as exc:
            log.warning("could not send %s: %s", message.action, exc)

    async def _on_signaling_state(self, up: bool) -> None:
        if not up and self.signaling is not None and self.signaling.replaced:
            return  # another agent serves this channel now: Alexa can reach the camera
        await self._report("OK" if up else "UNREACHABLE")

    async def _report(self, connectivity: str) -> None:
        if self.on_connectivity is None:
            return
        try:
            result = await asyncio.to_thread(self.on_connectivity, self.endpoint_id, connectivity)
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("connectivity callback failed")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if self.signaling is not None and self.signaling.connected.is_set():
                await self._report("OK")

    def _kvs_setup(self) -> tuple[str, Any]:
        from alexa_doorbell.kvs import api

        session = self.settings.boto_session()
        if self._endpoints is None:
            kv = api.kinesisvideo_client(session, self.settings.endpoint_url())
            if self._channel_arn is None:
                self._channel_arn = api.describe_channel_arn(kv, self.camera.channel_name)
            self._endpoints = api.get_channel_endpoints(kv, self._channel_arn, "MASTER")
        return self._channel_arn, self._endpoints

    async def _signaling_url(self) -> str:
        from alexa_doorbell.kvs.presign import presign_wss_url

        def build() -> str:
            try:
                arn, eps = self._kvs_setup()
            except Exception:
                self._endpoints = None
                raise
            if not eps.wss:
                self._endpoints = None
                raise RuntimeError("GetSignalingChannelEndpoint returned no WSS endpoint")
            creds = self.settings.boto_session().get_credentials()
            if creds is None:
                raise RuntimeError("no AWS credentials found (standard AWS credential chain)")
            return presign_wss_url(eps.wss, arn, creds, self.settings.region)

        return await asyncio.to_thread(build)

    def _fetch_turn(self) -> list[dict[str, Any]]:
        """GetIceServerConfig's IceServerList, Ttl included (camera/ice.py refreshes it)."""
        from alexa_doorbell.kvs import api

        arn, eps = self._kvs_setup()
        sig = api.signaling_client(self.settings.boto_session(), eps.https)
        reply = sig.get_ice_server_config(ChannelARN=arn, Service="TURN")
        return list(reply.get("IceServerList", []))

    # -- SessionDisconnected ------------------------------------------------------
    async def _watch_disconnects(self) -> None:
        """End Alexa sessions the skill recorded as DISCONNECTED."""
        while True:
            await asyncio.sleep(self.disconnect_poll)
            starts = [s.started_wall for s in self.sessions.values() if s.alexa_key]
            if not starts:
                continue
            # Rows since the oldest live Alexa session (60 s for clock skew between
            # the skill and the camera), not since the agent started: the poll's
            # cost must not grow with every session the agent ever served.
            since = min(starts) - 60
            try:
                rows = await asyncio.to_thread(
                    self.store.list_sessions, self.endpoint_id, since=since
                )
            except Exception as exc:
                log.warning("cannot read RTC sessions from the store: %s", exc)
                continue
            gone = {session_key(r.session_id) for r in rows if r.state == "DISCONNECTED"}
            for s in list(self.sessions.values()):
                if s.alexa_key and s.alexa_key in gone:
                    await self.close_session(s.peer_id, "SessionDisconnected")


def _video_codec_preferences() -> list[RTCRtpCodecCapability]:
    """H.264 first (42e01f before other profiles), so browsers share the one encoder;
    VP8 only when H.264 is not offered; RTX for either."""
    caps = RTCRtpSender.getCapabilities("video").codecs
    rank = {"video/H264": 0, "video/VP8": 1, "video/rtx": 2}
    return sorted(
        (c for c in caps if c.mimeType in rank),
        key=lambda c: (rank[c.mimeType], c.parameters.get("profile-level-id") != "42e01f"),
    )


def store_connectivity(store: Store) -> ConnectivityCallback:
    """The local on_connectivity: record Alexa.EndpointHealth in the store."""

    def report(endpoint_id: str, connectivity: str) -> None:
        store.put_health(Health(endpoint_id, connectivity))

    return report


def run_agent(
    settings: Settings, endpoint_id: str | None = None, source: str | None = None
) -> None:
    """``alexa-doorbell camera``: run until Ctrl-C / SIGTERM (the command sets up logging).

    SIGUSR1 rings the doorbell (the press hook for a GPIO button or any
    integration: ``pkill -USR1 -f "alexa-doorbell camera"``); so does
    ``alexa-doorbell press`` from another process.
    """
    from alexa_doorbell.camera import runstate
    from alexa_doorbell.store import open_store

    state = runstate.AgentState(settings.camera(endpoint_id).endpoint_id)  # KeyError: unknown
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # In AWS the camera has no table of its own: everything goes through the notifier
    # Lambda, and a SQLite file here would only hide a missing notifier_function.
    store = open_store(settings.store_location) if settings.is_local else None
    notifier = _camera_notifier(settings, store)
    remote_sessions = notifier is not None and not settings.is_local
    report = notifier.on_connectivity if notifier else store_connectivity(store)
    agent: CameraAgent | None = None

    def on_connectivity(eid: str, connectivity: str) -> None:
        """Report, and note how it went where `doctor` on this machine can read it."""
        error: str | None = None
        try:
            report(eid, connectivity)
            error = notifier.last_error if notifier is not None else None
        except Exception as exc:
            error = str(exc)
            raise
        finally:
            signaling = agent.signaling if agent is not None else None
            state.connected = bool(signaling and signaling.connected.is_set())
            state.signaling_error = signaling.last_error if signaling else None
            state.report_at, state.report_connectivity = time.time(), connectivity
            state.report_error = error
            with contextlib.suppress(OSError):
                runstate.write_state(settings.data_dir, state)

    async def main() -> None:
        nonlocal agent
        agent = CameraAgent(
            settings,
            endpoint_id,
            source,
            # Where the skill's session records are: the shared store locally; in AWS
            # the table is read through the notifier Lambda (the camera has no DynamoDB).
            store=notifier if remote_sessions else store,
            disconnect_poll=2.0 if remote_sessions else 1.0,
            on_connectivity=on_connectivity,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        presses: set[asyncio.Task[None]] = set()

        def ring() -> None:
            task = asyncio.create_task(_press(notifier, agent.endpoint_id))
            presses.add(task)
            task.add_done_callback(presses.discard)

        with contextlib.suppress(NotImplementedError, AttributeError):
            loop.add_signal_handler(signal.SIGUSR1, ring)
        await agent.start()
        try:
            await stop.wait()
        finally:
            await agent.stop()
            await asyncio.gather(*presses, return_exceptions=True)

    try:
        with contextlib.suppress(OSError):
            runstate.write_state(settings.data_dir, state)
        asyncio.run(main())
    finally:
        runstate.remove_state(settings.data_dir, state.endpoint_id)
        if notifier is not None:
            notifier.close()
        if store is not None:
            store.close()


def _camera_notifier(settings: Settings, store: Store | None) -> Notifier | None:
    """The notifier the agent reports connectivity and presses to.

    Locally it runs in this process (store + events to the local gateway); in
    AWS it invokes the notifier Lambda, so tokens never leave the cloud. In AWS
    there is no fallback: without the notifier Alexa would never hear of this camera.
    """
    from alexa_doorbell.config import ConfigError

    try:
        return local_notifier(settings, store)
    except Exception as exc:  # e.g. AWS without ALEXA_DOORBELL_NOTIFIER_FUNCTION
        if not settings.is_local:
            raise ConfigError(f'cloud = "aws": {exc}') from None
        log.warning("no notifier (%s): connectivity goes to the store only, presses fail", exc)
        return None


async def _press(notifier: Notifier | None, endpoint_id: str) -> None:
    if notifier is None:
        log.error("doorbell pressed, but no notifier is configured: see the warning at start")
        return
    try:
        outcomes = await asyncio.to_thread(notifier.press, endpoint_id)
    except Exception as exc:
        log.error("doorbell press failed: %s", exc)
        return
    for o in outcomes:
        log.info("doorbell press: %s %s %s", o.name, o.status, o.detail)
