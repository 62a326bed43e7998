"""Helpers for the browser tests: run app.py on a free port, drive Debian's Chromium with Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(
    url: str, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None
) -> float:
    """Poll ``url`` until it answers 200; returns the seconds waited. Fails early if ``process`` exits."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"app exited with code {process.returncode} before answering:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s:\n{tail}")


@contextlib.contextmanager
def running_app(
    args: Sequence[str], log: Path, timeout: float = 180.0, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start ``python app.py --port <free> ARGS``; yield its URL once the page answers; stop it after."""
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--host", "127.0.0.1", *args]
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, env=environment
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, timeout, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
