"""Debian's Chromium driven by Playwright (Playwright's own browser download does not work).

pytestmark = [pytest.mark.browser, requires_chromium]

async with chromium("--ignore-certificate-errors") as browser:
    page = await browser.new_page()
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Plain host candidates (not mDNS names) so aiortc peers can reach the browser.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

requires_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


@asynccontextmanager
async def chromium(*extra: str) -> AsyncIterator[Any]:
    """A launched headless browser (``ARGS`` plus ``extra``), closed on exit."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra])
        try:
            yield browser
        finally:
            await browser.close()
