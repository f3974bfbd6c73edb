"""The demo's story: each step a method of ``Demo``, in the order a user lives them.

The local cloud and the skill in this process, the camera agent in its own, the
simulated Echo Show watching; each step returns a line of figures or raises
``StepFailed`` with what it expected and what it saw.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from alexa_doorbell.cloud.alexa import SimulatedAlexa, answer_of, new_session_id, reply_name
from alexa_doorbell.config import CameraConfig, Settings
from alexa_doorbell.demo.person import DemoWebhook, person_at_door
from alexa_doorbell.demo.report import fmt_ms, print_result, rounded
from alexa_doorbell.demo.steps import (
    SILENCE_RMS,
    StepFailed,
    StepResult,
    expect,
    wait_until,
    wav_stats,
)

DEMO_USER = "amzn1.account.DEMOUSER0000000000000000000"


class Demo:
    def __init__(
        self,
        settings: Settings,
        out_dir: Path,
        *,
        source: str = "testsrc",
        console: Console,
        json_output: bool,
    ) -> None:
        self.settings = settings
        self.out_dir = out_dir
        self.source = source
        self.console = console
        self.json_output = json_output
        self.results: list[StepResult] = []
        self.cloud: Any = None
        self.camera_proc: subprocess.Popen[bytes] | None = None
        self.camera_log = out_dir / "camera.log"
        self.skill: Any = None
        self.alexa: SimulatedAlexa | None = None
        self.cam: CameraConfig = settings.camera()
        self.figures: dict[str, Any] = {}
        self.endpoints: dict[str, Any] = {}
        self.webhook = DemoWebhook()  # the camera's: the press and the person at the door ring it
        self.person_snapshot: Path | None = None

    # -- the story -------------------------------------------------------------------
    def steps(self) -> list[tuple[str, str, Callable[[], Awaitable[str]]]]:
        return [
            (
                "cloud",
                "Start the local cloud (KVS, Login with Amazon, event gateway)",
                self.start_cloud,
            ),
            ("camera", "Start the camera agent (KVS master)", self.start_camera),
            ("link", "Link the skill (authorization code → AcceptGrant)", self.link),
            ("discover", "Discover devices", self.discover),
            ("live_view", '"Alexa, show me the front door"', self.live_view),
            ("session_connected", "SessionConnected", self.session_connected),
            ("talk", '"Talk to the front door" (two-way audio)', self.talk),
            (
                "session_disconnected",
                "SessionDisconnected ends the camera's session",
                self.session_disconnected,
            ),
            (
                "talk_modes",
                'Talk modes: "show me" and "talk to" a full, a half and a no-talk camera',
                self.talk_modes,
            ),
            (
                "doorbell_press",
                "Doorbell press → Alexa announces and opens the live view",
                self.doorbell_press,
            ),
            ("person_at_door", "A person at the door → announced, snapshot", self.person_at_door),
            ("camera_offline", "Camera offline → UNREACHABLE", self.camera_offline),
        ]

    async def run(self) -> bool:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        steps = self.steps()
        failed = False
        for name, title, fn in steps:
            result = StepResult(name, title)
            if failed:
                result.detail = "skipped: an earlier step failed"
                result.expected, result.seen = "an earlier step to pass", "it failed"
                self.results.append(result)
                continue
            t0 = time.perf_counter()
            try:
                if self.json_output:
                    result.detail = await fn()
                else:
                    with self.console.status(f"{title} …"):
                        result.detail = await fn()
                result.ok = True
            except StepFailed as exc:
                result.expected, result.seen = exc.expected, exc.seen
            except Exception as exc:  # a step's crash is that step's failure, reported
                result.expected = "the step to complete"
                result.seen = f"{type(exc).__name__}: {exc}"
            result.ms = (time.perf_counter() - t0) * 1000
            result.figures = self.figures.pop(name, {})
            self.results.append(result)
            self._print(result)
            failed = failed or not result.ok
        return not failed

    def _print(self, r: StepResult) -> None:
        if not self.json_output:
            print_result(self.console, r, self.camera_log)

    # -- steps -----------------------------------------------------------------------
    async def start_cloud(self) -> str:
        from alexa_doorbell.cloud.server import LocalCloud
        from alexa_doorbell.commands.skill import build_skill
        from alexa_doorbell.store import open_store

        self.cloud = LocalCloud(self.settings)
        await self.cloud.start()
        self.store = open_store(self.settings.store_location)
        self.skill = build_skill(self.settings, self.store)
        return f"REST {self.settings.local.url}, WSS {self.settings.local.wss_url}"

    async def start_camera(self) -> str:
        await self._spawn_camera()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = self.store.get_health(self.cam.endpoint_id)
            if health is not None and health.connectivity == "OK":
                return f"pid {self.camera_proc.pid}, source {self.source}"  # type: ignore[union-attr]
            if self.camera_proc is not None and self.camera_proc.poll() is not None:
                raise StepFailed(
                    "the camera agent to connect to its signaling channel",
                    f"it exited with status {self.camera_proc.returncode} (log: {self.camera_log})",
                )
            await asyncio.sleep(0.1)
        raise StepFailed("the camera to report OK within 30 s", "no health report")

    async def _spawn_camera(self) -> None:
        update = {"source": self.source, "sink": str(self.out_dir / "talkback-{session}.wav")}
        if self.source == "testsrc" and self.cam.audio == "auto":
            update["audio"] = "tone:440"  # the test pattern's sound, so the Echo hears something
        cam = self.cam.model_copy(update=update)
        env = dict(os.environ)
        env.update(
            {
                "ALEXA_DOORBELL_CLOUD": "local",
                "ALEXA_DOORBELL_DATA_DIR": str(self.settings.data_dir),
                "ALEXA_DOORBELL_LOCAL__HOST": self.settings.local.host,
                "ALEXA_DOORBELL_LOCAL__PORT": str(self.settings.local.port),
                "ALEXA_DOORBELL_LOCAL__TLS_PORT": str(self.settings.local.tls_port),
                "ALEXA_DOORBELL_CAMERAS": json.dumps([cam.model_dump(mode="json")]),
                "ALEXA_DOORBELL_STORE_URL": self.settings.store_location,
                "ALEXA_DOORBELL_STUN_URLS": json.dumps(self.settings.stun_urls),
                "ALEXA_DOORBELL_USE_TURN": json.dumps(self.settings.use_turn),
                **self.webhook.env(),
            }
        )
        log = self.camera_log.open("ab")
        self.camera_proc = subprocess.Popen(
            [sys.executable, "-m", "alexa_doorbell.cli", "camera"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    async def link(self) -> str:
        linked = self.cloud.lwa.link(user_id=DEMO_USER, name="Demo User")
        self.alexa = SimulatedAlexa(self.skill.handle, linked["access_token"])
        reply = await asyncio.to_thread(self.alexa.accept_grant, linked["code"])
        expect(
            reply_name(reply) == "Alexa.Authorization.AcceptGrant.Response",
            "AcceptGrant.Response",
            f"{reply_name(reply)} {reply['event']['payload']}",
        )
        tokens = self.store.get_tokens(DEMO_USER)
        expect(tokens is not None, "tokens stored for the user", "no tokens in the store")
        return f"user {DEMO_USER[:24]}…, tokens stored (expire in {tokens.expires_in():.0f} s)"

    async def discover(self) -> str:
        assert self.alexa is not None
        reply = await asyncio.to_thread(self.alexa.discover)
        expect(
            reply_name(reply) == "Alexa.Discovery.Discover.Response",
            "Discover.Response",
            reply_name(reply),
        )
        endpoints = {e["endpointId"]: e for e in reply["event"]["payload"]["endpoints"]}
        self.endpoints = endpoints
        ep = endpoints.get(self.cam.endpoint_id)
        expect(ep is not None, f"endpoint {self.cam.endpoint_id}", sorted(endpoints))
        assert ep is not None
        interfaces = [c["interface"] for c in ep["capabilities"]]
        expect("Alexa.RTCSessionController" in interfaces, "an RTCSessionController", interfaces)
        if self.cam.doorbell:
            expect("Alexa.DoorbellEventSource" in interfaces, "a DoorbellEventSource", interfaces)
        expect(
            ep["displayCategories"][0] == "CAMERA", "CAMERA listed first", ep["displayCategories"]
        )
        self.figures["discover"] = {"endpoints": len(endpoints), "interfaces": interfaces}
        return f"{ep['friendlyName']!r}: {', '.join(ep['displayCategories'])}"

    async def _open_live_view(
        self, name: str, *, frames: int, snapshot: Path | None, wav: Path | None
    ) -> tuple[Any, str]:
        from alexa_doorbell.cloud.echo import EchoShow

        assert self.alexa is not None
        alexa = self.alexa
        echo = EchoShow(talk="tone", snapshot_path=snapshot, wav_path=wav)
        session_id = new_session_id()

        async def send_offer(offer: str) -> str:
            reply = await asyncio.to_thread(
                alexa.initiate_session, self.cam.endpoint_id, session_id, offer
            )
            return answer_of(reply)

        try:
            answer = await echo.watch(send_offer)
        except ValueError as exc:
            await echo.close()
            raise StepFailed("AnswerGeneratedForSession", str(exc)) from None
        expect("H264" in answer, "an H.264 video answer", "no H264 in the answer")
        got = await echo.wait_frames(frames, timeout=20)
        if got < frames:
            await echo.close()
            raise StepFailed(f"{frames} decoded frames within 20 s", f"{got} frames")
        return echo, session_id

    async def live_view(self) -> str:
        echo, session_id = await self._open_live_view(
            "live_view",
            frames=60,
            snapshot=self.out_dir / "echo-snapshot.png",
            wav=self.out_dir / "echo-heard.wav",
        )
        self.echo, self.session_id = echo, session_id
        r = echo.report()
        if self.source == "testsrc":  # other sources carry no burned-in counter
            expect(
                r.first_counter is not None
                and r.last_counter is not None
                and r.last_counter > r.first_counter,
                "the test pattern's frame counter to advance",
                f"counter {r.first_counter} → {r.last_counter}",
            )
        self.figures["live_view"] = {
            "answer_ms": round(r.answer_ms or 0, 1),
            "first_frame_ms": round(r.first_frame_ms or 0, 1),
            "frames": r.frames,
            "fps": round(r.fps, 1),
            "resolution": f"{r.width}x{r.height}",
            "video_codec": r.video_codec,
            "glass_to_glass_ms": rounded(r.latency_ms_median),
            "glass_to_glass_p95_ms": rounded(r.latency_ms_p95),
            "counter": [r.first_counter, r.last_counter],
        }
        return (
            f"answer {r.answer_ms:.0f} ms, first frame {r.first_frame_ms:.0f} ms, "
            f"{r.frames} frames {r.width}x{r.height} {r.fps:.0f} fps, "
            f"glass-to-glass {fmt_ms(r.latency_ms_median)}"
        )

    async def _session_event(self, name: str) -> None:
        """SessionConnected/SessionDisconnected as Alexa sends it; the skill must acknowledge."""
        assert self.alexa is not None
        reply = await asyncio.to_thread(
            self.alexa.session_event, name, self.cam.endpoint_id, self.session_id
        )
        expect(reply_name(reply) == f"Alexa.RTCSessionController.{name}", name, reply_name(reply))

    async def session_connected(self) -> str:
        await self._session_event("SessionConnected")
        return f"session {self.session_id[-12:]}"

    async def talk(self) -> str:
        # Let both directions run for a while: the Echo's tone goes to the camera's sink,
        # the camera's audio to the Echo.
        await asyncio.sleep(2.0)
        r = self.echo.report()
        expect(
            r.talk_seconds > 1.0,
            "the Echo to send its microphone audio",
            f"{r.talk_seconds:.1f} s sent",
        )
        expect(
            r.audio_seconds > 1.0,
            "audio from the camera at the Echo",
            f"{r.audio_seconds:.1f} s received",
        )
        if self.source == "testsrc":
            expect(
                r.audio_rms > SILENCE_RMS,
                "the camera's tone at the Echo (RMS above silence)",
                f"RMS {r.audio_rms:.3f}",
            )
        self.figures["talk"] = {
            "echo_sent_s": round(r.talk_seconds, 2),
            "echo_received_s": round(r.audio_seconds, 2),
            "echo_received_rms": round(r.audio_rms, 4),
        }
        return (
            f"Echo sent {r.talk_seconds:.1f} s of tone, heard {r.audio_seconds:.1f} s "
            f"from the camera; camera side checked after the session ends"
        )

    async def session_disconnected(self) -> str:
        await self._session_event("SessionDisconnected")
        t0 = time.monotonic()
        # The camera closing its peer sends a DTLS close_notify: the Echo's peer closes.
        ended = await wait_until(
            lambda: self.echo.pc.connectionState in ("closed", "failed"), timeout=10
        )
        seen_state = self.echo.pc.connectionState
        end_ms = (time.monotonic() - t0) * 1000
        report = await self.echo.close()
        expect(ended, "the camera to end the session within 10 s", f"connection still {seen_state}")
        # The camera's WAV is complete once its session is closed.
        wavs = sorted(self.out_dir.glob("talkback-*.wav"), key=lambda p: p.stat().st_mtime)
        expect(bool(wavs), "a talk-back WAV at the camera's sink", "no WAV written")
        talkback = self.out_dir / "talkback.wav"
        shutil.copyfile(wavs[-1], talkback)
        for w in wavs:
            w.unlink()
        seconds, rms = wav_stats(talkback)
        expect(
            rms > SILENCE_RMS,
            f"talk-back RMS above {SILENCE_RMS} (the Echo's tone)",
            f"RMS {rms:.3f}",
        )
        self.figures["session_disconnected"] = {
            "teardown_ms": round(end_ms, 1),
            "camera_heard_s": round(seconds, 2),
            "camera_heard_rms": round(rms, 4),
            "snapshot": report.snapshot,
            "talkback_wav": str(talkback),
        }
        self.snapshot, self.talkback = report.snapshot, talkback
        return (
            f"camera ended the session in {end_ms:.0f} ms; it heard {seconds:.1f} s "
            f"of talk-back (RMS {rms:.2f} of full scale)"
        )

    async def talk_modes(self) -> str:
        from alexa_doorbell.demo.talk import MODE_CAMERAS, run_talk_modes

        assert self.alexa is not None
        missing = [c.endpoint_id for c in MODE_CAMERAS if c.endpoint_id not in self.endpoints]
        expect(not missing, "the three talk-mode cameras in Discovery", f"missing {missing}")
        rows = await run_talk_modes(self.settings, self.store, self.alexa, self.endpoints)
        self.figures["talk_modes"] = {"sessions": rows}
        bad = [f"{r['camera']}/{r['utterance']}" for r in rows if not r.get("ok")]
        expect(
            not bad,
            "every camera and utterance to match the reference table",
            "; ".join(
                f"{r['camera']}/{r['utterance']}: shows {r.get('echo_shows')!r}, door heard"
                f" RMS {r.get('door_heard_rms')}, Echo heard RMS {r.get('echo_heard_rms')}"
                for r in rows
                if not r.get("ok")
            ),
        )
        half = next(r for r in rows if r["camera"] == "half" and r["utterance"] == "talk")
        return (
            f"{len(rows)} sessions match the table; half duplex: the door muted while the"
            f" button was held, heard again {half['door_back_after_release_ms']} ms after release"
        )

    async def doorbell_press(self) -> str:
        from alexa_doorbell.demo.press import doorbell_press

        view = functools.partial(self._open_live_view, frames=15, snapshot=None, wav=None)
        line, self.figures["doorbell_press"] = await doorbell_press(
            self.cloud,
            self.alexa,
            self.cam.endpoint_id,
            view,
            self.webhook,
            self.settings,
            self.out_dir,
        )
        return line

    async def person_at_door(self) -> str:
        view = functools.partial(self._open_live_view, frames=10, snapshot=None, wav=None)
        line, self.figures["person_at_door"], self.person_snapshot = await person_at_door(
            self.cloud, self.alexa, self.cam.endpoint_id, view, self.webhook, self.out_dir
        )
        return line

    async def camera_offline(self) -> str:
        assert self.alexa is not None and self.camera_proc is not None
        self.camera_proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self.camera_proc.wait, 15)
        reply = await asyncio.to_thread(self.alexa.report_state, self.cam.endpoint_id)
        props = {p["name"]: p["value"] for p in reply.get("context", {}).get("properties", [])}
        connectivity = props.get("connectivity", {}).get("value")
        expect(
            connectivity == "UNREACHABLE",
            "ReportState connectivity UNREACHABLE",
            f"{reply_name(reply)} connectivity={connectivity}",
        )
        t0 = time.perf_counter()
        reply = await asyncio.to_thread(
            self.alexa.initiate_session, self.cam.endpoint_id, new_session_id(), "v=0\r\n"
        )
        fail_ms = (time.perf_counter() - t0) * 1000
        expect(
            reply_name(reply) == "Alexa.ErrorResponse ENDPOINT_UNREACHABLE",
            "ENDPOINT_UNREACHABLE",
            reply_name(reply),
        )
        changes = [
            m
            for m in self.cloud.gateway.messages("ChangeReport")
            if m["event"]["endpoint"]["endpointId"] == self.cam.endpoint_id
        ]
        self.figures["camera_offline"] = {
            "unreachable_reply_ms": round(fail_ms, 1),
            "change_reports": len(changes),
        }
        return f"ReportState UNREACHABLE; InitiateSessionWithOffer refused in {fail_ms:.0f} ms"

    # -- shutting down -----------------------------------------------------------------
    async def close(self) -> None:
        if self.camera_proc is not None and self.camera_proc.poll() is None:
            self.camera_proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.camera_proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.camera_proc.kill()
        if self.cloud is not None:
            await self.cloud.stop()
        for extra in self.out_dir.glob("talkback-*.wav"):  # later sessions' talk-back
            extra.unlink(missing_ok=True)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": all(r.ok for r in self.results) and bool(self.results),
            "steps": [r.as_dict() for r in self.results],
            "snapshot": str(getattr(self, "snapshot", "") or "") or None,
            "talkback_wav": str(getattr(self, "talkback", "") or "") or None,
            "person_snapshot": str(self.person_snapshot) if self.person_snapshot else None,
            "events": self.cloud.gateway.messages() if self.cloud is not None else [],
            "data_dir": str(self.settings.data_dir),
        }
