"""Events toward Alexa: DoorbellPress, ChangeReport, ObjectDetection, discovery reports.

    sender = EventSender.from_config(SkillConfig.from_env())  # or Settings.lambda_config()
    sender.press("front-door")                  # [Outcome(status="202", ok=True, ...)]
    sender.health("front-door", "UNREACHABLE")  # ChangeReport when Alexa's view changed
    sender.motion("front-door", True, at)       # MotionSensor ChangeReport (held: sightings)
    sender.detection("front-door", "person", 0.9, at, url, "ev-1")  # ObjectDetection
    sender.sweep()                              # cameras gone silent, motion held out
    sender.catalog(added=["garage"])            # AddOrUpdateReport

Each event goes to the users who see the device, with the access token
:class:`~alexa_doorbell.notifier.tokens.TokenKeeper` keeps fresh (a 401 refreshes
and sends once more). Every event sent, and every press that could not be sent,
is recorded with ``Store.add_event_record``.

Presses: one per debounce window, whatever rings it. The press claims the
doorbell in the store (``Store.claim_press``, one conditional write) before it
reads a token or sends anything, so of 20 processes or Lambdas pressing at once
one sends and refreshes, the others answer "debounced". A press that reached
nobody releases its claim (only if it still holds it), so the next press is sent.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from alexa_doorbell.alexa import events
from alexa_doorbell.amazon.events import (
    EventGatewayClient,
    GatewayError,
    GatewayReply,
    InvalidAccessToken,
    UserActionRequired,
    gateway_url,
    redact,
)
from alexa_doorbell.amazon.lwa import LwaClient
from alexa_doorbell.lambda_config import SkillConfig
from alexa_doorbell.notifier.outcome import (
    ADD_OR_UPDATE_REPORT,
    CHANGE_REPORT,
    DELETE_REPORT,
    DOORBELL_PRESS,
    OBJECT_DETECTION,
    Build,
    Outcome,
)
from alexa_doorbell.notifier.sightings import Sightings
from alexa_doorbell.notifier.tokens import (
    REFRESH_MARGIN,
    RELINK_HINT,
    NotifyError,
    NotLinked,
    RelinkNeeded,
    TokenKeeper,
    TokenRefresher,
    TokenStatus,
)
from alexa_doorbell.store import open_store, seed_catalog
from alexa_doorbell.store.base import Device, EventRecord, Health, Store, Tokens

log = logging.getLogger("alexa_doorbell.notify")


class GatewayPool:
    """One gateway client per region; ``override`` sends every region to one URL (local)."""

    def __init__(self, override: str | None = None, **client_options: Any) -> None:
        self.override = override
        self.options = client_options
        self._clients: dict[str, EventGatewayClient] = {}
        self._lock = threading.Lock()

    def __call__(self, region: str) -> EventGatewayClient:
        url = self.override or gateway_url(region or "NA")
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = EventGatewayClient(url, **self.options)
            return client


__all__ = [
    "ADD_OR_UPDATE_REPORT",
    "CHANGE_REPORT",
    "DELETE_REPORT",
    "DOORBELL_PRESS",
    "OBJECT_DETECTION",
    "EventSender",
    "GatewayPool",
    "Outcome",
]


class EventSender(Sightings):
    """The notifier itself: what the notifier Lambda runs, or the camera side in-process."""

    def __init__(
        self,
        store: Store,
        lwa: TokenRefresher,
        gateway: Callable[[str], EventGatewayClient],  # region -> client
        *,
        debounce: float = 5.0,
        refresh_margin: float = REFRESH_MARGIN,
        single_user: bool = True,
        health_max_age: float = 150.0,
        motion_hold: float = 30.0,
        detection_cooldown: float = 120.0,
        clock: Callable[[], float] = time.time,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.tokens = TokenKeeper(store, lwa, refresh_margin=refresh_margin, clock=clock)
        self.gateway = gateway
        self.debounce = debounce
        self.single_user = single_user
        self.health_max_age = health_max_age
        self.clock = clock
        self.on_message = on_message  # sees every message before it is sent (tests, tracing)
        self._owns_store = False  # close() closes only a store it opened itself
        Sightings.__init__(self, motion_hold=motion_hold, detection_cooldown=detection_cooldown)

    @classmethod
    def from_config(cls, cfg: SkillConfig, store: Store | None = None) -> EventSender:
        """Wired as ``cfg`` says: the store (``store`` when given, else ``cfg.store_url``,
        with ``cfg.cameras`` in its catalog), Login with Amazon and the event gateway."""
        client_id, secret = cfg.lwa_credentials()
        owned = store is None
        if store is None:
            store = open_store(cfg.store_url)
        changed = seed_catalog(store, cfg.cameras)
        sender = cls(
            store,
            LwaClient(cfg.lwa_url, client_id, secret),
            GatewayPool(cfg.event_gateway_url),
            debounce=cfg.press_debounce,
            single_user=cfg.single_user,
            health_max_age=cfg.health_max_age,
            motion_hold=cfg.motion_hold,
            detection_cooldown=cfg.detection_cooldown,
        )
        sender._owns_store = owned
        # A camera that gained or lost motion or detection classes shows Alexa new
        # capabilities: tell the users now rather than at their next discovery.
        rediscover = [
            new.endpoint_id
            for old, new in changed
            if old is not None
            and (old.motion, old.detection_classes) != (new.motion, new.detection_classes)
        ]
        if rediscover and store.list_tokens():
            sender.catalog(added=rediscover)
        return sender

    @property
    def lwa(self) -> TokenRefresher:
        return self.tokens.lwa

    def tokens_for(self, user_id: str, *, stale: str | None = None) -> Tokens:
        return self.tokens.tokens_for(user_id, stale=stale)

    def token_status(self) -> list[TokenStatus]:
        return self.tokens.status()

    # -- DoorbellPress -------------------------------------------------------------
    def press(
        self,
        endpoint_id: str | None = None,
        *,
        cause: str = "PHYSICAL_INTERACTION",
        at: float | None = None,
    ) -> list[Outcome]:
        """Send ``DoorbellPress`` to the doorbell's owner(s), once per debounce window."""
        if cause not in events.CAUSE_TYPES:
            raise ValueError(f"cause must be one of {events.CAUSE_TYPES}, not {cause!r}")
        device = self._device(endpoint_id, doorbell=True)
        if isinstance(device, Outcome):
            return [device]
        eid = device.endpoint_id
        claim = self._claim_press(eid)
        if claim is None:
            return [Outcome(DOORBELL_PRESS, eid, "debounced", True, detail="pressed moments ago")]
        when = self.clock() if at is None else at
        delivered = False
        try:
            outcomes = self._for_owners(
                device,
                DOORBELL_PRESS,
                lambda token: events.doorbell_press(eid, token, at=when, cause=cause),
            )
            delivered = any(o.ok for o in outcomes)
            return outcomes
        finally:
            if claim and not delivered:  # it reached nobody: the next press must get through
                self._release_press(eid, claim)

    def _claim_press(self, endpoint_id: str) -> str | None:
        """The id of this press's claim ("" with no debounce), None inside the window.

        One conditional write in the store, before anything is sent: of the
        presses that arrive at once, from threads, processes or Lambda
        containers, exactly one wins and the others are debounced.
        """
        if self.debounce <= 0:
            return ""
        claim_id = secrets.token_hex(8)
        if self.store.claim_press(endpoint_id, claim_id, at=self.clock(), window=self.debounce):
            return claim_id
        return None

    def _release_press(self, endpoint_id: str, claim_id: str) -> None:
        try:
            self.store.release_press(endpoint_id, claim_id)
        except Exception as exc:  # the claim then lapses with the window
            log.warning("could not release the press claim of %s: %s", endpoint_id, exc)

    # -- EndpointHealth ChangeReport -----------------------------------------------
    def health(self, endpoint_id: str, connectivity: str) -> list[Outcome]:
        """Record the camera's connectivity; send a ChangeReport when Alexa's view changes.

        Alexa's view is what ReportState answers: nothing recorded or a stale
        heartbeat counts as UNREACHABLE.
        """
        if connectivity not in ("OK", "UNREACHABLE"):
            raise ValueError(f"connectivity must be OK or UNREACHABLE, not {connectivity!r}")
        now = self.clock()
        previous = self.store.get_health(endpoint_id)
        self.store.put_health(Health(endpoint_id, connectivity, now))
        was = previous.effective(self.health_max_age, now=now) if previous else "UNREACHABLE"
        if was == connectivity:
            return [Outcome(CHANGE_REPORT, endpoint_id, "unchanged", True)]
        return self.change_report(endpoint_id, connectivity)

    def sweep(self) -> list[Outcome]:
        """Tell Alexa about cameras that went silent without a goodbye (power cut, crash).

        A camera last reported OK whose heartbeat is older than
        ``health_max_age`` is recorded UNREACHABLE and reported once; its next
        heartbeat reports it OK again through :meth:`health`. Scheduled in AWS
        (the template's HealthSweep); the dashboard runs it on one machine. Motion
        whose hold ran out in this process ends too (:meth:`expire_motion`).
        """
        now = self.clock()
        outcomes: list[Outcome] = []
        for device in self.store.list_devices():
            h = self.store.get_health(device.endpoint_id)
            if h is None or h.connectivity != "OK" or h.effective(self.health_max_age, now) == "OK":
                continue
            self.store.put_health(Health(device.endpoint_id, "UNREACHABLE", now))
            outcomes += self.change_report(device.endpoint_id, "UNREACHABLE")
        return outcomes + self.expire_motion(now)

    def change_report(self, endpoint_id: str, connectivity: str) -> list[Outcome]:
        """Send an EndpointHealth ``ChangeReport`` (no change detection)."""
        device = self._device(endpoint_id, name=CHANGE_REPORT)
        if isinstance(device, Outcome):
            return [device]
        at = self.clock()
        return self._for_owners(
            device,
            CHANGE_REPORT,
            lambda token: events.change_report(endpoint_id, token, connectivity, at=at),
        )

    # -- Discovery reports ---------------------------------------------------------
    def catalog(self, added: Iterable[str] = (), deleted: Iterable[str] = ()) -> list[Outcome]:
        """``AddOrUpdateReport`` for endpoints added/changed in the store's catalog and
        ``DeleteReport`` for endpoints removed, to each user who sees them."""
        outcomes: list[Outcome] = []
        per_user: dict[str, list[Device]] = {}
        for eid in added:
            device = self.store.get_device(eid)
            if device is None:
                outcomes.append(
                    Outcome(
                        ADD_OR_UPDATE_REPORT,
                        eid,
                        "unknown endpoint",
                        False,
                        detail="add the device to the catalog first",
                    )
                )
                continue
            for user in self._owners(device):
                per_user.setdefault(user, []).append(device)
        for user, devices in per_user.items():
            ids = ",".join(d.endpoint_id for d in devices)
            outcomes.append(
                self._send(
                    user,
                    ADD_OR_UPDATE_REPORT,
                    ids,
                    lambda token, ds=devices: events.add_or_update_report(ds, token),
                )
            )
        gone = list(deleted)
        if gone:
            users: set[str] = set()
            for eid in gone:
                device = self.store.get_device(eid)
                users.update(
                    self._owners(device)
                    if device
                    else [t.user_id for t in self.store.list_tokens()]
                )
            for user in sorted(users):
                outcomes.append(
                    self._send(
                        user,
                        DELETE_REPORT,
                        ",".join(gone),
                        lambda token: events.delete_report(gone, token),
                    )
                )
        return outcomes

    # -- sending -------------------------------------------------------------------
    def _device(
        self, endpoint_id: str | None, *, doorbell: bool = False, name: str = DOORBELL_PRESS
    ) -> Device | Outcome:
        if endpoint_id is None:
            found = [d for d in self.store.list_devices() if d.doorbell or not doorbell]
            if not found:
                return Outcome(
                    name, "-", "unknown endpoint", False, detail="no doorbell configured"
                )
            return found[0]
        device = self.store.get_device(endpoint_id)
        if device is None:
            known = ", ".join(d.endpoint_id for d in self.store.list_devices()) or "none"
            return Outcome(
                name, endpoint_id, "unknown endpoint", False, detail=f"known endpoints: {known}"
            )
        if doorbell and not device.doorbell:
            return Outcome(
                name,
                endpoint_id,
                "not a doorbell",
                False,
                detail="set doorbell = true for this camera (Alexa.DoorbellEventSource)",
            )
        return device

    def _owners(self, device: Device) -> list[str]:
        """Who sees the device: its owner, or (single-user) whoever linked the skill."""
        if device.owner is not None:
            return [device.owner]
        if not self.single_user:
            return []
        return [t.user_id for t in self.store.list_tokens()]

    def _for_owners(
        self, device: Device, name: str, build: Build, *, note: str = ""
    ) -> list[Outcome]:
        users = self._owners(device)
        if not users:
            outcome = Outcome(
                name,
                device.endpoint_id,
                NotLinked.status,
                False,
                detail="nobody has linked the skill yet: enable it in the Alexa app",
            )
            self._record(outcome)
            return [outcome]
        return [self._send(user, name, device.endpoint_id, build, note=note) for user in users]

    def _send(
        self, user_id: str, name: str, endpoint_id: str, build: Build, *, note: str = ""
    ) -> Outcome:
        """One event to one user; ``note`` (what it said, e.g. "motion DETECTED") leads the
        detail of its record."""
        try:
            tokens = self.tokens.tokens_for(user_id)
            try:
                reply = self._post(tokens, build)
            except InvalidAccessToken as exc:  # 401: refresh and retry once
                log.info("%s for %s got %s: refreshing", name, user_id, exc.reply.label)
                tokens = self.tokens.tokens_for(user_id, stale=tokens.access_token)
                reply = self._post(tokens, build)
        except NotifyError as exc:
            outcome = Outcome(
                name,
                endpoint_id,
                exc.status,
                False,
                user_id,
                redact(str(exc)),
                relink_needed=isinstance(exc, RelinkNeeded),
            )
        except UserActionRequired as exc:
            label = exc.reply.label
            self.tokens.update(
                user_id, lambda cur: cur.with_(last_gateway_status=label, relink_needed=True)
            )
            outcome = Outcome(
                name,
                endpoint_id,
                label,
                False,
                user_id,
                f"relink needed: {exc.reply.description or exc.code}; {RELINK_HINT}",
                relink_needed=True,
            )
        except GatewayError as exc:
            label = exc.reply.label
            self.tokens.update(user_id, lambda cur: cur.with_(last_gateway_status=label))
            detail = str(exc)
            if exc.reply.attempts > 1:
                detail += f" after {exc.reply.attempts} attempts"
            outcome = Outcome(name, endpoint_id, label, False, user_id, redact(detail))
        else:
            label = reply.label
            self.tokens.update(user_id, lambda cur: cur.with_(last_gateway_status=label))
            detail = f"after {reply.attempts} attempts" if reply.attempts > 1 else ""
            outcome = Outcome(name, endpoint_id, label, True, user_id, detail)
        if note:
            outcome = replace(
                outcome, detail=f"{note}; {outcome.detail}" if outcome.detail else note
            )
        self._record(outcome)
        return outcome

    def _post(self, tokens: Tokens, build: Build) -> GatewayReply:
        message = build(tokens.access_token)
        if self.on_message is not None:
            self.on_message(message)
        return self.gateway(tokens.region).send(message, tokens.access_token)

    def _record(self, outcome: Outcome) -> None:
        (log.info if outcome.ok else log.warning)("%s", outcome)
        try:
            self.store.add_event_record(
                EventRecord(
                    at=self.clock(),
                    user_id=outcome.user_id or "-",
                    endpoint_id=outcome.endpoint_id,
                    name=outcome.name,
                    status=outcome.status,
                    detail=outcome.detail[:500],
                )
            )
        except Exception as exc:  # a status-page record never stops an event
            log.warning("could not record %s: %s", outcome.name, exc)

    def close(self) -> None:
        if self._owns_store:
            self.store.close()
