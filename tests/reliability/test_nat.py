"""A camera at home behind a NAT router reaches the Echo Show: proof on a routed topology.

Network namespaces (``nat_topology.py``): the camera agent in a home network behind a
masquerading router (nft), the simulated Echo Show on the media relay's address, the
local cloud with Debian's coturn on the internet side, 20 ms each way between home and
internet. Real processes: ``alexa-doorbell cloud``, the agent and the Echo with the skill
(``nat_peers.py``). Three cases, each with the time to answer and to the first frame:

- NAT, UDP allowed: connected directly (the camera's NAT'd address, srflx or prflx at
  the Echo), no relay, although the camera offered one.
- the home firewall drops all UDP and all TCP but 443: connected through TURN over TLS.
- the same with TURN off: the skill still answers within its deadline, and the camera
  logs one line saying why no media flowed and that ``use_turn = true`` fixes it.

Needs root, ``ip``, ``nft`` and ``turnserver``; skips with the reason otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reliability import nat_topology as nat

SKILL_DEADLINE_MS = 5000


def _show(echo: nat.Peer, trial: str, **ask: Any) -> dict[str, Any]:
    echo.send({"trial": trial, **ask})
    return echo.line(30)


def _camera_path(camera: nat.Peer) -> str:
    lines = [ln for ln in camera.log if "connected (" in ln]
    assert lines, "\n".join(camera.log[-30:])
    return lines[-1]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_through_nat_and_a_443_only_firewall(tmp_path: Path, record_figures: Any) -> None:
    reason = nat.missing()
    if reason:
        record_figures("nat", skipped=reason)
        pytest.skip(reason)
    topo = nat.Topology(tmp_path / "data")
    figures: dict[str, Any] = {}
    try:
        try:
            topo.open()
        except nat.TopologyError as exc:
            record_figures("nat", skipped=str(exc))
            pytest.skip(f"cannot build the topology here: {exc}")
        figures["delay_ms_each_way"] = topo.delay_ms if topo.delayed else 0
        topo.start_cloud()
        echo = topo.echo()

        # 1. NAT, UDP allowed: direct, although a relay was offered too.
        camera = topo.camera(use_turn=True, turn_transport="auto")
        assert camera.ready["relays"], camera.ready  # type: ignore[attr-defined]
        seen = _show(echo, "nat")
        assert seen["reply"] == "Alexa.RTCSessionController.AnswerGeneratedForSession", seen
        assert seen["frames"] >= 10, seen
        assert seen["camera_candidate"] in ("srflx", "prflx"), seen
        assert seen["camera_address"].startswith(nat.ROUTER_WAN + ":"), seen  # the NAT's
        assert "direct" in _camera_path(camera) and "relay" not in _camera_path(camera)
        figures["nat_udp"] = {k: seen[k] for k in ("answer_ms", "first_frame_ms", "fps")}
        figures["nat_udp"]["path"] = seen["camera_candidate"]

        # 2. The home firewall: no UDP at all, TCP only to 443 (and the signaling service).
        topo.firewall("tcp443")
        seen = _show(echo, "tcp443")
        assert seen["reply"] == "Alexa.RTCSessionController.AnswerGeneratedForSession", seen
        assert seen["frames"] >= 10, seen
        assert seen["camera_candidate"] == "relay", seen
        assert seen["camera_address"].startswith(nat.CLOUD_IP + ":"), seen  # coturn's relay
        assert "relay over TLS" in _camera_path(camera), _camera_path(camera)
        assert seen["answer_ms"] < SKILL_DEADLINE_MS
        assert topo.dropped() > 0  # the firewall did drop: STUN, the UDP relay, the checks
        figures["tcp443_turn_tls"] = {k: seen[k] for k in ("answer_ms", "first_frame_ms", "fps")}
        topo.stop_peer(camera)

        # 3. The same firewall, TURN off: answered in time, no media, one line with the fix.
        camera = topo.camera(use_turn=False, connect_timeout=6.0)
        seen = _show(echo, "tcp443-no-turn", wait=8.0)
        assert seen["reply"] == "Alexa.RTCSessionController.AnswerGeneratedForSession", seen
        assert seen["answer_ms"] < SKILL_DEADLINE_MS, seen
        assert seen["frames"] == 0, seen
        topo.stop_peer(camera)  # after its connect timeout: the line is in its log
        why = [ln for ln in camera.log if "no media reached viewer" in ln]
        assert len(why) == 1, "\n".join(camera.log[-30:])
        assert "use_turn = true" in why[0] and "did not answer" in why[0], why[0]
        figures["tcp443_no_turn"] = {"answer_ms": seen["answer_ms"], "frames": 0}
        figures["tcp443_no_turn"]["camera_says"] = why[0].split("no media reached viewer", 1)[1]
    finally:
        topo.close()
        if figures:
            record_figures("nat", **figures)
