"""Talk at the door: full duplex, half duplex (push to talk) or none.

Alexa knows two kinds of talk (``isFullDuplexAudioSupported`` in Discovery):
full duplex, where an Echo Show's microphone stays open (tap to talk, tap to
stop), and half duplex, where the user holds the button while speaking. A
camera with nothing at the door to play the user's voice has no talk at all:
its answer sends audio and takes none (``sendonly``). Which mode a camera
has is ``CameraConfig.talk_mode`` (``talk``, or what the hardware allows); see
docs/camera.md.

Per camera, not per viewer, because there is one speaker and one microphone
at the door:

- :class:`TalkbackHub` is the door's speaker seen from the camera: every
  viewer's talk-back as it is played, on one timeline (the far-end reference
  of the echo canceller), and whether it carries voice right now.
- :class:`OutgoingAudio` processes the door's microphone once, before the
  audio is encoded for every viewer: echo cancellation in full duplex, and in
  half duplex silence while the talk-back carries voice (one viewer talking
  mutes the door for all of them, as an intercom does).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Literal, Protocol

import av
import numpy as np

from alexa_doorbell.camera.sinks import discards
from alexa_doorbell.camera.sources import AudioSource
from alexa_doorbell.config import CameraConfig

log = logging.getLogger(__name__)

TalkMode = Literal["full", "half", "none"]
TALK_MODES: tuple[TalkMode, ...] = ("full", "half", "none")

RATE = 48000
# Talk-back louder than this carries voice (an Echo's closed microphone sends
# digital silence; a quiet room is below -55 dBFS).
VOICE_THRESHOLD_DBFS = -45.0
# How long the door stays muted once silence follows voice, counted from the end
# of the last voiced chunk: the loud part of the room's reverberation, short
# enough that the visitor is heard again within 300 ms of the user releasing
# the button (the talk-back in flight takes ~60 ms, the camera's audio back to
# the Echo ~100 ms). Pauses between words may unmute the door: harmless, the
# speaker is silent then.
VOICE_HANGOVER = 0.06
# Voice followed by nothing at all (the viewer stopped sending, or left): the
# door is muted at most this long after the last chunk arrived.
VOICE_IDLE = 0.3
# The microphone may fall this far behind the clock (a stall: its samples were
# lost) before the echo reference is re-anchored on the clock.
RESYNC = 0.06
# A speaker's buffer never holds more than this: a stream further ahead is re-anchored.
MAX_AHEAD = 0.5
TIMELINE_SECONDS = 4.0


def answer_direction(mode: TalkMode) -> str:
    """The answer's audio direction: talk needs the return path; no talk refuses it."""
    return "sendonly" if mode == "none" else "sendrecv"


def full_duplex(mode: TalkMode) -> bool:
    """Discovery's ``isFullDuplexAudioSupported``: only full duplex says true."""
    return mode == "full"


class _Canceller(Protocol):
    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray: ...


class TalkbackStream:
    """One viewer's talk-back as the door's speaker plays it (see :class:`TalkbackHub`)."""

    def __init__(self, hub: TalkbackHub, name: str, plays_aloud: bool = True) -> None:
        self.hub = hub
        self.name = name
        # A speaker queues what it is given; a recorder (a .wav) plays nothing, so
        # its talk-back counts as heard the moment it arrives.
        self.plays_aloud = plays_aloud
        self.cursor: int | None = None  # timeline sample where this stream plays next
        self.samples = 0
        # Voice ends on evidence: a quiet chunk after voiced ones (an Echo whose
        # button is released sends silence), not a late packet (jitter).
        self.voiced = False
        self.voice_until = -math.inf
        self.last_arrival = -math.inf

    def voice_active(self, t: float) -> bool:
        if self.voiced:
            return t - self.last_arrival < VOICE_IDLE
        return t < self.voice_until

    def write(self, pcm: np.ndarray) -> None:
        self.hub._write(self, pcm)

    def close(self) -> None:
        self.hub._streams.discard(self)


