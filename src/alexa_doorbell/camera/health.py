"""A camera's Alexa.EndpointHealth as the truth: signaling up and a source that answers.

    health = CameraHealth("front-door", report, grace=15.0)
    health.signaling(True)          # MASTER of its channel
    health.source(status)           # from the source supervisor
    health.connectivity             # "OK" | "UNREACHABLE"

``OK`` needs both: the agent connected to its signaling channel, and a source that is
not down (idle counts: nobody watches, and the camera answered its last check). A
source down for longer than ``grace`` seconds makes the camera ``UNREACHABLE``, so
Alexa stops offering a black live view; it is ``OK`` again with the first frame. Each
change is reported at once (a ChangeReport through the notifier, the store for
ReportState and the skill); the heartbeat repeats the current value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from alexa_doorbell.camera.supervisor import SourceStatus
from alexa_doorbell.store.base import Health, Store

log = logging.getLogger(__name__)

Report = Callable[[str, str], Awaitable[None]]  # (endpoint_id, connectivity)


class CameraHealth:
    def __init__(self, endpoint_id: str, report: Report, *, grace: float = 15.0) -> None:
        self.endpoint_id = endpoint_id
        self.report_to = report
        self.grace = grace
        self.signaling_up = False
        self.status: SourceStatus | None = None
        self.reported: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reports: set[asyncio.Task[None]] = set()
        self._order = asyncio.Lock()  # reports reach Alexa in the order they were made

    @property
    def source_unreachable(self) -> bool:
        s = self.status
        return s is not None and s.down and time.time() - s.since >= self.grace

    @property
    def connectivity(self) -> str:
        return "OK" if self.signaling_up and not self.source_unreachable else "UNREACHABLE"

    def signaling(self, up: bool) -> None:
        self.signaling_up = up
        self._changed(force=True)

    def source(self, status: SourceStatus) -> None:
        self.status = status
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if status.down:
            # Checked again when the grace period ends, if still down then.
            left = max(0.0, status.since + self.grace - time.time())
            self._timer = asyncio.get_running_loop().call_later(left + 0.01, self._changed)
        self._changed()

    async def heartbeat(self) -> None:
        """The periodic report: the same value again, so a stale one means a dead agent."""
        if self.signaling_up:
            await self._report(self.connectivity)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await asyncio.gather(*self._reports, return_exceptions=True)

    def _changed(self, force: bool = False) -> None:
        value = self.connectivity
        if value == self.reported and not force:
            return
        if value != self.reported and self.status is not None and self.signaling_up:
            if value == "UNREACHABLE":
                log.warning(
                    "%s: source down for %.0f s (%s): reporting UNREACHABLE",
                    self.endpoint_id,
                    time.time() - self.status.since,
                    self.status.error,
                )
            elif self.reported == "UNREACHABLE":
                log.info("%s: pictures again: reporting OK", self.endpoint_id)
        task = asyncio.get_running_loop().create_task(self._report(value))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _report(self, value: str) -> None:
        self.reported = value
        async with self._order:
            with contextlib.suppress(asyncio.CancelledError):
                await self.report_to(self.endpoint_id, value)


def store_connectivity(store: Store) -> Callable[[str, str], None]:
    """The local on_connectivity without a notifier: record Alexa.EndpointHealth in the store."""

    def report(endpoint_id: str, connectivity: str) -> None:
        store.put_health(Health(endpoint_id, connectivity))

    return report
