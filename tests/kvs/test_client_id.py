"""The Alexa sessionId <-> SenderClientId codec both the skill and the camera use."""

import re

import botocore.session
import pytest

from alexa_doorbell.kvs.client_id import (
    SESSION_ID_CHARS,
    alexa_session_key,
    sender_client_id,
    session_key,
)

# SendAlexaOfferToMaster's SenderClientId, as botocore's service model spells it.
_CLIENT_ID = (
    botocore.session.get_session()
    .get_service_model("kinesis-video-signaling")
    .operation_model("SendAlexaOfferToMaster")
    .input_shape.members["SenderClientId"]
)
CLIENT_ID_PATTERN = re.compile(_CLIENT_ID.metadata["pattern"])
CLIENT_ID_MAX = _CLIENT_ID.metadata["max"]

# (Alexa sessionId, what the client id carries of it)
KEYS = [
    ("amzn1.echo-session.1", "amzn1.echo-session.1"),  # dots are ClientId characters: kept
    ("amzn1.echo-session/1", "amzn1.echo-session_1"),
    ("a b+c=d:e@f", "a_b_c_d_e_f"),
    ("Ré-ünï_çödé", "R_-_n____d_"),  # one _ per character, however many bytes
    ("\N{BELL}x\n", "_x_"),
    ("s" * SESSION_ID_CHARS, "s" * SESSION_ID_CHARS),  # exactly fits
    ("s" * (SESSION_ID_CHARS + 1), "s" * SESSION_ID_CHARS),  # clipped
    ("x/" * 512, ("x_" * 512)[:SESSION_ID_CHARS]),  # 1024 characters: Alexa's maximum
]


def test_session_id_chars_is_what_fits_beside_prefix_and_suffix() -> None:
    assert SESSION_ID_CHARS == CLIENT_ID_MAX - len("alexa.") - len(".") - 8 == 241


@pytest.mark.parametrize(("session_id", "key"), KEYS)
def test_session_key(session_id: str, key: str) -> None:
    assert session_key(session_id) == key
    assert session_key(key) == key  # a key is its own key: both sides may apply it


@pytest.mark.parametrize(("session_id", "key"), KEYS)
def test_client_id_is_a_valid_kvs_client_id_and_carries_the_key(session_id: str, key: str) -> None:
    client_id = sender_client_id(session_id)
    assert CLIENT_ID_PATTERN.fullmatch(client_id)
    assert len(client_id) <= CLIENT_ID_MAX
    assert re.fullmatch(rf"alexa\.{re.escape(key)}\.[0-9a-f]{{8}}", client_id)
    assert alexa_session_key(client_id) == key == session_key(session_id)


def test_longest_session_id_gives_the_longest_client_id() -> None:
    assert len(sender_client_id("s" * 1024)) == CLIENT_ID_MAX


def test_each_offer_of_one_session_gets_its_own_client_id() -> None:
    first, second = sender_client_id("amzn1.s"), sender_client_id("amzn1.s")
    assert first != second
    assert alexa_session_key(first) == alexa_session_key(second) == "amzn1.s"


def test_session_ids_alike_in_what_fits_compare_equal() -> None:
    """The camera compares sessionIds as the client id carries them (clipped, replaced)."""
    common = "c" * SESSION_ID_CHARS
    assert alexa_session_key(sender_client_id(common + "-one")) == session_key(common + "-two")
    assert alexa_session_key(sender_client_id("a/b")) == session_key("a b")
    assert alexa_session_key(sender_client_id("a.b")) != session_key("a_b")


@pytest.mark.parametrize(
    ("client_id", "key"),
    [
        ("viewer-123", None),  # a browser VIEWER
        ("alexa.", None),
        ("alexa.abcd1234", None),  # no sessionId before the suffix
        ("alexaX.s.abcd1234", None),
        ("ALEXA.s.abcd1234", None),
        ("alexa.s.abcd1234", "s"),
        ("alexa.a.b.c.abcd1234", "a.b.c"),
        ("alexa." + "L" * 300 + ".abcd1234", "L" * SESSION_ID_CHARS),  # not from our skill
    ],
)
def test_alexa_session_key_of_any_client_id(client_id: str, key: str | None) -> None:
    assert alexa_session_key(client_id) == key
