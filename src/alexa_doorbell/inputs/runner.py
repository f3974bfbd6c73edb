"""Start every input the settings ask for, as one handle.

    inputs = await start_inputs(settings, sink)
    offer = inputs.frame_sink("front-door")    # None unless pixel_motion / person_detector
    if offer:
        offer(frame)                           # each decoded frame; never blocks
    await inputs.stop()

MQTT (with Frigate, the cameras' own topics and Home Assistant discovery) when
``mqtt_url`` is set; a GPIO button per camera with ``gpio_pin``; the webhook
when ``[webhook] enabled``; the frame analyser per camera with ``pixel_motion``
or ``person_detector``. Each event goes to ``sink`` (and, with discovery on, to
Home Assistant too) through one :class:`Dispatcher`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiomqtt

from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.inputs.frigate import FrigateCamera, FrigateInput
from alexa_doorbell.inputs.homeassistant import OFFLINE, HaCamera, HomeAssistant, Topics
from alexa_doorbell.inputs.mqtt import MqttConnection, broker_from_settings
from alexa_doorbell.inputs.sink import Dispatcher, EventSink
from alexa_doorbell.inputs.topics import TopicInput, rules_for
from alexa_doorbell.lambda_config import ConfigError

if TYPE_CHECKING:  # imported when used: an agent without them does not load them
    from alexa_doorbell.inputs.frames import FrameAnalyzer
    from alexa_doorbell.inputs.gpio import GpioButton
    from alexa_doorbell.inputs.webhook import WebhookServer

log = logging.getLogger(__name__)


def uses_mqtt(cam: CameraConfig) -> list[str]:
    """The keys of ``cam`` that need a broker."""
    return [k for k in ("press_topic", "motion_topic", "frigate_camera") if getattr(cam, k)]


def has_motion_input(cam: CameraConfig) -> bool:
    return bool(cam.motion_topic or cam.frigate_camera or cam.pixel_motion)


def has_detection_input(cam: CameraConfig) -> bool:
    return bool(cam.frigate_camera or cam.person_detector)


class Inputs:
    def __init__(
        self,
        settings: Settings,
        sink: EventSink,
        *,
        environ: Mapping[str, str] = os.environ,
        pin_factory: Any = None,
        mqtt_backoff: tuple[float, float] = (0.5, 30.0),
        webhook_fail_delay: float | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.environ = environ
        self.pin_factory = pin_factory
        self.mqtt_backoff = mqtt_backoff
        self.webhook_fail_delay = webhook_fail_delay
        self.dispatcher = Dispatcher([sink])
        self.mqtt: MqttConnection | None = None
        self.frigate: FrigateInput | None = None
        self.topics: TopicInput | None = None
        self.homeassistant: HomeAssistant | None = None
        self.buttons: list[GpioButton] = []
        self.webhook: WebhookServer | None = None
        self.analyzers: dict[str, FrameAnalyzer] = {}
        self._check()

    def _check(self) -> None:
        if self.settings.mqtt_url:
            return
        for i, cam in enumerate(self.settings.cameras):
            keys = uses_mqtt(cam)
            if keys:
                raise ConfigError(
                    f"cameras[{i}].{keys[0]} ({cam.endpoint_id}) needs a broker: set mqtt_url "
                    "(ALEXA_DOORBELL_MQTT_URL), e.g. mqtt://127.0.0.1:1883"
                )

    # -- life -------------------------------------------------------------------------
    async def start(self) -> None:
        self.dispatcher.bind()
        try:
            if self.settings.mqtt_url:
                await self._start_mqtt()
            for cam in self.settings.cameras:
                if cam.gpio_pin is not None:
                    from alexa_doorbell.inputs.gpio import GpioButton

                    button = GpioButton(
                        cam.endpoint_id,
                        cam.gpio_pin,
                        self.dispatcher.emit_threadsafe,
                        bounce_ms=cam.gpio_bounce_ms,
                        active_low=cam.gpio_active_low,
                        pin_factory=self.pin_factory,
                    )
                    button.start()
                    self.buttons.append(button)
                if cam.pixel_motion or cam.person_detector:
                    from alexa_doorbell.inputs.frames import FrameAnalyzer

                    self.analyzers[cam.endpoint_id] = FrameAnalyzer(
                        cam.endpoint_id,
                        self.dispatcher.emit_threadsafe,
                        motion=cam.pixel_motion,
                        person=cam.person_detector,
                        fps=cam.pixel_motion_fps,
                        area=cam.pixel_motion_area,
                    )
            if self.settings.webhook.enabled:
                await self._start_webhook()
        except BaseException:
            await self.stop()
            raise
        for line in self.describe():
            log.info("inputs: %s", line)

    async def _start_mqtt(self) -> None:
        s = self.settings
        broker = broker_from_settings(s, self.environ)
        availability = Topics(s.mqtt_base_topic, s.ha_discovery_prefix).availability
        self.mqtt = conn = MqttConnection(
            broker,
            client_id=s.mqtt_client_id or f"alexa-doorbell-{secrets.token_hex(3)}",
            will=aiomqtt.Will(availability, OFFLINE, qos=1, retain=True),
            backoff=self.mqtt_backoff,
        )
        emit = self.dispatcher.emit
        frigate = [
            FrigateCamera(c.endpoint_id, c.frigate_camera, tuple(c.frigate_zones))
            for c in s.cameras
            if c.frigate_camera
        ]
        if frigate:
            self.frigate = FrigateInput(frigate, emit, prefix=s.frigate_topic_prefix)
            self.frigate.attach(conn)
        rules = [rule for cam in s.cameras for rule in rules_for(cam)]
        if rules:
            self.topics = TopicInput(rules, emit)
            self.topics.attach(conn)
        if s.ha_discovery:
            cams = [
                HaCamera(
                    c.endpoint_id,
                    c.friendly_name,
                    c.manufacturer,
                    c.description,
                    doorbell=c.doorbell,
                    motion=c.motion or has_motion_input(c),
                    detection=bool(c.detection) or has_detection_input(c),
                )
                for c in s.cameras
            ]
            self.homeassistant = HomeAssistant(
                cams,
                conn,
                base_topic=s.mqtt_base_topic,
                discovery_prefix=s.ha_discovery_prefix,
                motion_hold=s.motion_hold,
            )
            self.homeassistant.attach()
            self.dispatcher.sinks.append(self.homeassistant)
        await conn.start()

    async def _start_webhook(self) -> None:
        from alexa_doorbell.inputs.webhook import Webhook, WebhookServer, create_app, read_secret

        s = self.settings
        hook = Webhook(
            {c.endpoint_id: c.doorbell for c in s.cameras},
            read_secret(self.environ),
            self.dispatcher.emit,
            **({} if self.webhook_fail_delay is None else {"fail_delay": self.webhook_fail_delay}),
        )
        app = create_app(hook, bind_host=s.webhook.host, allowed_hosts=s.webhook.allowed_hosts)
        self.webhook = WebhookServer(app, s.webhook.host, s.webhook.port)
        await self.webhook.start()

    async def stop(self) -> None:
        """Stop every input, deliver what they already sent (a few seconds at most)."""
        for analyzer in self.analyzers.values():
            analyzer.close()
        for button in self.buttons:
            button.stop()
        self.buttons.clear()
        if self.webhook is not None:
            await self.webhook.stop()
        if self.frigate is not None:
            await self.frigate.close()
        await self.dispatcher.close()
        if self.homeassistant is not None:
            await self.homeassistant.close()
        if self.mqtt is not None:
            goodbye = (self.homeassistant.availability, OFFLINE) if self.homeassistant else None
            await self.mqtt.stop(goodbye)

    async def __aenter__(self) -> Inputs:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- for the agent ------------------------------------------------------------------
    def frame_sink(self, endpoint_id: str) -> Callable[..., bool] | None:
        """Where the agent offers this camera's decoded frames; None: nothing looks at them."""
        analyzer = self.analyzers.get(endpoint_id)
        return analyzer.offer if analyzer is not None else None

    def describe(self) -> list[str]:
        """One line per running input, for the agent's start-up log."""
        lines = []
        if self.mqtt is not None:
            parts = []
            if self.frigate:
                parts.append(f"Frigate ({self.settings.frigate_topic_prefix}/...)")
            if self.topics:
                parts.append(f"{len(self.topics.rules)} topic(s)")
            if self.homeassistant:
                parts.append(f"Home Assistant discovery ({self.settings.ha_discovery_prefix})")
            lines.append(f"MQTT {self.mqtt.broker.url}: " + (", ".join(parts) or "connected only"))
        lines += [f"GPIO {b.pin} rings {b.endpoint_id}" for b in self.buttons]
        if self.webhook is not None:
            lines.append(f"webhook {self.webhook.url}/hooks/<camera>/press|motion|detection")
        for eid, a in self.analyzers.items():
            what = [n for n, on in (("pixel motion", a.pixel_motion), ("person", a.detector)) if on]
            lines.append(f"built in at {eid}: {' and '.join(what)}")
        for cam in self.settings.cameras:
            if has_motion_input(cam) and not cam.motion:
                lines.append(f"{cam.endpoint_id}: motion = false, so Alexa is not told of motion")
        return lines


async def start_inputs(settings: Settings, sink: EventSink, **options: Any) -> Inputs:
    """Every configured input, started (see :class:`Inputs` for ``options``)."""
    inputs = Inputs(settings, sink, **options)
    await inputs.start()
    return inputs
