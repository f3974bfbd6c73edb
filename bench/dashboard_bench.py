"""Dashboard benchmark: request round trips on one keep-alive connection.

Prints one JSON object: sequential ``GET /api/cameras`` and ``GET /`` to the
dashboard, and ``GET /_local/status`` to the local cloud, each on one
keep-alive httpx connection from a thread of its own (as a browser would be).
Every small response used to wait for the client's delayed ACK (~40 ms) until
the servers set TCP_NODELAY (``alexa_doorbell.httpserver``). All on loopback.

    uv run python bench/dashboard_bench.py [--iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.helpers and tests.conftest

from tests.conftest import local_settings  # noqa: E402
from tests.helpers import netguard  # noqa: E402

from alexa_doorbell.cloud.server import start_cloud_thread  # noqa: E402
from alexa_doorbell.store import open_store  # noqa: E402
from alexa_doorbell.web.app import DashboardServer  # noqa: E402


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 3),
        "max_ms": round(ms[-1], 3),
        "n": len(ms),
    }


def round_trips(url: str, n: int) -> list[float]:
    out = []
    with httpx.Client() as http:
        http.get(url).raise_for_status()  # connect outside the timing
        for _ in range(n):
            t0 = time.perf_counter()
            http.get(url).raise_for_status()
            out.append(time.perf_counter() - t0)
    return out


async def dashboard(settings, n: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    store = open_store(settings.store_location)
    try:
        async with DashboardServer(settings, store=store) as dash:
            return {
                "api_cameras": await asyncio.to_thread(round_trips, dash.url + "/api/cameras", n),
                "page": await asyncio.to_thread(round_trips, dash.url + "/", n),
            }
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200)
    n = parser.parse_args().iterations
    with tempfile.TemporaryDirectory() as tmp:
        handle = start_cloud_thread(local_settings(Path(tmp) / "data"))
        try:
            dash = asyncio.run(dashboard(handle.settings, n))
            cloud = round_trips(handle.settings.local.url + "/_local/status", n)
        finally:
            handle.stop()
    print(
        json.dumps(
            {
                "benchmark": "dashboard",
                "dashboard_get_api_cameras": stats(dash["api_cameras"]),
                "dashboard_get_page": stats(dash["page"]),
                "local_cloud_get_status": stats(cloud),
            }
        )
    )


if __name__ == "__main__":
    netguard.run_guarded(main)
