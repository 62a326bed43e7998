"""Is Algorithm 1's head the limit, or the features? A converged logistic regression on the same rows.

Runs ``python -m serdemo experiment`` with the arguments given after ``--`` and, for every run that has
labeled target clips, fits scikit-learn's logistic regression on exactly the rows that run's ``adapt()``
trained on (source train + labeled target clips with their training copies), standardised by that run's own
fitted normaliser, and scores it on the same test clips as the head. Two fits: target rows weighted up to the
source count (what utterance rebalancing does) and unweighted. Where the converged linear model scores no
better than the head, more training or a better optimiser cannot lift the figure: the features can't.

Run (~1.5 min per 3 seeds with a warm embedding cache)::

    python bench/head_ceiling.py -- experiment --source emodb=../shared/corpora/emodb \
        --target ravdess=../shared/corpora/ravdess --target-all-labeled --seeds 0 1 2 --out x.json
    python bench/head_ceiling.py --C 0.1 -- experiment ... --normalization per-speaker --out y.json
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

import serdemo.experiment.runner as runner
from serdemo.cli import main as serdemo_main
from serdemo.learn.clips import ClipSet
from serdemo.metrics import unweighted_accuracy


def standardised(result, clips: ClipSet) -> np.ndarray:
    """``clips``' features as the run's head sees them, one flat row per clip."""
    x = result.normalizer.transform(clips.features, clips.languages, clips.speakers)
    return x.reshape(len(clips), -1)


def main() -> None:
    split = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--C", type=float, default=0.1, help="inverse L2 strength of the regression")
    args = parser.parse_args(sys.argv[1:split])
    experiment_args = sys.argv[split + 1 :]
    if not experiment_args:
        parser.error("give the experiment's arguments after --, e.g. -- experiment --source ... --out x.json")

    real_adapt, real_predict = runner.adapt, runner.predict_proba
    probes: dict[int, tuple[LogisticRegression, LogisticRegression]] = {}  # by id of the run's result
    scores: dict[str, list[tuple[float, float, float]]] = {}  # language tag -> (head, weighted, unweighted)

    def adapt(source, target_labeled, target_unlabeled, validation, config, *rest, **options):
        result = real_adapt(source, target_labeled, target_unlabeled, validation, config, *rest, **options)
        if len(target_labeled) and result.normalizer is not None:
            rows = ClipSet.concat([source, target_labeled])
            x = standardised(result, rows)
            is_target = np.arange(len(rows)) >= len(source)
            weights = np.where(is_target, len(source) / is_target.sum(), 1.0)
            probes[id(result)] = (
                LogisticRegression(C=args.C, max_iter=3000).fit(x, rows.labels, sample_weight=weights),
                LogisticRegression(C=args.C, max_iter=3000).fit(x, rows.labels),
            )
        return result

    def predict_proba(result, clips):
        probs = real_predict(result, clips)
        if id(result) in probes:
            x = standardised(result, clips)
            weighted, unweighted = probes[id(result)]
            scores.setdefault(clips.languages[0], []).append(
                tuple(
                    100 * unweighted_accuracy(clips.labels, predicted)
                    for predicted in (probs.argmax(1), weighted.predict(x), unweighted.predict(x))
                )
            )
        return probs

    # the runner calls these two by their module names: wrap them for this process only
    runner.adapt, runner.predict_proba = adapt, predict_proba
    serdemo_main(experiment_args)
    print(f"\ntest UA per seed (head / regression, target rows weighted / unweighted), C={args.C:g}:")
    for language, rows in scores.items():
        table = np.array(rows)
        per_seed = ", ".join("/".join(f"{v:.1f}" for v in row) for row in rows)
        means = " / ".join(f"{v:.1f}" for v in table.mean(0))
        print(f"  {language}: {per_seed}; mean {means}")


if __name__ == "__main__":
    main()
