"""The notifier against the local cloud: real LWA and event gateway emulators over HTTP,
real SQLite. Every message sent toward Alexa is checked against Amazon's schema."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.notifier.lambda_handler import handle
from alexa_doorbell.notifier.state_report import EventSender, GatewayPool
from alexa_doorbell.store.base import Device, Health
from tests import directives as D

USER = "amzn1.account.NOTIFY"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Sent:
    """Every message the notifier hands to the gateway, schema-checked at the end."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)

    def names(self) -> list[str]:
        return [m["event"]["header"]["name"] for m in self.messages]


@pytest.fixture
def sent() -> Iterator[Sent]:
    s = Sent()
    yield s
    for m in s.messages:
        if m["event"]["header"]["name"] == "DeleteReport":
            continue  # not in the official schema file: checked in test_alexa_messages
        assert schema_errors(m) == [], m


def link(cloud: CloudThread, user_id: str = USER) -> None:
    """The real linking flow: the LWA emulator's link step, then AcceptGrant through the skill."""
    who = cloud.cloud.lwa.link(user_id)
    skill = build_skill(cloud.settings)
    reply = skill.handle(D.accept_grant(who["code"], who["access_token"]))
    assert reply["event"]["header"]["name"] == "AcceptGrant.Response", reply
    skill.store.close()


def make_notifier(cloud: CloudThread, sent: Sent, **options: Any) -> EventSender:
    n = EventSender.from_config(cloud.settings.lambda_config())
    n.gateway = GatewayPool(cloud.settings.local.url, retry_delay=0.02, max_delay=0.1)
    n.on_message = sent
    n.debounce = options.pop("debounce", 0.0)
    for key, value in options.items():
        setattr(n, key, value)
    return n


@pytest.fixture
def notifier(cloud: CloudThread, sent: Sent) -> Iterator[EventSender]:
    link(cloud)
    n = make_notifier(cloud, sent)
    yield n
    n.close()


def expire_everywhere(cloud: CloudThread, n: EventSender, user_id: str = USER) -> None:
    """The stored access token is past its expiry, and LWA no longer accepts it."""
    t = n.store.get_tokens(user_id)
    n.store.put_tokens(t.with_(expires_at=time.time() - 10))
    cloud.cloud.lwa.expire_access_tokens(user_id)


def lwa_calls(cloud: CloudThread) -> int:
    return cloud.cloud.lwa.token_requests


# -- the happy path ------------------------------------------------------------------
def test_press_is_accepted_recorded_and_valid(cloud, notifier, sent):
    before = notifier.store.get_tokens(USER)
    [out] = notifier.press("front-door")
    assert (out.ok, out.status, out.user_id) == (True, "202", USER), out
    [msg] = cloud.cloud.gateway.wait_for("DoorbellPress")
    assert msg == sent.messages[0]
    assert schema_errors(msg) == []
    event = msg["event"]
    assert event["endpoint"]["endpointId"] == "front-door"
    assert event["endpoint"]["scope"]["token"] == before.access_token
    assert event["payload"]["cause"] == {"type": "PHYSICAL_INTERACTION"}
    assert TIMESTAMP.match(event["payload"]["timestamp"])
    [rec] = notifier.store.recent_event_records()
    assert (rec.name, rec.endpoint_id, rec.status, rec.user_id) == (
        "DoorbellPress",
        "front-door",
        "202",
        USER,
    )
    after = notifier.store.get_tokens(USER)
    assert after.last_gateway_status == "202"
    assert after.access_token == before.access_token  # cached token: no refresh
    assert not after.relink_needed


def test_press_cause_and_default_doorbell(cloud, notifier, sent):
    [out] = notifier.press(cause="APP_INTERACTION")
    assert out.ok and out.endpoint_id == "front-door"
    assert sent.messages[0]["event"]["payload"]["cause"]["type"] == "APP_INTERACTION"
    with pytest.raises(ValueError):
        notifier.press("front-door", cause="DOORBELL")


