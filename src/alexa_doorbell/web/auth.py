"""The dashboard's login: one password, a signed session cookie.

    login = DashboardLogin(password)            # or None: the dashboard stays open
    app = LoginGuard(app, login)                # refuses everything but /login without a session

Bound beyond loopback the dashboard requires it (``create_app`` refuses to start
without a password); on loopback only when a password is set. The password
comes from ``ALEXA_DOORBELL_DASHBOARD_PASSWORD``, a file named by
``ALEXA_DOORBELL_DASHBOARD_PASSWORD_FILE`` (systemd credentials, Docker
secrets) or AWS Secrets Manager / SSM (``ALEXA_DOORBELL_DASHBOARD_PASSWORD_ARN``),
never from the TOML file, which is often readable by others and committed.

The cookie holds an expiry and a nonce signed with HMAC-SHA256 under a key made
at each start: no secret is stored, and a restart signs everyone out. It is
``HttpOnly``, ``SameSite=Strict`` (no other site's request carries it) and
``Secure`` when the page came over https. Passwords are compared in constant
time; each wrong one costs its sender a second, and five within a quarter of an
hour lock that address out until the oldest of them is that old (a try counts
as wrong until it is checked, so parallel guesses count too).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import html
import os
import secrets
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from alexa_doorbell.httpguard import refuse, same_origin

PASSWORD_ENV = "ALEXA_DOORBELL_DASHBOARD_PASSWORD"
COOKIE = "alexa_doorbell_session"
SESSION_SECONDS = 7 * 86400
FAIL_DELAY = 1.0  # seconds a wrong password waits for its reply
FAIL_WINDOW = 900.0
FAIL_LIMIT = 5  # wrong passwords per address per window before it is locked out
MAX_FORM = 4096
# Reachable without a session: the login form and the stylesheet it uses.
OPEN_PATHS = ("/login", "/logout", "/static/app.css")
LOGIN_REQUIRED = b'{"error": "login required", "login": "/login"}'


class LoginNotConfigured(ValueError):
    """The dashboard would be open to the network: the message says what to set."""


def read_password(region: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The dashboard password from the environment, a file or a secret; None if unset."""
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    path = environ.get(PASSWORD_ENV + "_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read().rstrip("\r\n")
        except OSError as exc:
            raise LoginNotConfigured(
                f"{PASSWORD_ENV}_FILE={path}: {exc.strerror}; point it at a file that holds "
                "the dashboard password"
            ) from None
        if not value:
            raise LoginNotConfigured(f"{PASSWORD_ENV}_FILE={path} is empty: write a password")
        return value
    arn = environ.get(PASSWORD_ENV + "_ARN")
    if arn:
        from alexa_doorbell.lambda_config import read_secret

        try:
            return read_secret(arn, region)
        except Exception as exc:  # any AWS failure is a configuration problem here
            raise LoginNotConfigured(f"cannot read {PASSWORD_ENV}_ARN={arn}: {exc}") from None
    return None


def login_required_message(host: str) -> str:
    return (
        f"listening on {host} opens the dashboard to your network, so it needs a login: "
        f"set {PASSWORD_ENV} (or {PASSWORD_ENV}_FILE naming a file that holds it), "
        "or listen on 127.0.0.1"
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DashboardLogin:
    """Checks the password, issues and verifies session cookies, throttles guessing."""

    def __init__(self, password: str, session_seconds: float = SESSION_SECONDS) -> None:
        if not password:
            raise LoginNotConfigured("the dashboard password is empty")
        self._digest = hashlib.sha256(password.encode()).digest()
        self._key = secrets.token_bytes(32)
        self.session_seconds = session_seconds
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    # -- the password ---------------------------------------------------------------
    def password_ok(self, given: str) -> bool:
        # Digests first: compare_digest is constant-time only for equal lengths.
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._digest)

    def locked_for(self, client: str, now: float | None = None) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        fails = self._failures.get(client)
        if not fails:
            return 0.0
        while fails and fails[0] < now - FAIL_WINDOW:
            fails.popleft()
        if len(fails) < FAIL_LIMIT:
            return 0.0
        return fails[0] + FAIL_WINDOW - now

    def attempt(self, client: str) -> None:
        """Count a try as failed before it is checked, so parallel guesses count too."""
        fails = self._failures.setdefault(client, collections.deque(maxlen=FAIL_LIMIT))
        fails.append(time.monotonic())
        self._failures.move_to_end(client)
        while len(self._failures) > 1024:  # bounded, whoever knocks
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    # -- sessions ---------------------------------------------------------------------
    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + self.session_seconds)
        body = f"{expiry}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, cookie: str | None, now: float | None = None) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return False
        expiry = body.split(".", 1)[0]
        return expiry.isdigit() and int(expiry) > (time.time() if now is None else now)

    def session_of(self, headers: Headers) -> bool:
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and self.valid(value):
                return True
        return False

    def cookie_header(self, scope: Scope, value: str, max_age: float) -> bytes:
        secure = "; Secure" if scope.get("scheme") in ("https", "wss") else ""
        return (
            f"{COOKIE}={value}; Max-Age={int(max_age)}; Path=/; HttpOnly; SameSite=Strict{secure}"
        ).encode()


