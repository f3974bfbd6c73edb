"""Talk modes end to end: full duplex, half duplex (push to talk) and none.

Real aiortc peers over loopback: the camera agent answers a simulated Echo Show
that reads the camera's Discovery and the answer, and talks as a real one does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alexa_doorbell.alexa.discovery import endpoint_description
from alexa_doorbell.camera.agent import CameraAgent
from alexa_doorbell.camera.media import ToneSource
from alexa_doorbell.camera.sdp import summarize
from alexa_doorbell.cloud.echo import EchoShow
from alexa_doorbell.config import CameraConfig, Settings, device_of
from tests.helpers.door import BabbleSource, SimulatedDoor

QUIET = 0.005  # RMS (of full scale) below which the camera's 0.3-amplitude tone is gone
TONE = 0.05  # RMS above which it is there


def _settings(tmp_path: Path, **camera: Any) -> Settings:
    cam = CameraConfig(width=320, height=240, fps=15, audio="tone", **camera)
    return Settings(cloud="local", data_dir=tmp_path, cameras=[cam])  # type: ignore[arg-type]


def _discovery(settings: Settings) -> dict[str, Any]:
    return endpoint_description(device_of(settings.cameras[0]))


def _rtc_config(endpoint: dict[str, Any]) -> dict[str, Any]:
    (rtc,) = [c for c in endpoint["capabilities"] if c["interface"] == "Alexa.RTCSessionController"]
    return rtc["configuration"]


async def _session(
    agent: CameraAgent, peer: str, discovery: dict[str, Any], utterance: str, **kw: Any
) -> tuple[EchoShow, str]:
    echo = EchoShow(discovery=discovery, utterance=utterance, **kw)  # type: ignore[arg-type]
    answer = await echo.watch(lambda offer: agent.handle_offer(peer, offer))
    assert await echo.wait_frames(5, timeout=10) >= 5
    return echo, answer


async def _audio_packets_received(agent: CameraAgent, peer: str) -> int:
    """RTP packets the camera's audio receiver got (RTCP on the shared transport aside)."""
    (audio,) = [t for t in agent.sessions[peer].pc.getTransceivers() if t.kind == "audio"]
    stats = await audio.receiver.getStats()
    return sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")


async def test_full_duplex_tap_to_talk(tmp_path: Path) -> None:
    settings = _settings(tmp_path, sink=str(tmp_path / "talk-{session}.wav"))
    assert settings.cameras[0].talk_mode == "full"  # a .wav recorder: nothing comes back
    endpoint = _discovery(settings)
    assert _rtc_config(endpoint) == {"isFullDuplexAudioSupported": True}
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        # "Alexa, talk to the doorbell": the microphone is on at once.
        echo, answer = await _session(agent, "talker", endpoint, "talk")
        try:
            assert summarize(answer).first("audio").direction == "sendrecv"
            assert echo.mode == "tap-to-talk"
            assert echo.screen == "feed, microphone on, tap to stop"
            await asyncio.sleep(1.0)
            sink = agent.sessions["talker"].sink
            assert sink is not None and sink.seconds > 0.5 and sink.rms > TONE  # heard at the door
            assert echo.report().audio_rms > TONE  # and the door is heard at the Echo
            assert echo.tap() is False  # tap to stop
            assert echo.screen == "feed, talk icon disabled, tap to talk"
        finally:
            await echo.close()
        # "Alexa, show me the doorbell": the feed, the microphone off until a tap.
        echo, _ = await _session(agent, "watcher", endpoint, "show")
        try:
            assert echo.screen == "feed, talk icon disabled, tap to talk"
            await asyncio.sleep(0.6)
            sink = agent.sessions["watcher"].sink
            assert sink is not None and sink.rms < QUIET  # silence frames only
            assert echo.report().talk_seconds == 0
            assert echo.tap() is True
            await asyncio.sleep(0.8)
            assert sink.rms > 0.02 and echo.report().talk_seconds > 0.5
            with pytest.raises(RuntimeError):
                echo.press()  # no push to talk on a full-duplex camera
        finally:
            await echo.close()


