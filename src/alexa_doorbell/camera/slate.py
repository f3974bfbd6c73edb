"""The "reconnecting" picture viewers see while the camera's source is down.

A dark frame of the camera's own size with RECONNECTING in large letters and, under
it, how long the camera has been gone, so a viewer sees the agent is alive and trying
(a frozen or black picture says neither). It carries no test-pattern stamp:
:func:`~alexa_doorbell.camera.pattern.read_stamp` finds none in it. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from alexa_doorbell.camera.pattern import glyph

Y_BACKGROUND, Y_TEXT, Y_DIM = 40, 220, 150
SLATE_FPS = 5.0  # a still picture: a few frames a second keep the stream alive
TITLE = "RECONNECTING"


class Slate:
    """Renders yuv420p frames (one H*3/2 x W array) of the slate at one size."""

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError("slate width and height must be even")
        self.width, self.height = width, height
        self._base = np.full((height * 3 // 2, width), 128, np.uint8)
        self._base[:height] = Y_BACKGROUND
        # The title as wide as about 3/4 of the picture.
        self._title_scale = max(1, (width * 3 // 4) // (6 * len(TITLE)))
        self._small = max(1, self._title_scale // 3)
        top = height // 2 - 8 * self._title_scale
        self._text(self._base, TITLE, self._title_scale, max(0, top), Y_TEXT)
        self._status_top = min(height - 8 * self._small, height // 2 + 2 * self._title_scale)

    def render(self, down_for: float) -> np.ndarray:
        """The slate after ``down_for`` seconds without the camera."""
        buf = self._base.copy()
        dots = "." * (1 + int(down_for * 2) % 3)
        self._text(buf, f"{int(down_for)} S{dots}", self._small, self._status_top, Y_DIM)
        return buf

    def _text(self, buf: np.ndarray, text: str, scale: int, top: int, luma: int) -> None:
        gw = 6 * scale
        width = min(len(text), self.width // gw)
        left = max(0, (self.width - width * gw) // 2)
        if top < 0 or top + 7 * scale > self.height:
            return
        for i, ch in enumerate(text[:width]):
            mask = np.kron(glyph(ch), np.ones((scale, scale), bool))
            x0 = left + i * gw
            region = buf[top : top + 7 * scale, x0 : x0 + 5 * scale]
            region[mask[: region.shape[0], : region.shape[1]]] = luma
