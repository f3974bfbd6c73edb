"""Skill benchmark: cold import of the Lambda handler, warm per-directive overhead.

Prints one JSON object. Cold import is timed in fresh interpreters (import of
``alexa_doorbell.skill.handler`` only, interpreter start excluded). Warm
overhead runs directives through a built skill with a real SQLite store while
the network is left out: the bearer-token look-up is already cached and the KVS
relay answers at once, as the remote side of a warm call would. Targets: cold
import <= 150 ms, warm p99 <= 2 ms.

    uv run python bench/skill_bench.py [--iterations 2000] [--cold-runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.directives / tests.sdp_samples

from tests.helpers import netguard  # noqa: E402

IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import alexa_doorbell.skill.handler; "
    "print((time.perf_counter() - t) * 1000)"
)


# The rest of a cold start: boto3, urllib3 and the KVS client, built from the environment.
BUILD_SNIPPET = (
    "import time; t = time.perf_counter(); from alexa_doorbell.skill import handler; "
    "t1 = time.perf_counter(); handler.get_skill(); "
    "print((t1 - t) * 1000, (time.perf_counter() - t1) * 1000)"
)


def cold_start_ms(runs: int) -> tuple[list[float], list[float]]:
    """(import times, build times) in fresh interpreters; the build needs no network."""
    imports, builds = [], []
    # The network guard stays out of these interpreters: what it imports (socket,
    # ipaddress) would flatter the import time. They import and build, nothing more.
    fresh = {k: v for k, v in os.environ.items() if k != netguard.LOG_ENV}
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **fresh,
            "ALEXA_DOORBELL_CLOUD": "local",
            "ALEXA_DOORBELL_STORE_URL": f"sqlite:///{tmp}/cold.sqlite3",
            "AWS_ACCESS_KEY_ID": "AKIALOCALDOORBELL000",
            "AWS_SECRET_ACCESS_KEY": "local-cloud-emulator-only",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        }
        for _ in range(runs):
            res = subprocess.run(
                [sys.executable, "-c", IMPORT_SNIPPET],
                capture_output=True,
                text=True,
                check=True,
                env=fresh,
            )
            imports.append(float(res.stdout.strip()))
            res = subprocess.run(
                [sys.executable, "-c", BUILD_SNIPPET],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            builds.append(float(res.stdout.split()[1]))
    return imports, builds


class _Profile:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id


class _CachedLwa:
    """Stands in for LWA once the token is in the skill's profile cache."""

    def profile(self, token: str) -> _Profile:
        return _Profile("amzn1.account.BENCH")


class _InstantKvs:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    def send_offer(self, device, sender, offer, timeout):
        return self.answer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warm_overhead(iterations: int) -> dict[str, dict[str, float]]:
    from tests import directives as D

    from alexa_doorbell.skill.app import Skill
    from alexa_doorbell.store.base import Device, Health, Tokens
    from alexa_doorbell.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.sqlite3")
        store.put_device(Device("front-door", "Front Door", "front-door", doorbell=True))
        store.put_tokens(Tokens("amzn1.account.BENCH", "Atza|a", "Atzr|r", time.time() + 3600))
        store.put_health(Health("front-door", "OK", time.time() + 3600))
        skill = Skill(store, _CachedLwa(), _InstantKvs("v=0\r\n"))
        token = "Atza|bench"
        kinds = {
            "Discover": lambda: D.discover(token),
            "ReportState": lambda: D.report_state(token),
            "InitiateSessionWithOffer": lambda: D.initiate_session(token),
            "SessionConnected": lambda: D.session_event("SessionConnected", token),
            "ErrorResponse": lambda: {"directive": {"header": {}}},
        }
        results: dict[str, dict[str, float]] = {}
        everything: list[float] = []
        for name, make in kinds.items():
            events = [make() for _ in range(iterations)]
            for e in events[:50]:
                reply = skill.handle(e)
            got = reply["event"]["header"]["name"]
            if (got == "ErrorResponse") != (name == "ErrorResponse"):
                raise SystemExit(f"{name}: unexpected reply {reply['event']['payload']}")
            times = []
            for e in events:
                t0 = time.perf_counter()
                skill.handle(e)
                times.append((time.perf_counter() - t0) * 1000)
            everything += times
            results[name] = {
                "p50_ms": round(statistics.median(times), 3),
                "p99_ms": round(percentile(times, 0.99), 3),
            }
        results["all"] = {
            "p50_ms": round(statistics.median(everything), 3),
            "p99_ms": round(percentile(everything, 0.99), 3),
        }
        store.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--cold-runs", type=int, default=7)
    args = ap.parse_args()
    import logging

    logging.getLogger("alexa_doorbell").setLevel(logging.WARNING)
    cold, builds = cold_start_ms(args.cold_runs)
    warm = warm_overhead(args.iterations)
    out = {
        "benchmark": "skill",
        "cold_import_ms": {
            "median": round(statistics.median(cold), 1),
            "max": round(max(cold), 1),
            "runs": args.cold_runs,
            "target": 150,
        },
        "cold_build_ms": {
            "median": round(statistics.median(builds), 1),
            "max": round(max(builds), 1),
        },
        "warm_overhead_ms": warm,
        "warm_target_p99_ms": 2.0,
        "iterations": args.iterations,
        "ok": statistics.median(cold) <= 150 and warm["all"]["p99_ms"] <= 2.0,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    netguard.run_guarded(main)
