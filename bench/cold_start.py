"""Cold start of the app: seconds from `python app.py` to the page answering, and to the model being ready.

Usage:
    python bench/cold_start.py        # no corpora: shipped model, or the "pass --source-corpus" page
    python bench/cold_start.py --source-corpus ravdess=/data/ravdess --target-corpus emodb=/data/emodb \
        --corpus-limit 150 --runs 2

Each run uses a fresh data dir (a new annotation store, so the first model is trained again); the
embedding cache is the app's default, so the first run may embed the corpora and later runs reuse it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from serdemo.app.local_server import running_app


def wait_ready(log: Path, timeout: float) -> float:
    """Seconds until the app logs that start-up finished."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        text = log.read_text() if log.exists() else ""
        if "serdemo: ready after" in text or "No model yet" in text:
            return time.perf_counter() - start
        if "start-up failed" in text:
            raise RuntimeError(text[-2000:])
        time.sleep(0.2)
    raise TimeoutError(f"not ready within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args, app_args = parser.parse_known_args()
    pages, readies = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "app.log"
            t0 = time.perf_counter()
            with running_app(["--data-dir", str(Path(tmp) / "data"), *app_args], log, timeout=args.timeout):
                page = time.perf_counter() - t0
                ready = page + wait_ready(log, args.timeout)
            pages.append(page)
            readies.append(ready)
            print(
                f"run {run + 1}: page answers after {page:.1f} s, model ready after {ready:.1f} s", flush=True
            )
    print(
        f"cold start over {args.runs} run(s): page {statistics.median(pages):.1f} s (median), "
        f"ready {statistics.median(readies):.1f} s (median); args: {' '.join(app_args) or '(none)'}"
    )


if __name__ == "__main__":
    main()
