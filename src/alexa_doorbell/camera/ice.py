"""The camera's STUN and TURN servers.

Amazon's media relay offers only host candidates on public addresses, so a
camera behind a home router must answer with a server-reflexive (STUN) or a
relayed (TURN) candidate (docs/PROTOCOLS.md §6):

- STUN: ``stun_urls``; with ``cloud = "aws"`` and none set, the region's KVS
  STUN server (``stun:stun.kinesisvideo.<region>.amazonaws.com:443``; config.py).
  Its name is resolved ahead of the offers, not on each.
- TURN (``use_turn``): KVS ``GetIceServerConfig``, fetched at start and again
  at :data:`REFRESH_FRACTION` of the credentials' ``Ttl``, in the background
  (:class:`IceServers`), so an offer normally waits for nothing.
  ``turn_transport`` picks the relays: ``udp``, ``tls`` (TURN over TLS on the
  server's TCP port, 443 at KVS: the way through networks that allow only web
  traffic) or ``auto``, both at once.

aiortc would keep one TURN URI (the first usable one; KVS lists
``turn:…?transport=udp`` first), so the relays of an :class:`IcePlan` are
gathered by camera/gather.py instead. :func:`stun_probe` and :func:`turn_probe`
ask one server on their own (``doctor``).

No aiortc here: config.py checks ``stun_urls`` with this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from alexa_doorbell.config.urls import parse_stun_url

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings

log = logging.getLogger(__name__)

TurnTransport = Literal["auto", "udp", "tls"]
RelayKind = Literal["udp", "tcp", "tls"]

TURN_URL_RE = re.compile(
    r"(?P<scheme>turns?):(?P<host>[^?:\s]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?"
)
# TURN credentials are fetched again after this fraction of their Ttl, and not used
# when they have less than this many seconds left (an allocation takes a few RTTs).
REFRESH_FRACTION = 0.8
MIN_LIFE_LEFT = 10.0
FETCH_TIMEOUT = 1.5  # GetIceServerConfig on an offer's path (stale credentials)
BACKGROUND_FETCH_TIMEOUT = 10.0
RETRY_MAX = 60.0
DNS_TTL = 300.0


@dataclass(frozen=True)
class TurnServer:
    """One usable TURN URI with its credentials (from one GetIceServerConfig entry)."""

    url: str
    host: str
    port: int
    kind: RelayKind  # how the camera reaches the server: UDP, TCP or TLS over TCP
    username: str
    password: str
    expires: float  # time.time() after which the credentials are refused

    @property
    def transport(self) -> str:
        return "udp" if self.kind == "udp" else "tcp"


def turn_servers(ice_server_list: list[dict[str, Any]], now: float) -> list[TurnServer]:
    """The usable TURN URIs of a GetIceServerConfig ``IceServerList``, in its order.

    ``turns:`` with ``transport=udp`` (DTLS) is skipped: aioice has no DTLS client.
    """
    out: list[TurnServer] = []
    for entry in ice_server_list:
        username, password = entry.get("Username"), entry.get("Password")
        if not username or not password:
            continue
        expires = now + float(entry.get("Ttl") or 300)
        for uri in entry.get("Uris") or []:
            m = TURN_URL_RE.fullmatch(str(uri))
            if not m:
                continue
            secure = m["scheme"] == "turns"
            transport = m["transport"] or ("tcp" if secure else "udp")
            if secure and transport != "tcp":
                continue
            kind: RelayKind = "tls" if secure else ("udp" if transport == "udp" else "tcp")
            port = int(m["port"] or (5349 if secure else 3478))
            out.append(TurnServer(str(uri), m["host"], port, kind, username, password, expires))
    return out


def choose_relays(servers: list[TurnServer], transport: TurnTransport) -> list[TurnServer]:
    """The TURN servers to gather from for a ``turn_transport`` setting.

    ``udp`` and ``tls``: the first URI of that kind. ``auto``: the first UDP and the
    first TLS one, gathered in parallel (plain TCP only when the list has no TLS).
    """
    first: dict[str, TurnServer] = {}
    for s in servers:
        first.setdefault(s.kind, s)
    if transport == "udp":
        kinds = ["udp"]
    elif transport == "tls":
        kinds = ["tls"]
    else:
        kinds = ["udp", "tls" if "tls" in first else "tcp"]
    return [first[k] for k in kinds if k in first]


@dataclass(frozen=True)
class IcePlan:
    """What one session gathers: a STUN server (resolved), relays, the time bound."""

    stun: tuple[str, int] | None = None
    stun_url: str | None = None
    relays: tuple[TurnServer, ...] = ()
    timeout: float = 2.0
    tls_context: ssl.SSLContext | None = None
    use_turn: bool = False
    turn_transport: str = "auto"
    turn_error: str | None = None  # why use_turn gave no relay to try


# -- the servers an agent uses ----------------------------------------------------------
TurnFetcher = Callable[[], list[dict[str, Any]]]  # GetIceServerConfig's IceServerList


class IceServers:
    """One camera's STUN and TURN servers, kept ready ahead of its offers.

    ``fetch`` calls GetIceServerConfig (blocking; run in a thread). With
    ``use_turn`` the list is fetched at start and again at :data:`REFRESH_FRACTION`
    of its ``Ttl``, in the background, so an offer normally waits for nothing; an
    offer that finds no live credentials fetches them itself within
    :data:`FETCH_TIMEOUT`.
    """

    def __init__(
        self,
        settings: Settings,
        fetch: TurnFetcher | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._fetch_list = fetch
        self._clock = clock
        self._turn: list[TurnServer] = []
        self._fetched_at = 0.0
        self._refresh_at = 0.0
        self._failures = 0
        self._last_error: str | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stun_url = settings.stun_urls[0] if settings.stun_urls else None
        self._stun_addr: tuple[str, int] | None = None
        self._stun_resolved_at = -DNS_TTL
        self._stun_warned = False
        self._tls: ssl.SSLContext | None = None
        if len(settings.stun_urls) > 1:
            log.info(
                "using the first of %d stun_urls (%s)", len(settings.stun_urls), self._stun_url
            )
        self.fetches = 0

    @property
    def tls_context(self) -> ssl.SSLContext:
        """How TURN servers over TLS are verified: the local cloud's certificate, or the
        system's trust store (KVS's turns: URIs name hosts with public certificates)."""
        if self._tls is None:
            local = self.settings.is_local
            cafile = str(self.settings.ca_file) if local else None
            self._tls = ssl.create_default_context(cafile=cafile)
        return self._tls

    async def start(self) -> None:
        if self._task is None and (self.settings.use_turn or self._stun_url):
            self._task = asyncio.create_task(self._keep_fresh())

    async def stop(self) -> None:
        for task in (self._task, self._fetching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._task = self._fetching = None

    def refresh_soon(self) -> None:
        """KVS asked the client to fetch its ICE servers again (RECONNECT_ICE_SERVER)."""
        self._refresh_at = 0.0
        self._wake.set()

    async def plan(self) -> IcePlan:
        s = self.settings
        stun = await self._stun()
        relays: list[TurnServer] = []
        error: str | None = None
        if s.use_turn:
            if self._live() and self._clock() >= self._refresh_at:
                self._fetch()  # due (e.g. after a suspend): in the background, keep these
            if not self._live():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._fetch()), FETCH_TIMEOUT)
            if self._live():
                relays = choose_relays(self._turn, s.turn_transport)
                if not relays:
                    error = (
                        f"GetIceServerConfig listed no {s.turn_transport} TURN URI "
                        f"({', '.join(t.url for t in self._turn)}): set turn_transport = 'auto'"
                    )
            else:
                error = f"no TURN credentials (GetIceServerConfig: {self._last_error or 'none'})"
        return IcePlan(
            stun=stun,
            stun_url=self._stun_url,
            relays=tuple(relays),
            timeout=s.ice_gather_timeout,
            tls_context=self.tls_context if any(r.kind == "tls" for r in relays) else None,
            use_turn=s.use_turn,
            turn_transport=s.turn_transport,
            turn_error=error,
        )

    def _live(self) -> bool:
        return bool(self._turn) and min(t.expires for t in self._turn) - self._clock() > (
            MIN_LIFE_LEFT
        )

    async def _keep_fresh(self) -> None:
        while True:
            if self._stun_url:
                await self._stun()
            if self.settings.use_turn and self._clock() >= self._refresh_at:
                await asyncio.shield(self._fetch(BACKGROUND_FETCH_TIMEOUT))
            wait = DNS_TTL
            if self.settings.use_turn:
                wait = min(wait, max(0.5, self._refresh_at - self._clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _fetch(self, timeout: float = BACKGROUND_FETCH_TIMEOUT) -> asyncio.Task[None]:
        """One fetch at a time: offers and the refresher share it."""
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.create_task(self._fetch_once(timeout))
        return self._fetching

    async def _fetch_once(self, timeout: float) -> None:
        if self._fetch_list is None:
            self._last_error = "no signaling channel to ask"
            return
        self.fetches += 1
        try:
            entries = await asyncio.wait_for(asyncio.to_thread(self._fetch_list), timeout)
        except Exception as exc:
            self._failures += 1
            self._last_error = str(exc) or type(exc).__name__
            retry = min(RETRY_MAX, 2.0 ** min(self._failures, 6))
            self._refresh_at = self._clock() + retry
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            log.log(level, "no TURN servers (GetIceServerConfig failed: %s)", self._last_error)
            self._wake.set()
            return
        now = self._clock()
        servers = turn_servers(entries, now)
        ttl = min((t.expires for t in servers), default=now + 60) - now
        self._turn, self._fetched_at = servers, now
        self._refresh_at = now + max(1.0, ttl * REFRESH_FRACTION)
        self._failures, self._last_error = 0, None if servers else "an empty IceServerList"
        if not servers:
            log.warning("GetIceServerConfig returned no usable TURN server")
        log.debug("TURN servers %s, credentials for %.0f s", [t.url for t in servers], ttl)

    async def _stun(self) -> tuple[str, int] | None:
        if not self._stun_url:
            return None
        now = time.monotonic()
        if self._stun_addr is not None and now - self._stun_resolved_at < DNS_TTL:
            return self._stun_addr
        host, port = parse_stun_url(self._stun_url)
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(
                    host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
                ),
                1.0,
            )
            self._stun_addr = (infos[0][4][0], port)
            self._stun_resolved_at = now
            self._stun_warned = False
        except (OSError, TimeoutError) as exc:
            if not self._stun_warned:
                log.warning("STUN server %s: cannot resolve %s (%s)", self._stun_url, host, exc)
                self._stun_warned = True
            if self._stun_addr is None:
                return None
        return self._stun_addr


# -- a STUN binding request on its own (doctor) ---------------------------------------------
async def stun_probe(url: str, timeout: float = 3.0) -> tuple[tuple[str, int], float]:
    """Ask a STUN server for this machine's public address: ((ip, port), seconds).

    Raises TimeoutError (no answer: UDP blocked, wrong host or port) or OSError
    (the name does not resolve).
    """
    from aioice import stun

    host, port = parse_stun_url(url)
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM), timeout
    )
    addr = infos[0][4][:2]
    answer: asyncio.Future[stun.Message] = loop.create_future()
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)

    class Probe(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, _addr: Any) -> None:
            with contextlib.suppress(ValueError):
                msg = stun.parse_message(data)
                if msg.transaction_id == request.transaction_id and not answer.done():
                    answer.set_result(msg)

    transport, _ = await loop.create_datagram_endpoint(Probe, remote_addr=addr)
    started = time.perf_counter()
    try:
        # Retransmit as RFC 8489 §6.2.1 does (500 ms, doubling) until the deadline.
        rto = 0.5
        while True:
            transport.sendto(bytes(request))
            left = timeout - (time.perf_counter() - started)
            if left <= 0:
                raise TimeoutError(f"no answer from {url} in {timeout:.0f} s")
            done, _ = await asyncio.wait([answer], timeout=min(rto, left))
            if done:
                break
            rto *= 2
        msg = answer.result()
    finally:
        transport.close()
    mapped = msg.attributes.get("XOR-MAPPED-ADDRESS") or msg.attributes.get("MAPPED-ADDRESS")
    if not mapped:
        raise OSError(f"{url} answered without a mapped address")
    return (mapped[0], mapped[1]), time.perf_counter() - started


async def turn_probe(
    server: TurnServer, tls_context: ssl.SSLContext | None, timeout: float = 5.0
) -> tuple[tuple[str, int], float]:
    """Open one allocation on ``server`` and give it back: (relayed address, seconds).

    Raises TimeoutError (no answer: the transport is blocked), ssl.SSLError, or
    ConnectionError / TransactionFailed (e.g. 401: expired credentials).
    """
    from aioice import turn

    started = time.perf_counter()
    secure: bool | ssl.SSLContext = False
    if server.kind == "tls":
        secure = tls_context or ssl.create_default_context()
    transport, _ = await asyncio.wait_for(
        turn.create_turn_endpoint(
            asyncio.DatagramProtocol,
            server_addr=(server.host, server.port),
            username=server.username,
            password=server.password,
            ssl=secure,
            transport=server.transport,
        ),
        timeout,
    )
    try:
        relayed = transport.get_extra_info("sockname")
    finally:
        transport.close()
    return (relayed[0], relayed[1]), time.perf_counter() - started


# -- doctor's checks --------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """What a check of one server found: ``ok``, what it saw and, when not, the fix."""

    ok: bool
    detail: str
    fix: str = ""


UDP_FIX = (
    "this network blocks UDP to it (or the host/port is wrong): set use_turn = true with "
    'turn_transport = "auto", so TURN over TLS on TCP 443 carries the media'
)


def check_stun(url: str, timeout: float = 3.0) -> Probe:
    """A STUN binding request to ``url``: the public address this machine has there."""
    try:
        (ip, port), took = asyncio.run(stun_probe(url, timeout))
    except TimeoutError:
        return Probe(False, f"no answer from {url} in {timeout:.0f} s", UDP_FIX)
    except (OSError, ValueError) as exc:
        return Probe(False, f"{url}: {exc}", "check the host name in stun_urls and this DNS")
    return Probe(True, f"public address {ip}:{port} (answered in {took * 1000:.0f} ms)")


def check_turn(
    entries: list[dict[str, Any]],
    transport: TurnTransport,
    tls_context: ssl.SSLContext | None,
    timeout: float = 5.0,
) -> Probe:
    """An allocation on the first UDP and the first TLS server of a GetIceServerConfig list."""
    servers = turn_servers(entries, time.time())
    probes = choose_relays(servers, "auto")
    if not probes:
        return Probe(
            False,
            "GetIceServerConfig listed no TURN server this camera can use",
            "check the channel in the KVS console; without TURN only STUN can help",
        )

    async def run() -> list[str | tuple[tuple[str, int], float]]:
        async def one(s: TurnServer) -> str | tuple[tuple[str, int], float]:
            try:
                return await turn_probe(s, tls_context, timeout)
            except TimeoutError:
                return f"no answer in {timeout:.0f} s"
            except Exception as exc:
                return f"refused: {exc}" if "401" not in str(exc) else "credentials refused (401)"

        return list(await asyncio.gather(*(one(s) for s in probes)))

    results = dict(zip((s.kind for s in probes), asyncio.run(run()), strict=True))
    parts, works = [], set()
    for kind, res in results.items():
        if isinstance(res, tuple):
            works.add(kind)
            parts.append(f"{kind.upper()} relay {res[0][0]}:{res[0][1]} in {res[1] * 1000:.0f} ms")
        else:
            parts.append(f"{kind.upper()} {res}")
    detail = "; ".join(parts)
    used = {s.kind for s in choose_relays(servers, transport)}
    if works & used:
        return Probe(True, detail)
    if works:
        return Probe(False, detail, 'set turn_transport = "auto" (it uses whichever gets through)')
    return Probe(
        False,
        detail,
        "this network lets the camera reach no TURN server: allow UDP or TCP 443 out to "
        + ", ".join(sorted({s.host for s in probes})),
    )
