"""A simulated Alexa service: sends directives to the skill the way Alexa invokes a Lambda,
and says what a real one would of the events the skill's notifier sends.

Every directive goes through a JSON round trip (text in, text out), as the
Lambda runtime would carry it, and every reply is returned parsed.

    alexa = SimulatedAlexa(skill.handle, bearer_token)
    alexa.accept_grant(code)
    endpoints = alexa.discover()["event"]["payload"]["endpoints"]

:class:`Announcer` hears every event the local gateway accepts: a DoorbellPress
is "Someone is at the Front Door" on the user's Echo devices, an ObjectDetection
"Person detected at Front Door" with the snapshot, which it fetches from
``frameImageUri`` over HTTPS as Alexa would (trusting the local cloud's
certificate; only from this machine), and motion a routine trigger.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SkillInvoker = Callable[[dict[str, Any]], dict[str, Any]]


def directive(
    namespace: str,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    endpoint_id: str | None = None,
    correlation: bool = True,
) -> dict[str, Any]:
    """A directive as Alexa sends it (Smart Home API v3)."""
    header: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "messageId": str(uuid.uuid4()),
        "payloadVersion": "3",
    }
    if correlation:
        header["correlationToken"] = uuid.uuid4().hex
    d: dict[str, Any] = {"header": header, "payload": payload or {}}
    if endpoint_id is not None:
        d["endpoint"] = {"endpointId": endpoint_id, "cookie": {}}
        if token is not None:
            d["endpoint"]["scope"] = {"type": "BearerToken", "token": token}
    return {"directive": d}


def new_session_id() -> str:
    """A session id shaped like the ones Alexa sends."""
    return f"amzn1.echo-api.session.{uuid.uuid4()}"


class SimulatedAlexa:
    """One user's Alexa account talking to the skill."""

    def __init__(self, invoke: SkillInvoker, token: str) -> None:
        self._invoke = invoke
        self.token = token

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(self._invoke(json.loads(json.dumps(event)))))

    def accept_grant(self, code: str) -> dict[str, Any]:
        return self.send(
            directive(
                "Alexa.Authorization",
                "AcceptGrant",
                {
                    "grant": {"type": "OAuth2.AuthorizationCode", "code": code},
                    "grantee": {"type": "BearerToken", "token": self.token},
                },
                correlation=False,
            )
        )

    def discover(self) -> dict[str, Any]:
        return self.send(
            directive(
                "Alexa.Discovery",
                "Discover",
                {"scope": {"type": "BearerToken", "token": self.token}},
                correlation=False,
            )
        )

    def initiate_session(self, endpoint_id: str, session_id: str, offer_sdp: str) -> dict:
        return self.send(
            directive(
                "Alexa.RTCSessionController",
                "InitiateSessionWithOffer",
                {"sessionId": session_id, "offer": {"format": "SDP", "value": offer_sdp}},
                token=self.token,
                endpoint_id=endpoint_id,
            )
        )

    def session_event(self, name: str, endpoint_id: str, session_id: str) -> dict[str, Any]:
        """``SessionConnected`` or ``SessionDisconnected``."""
        return self.send(
            directive(
                "Alexa.RTCSessionController",
                name,
                {"sessionId": session_id},
                token=self.token,
                endpoint_id=endpoint_id,
            )
        )

    def report_state(self, endpoint_id: str) -> dict[str, Any]:
        return self.send(
            directive("Alexa", "ReportState", token=self.token, endpoint_id=endpoint_id)
        )


def reply_name(reply: dict[str, Any]) -> str:
    """``Namespace.Name`` of a reply, with the error type for an ErrorResponse."""
    header = reply["event"]["header"]
    name = f"{header['namespace']}.{header['name']}"
    if header["name"] == "ErrorResponse":
        name += f" {reply['event']['payload'].get('type')}"
    return name


def answer_of(reply: dict[str, Any]) -> str:
    """The answer SDP of an ``AnswerGeneratedForSession`` reply; ValueError otherwise."""
    header = reply["event"]["header"]
    if header["name"] != "AnswerGeneratedForSession":
        payload = reply["event"].get("payload", {})
        raise ValueError(
            f"expected AnswerGeneratedForSession, got {reply_name(reply)}: "
            f"{payload.get('message', '')}"
        )
    return reply["event"]["payload"]["answer"]["value"]


# -- what Alexa says ---------------------------------------------------------------------
MAX_IMAGE = 5 * 1024 * 1024
KEEP = 200


