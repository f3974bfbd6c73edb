"""Load on the cloud side: 50 channels, a master on each, 500 InitiateSessionWithOffer at once.

The local cloud runs as its own process (``alexa-doorbell cloud``); the skill
runs here, as the local cloud's skill does: one ``Skill`` shared by every
concurrent invocation. Each master answers at most ``SEATS`` offers and
refuses the rest as a camera at its viewer limit does; five cameras are
reported offline and two more are hung (their master never answers). Every
directive must get its own reply (matched by correlation token) within the
deadline: an answer, or a clean ENDPOINT_BUSY / ENDPOINT_UNREACHABLE, in
exactly the expected numbers.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.camera.sdp import refusal_answer
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig, LocalCloudConfig, Settings
from alexa_doorbell.kvs import api
from alexa_doorbell.store.base import Health
from tests import directives as D
from tests.helpers.kvs_master import ANSWER_SDP, KvsTestMaster
from tests.reliability.conftest import CloudProcess, free_port_pair

CHANNELS = 50
DIRECTIVES = 500
SEATS = 8  # offers a master answers; the rest are refused as ENDPOINT_BUSY
OFFLINE = 5  # cameras whose agent reported UNREACHABLE
SILENT = 2  # cameras reported OK whose master never answers (a hung agent)
DEADLINE = 5.0
CAMERAS = [
    CameraConfig(
        endpoint_id=f"cam-{i:02d}", friendly_name=f"Camera {i}", channel_name=f"chan-{i:02d}"
    )
    for i in range(CHANNELS)
]


def _seat_keeper() -> tuple[dict[str, int], object]:
    taken: dict[str, int] = collections.Counter()

    def make(channel: str):  # type: ignore[no-untyped-def]
        def answer(offer: str, sender: str) -> str:
            taken[channel] += 1
            if taken[channel] > SEATS:
                return refusal_answer(offer, "ENDPOINT_BUSY")
            return ANSWER_SDP

        return answer

    return taken, make


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_500_parallel_offers_on_50_channels(tmp_path, record_figures) -> None:  # type: ignore[no-untyped-def]
    port = free_port_pair()
    settings = Settings(
        cloud="local",
        data_dir=tmp_path / "data",
        local=LocalCloudConfig(port=port, tls_port=port + 1),
        cameras=CAMERAS,
        skill_deadline=DEADLINE,
        single_user=True,
    )
    cloud = CloudProcess(tmp_path / "data", port)
    await asyncio.to_thread(cloud.start)
    masters: list[KvsTestMaster] = []
    pool = ThreadPoolExecutor(max_workers=100)
    try:
        kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
        for cam in CAMERAS:
            await asyncio.to_thread(kv.create_signaling_channel, ChannelName=cam.channel_name)
        taken, make = _seat_keeper()
        for i, cam in enumerate(CAMERAS):
            hung = OFFLINE <= i < OFFLINE + SILENT
            answer = None if hung else make(cam.channel_name)
            master = KvsTestMaster(settings, cam.channel_name, answer=answer)
            await master.connect()
            masters.append(master)
        skill = build_skill(settings)
        from tests.skill.test_app import link

        who = await asyncio.to_thread(link, settings, "amzn1.account.LOAD")
        token = who["access_token"]
        reply = skill.handle(D.accept_grant(who["code"], token))
        assert reply["event"]["header"]["name"] == "AcceptGrant.Response", reply
        for i, cam in enumerate(CAMERAS):
            state = "UNREACHABLE" if i < OFFLINE else "OK"
            skill.store.put_health(Health(cam.endpoint_id, state))

        directives = [
            D.initiate_session(
                token,
                endpoint_id=CAMERAS[i % CHANNELS].endpoint_id,
                session_id=f"amzn1.echo-api.session.load-{i:04d}",
            )
            for i in range(DIRECTIVES)
        ]
        loop = asyncio.get_running_loop()
        start = asyncio.Event()

        async def invoke(directive):  # type: ignore[no-untyped-def]
            await start.wait()

            def run():  # type: ignore[no-untyped-def]
                t0 = time.monotonic()
                return skill.handle(directive), time.monotonic() - t0

            return await loop.run_in_executor(pool, run)

        tasks = [asyncio.create_task(invoke(d)) for d in directives]
        t0 = time.monotonic()
        start.set()
        results = await asyncio.gather(*tasks)
        wall = time.monotonic() - t0
    finally:
        for master in masters:
            await master.close()
        pool.shutdown(wait=False)
        cloud.kill()

    outcomes: collections.Counter[str] = collections.Counter()
    latencies = []
    for directive, (reply, elapsed) in zip(directives, results, strict=True):
        assert schema_errors(reply) == [], reply
        header = reply["event"]["header"]
        # Its own reply: none lost, none swapped.
        assert header["correlationToken"] == directive["directive"]["header"]["correlationToken"]
        assert (
            reply["event"]["endpoint"]["endpointId"]
            == (directive["directive"]["endpoint"]["endpointId"])
        )
        if header["name"] == "AnswerGeneratedForSession":
            outcomes["answered"] += 1
        else:
            outcomes[reply["event"]["payload"]["type"]] += 1
        latencies.append(elapsed)
    skill.store.close()
    lat = sorted(latencies)
    figures = {
        "channels": CHANNELS,
        "directives": DIRECTIVES,
        "outcomes": dict(outcomes),
        "wall_s": round(wall, 2),
        "latency_ms_median": round(statistics.median(lat) * 1000, 1),
        "latency_ms_p99": round(lat[int(len(lat) * 0.99)] * 1000, 1),
        "latency_ms_max": round(lat[-1] * 1000, 1),
        "deadline_s": DEADLINE,
    }
    record_figures("cloud_load", **figures)
    online = CHANNELS - OFFLINE - SILENT
    per_channel = DIRECTIVES // CHANNELS
    assert outcomes == {
        "answered": online * SEATS,
        "ENDPOINT_BUSY": online * (per_channel - SEATS),
        "ENDPOINT_UNREACHABLE": (OFFLINE + SILENT) * per_channel,
    }, figures
    # Alexa gives up after ~8 s and wants the answer within 6; the skill's own deadline
    # is 5 s and a reply may take only a little longer to assemble (500 threads on 2
    # cores: 5.26 s seen in a full run), well inside Alexa's 6 s.
    assert lat[-1] <= DEADLINE + 0.75, figures
    # Offline cameras were refused without waiting on KVS.
    assert sum(taken.values()) == online * per_channel
