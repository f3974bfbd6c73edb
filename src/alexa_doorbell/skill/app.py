"""The skill: one directive in, one response out, never an exception.

Collaborators are injected (store, LWA client, KVS relay), so the same object
runs in Lambda (built from the environment), in the local cloud and in the CLI
(built from ``Settings.lambda_config()``). The directive modules see it as a
``context.SkillContext``; this module imports them, they never import it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from alexa_doorbell.alexa import errors as E
from alexa_doorbell.alexa.directive import Directive, salvage
from alexa_doorbell.alexa.errors import AlexaError
from alexa_doorbell.alexa.responses import error_response
from alexa_doorbell.skill import authorization, detection, discovery, rtc, state
from alexa_doorbell.skill.context import Handler, OfferRelay, TokenExchanger
from alexa_doorbell.skill.errors import to_accept_grant_failure, to_alexa_error
from alexa_doorbell.skill.identity import UserResolver
from alexa_doorbell.store.base import Device, Store

log = logging.getLogger("alexa_doorbell.skill")

ROUTES: dict[tuple[str, str], Handler] = {
    ("Alexa.Discovery", "Discover"): discovery.discover,
    ("Alexa.Authorization", "AcceptGrant"): authorization.accept_grant,
    ("Alexa.RTCSessionController", "InitiateSessionWithOffer"): rtc.initiate_session,
    ("Alexa.RTCSessionController", "SessionConnected"): rtc.session_connected,
    ("Alexa.RTCSessionController", "SessionDisconnected"): rtc.session_disconnected,
    ("Alexa", "ReportState"): state.report_state,
    (
        "Alexa.SmartVision.ObjectDetectionSensor",
        "SetObjectDetectionClasses",
    ): detection.set_object_detection_classes,
}


class Skill:
    def __init__(
        self,
        store: Store,
        lwa: TokenExchanger,
        kvs: OfferRelay,
        *,
        deadline: float = 5.0,
        single_user: bool = True,
        health_max_age: float = 150.0,
        token_cache_ttl: float = 300.0,
        event_region: str = "NA",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lwa = lwa
        self.kvs = kvs
        self.deadline = deadline
        self.single_user = single_user
        self.health_max_age = health_max_age
        self.event_region = event_region
        self.clock = clock
        self.users = UserResolver(lwa, ttl=token_cache_ttl)
        self._routes = ROUTES

    # -- entry point -----------------------------------------------------
    def handle(self, event: Any) -> dict[str, Any]:
        started = time.monotonic()
        d: Directive | None = None
        try:
            d = Directive.parse(event)
            route = self._routes.get((d.namespace, d.name))
            if route is None:
                raise AlexaError(
                    E.INVALID_DIRECTIVE, f"{d.qualified_name} is not supported by this skill"
                )
            reply = route(self, d, started + self.deadline)
            outcome = reply["event"]["header"]["name"]
        except BaseException as exc:  # the runtime must never see an exception
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            reply = self._error_reply(exc, d, event)
            outcome = f"{reply['event']['payload']['type']}: {reply['event']['payload']['message']}"
            if not isinstance(exc, AlexaError):
                log.warning("directive failed: %s: %s", type(exc).__name__, exc)
        log.info(
            "%s endpoint=%s message=%s -> %s (%.1f ms)",
            d.qualified_name if d else "(malformed)",
            d.endpoint_id if d else "-",
            d.log_message_id if d else "-",
            outcome[:300],
            (time.monotonic() - started) * 1000,
        )
        return reply

    def _error_reply(self, exc: BaseException, d: Directive | None, event: Any) -> dict[str, Any]:
        if d is not None and d.namespace == "Alexa.Authorization" and d.name == "AcceptGrant":
            err = to_accept_grant_failure(exc)
        else:
            err = to_alexa_error(exc)
        if d is not None:
            corr, endpoint_id = d.correlation_token, d.endpoint_id
        else:
            corr, endpoint_id = salvage(event)
        return error_response(
            err.type,
            err.message,
            namespace=err.namespace,
            correlation_token=corr,
            endpoint_id=endpoint_id,
        )

    # -- helpers shared by the directive modules --------------------------
    def user_of(self, d: Directive) -> str:
        return self.users.user_id(d.token)

    def visible_to(self, device: Device, user_id: str) -> bool:
        """A token reaches only its own user's endpoints.

        Single-user mode: a device without an owner belongs to whoever linked
        the skill (has tokens in the store).
        """
        if device.owner is not None:
            return device.owner == user_id
        return self.single_user and self.store.get_tokens(user_id) is not None

    def devices_of(self, user_id: str) -> list[Device]:
        devices = self.store.list_devices()
        linked = (
            self.single_user
            and any(dev.owner is None for dev in devices)
            and self.store.get_tokens(user_id) is not None
        )
        return [dev for dev in devices if (dev.owner == user_id if dev.owner else linked)]

    def owned_device(self, d: Directive) -> Device:
        endpoint_id = d.require_endpoint()
        user_id = self.user_of(d)
        device = self.store.get_device(endpoint_id)
        if device is None or not self.visible_to(device, user_id):
            # The same answer for "absent" and "someone else's": no probing of ids.
            raise AlexaError(E.NO_SUCH_ENDPOINT, f"no endpoint {endpoint_id!r} for this account")
        return device
