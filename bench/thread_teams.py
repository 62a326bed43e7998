"""What a second thread that ran torch costs every later call: whisper-base on a 3 s clip, p50 per case.

torch's CPU operators run on OpenMP (libgomp in the pip wheels), which keeps a team of worker threads
for each thread that has called into it, for as long as that thread lives. This bench starts the app's
service (start-up in a thread that ends with it), embeds a new 3 s clip with whisper-base on the service's
model thread, then on other threads, and again on the model thread while those threads are alive and
after they end; then it times ``Service.predict`` called from the main thread, from four long-lived
worker threads in turn (as Gradio's and the HTTP route's workers serve requests) and from a new thread
per call. Since serdemo/app/model_thread.py the service runs every prediction's model work on its model
thread, whichever thread calls it.

Usage::

    python bench/thread_teams.py --runs 30 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from serdemo.app import ASSETS, Service, ServiceConfig
from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.experiment import machine_info


def median_ms(call: Callable[[], float], runs: int) -> float:
    """Median of ``runs`` timings that ``call`` returns, after two untimed calls."""
    call(), call()
    return 1000 * statistics.median(call() for _ in range(runs))


def on_new_thread(work: Callable[[], float]) -> float:
    """``work()`` on a thread started for it, which ends before this returns."""
    out: list[float] = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=ASSETS / "examples" / "en_happy_news.flac")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wave = load_audio(args.clip)[: 3 * SAMPLE_RATE]
    wave = np.pad(wave, (0, 3 * SAMPLE_RATE - len(wave))).astype(np.float32)
    rng = np.random.default_rng()
    print(f"machine: {machine_info()['cpu']}, torch {torch.__version__}, {args.threads} torch threads")
    print(f"whisper-base, a new 3 s clip per call, {args.runs} calls per row")
    with tempfile.TemporaryDirectory() as scratch:
        # start-up runs in a thread that ends with it: afterwards only the model thread has run torch
        config = ServiceConfig(data_dir=Path(scratch) / "data", warm_up_umap=False)
        service = Service(config, log=lambda text: None).start(background=False)
        model_thread = service.ws.model_thread
        encoder = getattr(service.ws.encoder, "inner", service.ws.encoder)  # without the speech front end

        def embed() -> float:
            clip = wave + rng.standard_normal(len(wave)).astype(np.float32) * 3e-5
            tick = time.perf_counter()
            encoder.embed([clip])
            return time.perf_counter() - tick

        print("\n| encoder.embed called from | p50 ms |\n|---|---:|")
        other = ThreadPoolExecutor(1)
        rows = {
            "the model thread, the only thread that has run torch": lambda: model_thread.run(embed),
            "a new thread per call (each ends after its call)": lambda: on_new_thread(embed),
            "the model thread, those threads ended": lambda: model_thread.run(embed),
            "one other long-lived thread": lambda: other.submit(embed).result(),
            "the model thread, that other thread alive": lambda: model_thread.run(embed),
        }
        for name, call in rows.items():
            print(f"| {name} | {median_ms(call, args.runs):.0f} |", flush=True)
        other.shutdown(wait=True)
        ended = median_ms(lambda: model_thread.run(embed), args.runs)
        print(f"| the model thread, that other thread ended | {ended:.0f} |")

        path = Path(scratch) / "clip.wav"

        def predict() -> float:
            sf.write(path, wave + rng.standard_normal(len(wave)).astype(np.float32) * 3e-5, SAMPLE_RATE)
            tick = time.perf_counter()
            service.predict(path)
            return time.perf_counter() - tick

        # as Gradio's and the HTTP route's long-lived workers, which take turns serving requests
        workers = [ThreadPoolExecutor(1) for _ in range(4)]
        calls = iter(range(10**9))

        def from_the_workers() -> float:
            return workers[next(calls) % len(workers)].submit(predict).result()

        print("\n| Service.predict (its model work on the model thread) called from | p50 ms |\n|---|---:|")
        print(f"| the main thread | {median_ms(predict, args.runs):.0f} |", flush=True)
        print(f"| 4 long-lived worker threads in turn | {median_ms(from_the_workers, args.runs):.0f} |")
        print(f"| a new thread per call | {median_ms(lambda: on_new_thread(predict), args.runs):.0f} |")
        for worker in workers:
            worker.shutdown(wait=True)


if __name__ == "__main__":
    main()