def test_unknown_endpoint_not_a_doorbell_and_nobody_linked(cloud, sent):
    n = make_notifier(cloud, sent)
    [out] = n.press("front-door")
    assert (out.ok, out.status) == (False, "not linked")
    assert "link" in out.detail
    assert n.store.recent_event_records()[0].status == "not linked"
    [out] = n.press("back-door")
    assert (out.ok, out.status) == (False, "unknown endpoint") and "front-door" in out.detail
    n.store.put_device(Device("porch-cam", "Porch", "porch-cam", doorbell=False))
    [out] = n.press("porch-cam")
    assert out.status == "not a doorbell"
    assert sent.messages == [] and cloud.cloud.gateway.requests == 0
    n.close()


# -- tokens -----------------------------------------------------------------------------
def test_expired_token_is_refreshed_once_for_concurrent_presses(cloud, notifier, sent):
    expire_everywhere(cloud, notifier)
    old = notifier.store.get_tokens(USER)
    calls = lwa_calls(cloud)
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def ring() -> None:
        barrier.wait()
        results.extend(notifier.press("front-door"))

    threads = [threading.Thread(target=ring) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [o.status for o in results] == ["202"] * 8, results
    assert lwa_calls(cloud) - calls == 1
    new = notifier.store.get_tokens(USER)
    assert new.access_token != old.access_token
    assert new.refresh_token == old.refresh_token  # LWA kept it; so do we
    assert new.expires_at > time.time() + 60
    assert new.last_refresh_at and new.last_refresh_at > old.last_refresh_at
    assert len(cloud.cloud.gateway.wait_for("DoorbellPress", 8)) == 8
    assert {m["event"]["endpoint"]["scope"]["token"] for m in sent.messages} == {new.access_token}


def test_two_notifiers_on_one_store_store_one_refresh(cloud, notifier, sent):
    """Another process (here: another EventSender with its own lock) refreshing at the same
    time: the conditional write keeps one result and the loser adopts it."""
    other = make_notifier(cloud, sent)
    expire_everywhere(cloud, notifier)
    stale = notifier.store.get_tokens(USER)
    got: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def refresh(name: str, n: EventSender) -> None:
        barrier.wait()
        got[name] = n.tokens_for(USER)

    threads = [
        threading.Thread(target=refresh, args=(k, n)) for k, n in (("a", notifier), ("b", other))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    stored = notifier.store.get_tokens(USER)
    assert got["a"].access_token == got["b"].access_token == stored.access_token
    assert stored.access_token != stale.access_token
    assert stored.refresh_token == stale.refresh_token
    other.store.close()


def test_losing_the_conditional_write_adopts_the_stored_refresh(cloud, notifier, sent):
    """Deterministic interleaving: while our LWA call is in flight, another process
    refreshes and stores first; our write then conflicts and we use theirs."""
    other = make_notifier(cloud, sent)
    expire_everywhere(cloud, notifier)
    stale = notifier.store.get_tokens(USER)
    real_refresh = notifier.lwa.refresh
    theirs: list[Any] = []

    def refresh_while_another_process_wins(refresh_token: str) -> Any:
        theirs.append(other.tokens_for(USER))  # the other process stores its refresh
        return real_refresh(refresh_token)

    notifier.lwa.refresh = refresh_while_another_process_wins
    calls = lwa_calls(cloud)
    ours = notifier.tokens_for(USER)
    stored = notifier.store.get_tokens(USER)
    assert lwa_calls(cloud) - calls == 2
    assert ours.access_token == theirs[0].access_token == stored.access_token
    assert stored.access_token != stale.access_token
    assert stored.version == stale.version + 1  # one refresh stored, not two
    [out] = notifier.press("front-door")
    assert out.ok, out
    other.store.close()


def test_gateway_401_refreshes_and_retries_once(cloud, notifier, sent):
    before = notifier.store.get_tokens(USER)
    calls = lwa_calls(cloud)
    cloud.cloud.gateway.add_fault(401, count=1)
    [out] = notifier.press("front-door")
    assert out.ok and out.status == "202", out
    assert lwa_calls(cloud) - calls == 1
    assert notifier.store.get_tokens(USER).access_token != before.access_token
    assert len(sent.messages) == 2  # the first try and the retry
    assert sent.messages[1]["event"]["endpoint"]["scope"]["token"] != before.access_token


def test_gateway_401_for_a_revoked_access_token(cloud, notifier, sent):
    """The store still believes the token is good; the gateway says otherwise."""
    cloud.cloud.lwa.expire_access_tokens(USER)
    [out] = notifier.press("front-door")
    assert out.ok and out.status == "202", out
    assert cloud.cloud.gateway.wait_for("DoorbellPress")


def test_gateway_401_twice_gives_up_after_one_refresh(cloud, notifier, sent):
    calls = lwa_calls(cloud)
    cloud.cloud.gateway.add_fault(401, count=2)
    [out] = notifier.press("front-door")
    assert (out.ok, out.status) == (False, "401 INVALID_ACCESS_TOKEN_EXCEPTION"), out
    assert lwa_calls(cloud) - calls == 1
    assert cloud.cloud.gateway.requests == 2
    assert not notifier.store.get_tokens(USER).relink_needed


def test_lwa_invalid_grant_marks_relink_needed_and_keeps_the_token(cloud, notifier, sent):
    expire_everywhere(cloud, notifier)
    before = notifier.store.get_tokens(USER)
    cloud.cloud.lwa.add_fault(400, "invalid_grant")
    [out] = notifier.press("front-door")
    assert (out.ok, out.status, out.relink_needed) == (False, "relink needed", True), out
    assert "relink" in out.detail and "invalid_grant" in out.detail
    after = notifier.store.get_tokens(USER)
    assert after.relink_needed
    assert after.refresh_token == before.refresh_token
    assert cloud.cloud.gateway.requests == 0
    # Nothing is guessed afterwards: no LWA or gateway call until the user relinks.
    calls = lwa_calls(cloud)
    [again] = notifier.press("front-door")
    assert again.status == "relink needed"
    assert lwa_calls(cloud) == calls and cloud.cloud.gateway.requests == 0
    link(cloud)  # AcceptGrant stores new tokens and clears the flag
    [ok] = notifier.press("front-door")
    assert ok.ok, ok


def test_revoked_refresh_token_is_invalid_grant(cloud, notifier, sent):
    expire_everywhere(cloud, notifier)
    cloud.cloud.lwa.revoke(USER)
    [out] = notifier.press("front-door")
    assert out.status == "relink needed"
    assert notifier.store.get_tokens(USER).relink_needed


def test_lwa_5xx_keeps_the_refresh_token_and_a_later_press_succeeds(cloud, notifier, sent):
    expire_everywhere(cloud, notifier)
    before = notifier.store.get_tokens(USER)
    cloud.cloud.lwa.add_fault(503, count=2)  # the LWA client retries once
    [out] = notifier.press("front-door")
    assert (out.ok, out.status, out.relink_needed) == (False, "refresh failed", False), out
    assert "kept" in out.detail
    after = notifier.store.get_tokens(USER)
    assert (after.refresh_token, after.relink_needed) == (before.refresh_token, False)
    assert notifier.store.recent_event_records()[0].status == "refresh failed"
    [ok] = notifier.press("front-door")
    assert ok.ok, ok
    assert notifier.store.get_tokens(USER).refresh_token == before.refresh_token


# -- gateway faults ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "THROTTLING_EXCEPTION"),
        (500, "INTERNAL_SERVICE_EXCEPTION"),
        (503, "SERVICE_UNAVAILABLE_EXCEPTION"),
    ],
)
def test_transient_faults_are_retried_with_backoff(cloud, notifier, sent, status, code):
    cloud.cloud.gateway.add_fault(status, count=2)
    [out] = notifier.press("front-door")
    assert out.ok and out.status == "202" and "3 attempts" in out.detail, out
    assert cloud.cloud.gateway.requests == 3
    cloud.cloud.gateway.add_fault(status, count=10)
    [out] = notifier.press("front-door")
    assert (out.ok, out.status) == (False, f"{status} {code}"), out
    assert cloud.cloud.gateway.requests == 3 + 4  # one try and three retries
    tokens = notifier.store.get_tokens(USER)
    assert tokens.last_gateway_status == f"{status} {code}" and not tokens.relink_needed


