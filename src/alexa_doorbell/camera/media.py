"""Media sources and sinks, by the names callers have always imported.

The sources live in :mod:`alexa_doorbell.camera.sources` (one module per kind:
``testsrc``, ``container`` for files, RTSP and webcams decoded, ``passthrough`` for
H.264 sent as it is, ``audio``), the talk-back sinks in :mod:`alexa_doorbell.camera.sinks`.
"""

from __future__ import annotations

from alexa_doorbell.camera.sinks import (
    DISCARD_SINKS,
    AudioSink,
    DiscardSink,
    SpeakerSink,
    WavSink,
    discards,
    open_sink,
)
from alexa_doorbell.camera.sources import (
    AUDIO_PTIME,
    AUDIO_RATE,
    AUDIO_SAMPLES,
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    AudioSource,
    ContainerAudioSource,
    ContainerVideoSource,
    H264PassthroughSource,
    MediaSourceError,
    SilenceSource,
    TestPatternSource,
    ToneSource,
    VideoSource,
    check_video_spec,
    has_audio,
    open_audio_source,
    open_video_source,
    redact_url,
    source_present,
    webcam_input,
)

__all__ = [
    "AUDIO_PTIME",
    "AUDIO_RATE",
    "AUDIO_SAMPLES",
    "DISCARD_SINKS",
    "VIDEO_CLOCK",
    "VIDEO_TIME_BASE",
    "AudioSink",
    "AudioSource",
    "ContainerAudioSource",
    "ContainerVideoSource",
    "DiscardSink",
    "H264PassthroughSource",
    "MediaSourceError",
    "SilenceSource",
    "SpeakerSink",
    "TestPatternSource",
    "ToneSource",
    "VideoSource",
    "WavSink",
    "check_video_spec",
    "discards",
    "has_audio",
    "open_audio_source",
    "open_sink",
    "open_video_source",
    "redact_url",
    "source_present",
    "webcam_input",
]
