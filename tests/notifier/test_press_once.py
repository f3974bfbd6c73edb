"""One press is one announcement, whatever rings it, and a press that failed blocks nothing.

Twenty ``alexa-doorbell press`` processes started at the same instant
(``tests/helpers/at_once.py``), twenty processes running the notifier Lambda's
``lambda_handler`` on one SQLite store, and twenty notifier
"containers" (each built by ``build_from_env`` with its own boto3 client, as
warm Lambdas are) on one DynamoDB table under moto, all ring at once with an
expired access token: exactly one ``DoorbellPress`` reaches the local event
gateway, one refresh reaches Login with Amazon, and the refresh token stays one
LWA honours. A press that reached nobody (gateway error, failed refresh) frees
the doorbell: the next press, within the debounce window, is sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alexa_doorbell.alexa.events import doorbell_press
from alexa_doorbell.alexa.schema import schema_errors
from alexa_doorbell.amazon.lwa import LwaClient
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.notifier.lambda_handler import build_from_env, handle
from alexa_doorbell.notifier.state_report import EventSender
from alexa_doorbell.store.base import Store, Tokens
from alexa_doorbell.store.sqlite import SqliteStore
from tests import directives as D
from tests.notifier.test_state_report import USER, Sent, link, make_notifier

PRESSES = 20
WINDOW = "60"  # the debounce window: the whole test runs inside one
CLI = Path(sys.executable).with_name("alexa-doorbell")
AT_ONCE = Path(__file__).resolve().parents[1] / "helpers" / "at_once.py"
PRESS_REQUEST = json.dumps({"action": "press", "endpoint_id": "front-door"})


def child_env(cloud: CloudThread, **extra: str) -> dict[str, str]:
    """A clean environment for the local cloud of ``cloud`` (no config file is read)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEXA_DOORBELL_")}
    env.update(
        ALEXA_DOORBELL_DATA_DIR=str(cloud.settings.data_dir),
        ALEXA_DOORBELL_LOCAL__PORT=str(cloud.settings.local.port),
        ALEXA_DOORBELL_PRESS_DEBOUNCE=WINDOW,
        **extra,
    )
    return env


def _reply(returncode: int, out: str, err: str) -> dict[str, Any]:
    assert "Atz" not in out + err  # no token printed or logged
    assert out.strip(), (returncode, err[-2000:])
    return {"returncode": returncode, **json.loads(out)}


def at_once(count: int, mode: str, args: list[str], env: dict[str, str], cwd: Path) -> list[dict]:
    """``count`` processes running the command at the same instant; their JSON replies."""
    cwd.mkdir(exist_ok=True)
    argv = [sys.executable, str(AT_ONCE), str(count), mode, *args]
    run = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stderr[-3000:]
    children = json.loads(run.stdout)
    assert len(children) == count
    return [_reply(c["returncode"], c["stdout"], c["stderr"]) for c in children]