def test_default_retries_are_at_least_a_second_apart(cloud, notifier, sent):
    notifier.gateway = GatewayPool(cloud.settings.local.url)
    cloud.cloud.gateway.add_fault(503, count=1)
    started = time.monotonic()
    [out] = notifier.press("front-door")
    assert out.ok
    assert 1.0 <= time.monotonic() - started < 3.0


@pytest.mark.parametrize("code", ["SKILL_DISABLED_EXCEPTION", "SKILL_NEVER_ENABLED_EXCEPTION"])
def test_gateway_403_marks_relink_needed(cloud, notifier, sent, code):
    cloud.cloud.gateway.add_fault(403, code)
    [out] = notifier.press("front-door")
    assert (out.ok, out.status, out.relink_needed) == (False, f"403 {code}", True), out
    assert "relink" in out.detail
    assert cloud.cloud.gateway.requests == 1  # no retry: only the user can fix it
    tokens = notifier.store.get_tokens(USER)
    assert tokens.relink_needed and tokens.last_gateway_status == f"403 {code}"
    rec = notifier.store.recent_event_records()[0]
    assert rec.status == f"403 {code}" and "relink" in rec.detail


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "INVALID_REQUEST_EXCEPTION"), (413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION")],
)
def test_gateway_400_413_give_a_clear_error(cloud, notifier, sent, status, code):
    cloud.cloud.gateway.add_fault(status, code)
    [out] = notifier.press("front-door")
    assert (out.ok, out.status) == (False, f"{status} {code}"), out
    assert "Injected fault" in out.detail  # the gateway's own description
    assert "will not help" in out.detail
    assert cloud.cloud.gateway.requests == 1
    assert not notifier.store.get_tokens(USER).relink_needed


