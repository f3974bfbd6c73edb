"""The built-in input: pixel motion and the person detector on the agent's own frames.

    analyzer = FrameAnalyzer("front-door", dispatcher.emit_threadsafe, motion=True, person=True)
    analyzer.offer(frame)      # from the loop that decodes; returns at once

The agent offers every frame it decodes for its viewers; the analyzer takes one
every 1/``fps`` seconds, and only while the previous one is done, and looks at
it on a worker thread of its own: the video path never waits. Pixel motion
reports its transitions; the person detector looks at most once a second (and,
with pixel motion on, only while the picture moves) and reports a person with
the frame as a JPEG snapshot: once while they stay, again after
``PERSON_REPEAT`` seconds unseen (the sink's cooldown decides what Alexa hears).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from alexa_doorbell.inputs.pixels import PixelMotion, downscale, luma_plane
from alexa_doorbell.inputs.sink import Detection, Event, Motion

log = logging.getLogger(__name__)

PERSON_INTERVAL = 1.0  # seconds between looks for a person
PERSON_REPEAT = 10.0  # seconds before the same person is reported again


class FrameAnalyzer:
    def __init__(
        self,
        endpoint_id: str,
        emit: Callable[[Event], None],
        *,
        motion: bool = True,
        person: bool = False,
        fps: float = 4.0,
        area: float = 0.02,
        detector: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint_id = endpoint_id
        self.emit = emit
        self.interval = 1.0 / fps
        self.clock = clock
        self.pixel_motion = PixelMotion(area=area) if motion else None
        if person and detector is None:
            from alexa_doorbell.inputs.person import HogPersonDetector

            detector = HogPersonDetector()
        self.detector = detector if person else None
        self.samples = 0  # frames analysed
        self.busy_seconds = 0.0  # time spent analysing (CPU of the worker thread)
        self._next = 0.0
        self._last_person_look = 0.0
        self._last_person: float | None = None
        self._busy = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"frames-{endpoint_id}")
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.pixel_motion is not None or self.detector is not None

    @property
    def busy(self) -> bool:
        """A frame is being analysed (the next offers are skipped)."""
        return self._busy.locked()

    def offer(self, frame: Any, at: float | None = None) -> bool:
        """A decoded frame (``av.VideoFrame`` or array); True when it will be analysed."""
        now = time.monotonic()
        if self._closed or now < self._next or not self._busy.acquire(blocking=False):
            return False
        self._next = now + self.interval
        when = self.clock() if at is None else at
        try:
            self._pool.submit(self._analyse, frame, when)
        except RuntimeError:  # shut down meanwhile
            self._busy.release()
            return False
        return True

    def _analyse(self, frame: Any, at: float) -> None:
        started = time.thread_time()
        try:
            luma = luma_plane(frame)
            self.samples += 1
            moving = True
            if self.pixel_motion is not None:
                change = self.pixel_motion.feed(downscale(luma), at)
                if change is not None:
                    self.emit(Motion(self.endpoint_id, change, at, source="pixels"))
                moving = self.pixel_motion.detected
            if (
                self.detector is not None
                and moving
                and at - self._last_person_look >= PERSON_INTERVAL
            ):
                self._last_person_look = at
                self._look_for_person(frame, luma, at)
        except Exception:
            log.exception("frames: analysing a frame of %s failed", self.endpoint_id)
        finally:
            self.busy_seconds += time.thread_time() - started
            self._busy.release()

    def _look_for_person(self, frame: Any, luma: np.ndarray, at: float) -> None:
        found = self.detector.detect(luma)  # type: ignore[union-attr]
        if found is None:
            return
        if self._last_person is not None and at - self._last_person < PERSON_REPEAT:
            self._last_person = at
            return
        self._last_person = at
        self.emit(
            Detection(self.endpoint_id, "person", found.score, at, _jpeg(frame), source="hog")
        )

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


def _jpeg(frame: Any) -> bytes | None:
    """The frame as a JPEG for the snapshot; None when it cannot be made."""
    import av

    from alexa_doorbell.camera.jpeg import encode_jpeg

    try:
        if isinstance(frame, np.ndarray):
            fmt = "gray" if frame.ndim == 2 else "rgb24"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, np.uint8), format=fmt)
        return encode_jpeg(frame)
    except Exception:
        log.exception("frames: no snapshot from this frame")
        return None
