"""One connection to the MQTT broker that stays up: subscribe, route, publish.

    conn = MqttConnection(broker_from_settings(settings), client_id="alexa-doorbell-1")
    conn.route("frigate/events", frigate.handle)        # before start()
    conn.on_connect(homeassistant.announce)             # after every (re)connect
    await conn.start()
    await conn.publish("alexa-doorbell/front-door/motion", "ON", retain=True)
    await conn.stop()

``mqtt_url`` is ``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` (TLS, checked
against ``mqtt_ca_file`` or the system's CAs). The user name and password come
from ``ALEXA_DOORBELL_MQTT_USERNAME`` and ``ALEXA_DOORBELL_MQTT_PASSWORD`` (or a
file named by ``ALEXA_DOORBELL_MQTT_PASSWORD_FILE``), never from the TOML file.

The connection retries on its own with bounded exponential backoff (0.5 s
doubling to 30 s, with jitter; the first failure is a warning, the next ones
quiet until it is back) and subscribes again after each reconnect: clean
sessions, so a broker restart replays nothing but retained messages, which
each handler receives flagged ``retained`` to tell them from live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from alexa_doorbell.config.urls import parse_mqtt_url
from alexa_doorbell.lambda_config import ConfigError

log = logging.getLogger(__name__)

USERNAME_ENV = "ALEXA_DOORBELL_MQTT_USERNAME"
PASSWORD_ENV = "ALEXA_DOORBELL_MQTT_PASSWORD"
STABLE = 10.0  # seconds a connection must have lasted for the backoff to start afresh


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The address without credentials: safe to log."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def read_credentials(environ: Mapping[str, str] = os.environ) -> tuple[str | None, str | None]:
    """(username, password) from the environment; ConfigError for an unreadable file."""
    username = environ.get(USERNAME_ENV) or None
    password = environ.get(PASSWORD_ENV) or None
    path = environ.get(PASSWORD_ENV + "_FILE")
    if password is None and path:
        try:
            password = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"{PASSWORD_ENV}_FILE={path}: {exc.strerror}; point it at the file that "
                "holds the broker password"
            ) from None
    if password is not None and username is None:
        raise ConfigError(f"{PASSWORD_ENV} is set but {USERNAME_ENV} is not: set both")
    return username, password


def broker_from_settings(settings: object, environ: Mapping[str, str] = os.environ) -> Broker:
    url = getattr(settings, "mqtt_url", None)
    if not url:
        raise ConfigError("mqtt_url is not set (e.g. mqtt://127.0.0.1:1883)")
    host, port, tls = parse_mqtt_url(url)
    username, password = read_credentials(environ)
    ca_file = getattr(settings, "mqtt_ca_file", None)
    if ca_file is not None and not tls:
        log.warning("mqtt_ca_file is set but mqtt_url is not mqtts://: the connection is plain")
    return Broker(host, port, tls, ca_file, username, password)


@dataclass(frozen=True)
class Received:
    """A message as handlers see it."""

    topic: str
    payload: bytes
    retained: bool  # replayed by the broker on subscribe, not sent just now
    at: float  # time.time() when it arrived


Handler = Callable[[Received], None]
ConnectHook = Callable[["MqttConnection"], Awaitable[None]]


class MqttConnection:
    def __init__(
        self,
        broker: Broker,
        *,
        client_id: str | None = None,
        will: aiomqtt.Will | None = None,
        keepalive: int = 30,
        backoff: tuple[float, float] = (0.5, 30.0),
        qos: int = 1,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.will = will
        self.keepalive = keepalive
        self.backoff = backoff
        self.qos = qos
        self.connected = asyncio.Event()
        self.ready = asyncio.Event()  # connected and subscribed: messages flow
        self.connects = 0  # successful connections so far (a reconnect makes it 2, ...)
        self._routes: list[tuple[str, Handler]] = []
        self._hooks: list[ConnectHook] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- set-up -----------------------------------------------------------------------
    def route(self, topic_filter: str, handler: Handler) -> None:
        """Subscribe to ``topic_filter`` (wildcards allowed) on every connect; messages
        that match go to ``handler`` (a plain function: it must not block)."""
        self._routes.append((topic_filter, handler))

    def on_connect(self, hook: ConnectHook) -> None:
        """Run ``hook`` after every connect, before subscribing (announce, publish state)."""
        self._hooks.append(hook)

    @property
    def filters(self) -> list[str]:
        return list(dict.fromkeys(f for f, _ in self._routes))

    # -- running ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start connecting in the background (returns at once; see ``connected``)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"mqtt {self.broker.url}")

    async def wait_ready(self, timeout: float) -> bool:
        """Whether it is connected and subscribed within ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.ready.wait()
        return self.ready.is_set()

    async def stop(self, goodbye: tuple[str, str] | None = None) -> None:
        """Disconnect cleanly; ``goodbye`` (topic, payload) is published retained first,
        as a clean disconnect does not send the will."""
        self._stopping = True
        client = self._client
        if goodbye is not None and client is not None and self.connected.is_set():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await client.publish(goodbye[0], goodbye[1], qos=1, retain=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(
        self, topic: str, payload: str | bytes, *, retain: bool = False, qos: int | None = None
    ) -> bool:
        """Publish now; False (nothing raised) when not connected or it failed."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        try:
            async with asyncio.timeout(5):
                await client.publish(
                    topic, payload, qos=self.qos if qos is None else qos, retain=retain
                )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.debug("mqtt: publish to %s failed: %s", topic, exc)
            return False
        return True

    async def _run(self) -> None:
        delay = self.backoff[0]
        failing = False
        while not self._stopping:
            started, connects = time.monotonic(), self.connects
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                lost = self.connects > connects  # it was up: a new outage, worth a warning
                if lost or not failing:
                    log.warning(
                        "mqtt: %s %s: %s; retrying with backoff up to %.0f s",
                        self.broker.url,
                        "lost" if lost else "unreachable",
                        exc,
                        self.backoff[1],
                    )
                else:
                    log.debug("mqtt: %s still unreachable: %s", self.broker.url, exc)
                failing = True
            except Exception:
                log.exception("mqtt: unexpected failure with %s; reconnecting", self.broker.url)
                failing = True
            finally:
                self.connected.clear()
                self.ready.clear()
                self._client = None
            if self._stopping:
                break
            if self.connects > connects and time.monotonic() - started > STABLE:
                delay = self.backoff[0]  # it was up a while: start again from the shortest
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff[1])

    async def _session(self) -> None:
        b = self.broker
        async with aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=self.client_id,
            will=self.will,
            clean_session=True,  # nothing queued for us replays after a reconnect
            keepalive=self.keepalive,
            tls_context=b.tls_context(),
            timeout=10,
            logger=log.getChild("paho"),
        ) as client:
            self._client = client
            self.connects += 1
            self.connected.set()
            log.info("mqtt: connected to %s%s", b.url, " again" if self.connects > 1 else "")
            for hook in self._hooks:
                await hook(self)
            for topic_filter in self.filters:
                await client.subscribe(topic_filter, qos=self.qos)
            self.ready.set()
            async for message in client.messages:
                self._dispatch(message)

    def _dispatch(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes | bytearray):
            payload = b"" if payload is None else str(payload).encode()
        received = Received(message.topic.value, bytes(payload), bool(message.retain), time.time())
        for topic_filter, handler in self._routes:
            if not message.topic.matches(topic_filter):
                continue
            try:
                handler(received)
            except Exception:
                log.exception("mqtt: handler for %s failed on %s", topic_filter, received.topic)
