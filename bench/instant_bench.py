"""Instant view benchmark: answer -> first decoded frame, cold and warm, per kind of source.

The camera agent runs in this process (its fan-out's counters are read: the bridge's
CPU, the GOP cache) and viewers are simulated Echo Shows here that decode every
frame; ``first_frame_ms`` is from the answer applied to the first decoded picture.
The RTSP camera is the loopback test camera (``tests/helpers/rtsp_server.py``,
H.264 constrained baseline 640x360@15, SPS/PPS only in the SDP) in its own process,
made live: a new RTSP session gets the stream where the camera is in its GOP (as
from a camera that encodes all the time), not from the clip's first IDR.

Rows, ``--joins`` joins each (default 10), one viewer at a time, each at a random
moment of the GOP (seeded, ``--seed``):

- ``testsrc``: the test pattern, encoded by the agent (no source to keep warm:
  "warm" is a join while the source is still open, within its linger);
- ``transcoded``: the RTSP camera (GOP 2 s) decoded and re-encoded
  (``passthrough = "never"``);
- ``passthrough gop N s``: the RTSP camera's own stream, GOP ``--gops`` (1, 2, 4 s);
  a viewer joining between its IDRs starts on the bridge's IDR (camera/bridge.py).

Each cold (``warm = false``, linger 0: the source is closed before each join, so
the join pays the RTSP open and the wait for the camera's first IDR) and warm
(``warm = true``: connected and demuxed while nobody watches). Also: process CPU
of a warm idle source (nobody watching, ``--idle-seconds``) against the same agent
with ``warm = false``; the bridge's CPU and frames per bridged join; the cold
source's open time. One more row, cold on a camera that starts each RTSP session
with an IDR, shows what of a cold join is the open alone. ``first_picture_ms`` is to
the first frame with the camera's burned-in stamp, where the first frame was the
"reconnecting" slate (``joins_with_slate``). ``bridge_cpu_isolated``: the bridge's
calls on one GOP with nothing else running, its CPU counted over all of this
process's threads (libx264 encodes in its own). Prints one JSON object.

    uv run python bench/instant_bench.py [--joins 10 --gops 1,2,4 --seed 18]
    uv run python bench/instant_bench.py --quick   # 3 joins, GOP 4 s only (a minute)
    uv run python bench/instant_bench.py --only "transcoded" --transcoded-gop 4

Target (issue 18): <= 300 ms median and <= 500 ms max in every row, against
263-350 ms browser to browser on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.helpers
os.environ["ALEXA_DOORBELL_CONFIG"] = os.devnull  # no config file of this machine's

from tests.helpers import netguard  # noqa: E402

from alexa_doorbell.camera.agent import CameraAgent  # noqa: E402
from alexa_doorbell.camera.bridge import GopCache, KeyframeBridge  # noqa: E402
from alexa_doorbell.camera.sources import VIDEO_TIME_BASE  # noqa: E402
from alexa_doorbell.cloud.echo import EchoShow  # noqa: E402
from alexa_doorbell.config import CameraConfig, Settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from live_camera import FPS, HEIGHT, WIDTH, CameraProcess, camera_clip  # noqa: E402

TARGET_MEDIAN_MS, TARGET_MAX_MS = 300, 500
TRANSCODED_GOP = 2  # the transcoded row's camera (--transcoded-gop) and the idle one's
BROWSER_REFERENCE_MS = [263, 350]


# -- the agent and its viewers ---------------------------------------------------------
def make_agent(data: Path, source: str, *, warm: bool, passthrough: str = "auto") -> CameraAgent:
    cam = CameraConfig(
        source=source,
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        audio="silence",
        doorbell=True,
        warm=warm,
        passthrough=passthrough,  # type: ignore[arg-type]
    )
    settings = Settings(cloud="local", data_dir=data, cameras=[cam], stun_urls=[], use_turn=False)
    return CameraAgent(settings, signaling=False)  # the product's preset (veryfast)


async def until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class BridgeWatch:
    """The bridges a join used (one is made per join and dropped at the camera's IDR)."""

    def __init__(self, agent: CameraAgent) -> None:
        self.video = agent.video
        assert self.video is not None
        self.seen: dict[int, tuple[KeyframeBridge, float, int, int]] = {}
        self._look()  # one already there counts from now
        self._task = asyncio.create_task(self._poll())

    def _look(self) -> None:
        b = self.video.bridge if self.video is not None else None
        if b is not None and id(b) not in self.seen:
            self.seen[id(b)] = (b, b.cpu_seconds, b.frames_decoded, b.frames_encoded)

    async def _poll(self) -> None:
        while True:
            self._look()
            await asyncio.sleep(0.005)

    def stop(self) -> tuple[float, int, int]:
        self._task.cancel()
        self._look()
        cpu = sum(b.cpu_seconds - c for b, c, _, _ in self.seen.values())
        dec = sum(b.frames_decoded - d for b, _, d, _ in self.seen.values())
        enc = sum(b.frames_encoded - e for b, _, _, e in self.seen.values())
        return cpu, dec, enc


async def first_picture(echo: EchoShow, timeout: float) -> float | None:
    """Waits for the first frame, then for the first with the camera's burned-in stamp
    (not the slate); ms from one to the other (None: no stamp read in time)."""
    r = echo.report_
    deadline = time.monotonic() + timeout
    if not await until(lambda: r.frames > 0, timeout):
        return None
    framed = time.monotonic()
    if not await until(lambda: r.stamps_read > 0, max(0.0, deadline - framed)):
        return None
    return (time.monotonic() - framed) * 1000


async def join(agent: CameraAgent, peer: str, *, cold: bool, gop_s: float) -> dict[str, Any]:
    video, source = agent.video, agent.source
    assert video is not None and source is not None
    joins0, slate0 = video.bridge_joins, source.slate_frames
    watch = BridgeWatch(agent)
    echo = EchoShow(talk=None)
    t0 = time.monotonic()
    try:
        await echo.watch(lambda offer: agent.handle_offer(peer, offer))
        picture_after_frame = await first_picture(echo, gop_s + 10)
        got = echo.report_.frames > 0
        report = echo.report()
        bridged = video.bridge_joins > joins0
        session = agent.sessions.get(peer)
        if bridged and session is not None:  # its cost: until the camera's own IDR
            await until(lambda: not session.video.bridged, gop_s + 3)
        bridged_s = time.monotonic() - t0
    finally:
        cpu, dec, enc = watch.stop()
        await echo.close()
        await agent.close_session(peer, "bench: next join")
    out: dict[str, Any] = {
        "first_frame_ms": round(report.first_frame_ms, 1)
        if got and report.first_frame_ms is not None
        else None,
        "answer_ms": round(report.answer_ms or 0, 1),
        "bridged": bridged,
        "slate_frames": source.slate_frames - slate0,
    }
    if out["first_frame_ms"] is not None and picture_after_frame is not None:
        out["first_picture_ms"] = round(out["first_frame_ms"] + picture_after_frame, 1)
    if bridged:
        out |= {
            "bridge_cpu_ms": round(cpu * 1000, 1),
            "bridge_frames_decoded": dec,
            "bridge_frames_encoded": enc,
            "bridged_s": round(bridged_s, 2),
        }
    if cold:
        out["open_ms"] = round(source.open_ms, 1) if source.open_ms is not None else None
        # The next join must open the source again (linger 0): wait for the close.
        if not await until(lambda: source.current is None, 10):
            raise RuntimeError("the cold source was not closed after its viewer left")
    return out


def summarize(name: str, joins: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    firsts = [j["first_frame_ms"] for j in joins]
    ok = [f for f in firsts if f is not None]
    med = round(statistics.median(ok), 1) if ok else None
    mx = round(max(ok), 1) if ok else None
    row: dict[str, Any] = {
        "row": name,
        **extra,
        "first_frame_ms_median": med,
        "first_frame_ms_max": mx,
        "no_picture": len(firsts) - len(ok),
        "meets_target": bool(
            ok
            and len(ok) == len(firsts)
            and med is not None
            and mx is not None
            and med <= TARGET_MEDIAN_MS
            and mx <= TARGET_MAX_MS
        ),
        "first_frame_ms": firsts,
        "answer_ms_median": round(statistics.median(j["answer_ms"] for j in joins), 1),
    }
    pictures = [j.get("first_picture_ms") for j in joins]
    if all(p is not None for p in pictures):  # the first frame with the camera's stamp
        row["first_picture_ms_median"] = round(statistics.median(pictures), 1)  # type: ignore[type-var]
        row["first_picture_ms_max"] = max(pictures)  # type: ignore[type-var]
    row["joins_with_slate"] = sum(1 for j in joins if j["slate_frames"])
    opens = [j["open_ms"] for j in joins if j.get("open_ms") is not None]
    if opens:
        row["open_ms"] = opens
        row["open_ms_median"] = round(statistics.median(opens), 1)
    bridged = [j for j in joins if j["bridged"]]
    row["bridged_joins"] = len(bridged)
    if bridged:
        for key in ("bridge_cpu_ms", "bridge_frames_decoded", "bridge_frames_encoded"):
            vals = [j[key] for j in bridged]
            row[f"{key}_median"] = round(statistics.median(vals), 1)
            row[f"{key}_max"] = max(vals)
        row["bridged_s_median"] = round(statistics.median(j["bridged_s"] for j in bridged), 2)
        row["bridge_frames_encoded"] = [j["bridge_frames_encoded"] for j in bridged]
    return row


ONLY: list[str] = []  # --only: rows whose names contain one of these


async def run_row(
    data: Path,
    name: str,
    source: str,
    *,
    cold: bool,
    gop_s: float,
    joins: int,
    rng: random.Random,
    passthrough: str = "auto",
    **extra: Any,
) -> dict[str, Any]:
    if ONLY and not any(o in name for o in ONLY):
        return {"row": name, "skipped": True, "meets_target": False}
    agent = make_agent(data, source, warm=not cold, passthrough=passthrough)
    await agent.start()
    assert agent.source is not None and agent.video is not None
    if cold:
        agent.source.linger = 0.0
    results = []
    try:
        if not cold and agent.camera.keep_warm:  # warm: connected, a GOP cached or skimmed
            await until(lambda: agent.source is not None and agent.source.live, 15)
            await asyncio.sleep(gop_s + 0.5)
        elif not cold:  # the test pattern is never warm: open, within its linger, from here
            await join(agent, f"{name}-open", cold=False, gop_s=gop_s)
        for i in range(joins):
            await asyncio.sleep(rng.uniform(0, gop_s))  # a random moment of the GOP
            results.append(await join(agent, f"{name}-{i}", cold=cold, gop_s=gop_s))
    finally:
        await agent.stop()
    row = summarize(name, results, mode="cold" if cold else "warm", gop_s=gop_s, **extra)
    print(
        f"{name}: median {row['first_frame_ms_median']} ms, max {row['first_frame_ms_max']} ms",
        file=sys.stderr,
    )
    return row


async def idle_cpu(data: Path, source: str, *, warm: bool, seconds: float, **kw: Any) -> float:
    """This process's CPU (% of a core) with the agent started and nobody watching."""
    agent = make_agent(data, source, warm=warm, **kw)
    await agent.start()
    try:
        if warm:
            await until(lambda: agent.source is not None and agent.source.live, 15)
        await asyncio.sleep(2.0)
        me = psutil.Process()
        c0, w0 = me.cpu_times(), time.monotonic()
        await asyncio.sleep(seconds)
        c1, w1 = me.cpu_times(), time.monotonic()
    finally:
        await agent.stop()
    busy = (c1.user - c0.user) + (c1.system - c0.system)
    return round(busy / (w1 - w0) * 100, 2)


def bridge_cost(gop_s: int, joins: int, rng: random.Random) -> dict[str, Any]:
    """A bridged join's CPU, the agent's calls (``KeyframeBridge.step``) on the camera's
    GOP run here with nothing else going on: joined at a random frame, the GOP so far
    decoded and an IDR encoded, then every frame up to the next IDR decoded and
    encoded. Process CPU counts libx264's worker threads; ``cpu_seconds`` (the
    bridge's own count, the calling thread's time) does not."""
    clip = camera_clip(gop_s)
    packets = []
    for data, pts, key in clip.units[: FPS * gop_s]:  # one GOP, the IDR first
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = key
        packets.append(packet)
    process_ms, counted_ms, decoded, encoded = [], [], [], []
    for _ in range(joins):
        at = rng.randrange(1, len(packets))  # between two IDRs: a bridged join
        gop, bridge = GopCache(), KeyframeBridge(WIDTH, HEIGHT, FPS, bitrate=800_000)
        c0 = time.process_time()  # every thread of this process, to the microsecond
        for i, packet in enumerate(packets):
            gop.add(packet)
            if i >= at:
                bridge.step(gop, encode=True, keyframe=i == at)
        process_ms.append((time.process_time() - c0) * 1000)
        counted_ms.append(bridge.cpu_seconds * 1000)
        decoded.append(bridge.frames_decoded)
        encoded.append(bridge.frames_encoded)
    return {
        "process_cpu_ms_median": round(statistics.median(process_ms), 1),
        "process_cpu_ms_max": round(max(process_ms), 1),
        "bridge_cpu_seconds_ms_median": round(statistics.median(counted_ms), 1),
        "frames_decoded_median": statistics.median(decoded),
        "frames_encoded_median": statistics.median(encoded),
        "frames_encoded_max": max(encoded),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    data = Path(tempfile.mkdtemp(prefix="instant-bench-"))
    out: dict[str, Any] = {
        "benchmark": "instant",
        "video": f"{WIDTH}x{HEIGHT}@{FPS} H.264 constrained baseline, SPS/PPS in the SDP only",
        "joins_per_row": args.joins,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "target": {
            "first_frame_ms_median<=": TARGET_MEDIAN_MS,
            "first_frame_ms_max<=": TARGET_MAX_MS,
            "browser_to_browser_ms": BROWSER_REFERENCE_MS,
        },
    }
    psutil.cpu_percent()  # the machine's load over the run, from here
    started = time.monotonic()
    cameras = {
        g: CameraProcess(g) for g in sorted({*args.gops, TRANSCODED_GOP, args.transcoded_gop})
    }
    longest = max(args.gops)
    at_idr = CameraProcess(longest, at_idr=True)
    try:
        # Idle CPU first, while this process has had no viewer yet.
        url = cameras[TRANSCODED_GOP].url
        secs = args.idle_seconds
        out["idle_cpu_percent"] = {
            "what": f"this process (the agent), nobody watching, {secs:.0f} s, GOP 2 s camera",
            "passthrough_warm": await idle_cpu(data, url, warm=True, seconds=secs),
            "passthrough_cold": await idle_cpu(data, url, warm=False, seconds=secs),
            "transcoded_warm": await idle_cpu(
                data, url, warm=True, seconds=secs, passthrough="never"
            ),
        }
        # One join not counted: the process's first (imports, codec set-up, aiortc).
        first = make_agent(data, "testsrc", warm=False)
        await first.start()
        try:
            await join(first, "first", cold=False, gop_s=1)
        finally:
            await first.stop()

        rows = []
        for cold in (True, False):
            mode = "cold" if cold else "warm"
            rows.append(
                await run_row(
                    data,
                    f"testsrc {mode}",
                    "testsrc",
                    cold=cold,
                    gop_s=TRANSCODED_GOP,
                    joins=args.joins,
                    rng=rng,
                    kind="testsrc",
                )
            )
            rows.append(
                await run_row(
                    data,
                    f"transcoded gop {args.transcoded_gop} s {mode}",
                    cameras[args.transcoded_gop].url,
                    cold=cold,
                    gop_s=args.transcoded_gop,
                    joins=args.joins,
                    rng=rng,
                    passthrough="never",
                    kind="rtsp, passthrough=never",
                )
            )
            for g in args.gops:
                rows.append(
                    await run_row(
                        data,
                        f"passthrough gop {g} s {mode}",
                        cameras[g].url,
                        cold=cold,
                        gop_s=g,
                        joins=args.joins,
                        rng=rng,
                        kind="rtsp, passthrough",
                    )
                )
        # What of a cold join is the open: a camera that starts each session at an IDR.
        rows.append(
            await run_row(
                data,
                f"passthrough gop {longest} s cold, sessions start at an IDR",
                at_idr.url,
                cold=True,
                gop_s=longest,
                joins=args.joins,
                rng=rng,
                kind="rtsp, passthrough",
            )
        )
        out["rows"] = rows = [r for r in rows if not r.get("skipped")]
    finally:
        for cam in [*cameras.values(), at_idr]:
            cam.stop()
    out["bridge_cpu_isolated"] = {f"gop {g} s": bridge_cost(g, args.joins, rng) for g in args.gops}
    out["bridge_per_join"] = {
        r["row"]: {
            k: r[k]
            for k in (
                "bridged_joins",
                "bridge_cpu_ms_median",
                "bridge_cpu_ms_max",
                "bridge_frames_decoded_median",
                "bridge_frames_decoded_max",
                "bridge_frames_encoded_median",
                "bridged_s_median",
            )
            if k in r
        }
        for r in rows
        if r.get("bridged_joins")
    }
    out["rows_meeting_target"] = [r["row"] for r in rows if r["meets_target"]]
    out["rows_missing_target"] = [
        r["row"] for r in rows if not r["meets_target"] and not r.get("skipped")
    ]
    out["machine_cpu_percent_during_run"] = round(psutil.cpu_percent(), 1)
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["run_s"] = round(time.monotonic() - started, 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--joins", type=int, default=10, help="joins per row")
    p.add_argument("--gops", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--transcoded-gop", type=int, default=TRANSCODED_GOP, help="seconds")
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument(
        "--only", type=lambda s: s.split(","), default=[], help="rows whose names contain these"
    )
    p.add_argument("--quick", action="store_true", help="3 joins a row, GOP 4 s, idle 3 s")
    args = p.parse_args()
    ONLY.extend(args.only)
    if args.quick:
        args.joins, args.gops, args.idle_seconds = 3, [4], 3.0
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    netguard.run_guarded(main)
