"""Headless Debian chromium driven by Playwright (its bundled driver; no browser download): a fresh profile per
use. ``POWERSYNC_SCREENSHOTS=<dir>`` makes the browser tests save what they checked there (``make screenshots``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator:
    """A page in a fresh chromium profile, closed (and the profile removed) on exit."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="powersync-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                                                       viewport={"width": width, "height": height})
            try:
                page = ctx.new_page()
                page.set_default_timeout(300_000)  # a bound for a loaded machine, not a measurement
                yield page
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page, name: str, **kwargs) -> None:  # noqa: ANN001 - playwright Page
    """Save ``name`` under $POWERSYNC_SCREENSHOTS when it is set (``make screenshots``)."""
    folder = os.environ.get("POWERSYNC_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), **kwargs)
