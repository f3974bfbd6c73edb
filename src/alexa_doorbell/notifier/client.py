"""The camera side's notifier: one protocol, in-process on one machine, a Lambda in AWS.

    notifier = local_notifier(load_settings())   # LocalNotifier or LambdaNotifier
    notifier.press("front-door")                  # [Outcome(status="202", ok=True, ...)]
    notifier.motion("front-door", True, at)       # held; ChangeReport on transitions
    notifier.detection("front-door", "person", 0.9, at, snapshot.url, "ev-1")
    notifier.on_connectivity("front-door", "OK")  # the camera agent's heartbeat
    notifier.list_sessions("front-door", since=t) # the skill's RTC session records
    notifier.close()

The camera agent, ``alexa-doorbell press`` / ``tokens status``, the dashboard and
the demo use only :class:`Notifier`. On the local cloud the notifier runs in this
process against the store and the local emulators; in AWS the camera invokes the
notifier Lambda with its own AWS credentials, so the tokens never leave AWS.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from alexa_doorbell.lambda_config import SkillConfig
from alexa_doorbell.notifier.debounce import DETECTED, MotionChange, MotionHold
from alexa_doorbell.notifier.state_report import (
    CHANGE_REPORT,
    DOORBELL_PRESS,
    OBJECT_DETECTION,
    EventSender,
    Outcome,
)
from alexa_doorbell.notifier.tokens import TokenStatus
from alexa_doorbell.store.base import RtcSession, Store

log = logging.getLogger("alexa_doorbell.notify")


class SessionSource(Protocol):
    """Where the camera reads the skill's RTC session records (a Store or a Notifier)."""

    def list_sessions(self, endpoint_id: str, *, since: float = 0.0) -> list[RtcSession]: ...


class Notifier(SessionSource, Protocol):
    """What the camera side asks of the notifier."""

    # How the last on_connectivity went: None when it reached the store, else why not.
    last_error: str | None

    def press(
        self, endpoint_id: str | None = None, cause: str = "PHYSICAL_INTERACTION"
    ) -> list[Outcome]:
        """DoorbellPress (the first doorbell without ``endpoint_id``); one Outcome per user."""
        ...

    def on_connectivity(self, endpoint_id: str, connectivity: str) -> None:
        """The camera's heartbeat: record health, ChangeReport when Alexa's view changes."""
        ...

    def motion(self, endpoint_id: str, detected: bool, at: float) -> list[Outcome]:
        """An input's motion state; held (``motion_hold``), a ChangeReport per transition.

        The hold's end comes by itself (a timer), with no further call."""
        ...

    def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None,
        at: float,
        snapshot_url: str | None,
        event_id: str | None,
    ) -> list[Outcome]:
        """A person or package: ObjectDetection with ``snapshot_url`` as frameImageUri,
        once per visit (``detection_cooldown``), to the users who have the class on."""
        ...

    def sweep(self) -> list[Outcome]:
        """Report cameras that went silent (scheduled in AWS; the dashboard runs it locally)."""
        ...

    def status(self) -> list[TokenStatus]:
        """Token health per linked user, never the tokens."""
        ...

    def close(self) -> None: ...


class BotoSession(Protocol):
    def client(self, service_name: str) -> Any: ...  # a botocore client: untyped by nature


class NotifierSettings(Protocol):
    """What :func:`local_notifier` reads of the settings (``config.Settings``)."""

    @property
    def is_local(self) -> bool: ...

    @property
    def notifier_function(self) -> str | None: ...

    @property
    def press_debounce(self) -> float: ...

    @property
    def motion_hold(self) -> float: ...

    def boto_session(self) -> BotoSession: ...

    def lambda_config(self) -> SkillConfig: ...


