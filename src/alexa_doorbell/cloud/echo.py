"""A simulated Echo Show: an aiortc peer that offers exactly what a real one offers.

    echo = EchoShow(snapshot_path="seen.png")
    offer = await echo.create_offer()          # shaped like an Echo Show's (docs/PROTOCOLS.md §5)
    await echo.accept(answer_sdp)              # from SendAlexaOfferToMaster or the skill
    await echo.wait_frames(30)
    echo.report()                              # frames, fps, latency, audio both ways

:meth:`EchoShow.watch` does all three with a callable that delivers the offer
and returns the answer. The Echo decodes the camera's video (counting frames,
reading the test pattern's burned-in counter and clock for glass-to-glass
latency, saving a PNG snapshot), records the camera's audio, and talks to the
camera as a real Echo Show does with that camera (:data:`SCREENS`):

- ``watch``: the camera's answer takes no audio (no talk): no talk button, no
  microphone.
- ``tap-to-talk``: Discovery said ``isFullDuplexAudioSupported: true``. "Alexa,
  talk to ..." opens the microphone at once (tap to stop); "Alexa, show me ..."
  opens the feed with the microphone off until :meth:`EchoShow.tap`.
- ``push-to-talk``: half duplex. The microphone sends voice only while the
  button is held (:meth:`EchoShow.press` / :meth:`EchoShow.release`), silence
  otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from alexa_doorbell.camera import rtc_hooks
from alexa_doorbell.camera.media import (
    AUDIO_RATE,
    AudioSink,
    AudioSource,
    DiscardSink,
    SilenceSource,
    ToneSource,
    WavSink,
)
from alexa_doorbell.camera.pattern import read_stamp
from alexa_doorbell.cloud.echo_nack import NACK_CHECK_INTERVAL, RetryingNackGenerator
from alexa_doorbell.cloud.echo_offer import answer_audio_direction, echo_show_offer, full_duplex_of

__all__ = [
    "SCREENS",
    "EchoReport",
    "EchoShow",
    "RetryingNackGenerator",
    "answer_audio_direction",
    "echo_show_offer",
    "full_duplex_of",
    "save_png",
]

log = logging.getLogger(__name__)

ECHO_AUDIO_PREFETCH = 2  # audio packets (20 ms each) buffered before playing

OfferSender = Callable[[str], "Awaitable[str] | str"]

EchoMode = Literal["watch", "tap-to-talk", "push-to-talk"]
Utterance = Literal["show", "talk"]
UTTERANCES: dict[Utterance, str] = {
    "show": '"Alexa, show me the doorbell"',
    "talk": '"Alexa, talk to the doorbell"',
}
# What an Echo Show shows (the project's reference table), by mode and utterance.
SCREENS: dict[tuple[EchoMode, Utterance], str] = {
    ("tap-to-talk", "show"): "feed, talk icon disabled, tap to talk",
    ("tap-to-talk", "talk"): "feed, microphone on, tap to stop",
    ("push-to-talk", "show"): "feed, talk icon disabled, push to talk, release to stop",
    ("push-to-talk", "talk"): "feed, push to talk, release to stop",
    ("watch", "show"): "feed, no talk button",
    ("watch", "talk"): "feed, no talk button",
}


@dataclass
class EchoReport:
    answer_ms: float | None = None
    first_frame_ms: float | None = None  # after the answer
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    first_counter: int | None = None
    last_counter: int | None = None
    stamps_read: int = 0
    latency_ms_median: float | None = None
    latency_ms_p95: float | None = None
    audio_seconds: float = 0.0  # camera -> Echo
    audio_rms: float = 0.0
    talk_seconds: float = 0.0  # Echo -> camera: seconds of voice sent (microphone open)
    mode: str = ""  # watch, tap-to-talk, push-to-talk
    screen: str = ""  # what the Echo shows (SCREENS)
    snapshot: str | None = None
    audio_wav: str | None = None
    video_codec: str = ""
    nacks_repeated: int = 0  # NACKs sent again for packets still missing after a round trip
    latencies: list[float] = field(default_factory=list, repr=False)
    counters: list[int] = field(default_factory=list, repr=False)  # each stamp read, in order

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("latencies", "counters")}


class _Microphone(MediaStreamTrack):
    """The Echo's microphone: voice (a tone, or silence) while open, silence frames when not."""

    kind = "audio"

    def __init__(self, source: AudioSource) -> None:
        super().__init__()
        self.source = source
        self.open = True
        self.frames = 0
        self.voice_frames = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self.frames += 1
        frame = await self.source.read()
        if self.open:
            self.voice_frames += 1
            return frame
        silent = av.AudioFrame.from_ndarray(
            np.zeros((1, frame.samples), np.int16), format="s16", layout="mono"
        )
        silent.sample_rate, silent.pts, silent.time_base = (
            frame.sample_rate,
            frame.pts,
            frame.time_base,
        )
        return silent


