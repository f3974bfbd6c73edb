"""Camera agent benchmark: answer time, first frame, glass-to-glass latency, CPU per viewer count.

Runs the local cloud in-process, the camera agent as its own process
(``alexa-doorbell camera``, test pattern), and simulated Echo Shows that send
their offers through SendAlexaOfferToMaster (boto3), as the skill does.
Prints one JSON object.

    uv run python bench/camera_bench.py [--width 1280 --height 720 --fps 30 --seconds 5]

Targets (issue 4): answer <= 100 ms median with no STUN, first frame <= 300 ms
after the answer, agent CPU with 10 viewers <= 1.5x CPU with 1 viewer.

Timings come from viewers in this process that decode every frame. For CPU,
the viewers run in their own processes (``bench/viewers.py``, at a lower
priority) and by default reassemble but do not decode the video: ten 720p
decoders would need more than a 2-core machine has, and starved viewers send
PLIs and NACKs that make the agent work more. The agent's CPU (all its threads)
is sampled ``--repeat`` times per viewer count and per viewer mode, the modes
back to back; medians are reported.

Viewer modes (``--modes``): ``watch``, viewers that only watch and send no
audio (an Echo whose user is not talking, a browser without push-to-talk);
``talk``, every viewer sends talk-back (a tone) all the time, to the camera's
sink as configured (``--sink``, default ``discard`` like the default camera).
The CPU target is judged on ``watch``: it is about sending one picture to many
viewers, and talk-back is work per person talking, not per viewer watching.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.helpers.netguard

from tests.helpers import netguard  # noqa: E402

from alexa_doorbell.cloud.echo import EchoShow  # noqa: E402
from alexa_doorbell.cloud.server import start_cloud_thread  # noqa: E402
from alexa_doorbell.config import CameraConfig, LocalCloudConfig, Settings  # noqa: E402
from alexa_doorbell.kvs import api  # noqa: E402
from alexa_doorbell.skill.rtc import sender_client_id  # noqa: E402
from alexa_doorbell.store import open_store  # noqa: E402

MODES = {
    "watch": "viewers only watch: no audio sent to the camera",
    "talk": "every viewer sends talk-back (a 660 Hz tone) all the time",
}
TARGET_MODE = "watch"


def agent_env(settings: Settings, cam: CameraConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ALEXA_DOORBELL_CONFIG": os.devnull,  # no config file
            "ALEXA_DOORBELL_CLOUD": "local",
            "ALEXA_DOORBELL_DATA_DIR": str(settings.data_dir),
            "ALEXA_DOORBELL_LOCAL__HOST": settings.local.host,
            "ALEXA_DOORBELL_LOCAL__PORT": str(settings.local.port),
            "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(settings.local.tls_port),
            "ALEXA_DOORBELL_CAMERAS": json.dumps([cam.model_dump()]),
            # On one machine: no STUN or TURN server, whatever the environment says.
            "ALEXA_DOORBELL_STUN_URLS": "[]",
            "ALEXA_DOORBELL_USE_TURN": "false",
        }
    )
    return env


def median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="camera-bench-"))
    cam = CameraConfig(
        width=args.width,
        height=args.height,
        fps=args.fps,
        audio="silence",
        sink=args.sink,
        # Talk-back taken (sendrecv) whatever the sink, so 'talk' viewers do send it:
        # with the default sink, 'discard', the camera would otherwise answer sendonly.
        talk="full",
    )
    cloud = start_cloud_thread(
        Settings(
            cloud="local",
            data_dir=data,
            local=LocalCloudConfig(port=0, tls_port=0),
            cameras=[cam],
        )
    )
    settings = cloud.settings
    proc = subprocess.Popen(
        [sys.executable, "-m", "alexa_doorbell.cli", "camera"],
        env=agent_env(settings, cam),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = open_store(settings.store_location)
    out: dict[str, Any] = {
        "source": f"testsrc {args.width}x{args.height}@{args.fps}",
        "sink": args.sink,
        "cpus": os.cpu_count(),
    }
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            health = store.get_health(cam.endpoint_id)
            if health is not None and health.connectivity == "OK":
                break
            if proc.poll() is not None:
                raise RuntimeError(f"camera agent exited with {proc.returncode}")
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("camera agent did not connect to the local cloud in 30 s")
        out["agent_start_s"] = round(time.monotonic() - t0, 2)

        kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
        arn = api.describe_channel_arn(kv, cam.channel_name)
        sig = api.signaling_client(
            settings.boto_session(), api.get_channel_endpoints(kv, arn, "VIEWER").https
        )

        async def watch(i: int) -> EchoShow:
            echo = EchoShow(talk=None)
            peer = sender_client_id(f"bench-{i}")
            await echo.watch(
                lambda offer: asyncio.to_thread(
                    api.send_alexa_offer_to_master, sig, arn, peer, offer
                )
            )
            return echo

        # answer time and first frame: one viewer at a time
        answers, first_frames, latencies = [], [], []
        for i in range(args.rounds):
            echo = await watch(i)
            await echo.wait_frames(int(args.fps), timeout=5)
            r = await echo.close()
            answers.append(r.answer_ms)
            if r.first_frame_ms is not None:
                first_frames.append(r.first_frame_ms)
            if r.latency_ms_median is not None:
                latencies.append(r.latency_ms_median)
            await asyncio.sleep(0.3)
        out["answer_ms_median"] = median(answers)
        out["answer_ms_max"] = round(max(answers), 1)
        out["first_frame_ms_median"] = median(first_frames)
        out["glass_to_glass_ms_median"] = median(latencies)

        # CPU of the agent process with N viewers of the one source
        env = agent_env(settings, cam)
        out["cpu_modes"] = {m: MODES[m] for m in args.modes}
        out["cpu"] = cpu = await asyncio.to_thread(measure_cpu, args, proc.pid, env)
        first, last = str(args.viewers[0]), str(args.viewers[-1])
        ratios: dict[str, float] = {}
        for mode, by_n in cpu.items():
            ratios[mode] = round(
                by_n[last]["agent_cpu_percent"] / max(0.1, by_n[first]["agent_cpu_percent"]), 2
            )
            by_n[f"ratio_{last}_vs_{first}"] = ratios[mode]
            by_n[f"ratio_{last}_vs_{first}_runs"] = [
                round(b / max(0.1, a), 2)
                for a, b in zip(by_n[first]["runs"], by_n[last]["runs"], strict=True)
            ]
        judged = TARGET_MODE if TARGET_MODE in ratios else args.modes[0]
        out["cpu_target_mode"] = judged
        out["cpu_target_why"] = (
            "the target is about sending one picture to many viewers; talk-back is work"
            " per person talking (each has their own microphone), reported as 'talk'"
        )
        out["targets"] = {
            "answer_ms_median<=100": (out["answer_ms_median"] or 1e9) <= 100,
            "first_frame_ms<=300": (out["first_frame_ms_median"] or 1e9) <= 300,
            f"cpu_{last}_viewers<=1.5x_{first} ({judged})": ratios[judged] <= 1.5,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        store.close()
        cloud.stop()
    return out


class ViewerProcess:
    """One ``bench/viewers.py`` process: a line protocol over its stdin/stdout."""

    def __init__(self, env: dict[str, str], decode: bool) -> None:
        cmd = [sys.executable, str(Path(__file__).with_name("viewers.py"))]
        self.proc = subprocess.Popen(
            [*cmd, *([] if decode else ["--no-decode"])],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=lambda: os.nice(10),  # the agent gets the cores first
        )

    def ask(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"viewer process exited ({self.proc.poll()})")
        return json.loads(reply)

    def close(self) -> None:
        with suppress(RuntimeError, OSError, ValueError):
            self.ask("exit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure_cpu(
    args: argparse.Namespace, pid: int, env: dict[str, str]
) -> dict[str, dict[str, Any]]:
    agent = psutil.Process(pid)
    runs = {m: {n: [] for n in args.viewers} for m in args.modes}
    fps = {m: {n: [] for n in args.viewers} for m in args.modes}
    talk = {"watch": "off", "talk": "tone"}
    with ExitStack() as stack:
        workers = [ViewerProcess(env, args.decode) for _ in range(args.viewer_procs)]
        for w in workers:
            stack.callback(w.close)
        serial = 0
        for _ in range(args.repeat):
            for n in args.viewers:
                for mode in args.modes:  # back to back: the machine's load varies
                    shares = [
                        n // len(workers) + (i < n % len(workers)) for i in range(len(workers))
                    ]
                    for w, k in zip(workers, shares, strict=True):
                        if k:
                            w.ask(f"open {k} {serial} {talk[mode]}")
                            serial += k
                    time.sleep(args.warmup)
                    f0 = [f for w in workers for f in w.ask("frames")["frames"]]
                    c0, w0 = agent.cpu_times(), time.monotonic()
                    time.sleep(args.seconds)
                    c1, w1 = agent.cpu_times(), time.monotonic()
                    f1 = [f for w in workers for f in w.ask("frames")["frames"]]
                    busy = (c1.user - c0.user) + (c1.system - c0.system)
                    runs[mode][n].append(round(busy / (w1 - w0) * 100, 1))
                    slowest = min(b - a for a, b in zip(f0, f1, strict=True))
                    fps[mode][n].append(round(slowest / (w1 - w0), 1))
                    for w in workers:
                        w.ask("close")
                    time.sleep(1.5)
    return {
        mode: {
            str(n): {
                "agent_cpu_percent": round(statistics.median(runs[mode][n]), 1),
                "runs": runs[mode][n],
                "slowest_viewer_fps": min(fps[mode][n]),
            }
            for n in args.viewers
        }
        for mode in args.modes
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--seconds", type=float, default=5.0, help="CPU sampling window")
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--rounds", type=int, default=5, help="single-viewer sessions for timings")
    p.add_argument("--viewers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5, 10])
    p.add_argument("--repeat", type=int, default=3, help="CPU samples per viewer count")
    p.add_argument("--viewer-procs", type=int, default=2, help="processes the viewers run in")
    p.add_argument("--decode", action="store_true", help="CPU viewers decode the video too")
    p.add_argument(
        "--modes",
        type=lambda s: s.split(","),
        default=list(MODES),
        help="viewer modes to measure: watch (no talk-back), talk (talk-back all the time)",
    )
    p.add_argument("--sink", default="discard", help="the camera's talk-back sink")
    print(json.dumps(asyncio.run(run(p.parse_args()))))


if __name__ == "__main__":
    netguard.run_guarded(main)
