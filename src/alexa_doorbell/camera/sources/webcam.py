"""A local webcam through FFmpeg's capture device of this OS."""

from __future__ import annotations

import sys
from pathlib import Path

from alexa_doorbell.camera.sources.base import MediaSourceError, VideoSource
from alexa_doorbell.camera.sources.container import ContainerVideoSource


def webcam_input(spec: str) -> tuple[str, str]:
    """(url, format) for ``webcam`` / ``webcam:<device>`` on this OS."""
    device = spec.partition(":")[2]
    if sys.platform.startswith("linux"):
        return device or "/dev/video0", "v4l2"
    if sys.platform == "darwin":
        return device or "0", "avfoundation"
    if sys.platform.startswith("win"):
        return f"video={device or 'Integrated Camera'}", "dshow"
    raise MediaSourceError(f"no webcam support on {sys.platform}")


def open_webcam(spec: str, width: int, height: int, fps: float) -> VideoSource:
    url, fmt = webcam_input(spec)
    opts = {"video_size": f"{width}x{height}", "framerate": str(int(fps))}
    return ContainerVideoSource(url, width, height, fps, format=fmt, options=opts, live=True)


def webcam_present(spec: str) -> bool:
    """Whether the device is plugged in (Linux can say without opening it)."""
    url, fmt = webcam_input(spec)
    return Path(url).exists() if fmt == "v4l2" else True
