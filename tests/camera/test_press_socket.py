"""The agent's press socket: a press in another process on the machine reaches it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

from alexa_doorbell.camera import runstate
from alexa_doorbell.camera.press_socket import MAX_NOTICE, PressNotice, PressSocket


async def _heard(heard: list[PressNotice], n: int) -> None:
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
    heard: list[PressNotice] = []
    path = runstate.press_socket_path(tmp_path, agent.pid)
    listener = None

    def send(data: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, os.fsencode(path))

    try:
        runstate.write_state(tmp_path, runstate.AgentState("front-door", pid=agent.pid))
        assert runstate.ask_prewarm(tmp_path, "front-door") is False  # runs, does not listen
        listener = await PressSocket.open(path, heard.append)
        assert listener is not None
        assert oct(path.stat().st_mode & 0o777) == "0o600"  # the data directory's user only
        # What older senders send: a bare endpoint id, no press to record.
        assert runstate.ask_prewarm(tmp_path, "front-door") is True
        await _heard(heard, 1)
        assert heard == [PressNotice("front-door")]
        assert not heard[0].answer
        # A press: its first notice before the notifier's call, its answer after.
        press = runstate.new_press_id()
        assert runstate.ask_prewarm(
            tmp_path, "front-door", press=press, source="press command", cause="APP_INTERACTION"
        )
        assert runstate.tell_press_outcome(tmp_path, "front-door", press, "202, debounced")
        await _heard(heard, 3)
        assert heard[1:] == [
            PressNotice("front-door", press, source="press command", cause="APP_INTERACTION"),
            PressNotice("front-door", press, status="202, debounced"),
        ]
        assert not heard[1].answer and heard[2].answer
        # Garbage is ignored, and the socket still listens.
        for junk in (
            b"\xff\xfe not utf-8",
            b"",
            b"{not json",
            b"[1, 2]",
            b'{"endpoint_id": "front-door"}',  # no press id
            b'{"endpoint_id": "front-door", "press": 7}',  # not a string
            b'{"endpoint_id": "front-door", "press": "p", "status": ["202"]}',
            b"front-door\n",  # not an endpoint id
            b'{"endpoint_id": "front-door", "press": "%s"}' % (b"x" * MAX_NOTICE),  # too long
        ):
            send(junk)
        send(PressNotice("garage", "p2", source="dashboard").encode())
        await _heard(heard, 4)
        await asyncio.sleep(0.1)  # nothing else trails in
        assert heard[3:] == [PressNotice("garage", "p2", source="dashboard")]
        # Too long to send: refused on this side too, without raising.
        long_id = "x" * MAX_NOTICE
        assert runstate.tell_press_outcome(tmp_path, "front-door", long_id, "202") is False
        listener.close()
        assert not path.exists()
        assert runstate.ask_prewarm(tmp_path, "front-door") is False
        assert runstate.tell_press_outcome(tmp_path, "front-door", press, "202") is False
    finally:
        if listener is not None:
            listener.close()
        agent.kill()
        agent.wait()


def test_a_notice_reads_back_as_it_was_sent() -> None:
    first = PressNotice("front/door:1", "abc", source="dashboard", cause="APP_INTERACTION")
    answer = PressNotice("front/door:1", "abc", status="no reply")
    for notice in (PressNotice("front-door"), first, answer):
        assert PressNotice.decode(notice.encode()) == notice
    assert PressNotice.decode(b"front-door") == PressNotice("front-door", None)


async def test_a_stale_socket_is_replaced_and_a_long_path_is_refused(tmp_path: Path) -> None:
    path = runstate.press_socket_path(tmp_path, os.getpid())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # left by an agent that was killed
    listener = await PressSocket.open(path, lambda _: None)
    assert listener is not None
    listener.close()
    deep = tmp_path / ("d" * 120) / "1.press"
    assert await PressSocket.open(deep, lambda _: None) is None
