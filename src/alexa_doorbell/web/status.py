"""What the dashboard's status panel shows, computed from plain inputs (no I/O).

:func:`build_status` turns what the store and the signaling service say into
one JSON-ready dict: cameras (online/offline, viewers now, last session),
linked users with their token health (never the tokens), recent events sent
to Alexa with their replies, and the problems worth a user's attention, each
with what to do about it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alexa_doorbell.camera.runstate import AgentState
from alexa_doorbell.config import CameraConfig
from alexa_doorbell.store.base import EventRecord, Health, RtcSession, Tokens

REFRESH_DUE = 300.0  # seconds before expiry when the notifier refreshes an access token
# A viewer is a session Alexa reported connected (SessionConnected) and not yet ended.
# An OFFERED row is an offer only: refused, failed or never connected, it stays OFFERED.
LIVE_SESSION_STATE = "CONNECTED"


@dataclass(frozen=True)
class Problem:
    """Something wrong, and what the user can do about it."""

    what: str
    fix: str
    where: str = ""  # a camera endpoint id, a user id, "cloud", "dashboard"...
    at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "fix": self.fix, "where": self.where, "at": self.at}


@dataclass
class StatusInputs:
    """Everything :func:`build_status` needs, gathered by the caller."""

    cloud: str  # "local" or "aws"
    region: str
    cameras: Sequence[CameraConfig]
    health: dict[str, Health | None]
    sessions: dict[str, list[RtcSession]]
    tokens: Sequence[Tokens]
    events: Sequence[EventRecord]
    # channel name -> viewer client ids connected to signaling; None when unknown (AWS)
    signaling_viewers: dict[str, list[str]] | None = None
    cloud_error: str | None = None  # the local cloud did not answer
    store_error: str | None = None
    recent_problems: Sequence[Problem] = ()  # the dashboard's own failures (press, viewer)
    health_max_age: float = 150.0
    max_session_seconds: float | None = None  # the opt-in cap; None: none
    # What each camera's agent on this machine says of itself (camera/runstate.py):
    # its source's state; None for a camera whose agent runs elsewhere (or none)
    agents: dict[str, AgentState | None] = field(default_factory=dict)
    source_grace_seconds: float = 15.0
    now: float = field(default_factory=time.time)


def token_health(tokens: Tokens, now: float) -> str:
    """One word for a linked user's tokens: ok, refresh due, expired or relink needed."""
    if tokens.relink_needed:
        return "relink needed"
    left = tokens.expires_in(now)
    if left <= 0:
        return "expired"  # not a fault: the next press refreshes it
    if left <= REFRESH_DUE:
        return "refresh due"
    return "ok"


def event_ok(status: str) -> bool:
    return status.strip().startswith("2")


def event_advice(status: str, detail: str = "") -> str:
    """What to do about an event the gateway (or the notifier) did not accept."""
    s = status.upper()
    if "RELINK" in s or "SKILL_DISABLED" in s or "SKILL_NEVER_ENABLED" in s or "INVALID_GRANT" in s:
        return (
            "Open the Alexa app, disable the skill and enable it again to link your account "
            "anew; presses resume after that."
        )
    if "INSUFFICIENT_PERMISSION" in s:
        return (
            "Give the skill the 'Send Alexa Events' permission (developer console, Permissions), "
            "then relink the skill in the Alexa app."
        )
    if s.startswith("401") or "INVALID_ACCESS_TOKEN" in s or "INVALID_CLIENT" in s:
        return (
            "The token was refused even after a refresh: check that "
            "ALEXA_DOORBELL_LWA_CLIENT_ID/SECRET are the skill's Alexa Skill Messaging "
            "credentials (Permissions page), not the account-linking ones."
        )
    if s.startswith("404") or "ACCOUNT_NOT_FOUND" in s or "SKILL_NOT_FOUND" in s:
        return (
            "Alexa does not know this account or skill in that region: check "
            "ALEXA_DOORBELL_EVENT_REGION (NA, EU or FE) and that the skill is enabled."
        )
    if s.startswith(("429", "500", "502", "503", "504")) or "THROTTL" in s:
        return "Amazon was busy; the press was retried with backoff. Press again in a moment."
    if s.startswith(("400", "413")):
        why = f" ({detail})" if detail else ""
        return f"The gateway rejected the event{why}. Please report it with this detail."
    if "NOT LINKED" in s or "NO LINKED" in s or "NO TOKENS" in s:
        return "Link the skill in the Alexa app first: presses need a linked account."
    return "The event did not reach Alexa: check the network and run `alexa-doorbell doctor`." + (
        f" ({detail})" if detail else ""
    )


