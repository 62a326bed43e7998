"""Predictions while an adaptation round trains in another thread, as in the app: both sides' times.

The app runs a round (and the cross-validation that judges it) in a worker thread while the person may
keep predicting. This bench starts a ``Service`` on the shipped source set, then for each phase runs
rounds back to back in a worker thread (``bench/adapt_round.py``'s synthetic 2,000-clip round, with
``AdaptConfig.threads`` = the phase's count) while the main thread predicts a 3 s clip ``--predictions``
times; "idle" phases predict with no round. It prints the prediction p50 / p90 and the seconds of each
round that finished during the phase.

Usage::

    python bench/predict_during_round.py --source ravdess=../shared/corpora/ravdess
    python bench/predict_during_round.py --source ravdess=PATH --phases idle 1 2 1 2 idle --predictions 120
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
from serdemo.cli_options import corpus_arg
from serdemo.config import AdaptConfig
from serdemo.encoders import build_encoder
from serdemo.experiment import machine_info
from serdemo.learn import adapt

sys.path.insert(0, str(Path(__file__).parent))
from adapt_round import round_inputs  # noqa: E402  (the same synthetic round as that bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=corpus_arg, action="append", required=True, metavar="NAME=PATH",
                        help="source corpus of the service's first model (cached)")  # fmt: skip
    parser.add_argument("--phases", nargs="+", default=["idle", "1", "2", "1", "2", "idle"],
                        help="'idle' or a round's thread count, in order")  # fmt: skip
    parser.add_argument("--predictions", type=int, default=120, help="predictions per phase")
    parser.add_argument("--target", type=int, default=2000, help="target clips of the round")
    args = parser.parse_args()

    defaults = AdaptConfig()
    round_args = argparse.Namespace(labeled=100, source=1000, validation=150, layers=7, dim=1024,
                                    epochs=defaults.epochs, policy="hard", batch_size=defaults.batch_size,
                                    normalization=defaults.normalization, threads=0)  # fmt: skip
    source, labeled, unlabeled, validation, config = round_inputs(round_args, args.target)
    wave = load_audio(ASSETS / "examples" / "en_happy_news.flac")[: 3 * SAMPLE_RATE]
    rng = np.random.default_rng()  # fresh dither per call: the embedding cache must not answer
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # no training copies: the model does not change the time of a call (as bench/predict_latency.py)
        service_config = ServiceConfig(
            data_dir=scratch / "data", source_corpora=tuple(args.source), augment_copies=0
        )
        service = Service(service_config, encoder=build_encoder("whisper-base"), log=lambda text: None)
        service.start(background=False)

        def predict_times(count: int) -> list[float]:
            times = []
            for _ in range(count):
                path = scratch / "clip.wav"
                dither = rng.standard_normal(len(wave)).astype(np.float32) * 1e-4
                sf.write(path, wave + dither, SAMPLE_RATE, subtype="FLOAT")
                tick = time.perf_counter()
                service.predict(path)
                times.append(time.perf_counter() - tick)
            return times

        predict_times(3)  # warm-up: first calls compile and allocate
        machine = f"{machine_info()['cpu']}, {os.cpu_count()} cores, torch {torch.__version__}"
        threads = torch.get_num_threads()
        print(f"machine: {machine} ({threads} threads for predictions); {args.target}-clip rounds\n")
        print("| round threads | predict p50 ms | p90 ms | rounds finished (s each) |\n|---|---:|---:|---|")
        for phase in args.phases:
            stop, rounds = threading.Event(), []

            def train(threads: int, stop: threading.Event = stop, rounds: list = rounds) -> None:
                while not stop.is_set():
                    tick = time.perf_counter()
                    run = config.replace(threads=threads, seed=0)
                    adapt(source, labeled, unlabeled, validation, run, should_stop=stop)
                    if not stop.is_set():
                        rounds.append(time.perf_counter() - tick)

            worker = None
            if phase != "idle":
                worker = threading.Thread(target=train, args=(int(phase),))
                worker.start()
                time.sleep(2.0)  # past the round's set-up, into its epochs
            times = predict_times(args.predictions)
            stop.set()
            if worker is not None:
                worker.join()
            p50, p90 = 1000 * statistics.median(times), 1000 * float(np.percentile(times, 90))
            finished = ", ".join(f"{r:.1f}" for r in rounds) or "-"
            print(f"| {phase} | {p50:.0f} | {p90:.0f} | {finished} |", flush=True)


if __name__ == "__main__":
    main()
