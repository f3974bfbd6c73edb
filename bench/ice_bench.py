"""ICE benchmark: what STUN and each TURN transport cost in answer time, on a routed topology.

The topology of tests/reliability/test_nat.py (network namespaces: the camera agent
behind a masquerading router, the simulated Echo Show with the skill on the media
relay's address, ``alexa-doorbell cloud`` with Debian's coturn, TURN over TLS on 443).
Each configuration runs ``--trials`` live views ("show me the front door": offer through
the skill, SendAlexaOfferToMaster, the camera's answer, first frame) and reports medians:

- ``answer_ms``: the skill's InitiateSessionWithOffer, offer in to answer out;
- ``camera_answer_ms``: the camera's part of it (gathering included), from its log;
- ``first_frame_ms``: answer to first decoded frame; ``path``: the camera's candidate
  the Echo connected to (srflx/prflx: through the NAT; relay: TURN), ``connected``.

Networks: ``nat`` (UDP allowed) and ``tcp443`` (the home firewall drops all UDP and all
TCP but 443). Configurations: STUN only, TURN over UDP, over TLS, and ``auto`` (both).
Where the kernel has netem, ``--delay-ms`` each way between home and internet (default
20); without it the figures are for no added delay and ``model_at_rtt_ms`` adds the
round trips each configuration waits for before it can answer (STUN 1, a UDP allocation
2, a TLS allocation 4: TCP, TLS 1.3, the 401 and the allocation).

    sudo uv run python bench/ice_bench.py [--trials 10] [--delay-ms 20]

Prints one JSON object. Needs root, ``ip``, ``nft`` and ``turnserver``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers.netguard and the topology

from tests.helpers import netguard  # noqa: E402
from tests.reliability import nat_topology as nat  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "stun_only": {"use_turn": False},
    "turn_udp": {"use_turn": True, "turn_transport": "udp"},
    "turn_tls": {"use_turn": True, "turn_transport": "tls"},
    "turn_auto": {"use_turn": True, "turn_transport": "auto"},
}
# Round trips to a server before the answer can go (no added delay here: the model).
ROUND_TRIPS = {
    ("nat", "stun_only"): 1,
    ("nat", "turn_udp"): 2,
    ("nat", "turn_tls"): 4,
    ("nat", "turn_auto"): 2,  # the UDP relay is there first; the TLS one is cancelled
    ("tcp443", "stun_only"): None,  # waits for ice_gather_timeout
    ("tcp443", "turn_udp"): None,
    ("tcp443", "turn_tls"): 4,
    ("tcp443", "turn_auto"): 4,  # plus the grace left to STUN and UDP: max(0.1 s, t/2)
}
ANSWERED = re.compile(r"answered \S+ in (\d+) ms")


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def run_config(
    topo: nat.Topology, echo: nat.Peer, network: str, name: str, trials: int, wait: float
) -> dict[str, Any]:
    topo.firewall(None if network == "nat" else "tcp443")
    camera = topo.camera(**CONFIGS[name], connect_timeout=wait + 2)
    rows = []
    try:
        for i in range(trials):
            echo.send({"trial": f"{network}-{name}-{i}", "frames": 1, "wait": wait})
            rows.append(echo.line(wait + 30))
    finally:
        topo.stop_peer(camera)
    camera_ms = [float(m.group(1)) for ln in camera.log if (m := ANSWERED.search(ln))]
    connected = [r for r in rows if r.get("frames")]
    paths = sorted({r.get("camera_candidate", "none") for r in connected})
    out: dict[str, Any] = {
        "answer_ms": median([r["answer_ms"] for r in rows if "answer_ms" in r]),
        "answer_ms_max": max((r["answer_ms"] for r in rows if "answer_ms" in r), default=None),
        "camera_answer_ms": median(camera_ms),
        "first_frame_ms": median([r["first_frame_ms"] for r in connected]),
        "connected": f"{len(connected)}/{len(rows)}",
        "path": paths,
    }
    if network == "nat" and name == "stun_only":
        out["note"] = "the relay-free baseline"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--failing-trials", type=int, default=3)
    parser.add_argument("--delay-ms", type=int, default=nat.DELAY_MS)
    parser.add_argument("--rtt-ms", type=int, default=40, help="RTT for the model")
    args = parser.parse_args()
    reason = nat.missing()
    if reason:
        print(json.dumps({"benchmark": "ice", "skipped": reason}))
        return
    started = time.monotonic()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ice-bench-") as tmp:
        topo = nat.Topology(Path(tmp) / "data", delay_ms=args.delay_ms)
        try:
            topo.open()
            topo.start_cloud()
            echo = topo.echo()
            for network in ("nat", "tcp443"):
                for name in CONFIGS:
                    fails = network == "tcp443" and name in ("stun_only", "turn_udp")
                    trials = args.failing_trials if fails else args.trials
                    row = run_config(topo, echo, network, name, trials, 4.0 if fails else 8.0)
                    k = ROUND_TRIPS[(network, name)]
                    if k is not None and row["answer_ms"] is not None and not topo.delayed:
                        row["model_at_rtt_ms"] = round(row["answer_ms"] + k * args.rtt_ms, 1)
                    row["trials"] = trials
                    results[f"{network}/{name}"] = row
        finally:
            delayed = topo.delayed
            topo.close()
    print(
        json.dumps(
            {
                "benchmark": "ice",
                "topology": "camera behind an nft NAT router; Echo, cloud and coturn outside",
                "delay_ms_each_way": args.delay_ms if delayed else 0,
                "model_rtt_ms": None if delayed else args.rtt_ms,
                "ice_gather_timeout_s": 2.0,
                "skill_deadline_s": 5.0,
                "results": results,
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    netguard.run_guarded(main)
