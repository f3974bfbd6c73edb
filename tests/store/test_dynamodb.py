"""The DynamoDB store (moto): the shared store contract, plus what only DynamoDB has."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from moto import mock_aws

from alexa_doorbell.store import open_store
from alexa_doorbell.store.base import ConflictError, EventRecord, RtcSession, StoreError
from alexa_doorbell.store.dynamodb import KEEP_SESSIONS_SECONDS, PK, SK, TTL, DynamoDbStore

try:
    from tests.store_contract import StoreContract, make_tokens
except ImportError:  # tests/ is on sys.path itself (rootdir without __init__.py)
    from store_contract import StoreContract, make_tokens

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"
REGION = "eu-west-1"


def _serialise_moto_writes(monkeypatch) -> None:
    """DynamoDB applies each request to an item atomically; moto does not. Its
    ``update_item`` handler reads the old item (for ``ReturnValues``) and then writes
    in a second backend call, so a lock around backend methods still lets another
    write in between: the "old" value returned is not what the write replaced. Lock
    whole requests (the handler's ``call_action``) so the race tests test us."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original = DynamoHandler.call_action

    def locked(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoHandler, "call_action", locked)


@pytest.fixture
def aws(monkeypatch):
    _serialise_moto_writes(monkeypatch)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def create_table_from_template(name: str) -> None:
    """The table exactly as deploy/template.yaml declares it."""
    props = cfn_yaml.load(str(TEMPLATE))["Resources"]["StoreTable"]["Properties"]
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=name,
        AttributeDefinitions=[dict(a) for a in props["AttributeDefinitions"]],
        KeySchema=[dict(k) for k in props["KeySchema"]],
        BillingMode=props["BillingMode"],
    )


class TestDynamoDbStore(StoreContract):
    @pytest.fixture
    def store(self, aws):
        create_table_from_template("doorbell")
        s = open_store("dynamodb://doorbell")
        assert isinstance(s, DynamoDbStore)
        yield s
        s.close()

    @pytest.fixture
    def connect(self, store):
        return lambda: DynamoDbStore(store.table)  # its own boto3 client, as a Lambda has


def raw_items(table: str) -> list[dict]:
    return boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Items"]


def test_two_lambdas_refreshing_at_once_one_wins(aws):
    """Skill and notifier are separate processes: separate clients, one table."""
    create_table_from_template("t")
    skill, notifier = DynamoDbStore("t"), DynamoDbStore("t")
    base = skill.put_tokens(make_tokens())
    seen = notifier.get_tokens(base.user_id)
    skill.put_tokens(make_tokens(n=2), expected_version=base.version)
    with pytest.raises(ConflictError):
        notifier.put_tokens(make_tokens(n=3), expected_version=seen.version)
    # The loser re-reads and sees the winner's token, not a half-write.
    now = notifier.get_tokens(base.user_id)
    assert now.access_token == "Atza|access-2" and now.version == base.version + 1


def test_race_from_threads_with_separate_clients(aws):
    create_table_from_template("t")
    base = DynamoDbStore("t").put_tokens(make_tokens())
    stores = [DynamoDbStore("t") for _ in range(4)]
    results: list[str] = []
    barrier = threading.Barrier(4)

    def refresh(i: int) -> None:
        barrier.wait()
        try:
            stores[i].put_tokens(make_tokens(n=20 + i), expected_version=base.version)
            results.append("win")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 3 + ["win"]