def test_gateway_unreachable(cloud, notifier, sent):
    notifier.gateway = GatewayPool("http://127.0.0.1:9", retry_delay=0.01, timeout=0.5)
    [out] = notifier.press("front-door")
    assert (out.ok, out.status) == (False, "unreachable"), out
    assert "try again later" in out.detail


# -- debounce ------------------------------------------------------------------------------
def test_presses_within_the_window_send_one_event(cloud, notifier, sent):
    notifier.debounce = 5.0
    notifier.store.put_device(Device("side-door", "Side Door", "side-door", doorbell=True))
    outs = [notifier.press("front-door")[0] for _ in range(3)]
    assert [o.status for o in outs] == ["202", "debounced", "debounced"]
    assert notifier.press("side-door")[0].status == "202"  # per doorbell
    # Another process sharing the store sees the recorded press too.
    other = make_notifier(cloud, sent, debounce=5.0)
    assert other.press("front-door")[0].status == "debounced"
    other.store.close()
    assert len(cloud.cloud.gateway.messages("DoorbellPress")) == 2


def test_a_failed_press_does_not_block_the_next_one(cloud, notifier, sent):
    notifier.debounce = 5.0
    cloud.cloud.gateway.add_fault(400)
    assert notifier.press("front-door")[0].status.startswith("400")
    assert notifier.press("front-door")[0].status == "202"


def test_debounce_window_expires(cloud, notifier, sent):
    notifier.debounce = 0.3
    assert notifier.press("front-door")[0].status == "202"
    assert notifier.press("front-door")[0].status == "debounced"
    time.sleep(0.35)
    assert notifier.press("front-door")[0].status == "202"


# -- health and catalog ---------------------------------------------------------------------
def test_health_sends_change_reports_only_on_change(cloud, notifier, sent):
    gw = cloud.cloud.gateway
    assert notifier.health("front-door", "OK")[0].status == "202"
    assert notifier.health("front-door", "OK")[0].status == "unchanged"  # heartbeat
    assert notifier.health("front-door", "UNREACHABLE")[0].status == "202"
    reports = gw.wait_for("ChangeReport", 2)
    values = [m["event"]["payload"]["change"]["properties"][0]["value"]["value"] for m in reports]
    assert values == ["OK", "UNREACHABLE"]
    assert notifier.store.get_health("front-door").connectivity == "UNREACHABLE"
    for m in reports:
        assert schema_errors(m) == []
        assert m["event"]["endpoint"]["endpointId"] == "front-door"
        prop = m["event"]["payload"]["change"]["properties"][0]
        assert prop["namespace"] == "Alexa.EndpointHealth" and TIMESTAMP.match(prop["timeOfSample"])


