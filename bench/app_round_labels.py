"""Time the app's adaptation round as a person who labels their own clips meets it: until the new version
is active, and until cross-validation has judged it.

A fresh data folder (the shipped source set, as ``python app.py --data-dir EMPTY`` starts), a pool of a
corpus' clips added as files, as a person's uploads (no corpus labels: the round judges the new version by
5-fold cross-validation over the human labels, five more trainings), then rounds with the app's default
settings after labeling the first N clips of the pool with their corpus labels. The corpus' embeddings come
from the cache after the first run, so a rerun times the rounds, not the encoder.

Usage::

    python bench/app_round_labels.py emodb=../shared/corpora/emodb
    python bench/app_round_labels.py emodb=PATH --clips 40 --labels 12 25
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from padding import held_out  # noqa: E402

from serdemo.app import AdaptReport, AdaptRequest, Service, ServiceConfig  # noqa: E402
from serdemo.cli_options import corpus_arg  # noqa: E402
from serdemo.experiment import machine_info  # noqa: E402


def timed_round(service: Service, language: str) -> tuple[AdaptReport, float, float]:
    """One round with the app's defaults: its report, seconds until its version was active, in all."""
    active_at: list[float] = []
    start = time.perf_counter()

    def note_activation(fraction: float, text: str) -> None:
        if "judging it" in text and not active_at:  # the progress text once the version is active
            active_at.append(time.perf_counter() - start)

    report = service.adapt(AdaptRequest(language=language), progress=note_activation)
    total = time.perf_counter() - start
    return report, (active_at[0] if active_at else total), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "corpus", type=corpus_arg, metavar="NAME=PATH", help="corpus whose clips make the pool"
    )
    parser.add_argument("--clips", type=int, default=40, help="pool size, even over emotions (default 40)")
    parser.add_argument("--labels", type=int, nargs="+", default=[12, 25], help="labels before each round")
    parser.add_argument("--language", default="xx", help="the pool's language code (default xx)")
    args = parser.parse_args()
    name, root = args.corpus
    # the held-out speakers' clips: a pool as even over emotions as the corpus allows
    utterances = held_out(name, Path(root), args.clips)
    with tempfile.TemporaryDirectory() as scratch:
        service = Service(ServiceConfig(data_dir=Path(scratch) / "data"), log=lambda text: None)
        service.start(background=False)
        service.add_files([str(u.path) for u in utterances], args.language)
        emotion_of = {u.path.name: u.emotion for u in utterances}
        clips = service.store.clips(args.language)
        print(f"pool: {len(clips)} clips of {name} as `{args.language}`; app defaults, shipped source set")
        # before rounds activated their version early, it became active only once judged (the last column)
        print("| labels | new version active after | judged after |")
        print("|---:|---:|---:|")
        labeled = 0
        for target in args.labels:
            for clip in clips[labeled:target]:
                service.label(clip.id, emotion_of[clip.original_name], "bench")
            labeled = max(labeled, target)
            report, active, total = timed_round(service, args.language)
            print(f"| {report.labeled} | {active:.1f} s | {total:.1f} s |", flush=True)
    machine = machine_info()
    print(
        f"machine: {machine['nproc']} cores, {machine['cpu']}, torch {machine['torch']}, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
