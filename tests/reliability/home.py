"""A home for the camera agent, with real processes: RTSP cameras that can be killed and
started again, ``alexa-doorbell camera`` as a user runs it, Echo Shows whose offers go
through SendAlexaOfferToMaster as the skill sends them, and what Alexa heard."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.kvs import api
from alexa_doorbell.skill.rtc import sender_client_id
from tests.reliability.conftest import ROOT, child_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspCamera:
    """``python -m tests.helpers.rtsp_server`` on a fixed loopback port: kill() is a power cut."""

    def __init__(
        self, port: int | None = None, fps: int = 15, gop: int = 1, live: bool = False
    ) -> None:
        self.port = port or free_port()
        self.fps, self.gop, self.live = fps, gop, live
        self.proc: subprocess.Popen[str] | None = None
        self.url = f"rtsp://127.0.0.1:{self.port}/stream"

    def start(self) -> float:
        """Start it; returns the monotonic time it listens."""
        argv = [sys.executable, "-m", "tests.helpers.rtsp_server", "--port", str(self.port)]
        for _ in range(50):  # the port of a camera just killed may linger a moment
            self.proc = subprocess.Popen(
                [*argv, "--fps", str(self.fps), "--gop", str(self.gop), *["--live"] * self.live],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env(),
                cwd=ROOT,
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith("rtsp://"):
                return time.monotonic()
            self.proc.wait(5)
            time.sleep(0.1)
        raise RuntimeError("the RTSP camera did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> RtspCamera:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class CameraCommand:
    """``alexa-doorbell camera`` in its own process, configured through the environment."""

    def __init__(self, cloud: CloudThread, cameras: list[dict[str, Any]], **settings: Any) -> None:
        s = cloud.settings
        env = {
            **child_env(),
            "ALEXA_DOORBELL_DATA_DIR": str(s.data_dir),
            "ALEXA_DOORBELL_LOCAL__PORT": str(s.local.port),
            "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(s.local.tls_port),
            "ALEXA_DOORBELL_CAMERAS": json.dumps(cameras),
            "COLUMNS": "400",  # one log record, one line
        }
        for key, value in settings.items():
            env[f"ALEXA_DOORBELL_{key.upper()}"] = str(value)
        self.env = env  # the same configuration for another command (``press``)
        self.cli = str(Path(sys.executable).with_name("alexa-doorbell"))
        self.proc = subprocess.Popen(
            [self.cli, "camera"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self.output: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def log(self) -> str:
        return "".join(self.output[-80:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def health_reports(cloud: CloudThread, endpoint_id: str) -> list[str]:
    """The EndpointHealth values Alexa got in ChangeReports for a camera, in order."""
    values = []
    for m in cloud.cloud.gateway.messages("ChangeReport"):
        if m["event"]["endpoint"]["endpointId"] != endpoint_id:
            continue
        for prop in m["event"]["payload"]["change"]["properties"]:
            if prop["namespace"] == "Alexa.EndpointHealth":
                values.append(prop["value"]["value"])
    return values


async def until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(step)
    return check()


def alexa_offers(cloud: CloudThread, channel_name: str) -> Callable[[str, str], str]:
    """(sender, offer) -> answer through SendAlexaOfferToMaster, as the skill sends it."""
    s = cloud.settings
    kv = api.kinesisvideo_client(s.boto_session(), s.endpoint_url())
    arn = api.describe_channel_arn(kv, channel_name)
    sig = api.signaling_client(s.boto_session(), api.get_channel_endpoints(kv, arn, "VIEWER").https)
    return lambda sender, offer: api.send_alexa_offer_to_master(sig, arn, sender, offer)


async def watch(cloud: CloudThread, channel_name: str, session: str) -> EchoShow:
    """An Echo Show viewing the camera of ``channel_name`` (its answer applied)."""
    send = alexa_offers(cloud, channel_name)
    echo = EchoShow(talk=None)
    peer = sender_client_id(f"amzn1.ask.rtc.session.{session}")
    await echo.watch(lambda offer: asyncio.to_thread(send, peer, offer))
    return echo


def wait_ready(agent: CameraCommand, timeout: float = 30.0, count: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.proc.poll() is not None:
            raise RuntimeError(f"the agent exited {agent.proc.returncode}:\n{agent.log()}")
        if "".join(agent.output).count("signaling connected as MASTER") >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the agent did not connect:\n{agent.log()}")