class _LevelLog:
    """When each chunk of the camera's audio arrived, its length and RMS (0..1 of full scale)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, float, int]] = []

    def write(self, pcm: np.ndarray) -> None:
        x = pcm.astype(np.float64)
        rms = float(np.sqrt(np.mean(x * x))) / 32768 if len(x) else 0.0
        self.chunks.append((time.monotonic(), rms, len(x)))

    def rms(self, start: float, end: float) -> tuple[float, float]:
        """(RMS, seconds of audio) of what arrived between ``start`` and ``end`` (monotonic)."""
        picked = [(r, n) for t, r, n in self.chunks if start <= t < end]
        samples = sum(n for _, n in picked)
        if not samples:
            return 0.0, 0.0
        power = sum(r * r * n for r, n in picked) / samples
        return math.sqrt(power), samples / AUDIO_RATE

    def first_above(self, start: float, level: float) -> float | None:
        """Seconds from ``start`` until a chunk louder than ``level`` arrived."""
        for t, r, _ in self.chunks:
            if t >= start and r > level:
                return t - start
        return None


class EchoShow:
    """One simulated Echo Show viewing session (make a new one per session).

    ``talk``: the voice its microphone picks up: ``"tone"`` a 660 Hz tone,
    ``None`` silence, ``"off"`` no microphone at all (the offer keeps its
    ``sendrecv`` audio m-line: a user who only watches); ``voice``, any other
    audio source for the user's voice. ``discovery``: the
    camera's Discover.Response endpoint (or its capabilities, or the
    ``isFullDuplexAudioSupported`` value) and ``utterance`` (``"show"`` or
    ``"talk"``) choose what it shows and how it talks (:data:`SCREENS`) once
    the answer is in. Without ``discovery`` the microphone is open for the
    whole session, as with "talk to" on a full-duplex camera.
    """

    def __init__(
        self,
        *,
        talk: str | None = "tone",
        discovery: Any = None,
        utterance: Utterance = "talk",
        snapshot_path: str | Path | None = None,
        wav_path: str | Path | None = None,
        ice_servers: list[RTCIceServer] | None = None,
        snapshot_after: int = 10,
        voice: AudioSource | None = None,
    ) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers or []))
        src: AudioSource = voice or (ToneSource(660.0) if talk == "tone" else SilenceSource())
        self.mic = _Microphone(src)
        self.talk = talk
        self.full_duplex = full_duplex_of(discovery)
        self.utterance: Utterance = utterance
        self.mode: EchoMode | None = None
        self.pushes: list[tuple[float, float | None]] = []  # push-to-talk: (pressed, released)
        self.snapshot_path = Path(snapshot_path) if snapshot_path else None
        self.snapshot_after = snapshot_after
        self.sink: AudioSink = WavSink(wav_path) if wav_path else DiscardSink()
        self.heard = _LevelLog()
        self.sink.tap = self.heard
        self.report_ = EchoReport(audio_wav=str(wav_path) if wav_path else None)
        self._answered_at: float | None = None
        self._first_frame_at: float | None = None
        self._last_frame_at: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._frame_event = asyncio.Event()
        self.offer_sdp = ""
        self.pc.on("track", self._on_track)

    async def create_offer(self) -> str:
        audio = self.pc.addTransceiver(
            "audio" if self.talk == "off" else self.mic, direction="sendrecv"
        )
        # A real Echo's adaptive jitter buffer (libwebrtc NetEq) plays a clean path
        # out within a few packets; aiortc's waits for 4 (80 ms) whatever the path.
        rtc_hooks.set_jitter_buffer(audio.receiver, capacity=16, prefetch=ECHO_AUDIO_PREFETCH)
        video = self.pc.addTransceiver("video", direction="sendrecv")
        self._nack = RetryingNackGenerator()
        rtc_hooks.set_nack_generator(video.receiver, self._nack)
        # A lost packet no resend repaired costs a real Echo the wait for the next
        # keyframe, not aiortc's 512 packets.
        self._jitter = rtc_hooks.KeyframeSkippingJitterBuffer()
        rtc_hooks.install_jitter_buffer(video.receiver, self._jitter)
        self._tasks.append(asyncio.create_task(self._repeat_nacks(video.receiver)))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer_sdp = echo_show_offer(self.pc.localDescription.sdp)
        return self.offer_sdp

    async def accept(self, answer_sdp: str) -> None:
        self._answered_at = time.monotonic()
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        for line in answer_sdp.splitlines():
            if line.startswith("a=rtpmap:") and "/90000" in line:
                self.report_.video_codec = line.split()[1].split("/")[0]
                break
        self._choose_mode(answer_audio_direction(answer_sdp))

    def _choose_mode(self, camera_audio: str | None) -> None:
        if camera_audio not in ("sendrecv", "recvonly"):
            # The camera takes no audio: there is nothing a talk button could do.
            self.mode = "watch"
        elif self.full_duplex is False:
            self.mode = "push-to-talk"
        else:
            self.mode = "tap-to-talk"
        if self.full_duplex is None:
            self.mic.open = True  # no discovery given: the microphone is simply on
        else:
            self.mic.open = self.mode == "tap-to-talk" and self.utterance == "talk"
        self.report_.mode = self.mode
        self.report_.screen = self.screen

    @property
    def screen(self) -> str:
        """What the Echo shows now (before the answer: only that it is connecting)."""
        if self.mode is None:
            return "connecting"
        if self.mode == "push-to-talk" and self.pushes and self.pushes[-1][1] is None:
            return "feed, microphone on, release to stop"
        if self.mode == "tap-to-talk":
            return SCREENS[(self.mode, "talk" if self.mic.open else "show")]
        return SCREENS[(self.mode, self.utterance)]

    def tap(self) -> bool:
        """Tap the talk button (full duplex): opens or closes the microphone; returns it."""
        if self.mode != "tap-to-talk":
            raise RuntimeError(f"no tap to talk on this camera (mode {self.mode})")
        self.mic.open = not self.mic.open
        return self.mic.open

    def press(self) -> None:
        """Hold the push-to-talk button (half duplex): the microphone sends voice."""
        if self.mode != "push-to-talk":
            raise RuntimeError(f"no push to talk on this camera (mode {self.mode})")
        self.mic.open = True
        self.pushes.append((time.monotonic(), None))

    def release(self) -> float:
        """Let go of the button; returns the monotonic time it was released."""
        if self.mode != "push-to-talk" or not self.pushes or self.pushes[-1][1] is not None:
            raise RuntimeError("the push-to-talk button is not held")
        self.mic.open = False
        now = time.monotonic()
        self.pushes[-1] = (self.pushes[-1][0], now)
        return now

    async def push_to_talk(self, seconds: float) -> tuple[float, float]:
        """Hold the button for ``seconds``; returns (pressed, released), monotonic."""
        self.press()
        await asyncio.sleep(seconds)
        released = self.release()
        return self.pushes[-1][0], released

    async def watch(self, send_offer: OfferSender) -> str:
        """Create the offer, deliver it with ``send_offer`` and apply the answer."""
        offer = await self.create_offer()
        t0 = time.perf_counter()
        answer = send_offer(offer)
        if inspect.isawaitable(answer):
            answer = await answer
        self.report_.answer_ms = (time.perf_counter() - t0) * 1000
        await self.accept(answer)
        return answer

    async def wait_frames(self, count: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.report_.frames < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._frame_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._frame_event.wait(), remaining)
        return self.report_.frames

    async def _repeat_nacks(self, receiver: RTCRtpReceiver) -> None:
        while True:
            await self._nack.waiting.wait()  # idle while nothing is missing
            await asyncio.sleep(NACK_CHECK_INTERVAL)
            seqs = self._nack.due(time.monotonic())
            if seqs and self._nack.ssrc is not None:
                self.report_.nacks_repeated += 1
                await rtc_hooks.send_nack(receiver, self._nack.ssrc, seqs)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._tasks.append(asyncio.create_task(self._read_video(track)))
        elif track.kind == "audio":
            self._tasks.append(asyncio.create_task(self.sink.consume(track)))

    async def _read_video(self, track: MediaStreamTrack) -> None:
        r = self.report_
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                wall_ms = time.time() * 1000
                if self._first_frame_at is None:
                    self._first_frame_at = now
                    if self._answered_at is not None:
                        r.first_frame_ms = (now - self._answered_at) * 1000
                self._last_frame_at = now
                r.frames += 1
                r.width, r.height = frame.width, frame.height
                luma = frame.to_ndarray(format="gray")
                stamp = read_stamp(luma)
                if stamp is not None:
                    r.stamps_read += 1
                    if r.first_counter is None:
                        r.first_counter = stamp.counter
                    r.last_counter = stamp.counter
                    r.counters.append(stamp.counter)
                    r.latencies.append(wall_ms - stamp.wallclock_ms)
                if r.frames == self.snapshot_after and self.snapshot_path is not None:
                    save_png(frame, self.snapshot_path)
                    r.snapshot = str(self.snapshot_path)
                self._frame_event.set()
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def report(self) -> EchoReport:
        r = self.report_
        if self._first_frame_at and self._last_frame_at and r.frames > 1:
            span = self._last_frame_at - self._first_frame_at
            r.fps = (r.frames - 1) / span if span > 0 else 0.0
        if r.latencies:
            lat = sorted(r.latencies)
            r.latency_ms_median = lat[len(lat) // 2]
            r.latency_ms_p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        r.audio_seconds = self.sink.seconds
        r.audio_rms = self.sink.rms
        r.talk_seconds = self.mic.voice_frames * 0.02
        if self.mode is not None:
            r.screen = self.screen
        return r

    async def close(self) -> EchoReport:
        report = self.report()
        if self.snapshot_path is not None and report.snapshot is None:
            report.snapshot = None
        self.mic.stop()
        await self.pc.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sink.close()
        return report


def save_png(frame: av.VideoFrame, path: str | Path) -> Path:
    """Write one decoded frame as a PNG (PyAV's encoder; no imaging library needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = frame.reformat(format="rgb24")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.width, rgb.height, "rgb24"
    data = b"".join(bytes(p) for p in codec.encode(rgb))
    path.write_bytes(data)
    return path
