"""Snapshot benchmark: how long a 720p JPEG takes to become a frameImageUri.

Prints one JSON object: JPEG encoding of a 720p frame (the test pattern with
sensor-like noise, so the file is the size of a real doorstep picture), the
snapshot store's upload (PutObject over HTTPS to the local cloud's S3, boto3's
aws-chunked body with its CRC32 trailer, then the presign), the same PutObject
over plain HTTP (the AWS_ENDPOINT_URL port), and a presigned GET as Alexa makes
it. All on loopback; the cloud runs in its own thread as in the tests.

    uv run python bench/snapshot_bench.py [--iterations 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.conftest

from tests.conftest import local_settings  # noqa: E402
from tests.helpers import netguard  # noqa: E402

from alexa_doorbell.amazon.snapshots import SnapshotStore, s3_client  # noqa: E402
from alexa_doorbell.camera.jpeg import encode_jpeg  # noqa: E402
from alexa_doorbell.camera.pattern import TestPattern  # noqa: E402
from alexa_doorbell.cloud.server import start_cloud_thread  # noqa: E402
from alexa_doorbell.cloud.tls import client_context  # noqa: E402


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[max(0, int(len(ms) * 0.95) - 1)], 3),
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


def doorstep_frame(width: int = 1280, height: int = 720) -> av.VideoFrame:
    """The test pattern with seeded noise: it compresses like a camera picture, not a chart."""
    buf = TestPattern(width, height).render(1, wallclock=1_700_000_000.0).copy()
    rng = np.random.default_rng(17)
    noise = rng.normal(0, 6, (height, width))
    buf[:height] = np.clip(buf[:height] + noise, 0, 255).astype(np.uint8)
    return av.VideoFrame.from_ndarray(buf, format="yuv420p")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    n = args.iterations

    frame = doorstep_frame()
    jpeg = encode_jpeg(frame)
    encode = timed(lambda: encode_jpeg(frame), n)

    with tempfile.TemporaryDirectory() as tmp:
        cloud = start_cloud_thread(local_settings(Path(tmp)))
        try:
            settings = cloud.settings
            store = SnapshotStore.from_settings(settings)
            store.put("front-door", jpeg)  # warm: TLS session, connection pool
            upload = timed(lambda: store.put("front-door", jpeg), n)

            http_s3 = s3_client(settings.boto_session(), settings.region, settings.local.url)
            http_s3.put_object(Bucket=store.bucket, Key="snapshots/warm.jpg", Body=jpeg)
            put_http = timed(
                lambda: http_s3.put_object(
                    Bucket=store.bucket,
                    Key="snapshots/bench.jpg",
                    Body=jpeg,
                    ContentType="image/jpeg",
                ),
                n,
            )

            snap = store.put("front-door", jpeg)
            with httpx.Client(verify=client_context(settings.ca_file)) as http:

                def fetch() -> None:
                    resp = http.get(snap.url)
                    if resp.status_code != 200 or resp.content != jpeg:
                        raise RuntimeError(f"presigned GET failed: {resp.status_code}")

                get = timed(fetch, n)
            presign = timed(lambda: store.presign(snap.key), n)
        finally:
            cloud.stop()

    print(
        json.dumps(
            {
                "benchmark": "snapshot",
                "jpeg": {"width": frame.width, "height": frame.height, "bytes": len(jpeg)},
                "encode_jpeg": stats(encode),
                "upload": stats(upload),
                "put_object_http": stats(put_http),
                "presign": stats(presign),
                "presigned_get_https": stats(get),
                "iterations": n,
            }
        )
    )


if __name__ == "__main__":
    netguard.run_guarded(main)
