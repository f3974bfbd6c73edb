"""Shared fixtures.

``local_cloud`` yields a ``Settings`` pointing at a running local cloud (a temp
data_dir, free ports); ``cloud`` is the same cloud's handle for in-process
access (``cloud.cloud.gateway.events``, ``cloud.cloud.lwa.link()``...).
``make_cloud(**overrides)`` starts one with other settings.

Every test runs under ``tests/helpers/netguard.py``: a datagram, connection or DNS
look-up toward anything but loopback, this machine's own addresses or a test's own
network namespace fails the test (``netguard_pytest.py`` installs it for the session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alexa_doorbell.cloud.server import CloudThread, start_cloud_thread
from alexa_doorbell.config import LocalCloudConfig, Settings

pytest_plugins = ["tests.helpers.netguard_pytest"]


def local_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a local cloud in ``data_dir`` on free ports (``local`` may be a dict)."""
    local = dict(overrides.pop("local", {}) or {})  # type: ignore[call-overload]
    local.setdefault("port", 0)
    local.setdefault("tls_port", 0)
    local.setdefault("turn_port", 0)  # coturn, when a test asks GetIceServerConfig
    local.setdefault("turn_tls_port", 0)
    return Settings(
        cloud="local",
        data_dir=data_dir,
        local=LocalCloudConfig(**local),
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
def make_cloud(tmp_path: Path) -> Iterator[Callable[..., CloudThread]]:
    """Factory: ``make_cloud(local={"access_token_lifetime": 2})`` → a running CloudThread."""
    started: list[CloudThread] = []

    def make(data_dir: Path | None = None, **overrides: object) -> CloudThread:
        handle = start_cloud_thread(local_settings(data_dir or tmp_path / "data", **overrides))
        started.append(handle)
        return handle

    yield make
    for handle in reversed(started):
        handle.stop()


@pytest.fixture
def cloud(make_cloud: Callable[..., CloudThread]) -> CloudThread:
    return make_cloud()


@pytest.fixture
def local_cloud(cloud: CloudThread) -> Settings:
    return cloud.settings
