"""Can the app tell, without labels, that a new language's pool was recorded in one mood?

The one signal it has before a round is what the active model answers on the pool. For pools of 20 clips
from a corpus' training speakers, scored by the first model (a fresh data folder, the app's defaults) as
clips of a new language: the share of the model's most frequent answer for a pool of each single emotion,
for 50 random pools of every emotion, for pools of two emotions (10 + 10, every pair), and for pools of one
speaker's clips (every emotion). A detector needs one-mood pools clearly above the others. The top
answer's share does not separate them; how far the answers spread does, for one mood (bench/pool_moods.py,
serdemo/learn/pool_moods.py).

Usage::

    python bench/one_mood_detect.py emodb=../shared/corpora/emodb
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from one_mood_batches import score  # noqa: E402

from serdemo.app import Service, ServiceConfig  # noqa: E402
from serdemo.audio import load_audio  # noqa: E402
from serdemo.cache import embed_waveforms  # noqa: E402
from serdemo.cli_options import corpus_arg  # noqa: E402
from serdemo.corpora import load_corpus  # noqa: E402
from serdemo.experiment import machine_info  # noqa: E402
from serdemo.labels import EMOTIONS  # noqa: E402
from serdemo.splits import speaker_split  # noqa: E402

POOL = 20


def top_share(answers: np.ndarray, rows: np.ndarray) -> float:
    """Share of the most frequent answer among ``answers[rows]``."""
    return float(np.bincount(answers[rows], minlength=len(EMOTIONS)).max() / len(rows))


def spread(values: list[float]) -> str:
    return f"median {np.median(values):.0%}, 90th pct {np.percentile(values, 90):.0%}, max {max(values):.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "corpora", type=corpus_arg, nargs="+", metavar="NAME=PATH", help="corpora to pool from"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {machine_info()['cpu']}; pools of {POOL} clips scored by the first model\n")
    print("| corpus | pools | top answer's share |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        service = Service(ServiceConfig(data_dir=Path(scratch) / "data"), log=lambda text: None)
        service.start(background=False)
        ws = service.ws
        first = ws.model(service.store.active_version().id)
        for name, root in args.corpora:
            train = speaker_split(
                [u for u in load_corpus(name, Path(root)) if u.emotion in EMOTIONS], seed=0
            ).train
            features = embed_waveforms(ws.encoder, [load_audio(u.path) for u in train], ws.cache)
            answers = score(first, train, features, list(range(len(train)))).argmax(1)
            truth = np.array([EMOTIONS.index(u.emotion) for u in train])
            speakers = np.array([u.speaker for u in train])

            one_mood = []
            for c, emotion in enumerate(EMOTIONS):
                rows = np.flatnonzero(truth == c)[:POOL]
                top = EMOTIONS[np.bincount(answers[rows], minlength=len(EMOTIONS)).argmax()]
                one_mood.append(f"{emotion} {top_share(answers, rows):.0%} (as {top})")
            rng = np.random.default_rng(0)
            mixed = [top_share(answers, rng.choice(len(train), POOL, replace=False)) for _ in range(50)]
            pairs = [
                top_share(
                    answers,
                    np.concatenate(
                        [np.flatnonzero(truth == a)[: POOL // 2], np.flatnonzero(truth == b)[: POOL // 2]]
                    ),
                )
                for a, b in combinations(range(len(EMOTIONS)), 2)
            ]
            own = [top_share(answers, np.flatnonzero(speakers == s)[: 2 * POOL]) for s in np.unique(speakers)]

            print(f"| {name} | one emotion each | {'; '.join(one_mood)} |")
            print(f"| {name} | 50 random, every emotion | {spread(mixed)} |")
            print(f"| {name} | two emotions, every pair | {spread(pairs)} |")
            print(f"| {name} | one speaker each ({len(own)}), every emotion | {spread(own)} |", flush=True)


if __name__ == "__main__":
    main()
