"""How far a source-only model's answers spread over target pools of one mood, two moods and every emotion.

What ``AdaptConfig.one_mood_spread`` stands on (serdemo.learn.pool_moods). For each direction and seed: the
source-only model of the experiment protocol (the source's 60 % training speakers with their augmented
copies, selection on its 20 % validation speakers, no target clip), then pools drawn from the target's
training speakers, scored as a language the model has no statistics for, as the app's active model scores
a new language's pool. Printed: each pool's answer spread relative to the model's spread over the source
validation clips (:func:`serdemo.learn.pool_moods.relative_spread`), summarised per kind of pool:

- ``one``: up to ``--pool`` clips of one emotion, every emotion in turn;
- ``two``: ``--pool`` / 2 clips of each of two emotions, every pair;
- ``mixed``: 20 random draws of ``--pool`` clips of every emotion and speaker;
- ``speaker``: up to ``--pool`` clips of one speaker, every emotion (one person's mixed recording);
- with ``--noisy``, every pool's clips replaced by a copy with random silence, room noise and gain around
  the speech (serdemo.learn.augment, the training copies), the harder case for telling moods apart.

``--residual`` prints instead the spread left once the pool's main direction of variation is taken out (the
largest eigenvalue of the covariance of the centred log-probabilities), relative to the same reference: a
pool of two moods varies mainly along the line between them, so what is left should look like one mood's.

Run (~2 min per direction and seed with a warm cache; ``--noisy`` first embeds the copies)::

    python bench/pool_moods.py --seeds 0 1 2 3 4 5
    python bench/pool_moods.py --seeds 0 1 2 --noisy
    python bench/pool_moods.py --seeds 0 1 2 3 4 5 --residual
"""

from __future__ import annotations

