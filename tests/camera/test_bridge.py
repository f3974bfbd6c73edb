"""The keyframe bridge: a viewer joining a passed-through camera mid-GOP gets the camera's
current picture as an IDR at once, and the camera's own stream from its next IDR."""

from __future__ import annotations

import fractions

import av
import pytest

from alexa_doorbell.camera.bridge import GopCache, KeyframeBridge
from alexa_doorbell.camera.h264 import AccessUnitWriter
from alexa_doorbell.camera.pattern import read_stamp
from tests.helpers.rtsp_server import Clip, encode_clip

TIME_BASE = fractions.Fraction(1, 90000)


@pytest.fixture(scope="module")
def long_gop() -> Clip:
    # A keyframe every 4 s at 15 fps, as many doorbells ship.
    return encode_clip(frames=130, gop=60, fps=15, width=320, height=240)


def _camera_packets(clip: Clip) -> list[av.Packet]:
    """The clip as the passthrough source yields it: SPS/PPS before every IDR."""
    writer = AccessUnitWriter()
    out = []
    for data, pts, key in clip.units:
        au, idr = writer.write(data)
        assert idr == key
        p = av.Packet(au)
        p.pts = p.dts = pts
        p.time_base = TIME_BASE
        p.is_keyframe = idr
        out.append(p)
    return out


def test_gop_cache_keeps_from_the_last_idr(long_gop: Clip) -> None:
    gop = GopCache(max_packets=100)
    packets = _camera_packets(long_gop)
    for p in packets[:10]:
        gop.add(p)
    assert gop.packets[0].is_keyframe and len(gop.packets) == 10 and not gop.at_keyframe
    for p in packets[10:61]:
        gop.add(p)
    assert len(gop.packets) == 1 and gop.at_keyframe  # packet 60 is the next IDR
    number = gop.number
    gop.clear()
    assert not gop.usable and gop.number == number + 1
    small = GopCache(max_packets=5)
    for p in packets[:7]:
        small.add(p)
    assert not small.usable  # too long a GOP to keep: a join waits for the camera's IDR


@pytest.mark.parametrize("join_at", [1, 17, 44, 59])
def test_a_join_mid_gop_starts_on_the_current_picture_and_switches_at_the_idr(
    long_gop: Clip, join_at: int
) -> None:
    packets = _camera_packets(long_gop)
    gop = GopCache()
    for p in packets[: join_at + 1]:
        gop.add(p)
    bridge = KeyframeBridge(320, 240, 15, bitrate=400_000, preset="ultrafast")
    picture = bridge.catch_up(gop)
    assert picture is not None
    stamp = read_stamp(picture.to_ndarray(format="gray"))
    assert stamp is not None and stamp.counter == join_at + 1  # the camera's picture now

    # What the new viewer receives: the bridge's IDR, its P-frames, then the camera.
    sent = [bytes(e.packet) for e in bridge.encode(picture, keyframe=True)]
    first_is_key = bridge.frames_encoded == 1
    for p in packets[join_at + 1 : 60]:
        gop.add(p)
        sent += [bytes(e.packet) for e in bridge.step(gop, encode=True)]
    camera_idr = packets[60]
    assert camera_idr.is_keyframe
    sent += [bytes(p) for p in packets[60:75]]

    viewer = av.CodecContext.create("h264", "r")
    counters = []
    for data in sent:
        for frame in viewer.decode(av.Packet(data)):  # raises on a decode error
            s = read_stamp(frame.to_ndarray(format="gray"))
            counters.append(s.counter if s else None)
    assert first_is_key
    assert counters == list(range(join_at + 1, 76))  # every picture, in order, readable
    assert bridge.decode_errors == 0
    assert bridge.frames_decoded == 60  # the GOP once: no picture decoded twice
    assert bridge.cpu_seconds > 0


def test_a_new_gop_starts_the_bridge_over(long_gop: Clip) -> None:
    packets = _camera_packets(long_gop)
    gop = GopCache()
    bridge = KeyframeBridge(320, 240, 15, bitrate=400_000, preset="ultrafast")
    for p in packets[:30]:
        gop.add(p)
    bridge.catch_up(gop)
    for p in packets[30:65]:
        gop.add(p)
    picture = bridge.catch_up(gop)  # from packet 60's IDR, not on from 30
    assert picture is not None
    stamp = read_stamp(picture.to_ndarray(format="gray"))
    assert stamp is not None and stamp.counter == 65
    assert bridge.frames_decoded == 30 + 5


def test_the_first_bridged_picture_is_as_legible_as_the_camera_s() -> None:
    """The join's IDR is made at constant quality (capped, 1 s of VBV): rate-controlled
    at a new path's start (half of 640x360's 300 kbit/s, 0.1 s of VBV) it came out too
    coarse for its stamp to be read (a viewer saw mush first)."""
    clip = encode_clip(frames=40, gop=60, fps=15, width=640, height=360)
    packets = _camera_packets(clip)
    gop = GopCache()
    for p in packets[:25]:
        gop.add(p)
    bridge = KeyframeBridge(640, 360, 15, bitrate=150_000, preset="veryfast")
    sent = bridge.step(gop, encode=True, keyframe=True)
    viewer = av.CodecContext.create("h264", "r")
    [first] = [f for e in sent for f in viewer.decode(av.Packet(bytes(e.packet)))]
    stamp = read_stamp(first.to_ndarray(format="gray"))
    assert stamp is not None and stamp.counter == 25
    assert sum(len(bytes(e.packet)) for e in sent) <= 150_000 / 8  # within the 1 s cap
