"""Where a camera's pictures come from: ``testsrc``, a file, ``rtsp://...``, ``webcam[:device]``.

    check_video_spec(spec)                   # MediaSourceError: can never work (at start)
    src = open_video_source(spec, 1280, 720, 30)
    source_present(spec)                     # cheap: is the camera there now?

Video sources yield ``av.VideoFrame`` in real time; an H.264 camera (or file) whose
profile suits Alexa is not decoded at all: :class:`H264PassthroughSource` yields its
access units for the fan-out to send as they are. Audio sources yield 20 ms frames.
Blocking demux/decode runs in a worker thread so the event loop stays free.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from alexa_doorbell.camera.sources.audio import (
    AudioSource,
    ContainerAudioSource,
    SilenceSource,
    ToneSource,
    has_audio,
    open_audio_source,
)
from alexa_doorbell.camera.sources.base import (
    AUDIO_PTIME,
    AUDIO_RATE,
    AUDIO_SAMPLES,
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    MediaSourceError,
    Pacer,
    VideoSource,
    redact_url,
)
from alexa_doorbell.camera.sources.container import ContainerVideoSource
from alexa_doorbell.camera.sources.passthrough import H264PassthroughSource
from alexa_doorbell.camera.sources.rtsp import is_rtsp, rtsp_address, rtsp_options, rtsp_reachable
from alexa_doorbell.camera.sources.testsrc import TestPatternSource
from alexa_doorbell.camera.sources.webcam import open_webcam, webcam_input, webcam_present

__all__ = [
    "AUDIO_PTIME",
    "AUDIO_RATE",
    "AUDIO_SAMPLES",
    "VIDEO_CLOCK",
    "VIDEO_TIME_BASE",
    "AudioSource",
    "ContainerAudioSource",
    "ContainerVideoSource",
    "H264PassthroughSource",
    "MediaSourceError",
    "Pacer",
    "SilenceSource",
    "TestPatternSource",
    "ToneSource",
    "VideoSource",
    "check_video_spec",
    "has_audio",
    "open_audio_source",
    "open_video_source",
    "redact_url",
    "source_kind",
    "source_present",
    "webcam_input",
]

log = logging.getLogger(__name__)

SourceKind = Literal["testsrc", "rtsp", "webcam", "file"]


def source_kind(spec: str) -> SourceKind:
    """What ``spec`` names; MediaSourceError for what can never be a source."""
    if spec in ("testsrc", "test", "pattern"):
        return "testsrc"
    if is_rtsp(spec):
        try:
            rtsp_address(spec)
        except ValueError:
            raise MediaSourceError(
                f"video source {redact_url(spec)!r} has no camera address: rtsp://host[:port]/path"
            ) from None
        return "rtsp"
    if spec == "webcam" or spec.startswith("webcam:"):
        return "webcam"
    if "://" in spec or not Path(spec).exists():
        raise MediaSourceError(
            f"video source {redact_url(spec)!r} is not testsrc, rtsp://..., webcam[:device] "
            "or an existing file"
        )
    return "file"


def check_video_spec(spec: str) -> None:
    """Refuse at start what no retry can fix (a bad scheme, a file that does not exist)."""
    source_kind(spec)


def source_present(spec: str) -> bool:
    """Whether the source looks reachable now, without opening it (an idle camera's check)."""
    kind = source_kind(spec) if spec else "testsrc"
    if kind == "rtsp":
        return rtsp_reachable(spec)
    if kind == "webcam":
        return webcam_present(spec)
    if kind == "file":
        return os.access(spec, os.R_OK)
    return True


def _try_passthrough(spec: str, policy: str, **kwargs: Any) -> VideoSource | None:
    """The H.264 stream as it is when ``policy`` and its profile allow, else None."""
    if policy == "never":
        return None
    try:
        src = H264PassthroughSource(spec, **kwargs)
    except MediaSourceError as exc:
        log.info("transcoding %s: %s", redact_url(spec), exc)
        return None
    reason = src.transcode_reason(policy)
    if reason is not None:
        src.close()
        log.info("transcoding %s: %s", redact_url(spec), reason)
        return None
    log.info(
        "passing %s through without re-encoding (H.264 %s, %dx%d)",
        redact_url(spec),
        src.sps.profile_level_id if src.sps else "?",
        src.width,
        src.height,
    )
    return src


def open_video_source(
    spec: str,
    width: int,
    height: int,
    fps: float,
    *,
    passthrough: str = "auto",
    reopen: bool = False,
) -> VideoSource:
    """``testsrc``, a file path, ``rtsp://...`` or ``webcam[:device]``.

    ``passthrough``: ``auto`` sends an RTSP camera's (or file's) H.264 as it is
    when its profile suits Alexa (see :func:`~alexa_doorbell.camera.h264.transcode_reason`);
    ``never`` always decodes and re-encodes at ``width`` x ``height``. ``reopen``:
    the stream was seen before (after an outage), so a short probe is enough.
    """
    kind = source_kind(spec)
    if kind == "testsrc":
        return TestPatternSource(width, height, fps)
    if kind == "rtsp":
        opts = rtsp_options(reopen=reopen)
        src = _try_passthrough(spec, passthrough, options=opts, live=True)
        return src or ContainerVideoSource(spec, width, height, fps, options=opts, live=True)
    if kind == "webcam":
        return open_webcam(spec, width, height, fps)
    src = _try_passthrough(spec, passthrough, loop=True)
    return src or ContainerVideoSource(spec, width, height, fps, loop=True)