import argparse
import os
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from serdemo.cache import EmbeddingCache, default_cache_dir, embed_files
from serdemo.config import AdaptConfig
from serdemo.corpora import load_corpus
from serdemo.encoders import build_encoder
from serdemo.experiment import machine_info
from serdemo.experiment.protocol import baseline_config
from serdemo.labels import EMOTIONS
from serdemo.learn import adapt, build_clipset, predict_proba
from serdemo.learn.augment import with_augmented_copies
from serdemo.learn.pool_moods import answer_spread, relative_spread, scored_as_unseen
from serdemo.speech import with_frontend
from serdemo.splits import speaker_split

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("SERDEMO_CORPORA", ROOT.parent / "shared" / "corpora"))
DIRECTIONS = {"en-de": ("ravdess", "emodb"), "de-en": ("emodb", "ravdess")}
KINDS = ("one", "two", "mixed", "speaker")
MIXED_DRAWS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=list(DIRECTIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pool", type=int, default=40, help="clips per pool (default 40)")
    parser.add_argument("--noisy", action="store_true", help="pools of noisy, padded copies of the clips")
    parser.add_argument("--residual", action="store_true", help="the spread beside the main direction")
    args = parser.parse_args()
    torch.set_num_threads(2)
    defaults = AdaptConfig()
    encoder = with_frontend(build_encoder(defaults.encoder), defaults.frontend)
    cache = EmbeddingCache(default_cache_dir())
    corpora = {
        name: [u for u in load_corpus(name, CORPORA / name) if u.emotion in EMOTIONS]
        for name in {n for d in args.directions for n in DIRECTIONS[d]}
    }
    features = {}
    for utterances in corpora.values():
        vectors = embed_files(encoder, [u.path for u in utterances], cache)
        features.update({u.id: v for u, v in zip(utterances, vectors, strict=True)})
    print(
        f"pools of {args.pool} clips{', noisy copies' if args.noisy else ''}; seeds {args.seeds}; "
        f"{'spread beside the main direction' if args.residual else 'relative answer spread'}; "
        f"machine: {machine_info()['cpu']}, torch {torch.__version__}\n"
    )
    line = defaults.one_mood_spread
    under = "" if args.residual else f" under {line} |"  # the rule's line is for the relative spread only
    print(f"| direction | pool | pools | min | 10th pct | median | 90th pct | max |{under}")
    print("|---|---|---:|---:|---:|---:|---:|---:|" + ("" if args.residual else "---:|"))

    def clips(utterances: list, language: str):
        return build_clipset(
            ids=[u.id for u in utterances],
            languages=[language] * len(utterances),
            speakers=[u.speaker for u in utterances],
            labels=[EMOTIONS.index(u.emotion) for u in utterances],
            features=np.stack([features[u.id] for u in utterances]),
        )

    for direction in args.directions:
        source_name, target_name = DIRECTIONS[direction]
        spreads: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for seed in args.seeds:
            source_split = speaker_split(corpora[source_name], seed=seed)
            target_train = speaker_split(corpora[target_name], seed=seed).train
            config = baseline_config(defaults.replace(seed=seed))
            train = clips(source_split.train, source_name)
            train = with_augmented_copies(
                train, [u.path for u in source_split.train], encoder, cache, config.augment_copies
            )
            validation = clips(source_split.validation, source_name)
            empty = train.subset(np.zeros(0, np.int64))
            model = adapt(train, empty, empty.without_labels(), {"source": validation}, config)
            pool = clips(target_train, target_name)
            if args.noisy:  # the first copy of every clip, in place of the clip
                copies = with_augmented_copies(pool, [u.path for u in target_train], encoder, cache, 1)
                pool = copies.subset(np.arange(len(pool), 2 * len(pool)))
            truth = np.array([EMOTIONS.index(u.emotion) for u in target_train])
            speakers = np.array([u.speaker for u in target_train])
            rng = np.random.default_rng(seed)

            def spread(rows: np.ndarray, model=model, pool=pool, validation=validation) -> float:
                if args.residual:
                    return residual_spread(model, pool.subset(rows), validation)
                return relative_spread(model, pool.subset(rows), validation)

            def of(label: int, n: int, rng=rng, truth=truth) -> np.ndarray:
                return rng.permutation(np.flatnonzero(truth == label))[:n]

            spreads["one"] += [spread(of(c, args.pool)) for c in range(len(EMOTIONS))]
            spreads["two"] += [
                spread(np.concatenate([of(a, args.pool // 2), of(b, args.pool // 2)]))
                for a, b in combinations(range(len(EMOTIONS)), 2)
            ]
            spreads["mixed"] += [
                spread(rng.choice(len(pool), args.pool, replace=False)) for _ in range(MIXED_DRAWS)
            ]
            for speaker in np.unique(speakers):
                spreads["speaker"].append(
                    spread(rng.permutation(np.flatnonzero(speakers == speaker))[: args.pool])
                )
        for kind, values in spreads.items():
            v = np.array(values)
            print(
                f"| {direction} | {kind} | {len(v)} | {v.min():.3f} | {np.percentile(v, 10):.3f} | "
                f"{np.median(v):.3f} | {np.percentile(v, 90):.3f} | {v.max():.3f} |"
                + ("" if args.residual else f" {(v < line).sum()} |"),
                flush=True,
            )


def residual_spread(model, pool, reference) -> float:
    """The answer spread over ``pool`` beside its main direction, relative to the spread over ``reference``.

    The pool is scored as :func:`relative_spread` scores it, as a language the model has no statistics for.
    """

    def covariance(probs: np.ndarray) -> np.ndarray:
        logs = np.log(np.clip(probs, 1e-6, 1.0))
        return np.cov((logs - logs.mean(1, keepdims=True)).T, bias=True)

    eigenvalues = np.linalg.eigvalsh(covariance(scored_as_unseen(model, pool)))
    return float(eigenvalues.sum() - eigenvalues.max()) / answer_spread(predict_proba(model, reference))


if __name__ == "__main__":
    main()
