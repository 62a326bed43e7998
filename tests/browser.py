"""Helpers for the browser tests: run app.py on a free port, drive Debian's Chromium with Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence

import pytest

from serdemo.app.local_server import ROOT, free_port, running_app, wait_for_http  # noqa: F401  (used by tests)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    """Debian's chromium; skip where absent, but fail in CI, whose .ci/run installs it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no chromium on PATH: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message + " (.ci/run should have installed it)")
        pytest.skip(message)
    return path


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000, extra_args: Sequence[str] = ()) -> Iterator:
    """A fresh headless Chromium page; ``extra_args`` go after :data:`CHROMIUM_ARGS` (a fake microphone)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_for_text(page, selector: str, needle: str, timeout: float = 60.0) -> str:
    """Poll the inner text of ``selector`` until it contains ``needle``; returns the text."""
    deadline = time.perf_counter() + timeout
    text = ""
    while time.perf_counter() < deadline:
        with contextlib.suppress(Exception):
            text = page.locator(selector).first.inner_text(timeout=1000)
            if needle in text:
                return text
        time.sleep(0.25)
    raise AssertionError(f"{selector} never showed {needle!r} within {timeout:.0f} s; last text: {text!r}")
