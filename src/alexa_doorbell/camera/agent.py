"""One camera's agent: the KVS MASTER of its channel that answers Alexa and browsers.

    agent = CameraAgent(settings, "front-door")
    await agent.start()      # signaling up; the source opens with the first viewer
    ...
    await agent.stop()

Each viewer's offer (an ``SDP_OFFER`` from SendAlexaOfferToMaster or a browser
VIEWER) is normalised (:mod:`alexa_doorbell.camera.sdp`), answered by its own
aiortc peer (:mod:`alexa_doorbell.camera.session`) and fed from the camera's shared
encoder (:mod:`alexa_doorbell.camera.fanout`), which reads the supervised source
(:mod:`alexa_doorbell.camera.supervisor`: reopened after failures, the slate
meanwhile). A session ends on SessionDisconnected (recorded by the skill in the
store), ICE failure or consent loss, DTLS close, the opt-in ``max_session_seconds``,
or agent shutdown; one whose ICE has not connected within ``ice_connect_timeout``
frees its slot. Health (:mod:`alexa_doorbell.camera.health`) follows signaling and
the source. Every camera of a process runs in :mod:`alexa_doorbell.camera.service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection

from alexa_doorbell.camera import gather, ice
from alexa_doorbell.camera.channel import Channel
from alexa_doorbell.camera.disconnects import watch_disconnects
from alexa_doorbell.camera.fanout import AudioFanout, VideoFanout
from alexa_doorbell.camera.health import CameraHealth, store_connectivity
from alexa_doorbell.camera.sdp import OfferError, normalize_offer, refusal_answer
from alexa_doorbell.camera.session import (
    Negotiator,
    ViewerLimitError,
    ViewerSession,
    add_candidate,
)
from alexa_doorbell.camera.sinks import AudioSink, open_sink
from alexa_doorbell.camera.sources import (
    AudioSource,
    VideoSource,
    check_video_spec,
    open_audio_source,
    redact_url,
)
from alexa_doorbell.camera.supervisor import SourceStatus, SupervisedVideo, camera_video
from alexa_doorbell.camera.talk import OutgoingAudio, TalkbackHub, outgoing_audio
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
from alexa_doorbell.notifier.client import SessionSource

# What callers and tests have always imported from here.
__all__ = [
    "CameraAgent",
    "OfferError",
    "ViewerLimitError",
    "ViewerSession",
    "alexa_session_key",
    "session_key",
    "store_connectivity",
]

log = logging.getLogger(__name__)

ConnectivityCallback = Callable[[str, str], Any]
SourceListener = Callable[[str, SourceStatus], None]


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
        on_source: SourceListener | None = None,
        heartbeat_interval: float = 60.0,
        signaling: bool = True,
        preset: str = "veryfast",
        connect_timeout: float | None = None,
        disconnect_poll: float = 1.0,
    ) -> None:
        self.settings = settings
        self.camera = camera or settings.camera(endpoint_id)
        if source:
            self.camera = self.camera.model_copy(update={"source": source})
        if sink is not None:
            self.camera = self.camera.model_copy(update={"sink": sink})
        self.endpoint_id = self.camera.endpoint_id
        if video_source is None:
            check_video_spec(self.camera.source)  # MediaSourceError: no retry can fix it
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
        self.on_source = on_source
        self.heartbeat_interval = heartbeat_interval
        self.use_signaling = signaling
        self.preset = preset
        self.connect_timeout = (
            settings.ice_connect_timeout if connect_timeout is None else connect_timeout
        )
        self.disconnect_poll = disconnect_poll
        self.sessions: dict[str, ViewerSession] = {}
        self.video: VideoFanout | None = None
        self.audio: AudioFanout | None = None
        self.source: SupervisedVideo | None = None
        self.signaling: Any = None
        self.channel = Channel(settings, self.camera)
        self.ice = ice.IceServers(settings, self.channel.ice_servers)
        self.health = CameraHealth(
            self.endpoint_id, self._report, grace=settings.source_grace_seconds
        )
        self._pending_candidates: dict[str, list[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._closers: set[asyncio.Task[Any]] = set()
        self.counters = {"offers": 0, "answers": 0, "refused": 0, "rejected": 0, "ended": 0}
        self.answer_times: list[float] = []
        self.started = False

    @property
    def _channel_arn(self) -> str | None:
        return self.channel.arn

    # -- life cycle -------------------------------------------------------------
    async def start(self) -> None:
        """Start serving. The source is not opened here (the first viewer opens it), so a
        camera that is unreachable now does not stop the agent: health says so."""
        cam = self.camera
        asrc = self._audio_source or await asyncio.to_thread(
            open_audio_source, cam.audio, cam.source
        )
        self.outgoing = outgoing_audio(self.camera, self.talk, self.talkback, asrc)
        self.source = camera_video(self.camera, self._video_source, self._source_changed)
        self.video = VideoFanout(
            self.source,
            gop_seconds=self.settings.gop_seconds,
            preset=self.preset,
            max_upload_kbps=cam.max_upload_kbps or None,
            adapt_bitrate=cam.adapt_bitrate,
            passthrough_over_budget=cam.passthrough_over_budget,
        )
        self.audio = AudioFanout(asrc, self.outgoing)
        self.video.start()
        self.audio.start()
        self.source.start()
        await self.ice.start()
        if self.store is not None:
            watch = watch_disconnects(self, self.store, self.disconnect_poll)
            self._tasks.append(asyncio.create_task(watch))
        if self.use_signaling:
            from alexa_doorbell.kvs.signaling import SignalingClient, ssl_context_for

            ca = self.settings.ca_file if self.settings.is_local else None
            self.signaling = SignalingClient(
                lambda: asyncio.to_thread(self.channel.master_url),
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
        self.started = True
        log.info(
            "camera agent for %s started (source %s, %dx%d@%s)",
            self.endpoint_id,
            self._source_name(),
            cam.width,
            cam.height,
            cam.fps,
        )

    def _source_name(self) -> str:
        return redact_url(self.camera.source)

    def _source_changed(self, status: SourceStatus) -> None:
        self.health.source(status)
        if self.on_source is not None:
            self.on_source(self.endpoint_id, status)

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
            await self.health.stop()
            await self._report(self.endpoint_id, "UNREACHABLE")
        await self.ice.stop()
        await self.health.stop()
        if self.video is not None:
            await self.video.stop()
        if self.audio is not None:
            await self.audio.stop()
        self.started = False

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
        src = self.source
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
            "source": src.status.as_dict() if src else None,
            "slate_frames": src.slate_frames if src else 0,
            "warm": bool(src and src.warm),
            "source_open_ms": src.open_ms if src else None,
            "bridge_joins": v.bridge_joins if v else 0,
            "connectivity": self.health.connectivity,
            "max_session_seconds": self._session_cap(),
            "session_caps": sum(1 for s in self.sessions.values() if s.ends_at is not None),
        }

    # -- offers and answers -----------------------------------------------------
    def _session_cap(self) -> float | None:
        return self.settings.max_session_seconds or None  # 0 / unset: no cap

    async def handle_offer(self, peer_id: str, offer_sdp: str) -> str:
        """Answer one viewer's offer; the answer carries every local candidate.

        Raises OfferError (unanswerable offer) or ViewerLimitError; neither
        affects other sessions, and neither takes a viewer slot.
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
            await self._make_room()
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
        session = ViewerSession(
            peer_id, pc, self.video.subscribe(), self.audio.subscribe(), alexa_session_key(peer_id)
        )
        self.sessions[peer_id] = session
        try:
            kinds = {m.kind for m in offer.summary.media} if offer.summary else set()
            pending = self._pending_candidates.pop(peer_id, [])
            await self._negotiator().negotiate(session, offer.sdp, kinds, pending, self._close_soon)
        except Exception as exc:
            await self.close_session(peer_id, f"negotiation failed: {exc}")
            self.counters["rejected"] += 1
            if isinstance(exc, OfferError):
                raise
            raise OfferError(f"aiortc could not answer the offer: {exc}") from exc
        session.tasks.append(asyncio.create_task(self._supervise_session(session)))
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

    def _negotiator(self) -> Negotiator:
        return Negotiator(
            self.camera,
            self.talk,
            self.talkback,
            self._open_sink,
            self.ice,
            self.settings.ice_gather_timeout,
        )

    async def _make_room(self) -> None:
        """At the limit, the oldest viewer still not connected after a second gives its
        slot to a new offer: an attempt that failed must not lock out one that works."""
        now = time.monotonic()
        stale = [
            s for s in self.sessions.values() if s.connected_at is None and now - s.started > 1.0
        ]
        if stale:
            oldest = min(stale, key=lambda s: s.started)
            await self.close_session(oldest.peer_id, "ICE did not connect (slot needed)")

    def _close_soon(self, session: ViewerSession, reason: str) -> None:
        task = asyncio.create_task(self.close_session(session.peer_id, reason))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _supervise_session(self, session: ViewerSession) -> None:
        """Ends a session that never connects, and one past the opt-in cap (no timer at
        all without one: a view lasts as long as Alexa keeps it)."""
        cap = self._session_cap()
        session.ends_at = None if cap is None else session.started + cap
        first = self.connect_timeout if cap is None else min(self.connect_timeout, cap)
        try:
            try:
                await asyncio.wait_for(session.connected.wait(), first)
            except TimeoutError:
                late = cap is None or self.connect_timeout < cap
                reason = "ICE did not connect" if late else "maximum session length reached"
                await self.close_session(session.peer_id, reason)
                return
            if session.ends_at is None:
                return
            await asyncio.sleep(max(0.0, session.ends_at - time.monotonic()))
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
        await add_candidate(session, payload)

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
        self.health.signaling(up)

    async def _report(self, endpoint_id: str, connectivity: str) -> None:
        if self.on_connectivity is None:
            return
        try:
            result = await asyncio.to_thread(self.on_connectivity, endpoint_id, connectivity)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("connectivity callback failed")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if self.signaling is not None and self.signaling.connected.is_set():
                await self.health.heartbeat()
