"""What a running ``alexa-doorbell camera`` says about itself: one small JSON file per camera.

``data_dir/agents/<endpoint id>.json`` holds the agent's pid, whether it is connected to
its signaling channel as MASTER, how its last heartbeat went (delivered, or the
error that stopped it), its viewers and its source's state (the dashboard shows it).
``doctor`` on the same machine reads it to tell "no agent runs
here" from "an agent runs, but its heartbeats do not reach the table" (a wrong
``notifier_function``, a missing ``lambda:InvokeFunction``), which the store alone cannot.
``data_dir/agents/<pid>.press`` is the agent's socket for presses made by other
processes on the machine (:func:`ask_prewarm`, :func:`tell_press_outcome`): it readies
the live view at once and records the press, with its picture, in the door timeline.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

from alexa_doorbell.camera.press_socket import MAX_NOTICE, MAX_SOCKET_PATH, PressNotice


@dataclass
class AgentState:
    endpoint_id: str
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    connected: bool = False  # MASTER of its signaling channel
    signaling_error: str | None = None
    report_at: float | None = None  # the last heartbeat or connectivity report
    report_connectivity: str | None = None
    report_error: str | None = None  # None: delivered
    viewers: int = 0
    # The source supervisor's view (camera/supervisor.py): idle (closed, nobody watches;
    # it answered its last check), starting, live or down, since when, and why
    source_state: str | None = None
    source_since: float | None = None
    source_error: str | None = None


def state_path(data_dir: Path, endpoint_id: str) -> Path:
    # endpoint ids may hold "/", ":", "?"...: quote them into one file name
    return Path(data_dir) / "agents" / f"{quote(endpoint_id, safe='')}.json"


def write_state(data_dir: Path, state: AgentState) -> None:
    """Replace the file atomically (a reader never sees half of it)."""
    path = state_path(data_dir, state.endpoint_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state)), "utf-8")
    os.replace(tmp, path)


def read_state(data_dir: Path, endpoint_id: str) -> AgentState | None:
    """The state of a live agent for this camera on this machine; None when none runs."""
    path = state_path(data_dir, endpoint_id)
    try:
        data = json.loads(path.read_text("utf-8"))
        known = AgentState.__dataclass_fields__
        state = AgentState(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        return None
    return state if _alive(state.pid) else None


def remove_state(data_dir: Path, endpoint_id: str) -> None:
    with contextlib.suppress(OSError):
        state_path(data_dir, endpoint_id).unlink()


def press_socket_path(data_dir: Path, pid: int) -> Path:
    """Where the agent process ``pid`` hears of presses made elsewhere on this machine."""
    return Path(data_dir) / "agents" / f"{pid}.press"


def new_press_id() -> str:
    return uuid.uuid4().hex


def ask_prewarm(
    data_dir: Path,
    endpoint_id: str,
    *,
    press: str | None = None,
    source: str = "",
    cause: str = "",
) -> bool:
    """A press on this machine outside the agent (``alexa-doorbell press``, the
    dashboard), before the notifier's call: tell the agent serving ``endpoint_id`` to
    ready its live view now and, with a ``press`` id (:func:`new_press_id`), to take
    its picture for the timeline, where :func:`tell_press_outcome` records it. False
    when no agent listens (none runs, or an older one); never raises: the press goes on."""
    return _tell(data_dir, PressNotice(endpoint_id, press, source=source, cause=cause))


def tell_press_outcome(data_dir: Path, endpoint_id: str, press: str, status: str) -> bool:
    """The notifier's answer to the press :func:`ask_prewarm` announced (its summary,
    ``notifier.outcome.summary``; "error" when the call raised)."""
    return _tell(data_dir, PressNotice(endpoint_id, press, status=status))


def _tell(data_dir: Path, notice: PressNotice) -> bool:
    try:
        state = read_state(data_dir, notice.endpoint_id)
        if state is None:
            return False
        path = os.fsencode(press_socket_path(data_dir, state.pid))
        data = notice.encode()
        if len(path) > MAX_SOCKET_PATH or len(data) > MAX_NOTICE:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, path)
    except Exception:  # a press never fails for want of an agent to tell
        return False
    return True


def _alive(pid: int) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    # A pid reused by another program after a crash is not our agent (Linux can say).
    cmdline = Path(f"/proc/{pid}/cmdline")
    with contextlib.suppress(OSError):
        return b"alexa" in cmdline.read_bytes()
    return True
