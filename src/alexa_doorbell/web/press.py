"""The dashboard's doorbell button: a press through the notifier, and the health sweep.

On the local cloud nobody schedules the notifier's sweep (AWS does, every few
minutes), so the dashboard runs it (:func:`sweep_forever`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from alexa_doorbell.config import Settings
from alexa_doorbell.notifier.client import Notifier, local_notifier
from alexa_doorbell.notifier.state_report import Outcome
from alexa_doorbell.store.base import Store
from alexa_doorbell.web.status import event_advice

log = logging.getLogger("alexa_doorbell.web.app")

PressFn = Callable[[str], list[Outcome]]  # endpoint id -> one Outcome per user


def press_reply(outcomes: list[Outcome]) -> dict[str, Any]:
    """The notifier's outcomes (one per owner) as one reply: ``ok``, ``status``, ``detail``."""
    if not outcomes:
        return {"ok": False, "status": "no reply", "detail": "", "outcomes": []}
    ok = any(o.ok for o in outcomes)
    shown = [o for o in outcomes if o.ok == ok]
    reply: dict[str, Any] = {
        "ok": ok,
        "status": ", ".join(dict.fromkeys(o.status for o in shown)),
        "detail": "; ".join(o.detail for o in shown if o.detail),
        "outcomes": [o.as_dict() for o in outcomes],
    }
    if not ok:
        reply["fix"] = event_advice(reply["status"], reply["detail"])
    return reply


class NotifierPress:
    """The notifier's camera-side press: in-process on the local cloud, a Lambda in AWS.

    Built on first use, so the dashboard starts even when the notifier is not configured.
    """

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store
        self._notifier: Notifier | None = None
        self._lock = threading.Lock()

    def notifier(self) -> Notifier:
        with self._lock:
            if self._notifier is None:
                self._notifier = local_notifier(self.settings, self.store)
            return self._notifier

    def __call__(self, endpoint_id: str) -> list[Outcome]:
        return self.notifier().press(endpoint_id, cause="APP_INTERACTION")

    def sweep(self) -> list[Outcome]:
        """Report cameras that went silent (local cloud only: AWS schedules the notifier)."""
        return self.notifier().sweep()

    def close(self) -> None:
        with self._lock:
            if self._notifier is not None and self.store is None:
                self._notifier.close()  # it opened its own store
            self._notifier = None


async def sweep_forever(sweep: Callable[[], list[Outcome]], interval: float) -> None:
    """On one machine nobody schedules the notifier's sweep: the dashboard does."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(sweep)
        except Exception as exc:  # not configured or a gateway hiccup: try again later
            log.warning("health sweep failed: %s", exc)