class ExpiryTimer:
    """Calls ``expire()`` when ``due()`` says (clock seconds); one daemon timer at a time.

    Motion ends by itself: ``motion_hold`` seconds after the input went quiet,
    NOT_DETECTED must reach Alexa though no further event comes.
    """

    def __init__(
        self,
        due: Callable[[], float | None],
        expire: Callable[[], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.due = due
        self.expire = expire
        self.clock = clock
        self._timer: threading.Timer | None = None
        self._at: float | None = None
        self._lock = threading.Lock()
        self._closed = False

    def schedule(self) -> None:
        at = self.due()
        with self._lock:
            if self._closed or at is None or (self._timer is not None and self._at == at):
                return
            if self._timer is not None:
                self._timer.cancel()
            self._at = at
            self._timer = threading.Timer(max(0.0, at - self.clock()) + 0.01, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = self._at = None
        try:
            self.expire()
        except Exception:  # a failed send is logged and recorded by the sender
            log.exception("motion: ending the hold failed")
        self.schedule()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None


class LocalNotifier:
    """The notifier in this process: the :class:`EventSender` on the store."""

    last_error: str | None = None  # a heartbeat either reaches the store or raises

    def __init__(self, sender: EventSender) -> None:
        self.sender = sender
        self._expiry = ExpiryTimer(sender.next_motion_expiry, sender.expire_motion, sender.clock)

    @classmethod
    def from_config(cls, cfg: SkillConfig, store: Store | None = None) -> LocalNotifier:
        """``store``: the caller's, left open by :meth:`close`; None opens ``cfg.store_url``."""
        return cls(EventSender.from_config(cfg, store))

    def press(
        self, endpoint_id: str | None = None, cause: str = "PHYSICAL_INTERACTION"
    ) -> list[Outcome]:
        return self.sender.press(endpoint_id, cause=cause)

    def on_connectivity(self, endpoint_id: str, connectivity: str) -> None:
        self.sender.health(endpoint_id, connectivity)

    def motion(self, endpoint_id: str, detected: bool, at: float) -> list[Outcome]:
        outcomes = self.sender.motion(endpoint_id, detected, at)
        self._expiry.schedule()
        return outcomes

    def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None,
        at: float,
        snapshot_url: str | None,
        event_id: str | None,
    ) -> list[Outcome]:
        return self.sender.detection(endpoint_id, label, score, at, snapshot_url, event_id)

    def list_sessions(self, endpoint_id: str, *, since: float = 0.0) -> list[RtcSession]:
        return self.sender.store.list_sessions(endpoint_id, since=since)

    def sweep(self) -> list[Outcome]:
        return self.sender.sweep()

    def status(self) -> list[TokenStatus]:
        return self.sender.token_status()

    def close(self) -> None:
        self._expiry.close()
        self.sender.close()


class LambdaNotifier:
    """The notifier in AWS: invokes the notifier Lambda (tokens stay in AWS).

    Debounces presses here too: each Lambda container has its own memory. Holds
    motion here, where a timer can end it: the Lambda hears only transitions
    (``state``), which it reports if the store's state differs.
    """

    def __init__(
        self,
        function: str,
        session: BotoSession,
        *,
        debounce: float = 5.0,
        motion_hold: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.function = function
        self._lambda = session.client("lambda")
        self.debounce = debounce
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.last_error: str | None = None  # of the last health report; None: delivered
        self.hold = MotionHold(motion_hold)
        self._held: set[str] = set()
        self._clock = clock
        self._expiry = ExpiryTimer(self._next_expiry, self._expire, clock)

    def invoke(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self._lambda.invoke(
                FunctionName=self.function,
                InvocationType="RequestResponse",
                Payload=json.dumps(request).encode(),
            )
            raw = resp["Payload"].read()
            body = json.loads(raw) if raw else {}
        except Exception as exc:  # botocore errors: permissions, wrong name, network
            return {
                "ok": False,
                "error": f"cannot invoke the notifier Lambda {self.function}: {exc} (the camera "
                "needs lambda:InvokeFunction on it: deploy/camera-agent-policy.json)",
            }
        if resp.get("FunctionError"):
            msg = body.get("errorMessage") if isinstance(body, dict) else body
            return {"ok": False, "error": f"the notifier Lambda failed: {msg}"}
        return body if isinstance(body, dict) else {"ok": False, "error": "bad notifier reply"}

    def press(
        self, endpoint_id: str | None = None, cause: str = "PHYSICAL_INTERACTION"
    ) -> list[Outcome]:
        key = endpoint_id or ""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.debounce:
                return [Outcome(DOORBELL_PRESS, endpoint_id or "-", "debounced", True)]
            self._last[key] = now
        reply = self.invoke({"action": "press", "endpoint_id": endpoint_id, "cause": cause})
        outcomes = _outcomes(reply, DOORBELL_PRESS, endpoint_id)
        if not any(o.ok for o in outcomes):
            with self._lock:
                self._last.pop(key, None)
        return outcomes

    def on_connectivity(self, endpoint_id: str, connectivity: str) -> None:
        reply = self.invoke(
            {"action": "health", "endpoint_id": endpoint_id, "connectivity": connectivity}
        )
        self.last_error = None if reply.get("ok") else str(reply.get("error") or reply)
        if self.last_error is not None:
            log.warning("health report for %s: %s", endpoint_id, self.last_error)

    def motion(self, endpoint_id: str, detected: bool, at: float) -> list[Outcome]:
        with self._lock:
            if endpoint_id not in self._held:
                self._held.add(endpoint_id)
                if not detected:
                    # What Alexa was told is the store's, out of reach here: a quiet input
                    # first thing ends whatever DETECTED a restart left (the Lambda sends
                    # NOT_DETECTED only if the store says DETECTED).
                    self.hold.seed(endpoint_id, DETECTED, at)
            changes = self.hold.motion(endpoint_id, detected, at)
        outcomes = self._send_motion(changes)
        self._expiry.schedule()
        return outcomes

    def _next_expiry(self) -> float | None:
        with self._lock:
            return self.hold.next_expiry()

    def _expire(self) -> list[Outcome]:
        with self._lock:
            changes = self.hold.expire(self._clock())
        return self._send_motion(changes)

    def _send_motion(self, changes: list[MotionChange]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for c in changes:
            request = {"action": "motion", "endpoint_id": c.endpoint_id, "state": c.state}
            reply = self.invoke({**request, "at": c.at})
            outcomes += _outcomes(reply, CHANGE_REPORT, c.endpoint_id)
        return outcomes

    def detection(
        self,
        endpoint_id: str,
        label: str,
        score: float | None,
        at: float,
        snapshot_url: str | None,
        event_id: str | None,
    ) -> list[Outcome]:
        reply = self.invoke(
            {
                "action": "detection",
                "endpoint_id": endpoint_id,
                "label": label,
                "score": score,
                "at": at,
                "snapshot_url": snapshot_url,
                "event_id": event_id,
            }
        )
        return _outcomes(reply, OBJECT_DETECTION, endpoint_id)

    def list_sessions(self, endpoint_id: str, *, since: float = 0.0) -> list[RtcSession]:
        """The skill's record of RTC sessions (the agent polls it for SessionDisconnected)."""
        reply = self.invoke({"action": "sessions", "endpoint_id": endpoint_id, "since": since})
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error") or "the notifier Lambda gave no sessions")
        return [RtcSession(**row) for row in reply.get("sessions") or []]

    def sweep(self) -> list[Outcome]:
        return _outcomes(self.invoke({"action": "sweep"}), "ChangeReport", None)

    def status(self) -> list[TokenStatus]:
        reply = self.invoke({"action": "status"})
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error") or "the notifier Lambda gave no status")
        return list(reply.get("users") or [])

    def close(self) -> None:
        self._expiry.close()


def _outcomes(reply: dict[str, Any], name: str, endpoint_id: str | None) -> list[Outcome]:
    if "results" not in reply:
        return [Outcome(name, endpoint_id or "-", "failed", False, detail=str(reply.get("error")))]
    fields = set(Outcome.__dataclass_fields__)
    return [Outcome(**{k: v for k, v in r.items() if k in fields}) for r in reply["results"]]


def local_notifier(settings: NotifierSettings, store: Store | None = None) -> Notifier:
    """The notifier for the camera side (agent, dashboard, ``alexa-doorbell press``).

    Local cloud: in-process against the store and the local emulators. AWS:
    invokes ``settings.notifier_function`` with the camera's AWS credentials.
    ``close()`` closes ``store`` only when the notifier opened it itself.
    """
    if settings.is_local:
        return LocalNotifier.from_config(settings.lambda_config(), store)
    function = settings.notifier_function
    if not function:
        raise RuntimeError(
            "set ALEXA_DOORBELL_NOTIFIER_FUNCTION to the deployed notifier Lambda "
            "(stack output NotifierFunctionArn)"
        )
    return LambdaNotifier(
        function,
        settings.boto_session(),
        debounce=settings.press_debounce,
        motion_hold=settings.motion_hold,
    )
