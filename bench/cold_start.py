"""Cold start of the app: seconds from `python app.py` to the page, the model, and the first HTTP prediction.

Usage:
    python bench/cold_start.py        # no corpora: shipped model, or the "pass --source-corpus" page
    python bench/cold_start.py --source-corpus ravdess=/data/ravdess --target-corpus emodb=/data/emodb \
        --corpus-limit 150 --runs 2

Each run uses a fresh data dir (a new annotation store, so the first model is trained again); the
embedding cache is the app's default, so the first run may embed the corpora and later runs reuse it.
The first HTTP prediction is one ``POST /api/predict_probs`` of an example clip once the model is ready
(the issue-12 start-up row): it includes the one-off costs of a process's first prediction.
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


def first_prediction(url: str, timeout: float) -> float:
    """Seconds until ``POST /api/predict_probs`` answers an example clip (503 while no model is ready)."""
    import httpx

    clip = (Path(__file__).resolve().parents[1] / "assets" / "examples" / "en_happy_news.flac").read_bytes()
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        answer = httpx.post(url.rstrip("/") + "/api/predict_probs", content=clip, timeout=timeout)
        if answer.status_code == 200:
            return time.perf_counter() - start
        if answer.status_code != 503:
            raise RuntimeError(f"/api/predict_probs answered {answer.status_code}: {answer.text[:500]}")
        time.sleep(0.1)
    raise TimeoutError(f"no prediction within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args, app_args = parser.parse_known_args()
    pages, readies, predictions = [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "app.log"
            t0 = time.perf_counter()
            with running_app(
                ["--data-dir", str(Path(tmp) / "data"), *app_args], log, timeout=args.timeout
            ) as url:
                page = time.perf_counter() - t0
                ready = page + wait_ready(log, args.timeout)
                # the first call pays one-off costs (voice activity detector, encoder warm-up): time it
                predicted = ready + first_prediction(url, args.timeout)
            pages.append(page)
            readies.append(ready)
            predictions.append(predicted)
            print(
                f"run {run + 1}: page answers after {page:.1f} s, model ready after {ready:.1f} s, "
                f"first HTTP prediction answered after {predicted:.1f} s",
                flush=True,
            )
    print(
        f"cold start over {args.runs} run(s), medians: page {statistics.median(pages):.1f} s, "
        f"ready {statistics.median(readies):.1f} s, "
        f"first HTTP prediction {statistics.median(predictions):.1f} s; "
        f"args: {' '.join(app_args) or '(none)'}"
    )


if __name__ == "__main__":
    main()