@dataclass(frozen=True)
class Announcement:
    """What the user's Alexa would say or do for one accepted event."""

    at: float
    user_id: str
    endpoint_id: str
    kind: str  # "announcement" (spoken on the Echo devices) or "routine" (triggers routines)
    text: str  # "Person detected at Front Door"
    event: str  # DoorbellPress, ObjectDetection, ChangeReport
    image_url: str | None = None  # frameImageUri as sent
    image_type: str | None = None  # Content-Type of what the URL returned
    image_size: int = 0
    image_sha256: str | None = None
    image_error: str | None = None  # why there is no picture
    image: bytes | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """For ``/_local/announcements``: everything but the bytes; the URL without its
        signature (it opens the picture until it expires)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("image", "image_url")}
        out["image_url"] = self.image_url.split("?")[0] if self.image_url else None
        return out


def _on_this_machine(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Announcer:
    """Turns accepted events into what Alexa would announce, with the picture fetched."""

    def __init__(self, names: dict[str, str], ca_file: Path | None = None) -> None:
        self.names = dict(names)  # endpoint id -> friendly name (Discovery, AddOrUpdateReport)
        self.ca_file = ca_file
        self._items: list[Announcement] = []
        self._cond = threading.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    # in-process API
    @property
    def announcements(self) -> list[Announcement]:
        with self._cond:
            return list(self._items)

    def wait_for(self, count: int = 1, timeout: float = 5.0, kind: str | None = None):  # type: ignore[no-untyped-def]
        """Block until ``count`` announcements (of ``kind``) were made, or the timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [a for a in self._items if kind is None or a.kind == kind]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    # the gateway's listener (called on the cloud's loop)
    def heard(self, user_id: str, message: dict[str, Any]) -> None:
        event = message.get("event", {})
        header = event.get("header", {})
        name = header.get("name", "")
        if header.get("namespace") == "Alexa.Discovery" and name == "AddOrUpdateReport":
            for ep in event.get("payload", {}).get("endpoints", []):
                self.names[ep.get("endpointId", "")] = ep.get("friendlyName", "")
            return
        eid = event.get("endpoint", {}).get("endpointId", "")
        where = self.names.get(eid) or eid
        if name == "DoorbellPress":
            self._add(
                Announcement(
                    time.time(), user_id, eid, "announcement", f"Someone is at the {where}", name
                )
            )
        elif name == "ObjectDetection":
            for item in event.get("payload", {}).get("events", []):
                what = str(item.get("imageNetClass", "object")).capitalize()
                spoken = Announcement(
                    time.time(),
                    user_id,
                    eid,
                    "announcement",
                    f"{what} detected at {where}",
                    name,
                    image_url=item.get("frameImageUri"),
                )
                if spoken.image_url:
                    task = asyncio.ensure_future(self._with_picture(spoken))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    self._add(spoken)
        elif name == "ChangeReport":
            for p in event.get("payload", {}).get("change", {}).get("properties", []):
                if p.get("name") == "detectionState":
                    said = "Motion at" if p.get("value") == "DETECTED" else "No motion at"
                    self._add(
                        Announcement(time.time(), user_id, eid, "routine", f"{said} {where}", name)
                    )

    async def _with_picture(self, spoken: Announcement) -> None:
        import dataclasses

        import httpx

        url = spoken.image_url or ""
        parts = urlsplit(url)
        if parts.scheme != "https" or not _on_this_machine(parts.hostname or ""):
            error = "not fetched: the simulated Alexa fetches only https:// on this machine"
            self._add(dataclasses.replace(spoken, image_error=error))
            return
        verify: Any = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        try:
            async with httpx.AsyncClient(verify=verify, timeout=5.0) as client:
                reply = await client.get(url)
            body = reply.content[:MAX_IMAGE]
            ctype = reply.headers.get("content-type", "")
            if reply.status_code != 200 or not ctype.startswith("image/"):
                raise ValueError(f"GET answered {reply.status_code} {ctype or 'no type'}")
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("simulated Alexa: no snapshot from frameImageUri: %s", exc)
            self._add(dataclasses.replace(spoken, image_error=str(exc)))
            return
        digest = hashlib.sha256(body).hexdigest()
        self._add(
            dataclasses.replace(
                spoken, image=body, image_type=ctype, image_size=len(body), image_sha256=digest
            )
        )

    def _add(self, item: Announcement) -> None:
        log.info("Alexa (%s, %s): %s", item.user_id, item.kind, item.text)
        with self._cond:
            self._items.append(item)
            del self._items[:-KEEP]
            self._cond.notify_all()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def announcer_for(cameras: Iterable[Any], ca_file: Path | None) -> Announcer:
    """An :class:`Announcer` that knows the configured cameras' friendly names."""
    return Announcer({c.endpoint_id: c.friendly_name for c in cameras}, ca_file)