async def test_half_duplex_push_to_talk_mutes_the_door_while_the_user_talks(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, sink=str(tmp_path / "talk-{session}.wav"), talk="half")
    endpoint = _discovery(settings)
    assert _rtc_config(endpoint) == {"isFullDuplexAudioSupported": False}
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        echo, answer = await _session(agent, "talker", endpoint, "talk")
        other, _ = await _session(agent, "other", endpoint, "show")  # a second viewer
        try:
            assert summarize(answer).first("audio").direction == "sendrecv"
            assert echo.mode == other.mode == "push-to-talk"
            assert echo.screen == "feed, push to talk, release to stop"
            assert other.screen == "feed, talk icon disabled, push to talk, release to stop"
            await asyncio.sleep(0.6)
            now = time.monotonic()
            before = echo.heard.rms(now - 0.4, now)[0]
            assert before > TONE  # the visitor is heard while nobody talks
            sink = agent.sessions["talker"].sink
            assert sink is not None and sink.rms < QUIET  # released: only silence sent

            echo.press()
            assert echo.screen == "feed, microphone on, release to stop"
            pressed = echo.pushes[-1][0]
            await asyncio.sleep(1.5)
            released = echo.release()
            assert sink.rms > 0.02  # the user's voice reached the door
            await asyncio.sleep(0.8)

            for viewer in (echo, other):  # the door's microphone is muted for every viewer
                muted_rms, seconds = viewer.heard.rms(pressed + 0.35, released)
                assert muted_rms < QUIET, (viewer.mode, muted_rms)
                # Silence frames, not a stopped track: audio kept coming.
                assert seconds >= 0.6 * (released - pressed - 0.35), seconds
                back = viewer.heard.first_above(released, TONE)
                assert back is not None and back <= 0.3, back  # heard again within 300 ms
            stats = agent.stats()
            assert stats["talk"] == "half" and stats["muted_frames"] > 40
            with pytest.raises(RuntimeError):
                echo.tap()  # no tap to talk on a half-duplex camera
        finally:
            await echo.close()
            await other.close()


async def test_no_talk_camera_gives_the_echo_no_way_to_send_audio(tmp_path: Path) -> None:
    settings = _settings(tmp_path)  # sink "discard": nothing at the door plays the user
    assert settings.cameras[0].talk_mode == "none"
    endpoint = _discovery(settings)
    assert _rtc_config(endpoint) == {"isFullDuplexAudioSupported": False}
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        for utterance in ("show", "talk"):
            peer = f"viewer-{utterance}"
            echo, answer = await _session(agent, peer, endpoint, utterance)
            try:
                audio = summarize(answer).first("audio")
                assert audio.active and audio.direction == "sendonly"  # camera -> Echo only
                tr = next(t for t in echo.pc.getTransceivers() if t.kind == "audio")
                assert tr.currentDirection == "recvonly"  # the Echo may not send
                assert echo.mode == "watch" and echo.screen == "feed, no talk button"
                with pytest.raises(RuntimeError):
                    echo.tap()
                with pytest.raises(RuntimeError):
                    echo.press()
                await asyncio.sleep(0.6)
                assert echo.report().audio_rms > TONE  # the visitor is still heard
                assert echo.report().talk_seconds == 0
                assert await _audio_packets_received(agent, peer) == 0  # no audio reached it
                assert agent.sessions[peer].sink is None
            finally:
                await echo.close()


