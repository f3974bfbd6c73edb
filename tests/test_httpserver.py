"""The servers' shared plumbing (``httpserver``): a port in use is one line, port 0 is
known before serving, and every accepted connection of the local cloud (HTTP and TLS)
and the dashboard has TCP_NODELAY set, on the server's side: without it each small
response waits for the client's delayed ACK (~40 ms a request on Linux)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.cloud.tls import client_context
from alexa_doorbell.httpserver import LoopServer, listen, server_config
from alexa_doorbell.store import open_store
from alexa_doorbell.web.app import DashboardServer


def _nodelay(server: LoopServer) -> list[int]:
    """TCP_NODELAY of each connection the server holds open now, read on its side."""
    return [
        conn.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        for conn in server.uvicorn.server_state.connections
    ]


async def _hello(request) -> PlainTextResponse:  # type: ignore[no-untyped-def]
    return PlainTextResponse("hello")


def test_a_port_in_use_is_one_line_saying_what_to_do() -> None:
    taken = listen("127.0.0.1", 0, what="test", hint="unused")
    try:
        port = taken.getsockname()[1]
        assert port != 0
        taken.listen()
        with pytest.raises(OSError) as caught:
            listen("127.0.0.1", port, what="dashboard", hint="Pick another port with --port.")
        assert str(caught.value) == (
            f"dashboard cannot listen on 127.0.0.1:{port}: Address already in use. "
            "Pick another port with --port."
        )
    finally:
        taken.close()


def test_dashboard_command_on_a_port_in_use(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    env = dict(os.environ)
    env.update(
        ALEXA_DOORBELL_DATA_DIR=str(tmp_path), ALEXA_DOORBELL_CONFIG=str(tmp_path / "empty.toml")
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "alexa_doorbell.cli", "dashboard", "--port", str(port)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [
        f"alexa-doorbell dashboard: dashboard cannot listen on 127.0.0.1:{port}: "
        "Address already in use. Pick another port with --port."
    ]
    assert done.stdout == ""  # nothing claims it is serving


async def test_accepted_connections_have_tcp_nodelay() -> None:
    app = Starlette(routes=[Route("/", _hello)])
    server = LoopServer(server_config(app), listen("127.0.0.1", 0, what="test", hint=""))
    await server.start()
    try:
        port = server.socket.getsockname()[1]
        async with httpx.AsyncClient() as http:
            for _ in range(3):  # one keep-alive connection
                assert (await http.get(f"http://127.0.0.1:{port}/")).text == "hello"
            assert _nodelay(server) == [1]
            async with httpx.AsyncClient() as other:
                await other.get(f"http://127.0.0.1:{port}/")
                assert _nodelay(server) == [1, 1]
    finally:
        await server.stop()
    assert server.socket.fileno() == -1  # stop() released the port


async def test_a_server_that_cannot_start_says_why() -> None:
    """uvicorn logs why and raises SystemExit; in the caller's loop that is an error, not
    the end of the process (the demo and the other server in that loop carry on)."""

    @contextlib.asynccontextmanager
    async def lifespan(app):  # type: ignore[no-untyped-def]
        raise RuntimeError("no store")
        yield

    app = Starlette(lifespan=lifespan)
    sock = listen("127.0.0.1", 0, what="test", hint="")
    server = LoopServer(server_config(app, lifespan="on"), sock)
    with pytest.raises(RuntimeError, match="server failed to start"):
        await server.start()
    await server.stop()
    assert sock.fileno() == -1
    await asyncio.sleep(0.01)  # the loop still runs


async def test_dashboard_connections_have_tcp_nodelay(local_cloud) -> None:  # type: ignore[no-untyped-def]
    store = open_store(local_cloud.store_location)
    try:
        async with DashboardServer(local_cloud, store=store) as dash, httpx.AsyncClient() as http:
            for _ in range(3):
                reply = await http.get(dash.url + "/api/cameras")
                assert reply.status_code == 200, reply.text
            assert dash.server is not None
            assert _nodelay(dash.server) == [1]
    finally:
        store.close()


async def test_local_cloud_connections_have_tcp_nodelay(cloud: CloudThread) -> None:
    local = cloud.settings.local
    assert cloud.cloud is not None
    http_server, tls_server = cloud.cloud.servers

    async def read(server: LoopServer) -> list[int]:
        return _nodelay(server)

    async with (
        httpx.AsyncClient() as plain,
        httpx.AsyncClient(verify=client_context(cloud.settings.ca_file)) as tls,
    ):
        assert (await plain.get(f"{local.url}/_local/status")).status_code == 200
        reply = await tls.get(f"https://{local.host}:{local.tls_port}/_local/status")
        assert reply.status_code == 200
        # Read in the cloud's own loop (it runs in a thread of its own).
        assert await asyncio.to_thread(cloud.call, read(http_server)) == [1]
        assert await asyncio.to_thread(cloud.call, read(tls_server)) == [1]
