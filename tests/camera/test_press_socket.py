"""The agent's press socket: a press in another process on the machine reaches it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

from alexa_doorbell.camera import runstate
from alexa_doorbell.camera.press_socket import PressSocket


async def _heard(heard: list[str], n: int) -> None:
    for _ in range(100):
        if len(heard) >= n:
            return
        await asyncio.sleep(0.01)


async def test_ask_prewarm_reaches_the_agent_serving_the_camera(tmp_path: Path) -> None:
    assert runstate.ask_prewarm(tmp_path, "front-door") is False  # no agent runs
    # A process that runstate takes for an agent (its command line names alexa-doorbell);
    # this test listens on its behalf.
    agent = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "alexa-doorbell camera"]
    )
    cmdline = Path(f"/proc/{agent.pid}/cmdline")
    for _ in range(200):  # until it has exec'd (its command line is empty before)
        if b"alexa" in cmdline.read_bytes():
            break
        await asyncio.sleep(0.01)
    heard: list[str] = []
    path = runstate.press_socket_path(tmp_path, agent.pid)
    listener = None
    try:
        runstate.write_state(tmp_path, runstate.AgentState("front-door", pid=agent.pid))
        assert runstate.ask_prewarm(tmp_path, "front-door") is False  # runs, does not listen
        listener = await PressSocket.open(path, heard.append)
        assert listener is not None
        assert oct(path.stat().st_mode & 0o777) == "0o600"  # the data directory's user only
        assert runstate.ask_prewarm(tmp_path, "front-door") is True
        await _heard(heard, 1)
        assert heard == ["front-door"]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"\xff\xfe not utf-8", os.fsencode(path))  # ignored, still listening
        assert runstate.ask_prewarm(tmp_path, "front-door") is True
        await _heard(heard, 2)
        assert heard == ["front-door", "front-door"]
        listener.close()
        assert not path.exists()
        assert runstate.ask_prewarm(tmp_path, "front-door") is False
    finally:
        if listener is not None:
            listener.close()
        agent.kill()
        agent.wait()


async def test_a_stale_socket_is_replaced_and_a_long_path_is_refused(tmp_path: Path) -> None:
    path = runstate.press_socket_path(tmp_path, os.getpid())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # left by an agent that was killed
    listener = await PressSocket.open(path, lambda _: None)
    assert listener is not None
    listener.close()
    deep = tmp_path / ("d" * 120) / "1.press"
    assert await PressSocket.open(deep, lambda _: None) is None
