"""H.264 from an RTSP camera or a file, sent as it is (demuxed, never decoded)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import av

from alexa_doorbell.camera.h264 import AccessUnitWriter, SpsInfo, transcode_reason
from alexa_doorbell.camera.sources.base import (
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    MediaSourceError,
    VideoSource,
    redact_url,
)

log = logging.getLogger(__name__)


class H264PassthroughSource(VideoSource):
    """H.264 from an RTSP camera or a file, demuxed but never decoded.

    ``read_packet()`` yields one Annex B access unit per frame with SPS/PPS in
    front of every IDR (:class:`~alexa_doorbell.camera.h264.AccessUnitWriter`),
    ``pts`` in 1/90000 s on the agent's clock and ``is_keyframe`` set on IDRs.
    Its keyframes come when the camera sends them: set the camera's I-frame
    interval to 1-2 s so new viewers see a picture quickly.
    """

    passthrough = True
    PROBE_PACKETS = 300  # how far to look for in-band SPS when the SDP/extradata has none

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        loop: bool = False,
        live: bool = False,
    ) -> None:
        self.url, self.format, self.options = url, format, options or {}
        self.loop, self.live = loop, live
        self._container: Any = None
        self._pending: list[av.Packet] = []
        self._start = time.monotonic()
        self._epoch = self.epoch = self._start
        self._offset: float | None = None  # source seconds -> agent seconds
        self._loop_offset = 0.0
        self._last: float | None = None
        self._decoder: Any = None
        self.reordered = 0
        self._lock = threading.Lock()  # as ContainerVideoSource: no close during a read
        self._open()
        stream = self._container.streams.video[0]
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self.has_b_frames = bool(stream.codec_context.has_b_frames)
        if self.writer.sps is None:  # parameter sets only in band: find the first SPS
            while len(self._pending) < self.PROBE_PACKETS and self.writer.sps is None:
                packet = next(self._packets, None)
                if packet is None:
                    break
                if packet.size:
                    self.writer.write(bytes(packet))
                    self._pending.append(packet)

    def _open(self) -> None:
        try:
            self._container = av.open(
                self.url, format=self.format, options=self.options, timeout=(5.0, 5.0)
            )
        except (av.FFmpegError, OSError) as exc:
            raise MediaSourceError(
                f"cannot open video source {redact_url(self.url)!r}: {exc}"
            ) from None
        if not self._container.streams.video:
            self.close()
            raise MediaSourceError(f"{redact_url(self.url)!r} has no video stream")
        stream = self._container.streams.video[0]
        if stream.codec_context.name != "h264":
            self.close()
            raise MediaSourceError(f"video is {stream.codec_context.name}, not H.264")
        self._time_base = stream.time_base
        self.writer = AccessUnitWriter(stream.codec_context.extradata)
        self._packets = iter(self._container.demux(stream))

    @property
    def sps(self) -> SpsInfo | None:
        return self.writer.sps_info

    def transcode_reason(self, policy: str = "auto") -> str | None:
        """Why this stream cannot pass through (None: it can)."""
        return transcode_reason(
            self.sps,
            has_b_frames=self.has_b_frames,
            width=self.width,
            height=self.height,
            policy=policy,
        )

    def _next(self) -> tuple[bytes, bool, float]:
        while True:
            if self._pending:
                packet = self._pending.pop(0)
            else:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    if not self.loop:
                        raise MediaSourceError(
                            f"video source {redact_url(self.url)!r} ended"
                        ) from None
                    self._loop_offset = (self._last or 0.0) + 1 / self.fps
                    self._container.close()
                    self._open()
                    continue
                except av.FFmpegError as exc:
                    raise MediaSourceError(
                        f"video source {redact_url(self.url)!r} failed: {exc}"
                    ) from None
            if not packet.size:  # the demuxer's end-of-stream marker
                continue
            data, idr = self.writer.write(bytes(packet))
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None:
                t = float(ts * self._time_base) + self._loop_offset
            else:  # e.g. RTSP's first packet, before the RTP clock is known
                t = self._last + 1 / self.fps if self._last is not None else 0.0
            if self._last is not None and t < self._last:
                self.reordered += 1  # B-frames the stream's parameters did not announce
                if self.reordered == 1:
                    log.warning(
                        "%s reorders pictures (B-frames): set passthrough = 'never' for it",
                        redact_url(self.url),
                    )
            self._last = t
            return data, idr, t

    def _locked_next(self) -> tuple[bytes, bool, float]:
        with self._lock:
            if self._container is None:
                raise MediaSourceError("video source closed")
            return self._next()

    async def read_packet(self) -> av.Packet:
        data, idr, t = await asyncio.to_thread(self._locked_next)
        now = time.monotonic()
        if not self.live:  # files: play at their own pace
            delay = self._start + t - now
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:
                self._start -= delay
        # Source time on the agent's clock; re-anchored when the source jumps
        # (camera restart, clock wrap) so RTP timestamps keep advancing.
        agent_t = (time.monotonic() - self._epoch) if self._offset is None else t + self._offset
        if self._offset is None or abs(agent_t - (time.monotonic() - self._epoch)) > 5:
            self._offset = time.monotonic() - self._epoch - t
            agent_t = t + self._offset
        packet = av.Packet(data)
        packet.pts = packet.dts = int(agent_t * VIDEO_CLOCK)
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = idr
        return packet

    async def read(self) -> av.VideoFrame:
        """Decoded frames, for callers that want pictures rather than packets."""
        while True:
            packet = await self.read_packet()
            if self._decoder is None:
                self._decoder = av.CodecContext.create("h264", "r")
            frames = self._decoder.decode(packet)
            if frames:
                frame = frames[0]
                frame.pts, frame.time_base = packet.pts, VIDEO_TIME_BASE
                return frame

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None