def test_item_layout_and_expiry(aws):
    """Keys as "The DynamoDB table" in docs/deploy-aws.md shows; sessions, events and press claims
    expire, tokens not."""
    create_table_from_template("t")
    store = DynamoDbStore("t")
    store.put_tokens(make_tokens("u1"))
    store.put_session(RtcSession("s1", "front-door", "OFFERED"))
    store.add_event_record(EventRecord(time.time(), "u1", "front-door", "DoorbellPress", "202"))
    assert store.claim_press("front-door", "c1", at=time.time(), window=5.0)
    items = {item[PK]["S"]: item for item in raw_items("t")}
    assert set(items) == {"TOKENS", "SESSION", "EVENT", "PRESS"}
    assert items["PRESS"][SK]["S"] == "front-door" and items["PRESS"]["claim_id"]["S"] == "c1"
    assert TTL in items["PRESS"]
    assert items["TOKENS"][SK]["S"] == "u1"
    assert TTL not in items["TOKENS"]
    ttl = int(items["SESSION"][TTL]["N"])
    assert abs(ttl - (time.time() + KEEP_SESSIONS_SECONDS)) < 60
    assert TTL in items["EVENT"]


def test_none_fields_are_removed_not_stored_as_strings(aws):
    create_table_from_template("t")
    store = DynamoDbStore("t")
    saved = store.put_tokens(make_tokens(last_refresh_at=5.0, last_gateway_status="202"))
    cleared = store.put_tokens(saved.with_(last_refresh_at=None, last_gateway_status=None))
    assert cleared.last_refresh_at is None and cleared.last_gateway_status is None
    (item,) = raw_items("t")
    assert "last_refresh_at" not in item and "last_gateway_status" not in item


def test_many_event_records_page_and_stay_newest_first(aws):
    create_table_from_template("t")
    store = DynamoDbStore("t")
    for i in range(30):
        store.add_event_record(EventRecord(1000.0 + i, "u", "e", "DoorbellPress", "202", str(i)))
    # Same timestamp: insertion order decides, as in SQLite.
    store.add_event_record(EventRecord(1029.0, "u", "e", "ChangeReport", "202", "tie"))
    recent = store.recent_event_records(limit=25)
    assert [r.detail for r in recent[:3]] == ["tie", "29", "28"]
    assert len(recent) == 25


def test_missing_table_is_a_clear_store_error(aws):
    store = open_store("dynamodb://not-deployed")
    with pytest.raises(StoreError, match=r"not-deployed.*not found"):
        store.get_tokens("u")


def test_open_store_needs_a_table_name():
    with pytest.raises(StoreError):
        open_store("dynamodb://")


def _lose_first_reply(store: DynamoDbStore, operation: str) -> list[int]:
    """The first ``operation`` applies but its reply is lost: botocore retries it, as it
    does after a read timeout or a 500. Returns the attempts botocore made."""
    made: list[int] = []

    def retry_first(attempts: int, caught_exception=None, **_) -> float | None:
        made.append(attempts)
        return 0 if attempts == 1 and caught_exception is None else None

    store._db.meta.events.register_first(f"needs-retry.dynamodb.{operation}", retry_first)
    return made


def test_a_retried_press_claim_that_applied_still_wins(aws):
    """A retry finds the claim its lost first attempt wrote: that press is announced once,
    not zero times; another press inside the window still loses."""
    create_table_from_template("t")
    store = DynamoDbStore("t")
    attempts = _lose_first_reply(store, "PutItem")
    assert store.claim_press("front-door", "a", at=1000.0, window=5.0)
    assert attempts == [1, 2]  # it was retried, and the retry's condition failed
    assert not store.claim_press("front-door", "b", at=1001.0, window=5.0)
    assert not DynamoDbStore("t").claim_press("front-door", "c", at=1002.0, window=5.0)
    assert store.release_press("front-door", "a")


def test_a_retried_detection_claim_that_applied_decides_as_its_first_attempt(aws):
    create_table_from_template("t")
    store = DynamoDbStore("t")
    attempts = _lose_first_reply(store, "UpdateItem")
    assert store.claim_detection("front-door", "person", at=1000.0, cooldown=60.0)
    assert attempts == [1, 2]
    # Later retried claims still see the sighting their first attempt replaced.
    assert not store.claim_detection("front-door", "person", at=1030.0, cooldown=60.0)
    assert store.claim_detection("front-door", "person", at=1100.0, cooldown=60.0)
    assert not DynamoDbStore("t").claim_detection("front-door", "person", at=1101.0, cooldown=60)