def test_deprecated_full_duplex_still_maps(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        full = CameraConfig(full_duplex=True, sink="speaker", aec=False)
        half = CameraConfig.model_validate({"endpoint_id": "gate", "full_duplex": "false"})
    assert (full.talk, full.talk_mode, full.full_duplex) == ("full", "full", True)
    assert (half.talk, half.talk_mode, half.full_duplex) == ("half", "half", False)
    lines = [r.getMessage() for r in caplog.records if "full_duplex" in r.getMessage()]
    assert lines == [
        "camera front-door: full_duplex is deprecated, use talk = 'full' instead",
        "camera gate: full_duplex is deprecated, use talk = 'half' instead",
    ]
    # talk, when given too, wins.
    assert CameraConfig(full_duplex=True, talk="none").talk_mode == "none"
    with pytest.raises(ValueError, match="full_duplex must be true or false"):
        CameraConfig(full_duplex="sometimes")


@pytest.mark.parametrize(
    ("sink", "aec", "mode"),
    [
        ("discard", True, "none"),
        ("speaker", True, "full"),
        ("speaker", False, "half"),
        ("door.wav", False, "full"),
    ],
)
def test_default_talk_follows_the_hardware(sink: str, aec: bool, mode: str) -> None:
    cam = CameraConfig(sink=sink, aec=aec)
    assert cam.talk == "auto" and cam.talk_mode == mode
    configuration = _rtc_config(endpoint_description(device_of(cam)))
    assert configuration == {"isFullDuplexAudioSupported": mode == "full"}


async def test_deprecated_full_duplex_false_is_half_duplex_end_to_end(tmp_path: Path) -> None:
    """full_duplex = false used to answer sendonly (talk-back thrown away); now it is half."""
    settings = _settings(tmp_path, sink=str(tmp_path / "t-{session}.wav"), full_duplex=False)
    async with CameraAgent(settings, signaling=False, preset="ultrafast") as agent:
        echo, answer = await _session(agent, "talker", _discovery(settings), "talk")
        try:
            assert summarize(answer).first("audio").direction == "sendrecv"
            assert echo.mode == "push-to-talk"
            await echo.push_to_talk(0.8)
            await asyncio.sleep(0.2)
            sink = agent.sessions["talker"].sink
            assert sink is not None and sink.rms > 0.02
            assert await _audio_packets_received(agent, "talker") > 30
        finally:
            await echo.close()


def _band_powers(
    path: Path, start: float, end: float, band: tuple[float, float]
) -> tuple[float, float]:
    """(power inside, power outside) ``band`` (Hz) of a recording from ``start`` to ``end`` s."""
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64) / 32768
    x = pcm[int(start * 48000) : int(end * 48000)]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2 / len(x)
    freqs = np.fft.rfftfreq(len(x), 1 / 48000)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    return float(np.sum(spectrum[inside])), float(np.sum(spectrum[~inside]))


class _LateVisitor(ToneSource):
    """The visitor says nothing for ``after`` seconds, then hums at 440 Hz."""

    def __init__(self, after: float) -> None:
        super().__init__(440.0, 0.2)
        self.quiet_frames = int(after / 0.02)

    def _samples(self) -> np.ndarray:
        samples = super()._samples()
        if self.quiet_frames > 0:
            self.quiet_frames -= 1
            return np.zeros_like(samples)
        return samples


async def _door_call(tmp_path: Path, aec: bool) -> tuple[Path, dict[str, Any]]:
    """The user talks (babble) for 6 s; the visitor joins after 3.5 s. What the Echo got back."""
    door = SimulatedDoor(delay=0.08, visitor=_LateVisitor(3.5))
    settings = _settings(tmp_path, sink="speaker", talk="full", aec=aec)
    wav = tmp_path / f"echo-heard-{aec}.wav"
    async with CameraAgent(
        settings,
        signaling=False,
        preset="ultrafast",
        audio_source=door.microphone(),
        sink_factory=door.speaker,
    ) as agent:
        echo = EchoShow(
            discovery=_discovery(settings), utterance="talk", voice=BabbleSource(), wav_path=wav
        )
        await echo.watch(lambda offer: agent.handle_offer("talker", offer))
        try:
            assert echo.mode == "tap-to-talk"
            await asyncio.sleep(6.0)
            stats = agent.stats()
        finally:
            await echo.close()
    assert door.played > 4 * 48000  # the door's speaker played the user's voice
    return wav, stats


