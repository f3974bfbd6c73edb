"""The motion hold and the detection cooldown, as tables of inputs and the events they make."""

from __future__ import annotations

import pytest

from alexa_doorbell.notifier.debounce import (
    DETECTED,
    NOT_DETECTED,
    DetectionCooldown,
    MotionChange,
    MotionHold,
)

CAM = "front-door"


def run(hold: float, steps: list[tuple[float, str]], until: float) -> list[tuple[str, float]]:
    """Feed (time, "on"|"off"|"pulse"|"tick") steps; then expire at ``until``."""
    h = MotionHold(hold)
    out: list[MotionChange] = []
    for now, what in steps:
        if what == "pulse":
            out += h.pulse(CAM, now)
        elif what == "tick":
            out += h.expire(now)
        else:
            out += h.motion(CAM, what == "on", now)
    out += h.expire(until)
    assert all(c.endpoint_id == CAM for c in out)
    return [(c.state, c.at) for c in out]


@pytest.mark.parametrize(
    ("case", "hold", "steps", "until", "expected"),
    [
        ("nothing happens", 30, [], 100, []),
        ("off before any on is silent", 30, [(0, "off"), (5, "off")], 100, []),
        (
            "one stretch of motion",
            30,
            [(0, "on"), (10, "off")],
            100,
            [(DETECTED, 0), (NOT_DETECTED, 40)],
        ),
        ("still within the hold", 30, [(0, "on"), (10, "off")], 39.9, [(DETECTED, 0)]),
        ("motion that never ends", 30, [(0, "on")], 1000, [(DETECTED, 0)]),
        (
            "repeated on is one DETECTED",
            30,
            [(0, "on"), (1, "on"), (2, "on"), (3, "off")],
            100,
            [(DETECTED, 0), (NOT_DETECTED, 33)],
        ),
        (
            "a repeated off does not push the end out",
            30,
            [(0, "on"), (10, "off"), (20, "off"), (35, "off")],
            100,
            [(DETECTED, 0), (NOT_DETECTED, 40)],
        ),
        (
            "on again within the hold cancels the end",
            30,
            [(0, "on"), (10, "off"), (25, "on"), (26, "off")],
            100,
            [(DETECTED, 0), (NOT_DETECTED, 56)],
        ),
        (
            "two stretches further apart than the hold are two pairs",
            30,
            [(0, "on"), (1, "off"), (100, "on"), (101, "off")],
            200,
            [(DETECTED, 0), (NOT_DETECTED, 31), (DETECTED, 100), (NOT_DETECTED, 131)],
        ),
        (
            "the end is dated when the hold ran out, not when expire ran",
            30,
            [(0, "on"), (1, "off"), (500, "tick")],
            600,
            [(DETECTED, 0), (NOT_DETECTED, 31)],
        ),
        (
            "no expire call between stretches: the end still comes first",
            30,
            [(0, "on"), (1, "off"), (100, "on")],
            200,
            [(DETECTED, 0), (NOT_DETECTED, 31), (DETECTED, 100)],
        ),
        (
            "pulses keep motion on until hold after the last",
            30,
            [(0, "pulse"), (20, "pulse"), (45, "pulse")],
            200,
            [(DETECTED, 0), (NOT_DETECTED, 75)],
        ),
        (
            "hold 0: off ends motion at once",
            0,
            [(0, "on"), (5, "off")],
            5,
            [(DETECTED, 0), (NOT_DETECTED, 5)],
        ),
        ("hold 0 pulse", 0, [(7, "pulse")], 7, [(DETECTED, 7), (NOT_DETECTED, 7)]),
        (
            "clock set back during the hold: counted from the new time",
            30,
            [(1000, "on"), (1001, "off"), (10, "tick")],
            100,
            [(DETECTED, 1000), (NOT_DETECTED, 40)],
        ),
    ],
)
def test_motion_hold(case, hold, steps, until, expected):
    assert run(hold, steps, until) == expected, case


