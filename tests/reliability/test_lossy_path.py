"""Network faults on the media path, without kernel support: 5% loss and 100 ms delay
each way, made in user space on the Echo Show's ICE sockets (:mod:`impairment`).

The same claim as ``test_netem.py`` (which needs root and ``sch_netem``), provable on
any machine: a real camera agent and a real aiortc Echo Show over loopback for 12 s;
video keeps decoding because the agent answers the viewer's NACKs with
retransmissions and its PLIs with keyframes, and audio keeps arriving. STUN checks,
consent refreshes and DTLS go through the same loss and delay as media.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from typing import Any

import pytest

from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings
from tests.reliability.impairment import ImpairedLink

SECONDS = 12.0
LOSS, DELAY = 0.05, 0.100  # each way
SEED = int(os.environ.get("ALEXA_DOORBELL_LOSSY_SEED", "20261126"))
FPS = 15
MAX_GAP = 1.0  # seconds without a decoded frame, after the first one
SILENCE_RMS = 0.01  # the camera's test tone is about 0.2 of full scale


def _ssrc(sdp: str, kind: str) -> int:
    section = sdp.split(f"m={kind}", 1)[1].split("m=", 1)[0]
    line = next(x for x in section.splitlines() if x.startswith("a=ssrc:"))
    return int(line[7:].split()[0])


async def _watch(echo: EchoShow, seconds: float) -> dict[str, Any]:
    """Sample the Echo every 50 ms: when frames arrived, audio per second and its loudness."""
    start = time.monotonic()
    frame_times: list[float] = []
    frames = 0
    audio: list[tuple[float, float]] = [(0.0, 0.0)]  # (seconds received, sum of squares)
    first_audio: float | None = None
    next_second = start + 1.0
    while (now := time.monotonic()) - start < seconds:
        await asyncio.sleep(0.05)
        count = echo.report_.frames
        if count > frames:
            frame_times += [now - start] * (count - frames)
            frames = count
        if first_audio is None and echo.sink.seconds > 0:
            first_audio = now - start
        if now >= next_second:
            next_second += 1.0
            sink = echo.sink
            audio.append((sink.seconds, sink.rms**2 * sink.seconds))
    per_second = [
        (b[0] - a[0], math.sqrt((b[1] - a[1]) / (b[0] - a[0])) if b[0] > a[0] else 0.0)
        for a, b in itertools.pairwise(audio)
    ]
    return {"frame_times": frame_times, "audio_per_second": per_second, "first_audio": first_audio}


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_media_survives_user_space_loss_and_delay(record_figures) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        cameras=[CameraConfig(width=320, height=240, fps=FPS, audio="tone")],
        ice_gather_timeout=1.0,
    )
    link = ImpairedLink(loss=LOSS, delay=DELAY, seed=SEED)
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as cam:
        echo = EchoShow(talk="tone")
        try:
            offer = await echo.create_offer()
            link.attach(echo.pc)  # gathered: the Echo's sockets exist from here on
            answer = await cam.handle_offer("lossy-viewer", offer)
            t0 = time.monotonic()
            await echo.accept(answer)
            seen = await _watch(echo, SECONDS)
            stats = cam.stats()
            report = echo.report()
        finally:
            await echo.close()

    frame_times = seen["frame_times"]
    assert frame_times, f"no frame decoded in {SECONDS} s: {link.figures()}"
    first = frame_times[0]
    gaps = [b - a for a, b in itertools.pairwise(frame_times)]
    gaps.append(SECONDS - frame_times[-1])  # a stall at the end counts too
    video_ssrc, audio_ssrc = _ssrc(answer, "video"), _ssrc(answer, "audio")
    nacks = link.outbound.rtcp_delivered["nack"]
    plis = link.outbound.rtcp_delivered["pli"] + link.outbound.rtcp_delivered["fir"]
    retransmitted = link.inbound.rtp_repeats[video_ssrc]
    audio = seen["audio_per_second"]
    steady_audio = audio[3:]  # after ICE and DTLS over a 200 ms round trip
    first_audio = seen["first_audio"]
    assert first_audio is not None, f"no audio in {SECONDS} s: {link.figures()}"
    audio_expected = SECONDS - first_audio
    # Opus from aiortc: one 20 ms packet each; what reached the Echo's socket.
    audio_on_wire = link.inbound.rtp_delivered[audio_ssrc] * 0.020
    figures = {
        "loss_percent_each_way": LOSS * 100,
        "delay_ms_each_way": DELAY * 1000,
        "seed": SEED,
        "seconds": SECONDS,
        "connect_to_first_frame_s": round(first, 2),
        "frames": len(frame_times),
        "fps_after_first_frame": round((len(frame_times) - 1) / (SECONDS - first), 1),
        "longest_gap_s": round(max(gaps), 2),
        "measured_loss_percent": {
            "to_camera": link.figures()["outbound"]["loss_percent"],
            "to_echo": link.figures()["inbound"]["loss_percent"],
        },
        "datagrams": {
            "to_camera": link.figures()["outbound"]["datagrams"],
            "to_echo": link.figures()["inbound"]["datagrams"],
        },
        "handshake_datagrams_dropped": {  # STUN checks/consent and DTLS: impaired like media
            kind: link.outbound.dropped[kind] + link.inbound.dropped[kind]
            for kind in ("stun", "dtls")
        },
        "nacks_sent": link.outbound.rtcp_sent["nack"],
        "nacks_delivered": nacks,
        "plis_delivered": plis,
        "video_retransmissions_sent": retransmitted,
        "video_retransmissions_delivered": retransmitted - link.inbound.repeats_dropped[video_ssrc],
        "nacks_repeated_by_echo": report.nacks_repeated,
        "keyframes_sent": stats["keyframes"],
        "connect_to_first_audio_s": round(first_audio, 2),
        "audio_seconds_expected": round(audio_expected, 2),
        "audio_seconds_delivered": round(audio_on_wire, 2),
        "audio_seconds_decoded": round(report.audio_seconds, 2),
        "least_audio_in_a_second": round(min(secs for secs, _ in steady_audio), 2),
        "audio_rms": round(report.audio_rms, 3),
        "quietest_second_rms": round(min(r for _, r in steady_audio), 3),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    record_figures("lossy_path_user_space", **figures)

    # The impairment really happened, both ways, on every kind of datagram.
    for way in ("to_camera", "to_echo"):
        assert 3.0 <= figures["measured_loss_percent"][way] <= 7.0, figures
    # Video kept decoding from the first frame to the end.
    assert first < 4.0, figures
    assert max(gaps) <= MAX_GAP, figures
    assert figures["fps_after_first_frame"] >= 0.6 * FPS, figures
    # ...because the camera repaired losses: NACKs reached it and it retransmitted.
    assert nacks > 0 and retransmitted > 0, figures
    # Audio kept arriving: on the wire all but the lost packets; decoded, every
    # second, the tone and not silence. aiortc's audio jitter buffer turns each
    # lost packet into a longer hole (aiortc issue #543), hence the lower bar.
    assert audio_on_wire >= 0.85 * audio_expected, figures
    assert report.audio_seconds >= 0.6 * audio_expected, figures
    assert figures["least_audio_in_a_second"] >= 0.25, figures
    assert figures["quietest_second_rms"] >= SILENCE_RMS, figures