LOGIN_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sign in · alexa-doorbell</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header><h1>alexa-doorbell</h1></header>
<main class="login">
  <section aria-labelledby="login-title">
    <h2 id="login-title">Sign in</h2>
    <form method="post" action="/login">
      <label for="password">Dashboard password</label>
      <input id="password" name="password" type="password" autocomplete="current-password"
             required autofocus>
      <button type="submit" class="press">Sign in</button>
    </form>
    <p id="login-result" class="result{css}" role="status">{message}</p>
  </section>
</main>
</body>
</html>
"""
PAGE_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" makes Origin "null"
]


def login_page(message: str = "", bad: bool = False) -> bytes:
    text = html.escape(message or "The dashboard shows your camera: it needs its password.")
    return LOGIN_PAGE.replace("{css}", " bad" if bad else "").replace("{message}", text).encode()


class LoginGuard:
    """ASGI middleware: ``/login`` and ``/logout``, and nothing else without a session.

    Without one, ``/api/...`` gets 401, a WebSocket is closed before it is accepted
    (the browser sees 403), and a page is redirected to ``/login``.
    """

    def __init__(self, app: ASGIApp, login: DashboardLogin) -> None:
        self.app = app
        self.login = login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and path == "/login":
            await self._login(scope, receive, send)
            return
        if scope["type"] == "http" and path == "/logout":
            await self._logout(scope, send)
            return
        headers = Headers(scope=scope)
        if path in OPEN_PATHS or self.login.session_of(headers):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif path.startswith("/api/") or scope["method"] not in ("GET", "HEAD"):
            await refuse(send, 401, LOGIN_REQUIRED, b"application/json")
        else:
            await _redirect(send, "/login")

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method in ("GET", "HEAD"):
            await _page(send, 200, login_page())
            return
        if method != "POST":
            await refuse(send, 405, b"Method not allowed\n")
            return
        headers = Headers(scope=scope)
        if not same_origin(headers):
            await refuse(send, 403, b"cross-site request refused\n")
            return
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.login.locked_for(client)
        if wait > 0:
            when = f"{max(1, round(wait / 60))} min"
            body = login_page(f"Too many wrong passwords: try again in {when}.", True)
            await _page(send, 429, body, [(b"retry-after", str(int(wait) + 1).encode())])
            return
        self.login.attempt(client)
        password = await _form_password(receive, headers)
        if password is None or not self.login.password_ok(password):
            await asyncio.sleep(FAIL_DELAY)
            await _page(send, 401, login_page("Wrong password.", True))
            return
        self.login.succeeded(client)
        cookie = self.login.cookie_header(scope, self.login.issue(), self.login.session_seconds)
        await _redirect(send, "/", [(b"set-cookie", cookie)])

    async def _logout(self, scope: Scope, send: Send) -> None:
        if scope["method"] != "POST":
            await refuse(send, 405, b"Method not allowed\n")
            return
        if not same_origin(Headers(scope=scope)):
            await refuse(send, 403, b"cross-site request refused\n")
            return
        await _redirect(send, "/login", [(b"set-cookie", self.login.cookie_header(scope, "", 0))])


async def _form_password(receive: Receive, headers: Headers) -> str | None:
    """The ``password`` field of a urlencoded form (no multipart parser needed)."""
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_FORM:
            return None
        if not message.get("more_body"):
            break
    try:
        values = parse_qs(body.decode(), keep_blank_values=True).get("password", [])
    except UnicodeDecodeError:
        return None
    return values[0] if len(values) == 1 else None


async def _page(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        *PAGE_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, to: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [
        (b"location", to.encode()),
        (b"content-length", b"0"),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
