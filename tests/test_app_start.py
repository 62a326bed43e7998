"""app.py refuses a taken port at once, before it loads any model."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