async def test_full_duplex_echo_canceller_removes_the_users_voice_from_the_door(
    tmp_path: Path,
) -> None:
    plain, _ = await _door_call(tmp_path, aec=False)
    cleaned, stats = await _door_call(tmp_path, aec=True)
    band = (380.0, 500.0)
    # Only the user talks (1.5-3 s): what comes back is the echo of their own voice.
    _, echo_plain = _band_powers(plain, 1.5, 3.0, band)
    _, echo_cleaned = _band_powers(cleaned, 1.5, 3.0, band)
    erle = 10 * math.log10(echo_plain / echo_cleaned)
    assert erle >= 20, (erle, stats)
    # Both talk (4.3-5.5 s): the visitor's voice goes through as loud as without the canceller.
    visitor_plain, _ = _band_powers(plain, 4.3, 5.5, band)
    visitor_cleaned, _ = _band_powers(cleaned, 4.3, 5.5, band)
    assert abs(10 * math.log10(visitor_cleaned / visitor_plain)) < 6, stats
    # The playback-to-capture delay was measured (the door's 80 ms), not assumed.
    assert stats["aec_delay_ms"] is not None and abs(stats["aec_delay_ms"] - 80) <= 5, stats


def test_lambda_reads_talk_from_cameras_json(caplog: pytest.LogCaptureFixture) -> None:
    """The skill in AWS (ALEXA_DOORBELL_CAMERAS, CamerasJson) says full duplex for talk "full"."""
    from alexa_doorbell.lambda_config import parse_cameras

    cams = parse_cameras(
        '[{"endpoint_id": "a", "talk": "full"}, {"endpoint_id": "b", "talk": "half"},'
        ' {"endpoint_id": "c", "talk": "none"}, {"endpoint_id": "d"},'
        ' {"endpoint_id": "e", "full_duplex": true}, {"endpoint_id": "f", "full_duplex": false}]'
    )
    assert [c.full_duplex for c in cams] == [True, False, False, False, True, False]
    assert "camera e: full_duplex is deprecated" in caplog.text
    with pytest.raises(ValueError, match="talk = 'both': must be one of full, half, none"):
        parse_cameras('[{"endpoint_id": "x", "talk": "both"}]')


def test_echo_reference_is_never_read_ahead_of_the_speaker() -> None:
    """A late first frame then a burst (a loaded machine): the far end is what was played."""
    import fractions

    import av

    from alexa_doorbell.camera.talk import OutgoingAudio, TalkbackHub

    t = [0.0]
    hub = TalkbackHub(clock=lambda: t[0])
    speaker = hub.stream("viewer")
    seen: list[np.ndarray] = []

    class Recorder:
        def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
            seen.append(far.copy())
            return mic

    out = OutgoingAudio("full", hub, Recorder(), clock=lambda: t[0])
    # Microphone frame n (captured by 20 ms after its start) is read 50 ms late at
    # first, then three come at once and the rest on time.
    reads = [0.07, 0.07, 0.07, 0.07] + [0.02 * (n + 1) + 0.001 for n in range(4, 40)]
    tick = 0
    for when in reads:
        while tick * 0.02 <= when:  # the speaker plays the voice as it arrives
            t[0] = tick * 0.02
            speaker.write(np.full(960, 1000, np.int16))
            tick += 1
        t[0] = when
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        frame.time_base = fractions.Fraction(1, 48000)
        out.process(frame)
    # Every reference is the played voice: none is read where nothing has played yet.
    assert all(np.all(far == 1000) for far in seen), [int(np.sum(f == 0)) for f in seen]
