"""One KVS exception type (``kvs.errors``), raised by the local cloud and the skill alike,
and turned into an Alexa error type in one place (``skill/errors.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from alexa_doorbell.alexa import errors as E
from alexa_doorbell.kvs.errors import KvsDenied, KvsError, KvsThrottled, KvsUnreachable
from alexa_doorbell.skill.errors import to_alexa_error

SRC = Path(__file__).resolve().parents[2] / "src" / "alexa_doorbell"


def test_one_kvs_error_class_in_the_package() -> None:
    homes = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_bytes()))
        if isinstance(node, ast.ClassDef) and node.name.startswith("Kvs") and "Error" in node.name
    ]
    assert homes == ["kvs/errors.py"]


def test_the_local_cloud_raises_the_same_type() -> None:
    from alexa_doorbell.cloud import kvs as emulator

    assert emulator.KvsError is KvsError
    refused = emulator._not_found("front-door")
    assert (refused.status, refused.error_type) == (404, "ResourceNotFoundException")
    assert str(refused) == refused.message == "The requested channel is not found: front-door"


@pytest.mark.parametrize(
    ("exc", "alexa_type"),
    [
        (KvsUnreachable("no master"), E.ENDPOINT_UNREACHABLE),
        (KvsThrottled("limit", error_type="ClientLimitExceededException"), E.RATE_LIMIT_EXCEEDED),
        (KvsDenied("credentials"), E.INTERNAL_ERROR),
        (KvsError("boom", error_type="InternalFailure", status=500), E.INTERNAL_ERROR),
    ],
)
def test_each_kvs_failure_has_one_alexa_error_type(exc: KvsError, alexa_type: str) -> None:
    mapped = to_alexa_error(exc)
    assert (mapped.type, mapped.message) == (alexa_type, exc.message)
