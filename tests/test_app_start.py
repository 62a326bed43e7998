"""app.py refuses a taken port at once, before it loads any model, and takes one its last run just left."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _app_module():
    spec = importlib.util.spec_from_file_location("serdemo_app_script", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_port_the_last_run_just_left_is_taken_again():
    """Stop the app after it served a request, start it again: the port's connections are in TIME_WAIT."""
    with socket.socket() as server:  # as uvicorn binds: SO_REUSEADDR, which its connections inherit
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            connection, _ = server.accept()
            connection.close()  # the server closes first, as at shutdown: its side goes to TIME_WAIT
            client.recv(1)
    time.sleep(0.2)
    assert _app_module().port_in_use("127.0.0.1", port) is None
    with socket.socket() as listening:  # while another server listens there, it is refused
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", port))
        listening.listen()
        assert "in use" in _app_module().port_in_use("127.0.0.1", port).lower()


def test_a_busy_port_fails_at_once_with_a_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--data-dir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        seconds = time.perf_counter() - start
    assert done.returncode != 0
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr, done.stderr
    assert "loading encoder" not in done.stdout  # it stopped before the model
    assert seconds < 60