def press_command(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """``alexa-doorbell press front-door --json``, as a user runs it."""
    cwd.mkdir(exist_ok=True)
    argv = [str(CLI), "press", "front-door", "--json"]
    run = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    return _reply(run.returncode, run.stdout, run.stderr)


def statuses(replies: list[dict[str, Any]]) -> list[str]:
    return sorted(r["status"] for reply in replies for r in reply["results"])


def expire(cloud: CloudThread, store: Store) -> Tokens:
    """The stored access token is past its expiry and LWA no longer accepts it."""
    tokens = store.get_tokens(USER)
    assert tokens is not None
    store.put_tokens(tokens.with_(expires_at=time.time() - 10))
    cloud.cloud.lwa.expire_access_tokens(USER)
    return store.get_tokens(USER)  # type: ignore[return-value]


def assert_refresh_token_intact(cloud: CloudThread, store: Store, before: Tokens) -> None:
    after = store.get_tokens(USER)
    assert after is not None and not after.relink_needed
    assert after.refresh_token == before.refresh_token
    assert after.access_token != before.access_token and after.expires_at > time.time() + 60
    assert cloud.cloud.lwa.user_for_token(after.refresh_token, ("refresh",)) == USER
    # A later refresh with what the store kept still works.
    client_id, secret = cloud.settings.lwa_credentials()
    grant = LwaClient(cloud.settings.lwa_url, client_id, secret).refresh(after.refresh_token)
    assert grant.access_token.startswith("Atza|")


@pytest.fixture
def store(cloud: CloudThread) -> Iterator[SqliteStore]:
    # The cloud runs in this process: 20 children starting at once on 2 cores could starve
    # its first (cold, 0.2 s of CPU) schema check past the gateway client's 5 s timeout, and
    # the client then posts again (a duplicate is better than a miss). Warm it first.
    schema_errors(doorbell_press("front-door", "Atza|warm-up", at=time.time()))
    link(cloud)
    s = SqliteStore(cloud.settings.data_dir / "store.sqlite3")
    yield s
    s.close()


# -- SQLite: real processes ----------------------------------------------------------------
@pytest.mark.slow
def test_twenty_press_commands_at_once_send_one_event(cloud, store, tmp_path):
    before = expire(cloud, store)
    lwa_calls = cloud.cloud.lwa.token_requests
    replies = at_once(
        PRESSES, "cli", ["press", "front-door", "--json"], child_env(cloud), tmp_path / "cwd"
    )
    assert statuses(replies) == ["202"] + ["debounced"] * (PRESSES - 1)
    assert {r["returncode"] for r in replies} == {0}
    time.sleep(0.2)  # nothing late either
    assert len(cloud.cloud.gateway.messages("DoorbellPress")) == 1
    assert cloud.cloud.gateway.requests == 1
    assert cloud.cloud.lwa.token_requests - lwa_calls == 1  # one refresh, by the one sender
    assert_refresh_token_intact(cloud, store, before)
    records = [r for r in store.recent_event_records() if r.name == "DoorbellPress"]
    assert [r.status for r in records] == ["202"]


@pytest.mark.slow
def test_twenty_notifier_lambdas_at_once_send_one_event(cloud, store, tmp_path):
    """The notifier Lambda's entry point in 20 processes (20 containers) on one store."""
    before = expire(cloud, store)
    lwa_calls = cloud.cloud.lwa.token_requests
    env = child_env(
        cloud,
        ALEXA_DOORBELL_CLOUD="local",
        ALEXA_DOORBELL_STORE_URL=f"sqlite:///{store.path}",
    )
    replies = at_once(PRESSES, "lambda", [PRESS_REQUEST], env, tmp_path / "cwd")
    assert statuses(replies) == ["202"] + ["debounced"] * (PRESSES - 1)
    assert all(r["ok"] for r in replies)
    time.sleep(0.2)
    assert len(cloud.cloud.gateway.messages("DoorbellPress")) == 1
    assert cloud.cloud.lwa.token_requests - lwa_calls == 1
    assert_refresh_token_intact(cloud, store, before)


def test_a_press_that_failed_does_not_swallow_the_next_one(cloud, store, tmp_path):
    """``alexa-doorbell press`` processes within one debounce window: a gateway error,
    then a failed refresh; each time the next press is sent. Once one got through, the
    window holds."""
    env, cwd = child_env(cloud), tmp_path / "cwd"
    gateway = cloud.cloud.gateway

    gateway.add_fault(400, "INVALID_REQUEST_EXCEPTION")
    failed = press_command(env, cwd)
    assert (failed["returncode"], statuses([failed])) == (1, ["400 INVALID_REQUEST_EXCEPTION"])

    before = expire(cloud, store)
    cloud.cloud.lwa.add_fault(503, count=2)  # the LWA client retries once
    failed = press_command(env, cwd)
    assert (failed["returncode"], statuses([failed])) == (1, ["refresh failed"])
    assert gateway.messages("DoorbellPress") == []

    sent = press_command(env, cwd)
    assert (sent["returncode"], statuses([sent])) == (0, ["202"])
    assert len(gateway.messages("DoorbellPress")) == 1
    assert_refresh_token_intact(cloud, store, before)

    other = make_notifier(cloud, Sent(), debounce=float(WINDOW))  # yet another process
    assert other.press("front-door")[0].status == "debounced"
    other.close()
    assert len(gateway.messages("DoorbellPress")) == 1


def test_gateway_down_after_retries_frees_the_doorbell_for_another_process(cloud, store):
    """Retries exhausted (503 four times) in one notifier: another notifier on the same store,
    as another process would be, sends the next press at once."""
    first = make_notifier(cloud, Sent(), debounce=60.0)
    other = make_notifier(cloud, Sent(), debounce=60.0)
    try:
        cloud.cloud.gateway.add_fault(503, count=4)
        [out] = first.press("front-door")
        assert (out.ok, out.status) == (False, "503 SERVICE_UNAVAILABLE_EXCEPTION"), out
        assert cloud.cloud.gateway.requests == 4
        [out] = other.press("front-door")
        assert (out.ok, out.status) == (True, "202"), out
        assert first.press("front-door")[0].status == "debounced"
        assert len(cloud.cloud.gateway.messages("DoorbellPress")) == 1
    finally:
        first.close()
        other.close()


# -- DynamoDB (moto): twenty warm notifier Lambdas -----------------------------------------
@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    from tests.store.test_dynamodb import REGION, _serialise_moto_writes

    _serialise_moto_writes(monkeypatch)  # moto's condition check is not atomic; DynamoDB's is
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def ring_at_once(notifiers: list[EventSender]) -> list[dict[str, Any]]:
    barrier = threading.Barrier(len(notifiers))
    replies: list[dict[str, Any]] = []

    def invoke(n: EventSender) -> None:
        barrier.wait()
        replies.append(handle(n, {"action": "press", "endpoint_id": "front-door"}))

    threads = [threading.Thread(target=invoke, args=(n,)) for n in notifiers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(replies) == len(notifiers)
    return replies


def test_twenty_notifier_lambdas_on_dynamodb_send_one_event(cloud, aws):
    from alexa_doorbell.store.dynamodb import DynamoDbStore
    from tests.store.test_dynamodb import create_table_from_template

    create_table_from_template("doorbell")
    table = DynamoDbStore("doorbell")
    who = cloud.cloud.lwa.link(USER)  # AcceptGrant through the skill, into the table
    skill = build_skill(cloud.settings, table)
    reply = skill.handle(D.accept_grant(who["code"], who["access_token"]))
    assert reply["event"]["header"]["name"] == "AcceptGrant.Response", reply
    env = {
        "ALEXA_DOORBELL_CLOUD": "local",
        "ALEXA_DOORBELL_LOCAL__PORT": str(cloud.settings.local.port),
        "ALEXA_DOORBELL_STORE_URL": "dynamodb://doorbell",
        "ALEXA_DOORBELL_PRESS_DEBOUNCE": WINDOW,
    }
    # Twenty warm containers: each its own notifier, boto3 client, HTTP pools and locks.
    notifiers = [build_from_env(env) for _ in range(PRESSES)]
    gateway = cloud.cloud.gateway
    try:
        before = expire(cloud, table)
        lwa_calls = cloud.cloud.lwa.token_requests
        replies = ring_at_once(notifiers)
        assert statuses(replies) == ["202"] + ["debounced"] * (PRESSES - 1)
        assert len(gateway.messages("DoorbellPress")) == 1 and gateway.requests == 1
        assert cloud.cloud.lwa.token_requests - lwa_calls == 1
        assert_refresh_token_intact(cloud, table, before)

        # The window passes (the claim is backdated); a burst meets a gateway error.
        assert table._get_item("PRESS", "front-door") is not None
        table._put("PRESS", "front-door", {"claim_id": "old", "claimed_at": time.time() - 120})
        gateway.add_fault(400, "INVALID_REQUEST_EXCEPTION")
        replies = ring_at_once(notifiers)
        assert statuses(replies) == ["400 INVALID_REQUEST_EXCEPTION"] + ["debounced"] * (
            PRESSES - 1
        )
        assert table._get_item("PRESS", "front-door") is None  # released
        # The next press, still inside the window of the failed one, is sent.
        reply = handle(notifiers[7], {"action": "press", "endpoint_id": "front-door"})
        assert [r["status"] for r in reply["results"]] == ["202"]
        assert len(gateway.messages("DoorbellPress")) == 2
    finally:
        for n in notifiers:
            n.close()
