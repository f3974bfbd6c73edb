"""The notifier: doorbell presses, camera health and catalog changes, sent to Alexa.

The second Lambda entry point beside the skill (``lambda_handler``), sharing
its store; locally the same ``Notifier`` runs in-process. Standard library,
boto3 and urllib3 only.

    notifier = Notifier.from_settings(settings)
    notifier.press("front-door")                 # [Outcome(status="202", ok=True, ...)]
    notifier.health("front-door", "UNREACHABLE") # ChangeReport when the state changed
    notifier.catalog(added=["garage"])           # AddOrUpdateReport

    cam = local_notifier(settings)               # camera side: in-process or Lambda
    cam.press(); cam.on_connectivity("front-door", "OK")

Token lifecycle: the access token is refreshed a few minutes before it expires,
under a per-user lock (concurrent presses in one process refresh once) and
written with a conditional write on the row's version (across processes or
Lambdas only one refresh result is stored; the others adopt it). A failed
refresh never loses the refresh token; only LWA's ``invalid_grant`` marks the
user "relink needed". Every event sent, and every press that could not be
sent, is recorded with ``Store.add_event_record``. Tokens are never logged.

Presses: one per debounce window, whatever rings it. The press claims the
doorbell in the store (``Store.claim_press``, one conditional write) before it
reads a token or sends anything, so of 20 processes or Lambdas pressing at once
one sends and refreshes, the others answer "debounced". A press that reached
nobody releases its claim (only if it still holds it), so the next press is sent.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from alexa_doorbell.alexa import events
from alexa_doorbell.amazon.events import (
    EventGatewayClient,
    GatewayError,
    InvalidAccessToken,
    UserActionRequired,
    gateway_url,
    redact,
)
from alexa_doorbell.store.base import (
    ConflictError,
    Device,
    EventRecord,
    Health,
    RtcSession,
    Store,
    Tokens,
)

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings

log = logging.getLogger("alexa_doorbell.notify")

REFRESH_MARGIN = 300.0  # refresh this long before expiry (a quarter of short lifetimes)
DOORBELL_PRESS = "DoorbellPress"
CHANGE_REPORT = "ChangeReport"
ADD_OR_UPDATE_REPORT = "AddOrUpdateReport"
DELETE_REPORT = "DeleteReport"
RELINK_HINT = "relink: disable and enable the skill in the Alexa app, then link the account again"


# -- failures before anything reaches the gateway ----------------------------------
class NotifyError(Exception):
    """An event could not be sent; ``status`` is what status pages show."""

    status = "failed"


class NotLinked(NotifyError):
    status = "not linked"


class RelinkNeeded(NotifyError):
    status = "relink needed"


class RefreshFailed(NotifyError):
    """LWA did not refresh the token (unavailable, client misconfigured); it is kept."""

    status = "refresh failed"


@dataclass(frozen=True)
class Outcome:
    """What happened to one event for one user."""

    name: str  # DoorbellPress, ChangeReport, AddOrUpdateReport, DeleteReport
    endpoint_id: str
    status: str  # "202", "debounced", "unchanged", "not linked", "relink needed", "429 ..."
    ok: bool
    user_id: str = ""
    detail: str = ""
    relink_needed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        who = f" for {self.user_id}" if self.user_id else ""
        text = f"{self.name} {self.endpoint_id}{who}: {self.status}"
        return f"{text} ({self.detail})" if self.detail else text


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


class Notifier:
    def __init__(
        self,
        store: Store,
        lwa: Any,  # amazon.lwa.LwaClient (refresh)
        gateway: Callable[[str], EventGatewayClient],  # region -> client
        *,
        debounce: float = 5.0,
        refresh_margin: float = REFRESH_MARGIN,
        single_user: bool = True,
        health_max_age: float = 150.0,
        clock: Callable[[], float] = time.time,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.lwa = lwa
        self.gateway = gateway
        self.debounce = debounce
        self.refresh_margin = refresh_margin
        self.single_user = single_user
        self.health_max_age = health_max_age
        self.clock = clock
        self.on_message = on_message  # sees every message before it is sent (tests, tracing)
        self._user_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._owns_store = False  # close() closes only a store it opened itself

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None) -> Notifier:
        """Wired to the configured cloud (local emulators or Amazon) and store."""
        from alexa_doorbell.amazon.lwa import LwaClient
        from alexa_doorbell.skill.local import device_of
        from alexa_doorbell.store import open_store, seed_catalog

        owned = store is None
        store = store or open_store(settings.store_location)
        seed_catalog(store, [device_of(c) for c in settings.cameras])
        client_id, secret = settings.lwa_credentials()
        notifier = cls(
            store,
            LwaClient(settings.lwa_url, client_id, secret),
            GatewayPool(settings.local.url if settings.is_local else None),
            debounce=settings.press_debounce,
            single_user=settings.single_user,
            health_max_age=settings.health_max_age,
        )
        notifier._owns_store = owned
        return notifier

    # -- actions ---------------------------------------------------------------------
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
        heartbeat reports it OK again through :meth:`health`.
        """
        now = self.clock()
        outcomes: list[Outcome] = []
        for device in self.store.list_devices():
            h = self.store.get_health(device.endpoint_id)
            if h is None or h.connectivity != "OK" or h.effective(self.health_max_age, now) == "OK":
                continue
            self.store.put_health(Health(device.endpoint_id, "UNREACHABLE", now))
            outcomes += self.change_report(device.endpoint_id, "UNREACHABLE")
        return outcomes

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

    def token_status(self) -> list[dict[str, Any]]:
        """Per linked user: token health for status pages. Never the tokens."""
        now = self.clock()
        out = []
        for t in self.store.list_tokens():
            out.append(
                {
                    "user_id": t.user_id,
                    "linked": True,
                    "region": t.region,
                    "expires_at": int(t.expires_at),
                    "expires_in": int(t.expires_at - now),
                    "last_refresh_at": int(t.last_refresh_at) if t.last_refresh_at else None,
                    "last_gateway_status": t.last_gateway_status,
                    "relink_needed": t.relink_needed,
                }
            )
        return out

    # -- tokens ------------------------------------------------------------------------
    def tokens_for(self, user_id: str, *, stale: str | None = None) -> Tokens:
        """The user's tokens with an access token good for a few more minutes.

        ``stale``: an access token the gateway refused (401): refresh even if the
        stored expiry says it is fine, unless another caller already replaced it.
        """
        tokens = self._linked(user_id)
        if stale is None and self._fresh(tokens):
            return tokens
        with self._lock_for(user_id):
            tokens = self._linked(user_id)  # someone may have refreshed while we waited
            if self._fresh(tokens) and (stale is None or tokens.access_token != stale):
                return tokens
            return self._refresh(tokens)

    def _linked(self, user_id: str) -> Tokens:
        tokens = self.store.get_tokens(user_id)
        if tokens is None:
            raise NotLinked(f"{user_id} has not linked the skill (no tokens stored)")
        if tokens.relink_needed:
            raise RelinkNeeded(f"{user_id} must relink the skill: {RELINK_HINT}")
        return tokens

    def _fresh(self, tokens: Tokens) -> bool:
        margin = self.refresh_margin
        if tokens.last_refresh_at:  # short lifetimes (tests, emulator): a quarter of it
            margin = min(margin, max(0.0, tokens.expires_at - tokens.last_refresh_at) / 4)
        return tokens.expires_at - self.clock() > margin

    def _lock_for(self, user_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._user_locks.setdefault(user_id, threading.Lock())

    def _refresh(self, tokens: Tokens) -> Tokens:
        from alexa_doorbell.amazon.lwa import LwaError, LwaInvalidGrant

        user_id = tokens.user_id
        try:
            grant = self.lwa.refresh(tokens.refresh_token)
        except LwaInvalidGrant as exc:
            # Only now is the refresh token known to be dead; a relink replaces it.
            self._update(
                user_id,
                lambda cur: (
                    cur.with_(relink_needed=True)
                    if cur.refresh_token == tokens.refresh_token
                    else None
                ),
            )
            log.warning("refresh token of %s refused by LWA: relink needed", user_id)
            raise RelinkNeeded(
                f"Login with Amazon refused the refresh token of {user_id} ({exc.error}): "
                f"{RELINK_HINT}"
            ) from None
        except LwaError as exc:
            log.warning("refresh for %s failed, refresh token kept: %s", user_id, exc)
            raise RefreshFailed(
                f"could not refresh the access token of {user_id}: {exc}; the refresh token "
                "is kept and the next event tries again"
            ) from None

        def apply(cur: Tokens) -> Tokens:
            return cur.with_(
                access_token=grant.access_token,
                refresh_token=grant.refresh_token or cur.refresh_token,
                expires_at=grant.expires_at,
                last_refresh_at=grant.received_at,
                relink_needed=False,
            )

        try:
            saved = self.store.put_tokens(apply(tokens), expected_version=tokens.version)
            log.info("access token of %s refreshed", user_id)
            return saved
        except ConflictError:
            pass
        for _ in range(5):
            cur = self.store.get_tokens(user_id)
            if cur is None:
                raise NotLinked(f"{user_id} unlinked the skill during a token refresh")
            if cur.refresh_token != tokens.refresh_token or (
                cur.access_token != tokens.access_token and self._fresh(cur)
            ):
                # Another process refreshed (or the user relinked) first: theirs wins.
                if cur.relink_needed:
                    raise RelinkNeeded(f"{user_id} must relink the skill: {RELINK_HINT}")
                return cur
            try:  # only other fields changed (e.g. a gateway status): merge our grant
                return self.store.put_tokens(apply(cur), expected_version=cur.version)
            except ConflictError:
                continue
        raise RefreshFailed(f"the tokens of {user_id} kept changing during a refresh")

    def _update(self, user_id: str, change: Callable[[Tokens], Tokens | None]) -> None:
        """Read-modify-write with a version check, so no write undoes a refresh."""
        for _ in range(5):
            cur = self.store.get_tokens(user_id)
            if cur is None:
                return
            new = change(cur)
            if new is None or new == cur:
                return
            try:
                self.store.put_tokens(new, expected_version=cur.version)
                return
            except ConflictError:
                continue

    # -- sending -------------------------------------------------------------------------
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
        self, device: Device, name: str, build: Callable[[str], dict[str, Any]]
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
        return [self._send(user, name, device.endpoint_id, build) for user in users]

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

    def _send(
        self, user_id: str, name: str, endpoint_id: str, build: Callable[[str], dict[str, Any]]
    ) -> Outcome:
        try:
            tokens = self.tokens_for(user_id)
            try:
                reply = self._post(tokens, build)
            except InvalidAccessToken as exc:  # 401: refresh and retry once
                log.info("%s for %s got %s: refreshing", name, user_id, exc.reply.label)
                tokens = self.tokens_for(user_id, stale=tokens.access_token)
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
            self._update(
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
            self._update(user_id, lambda cur: cur.with_(last_gateway_status=label))
            detail = str(exc)
            if exc.reply.attempts > 1:
                detail += f" after {exc.reply.attempts} attempts"
            outcome = Outcome(name, endpoint_id, label, False, user_id, redact(detail))
        else:
            label = reply.label
            self._update(user_id, lambda cur: cur.with_(last_gateway_status=label))
            detail = f"after {reply.attempts} attempts" if reply.attempts > 1 else ""
            outcome = Outcome(name, endpoint_id, label, True, user_id, detail)
        self._record(outcome)
        return outcome

    def _post(self, tokens: Tokens, build: Callable[[str], dict[str, Any]]) -> Any:
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


# -- Lambda entry point --------------------------------------------------------------------
_notifier: Notifier | None = None
_build_lock = threading.Lock()


def build_from_env(env: dict[str, str] | None = None) -> Notifier:
    """The notifier wired from ``ALEXA_DOORBELL_*`` variables (see skill/config.py), plus
    ``ALEXA_DOORBELL_PRESS_DEBOUNCE`` (5 s) and ``ALEXA_DOORBELL_EVENT_GATEWAY_URL``
    (default: the user's regional gateway; the local cloud when CLOUD=local)."""
    from alexa_doorbell.amazon.lwa import LwaClient
    from alexa_doorbell.skill.config import PREFIX, SkillConfig
    from alexa_doorbell.store import open_store, seed_catalog

    environ = os.environ if env is None else env
    cfg = SkillConfig.from_env(environ)
    client_id, secret = cfg.lwa_credentials()
    override = environ.get(PREFIX + "EVENT_GATEWAY_URL") or None
    if override is None and environ.get(PREFIX + "CLOUD") == "local":
        host = environ.get(PREFIX + "LOCAL__HOST") or "127.0.0.1"
        override = f"http://{host}:{environ.get(PREFIX + 'LOCAL__PORT') or '8750'}"
    store = open_store(cfg.store_url)
    seed_catalog(store, cfg.cameras)
    notifier = Notifier(
        store,
        LwaClient(cfg.lwa_url, client_id, secret),
        GatewayPool(override),
        debounce=cfg.press_debounce,
        single_user=cfg.single_user,
        health_max_age=cfg.health_max_age,
    )
    notifier._owns_store = True
    return notifier


def get_notifier() -> Notifier:
    global _notifier
    if _notifier is None:
        with _build_lock:
            if _notifier is None:
                _notifier = build_from_env()
    return _notifier


def handle(notifier: Notifier, event: Any) -> dict[str, Any]:
    """One notifier request: ``{"action": "press"|"health"|"catalog"|"sweep"|"sessions"|"status"}``.

    - press: ``endpoint_id`` (default: the first doorbell), ``cause``
    - health: ``endpoint_id``, ``connectivity`` (OK/UNREACHABLE)
    - catalog: ``added`` and/or ``deleted`` (lists of endpoint ids)
    - sweep: ChangeReport UNREACHABLE for cameras whose heartbeat went stale (scheduled)
    - sessions: ``endpoint_id``, ``since``: the RTC sessions the skill recorded (the
      camera learns of SessionDisconnected this way in AWS)
    - status: token health per user (never the tokens)

    Returns ``{"ok": bool, "results": [Outcome...]}`` (status: ``{"ok", "users"}``);
    bad requests get ``{"ok": false, "error": ...}``.
    """
    if not isinstance(event, dict):
        return {"ok": False, "error": "the request must be a JSON object"}
    action = event.get("action")
    try:
        if action == "press":
            outcomes = notifier.press(
                event.get("endpoint_id") or None,
                cause=str(event.get("cause") or "PHYSICAL_INTERACTION"),
            )
        elif action == "health":
            outcomes = notifier.health(str(event["endpoint_id"]), str(event["connectivity"]))
        elif action == "catalog":
            outcomes = notifier.catalog(
                added=[str(e) for e in event.get("added") or []],
                deleted=[str(e) for e in event.get("deleted") or []],
            )
        elif action == "sweep":
            outcomes = notifier.sweep()
        elif action == "sessions":
            rows = notifier.store.list_sessions(
                str(event["endpoint_id"]), since=float(event.get("since") or 0.0)
            )
            return {"ok": True, "sessions": [asdict(r) for r in rows]}
        elif action == "status":
            return {"ok": True, "users": notifier.token_status()}
        else:
            return {
                "ok": False,
                "error": f"unknown action {action!r}: use press, health, catalog, sweep, "
                "sessions or status",
            }
    except KeyError as exc:
        return {"ok": False, "error": f"{action} needs {exc.args[0]!r}"}
    except (TypeError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": all(o.ok for o in outcomes), "results": [o.as_dict() for o in outcomes]}


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    try:
        notifier = get_notifier()
    except Exception as exc:  # configuration trouble: say so, and try again next time
        log.error("notifier not ready: %s", exc)
        return {"ok": False, "error": f"notifier not ready: {redact(str(exc))}"}
    try:
        return handle(notifier, event)
    except Exception as exc:  # the store or something unforeseen: an answer, not a trace
        log.exception("notifier request failed")
        return {"ok": False, "error": f"{type(exc).__name__}: {redact(str(exc))}"}


# -- camera side ---------------------------------------------------------------------------
class InProcessNotifier:
    """The camera-side notifier on the local cloud: the Notifier itself, in this process."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def press(
        self, endpoint_id: str | None = None, cause: str = "PHYSICAL_INTERACTION"
    ) -> list[Outcome]:
        return self.notifier.press(endpoint_id, cause=cause)

    def on_connectivity(self, endpoint_id: str, connectivity: str) -> None:
        """The camera agent's callback: record health, ChangeReport on change."""
        self.notifier.health(endpoint_id, connectivity)

    def sweep(self) -> list[Outcome]:
        """Report cameras that went silent (what the scheduled Lambda does in AWS)."""
        return self.notifier.sweep()

    def status(self) -> list[dict[str, Any]]:
        return self.notifier.token_status()

    def close(self) -> None:
        self.notifier.close()


class LambdaNotifier:
    """The camera-side notifier in AWS: invokes the notifier Lambda (tokens stay in AWS).

    Debounces presses here too: each Lambda container has its own memory.
    """

    def __init__(self, function: str, session: Any, *, debounce: float = 5.0) -> None:
        self.function = function
        self._lambda = session.client("lambda")
        self.debounce = debounce
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.last_error: str | None = None  # of the last health report; None: delivered

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

    def list_sessions(self, endpoint_id: str, *, since: float = 0.0) -> list[RtcSession]:
        """The skill's record of RTC sessions (the agent polls it for SessionDisconnected)."""
        reply = self.invoke({"action": "sessions", "endpoint_id": endpoint_id, "since": since})
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error") or "the notifier Lambda gave no sessions")
        return [RtcSession(**row) for row in reply.get("sessions") or []]

    def status(self) -> list[dict[str, Any]]:
        reply = self.invoke({"action": "status"})
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error") or "the notifier Lambda gave no status")
        return list(reply.get("users") or [])

    def close(self) -> None:
        pass


def _outcomes(reply: dict[str, Any], name: str, endpoint_id: str | None) -> list[Outcome]:
    if "results" not in reply:
        return [Outcome(name, endpoint_id or "-", "failed", False, detail=str(reply.get("error")))]
    fields = set(Outcome.__dataclass_fields__)
    return [Outcome(**{k: v for k, v in r.items() if k in fields}) for r in reply["results"]]


def local_notifier(settings: Settings, store: Store | None = None) -> Any:
    """The notifier for the camera side (agent, dashboard, ``alexa-doorbell press``).

    Local cloud: in-process against the store and the local emulators. AWS:
    invokes ``settings.notifier_function`` with the camera's AWS credentials.
    Both have ``press(endpoint_id=None, cause=...)``, ``on_connectivity(endpoint_id,
    connectivity)``, ``status()`` and ``close()`` (which closes ``store`` only when the
    notifier opened it itself).
    """
    if settings.is_local:
        return InProcessNotifier(Notifier.from_settings(settings, store))
    function = getattr(settings, "notifier_function", None)
    if not function:
        raise RuntimeError(
            "set ALEXA_DOORBELL_NOTIFIER_FUNCTION to the deployed notifier Lambda "
            "(stack output NotifierFunctionArn)"
        )
    return LambdaNotifier(function, settings.boto_session(), debounce=settings.press_debounce)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in Lambda: INFO logs to CloudWatch
    logging.getLogger("alexa_doorbell").setLevel(logging.INFO)
