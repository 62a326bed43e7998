"""Linear-probe ceiling of the cached whisper-base features, RAVDESS -> EMO-DB (serdemo issue 5).

Fits a converged scikit-learn logistic regression on the features the default head sees (all 7 layers'
mean+std, standardised per speaker) for the three seeds' speaker-independent splits, and prints German
and English test UA for two settings:

- ``all``: English train + every German train clip labeled. Algorithm 1's linear head trains on the same
  clips; if the probe is not clearly better, the features, not the training, cap the all-labeled score.
- ``zero-shot``: English train only, German test clips predicted as they are, and after matching each
  test speaker's mean prediction to a uniform prior (the balancing ``AdaptConfig.pseudo_balance`` applies
  to the unlabeled pool; here applied to test speakers only to show how much of the error is class bias).

Run (reads the embedding cache that bench/representation.py fills; ~2 min on 2 cores)::

    python bench/linear_probe.py
    python bench/linear_probe.py --C 0.01 0.1 1
"""

from __future__ import annotations

import argparse

import numpy as np
from representation import VARIANTS, clipset, load, split_sets
from sklearn.linear_model import LogisticRegression

from serdemo.cache import EmbeddingCache, default_cache_dir
from serdemo.labels import EMOTIONS
from serdemo.learn.normalize import FeatureNormalizer
from serdemo.learn.pseudo_labels import balance_by_group
from serdemo.metrics import unweighted_accuracy

VARIANT = VARIANTS["linear-speaker-nodrop"]  # only its feature choices matter here: all layers, per speaker


def standardised_parts(source, target, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(flattened features, labels, speakers) per part, standardised per speaker like the head's input."""
    _, de, split = split_sets(VARIANT, source, target, seed)
    sets = {
        "en_train": split["source"],
        "en_test": split["test_en"],
        "de_train": clipset(target, de.train, VARIANT),
        "de_test": split["test_de"],
    }
    everything = list(sets.values())
    norm = FeatureNormalizer(VARIANT.normalization).fit(
        np.concatenate([s.features for s in everything]),
        np.concatenate([s.languages for s in everything]),
        np.concatenate([s.speakers for s in everything]),
    )
    return {
        name: (
            norm.transform(s.features, s.languages, s.speakers).reshape(len(s), -1),
            np.asarray(s.labels),
            np.asarray(s.speakers),
        )
        for name, s in sets.items()
    }


def ua(labels: np.ndarray, predicted: np.ndarray) -> float:
    return 100 * unweighted_accuracy(labels, predicted)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--C", nargs="+", type=float, default=[0.01, 0.1, 1.0], help="inverse L2 strengths")
    args = parser.parse_args(argv)

    from serdemo.encoders.whisper import load_whisper_base

    cache = EmbeddingCache(default_cache_dir())
    encoder = load_whisper_base()
    source, target = load("ravdess", cache, encoder), load("emodb", cache, encoder)
    parts = {seed: standardised_parts(source, target, seed) for seed in args.seeds}
    uniform = np.full(5, 0.2)

    zero_shot_confusion = np.zeros((5, 5), dtype=int)  # of the first C, summed over seeds
    print("| C | all labeled: de UA | en UA | zero-shot: de UA | balanced per test speaker: de UA |")
    print("|---|---|---|---|---|")
    for c in args.C:
        rows = []
        for seed in args.seeds:
            p = parts[seed]
            x_all = np.concatenate([p["en_train"][0], p["de_train"][0]])
            y_all = np.concatenate([p["en_train"][1], p["de_train"][1]])
            joint = LogisticRegression(C=c, max_iter=3000).fit(x_all, y_all)
            english = LogisticRegression(C=c, max_iter=3000).fit(p["en_train"][0], p["en_train"][1])
            x_test, y_test, speakers = p["de_test"]
            probs = english.predict_proba(x_test)
            balanced = balance_by_group(probs, speakers, speakers, uniform, min_size=1)
            if c == args.C[0]:
                np.add.at(zero_shot_confusion, (y_test, probs.argmax(1)), 1)
            rows.append(
                [
                    ua(y_test, joint.predict(x_test)),
                    ua(p["en_test"][1], joint.predict(p["en_test"][0])),
                    ua(y_test, probs.argmax(1)),
                    ua(y_test, balanced.argmax(1)),
                ]
            )
            print(f"  C={c:g} seed {seed}: " + " / ".join(f"{v:.1f}" for v in rows[-1]), flush=True)
        cells = [f"{m:.1f} ± {s:.1f}" for m, s in zip(np.mean(rows, 0), np.std(rows, 0), strict=True)]
        print(f"| {c:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nzero-shot confusion, German test clips (C={args.C[0]:g}, seeds summed; rows true):")
    print("| | " + " | ".join(EMOTIONS) + " |\n|---|" + "---|" * len(EMOTIONS))
    for name, row in zip(EMOTIONS, zero_shot_confusion, strict=True):
        print(f"| {name} | " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
