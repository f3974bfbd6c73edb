"""Alexa.Authorization.AcceptGrant: exchange the code at once and store the tokens durably."""

from __future__ import annotations

from typing import Any

from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.errors import AcceptGrantFailed
from alexa_doorbell.alexa.responses import accept_grant_response
from alexa_doorbell.skill.context import SkillContext
from alexa_doorbell.store.base import Tokens


def accept_grant(skill: SkillContext, d: Directive, deadline: float) -> dict[str, Any]:
    grant = d.payload.get("grant")
    grantee = d.payload.get("grantee")
    if not isinstance(grant, dict) or grant.get("type") != "OAuth2.AuthorizationCode":
        raise AcceptGrantFailed("payload.grant must be of type OAuth2.AuthorizationCode")
    code = grant.get("code")
    if not isinstance(code, str) or not code:
        raise AcceptGrantFailed("payload.grant.code is missing")
    if (
        not isinstance(grantee, dict)
        or grantee.get("type") != "BearerToken"
        or not isinstance(grantee.get("token"), str)
        or not grantee["token"]
    ):
        raise AcceptGrantFailed("payload.grantee must be a BearerToken")
    # Who is linking: resolved first so a bad grantee never burns the one-time code.
    user_id = skill.users.user_id(grantee["token"])
    tokens = skill.lwa.exchange_code(code)
    previous = skill.store.get_tokens(user_id)
    skill.store.put_tokens(
        Tokens(
            user_id=user_id,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at,
            region=previous.region if previous else skill.event_region,
            last_refresh_at=tokens.received_at,
            relink_needed=False,
        )
    )
    return accept_grant_response(d)
