"""What a directive handler may use of the skill, and the skill's collaborators, as types.

The directive modules (``discovery``, ``authorization``, ``rtc``, ``state``,
``detection``) import only this; ``app.Skill`` imports them and is the one
:class:`SkillContext` at run time. So the imports run one way: app -> handlers
-> context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.amazon.lwa import TokenGrant
from alexa_doorbell.skill.identity import ProfileSource, UserResolver
from alexa_doorbell.store.base import Device, Store


class TokenExchanger(ProfileSource, Protocol):
    """Login with Amazon as the skill uses it (``amazon.lwa.LwaClient``)."""

    def exchange_code(self, code: str) -> TokenGrant: ...


class OfferRelay(Protocol):
    """The KVS boundary: ``SendAlexaOfferToMaster`` within ``timeout`` (``rtc.KvsRelay``).

    Returns the camera's answer SDP; raises ``kvs.errors.KvsError`` when there is none.
    """

    def send_offer(
        self, device: Device, sender_client_id: str, offer_sdp: str, timeout: float
    ) -> str: ...


class SkillContext(Protocol):
    """The skill as its directive handlers see it."""

    store: Store
    lwa: TokenExchanger
    kvs: OfferRelay
    users: UserResolver
    health_max_age: float
    event_region: str
    clock: Callable[[], float]

    def user_of(self, d: Directive) -> str: ...

    def devices_of(self, user_id: str) -> list[Device]: ...

    def owned_device(self, d: Directive) -> Device:
        """The directive's endpoint if the caller may see it, else NO_SUCH_ENDPOINT."""
        ...


# One directive in, one response (or event) out; the float is the monotonic deadline.
Handler = Callable[[SkillContext, Directive, float], dict[str, Any]]