def _camera(inp: StatusInputs, cam: CameraConfig, problems: list[Problem]) -> dict[str, Any]:
    now = inp.now
    health = inp.health.get(cam.endpoint_id)
    if health is None:
        connectivity, age = "UNKNOWN", None
    else:
        connectivity = health.effective(inp.health_max_age, now)
        age = max(0.0, now - health.updated_at)
    online = connectivity == "OK"
    sessions = sorted(inp.sessions.get(cam.endpoint_id, []), key=lambda s: s.updated_at)
    # With a cap the camera ends every session by max_session_seconds, SessionDisconnected
    # or not; without one a view lasts until SessionDisconnected.
    cap = inp.max_session_seconds or None
    alexa_viewers = [
        s
        for s in sessions
        if s.state == LIVE_SESSION_STATE and (cap is None or now - s.updated_at < cap)
    ]
    source = _source(inp.agents.get(cam.endpoint_id))
    browsers: list[str] | None = None
    if inp.signaling_viewers is not None:
        browsers = list(inp.signaling_viewers.get(cam.channel_name, []))
    # Nobody watches an offline camera, whatever is still connected to signaling.
    viewers = len(alexa_viewers) + len(browsers or []) if online else 0
    last = sessions[-1] if sessions else None

    cmd = f"alexa-doorbell camera --endpoint-id {cam.endpoint_id}"
    if health is None:
        problems.append(
            Problem(
                f"{cam.friendly_name} has never reported to this system.",
                f"Start its camera agent: `{cmd}` (it reports online once signaling connects).",
                cam.endpoint_id,
            )
        )
    if source is not None and source["state"] == "down":
        down_for = max(0.0, now - (source["since"] or now))
        problems.append(
            Problem(
                f"{cam.friendly_name}'s camera does not answer ({source['error']}) for"
                f" {down_for:.0f} s; viewers see a reconnecting picture.",
                "Check that the camera is powered and on the network, and its `source`"
                " (URL, user name, password). The agent retries on its own; Alexa shows"
                f" the camera offline after {inp.source_grace_seconds:.0f} s"
                " (source_grace_seconds).",
                cam.endpoint_id,
                source["since"],
            )
        )
    elif health is not None and health.connectivity != "OK":
        problems.append(
            Problem(
                f"{cam.friendly_name} is offline: its agent lost the signaling connection.",
                f"Check that `{cmd}` is running and has network access; its log says why.",
                cam.endpoint_id,
                health.updated_at,
            )
        )
    elif health is not None and not online:
        problems.append(
            Problem(
                f"{cam.friendly_name} has not reported for {age:.0f} s (heartbeat is stale).",
                f"The agent may have crashed or lost power: restart `{cmd}`.",
                cam.endpoint_id,
                health.updated_at,
            )
        )
    return {
        "endpoint_id": cam.endpoint_id,
        "friendly_name": cam.friendly_name,
        "channel_name": cam.channel_name,
        "doorbell": cam.doorbell,
        "full_duplex": cam.full_duplex,
        "connectivity": connectivity,
        "online": online,
        "last_report_age": None if age is None else round(age, 1),
        "viewers": viewers,
        "alexa_viewers": len(alexa_viewers) if online else 0,
        "browser_viewers": None if browsers is None else len(browsers) if online else 0,
        "source": source,
        "last_session": None
        if last is None
        else {"session_id": last.session_id, "state": last.state, "at": last.updated_at},
    }


def _source(agent: AgentState | None) -> dict[str, Any] | None:
    """The camera's source as its agent here sees it: idle, starting, live or down."""
    if agent is None or agent.source_state is None:
        return None
    return {"state": agent.source_state, "since": agent.source_since, "error": agent.source_error}


def _user(t: Tokens, now: float, problems: list[Problem]) -> dict[str, Any]:
    health = token_health(t, now)
    if health == "relink needed":
        problems.append(
            Problem(
                f"Alexa account {t.user_id} must be linked again"
                + (f" (last reply: {t.last_gateway_status})." if t.last_gateway_status else "."),
                event_advice("relink"),
                t.user_id,
            )
        )
    # Never the tokens: only their health.
    return {
        "user_id": t.user_id,
        "region": t.region,
        "token_health": health,
        "expires_in": round(t.expires_in(now)),
        "last_refresh_at": t.last_refresh_at,
        "last_gateway_status": t.last_gateway_status,
        "relink_needed": t.relink_needed,
    }


def build_status(inp: StatusInputs) -> dict[str, Any]:
    problems: list[Problem] = []
    if inp.cloud_error:
        problems.append(
            Problem(
                f"The local cloud is not answering ({inp.cloud_error}).",
                "Start it with `alexa-doorbell cloud` (or `alexa-doorbell demo --keep-running`).",
                "cloud",
            )
        )
    if inp.store_error:
        problems.append(
            Problem(
                f"The store cannot be read ({inp.store_error}).",
                "Check ALEXA_DOORBELL_STORE_URL and its permissions; `alexa-doorbell doctor`.",
                "store",
            )
        )
    cameras = [_camera(inp, cam, problems) for cam in inp.cameras]
    users = [_user(t, inp.now, problems) for t in inp.tokens]
    if not inp.tokens and not inp.store_error:
        fix = (
            "Enable the skill in the Alexa app and link your account."
            if inp.cloud == "aws"
            else "Run `alexa-doorbell demo --keep-running`, which links a simulated account."
        )
        problems.append(
            Problem("No Alexa account is linked: doorbell presses cannot be announced.", fix)
        )
    events = []
    failures = 0
    for rec in inp.events:
        ok = event_ok(rec.status)
        events.append(
            {
                "at": rec.at,
                "user_id": rec.user_id,
                "endpoint_id": rec.endpoint_id,
                "name": rec.name,
                "status": rec.status,
                "detail": rec.detail,
                "ok": ok,
            }
        )
        # Newest first: advise on failures more recent than the last success only.
        if ok:
            failures = -1
        elif failures >= 0 and failures < 3:
            failures += 1
            problems.append(
                Problem(
                    f"{rec.name} for {rec.endpoint_id} was not accepted: {rec.status}.",
                    event_advice(rec.status, rec.detail),
                    rec.endpoint_id,
                    rec.at,
                )
            )
    problems.extend(inp.recent_problems)
    return {
        "cloud": inp.cloud,
        "region": inp.region,
        "generated_at": inp.now,
        "cameras": cameras,
        "users": users,
        "events": events,
        "problems": [p.as_dict() for p in problems],
    }
