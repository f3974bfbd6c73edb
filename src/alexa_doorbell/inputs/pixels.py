"""Motion from the picture itself: a downscaled luma difference. Pure numpy, no I/O.

    small = downscale(luma_plane(frame))          # 720p -> 90x160 block means
    detector = PixelMotion(area=0.02)
    change = detector.feed(small, now)            # True / False on a transition, else None

Two samples a few hundred ms apart are compared block by block (8x8 pixel
means, which average away sensor noise and compression artefacts). The mean
change of the whole picture is taken out first, so auto-exposure or a light
switched on is not motion. Motion is when more than ``area`` of the blocks
changed by more than ``threshold`` luma levels; it ends after ``quiet`` seconds
without. The frames are the ones the agent already decodes for its viewers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BLOCK = 8  # pixels per side of a block
THRESHOLD = 12.0  # luma levels (0-255) a block's mean must move to count as changed
AREA = 0.02  # fraction of the blocks that must change
QUIET = 2.0  # seconds without motion before it is over


def luma_plane(frame: Any) -> np.ndarray:
    """The luma (Y) of an ``av.VideoFrame`` or an array (H x W gray, or H x W x 3 RGB).

    For the planar YUV formats decoders and cameras produce, the Y plane is read
    in place (no conversion); other formats are converted by FFmpeg."""
    if isinstance(frame, np.ndarray):
        if frame.ndim == 2:
            return frame
        if frame.ndim == 3 and frame.shape[2] >= 3:  # RGB: BT.601 weights, as JPEG's Y
            rgb = frame[..., :3].astype(np.float32)
            return rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        raise ValueError(f"a frame array of shape {frame.shape} is neither gray nor RGB")
    name = frame.format.name
    if name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12", "nv21"):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : plane.width]
    # Not frame.to_ndarray(format=...): that converts with a converter cached on the
    # frame, which another thread (the snapshot's JPEG) may be using at the same time.
    from av.video.reformatter import VideoReformatter

    return VideoReformatter().reformat(frame, format="gray").to_ndarray()


def downscale(luma: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Means of ``block`` x ``block`` tiles (edges that do not fill a tile are dropped)."""
    h, w = luma.shape[0] // block * block, luma.shape[1] // block * block
    if h == 0 or w == 0:
        raise ValueError(f"a {luma.shape} picture is smaller than one {block}x{block} block")
    tiles = luma[:h, :w].reshape(h // block, block, w // block, block)
    return tiles.mean(axis=(1, 3), dtype=np.float32)


def changed_fraction(
    previous: np.ndarray, current: np.ndarray, threshold: float = THRESHOLD
) -> float:
    """Share of blocks whose mean moved by more than ``threshold``, beyond the whole
    picture's own shift (exposure, lights)."""
    if previous.shape != current.shape:
        raise ValueError(f"pictures differ in size: {previous.shape} and {current.shape}")
    diff = current - previous
    diff -= np.median(diff)
    return float(np.count_nonzero(np.abs(diff) > threshold)) / diff.size


class PixelMotion:
    """Motion state from successive downscaled pictures, time passed in."""

    def __init__(
        self, *, area: float = AREA, threshold: float = THRESHOLD, quiet: float = QUIET
    ) -> None:
        if not 0 < area <= 1:
            raise ValueError(f"area must be in (0, 1], not {area!r}")
        self.area = area
        self.threshold = threshold
        self.quiet = quiet
        self.detected = False
        self.last_fraction = 0.0
        self._previous: np.ndarray | None = None
        self._last_motion: float | None = None

    def feed(self, small: np.ndarray, now: float) -> bool | None:
        """The next picture: True or False when the state changes, None when not."""
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            return None  # the first picture, or the source changed size: start again
        self.last_fraction = changed_fraction(previous, small, self.threshold)
        if self.last_fraction >= self.area:
            self._last_motion = now
            if not self.detected:
                self.detected = True
                return True
            return None
        if (
            self.detected
            and self._last_motion is not None
            and now - self._last_motion >= self.quiet
        ):
            self.detected = False
            return False
        return None
