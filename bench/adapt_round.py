"""Time one frozen-mode adaptation round (Algorithm 1 on cached features) for N target clips.

A round is one call of :func:`serdemo.learn.adapt.adapt` with the paper's settings (E = 100, W = 30, hard
pseudo-labels, rebalancing) on whisper-base-shaped features (7 layers x 1024): what the app runs
after a user labels a batch of clips. Features are synthetic (class-dependent Gaussian means, a
shifted "target language"), so only the timing is meaningful, and the encoder's cost is excluded:
frozen mode embeds each clip once and reads it from the cache afterwards.

Usage::

    python bench/adapt_round.py                  # 2,000 target clips, 500 source clips, 3 repeats
    python bench/adapt_round.py --target 5000 --labeled 200 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from serdemo.config import AdaptConfig
from serdemo.experiment import machine_info
from serdemo.learn import ClipSet, adapt


def synthetic(
    n: int, language: str, shift: float, rng: np.random.Generator, layers: int, dim: int
) -> ClipSet:
    """``n`` clips of 5 classes whose features differ by class mean, plus a language offset."""
    labels = rng.integers(0, 5, n)
    centres = rng.standard_normal((5, 1, dim)).astype(np.float32)
    features = centres[labels] + shift + rng.standard_normal((n, layers, dim)).astype(np.float32)
    speakers = [f"{language}/{i % 20}" for i in range(n)]
    return ClipSet([f"{language}/{i}" for i in range(n)], labels, [language] * n, speakers, features=features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, default=2000, help="target clips (labeled + unlabeled)")
    parser.add_argument("--labeled", type=int, default=100, help="labeled target clips among them")
    parser.add_argument("--source", type=int, default=500, help="source clips (RAVDESS train has ~500)")
    parser.add_argument("--validation", type=int, default=150, help="validation clips per language")
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--dim", type=int, default=1024, help="per-layer feature size (2 x hidden)")
    parser.add_argument("--epochs", type=int, default=AdaptConfig().epochs)
    parser.add_argument("--policy", default="hard", choices=["hard", "soft", "none"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--normalization", default=AdaptConfig().normalization, help="feature standardisation (AdaptConfig's)"
    )
    args = parser.parse_args()
    if not 0 <= args.labeled <= args.target:
        parser.error("--labeled must be between 0 and --target")

    rng = np.random.default_rng(0)
    source = synthetic(args.source, "en", 0.0, rng, args.layers, args.dim)
    target = synthetic(args.target, "de", 0.5, rng, args.layers, args.dim)
    validation = {
        "en": synthetic(args.validation, "en", 0.0, rng, args.layers, args.dim),
        "de": synthetic(args.validation, "de", 0.5, rng, args.layers, args.dim),
    }
    labeled, unlabeled = (
        target.subset(np.arange(args.labeled)),
        target.subset(np.arange(args.labeled, args.target)),
    )
    # patience 0: every round runs all E epochs, so the time is the worst case, not luck of early stopping
    config = AdaptConfig(policy=args.policy, epochs=args.epochs, patience=0, normalization=args.normalization)

    seconds, epochs = [], 0
    for repeat in range(args.repeats):
        tick = time.perf_counter()
        result = adapt(source, labeled, unlabeled.without_labels(), validation, config.replace(seed=repeat))
        seconds.append(time.perf_counter() - tick)
        epochs = result.epochs_run
        print(f"  repeat {repeat}: {seconds[-1]:.2f} s ({epochs} epochs)", flush=True)

    machine = machine_info()
    median = statistics.median(seconds)
    print(
        f"one {args.policy} adaptation round ({args.normalization}), {args.target} target clips "
        f"({args.labeled} labeled) + "
        f"{args.source} source clips, {args.layers}x{args.dim} features, {epochs} epochs: "
        f"median {median:.2f} s over {args.repeats} runs ({1000 * median / epochs:.0f} ms/epoch)"
    )
    print(
        f"machine: {machine['nproc']} cores, {machine['cpu']}, torch {machine['torch']} "
        f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
