"""Notifier benchmark: press -> 202 latency with a cached token, and LWA calls per 100 presses.

Prints one JSON object. Runs against a local cloud in this process (real HTTP
to the LWA and event gateway emulators, real SQLite store). ``press()`` is timed
end to end: store reads, the event, the gateway's 202 and the event record.

- ``press_ms``: sequential presses with a cached (fresh) access token.
- ``lwa_calls_per_100_presses``: 100 presses within one token lifetime, starting
  from an expired access token so the one refresh is counted; the presses run
  from 8 threads at once to exercise the refresh lock. Target: at most 1.

    uv run python bench/notify_bench.py [--presses 100] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.directives

from tests import directives as D  # noqa: E402
from tests.helpers import netguard  # noqa: E402

from alexa_doorbell.cloud.server import start_cloud_thread  # noqa: E402
from alexa_doorbell.commands.skill import build_skill  # noqa: E402
from alexa_doorbell.config import LocalCloudConfig, Settings  # noqa: E402
from alexa_doorbell.notifier.state_report import EventSender  # noqa: E402

USER = "amzn1.account.BENCH"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            cloud="local",
            data_dir=Path(tmp),
            local=LocalCloudConfig(port=0, tls_port=0),
            press_debounce=0.0,
        )
        cloud = start_cloud_thread(settings)
        try:
            who = cloud.cloud.lwa.link(USER)
            skill = build_skill(settings)
            skill.handle(D.accept_grant(who["code"], who["access_token"]))
            skill.store.close()
            notifier = EventSender.from_config(settings.lambda_config())
            notifier.debounce = 0.0

            for _ in range(5):  # warm the connection pool and the store
                notifier.press("front-door")
            latencies = []
            calls = cloud.cloud.lwa.token_requests
            for _ in range(args.presses):
                t = time.perf_counter()
                [out] = notifier.press("front-door")
                latencies.append((time.perf_counter() - t) * 1000)
                assert out.status == "202", out
            cached_calls = cloud.cloud.lwa.token_requests - calls

            # From an expired access token: one refresh for all the presses.
            tokens = notifier.store.get_tokens(USER)
            notifier.store.put_tokens(tokens.with_(expires_at=time.time() - 1))
            cloud.cloud.lwa.expire_access_tokens(USER)
            calls = cloud.cloud.lwa.token_requests
            statuses: list[str] = []
            per_thread = [args.presses // args.threads] * args.threads
            per_thread[0] += args.presses - sum(per_thread)
            barrier = threading.Barrier(args.threads)

            def ring(n: int) -> None:
                barrier.wait()
                for _ in range(n):
                    statuses.extend(o.status for o in notifier.press("front-door"))

            threads = [threading.Thread(target=ring, args=(n,)) for n in per_thread]
            t0 = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            concurrent_s = time.perf_counter() - t0
            refresh_calls = cloud.cloud.lwa.token_requests - calls
            accepted = statuses.count("202")
            notifier.close()
        finally:
            cloud.stop()

    print(
        json.dumps(
            {
                "benchmark": "notify",
                "presses": args.presses,
                "press_ms": {
                    "p50": round(statistics.median(latencies), 2),
                    "p95": round(percentile(latencies, 95), 2),
                    "p99": round(percentile(latencies, 99), 2),
                    "max": round(max(latencies), 2),
                    "mean": round(statistics.fmean(latencies), 2),
                },
                "lwa_calls_cached_token": cached_calls,
                "lwa_calls_per_100_presses": round(refresh_calls * 100 / args.presses, 2),
                "lwa_calls_target": 1,
                "concurrent_threads": args.threads,
                "concurrent_accepted": accepted,
                "concurrent_presses_per_s": round(args.presses / concurrent_s, 1),
                "ok": refresh_calls <= 1 and accepted == args.presses,
            }
        )
    )


if __name__ == "__main__":
    netguard.run_guarded(main)