def test_flapping_sends_one_pair_not_fifty():
    h = MotionHold(hold=30)
    changes: list[MotionChange] = []
    for i in range(50):  # on/off every half second for 50 s
        changes += h.motion(CAM, True, i * 1.0)
        changes += h.motion(CAM, False, i * 1.0 + 0.5)
        changes += h.expire(i * 1.0 + 0.75)
    assert [(c.state, c.at) for c in changes] == [(DETECTED, 0.0)]
    assert h.state(CAM) == DETECTED
    assert h.next_expiry() == 49.5 + 30
    changes += h.expire(49.5 + 30)
    assert [(c.state, c.at) for c in changes] == [(DETECTED, 0.0), (NOT_DETECTED, 79.5)]
    assert h.state(CAM) == NOT_DETECTED and h.next_expiry() is None


def test_cameras_are_independent_and_expire_in_order():
    h = MotionHold(hold=10)
    assert [c.state for c in h.motion("a", True, 0)] == [DETECTED]
    assert [c.state for c in h.motion("b", True, 1)] == [DETECTED]
    assert h.motion("b", False, 2) == [] and h.motion("a", False, 5) == []
    assert h.next_expiry() == 12
    assert [(c.endpoint_id, c.at) for c in h.expire(20)] == [("b", 12), ("a", 15)]
    assert h.state("never-seen") == NOT_DETECTED


def test_seeded_detected_after_a_restart_ends_without_input():
    h = MotionHold(hold=30)
    h.seed(CAM, DETECTED, now=100)
    assert h.state(CAM) == DETECTED
    assert h.motion(CAM, True, 110) == []  # motion goes on: no second DETECTED
    assert h.motion(CAM, False, 120) == []
    assert [(c.state, c.at) for c in h.expire(200)] == [(NOT_DETECTED, 150)]
    h.seed("garage", DETECTED, now=100)
    assert [(c.endpoint_id, c.at) for c in h.expire(130)] == [("garage", 130)]
    h.seed("porch", NOT_DETECTED, now=100)
    assert h.expire(1000) == [] and h.state("porch") == NOT_DETECTED
    with pytest.raises(ValueError):
        h.seed(CAM, "MAYBE", now=0)
    with pytest.raises(ValueError):
        MotionHold(hold=-1)


@pytest.mark.parametrize(
    ("case", "cooldown", "sightings", "announced"),
    [
        ("first sighting", 120, [(0, "person")], [True]),
        (
            "a person standing two minutes, seen every 5 s, is one announcement",
            120,
            [(t, "person") for t in range(0, 125, 5)],
            [True] + [False] * 24,
        ),
        (
            "ten minutes at the door, reported every second: still one",
            120,
            [(t, "person") for t in range(600)],
            [True] + [False] * 599,
        ),
        (
            "back after the cooldown of quiet: announced again",
            120,
            [(0, "person"), (30, "person"), (150, "person"), (269.9, "person"), (400, "person")],
            [True, False, True, False, True],
        ),
        ("exactly the cooldown later", 60, [(0, "person"), (60, "person")], [True, True]),
        (
            "classes are independent",
            120,
            [(0, "person"), (1, "package"), (2, "person"), (3, "package")],
            [True, True, False, False],
        ),
        ("cooldown 0 announces every sighting", 0, [(0, "person"), (0, "person")], [True, True]),
        (
            "a small clock skew backwards is not a new visit",
            120,
            [(1000, "person"), (995, "person"), (1010, "person")],
            [True, False, False],
        ),
        (
            "a clock set back an hour does not silence the door",
            120,
            [(5000, "person"), (1400, "person"), (1410, "person")],
            [True, True, False],
        ),
    ],
)
def test_detection_cooldown(case, cooldown, sightings, announced):
    c = DetectionCooldown(cooldown)
    assert [c.sighting(CAM, cls, t) for t, cls in sightings] == announced, case


def test_cooldown_is_per_camera():
    c = DetectionCooldown(120)
    assert c.sighting("front-door", "person", 0)
    assert c.sighting("garage", "person", 1)
    assert not c.sighting("front-door", "person", 2)
    assert c.quiet_for("front-door", "person", 10) == 8
    assert c.quiet_for("front-door", "package", 10) is None
    with pytest.raises(ValueError):
        DetectionCooldown(cooldown=float("nan"))
