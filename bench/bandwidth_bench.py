"""Bandwidth benchmark: a live view through a 1 Mbit/s uplink, bitrate adaptation on and off.

The set-up of tests/reliability/test_bandwidth.py (tests/reliability/bandwidth_run.py):
the camera agent sends 1280x720 at 30 fps (the test pattern with a camera's sensor
noise, 1.9 Mbit/s at the encoder's full bitrate) to the simulated Echo Show through a
user-space bottleneck of ``--cap-kbps`` (1000) with a 100 ms drop-tail queue and 20 ms
each way. For each of ``--runs`` runs of ``--seconds`` (20), adaptation on and off:

- ``wire_kbps_per_second``: what left the bottleneck each second (headers included);
- ``encoder_target_kbps``: the camera's video bitrate over time, (seconds, kbit/s);
- ``fps``, ``freezes`` (gaps over 1 s between decoded frames), ``stutters`` (over
  0.3 s), ``longest_gap_s``, ``frozen_s``; ``bottleneck``: what its queue dropped.

``clean_10mbit_adapted``: the same with a 10 Mbit/s link, what adaptation costs where
the uplink is ample (the ramp up to the full bitrate). ``second_rung`` measures what a
second, lower encoder (for congested viewers only) would cost: libx264 milliseconds
per frame at 1280x720 and at 640x360, on this machine.

    uv run python bench/bandwidth_bench.py [--runs 1] [--seconds 20] [--cap-kbps 1000]

Prints one JSON object. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers.netguard and the shared run

from tests.helpers import netguard  # noqa: E402
from tests.reliability.bandwidth_run import NoisyPattern, view_through_cap  # noqa: E402

from alexa_doorbell.camera.encoder import H264Encoder, default_bitrate  # noqa: E402


def encode_cost(width: int, height: int, frames: int = 90) -> dict[str, Any]:
    """libx264 (veryfast, as the agent) on the noisy pattern: ms per frame, median."""
    source = NoisyPattern(width, height, 30)
    bitrate = default_bitrate(width, height, 30)
    enc = H264Encoder(width, height, 30, bitrate=bitrate)
    pictures = [source.picture(n) for n in range(frames)]
    for n, pic in enumerate(pictures):
        pic.pts, pic.time_base = n * 3000, fractions.Fraction(1, 90_000)
    times = []
    for n, pic in enumerate(pictures):
        t0 = time.perf_counter()
        enc.encode(pic, keyframe=n == 0)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "size": f"{width}x{height}",
        "bitrate_kbps": bitrate // 1000,
        "ms_per_frame": round(statistics.median(times[5:]), 1),
        "core_share_at_30fps": round(statistics.median(times[5:]) * 30 / 1000, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cap_kbps": args.cap_kbps,
        "queue_ms": 100,
        "delay_ms_each_way": 20,
        "seconds": args.seconds,
        "source": "1280x720 30 fps, test pattern with sensor noise",
    }
    for mode, adapt in (("adapted", True), ("unadapted", False)):
        runs = [
            await view_through_cap(
                adapt=adapt, seconds=args.seconds, bandwidth=args.cap_kbps * 1000, seed=15 + n
            )
            for n in range(args.runs)
        ]
        for r in runs:
            r.pop("reports", None)
            r.pop("gaps", None)
        out[mode] = {
            "fps_median": statistics.median(r["fps"] for r in runs),
            "freezes_total": sum(r["freezes"] for r in runs),
            "longest_gap_s": max(r["longest_gap_s"] or 0 for r in runs),
            "runs": runs,
        }
    # What adaptation costs where the uplink is ample: the ramp from a third of the
    # ceiling to it (the first viewer's path is not known yet).
    clean = await view_through_cap(adapt=True, seconds=args.seconds, bandwidth=10_000_000)
    ceiling = max(kbps for _, kbps in clean["encoder_target_kbps"] if kbps)
    reached = next((t for t, kbps in clean["encoder_target_kbps"] if kbps == ceiling), None)
    out["clean_10mbit_adapted"] = {
        "fps": clean["fps"],
        "freezes": clean["freezes"],
        "encoder_target_kbps": clean["encoder_target_kbps"],
        "highest_kbps": ceiling,
        "seconds_to_highest": reached,
        "wire_kbps_per_second": clean["wire_kbps_per_second"],
    }
    out["second_rung"] = [encode_cost(1280, 720), encode_cost(640, 360)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--cap-kbps", type=int, default=1000)
    print(json.dumps(asyncio.run(run(p.parse_args()))))


if __name__ == "__main__":
    netguard.run_guarded(main)