class TalkbackHub:
    """What the door's speaker plays, on one timeline, and whether it is voice.

    Each viewer's stream is queued as a speaker queues it: it plays where the
    last chunk ended, or now when the speaker ran dry. Streams of several
    viewers mix. :meth:`reference` reads the mix for a span of time (the echo
    canceller's far end); :meth:`voice_active` is true from a voiced chunk
    until a quiet one has come and :data:`VOICE_HANGOVER` has passed since the
    voice played out.
    """

    def __init__(
        self,
        *,
        rate: int = RATE,
        threshold_dbfs: float = VOICE_THRESHOLD_DBFS,
        hangover: float = VOICE_HANGOVER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.threshold = 32768 * 10 ** (threshold_dbfs / 20)
        self.hangover = hangover
        self.clock = clock
        self._epoch = clock()
        self._ring = np.zeros(int(TIMELINE_SECONDS * rate), np.int32)
        self._cleared = 0  # timeline samples up to here are zeroed or written
        self._streams: set[TalkbackStream] = set()
        self.voiced_chunks = 0

    def stream(self, name: str, plays_aloud: bool = True) -> TalkbackStream:
        s = TalkbackStream(self, name, plays_aloud)
        self._streams.add(s)
        return s

    def now_sample(self, t: float | None = None) -> int:
        return int(((self.clock() if t is None else t) - self._epoch) * self.rate)

    def _clear_to(self, end: int) -> None:
        n = len(self._ring)
        start = max(self._cleared, end - n)
        if end <= start:
            return
        a, b = start % n, end % n
        if end - start >= n:
            self._ring[:] = 0
        elif a < b:
            self._ring[a:b] = 0
        else:
            self._ring[a:] = 0
            self._ring[:b] = 0
        self._cleared = end

    def _write(self, stream: TalkbackStream, pcm: np.ndarray) -> None:
        now = self.now_sample()
        ahead = MAX_AHEAD * self.rate
        if (
            not stream.plays_aloud
            or stream.cursor is None
            or not now <= stream.cursor <= now + ahead
        ):
            stream.cursor = now  # the speaker ran dry (or a stream ran away): play now
        start, end = stream.cursor, stream.cursor + len(pcm)
        stream.cursor = end
        stream.samples += len(pcm)
        self._clear_to(end)
        n = len(self._ring)
        idx = np.arange(start, end) % n
        self._ring[idx] += pcm.astype(np.int32)
        stream.last_arrival = self.clock()
        if len(pcm) and float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > self.threshold:
            self.voiced_chunks += 1
            stream.voiced = True
            stream.voice_until = self._epoch + end / self.rate + self.hangover
        else:
            stream.voiced = False

    def reference(self, end_time: float, samples: int) -> np.ndarray:
        """The mix the speaker played in the ``samples`` before ``end_time`` (int16)."""
        return self.reference_at(self.now_sample(end_time), samples)

    def reference_at(self, end: int, samples: int) -> np.ndarray:
        """The mix the speaker played in the ``samples`` before timeline sample ``end``."""
        start = end - samples
        self._clear_to(end)
        n = len(self._ring)
        if start < self._cleared - n:  # older than the timeline keeps
            return np.zeros(samples, np.int16)
        out = self._ring[np.arange(start, end) % n]
        return np.clip(out, -32768, 32767).astype(np.int16)

    def voice_active(self, t: float | None = None) -> bool:
        """Whether any viewer's talk-back carries voice at ``t`` (now)."""
        t = self.clock() if t is None else t
        return any(s.voice_active(t) for s in self._streams)


class OutgoingAudio:
    """The door's microphone, processed once for every viewer (AudioFanout's processor)."""

    def __init__(
        self,
        mode: TalkMode,
        hub: TalkbackHub,
        canceller: _Canceller | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.hub = hub
        self.canceller = canceller
        self.clock = clock
        self.frames = 0
        self.muted_frames = 0
        self.muted = False
        # Timeline sample where the next microphone frame's reference ends. The
        # microphone's samples are contiguous, so are the reference's: read on from
        # the last frame instead of from the clock (whose jitter between two frames
        # would shift the echo path the canceller is learning).
        self._ref_end: int | None = None
        self.resyncs = 0

    def process(self, frame: av.AudioFrame) -> av.AudioFrame:
        self.frames += 1
        if self.canceller is None and self.mode != "half":
            return frame
        now = self.clock()
        pcm = frame.to_ndarray().reshape(-1).astype(np.int16)
        if self.canceller is not None:
            far = self.hub.reference_at(self._reference_end(now, len(pcm)), len(pcm))
            pcm = self.canceller.process(pcm, far)
        if self.mode == "half":
            muted = self.hub.voice_active(now)
            if muted != self.muted:
                log.debug("door microphone %s", "muted (talk-back)" if muted else "open")
                self.muted = muted
            if muted:
                self.muted_frames += 1
                pcm = np.zeros_like(pcm)  # silence frames: the track keeps its timing
        out = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = frame.sample_rate
        out.pts = frame.pts
        out.time_base = frame.time_base
        return out

    def _reference_end(self, now: float, samples: int) -> int:
        clock = self.hub.now_sample(now)
        if self._ref_end is None or self._ref_end + samples < clock - RESYNC * self.hub.rate:
            if self._ref_end is not None:
                self.resyncs += 1  # the source stalled: the canceller re-learns
            self._ref_end = clock
        elif self._ref_end + samples > clock:
            # Never read past now: what the speaker plays after now is not on the
            # timeline yet, and a reference read early stays silent where the door
            # hears the user (the canceller removes nothing). A frame is processed
            # after it was captured, never before: running ahead means the anchor was
            # a late frame (under load, a burst of them), so move it to this one.
            self._ref_end = clock
        else:
            self._ref_end += samples
        return self._ref_end

    def stats(self) -> dict[str, object]:
        d: dict[str, object] = {
            "talk": self.mode,
            "frames": self.frames,
            "muted_frames": self.muted_frames,
            "talkback_voiced_chunks": self.hub.voiced_chunks,
        }
        stats = getattr(self.canceller, "stats", None)
        if stats is not None:
            d["aec_delay_ms"] = stats.delay_ms
            # Microphone in / out while the speaker played: the ERLE when the visitor
            # is silent, less when they talk too (their voice is kept).
            d["aec_reduction_db"] = stats.erle_db
            d["resyncs"] = self.resyncs
        return d


def outgoing_audio(
    camera: CameraConfig, talk: str, hub: TalkbackHub, source: AudioSource
) -> OutgoingAudio:
    """The door's microphone path for a camera's talk mode; warns about set-ups that
    drop what viewers say or make them hear themselves."""
    if talk != "none" and discards(camera.sink):
        log.warning(
            "%s offers talk (talk = %r) but its sink is %r: what viewers say is dropped"
            " unheard. Set sink = 'speaker' (or a .wav path), or talk = 'none' for a"
            " camera without a speaker.",
            camera.endpoint_id,
            talk,
            camera.sink,
        )
    canceller = None
    if talk == "full" and source.captures_room:
        if camera.aec:
            from alexa_doorbell.camera.aec import EchoCanceller

            canceller = EchoCanceller()
        elif camera.sink == "speaker":
            log.warning(
                "%s: full duplex with a speaker and no echo cancellation (aec = false):"
                " viewers hear themselves. Set aec = true, or talk = 'half'.",
                camera.endpoint_id,
            )
    return OutgoingAudio(talk, hub, canceller)