def test_stale_heartbeat_counts_as_unreachable(cloud, notifier, sent):
    # The agent died without a word; Alexa's ReportState already says UNREACHABLE.
    notifier.store.put_health(Health("front-door", "OK", time.time() - 3600))
    assert notifier.health("front-door", "OK")[0].status == "202"
    assert notifier.health("front-door", "UNREACHABLE")[0].status == "202"
    # Nothing recorded yet means UNREACHABLE too: a first UNREACHABLE is no change.
    notifier.store.put_device(Device("garage", "Garage", "garage"))
    assert notifier.health("garage", "UNREACHABLE")[0].status == "unchanged"
    with pytest.raises(ValueError):
        notifier.health("front-door", "DOWN")


def test_sweep_reports_cameras_that_went_silent_once(cloud, notifier, sent):
    gw = cloud.cloud.gateway
    assert notifier.health("front-door", "OK")[0].status == "202"
    assert notifier.sweep() == []  # fresh heartbeat: nothing to say
    # Power cut: no goodbye, the heartbeat goes stale.
    notifier.store.put_health(Health("front-door", "OK", time.time() - 3600))
    reply = handle(notifier, {"action": "sweep"})  # as the scheduled Lambda call does
    assert reply["ok"] and [(r["endpoint_id"], r["status"]) for r in reply["results"]] == [
        ("front-door", "202")
    ]
    assert notifier.store.get_health("front-door").connectivity == "UNREACHABLE"
    assert notifier.sweep() == []  # reported once
    reports = gw.wait_for("ChangeReport", 2)
    values = [m["event"]["payload"]["change"]["properties"][0]["value"]["value"] for m in reports]
    assert values == ["OK", "UNREACHABLE"]
    assert all(schema_errors(m) == [] for m in reports)
    # Back on power: the next heartbeat says OK again.
    assert notifier.health("front-door", "OK")[0].status == "202"


def test_catalog_changes_send_discovery_reports(cloud, notifier, sent):
    notifier.store.put_device(
        Device("garage", "Garage", "garage", description="Camera", full_duplex=False)
    )
    [out] = notifier.catalog(added=["garage", "front-door"])
    assert out.ok and out.status == "202", out
    [report] = cloud.cloud.gateway.wait_for("AddOrUpdateReport")
    assert schema_errors(report) == []
    ids = [e["endpointId"] for e in report["event"]["payload"]["endpoints"]]
    assert ids == ["garage", "front-door"]
    [missing] = notifier.catalog(added=["attic"])
    assert missing.status == "unknown endpoint"


def test_delete_report_is_sent(cloud, notifier, sent):
    notifier.store.delete_device("front-door")
    [out] = notifier.catalog(deleted=["front-door"])
    assert out.name == "DeleteReport" and out.user_id == USER
    msg = sent.messages[-1]
    assert msg["event"]["payload"]["endpoints"] == [{"endpointId": "front-door"}]
    assert out.ok, out  # the gateway accepts DeleteReport as Amazon documents it


# -- the Lambda request format ---------------------------------------------------------------
def test_handle_requests(cloud, notifier, sent):
    reply = handle(notifier, {"action": "press", "endpoint_id": "front-door"})
    assert reply["ok"] and reply["results"][0]["status"] == "202"
    reply = handle(
        notifier, {"action": "health", "endpoint_id": "front-door", "connectivity": "OK"}
    )
    assert reply["ok"] and reply["results"][0]["name"] == "ChangeReport"
    status = handle(notifier, {"action": "status"})
    [user] = status["users"]
    assert user["user_id"] == USER and user["last_gateway_status"] == "202"
    assert "Atz" not in repr(status)  # never a token
    assert handle(notifier, {"action": "ring"})["ok"] is False
    assert "connectivity" in handle(notifier, {"action": "health", "endpoint_id": "x"})["error"]
    assert handle(notifier, {"action": "press", "cause": "NOPE"})["ok"] is False
    assert handle(notifier, [1, 2])["ok"] is False
