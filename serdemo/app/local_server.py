"""The app on a free local port, for tests and benches: app.py in a subprocess, or a Service in process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serdemo.app import Service

ROOT = Path(__file__).resolve().parents[2]  # the repository: app.py, assets/


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


@contextlib.contextmanager
def served(service: Service, routes: Callable[[Any], None] | None = None) -> Iterator[str]:
    """The Gradio app of ``service`` on a free local port, in this process; yields its URL.

    ``routes`` gets the launched app, to add plain HTTP routes as app.py does.
    """
    from serdemo.app.ui import build_app

    app = build_app(service)
    port = free_port()
    app.queue().launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=service.allowed_paths(),
    )
    if routes is not None:
        routes(app)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()
        threading.Event().wait(0.1)
