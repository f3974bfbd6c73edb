"""``alexa-doorbell press`` and ``alexa-doorbell tokens status``.

Local cloud: in-process, against the store and the running local cloud's
emulators. AWS: through the notifier Lambda (``notifier_function``), so the
tokens never leave AWS.

Exit codes: 0 done (press accepted or debounced); 1 Alexa or LWA refused or
failed (the message says what to do; a user who must relink is one); 2 the set-up
is incomplete (no local cloud running, unknown doorbell, nobody linked, not configured).
"""

from __future__ import annotations

import json
import sys
import time

from alexa_doorbell.camera.runstate import ask_prewarm, new_press_id, tell_press_outcome
from alexa_doorbell.commands.skill import cloud_is_up
from alexa_doorbell.config import Settings
from alexa_doorbell.notifier.client import local_notifier
from alexa_doorbell.notifier.outcome import summary
from alexa_doorbell.notifier.state_report import Outcome
from alexa_doorbell.notifier.tokens import TokenStatus

SOURCE = "press command"  # the door timeline's name for these presses
SETUP_STATUSES = {"unknown endpoint", "not a doorbell", "not linked"}


def _no_cloud(settings: Settings) -> str:
    return (
        f"no local cloud at {settings.local.url}: start one with `alexa-doorbell cloud` "
        "(or `alexa-doorbell demo --keep-running`), or set ALEXA_DOORBELL_CLOUD=aws"
    )


def press_cli(
    settings: Settings,
    endpoint_id: str | None,
    *,
    cause: str = "PHYSICAL_INTERACTION",
    json_output: bool = False,
) -> int:
    """Ring the doorbell once and say what Alexa answered."""
    if settings.is_local and not cloud_is_up(settings):
        print(_no_cloud(settings), file=sys.stderr)
        return 2
    try:
        notifier = local_notifier(settings)
    except Exception as exc:
        print(f"cannot set up the notifier: {exc}", file=sys.stderr)
        return 2
    doorbell = endpoint_id or _only_doorbell(settings)
    press = new_press_id()
    if doorbell is not None:  # the agent on this machine readies the view meanwhile
        ask_prewarm(settings.data_dir, doorbell, press=press, source=SOURCE, cause=cause)
    status = "error"
    try:
        try:
            outcomes = notifier.press(endpoint_id, cause=cause)
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        status = summary(outcomes)
    finally:
        notifier.close()
        if doorbell is not None:  # and records the press, its picture and this answer
            tell_press_outcome(settings.data_dir, doorbell, press, status)
    if json_output:
        print(
            json.dumps(
                {"ok": all(o.ok for o in outcomes), "results": [o.as_dict() for o in outcomes]}
            )
        )
    else:
        for o in outcomes:
            print(_line(o), file=sys.stdout if o.ok else sys.stderr)
    if all(o.ok for o in outcomes):
        return 0
    if all(o.status in SETUP_STATUSES for o in outcomes):
        return 2
    return 1


def _only_doorbell(settings: Settings) -> str | None:
    """The doorbell a press without an endpoint id rings (the notifier's rule: the first)."""
    doorbells = [c.endpoint_id for c in settings.cameras if c.doorbell]
    return doorbells[0] if doorbells else None


def _line(o: Outcome) -> str:
    who = f" (user {o.user_id})" if o.user_id else ""
    if o.ok and o.status.startswith("2"):
        text = f"DoorbellPress for {o.endpoint_id} accepted by Alexa ({o.status}){who}"
    elif o.ok:
        text = f"DoorbellPress for {o.endpoint_id}: {o.status}{who}"
    else:
        text = f"DoorbellPress for {o.endpoint_id} not delivered: {o.status}{who}"
    if o.detail:
        text += f"\n  {o.detail}"
    return text


def _ago(then: float | None, now: float) -> str:
    if not then:
        return "never"
    secs = int(now - then)
    if secs < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if secs >= size:
            return f"{secs // size} {unit} ago"
    return f"{secs} s ago"


def _expiry(expires_in: float) -> str:
    secs = int(expires_in)
    if secs <= 0:
        return f"expired {-secs // 60} min ago (refreshed at the next event)"
    return f"expires in {secs // 60} min" if secs >= 60 else f"expires in {secs} s"


def tokens_status_cli(settings: Settings, *, json_output: bool = False) -> int:
    """Per linked user: expiry, last refresh, last gateway reply, relink needed. No tokens."""
    try:
        notifier = local_notifier(settings)
    except Exception as exc:
        print(f"cannot read token status: {exc}", file=sys.stderr)
        return 2
    try:
        users: list[TokenStatus] = notifier.status()
    except Exception as exc:
        print(f"cannot read token status: {exc}", file=sys.stderr)
        return 2
    finally:
        notifier.close()
    if json_output:
        print(json.dumps({"users": users}))
    elif not users:
        print("Nobody has linked the skill yet: enable it in the Alexa app and link your account.")
    else:
        now = time.time()
        for u in users:
            state = "RELINK NEEDED" if u.get("relink_needed") else "linked"
            print(f"{u['user_id']}: {state} (event region {u.get('region') or 'NA'})")
            print(f"  access token:       {_expiry(u['expires_at'] - now)}")
            print(f"  last refresh:       {_ago(u.get('last_refresh_at'), now)}")
            print(f"  last gateway reply: {u.get('last_gateway_status') or '-'}")
        if any(u.get("relink_needed") for u in users):
            print(
                "A user marked 'relink needed' must disable and enable the skill in the Alexa "
                "app, then link it again: Alexa refused their tokens or the skill is disabled.",
                file=sys.stderr,
            )
    if not users:
        return 2
    return 1 if any(u.get("relink_needed") for u in users) else 0
