"""Predictions right after start-up, while UMAP's background warm-up compiles: p50 per 5 s window.

The app compiles UMAP's numba code in a low-priority thread once the first model is ready
(``ServiceConfig.warm_up_umap``, serdemo/app/explore.py), so that the first Explore UMAP takes about a
second. This bench starts a service (shipped source set, fresh data folder), then predicts a new 3 s
clip back to back for ``--seconds`` and prints the median and slowest call per 5 s window and whether the
warm-up thread was still alive, so the warm-up's cost to predictions made meanwhile can be read off.

``--nice N`` runs the warm-up thread at nice N instead of the app's, ``--switch-interval S`` sets
Python's thread switch interval (``sys.setswitchinterval``): the two alternatives docs/performance.md
reports on.

Usage::

    python bench/predict_during_warmup.py --seconds 40
    python bench/predict_during_warmup.py --seconds 30 --nice 19
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from serdemo.app import ASSETS, Service, ServiceConfig
from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.experiment import machine_info

WINDOW_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="how long to predict after start-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nice", type=int, default=None, help="the warm-up thread's nice value instead")
    parser.add_argument("--switch-interval", type=float, default=None, metavar="S")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    if args.nice is not None:  # the warm-up is the app's only caller of setpriority: give it our value
        set_priority = os.setpriority
        os.setpriority = lambda which, who, _priority: set_priority(which, who, args.nice)
    wave = load_audio(ASSETS / "examples" / "en_happy_news.flac")[: 3 * SAMPLE_RATE]
    wave = np.pad(wave, (0, 3 * SAMPLE_RATE - len(wave))).astype(np.float32)
    rng = np.random.default_rng()
    print(f"machine: {machine_info()['cpu']}, torch {torch.__version__}, {args.threads} torch threads")
    print(f"warm-up nice: {args.nice if args.nice is not None else 'the app default'}, "
          f"switch interval {sys.getswitchinterval()} s\n")  # fmt: skip
    print("| seconds after start-up | p50 ms | slowest ms | calls | warm-up running |")
    print("|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as scratch:
        service = Service(ServiceConfig(data_dir=Path(scratch) / "data"), log=lambda text: None)
        service.start(background=False)
        path, start, window, times = Path(scratch) / "clip.wav", time.perf_counter(), 0, []
        while time.perf_counter() - start < args.seconds:
            sf.write(path, wave + rng.standard_normal(len(wave)).astype(np.float32) * 3e-5, SAMPLE_RATE)
            tick = time.perf_counter()
            service.predict(path)
            times.append(time.perf_counter() - tick)
            if time.perf_counter() - start >= (window + 1) * WINDOW_S:
                running = any("warm-up" in thread.name for thread in threading.enumerate())
                span = f"{window * WINDOW_S:.0f}-{(window + 1) * WINDOW_S:.0f}"
                p50, slowest = 1000 * statistics.median(times), 1000 * max(times)
                print(f"| {span} | {p50:.0f} | {slowest:.0f} | {len(times)} | {running} |", flush=True)
                window, times = window + 1, []


if __name__ == "__main__":
    main()
