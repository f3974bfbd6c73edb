"""Is each camera's agent there: connected to its channel, and its heartbeats in the table."""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any

from alexa_doorbell.doctor.base import FAIL, OK, SKIP, Check, DoctorBase

if TYPE_CHECKING:
    from alexa_doorbell.config import CameraConfig


class CameraChecks(DoctorBase):
    """Checks of each camera agent, after its channel."""

    def camera_online(self, cam: CameraConfig) -> Check:
        from alexa_doorbell.camera.runstate import read_state

        name = f"camera {cam.endpoint_id}"
        start = (
            f"start the camera agent: `alexa-doorbell camera --endpoint-id {cam.endpoint_id}` "
            "(or its service); its log says why it cannot connect"
        )
        if not self._channels_ok.get(cam.endpoint_id):
            return Check(name, SKIP, "its channel is not usable (see above)")
        # An agent for this camera on this machine says how it is doing (camera/runstate.py).
        here = read_state(self.s.data_dir, cam.endpoint_id)
        if self.s.is_local:
            return self._camera_on_local_cloud(name, cam, here, start)
        if here is not None and here.report_error:
            return Check(
                name,
                FAIL,
                f"an agent runs here (pid {here.pid}) but its heartbeats do not reach the "
                f"table: {here.report_error}",
                self._notifier_fix(),
            )
        if here is not None and not here.connected:  # running, but not MASTER of its channel
            why = here.signaling_error or "not yet"
            return Check(name, FAIL, f"its agent (pid {here.pid}) is not connected: {why}", start)
        if not self.s.store_url:
            # No table named (the camera machine): only what its own agent says.
            if here is None:
                return Check(name, FAIL, "no camera agent runs on this machine", start)
            age = self.now() - (here.report_at or here.started_at)
            return Check(name, OK, f"agent pid {here.pid}, heartbeat delivered {age:.0f} s ago")
        # AWS cannot tell who is connected: use the agent's heartbeat, as the skill does.
        try:
            health = self._store_or_raise().get_health(cam.endpoint_id)
        except Exception as exc:
            return Check(name, FAIL, f"cannot read the store: {exc}", self._store_fix())
        both = (
            f"{start}. If it runs, its heartbeats do not reach the table: "
            + self._notifier_fix()
            + "; `alexa-doorbell doctor` on the camera machine tells which"
        )
        if health is None:
            if here is not None:  # running here, reports delivered, yet none in the table
                return Check(
                    name,
                    FAIL,
                    f"an agent runs here (pid {here.pid}) but no heartbeat is in the table",
                    self._notifier_fix(),
                )
            return Check(name, FAIL, "its agent never reported (no heartbeat in the store)", both)
        age = self.now() - health.updated_at
        if health.effective(self.s.health_max_age, now=self.now()) != "OK":
            return Check(
                name,
                FAIL,
                f"last report {health.connectivity}, {age:.0f} s ago: Alexa sees it unreachable",
                start if here is None else self._notifier_fix(),
            )
        return Check(name, OK, f"agent heartbeat {age:.0f} s ago")

    def _camera_on_local_cloud(self, name: str, cam: CameraConfig, here: Any, start: str) -> Check:
        from alexa_doorbell.cloud.admin import admin_headers

        url = f"{self.s.local.url}/_local/status"
        try:
            req = urllib.request.Request(url, headers=admin_headers())
            with urllib.request.urlopen(req, timeout=5) as r:
                status = json.load(r)
        except (OSError, ValueError) as exc:
            return Check(name, FAIL, f"cannot ask the local cloud: {exc}", self._cloud_fix())
        for ch in status.get("channels", []):
            if ch.get("ChannelName") == cam.channel_name:
                if ch.get("master"):
                    return Check(name, OK, "a master is connected to its channel")
                if here is not None:
                    why = here.signaling_error or "still connecting"
                    return Check(
                        name,
                        FAIL,
                        f"its agent runs (pid {here.pid}) but is not connected: {why}",
                        "check ALEXA_DOORBELL_LOCAL__HOST/PORT on both sides and the agent's log",
                    )
                return Check(name, FAIL, "no master is connected to its channel", start)
        return Check(name, FAIL, "the local cloud does not list its channel", start)
