"""Cold start of the app: seconds from `python app.py` to the page, the model, and the first HTTP prediction.

Usage:
    python bench/cold_start.py        # no corpora: shipped model, or the "pass --source-corpus" page
    python bench/cold_start.py --source-corpus ravdess=/data/ravdess --target-corpus emodb=/data/emodb \
        --corpus-limit 150 --runs 2

Each run uses a fresh data dir (a new annotation store); the embedding cache is the app's default, so
the first run may embed the corpora and train the first model, and later runs reuse both (the first
model is cached only without a target corpus: serdemo/app/first_model.py).

``--against DIR`` alternates each run with one of the app in another source tree (e.g. ``git archive
main | tar -x -C /tmp/main``), started by that tree's own copy of this bench, so both see the same load;
``--warmup N`` runs (of each) first, untimed.
The first HTTP prediction is one ``POST /api/predict_probs`` of an example clip once the model is ready
(the issue-12 start-up row): it includes the one-off costs of a process's first prediction.

Each run also times a fresh interpreter that only imports the libraries a start cannot answer without
(Gradio for the page, torch for the model): the floor that no change inside serdemo can go under,
measured beside the starts so that both see the same machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
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


def one_start(app_args: list[str], timeout: float) -> tuple[float, float, float]:
    """Seconds from launch to the page, to the model, to the first answered prediction, fresh data dir."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "app.log"
        t0 = time.perf_counter()
        with running_app(["--data-dir", str(Path(tmp) / "data"), *app_args], log, timeout=timeout) as url:
            page = time.perf_counter() - t0
            ready = page + wait_ready(log, timeout)
            # the first call pays one-off costs (voice activity detector, encoder warm-up): time it
            predicted = ready + first_prediction(url, timeout)
    return page, ready, predicted


FLOOR_IMPORTS = ("gradio", "torch")


def import_floor() -> float:
    """Seconds for a fresh interpreter to import :data:`FLOOR_IMPORTS` and exit."""
    code = "; ".join(f"import {module}" for module in FLOOR_IMPORTS)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


RUN_LINE = re.compile(r"page answers after ([\d.]+) s, model ready after ([\d.]+) s, .* after ([\d.]+) s")


def start_in(tree: Path, app_args: list[str], timeout: float) -> tuple[float, float, float]:
    """One start of the app in another source tree, timed by that tree's own copy of this bench."""
    command = [sys.executable, str(tree / "bench" / "cold_start.py"), "--runs", "1", *app_args]
    env = os.environ | {"PYTHONPATH": str(tree)}
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True).stdout
    page, ready, predicted = (float(v) for v in RUN_LINE.search(out).groups())
    return page, ready, predicted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0, help="untimed starts first (of each tree)")
    parser.add_argument("--against", type=Path, metavar="DIR", help="alternate with the app in this tree")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args, app_args = parser.parse_known_args()
    trees = {"this checkout": None} | ({f"--against {args.against}": args.against} if args.against else {})
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    floors: list[float] = []
    for run in range(args.warmup + args.runs):
        floor = import_floor()
        if run >= args.warmup:
            floors.append(floor)
        print(f"imports alone ({', '.join(FLOOR_IMPORTS)}): {floor:.1f} s", flush=True)
        for name, tree in trees.items():
            if tree is None:
                page, ready, predicted = one_start(app_args, args.timeout)
            else:
                page, ready, predicted = start_in(tree.resolve(), app_args, args.timeout)
            if run >= args.warmup:
                times[name].append((page, ready, predicted))
            label = "warm-up" if run < args.warmup else f"run {run - args.warmup + 1}"
            print(
                f"{label} ({name}): page answers after {page:.1f} s, model ready after {ready:.1f} s, "
                f"first HTTP prediction answered after {predicted:.1f} s",
                flush=True,
            )
    for name, rows in times.items():
        pages, readies, predictions = zip(*rows, strict=True)
        print(
            f"cold start ({name}) over {args.runs} run(s), medians: page {statistics.median(pages):.1f} s, "
            f"ready {statistics.median(readies):.1f} s, "
            f"first HTTP prediction {statistics.median(predictions):.1f} s; "
            f"args: {' '.join(app_args) or '(none)'}"
        )
    print(f"imports alone, median of {len(floors)}: {statistics.median(floors):.1f} s")


if __name__ == "__main__":
    main()
