"""A person detector whose model ships in the wheel: OpenCV's HOG people detector.

    detector = HogPersonDetector()       # needs the detect extra (opencv-python-headless)
    found = detector.detect(luma)        # the best PersonFound, or None

Dalal and Triggs' histogram-of-oriented-gradients pedestrian model with its
linear SVM, built into OpenCV (``HOGDescriptor_getDefaultPeopleDetector``): no
download at run time, wheels for x86-64 and aarch64. It finds upright people
of at least ~100 pixels height in the picture scaled to ``width`` (640), at
about 100 ms a look on one core, so the agent looks at most once a second, and
only while the picture moves when pixel motion is on too. OpenCV 5 dropped
it, hence ``opencv-python-headless<5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alexa_doorbell.lambda_config import ConfigError

WIDTH = 640  # pixels the picture is scaled to before looking
MIN_WEIGHT = 0.8  # the SVM's margin a window needs to count as a person


@dataclass(frozen=True)
class PersonFound:
    score: float  # 0-1, the SVM margin squashed by a logistic
    box: tuple[int, int, int, int]  # x, y, w, h in the original picture's pixels


class HogPersonDetector:
    def __init__(self, *, width: int = WIDTH, min_weight: float = MIN_WEIGHT) -> None:
        try:
            import cv2
        except ImportError:
            raise ConfigError(
                "person_detector needs OpenCV: install the detect extra "
                "(pip install 'alexa-doorbell[detect]' or uv sync --extra detect)"
            ) from None
        if not hasattr(cv2, "HOGDescriptor"):
            raise ConfigError(
                f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 dropped it): "
                "install opencv-python-headless<5"
            )
        self._cv2 = cv2
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.width = width
        self.min_weight = min_weight

    def detect(self, luma: np.ndarray) -> PersonFound | None:
        """The most certain person in an 8-bit (or float) luma picture, or None."""
        cv2 = self._cv2
        picture = luma if luma.dtype == np.uint8 else np.clip(luma, 0, 255).astype(np.uint8)
        h, w = picture.shape[:2]
        scale = self.width / w if w > self.width else 1.0
        if scale != 1.0:
            picture = cv2.resize(
                picture, (self.width, round(h * scale)), interpolation=cv2.INTER_AREA
            )
        rects, weights = self._hog.detectMultiScale(
            picture, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        best: PersonFound | None = None
        for (x, y, bw, bh), weight in zip(rects, np.asarray(weights).ravel(), strict=False):
            if weight < self.min_weight:
                continue
            score = 1 / (1 + math.exp(-float(weight)))
            if best is None or score > best.score:
                box = tuple(round(v / scale) for v in (x, y, bw, bh))
                best = PersonFound(score, box)  # type: ignore[arg-type]
        return best
