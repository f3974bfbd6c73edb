"""Audio fan-out: each 20 ms frame encoded once per codec in use, sent by every viewer.

aiortc's own Opus/PCMU/PCMA encoders run once per camera; every viewer of a codec
gets the same payloads. The ``processor``
(:class:`~alexa_doorbell.camera.talk.OutgoingAudio`) sees each frame first: echo
cancellation and the half-duplex mute act on the camera's one output.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import av
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from alexa_doorbell.camera.shared import EncodedFrame, Fanout
from alexa_doorbell.camera.sources import AudioSource

log = logging.getLogger("alexa_doorbell.camera.fanout")


class FanoutAudioTrack(MediaStreamTrack):
    """One viewer's audio: raw frames, or once-encoded payloads of ``codec``."""

    kind = "audio"

    def __init__(self, fanout: AudioFanout, max_queue: int = 25) -> None:
        super().__init__()
        self._fanout = fanout
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queue)
        self.codec: str | None = None

    def use_shared(self, codec: str) -> None:
        """From now on this viewer gets ``codec`` payloads (its sender must share them)."""
        self.codec = codec
        while not self._queue.empty():
            self._queue.get_nowait()

    def deliver(self, item: av.AudioFrame | EncodedFrame) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(item)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        return item

    def stop(self) -> None:
        if self.readyState == "live":
            self._fanout.unsubscribe(self)
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
        super().stop()


# Audio codecs encoded once per camera with aiortc's own encoders.
SHARED_AUDIO_CODECS = {
    "opus": RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2),
    "pcmu": RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000),
    "pcma": RTCRtpCodecParameters(mimeType="audio/PCMA", clockRate=8000),
}


class AudioProcessor(Protocol):
    def process(self, frame: av.AudioFrame) -> av.AudioFrame: ...


class AudioFanout(Fanout):
    """Reads one audio source; encodes each frame once per codec the viewers use."""

    name = "audio-fanout"

    def __init__(self, source: AudioSource, processor: AudioProcessor | None = None) -> None:
        super().__init__(source)
        self.source: AudioSource = source
        self.processor = processor
        self.tracks: set[FanoutAudioTrack] = set()
        self._encoders: dict[str, Encoder] = {}
        self.frames_read = 0
        self.frames_encoded = 0

    def subscribe(self) -> FanoutAudioTrack:
        track = FanoutAudioTrack(self)
        self.tracks.add(track)
        self._wake.set()
        return track

    def _encode(self, codec: str, frame: av.AudioFrame) -> EncodedFrame | None:
        encoder = self._encoders.get(codec)
        if encoder is None:
            encoder = self._encoders[codec] = get_encoder(SHARED_AUDIO_CODECS[codec])
        payloads, timestamp = encoder.encode(frame)
        self.frames_encoded += 1
        return EncodedFrame(payloads, timestamp) if payloads else None

    async def _run(self) -> None:
        try:
            while True:
                if not self.tracks:
                    self._wake.clear()
                    await self._wake.wait()
                frame = await self.source.read()
                self.frames_read += 1
                if self.processor is not None:
                    frame = self.processor.process(frame)
                encoded: dict[str, EncodedFrame | None] = {}
                for t in list(self.tracks):
                    if t.codec is None:
                        t.deliver(frame)
                        continue
                    if t.codec not in encoded:
                        encoded[t.codec] = self._encode(t.codec, frame)
                    if (item := encoded[t.codec]) is not None:
                        t.deliver(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("audio source stopped: %s", exc)
            for t in list(self.tracks):
                t.stop()
