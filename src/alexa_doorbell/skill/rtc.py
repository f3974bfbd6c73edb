"""Alexa.RTCSessionController: relay Alexa's offer to the camera through KVS, within a deadline.

``InitiateSessionWithOffer`` -> ``SendAlexaOfferToMaster`` (the camera agent is
the channel's MASTER) -> ``AnswerGeneratedForSession``. A camera that is known
to be offline, does not answer in time, or answers empty gives
``ENDPOINT_UNREACHABLE``: never a Lambda timeout.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from alexa_doorbell.alexa import errors as E
from alexa_doorbell.alexa.directive import Directive
from alexa_doorbell.alexa.errors import AlexaError, InvalidDirective
from alexa_doorbell.alexa.responses import (
    answer_generated_for_session,
)
from alexa_doorbell.alexa.responses import (
    session_connected as session_connected_response,
)
from alexa_doorbell.alexa.responses import (
    session_disconnected as session_disconnected_response,
)
from alexa_doorbell.kvs.client_id import sender_client_id
from alexa_doorbell.kvs.errors import KvsDenied, KvsError, KvsThrottled, KvsUnreachable
from alexa_doorbell.kvs.messages import refusal_reason, sdp_payload
from alexa_doorbell.skill.context import SkillContext
from alexa_doorbell.skill.state import connectivity
from alexa_doorbell.store.base import Device, RtcSession

MAX_SESSION_ID = 1024
MAX_OFFER_PAYLOAD = 10_000  # KVS's MessagePayload: 1-10,000 characters (botocore's model)


def _session_id(d: Directive) -> str:
    sid = d.payload.get("sessionId")
    if not isinstance(sid, str) or not sid or len(sid) > MAX_SESSION_ID:
        raise InvalidDirective("payload.sessionId must be a non-empty string")
    return sid


def _offer_sdp(d: Directive) -> str:
    offer = d.payload.get("offer")
    if not isinstance(offer, dict):
        raise InvalidDirective("payload.offer must be an object")
    fmt, value = offer.get("format"), offer.get("value")
    if not isinstance(fmt, str) or fmt.upper() != "SDP":
        raise InvalidDirective("payload.offer.format must be SDP")
    if not isinstance(value, str) or not value.startswith("v=0"):
        raise InvalidDirective("payload.offer.value must be an SDP offer")
    # Measure the payload SendAlexaOfferToMaster will carry, not the SDP: base64 of JSON,
    # where each CRLF is 4 characters and each non-ASCII character 6 (or 12) before
    # base64. Checked before the session is recorded or KVS is called; base64 is never
    # shorter than its input, so a longer SDP is refused without encoding it.
    if len(value) > MAX_OFFER_PAYLOAD or len(sdp_payload("offer", value)) > MAX_OFFER_PAYLOAD:
        raise InvalidDirective(
            f"the offer is too large: KVS carries at most {MAX_OFFER_PAYLOAD:,} characters "
            "of base64 (the SDP as JSON)"
        )
    return value


# -- directive handlers -------------------------------------------------------
def initiate_session(skill: SkillContext, d: Directive, deadline: float) -> dict[str, Any]:
    session_id = _session_id(d)
    offer = _offer_sdp(d)
    device = skill.owned_device(d)
    state, reported_at = connectivity(skill, device.endpoint_id)
    if reported_at is not None and state == "UNREACHABLE":
        # Known offline: answer at once instead of waiting on KVS.
        raise AlexaError(E.ENDPOINT_UNREACHABLE, f"camera {device.endpoint_id!r} is offline")
    skill.store.put_session(RtcSession(session_id, device.endpoint_id, "OFFERED", skill.clock()))
    remaining = deadline - time.monotonic()
    answer = skill.kvs.send_offer(device, sender_client_id(session_id), offer, remaining)
    refused = refusal_reason(answer)
    if refused is not None:
        raise AlexaError(*_REFUSALS.get(refused, _REFUSALS["INTERNAL_ERROR"]))
    return answer_generated_for_session(d, answer)


# What the camera's refusal answer means for Alexa (the camera names the error type).
_REFUSALS = {
    E.ENDPOINT_BUSY: (
        E.ENDPOINT_BUSY,
        "the camera already streams to its maximum number of viewers; try again when one ends",
    ),
    E.INVALID_DIRECTIVE: (
        E.INVALID_DIRECTIVE,
        "the camera cannot answer this offer (no codec in common); see the camera agent's log",
    ),
    "INTERNAL_ERROR": (E.INTERNAL_ERROR, "the camera refused the session; see its log"),
}


def session_connected(skill: SkillContext, d: Directive, deadline: float) -> dict[str, Any]:
    session_id = _session_id(d)
    device = skill.owned_device(d)
    skill.store.put_session(RtcSession(session_id, device.endpoint_id, "CONNECTED", skill.clock()))
    return session_connected_response(d, session_id)


def session_disconnected(skill: SkillContext, d: Directive, deadline: float) -> dict[str, Any]:
    session_id = _session_id(d)
    device = skill.owned_device(d)
    # The camera agent watches the store and tears the session down.
    skill.store.put_session(
        RtcSession(session_id, device.endpoint_id, "DISCONNECTED", skill.clock())
    )
    return session_disconnected_response(d, session_id)


# -- the KVS boundary -----------------------------------------------------------
class KvsRelay:
    """``SendAlexaOfferToMaster`` with cached channel look-ups and a hard deadline.

    Channel ARNs and HTTPS endpoints are cached per channel across warm
    invocations (they change only when a channel is recreated; an error drops
    the entry). Each call runs on a thread of its own so the deadline holds
    even while botocore waits on a socket, and a camera that never answers
    cannot hold up offers to other cameras (a shared pool of a few workers
    let two hung cameras time out every concurrent offer). An abandoned call
    ends by itself within botocore's read timeout (the deadline, rounded up).
    """

    def __init__(
        self,
        session: Any,  # boto3.session.Session
        endpoint_url: str | None = None,
        *,
        endpoint_ttl: float = 3600.0,
    ) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.endpoint_ttl = endpoint_ttl
        self._lock = threading.Lock()
        self._arn: dict[str, str] = {}
        self._https: dict[str, tuple[str, float]] = {}
        self._control: Any = None
        self._signaling: dict[tuple[str, float], Any] = {}
        self.stats = {"describe": 0, "get_endpoint": 0, "send": 0}

    def send_offer(
        self, device: Device, sender_client_id: str, offer_sdp: str, timeout: float
    ) -> str:
        if timeout <= 0:
            raise KvsUnreachable("no time left to reach the camera")
        future: Future[str] = Future()

        def run() -> None:
            try:
                future.set_result(self._send(device, sender_client_id, offer_sdp, timeout))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, name="kvs-offer", daemon=True).start()
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            raise KvsUnreachable(
                f"camera {device.endpoint_id!r} did not answer within {timeout:.1f} s"
            ) from None

    def warm(self) -> None:
        """Create the control-plane client ahead of the first offer (Lambda init phase)."""
        self._control_client()

    # -- internals (worker thread) ---------------------------------------
    def _control_client(self) -> Any:
        from alexa_doorbell.kvs.api import kinesisvideo_client

        with self._lock:
            if self._control is None:
                self._control = kinesisvideo_client(self.session, self.endpoint_url)
            return self._control

    def _signaling_client(self, https: str, timeout: float) -> Any:
        from botocore.config import Config

        from alexa_doorbell.kvs.api import signaling_client

        # Bucket the read timeout so clients are reused across invocations.
        read = max(1.0, round(timeout + 0.5))
        key = (https, read)
        with self._lock:
            client = self._signaling.get(key)
        if client is None:
            cfg = Config(
                connect_timeout=min(2.0, read),
                read_timeout=read,
                retries={"max_attempts": 1, "mode": "standard"},
            )
            client = signaling_client(self.session, https, cfg)
            with self._lock:
                self._signaling[key] = client
        return client

    def _channel_arn(self, device: Device) -> str:
        from alexa_doorbell.kvs.api import describe_channel_arn

        if device.channel_arn:
            return device.channel_arn
        with self._lock:
            arn = self._arn.get(device.channel_name)
        if arn is None:
            self.stats["describe"] += 1
            arn = describe_channel_arn(self._control_client(), device.channel_name)
            with self._lock:
                self._arn[device.channel_name] = arn
        return arn

    def _https_endpoint(self, arn: str) -> str:
        from alexa_doorbell.kvs.api import get_channel_endpoints

        now = time.monotonic()
        with self._lock:
            hit = self._https.get(arn)
        if hit and hit[1] > now:
            return hit[0]
        self.stats["get_endpoint"] += 1
        eps = get_channel_endpoints(self._control_client(), arn, "VIEWER")
        if not eps.https:
            raise KvsDenied(f"GetSignalingChannelEndpoint gave no HTTPS endpoint for {arn}")
        with self._lock:
            self._https[arn] = (eps.https, now + self.endpoint_ttl)
        return eps.https

    def _forget(self, device: Device, arn: str | None) -> None:
        with self._lock:
            self._arn.pop(device.channel_name, None)
            if arn:
                self._https.pop(arn, None)

    def _send(self, device: Device, sender: str, offer_sdp: str, timeout: float) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        from alexa_doorbell.kvs.api import send_alexa_offer_to_master
        from alexa_doorbell.kvs.messages import MessageError

        arn = None
        try:
            arn = self._channel_arn(device)
            https = self._https_endpoint(arn)
            self.stats["send"] += 1
            sig = self._signaling_client(https, timeout)
            return send_alexa_offer_to_master(sig, arn, sender, offer_sdp)
        except MessageError as exc:
            raise KvsUnreachable(f"camera {device.endpoint_id!r} gave no answer: {exc}") from None
        except ClientError as exc:
            self._forget(device, arn)
            raise _client_error(device, exc) from None
        except BotoCoreError as exc:
            self._forget(device, arn)
            raise KvsUnreachable(
                f"KVS unreachable for {device.endpoint_id!r}: {type(exc).__name__}"
            ) from None
        except KvsError:
            self._forget(device, arn)
            raise


_DENIED = {
    "AccessDeniedException",
    "NotAuthorizedException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
}


def _client_error(device: Device, exc: Any) -> KvsError:
    code = exc.response.get("Error", {}).get("Code", "")
    msg = str(exc.response.get("Error", {}).get("Message", ""))[:200]
    channel = device.channel_arn or device.channel_name
    if code == "ResourceNotFoundException":
        return KvsUnreachable(
            f"signaling channel {channel!r} not found: has the camera agent created it?"
        )
    if code == "ClientLimitExceededException":
        return KvsThrottled(f"KVS limit reached for channel {channel!r}: {msg}")
    if code in _DENIED:
        return KvsDenied(f"KVS refused the skill's credentials for {channel!r}: {code}")
    return KvsUnreachable(f"KVS {code or 'error'} for channel {channel!r}: {msg}")
