"""Time one frozen-mode adaptation round (Algorithm 1 on cached features) for N target clips.

A round is one call of :func:`serdemo.learn.adapt.adapt` with the paper's settings (E = 100, W = 30, hard
pseudo-labels, rebalancing) on whisper-base-shaped features (7 layers x 1024): what the app runs
after a user labels a batch of clips. Features are synthetic (class-dependent Gaussian means, a
shifted "target language"), so only the timing is meaningful, and the encoder's cost is excluded:
frozen mode embeds each clip once and reads it from the cache afterwards. Patience 0: every round
runs all E epochs, so the time is the worst case, not the luck of early stopping.

``--baseline`` also times the head on raw features (``adapt(..., reduce=False)``, the path before
:mod:`serdemo.learn.reduced_head`) in the same run, alternating with the default, and checks both end on
the same validation score: the ratio is the figure to quote on a loaded machine.

``--against DIR`` times another version of the code on the same rounds: DIR is a source tree (e.g.
``git archive main | tar -x -C /tmp/main``), run in a child process (``PYTHONPATH=DIR``) after each
in-process round, same data and seed; it reports both and whether they end on the same validation score.
Run the bench itself with ``PYTHONPATH=.`` so that it times this checkout, not an installed copy.

Usage::

    python bench/adapt_round.py                              # 2,000 target + 1,000 source clips
    python bench/adapt_round.py --baseline                   # + the raw-feature path, same run
    python bench/adapt_round.py --sizes 500 2000 10000 50000 --repeats 1   # the cost curve
    python bench/adapt_round.py --sizes 2000 10000 --against /tmp/main     # this checkout vs main
    python bench/adapt_round.py --components 256   # + the head trained on 256 principal components
    python bench/adapt_round.py --compare-threads 1   # + the same rounds on one torch thread

``--components K`` times rounds whose head trains on K principal components of its input
(``AdaptConfig.input_components``): a different model, so its validation score differs by design.
``--compare-threads N`` times the same rounds with ``AdaptConfig.threads = N`` (the default, 0, trains
frozen rounds on at most 2); only float rounding differs, so a warning about the scores would mean more.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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
    features = np.broadcast_to(centres[labels] + shift, (n, layers, dim)).copy()
    for start in range(0, n, 4096):  # float32 noise in chunks: 50,000 clips stay within a few GB
        rows = slice(start, min(start + 4096, n))
        features[rows] += rng.standard_normal((len(features[rows]), layers, dim), dtype=np.float32)
    speakers = [f"{language}/{i % 20}" for i in range(n)]
    return ClipSet([f"{language}/{i}" for i in range(n)], labels, [language] * n, speakers, features=features)


def round_inputs(args: argparse.Namespace, n_target: int):
    """Source, labeled and unlabeled target, validation sets and config of a round: the same every call."""
    rng = np.random.default_rng(0)
    source = synthetic(args.source, "en", 0.0, rng, args.layers, args.dim)
    target = synthetic(n_target, "de", 0.5, rng, args.layers, args.dim)
    validation = {
        "en": synthetic(args.validation, "en", 0.0, rng, args.layers, args.dim),
        "de": synthetic(args.validation, "de", 0.5, rng, args.layers, args.dim),
    }
    labeled = target.subset(np.arange(args.labeled))
    unlabeled = target.subset(np.arange(args.labeled, n_target)).without_labels()
    del target
    config = AdaptConfig(
        policy=args.policy,
        epochs=args.epochs,
        patience=0,
        normalization=args.normalization,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    return source, labeled, unlabeled, validation, config


def one_round(
    args: argparse.Namespace,
    n_target: int,
    seed: int,
    reduce: bool = True,
    components: int = 0,
    threads: int | None = None,
) -> dict:
    """Time one round in this process: seconds in all, in training epochs, and outside them (set-up)."""
    source, labeled, unlabeled, validation, config = round_inputs(args, n_target)
    config = config.replace(seed=seed, input_components=components)
    config = config if threads is None else config.replace(threads=threads)
    threads_used = []  # adapt sets torch's thread count for the run and restores it: read it per epoch
    tick, cpu = time.perf_counter(), time.process_time()
    result = adapt(
        source,
        labeled,
        unlabeled,
        validation,
        config,
        progress=lambda event: threads_used.append(torch.get_num_threads()),
        reduce=reduce,
    )
    elapsed, cpu = time.perf_counter() - tick, time.process_time() - cpu
    timings = result.timings
    return {
        "seconds": elapsed,
        "cpu": cpu,  # CPU seconds of this process: less sensitive than wall time to other jobs' load
        "train": timings["train"],
        "other": elapsed - timings["train"] - timings["validation"] - timings["pseudo_label"],
        "epochs": result.epochs_run,
        "best": result.best_score,
        "threads": threads_used[-1],
    }


def child_round(args: argparse.Namespace, n_target: int, seed: int) -> dict:
    """The same round timed by the code in ``args.against``, in a fresh process."""
    command = [sys.executable, __file__, "--child-seed", str(seed), "--sizes", str(n_target)]
    for flag in ("labeled", "source", "validation", "layers", "dim", "epochs", "policy", "normalization"):
        command += [f"--{flag}", str(getattr(args, flag))]
    command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    env = os.environ | {"PYTHONPATH": os.path.abspath(args.against)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_rounds(args: argparse.Namespace, n_target: int, paths: list[str]) -> dict[str, list[float]]:
    """Seconds per round of each path ("reduced", "raw", "against"), repeats interleaved so load hits all."""
    seconds: dict[str, list[float]] = {path: [] for path in paths}
    cpu: dict[str, list[float]] = {path: [] for path in paths}
    for repeat in range(args.repeats + args.warmup):
        scores = {}
        for path in paths:
            if path == "against":
                run = child_round(args, n_target, repeat)
            elif path == "components":
                run = one_round(args, n_target, repeat, components=args.components)
            elif path == "threads":
                run = one_round(args, n_target, repeat, threads=args.compare_threads)
            else:
                run = one_round(args, n_target, repeat, reduce=path == "reduced")
            if path != "components":  # a different model: its score differs by design
                scores[path] = run["best"]
            if repeat >= args.warmup:
                seconds[path].append(run["seconds"])
                cpu[path].append(run["cpu"])
            print(
                f"  {n_target} target, {LABELS[path]}, "
                f"{'warm-up' if repeat < args.warmup else f'repeat {repeat - args.warmup}'}: "
                f"{run['seconds']:.2f} s, CPU {run['cpu']:.2f} s ({run['epochs']} epochs, "
                f"{run.get('threads', '?')} threads, "
                f"train {run['train']:.2f} s, "
                f"outside the epochs {run['other']:.2f} s, best validation {run['best']:.4f})",
                flush=True,
            )
        if len(set(scores.values())) > 1:
            print(f"  WARNING: the paths disagree on the best validation score: {scores}")
    for path in paths:
        print(f"  {n_target} target, {LABELS[path]}: median CPU {statistics.median(cpu[path]):.2f} s")
    return seconds


LABELS = {
    "reduced": "this checkout",
    "raw": "raw inputs (reduce=False)",
    "against": "--against tree",
    "components": "--components K",
    "threads": "--compare-threads N",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[2000], help="target clips (labeled + unlabeled)"
    )
    parser.add_argument("--labeled", type=int, default=100, help="labeled target clips among them")
    parser.add_argument("--source", type=int, default=1000, help="source clips")
    parser.add_argument("--validation", type=int, default=150, help="validation clips per language")
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--dim", type=int, default=1024, help="per-layer feature size (2 x hidden)")
    parser.add_argument("--epochs", type=int, default=AdaptConfig().epochs)
    parser.add_argument("--policy", default="hard", choices=["hard", "soft", "none"])
    parser.add_argument("--batch-size", type=int, default=AdaptConfig().batch_size, help="clips per step")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per size (median reported)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed rounds first")
    parser.add_argument("--baseline", action="store_true", help="also time the raw-feature path, same run")
    parser.add_argument("--against", metavar="DIR", help="also time the code of this source tree, same run")
    parser.add_argument(
        "--components",
        type=int,
        metavar="K",
        help="also time rounds with AdaptConfig.input_components=K (serdemo.learn.components), same run",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=AdaptConfig().threads,
        help="AdaptConfig.threads of the rounds (default 0: at most 2 in frozen mode)",
    )
    parser.add_argument(
        "--compare-threads",
        type=int,
        metavar="N",
        help="also time the rounds with AdaptConfig.threads=N, same run (only float rounding differs)",
    )
    parser.add_argument("--child-seed", type=int, help=argparse.SUPPRESS)  # one round, JSON out (--against)
    parser.add_argument(
        "--normalization", default=AdaptConfig().normalization, help="feature standardisation (AdaptConfig's)"
    )
    args = parser.parse_args()
    if any(not 0 <= args.labeled <= n for n in args.sizes):
        parser.error("--labeled must be between 0 and every --sizes value")

    # one tiny round first, in every process: its first call pays one-off costs (lazy imports in torch.optim)
    one_round(argparse.Namespace(**{**vars(args), "epochs": 2, "labeled": 10}), 200, 0)
    if args.child_seed is not None:
        print(json.dumps(one_round(args, args.sizes[0], args.child_seed)))
        return

    paths = ["reduced"] + (["raw"] if args.baseline else []) + (["against"] if args.against else [])
    paths += ["components"] if args.components else []
    paths += ["threads"] if args.compare_threads is not None else []
    rows = []
    for n_target in args.sizes:
        seconds = time_rounds(args, n_target, paths)
        rows.append((n_target, {path: statistics.median(s) for path, s in seconds.items()}))

    machine = machine_info()
    print(
        f"\none {args.policy} adaptation round ({args.normalization}), E={args.epochs}, "
        f"W={AdaptConfig().window}, batch {args.batch_size}, {args.labeled} labeled target clips, "
        f"{args.source} source clips, {args.layers}x{args.dim} features, median of {args.repeats}:"
    )
    others = paths[1:]
    print(
        "| target clips | this checkout | "
        + "".join(f"{LABELS[p]} | {LABELS[p]} / this | " for p in others)
        + "s per 1,000 target |"
    )
    print("|---:" * (2 + 2 * len(others) + 1) + "|")
    for n_target, median in rows:
        cells = "".join(f"{median[p]:.2f} s | {median[p] / median['reduced']:.2f}x | " for p in others)
        per_1000 = 1000 * median["reduced"] / n_target
        print(f"| {n_target:,} | {median['reduced']:.2f} s | {cells}{per_1000:.2f} |")
    print(
        f"machine: {machine['nproc']} cores, {machine['cpu']}, torch {machine['torch']} "
        f"({torch.get_num_threads()} threads outside adapt; rounds train on the threads shown per round), "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
