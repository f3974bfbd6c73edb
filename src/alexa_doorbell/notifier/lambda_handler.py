"""AWS Lambda entry point of the notifier: ``lambda_handler(event, context)``.

The camera side invokes it (``notifier.client.LambdaNotifier``) and the
template's schedule runs its sweep; it shares the skill's store. Standard
library, boto3 and urllib3 only; like the skill's handler it loads what an
error answer needs, and the notifier itself with the first request. Requests are
JSON objects with an ``action`` (see :func:`handle`); replies never carry a token.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from alexa_doorbell.amazon.events import redact

if TYPE_CHECKING:
    from alexa_doorbell.notifier.state_report import EventSender, Outcome

log = logging.getLogger("alexa_doorbell.notify")

_notifier: EventSender | None = None
_build_lock = threading.Lock()


def build_from_env(env: Mapping[str, str] | None = None) -> EventSender:
    """The notifier wired from ``ALEXA_DOORBELL_*`` variables (see lambda_config/), among
    them ``ALEXA_DOORBELL_PRESS_DEBOUNCE`` (5 s) and ``ALEXA_DOORBELL_EVENT_GATEWAY_URL``
    (default: the user's regional gateway; the local cloud when CLOUD=local)."""
    from alexa_doorbell.lambda_config import SkillConfig
    from alexa_doorbell.notifier.state_report import EventSender

    return EventSender.from_config(SkillConfig.from_env(env))


def get_notifier() -> EventSender:
    global _notifier
    if _notifier is None:
        with _build_lock:
            if _notifier is None:
                _notifier = build_from_env()
    return _notifier


def handle(notifier: EventSender, event: Any) -> dict[str, Any]:
    """One notifier request: ``{"action": "press"|"health"|"motion"|"detection"|"catalog"|
    "sweep"|"sessions"|"status"}``.

    - press: ``endpoint_id`` (default: the first doorbell), ``cause``
    - health: ``endpoint_id``, ``connectivity`` (OK/UNREACHABLE)
    - motion: ``endpoint_id``, ``at`` and either ``state`` (DETECTED/NOT_DETECTED, held
      by the camera: what ``LambdaNotifier`` sends) or ``detected`` (an input's raw
      state, held here; its end then comes with the sweep or a later request)
    - detection: ``endpoint_id``, ``label`` (person, package), ``at``, ``score``,
      ``snapshot_url`` (the presigned HTTPS GET: frameImageUri), ``event_id``
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
    outcomes: list[Outcome]
    try:
        if action == "press":
            outcomes = notifier.press(
                event.get("endpoint_id") or None,
                cause=str(event.get("cause") or "PHYSICAL_INTERACTION"),
            )
        elif action == "health":
            outcomes = notifier.health(str(event["endpoint_id"]), str(event["connectivity"]))
        elif action == "motion":
            at = float(event["at"])
            if "state" in event:
                outcomes = notifier.report_motion(
                    str(event["endpoint_id"]), str(event["state"]), at
                )
            elif isinstance(event.get("detected"), bool):
                outcomes = notifier.motion(str(event["endpoint_id"]), event["detected"], at)
            else:
                return {"ok": False, "error": "motion needs 'state' or a boolean 'detected'"}
        elif action == "detection":
            score = event.get("score")
            outcomes = notifier.detection(
                str(event["endpoint_id"]),
                str(event["label"]),
                None if score is None else float(score),
                float(event["at"]),
                _optional_str(event.get("snapshot_url")),
                _optional_str(event.get("event_id")),
            )
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
                "error": f"unknown action {action!r}: use press, health, motion, detection, "
                "catalog, sweep, sessions or status",
            }
    except KeyError as exc:
        return {"ok": False, "error": f"{action} needs {exc.args[0]!r}"}
    except (TypeError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": all(o.ok for o in outcomes), "results": [o.as_dict() for o in outcomes]}


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


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


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in Lambda: INFO logs to CloudWatch
    logging.getLogger("alexa_doorbell").setLevel(logging.INFO)
