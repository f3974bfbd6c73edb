"""What the inputs hand on, and to whom: the ``EventSink`` seam and the dispatcher.

Every input (MQTT topics, Frigate, GPIO, the webhook, the built-in detectors)
turns "something happened at camera X" into one of three events and gives it
to a :class:`Dispatcher`, which calls each sink in order per camera, one event
at a time, never blocking the input. The sink is whatever sends them on: the
notifier toward Alexa, the Home Assistant publisher, a test's recorder.

    class Recorder:
        async def press(self, endpoint_id: str, cause: str) -> None: ...
        async def motion(self, endpoint_id: str, detected: bool, at: float) -> None: ...
        async def detection(self, endpoint_id, label, score, at, snapshot_jpeg) -> None: ...

Motion is the input's own state (``True`` when it says motion, ``False`` when it
says quiet; an input that only ever says "motion now" sends ``True`` then
``False``). The notifier applies the hold (``notifier.debounce.MotionHold``) and the
cooldown (``Store.claim_detection``): the inputs do not drop repeats themselves.
``label`` is already Alexa's ``imageNetClass`` ("person", "package"). Times are
``time.time()`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256  # events waiting for one sink at one camera before new ones are dropped


@runtime_checkable
class EventSink(Protocol):
    """Where the inputs' events go. Methods may take their time; they must not raise."""

    async def press(self, endpoint_id: str, cause: str) -> None: ...

    async def motion(self, endpoint_id: str, detected: bool, at: float) -> None: ...

    async def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None,
        at: float,
        snapshot_jpeg: bytes | None,
    ) -> None: ...


@dataclass(frozen=True)
class Press:
    endpoint_id: str
    cause: str = "PHYSICAL_INTERACTION"
    source: str = ""


@dataclass(frozen=True)
class Motion:
    endpoint_id: str
    detected: bool
    at: float
    source: str = ""


@dataclass(frozen=True)
class Detection:
    endpoint_id: str
    label: str
    score: float | None
    at: float
    snapshot_jpeg: bytes | None = field(default=None, repr=False)
    source: str = ""


Event = Press | Motion | Detection


async def deliver(sink: EventSink, event: Event) -> None:
    """One event to one sink."""
    if isinstance(event, Press):
        await sink.press(event.endpoint_id, event.cause)
    elif isinstance(event, Motion):
        await sink.motion(event.endpoint_id, event.detected, event.at)
    else:
        await sink.detection(
            event.endpoint_id, event.label, event.score, event.at, event.snapshot_jpeg
        )


class OnceLog:
    """Log a recurring problem once (WARNING), its repeats at DEBUG: a device that sends
    garbage ten times a second must not fill the log."""

    def __init__(self, logger: logging.Logger, limit: int = 4096) -> None:
        self.logger = logger
        self.limit = limit
        self._seen: set[object] = set()
        self._lock = threading.Lock()

    def warning(self, key: object, msg: str, *args: object) -> None:
        self._log(logging.WARNING, key, msg, *args)

    def info(self, key: object, msg: str, *args: object) -> None:
        self._log(logging.INFO, key, msg, *args)

    def _log(self, level: int, key: object, msg: str, *args: object) -> None:
        with self._lock:  # past ``limit`` distinct problems, the rest are DEBUG only
            first = key not in self._seen and len(self._seen) < self.limit
            if first:
                self._seen.add(key)
        self.logger.log(level if first else logging.DEBUG, msg, *args)


class Dispatcher:
    """Hands events to the sinks: in order per camera and sink, one at a time.

    ``emit`` never blocks (call it on the loop); ``emit_threadsafe`` is for
    callbacks on other threads (gpiozero, the frame analyser). A slow sink at one
    camera delays nothing else; more than ``QUEUE_LIMIT`` events waiting for it
    are dropped (and logged), never buffered without bound.
    """

    def __init__(self, sinks: Sequence[EventSink]) -> None:
        self.sinks = list(sinks)
        self._queues: dict[tuple[int, str], asyncio.Queue[Event]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._warn = OnceLog(log)

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def emit(self, event: Event) -> None:
        if self._closed:
            return
        if self._loop is None:
            self.bind()
        for index, sink in enumerate(self.sinks):
            key = (index, event.endpoint_id)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = asyncio.Queue(QUEUE_LIMIT)
                self._workers.append(asyncio.ensure_future(self._work(sink, queue)))
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._warn.warning(
                    ("full", key),
                    "inputs: %s events wait for %s at %s; dropping %s",
                    QUEUE_LIMIT,
                    type(sink).__name__,
                    event.endpoint_id,
                    type(event).__name__,
                )

    def emit_threadsafe(self, event: Event) -> None:
        if self._loop is None:
            raise RuntimeError("Dispatcher.bind() first, on the loop that runs the sinks")
        with contextlib.suppress(RuntimeError):  # the loop closed: the agent is stopping
            self._loop.call_soon_threadsafe(self.emit, event)

    async def _work(self, sink: EventSink, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            try:
                await deliver(sink, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inputs: %s failed on %s", type(sink).__name__, event)
            finally:
                queue.task_done()

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every event emitted so far reached its sinks (at most ``timeout``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                for queue in list(self._queues.values()):
                    await queue.join()

    async def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (at most ``timeout`` seconds), then stop the workers."""
        await self.drain(timeout)
        self._closed = True
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._queues.clear()
