"""The LWA client against a scripted HTTP server: requests on the wire, errors mapped."""

from __future__ import annotations

import json
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from alexa_doorbell.amazon.lwa import (
    LwaClient,
    LwaError,
    LwaExpiredToken,
    LwaInvalidClient,
    LwaInvalidGrant,
    LwaInvalidToken,
    LwaUnavailable,
)
from tests.helpers.http_stub import QuietHandler


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.replies: list[tuple[int, object, float]] = []
        self.requests: list[dict] = []

    def handle_error(self, request, client_address) -> None:
        pass  # the timeout test hangs up on purpose

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(QuietHandler):
    server: Scripted

    def _reply(self) -> None:
        body = self.read_body().decode()
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "form": {k: v[0] for k, v in parse_qs(body).items()},
            }
        )
        status, payload, delay = self.server.replies.pop(0)
        time.sleep(delay)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.reply(status, data)

    do_GET = do_POST = _reply


@pytest.fixture
def lwa_server():
    srv = Scripted()
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


GRANT = {
    "access_token": "Atza|a",
    "refresh_token": "Atzr|r",
    "token_type": "bearer",
    "expires_in": 3600,
}


def client(srv: Scripted, **kw) -> LwaClient:
    return LwaClient(srv.url, "amzn1.application-oa2-client.x", "s3cret", **kw)


def test_exchange_code_sends_the_form_and_parses_the_grant(lwa_server):
    lwa_server.replies.append((200, GRANT, 0))
    before = time.time()
    grant = client(lwa_server).exchange_code("ANcode")
    assert grant.access_token == "Atza|a" and grant.refresh_token == "Atzr|r"
    assert before + 3600 <= grant.expires_at <= time.time() + 3600
    assert "Atz" not in repr(grant)
    req = lwa_server.requests[0]
    assert req["method"] == "POST" and req["path"] == "/auth/o2/token"
    assert req["form"] == {
        "grant_type": "authorization_code",
        "code": "ANcode",
        "client_id": "amzn1.application-oa2-client.x",
        "client_secret": "s3cret",
    }
    assert req["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")


def test_refresh_keeps_old_refresh_token_when_none_returned(lwa_server):
    lwa_server.replies.append((200, {"access_token": "Atza|b", "expires_in": 60}, 0))
    grant = client(lwa_server).refresh("Atzr|old")
    assert grant.refresh_token == "Atzr|old" and grant.access_token == "Atza|b"
    assert lwa_server.requests[0]["form"]["grant_type"] == "refresh_token"
    assert lwa_server.requests[0]["form"]["refresh_token"] == "Atzr|old"


def test_profile(lwa_server):
    lwa_server.replies.append((200, {"user_id": "amzn1.account.X", "name": "Ann"}, 0))
    who = client(lwa_server).profile("Atza|t")
    assert who.user_id == "amzn1.account.X" and who.name == "Ann"
    req = lwa_server.requests[0]
    assert req["path"] == "/user/profile"
    assert req["headers"]["Authorization"] == "Bearer Atza|t"


@pytest.mark.parametrize(
    "status,body,exc,error",
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "code expired"},
            LwaInvalidGrant,
            "invalid_grant",
        ),
        (401, {"error": "invalid_client"}, LwaInvalidClient, "invalid_client"),
        (400, {"error": "unauthorized_client"}, LwaInvalidClient, "unauthorized_client"),
        (400, {"error": "invalid_request"}, LwaError, "invalid_request"),
        (400, {"error": "unsupported_grant_type"}, LwaError, "unsupported_grant_type"),
        (503, {"error": "server_error"}, LwaUnavailable, "server_error"),
        (200, b"<html>", LwaUnavailable, "bad_response"),
        (200, {"token_type": "bearer"}, LwaUnavailable, "bad_response"),
    ],
)
def test_token_errors(lwa_server, status, body, exc, error):
    lwa_server.replies.append((status, body, 0))
    with pytest.raises(exc) as info:
        client(lwa_server, retries=0).exchange_code("c")
    assert type(info.value) is exc and info.value.error == error


def test_invalid_client_message_names_the_skill_messaging_credentials(lwa_server):
    lwa_server.replies.append((401, {"error": "invalid_client"}, 0))
    with pytest.raises(LwaInvalidClient) as info:
        client(lwa_server).exchange_code("c")
    assert "Alexa Skill Messaging" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_server_errors_are_retried_then_reported(lwa_server):
    lwa_server.replies += [(500, {}, 0), (200, GRANT, 0)]
    assert client(lwa_server, retries=1).exchange_code("c").access_token == "Atza|a"
    lwa_server.replies += [(500, {}, 0), (502, {}, 0)]
    with pytest.raises(LwaUnavailable):
        client(lwa_server, retries=1).exchange_code("c")


def test_profile_errors(lwa_server):
    lwa_server.replies += [
        (
            401,
            {
                "error": "invalid_token",
                "error_description": "The request has an invalid parameter : access_token",
            },
            0,
        ),
        (
            401,
            {"error": "invalid_token", "error_description": "The access token provided is expired"},
            0,
        ),
        (
            401,
            {
                "error": "invalid_token",
                "error_description": "The access token provided is "
                "expired, revoked, malformed, or invalid for other reasons.",
            },
            0,
        ),
        (500, {}, 0),
    ]
    c = client(lwa_server, retries=0)
    with pytest.raises(LwaInvalidToken) as info:
        c.profile("bad")
    assert not isinstance(info.value, LwaExpiredToken)
    with pytest.raises(LwaExpiredToken):
        c.profile("old")
    with pytest.raises(LwaInvalidToken) as info:
        c.profile("ambiguous")
    assert not isinstance(info.value, LwaExpiredToken)
    with pytest.raises(LwaUnavailable):
        c.profile("x")


def test_timeouts_and_refused_connections_are_unavailable(lwa_server):
    lwa_server.replies.append((200, GRANT, 1.0))
    t0 = time.monotonic()
    with pytest.raises(LwaUnavailable):
        client(lwa_server, timeout=0.2, retries=0).exchange_code("c")
    assert time.monotonic() - t0 < 0.9
    with pytest.raises(LwaUnavailable):
        LwaClient("http://127.0.0.1:9", "id", "s", retries=0).profile("t")


def test_malformed_tokens_never_reach_the_wire(lwa_server):
    c = client(lwa_server)
    for token in ("Atza|\u0100", "Atza|a\r\nX-Injected: 1", "has space", ""):
        with pytest.raises(LwaInvalidToken):
            c.profile(token)
    assert lwa_server.requests == []
