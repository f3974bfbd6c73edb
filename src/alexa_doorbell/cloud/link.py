"""``alexa-doorbell link``: link a user to the skill on a running local cloud, in one command.

What the Alexa app does when someone enables the skill, played against ``alexa-doorbell
cloud``: the local Login with Amazon's linking step (``POST /_local/lwa/link``) yields an
authorization code and the user's account-linking token; ``AcceptGrant`` through the skill
exchanges the code and stores the tokens, as Alexa's directive would; a ``Discover`` then
shows what that user sees. After it ``press``, ``tokens status`` and the dashboard have
someone to speak for. No token is ever printed: each one would act for the user.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from alexa_doorbell.cloud.admin import ADMIN_TOKEN_ENV, admin_headers
from alexa_doorbell.cloud.alexa import SimulatedAlexa, reply_name

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings

DEFAULT_USER = "amzn1.account.LOCALUSER"  # the same user each time: linking again refreshes it
USER_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


class _Store(Protocol):
    def close(self) -> None: ...


class SkillLike(Protocol):
    """The skill as ``build_skill`` makes it: directives in, replies out, over its store."""

    store: _Store

    def handle(self, event: Any) -> dict[str, Any]: ...


class LinkError(Exception):
    """Linking did not happen; ``str()`` says why and what to do, ``exit_code`` is 1 or 2."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Linked:
    user_id: str
    cloud: str  # the local cloud's URL
    endpoints: list[dict[str, Any]] = field(default_factory=list)  # id, name, categories

    @property
    def doorbell(self) -> str | None:
        """The first discovered doorbell's endpoint id: what `press` would ring."""
        for e in self.endpoints:
            if "DOORBELL" in e["categories"]:
                return str(e["endpoint_id"])
        return None


def link_user(settings: Settings, user_id: str, make_skill: Callable[[], SkillLike]) -> Linked:
    """Link ``user_id`` through the local cloud's LWA, then AcceptGrant on the skill
    ``make_skill`` builds (only once the cloud has answered; its store is closed after)."""
    if not settings.is_local:
        raise LinkError(
            'link works with the local cloud; with cloud = "aws" link your Amazon account in '
            "the Alexa app (docs/deploy-aws.md, step 9)"
        )
    if not USER_ID.fullmatch(user_id):
        raise LinkError(
            f"user id {user_id!r}: 1-128 letters, digits, '.', '_' or '-' "
            f"(Amazon's look like {DEFAULT_USER})"
        )
    grant = _link_step(settings.local.url, user_id)
    skill = make_skill()
    try:
        return _accept(settings, user_id, grant, skill)
    finally:
        skill.store.close()


def _accept(settings: Settings, user_id: str, grant: dict[str, str], skill: SkillLike) -> Linked:
    alexa = SimulatedAlexa(skill.handle, grant["access_token"])
    reply = alexa.accept_grant(grant["code"])
    if reply_name(reply) != "Alexa.Authorization.AcceptGrant.Response":
        payload = reply.get("event", {}).get("payload", {})
        raise LinkError(
            f"AcceptGrant failed: {payload.get('type', reply_name(reply))}: "
            f"{payload.get('message', '')}".rstrip(": "),
            exit_code=1,
        )
    discovered = alexa.discover().get("event", {}).get("payload", {}).get("endpoints", [])
    return Linked(
        user_id=user_id,
        cloud=settings.local.url,
        endpoints=[
            {
                "endpoint_id": e.get("endpointId"),
                "friendly_name": e.get("friendlyName"),
                "categories": list(e.get("displayCategories", [])),
            }
            for e in discovered
        ],
    )


def _link_step(base: str, user_id: str) -> dict[str, str]:
    """POST /_local/lwa/link: the code and the linking token (the Alexa app's part)."""
    request = urllib.request.Request(
        f"{base}/_local/lwa/link",
        data=json.dumps({"user_id": user_id}).encode(),
        headers={"Content-Type": "application/json", **admin_headers()},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = json.load(reply)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise LinkError(
                f"the local cloud at {base} wants its admin token: set {ADMIN_TOKEN_ENV} to "
                "the token `alexa-doorbell cloud` printed"
            ) from None
        raise LinkError(f"the local cloud at {base} refused the link: HTTP {exc.code}") from None
    except (OSError, ValueError):
        raise LinkError(
            f"no local cloud at {base}: start one with `alexa-doorbell cloud` (or `alexa-doorbell "
            "demo --keep-running`), or point ALEXA_DOORBELL_LOCAL__HOST/PORT at it"
        ) from None
    if not isinstance(body, dict) or not {"code", "access_token"} <= body.keys():
        raise LinkError(f"{base} is no local cloud: /_local/lwa/link gave no code")
    return body


def render(linked: Linked, store: str, dashboard: str = "http://127.0.0.1:8760/") -> str:
    """What was done, what the user now sees, and what to try next."""
    lines = [
        f"Linked {linked.user_id} to the skill on the local cloud {linked.cloud}; "
        f"tokens stored in {store}.",
    ]
    if linked.endpoints:
        names = ", ".join(f"{e['friendly_name']} ({e['endpoint_id']})" for e in linked.endpoints)
        lines.append(f"Alexa discovers: {names}")
    else:
        lines.append("Alexa discovers no camera for this user (is another user the owner?)")
    lines.append("Try next:")
    if linked.doorbell:
        lines.append(
            f"  alexa-doorbell press {linked.doorbell:<14} ring: DoorbellPress to the local "
            "event gateway"
        )
    lines += [
        "  alexa-doorbell tokens status        the linked user's token health",
        f"  alexa-doorbell dashboard            live view and doorbell button at {dashboard}",
    ]
    return "\n".join(lines)
