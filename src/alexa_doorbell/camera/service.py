"""``alexa-doorbell camera``: every configured camera in one process.

    service = CameraService(settings, notifier=notifier, sessions=store)
    await service.start()                  # each camera: its channel, health, sessions
    await service.camera("front-door").press()
    await service.stop()

Each camera is a :class:`ServedCamera` around its own :class:`CameraAgent` (its KVS
MASTER connection, supervised source, encoder and sessions). A camera that cannot
start (no microphone, a refused channel) is retried on its own and never stops the
others; an idle camera opens no source and encodes nothing, so the process grows with
cameras watched (or with a built-in detector on), not configured. The inputs (MQTT,
GPIO, webhook, detectors) attach per camera: :meth:`ServedCamera.press`,
:meth:`ServedCamera.add_frame_tap`, and the ``on_start``/``on_stop`` hooks. Readiness
goes to systemd (``sd_notify``) once signaling is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import av

from alexa_doorbell.camera import runstate, sdnotify
from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.camera.health import store_connectivity
from alexa_doorbell.camera.press_socket import PressNotice, PressSocket
from alexa_doorbell.camera.sources import MediaSourceError, check_video_spec
from alexa_doorbell.camera.supervisor import Backoff, SourceStatus
from alexa_doorbell.config import CameraConfig, ConfigError, Settings
from alexa_doorbell.notifier.client import Notifier, SessionSource, local_notifier
from alexa_doorbell.notifier.state_report import Outcome
from alexa_doorbell.store.base import Store

__all__ = ["CameraService", "ServedCamera", "run_agent", "store_connectivity"]

log = logging.getLogger("alexa_doorbell.camera.agent")

Hook = Callable[["ServedCamera"], Awaitable[None] | None]
# Joins something to the service before it starts (the inputs); returns how to undo it.
Attach = Callable[["CameraService"], Awaitable[Callable[[], Awaitable[None]]]]
READY_WAIT = 20.0  # seconds: past this, READY=1 with the cameras connected so far
# After a press Alexa announces it and opens the view within seconds; a visitor may be
# looked at again for a while: what the view needs stays running this long.
PRESS_HOLD = 60.0


class ServedCamera:
    """One camera of the service: its agent, and what inputs attach to."""

    def __init__(self, service: CameraService, agent: CameraAgent) -> None:
        self.service = service
        self.agent = agent
        self.config: CameraConfig = agent.camera
        self.endpoint_id = agent.endpoint_id
        self.error: str | None = None  # why it is not running, while it is not
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.agent.started

    async def press(self, cause: str = "PHYSICAL_INTERACTION") -> list[Outcome]:
        """Ring this doorbell (DoorbellPress to Alexa, for every user it belongs to)."""
        return await self.service.press(self.endpoint_id, cause)

    def prewarm(self, seconds: float = PRESS_HOLD) -> None:
        """A press: start what the live view will need (the source, the encoder or the
        bridge) now, so the view Alexa opens after the announcement starts at once."""
        if self.agent.video is not None:
            self.agent.video.hold(seconds)

    async def picture(self, timeout: float = 8.0) -> av.VideoFrame | None:
        """The camera's current picture, decoded once (a press's snapshot); None when
        the camera gives none within ``timeout`` (down, or a cold source's first IDR)."""
        if self.agent.video is None:
            return None
        return await self.agent.video.picture(timeout)

    def add_frame_tap(
        self, tap: Callable[[av.VideoFrame], None], *, unwatched: bool = False
    ) -> Callable[[], None]:
        """Every decoded picture of the camera (never the slate) while it is read; returns
        how to remove the tap. By default that is while someone watches; ``unwatched``
        (a detector) also keeps the source open and decoded while nobody does, the
        fan-out encoding nothing for nobody."""
        video, source = self.agent.video, self.agent.source
        assert video is not None and source is not None, "camera not started"
        video.frame_taps.append(tap)
        done_reading = source.add_reader() if unwatched else None
        video.wake()

        def remove() -> None:
            with contextlib.suppress(ValueError):
                video.frame_taps.remove(tap)
            if done_reading is not None:
                done_reading()

        return remove

    def stats(self) -> dict[str, Any]:
        return {**self.agent.stats(), "running": self.running, "error": self.error}

    async def _run(self) -> None:
        """Start the agent, and again after a failure to start (30 s at most apart)."""
        backoff = Backoff(first=2.0, cap=30.0)
        while True:
            try:
                await self.agent.start()
            except Exception as exc:
                self.error = str(exc) or type(exc).__name__
                delay = backoff.next_delay()
                log.error(
                    "camera %s cannot start (%s): again in %.0f s",
                    self.endpoint_id,
                    self.error,
                    delay,
                )
                with contextlib.suppress(Exception):
                    await self.agent.stop()
                await asyncio.sleep(delay)
                continue
            self.error = None
            for hook in self.service.on_start:
                await _call(hook, self)
            return


class CameraService:
    def __init__(
        self,
        settings: Settings,
        endpoint_ids: Sequence[str] | None = None,
        source: str | None = None,
        *,
        notifier: Notifier | None = None,
        sessions: SessionSource | None = None,
        on_connectivity: Callable[[str, str], Any] | None = None,
        on_source: Callable[[str, SourceStatus], None] | None = None,
        agent_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        configs = _pick(settings, endpoint_ids)
        if source and len(configs) > 1:
            raise ConfigError(
                "--source overrides one camera's source: pick the camera with --endpoint-id"
            )
        self.notifier = notifier
        self.on_start: list[Hook] = []  # the inputs' seam: called once per camera started
        self.on_stop: list[Hook] = []
        # A press made elsewhere on this machine, for a camera served here (the press
        # socket's notices, the first and its answer): the inputs record it.
        self.on_press_elsewhere: list[Callable[[PressNotice], None]] = []
        self.cameras: dict[str, ServedCamera] = {}
        options = dict(agent_options or {})
        for cam in configs:
            agent = CameraAgent(
                settings,
                camera=cam,
                source=source,
                store=sessions,
                on_connectivity=on_connectivity,
                on_source=on_source,
                **options,
            )
            self.cameras[cam.endpoint_id] = ServedCamera(self, agent)
        self._presses: set[asyncio.Task[Any]] = set()

    def camera(self, endpoint_id: str) -> ServedCamera:
        return self.cameras[endpoint_id]

    def press_elsewhere(self, notice: PressNotice) -> None:
        """A press made elsewhere on this machine (the press socket): ready its view at
        the first notice, and hand both notices of a press with an id to the hooks."""
        cam = self.cameras.get(notice.endpoint_id)
        if cam is None:
            log.debug("press socket: %s is not served here", notice.endpoint_id)
            return
        if not notice.answer:
            log.info("doorbell %s pressed: readying its live view", notice.endpoint_id)
            cam.prewarm()
        if notice.press is None:
            return  # a bare endpoint id: an older sender, which says no more
        for hook in self.on_press_elsewhere:
            try:
                hook(notice)
            except Exception:
                log.exception("camera %s: press hook %r failed", notice.endpoint_id, hook)

    @property
    def agents(self) -> list[CameraAgent]:
        return [c.agent for c in self.cameras.values()]

    async def start(self) -> None:
        """Start every camera, each on its own (one that cannot start is retried alone)."""
        for cam in self.cameras.values():
            cam._task = asyncio.create_task(cam._run(), name=f"camera {cam.endpoint_id}")
        # Give each a moment to start, without letting a slow one hold up the process.
        await asyncio.wait([c._task for c in self.cameras.values() if c._task], timeout=10)

    async def stop(self) -> None:
        sdnotify.notify("STOPPING=1")
        for cam in self.cameras.values():
            if cam._task is not None:
                cam._task.cancel()
        for cam in self.cameras.values():
            if cam.running:
                for hook in self.on_stop:
                    await _call(hook, cam)
        await asyncio.gather(*(a.stop() for a in self.agents), return_exceptions=True)
        await asyncio.gather(*self._presses, return_exceptions=True)

    def connected(self) -> list[str]:
        return [
            a.endpoint_id
            for a in self.agents
            if a.signaling is not None and a.signaling.connected.is_set()
        ]

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """True once every camera is MASTER of its channel, False at ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self.connected()) < len(self.cameras):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def report_readiness(self) -> None:
        """READY=1 for systemd once signaling is up: every camera's, or after READY_WAIT
        at least one (a camera whose channel is refused must not hold the others back)."""
        started = time.monotonic()
        while True:
            up = self.connected()
            waited = time.monotonic() - started
            if len(up) == len(self.cameras) or (up and waited >= READY_WAIT):
                sdnotify.notify(f"READY=1\nSTATUS={self.status_line()}")
                log.info("ready: %s", self.status_line())
                return
            await asyncio.sleep(0.1)

    def status_line(self) -> str:
        up, n = len(self.connected()), len(self.cameras)
        down = [a.endpoint_id for a in self.agents if a.source and a.source.status.down]
        line = f"{up} of {n} camera(s) connected to signaling"
        return line + (f"; source down: {', '.join(down)}" if down else "")

    async def press(self, endpoint_id: str, cause: str = "PHYSICAL_INTERACTION") -> list[Outcome]:
        if endpoint_id in self.cameras:
            self.cameras[endpoint_id].prewarm()
        if self.notifier is None:
            log.error("doorbell pressed, but no notifier is configured: see the warning at start")
            return []
        try:
            outcomes = await asyncio.to_thread(self.notifier.press, endpoint_id, cause)
        except Exception as exc:
            log.error("doorbell press failed: %s", exc)
            return []
        for o in outcomes:
            log.info("doorbell press: %s %s %s", o.name, o.status, o.detail)
        return outcomes

    def ring_on_signal(self) -> None:
        """SIGUSR1 (deprecated: ``alexa-doorbell press ENDPOINT_ID`` names the doorbell):
        rings the process's doorbell only when it serves exactly one."""
        doorbells = [c for c in self.cameras.values() if c.config.doorbell]
        if len(doorbells) != 1:
            log.error(
                "SIGUSR1 ignored: this process serves %d doorbells (%s); ring one with "
                "`alexa-doorbell press ENDPOINT_ID`",
                len(doorbells),
                ", ".join(c.endpoint_id for c in doorbells) or "none",
            )
            return
        log.warning(
            "SIGUSR1 rings %s, but it is deprecated: use `alexa-doorbell press %s`",
            doorbells[0].endpoint_id,
            doorbells[0].endpoint_id,
        )
        task = asyncio.create_task(doorbells[0].press())
        self._presses.add(task)
        task.add_done_callback(self._presses.discard)


def _pick(settings: Settings, endpoint_ids: Sequence[str] | None) -> list[CameraConfig]:
    if not endpoint_ids:
        return list(settings.cameras)
    return [settings.camera(e) for e in dict.fromkeys(endpoint_ids)]  # KeyError: unknown


async def _call(hook: Hook, cam: ServedCamera) -> None:
    try:
        result = hook(cam)
        if result is not None:
            await result
    except Exception:
        log.exception("camera %s: hook %r failed", cam.endpoint_id, hook)


def run_agent(
    settings: Settings,
    endpoint_id: str | Sequence[str] | None = None,
    source: str | None = None,
    *,
    attach: Attach | None = None,
) -> None:
    """``alexa-doorbell camera``: run until Ctrl-C / SIGTERM (the command sets up logging).

    ``attach`` joins the inputs (``commands.inputs.attach_inputs``) before the cameras
    start; what it returns undoes it before they stop."""
    from alexa_doorbell.store import open_store

    ids = [endpoint_id] if isinstance(endpoint_id, str) else list(endpoint_id or [])
    configs = _pick(settings, ids)  # KeyError: an unknown camera, before anything starts
    if source and len(configs) > 1:
        raise ConfigError("--source overrides one camera's source: pick it with --endpoint-id")
    for cam in configs:  # a source no retry can fix: one line now, not a retry loop
        try:
            check_video_spec(source or cam.source)
        except MediaSourceError as exc:
            raise MediaSourceError(f"camera {cam.endpoint_id}: {exc}") from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # In AWS the camera has no table of its own: everything goes through the notifier
    # Lambda, and a SQLite file here would only hide a missing notifier_function.
    store = open_store(settings.store_location) if settings.is_local else None
    notifier = _camera_notifier(settings, store)
    remote_sessions = notifier is not None and not settings.is_local
    report = notifier.on_connectivity if notifier else store_connectivity(store)  # type: ignore[arg-type]
    states = {c.endpoint_id: runstate.AgentState(c.endpoint_id) for c in configs}
    service: CameraService | None = None

    def note(eid: str, **changes: Any) -> None:
        """What `doctor` and the dashboard on this machine read (camera/runstate.py)."""
        state = states[eid]
        for key, value in changes.items():
            setattr(state, key, value)
        agent = service.cameras[eid].agent if service and eid in service.cameras else None
        signaling = agent.signaling if agent is not None else None
        state.connected = bool(signaling and signaling.connected.is_set())
        state.signaling_error = signaling.last_error if signaling else None
        state.viewers = len(agent.sessions) if agent is not None else 0
        with contextlib.suppress(OSError):
            runstate.write_state(settings.data_dir, state)

    def on_connectivity(eid: str, connectivity: str) -> None:
        error: str | None = None
        try:
            report(eid, connectivity)
            error = notifier.last_error if notifier is not None else None
        except Exception as exc:
            error = str(exc)
            raise
        finally:
            note(
                eid,
                report_at=time.time(),
                report_connectivity=connectivity,
                report_error=error,
            )

    def on_source(eid: str, status: SourceStatus) -> None:
        note(eid, source_state=status.state, source_since=status.since, source_error=status.error)

    async def main() -> None:
        nonlocal service
        service = CameraService(
            settings,
            ids,
            source,
            notifier=notifier,
            # Where the skill's session records are: the shared store locally; in AWS
            # the table is read through the notifier Lambda (the camera has no DynamoDB).
            sessions=notifier if remote_sessions else store,
            on_connectivity=on_connectivity,
            on_source=on_source,
            agent_options={"disconnect_poll": 2.0 if remote_sessions else 1.0},
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(NotImplementedError, AttributeError):
            loop.add_signal_handler(signal.SIGUSR1, service.ring_on_signal)
        detach = await attach(service) if attach is not None else None
        press_socket = await PressSocket.open(
            runstate.press_socket_path(settings.data_dir, os.getpid()), service.press_elsewhere
        )
        await service.start()
        tasks = [asyncio.create_task(service.report_readiness())]
        if (interval := sdnotify.watchdog_interval()) is not None:
            tasks.append(asyncio.create_task(_watchdog(interval)))
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            if detach is not None:
                await detach()
            if press_socket is not None:
                press_socket.close()
            await service.stop()

    try:
        for state in states.values():
            with contextlib.suppress(OSError):
                runstate.write_state(settings.data_dir, state)
        asyncio.run(main())
    finally:
        for eid in states:
            runstate.remove_state(settings.data_dir, eid)
        if notifier is not None:
            notifier.close()
        if store is not None:
            store.close()


async def _watchdog(interval: float) -> None:
    """WATCHDOG=1 from the event loop itself: a loop that hangs stops the pings."""
    while True:
        sdnotify.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def _camera_notifier(settings: Settings, store: Store | None) -> Notifier | None:
    """The notifier the agent reports connectivity and presses to.

    Locally it runs in this process (store + events to the local gateway); in
    AWS it invokes the notifier Lambda, so tokens never leave the cloud. In AWS
    there is no fallback: without the notifier Alexa would never hear of this camera.
    """
    try:
        return local_notifier(settings, store)
    except Exception as exc:  # e.g. AWS without ALEXA_DOORBELL_NOTIFIER_FUNCTION
        if not settings.is_local:
            raise ConfigError(f'cloud = "aws": {exc}') from None
        log.warning("no notifier (%s): connectivity goes to the store only, presses fail", exc)
        return None
