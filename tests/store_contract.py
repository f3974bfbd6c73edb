"""The behaviour every Store must have, as a reusable test class.

A backend joins by subclassing with a ``store`` fixture, and a ``connect`` fixture
that opens another client of the same storage (what another process would hold)::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(...)
            yield s
            s.close()

        @pytest.fixture
        def connect(self, store):
            return lambda: MyStore(...)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from alexa_doorbell.store.base import (
    ConflictError,
    DetectionClasses,
    Device,
    EventRecord,
    Health,
    Motion,
    RtcSession,
    Store,
    Tokens,
)


def make_tokens(user: str = "amzn1.account.A", n: int = 1, **kw) -> Tokens:
    return Tokens(
        user_id=user,
        access_token=f"Atza|access-{n}",
        refresh_token=f"Atzr|refresh-{n}",
        expires_at=1_800_000_000.0 + n,
        **kw,
    )


class StoreContract:
    # -- tokens ----------------------------------------------------------
    def test_tokens_round_trip_and_versions(self, store: Store):
        assert store.get_tokens("nobody") is None
        saved = store.put_tokens(make_tokens(region="EU", last_gateway_status="202"))
        assert saved.version == 1
        got = store.get_tokens("amzn1.account.A")
        assert got == saved
        assert got.region == "EU" and got.last_gateway_status == "202"
        again = store.put_tokens(got.with_(access_token="Atza|new", relink_needed=True))
        assert again.version == 2
        got = store.get_tokens("amzn1.account.A")
        assert got.access_token == "Atza|new" and got.relink_needed is True
        assert got.refresh_token == "Atzr|refresh-1"

    def test_conditional_write(self, store: Store):
        first = store.put_tokens(make_tokens(), expected_version=0)  # 0 = must not exist yet
        with pytest.raises(ConflictError):
            store.put_tokens(make_tokens(n=2), expected_version=0)
        second = store.put_tokens(make_tokens(n=2), expected_version=first.version)
        with pytest.raises(ConflictError):
            store.put_tokens(make_tokens(n=3), expected_version=first.version)  # stale
        assert store.get_tokens(first.user_id).access_token == "Atza|access-2"
        assert store.get_tokens(first.user_id).version == second.version

    def test_conditional_write_race_has_one_winner(self, store: Store):
        base = store.put_tokens(make_tokens())
        wins: list[int] = []
        conflicts: list[int] = []
        barrier = threading.Barrier(4)

        def writer(i: int) -> None:
            barrier.wait()
            try:
                store.put_tokens(make_tokens(n=10 + i), expected_version=base.version)
                wins.append(i)
            except ConflictError:
                conflicts.append(i)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1 and len(conflicts) == 3
        assert store.get_tokens(base.user_id).access_token == f"Atza|access-{10 + wins[0]}"

    def test_list_and_delete_tokens(self, store: Store):
        store.put_tokens(make_tokens("u2"))
        store.put_tokens(make_tokens("u1"))
        assert sorted(t.user_id for t in store.list_tokens()) == ["u1", "u2"]
        store.delete_tokens("u1")
        store.delete_tokens("never-there")
        assert [t.user_id for t in store.list_tokens()] == ["u2"]

    def test_tokens_repr_is_redacted(self, store: Store):
        saved = store.put_tokens(make_tokens())
        assert "Atza|" not in repr(saved) and "Atzr|" not in str(saved)

    # -- devices ---------------------------------------------------------
    def test_devices(self, store: Store):
        bell = Device(
            "front-door",
            "Front Door",
            "front-door",
            "Doorbell",
            "acme",
            "arn:aws:kinesisvideo:us-east-1:1:channel/front-door/1",
            True,
            True,
            "u1",
        )
        cam = Device("garage", "Garage", "garage")
        store.put_device(bell)
        store.put_device(cam)
        assert store.get_device("front-door") == bell
        assert store.get_device("garage") == cam
        assert store.get_device("nope") is None
        assert [d.endpoint_id for d in store.list_devices()] == ["front-door", "garage"]
        store.put_device(Device("garage", "Garage 2", "garage"))
        assert store.get_device("garage").friendly_name == "Garage 2"
        store.delete_device("garage")
        assert [d.endpoint_id for d in store.list_devices()] == ["front-door"]

    def test_devices_with_motion_and_detection(self, store: Store):
        cam = Device(
            "porch", "Porch", "porch", motion=True, detection_classes=("person", "package")
        )
        store.put_device(cam)
        got = store.get_device("porch")
        assert got == cam and got.detection_classes == ("person", "package") and got.motion
        # Equal after a round trip: seeding the catalog writes only on change.
        assert store.list_devices() == [cam]
        store.put_device(Device("porch", "Porch", "porch"))
        got = store.get_device("porch")
        assert not got.motion and got.detection_classes == ()

    # -- motion and object detection --------------------------------------
    def test_motion(self, store: Store):
        assert store.get_motion("porch") is None
        store.put_motion(Motion("porch", "DETECTED", 1000.0))
        store.put_motion(Motion("garage", "DETECTED", 1000.5))
        store.put_motion(Motion("porch", "NOT_DETECTED", 1030.0))
        assert store.get_motion("porch") == Motion("porch", "NOT_DETECTED", 1030.0)
        assert store.get_motion("garage").state == "DETECTED"

    def test_detection_classes_per_user_and_camera(self, store: Store):
        assert store.get_detection_classes("u1", "porch") is None  # never chosen
        store.put_detection_classes(DetectionClasses("u1", "porch", ("person", "package"), 1.0))
        store.put_detection_classes(DetectionClasses("u2", "porch", ("package",), 2.0))
        store.put_detection_classes(DetectionClasses("u1", "garage", (), 3.0))  # all off
        assert store.get_detection_classes("u1", "porch") == DetectionClasses(
            "u1", "porch", ("person", "package"), 1.0
        )
        assert store.get_detection_classes("u2", "porch").classes == ("package",)
        assert store.get_detection_classes("u1", "garage") == DetectionClasses(
            "u1", "garage", (), 3.0
        )
        assert store.get_detection_classes("u2", "garage") is None
        store.put_detection_classes(DetectionClasses("u1", "porch", ("person",), 4.0))
        assert store.get_detection_classes("u1", "porch").classes == ("person",)

    # -- sessions --------------------------------------------------------
    def test_sessions(self, store: Store):
        now = time.time()
        store.put_session(RtcSession("s1", "front-door", "OFFERED", now - 10))
        store.put_session(RtcSession("s2", "front-door", "CONNECTED", now - 5))
        store.put_session(RtcSession("s3", "garage", "OFFERED", now))
        store.put_session(RtcSession("s1", "front-door", "DISCONNECTED", now))
        assert store.get_session("s1").state == "DISCONNECTED"
        assert store.get_session("zz") is None
        ids = [s.session_id for s in store.list_sessions("front-door")]
        assert ids == ["s2", "s1"]  # oldest update first
        assert [s.session_id for s in store.list_sessions("front-door", since=now - 1)] == ["s1"]

    # -- health ----------------------------------------------------------
    def test_health(self, store: Store):
        assert store.get_health("front-door") is None
        store.put_health(Health("front-door", "OK", 1000.0))
        store.put_health(Health("front-door", "UNREACHABLE", 1001.0))
        got = store.get_health("front-door")
        assert got == Health("front-door", "UNREACHABLE", 1001.0)

    # -- event records ---------------------------------------------------
    def test_event_records_newest_first(self, store: Store):
        for i in range(5):
            store.add_event_record(
                EventRecord(100.0 + i, "u", "front-door", "DoorbellPress", "202", f"#{i}")
            )
        recent = store.recent_event_records(limit=3)
        assert [r.detail for r in recent] == ["#4", "#3", "#2"]
        assert store.recent_event_records(limit=0) == []

    # -- press claims ----------------------------------------------------
    def test_press_claim_holds_for_the_window(self, store: Store):
        assert store.claim_press("front-door", "a", at=1000.0, window=5.0)
        assert not store.claim_press("front-door", "b", at=1004.9, window=5.0)
        assert store.claim_press("side-door", "c", at=1001.0, window=5.0)  # per doorbell
        assert store.claim_press("front-door", "d", at=1005.0, window=5.0)  # window over
        assert not store.claim_press("front-door", "e", at=1009.0, window=5.0)  # d holds now
        assert store.claim_press("front-door", "f", at=1009.0, window=0.0)  # no window

    def test_release_frees_only_its_own_claim(self, store: Store):
        assert store.claim_press("front-door", "a", at=1000.0, window=5.0)
        assert not store.release_press("front-door", "someone-else")
        assert not store.claim_press("front-door", "b", at=1001.0, window=5.0)
        assert store.release_press("front-door", "a")
        assert not store.release_press("front-door", "a")  # already free
        assert store.claim_press("front-door", "b", at=1001.0, window=5.0)
        # b's claim ran out and c took the slot: b's late release leaves c's claim alone.
        assert store.claim_press("front-door", "c", at=1010.0, window=5.0)
        assert not store.release_press("front-door", "b")
        assert not store.claim_press("front-door", "d", at=1011.0, window=5.0)
        assert not store.release_press("never-pressed", "x")

    def test_clock_set_back_does_not_silence_the_doorbell(self, store: Store):
        assert store.claim_press("front-door", "a", at=5000.0, window=5.0)
        assert not store.claim_press("front-door", "b", at=4996.0, window=5.0)  # slight skew
        assert store.claim_press("front-door", "c", at=1400.0, window=5.0)  # an hour back

    def test_detection_claim_is_one_announcement_per_visit(self, store: Store):
        claim = store.claim_detection
        assert claim("front-door", "person", at=1000.0, cooldown=120.0)
        assert not claim("front-door", "person", at=1060.0, cooldown=120.0)  # still there
        assert not claim("front-door", "person", at=1170.0, cooldown=120.0)  # 110 s after
        assert claim("front-door", "package", at=1170.0, cooldown=120.0)  # classes apart
        assert claim("side-door", "person", at=1170.0, cooldown=120.0)  # cameras apart
        assert not claim("front-door", "person", at=1100.0, cooldown=120.0)  # late, older
        assert claim("front-door", "person", at=1290.0, cooldown=120.0)  # 120 s unseen
        assert claim("front-door", "person", at=200.0, cooldown=120.0)  # clock set back
        assert not claim("front-door", "person", at=201.0, cooldown=120.0)

    def test_detection_claim_race_has_one_winner(self, store: Store, connect: Callable[[], Store]):
        clients = [connect() for _ in range(8)]
        barrier = threading.Barrier(len(clients))
        won: list[int] = []

        def claim(i: int) -> None:
            barrier.wait()
            if clients[i].claim_detection("front-door", "person", at=3000.0 + i, cooldown=60):
                won.append(i)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        try:
            assert len(won) == 1, won
            assert not store.claim_detection("front-door", "person", at=3060.0, cooldown=60)
        finally:
            for c in clients:
                c.close()

    def test_press_claim_race_has_one_winner(self, store: Store, connect: Callable[[], Store]):
        """Eight clients (eight processes' worth of connections) claim at the same instant."""
        clients = [connect() for _ in range(8)]
        barrier = threading.Barrier(len(clients))
        won: list[str] = []

        def claim(i: int) -> None:
            barrier.wait()
            if clients[i].claim_press("front-door", f"claim-{i}", at=2000.0 + i / 100, window=5.0):
                won.append(f"claim-{i}")

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        try:
            assert len(won) == 1, won
            assert not store.claim_press("front-door", "late", at=2001.0, window=5.0)
            assert store.release_press("front-door", won[0])  # the winner's id was stored
        finally:
            for c in clients:
                c.close()
