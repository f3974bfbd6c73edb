"""Local cloud benchmark: start time and the latency of what sits inside Alexa's deadline.

Prints one JSON object: cloud start (cold: new certificate and database; warm:
restart on the same data), boto3 DescribeSignalingChannel and
SendAlexaOfferToMaster round trips (a test master answering at once), the
WebSocket viewer→master→viewer offer/answer relay, and an event gateway POST.
All on loopback; the cloud runs in its own thread as in the tests.

    uv run python bench/cloud_bench.py [--iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.helpers and tests.conftest

from tests.conftest import local_settings  # noqa: E402
from tests.helpers import netguard  # noqa: E402
from tests.helpers.kvs_master import KvsTestMaster  # noqa: E402

from alexa_doorbell.alexa.events import doorbell_press  # noqa: E402
from alexa_doorbell.amazon.lwa import LwaClient  # noqa: E402
from alexa_doorbell.cloud.server import start_cloud_thread  # noqa: E402
from alexa_doorbell.kvs import api  # noqa: E402
from alexa_doorbell.kvs.messages import sdp_payload  # noqa: E402

OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=a 2 z\r\nt=0 0\r\n"


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 3),
        "max_ms": round(ms[-1], 3),
        "n": len(ms),
    }


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


async def relay(settings, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    async with (
        KvsTestMaster(settings),
        KvsTestMaster(settings, client_id="bench-viewer", answer=None) as viewer,
    ):
        for _ in range(n):
            t0 = time.perf_counter()
            await viewer.send("SDP_OFFER", sdp_payload("offer", OFFER))
            await viewer.next("SDP_ANSWER")
            out.append(time.perf_counter() - t0)
    return out


async def alexa_offers(settings, sig, arn: str, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    async with KvsTestMaster(settings):

        def one() -> None:
            api.send_alexa_offer_to_master(sig, arn, f"alexa.bench.{uuid.uuid4().hex[:8]}", OFFER)

        return await asyncio.to_thread(timed, one, n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200)
    n = parser.parse_args().iterations
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        handle = start_cloud_thread(local_settings(data))
        cold = time.perf_counter() - t0
        handle.stop()
        t0 = time.perf_counter()
        handle = start_cloud_thread(local_settings(data))
        warm = time.perf_counter() - t0
        try:
            s = handle.settings
            kv = api.kinesisvideo_client(s.boto_session(), s.endpoint_url())
            arn = api.describe_channel_arn(kv, "front-door")
            sig = api.signaling_client(
                s.boto_session(), api.get_channel_endpoints(kv, arn, "VIEWER").https
            )
            describe = timed(lambda: kv.describe_signaling_channel(ChannelARN=arn), n)
            offers = asyncio.run(alexa_offers(s, sig, arn, n))
            ws = asyncio.run(relay(s, n))
            linked = handle.cloud.lwa.link("amzn1.account.BENCH")
            token = LwaClient(s.lwa_url, *s.lwa_credentials()).exchange_code(linked["code"])
            event = doorbell_press("front-door", token.access_token)
            with httpx.Client() as client:
                headers = {"Authorization": f"Bearer {token.access_token}"}

                def post() -> None:
                    r = client.post(s.local.url + "/v3/events", json=event, headers=headers)
                    assert r.status_code == 202, r.text

                gateway = timed(post, n)
        finally:
            handle.stop()
    print(
        json.dumps(
            {
                "benchmark": "local_cloud",
                "start_cold_ms": round(cold * 1000, 1),
                "start_warm_ms": round(warm * 1000, 1),
                "describe_signaling_channel": stats(describe),
                "send_alexa_offer_to_master": stats(offers),
                "websocket_offer_answer_relay": stats(ws),
                "event_gateway_post": stats(gateway),
            }
        )
    )


if __name__ == "__main__":
    netguard.run_guarded(main)
