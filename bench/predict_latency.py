"""In-process latency of ``Service.predict`` for a 3 s clip: whole-clip embedding vs the speech front end.

Both services run in the same process on the same encoder weights, and their calls alternate, so load from
other jobs falls on both alike. Every call gets the clip with fresh dither at -90 dBFS, so the embedding
cache never answers and each call pays for decoding, voice activity detection, the encoder and the head.
Then it times Silero alone on the same clip, forwards and reversed as the front end runs it: silero-vad's
own loop (one TorchScript call per 32 ms frame) against serdemo.silero_sequence's one pass.

Usage::

    python bench/predict_latency.py --source ravdess=../shared/corpora/ravdess
    python bench/predict_latency.py --source ravdess=PATH --clip my_clip.wav --seconds 3 --runs 30
    python bench/predict_latency.py --source ravdess=PATH --frontends none silero-trim0.25-weighted \
        silero-trim0.25-fill-level-weighted
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
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


def main() -> None:
    """Start one service per front end, then time alternating predictions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=corpus_arg, action="append", required=True, metavar="NAME=PATH",
                        help="source corpus both services train their first model on (cached)")  # fmt: skip
    parser.add_argument("--clip", type=Path, default=ASSETS / "examples" / "en_happy_news.flac")
    parser.add_argument("--seconds", type=float, default=3.0, help="cut or zero-pad the clip to this length")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per front end (default 20)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frontends", nargs="+", default=None, metavar="FRONTEND",
                        help="front ends to compare, the first as the reference (default: none and the "
                        "app's)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoder = build_encoder("whisper-base")
    wave = load_audio(args.clip)[: round(args.seconds * SAMPLE_RATE)]
    wave = np.pad(wave, (0, round(args.seconds * SAMPLE_RATE) - len(wave)))
    rng = np.random.default_rng()  # fresh entropy: a rerun must not find last run's clips in the cache
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        services = {}
        for frontend in args.frontends or ("none", AdaptConfig().frontend):
            config = ServiceConfig(  # no training copies: the model does not change the time of a call
                data_dir=scratch / frontend,
                source_corpora=tuple(args.source),
                frontend=frontend,
                augment_copies=0,
                warm_up_umap=False,  # its ~15 s numba compile takes a core and doubles call times meanwhile
            )
            services[frontend] = Service(config, encoder=encoder, log=lambda text: None).start(
                background=False
            )
        times: dict[str, list[float]] = {name: [] for name in services}
        for run in range(args.runs + 2):  # the first two calls warm up (Silero's first call compiles)
            for name, service in services.items():
                path = scratch / f"clip-{name}.wav"
                dither = rng.standard_normal(len(wave)).astype(np.float32) * 10 ** (-90 / 20)
                sf.write(path, wave + dither, SAMPLE_RATE, subtype="FLOAT")
                tick = time.perf_counter()
                service.predict(path)
                if run >= 2:
                    times[name].append(time.perf_counter() - tick)
    print(f"{args.clip.name} cut to {args.seconds:g} s; {args.runs} calls each, alternating")
    print(f"machine: {machine_info()['cpu']}, torch {torch.__version__}, {args.threads} thread(s)\n")
    print("| front end | p50 ms | p90 ms |")
    print("|---|---|---|")
    for name, values in times.items():
        p90 = float(np.percentile(values, 90))
        print(f"| {name} | {1000 * statistics.median(values):.0f} | {1000 * p90:.0f} |")
    reference = next(iter(times))
    old, *others = (statistics.median(v) for v in times.values())
    for name, new in zip(list(times)[1:], others, strict=True):
        # calls alternate, so call i of each front end met about the same load: the median of those pairs'
        # differences is steadier than the difference of medians when the load swings during the run
        paired = statistics.median(b - a for a, b in zip(times[reference], times[name], strict=True))
        print(
            f"\n{name} vs {reference}: difference of medians {1000 * (new - old):+.0f} ms, "
            f"ratio {new / old:.2f}; median of paired differences {1000 * paired:+.0f} ms",
            end="",
        )
    print()
    detector_times(wave, args.runs)


def detector_times(wave: np.ndarray, runs: int) -> None:
    """The detector alone, both directions as the front end runs it: a call per frame vs one pass."""
    from silero_vad import load_silero_vad

    from serdemo.silero_sequence import silero_probs

    padded = np.pad(wave, (4096, 4096 + (-len(wave) % 512))).astype(np.float32)
    both = [padded, padded[::-1].copy()]
    model = load_silero_vad()

    def per_frame() -> None:
        for clip in both:
            model.reset_states()
            model.audio_forward(torch.from_numpy(clip)[None], SAMPLE_RATE)

    times: dict[str, list[float]] = {"silero-vad, a call per 32 ms frame": [], "one pass": []}
    for run in range(runs + 2):
        for name, detect in zip(times, (per_frame, lambda: silero_probs(both)), strict=True):
            tick = time.perf_counter()
            detect()
            if run >= 2:
                times[name].append(time.perf_counter() - tick)
    print("\n| Silero, forwards and reversed | p50 ms |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {1000 * statistics.median(values):.1f} |")


if __name__ == "__main__":
    main()
