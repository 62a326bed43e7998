"""How sure a target-language accuracy is: a bootstrap interval, folds for cross-validation, a verdict."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serdemo.metrics import unweighted_accuracy

MIN_CLIPS_TO_JUDGE = 20  # below this a 95% interval of UA is wider than ~40 points: not a verdict
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class UAEstimate:
    """Unweighted accuracy on ``n`` clips with a 95% percentile-bootstrap interval (fractions)."""

    ua: float
    low: float
    high: float
    n: int

    def text(self) -> str:
        """E.g. ``46.2% (95% CI 30.1-61.0%, n=14)``."""
        return f"{self.ua:.1%} (95% CI {self.low:.1%}-{self.high:.1%}, n={self.n})"

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready form, as stored with a model version."""
        return {"ua": self.ua, "low": self.low, "high": self.high, "n": self.n}


def ua_with_interval(
    y_true: np.ndarray, y_pred: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> UAEstimate:
    """UA of ``y_pred`` against ``y_true`` with a 95% interval from resampling the clips.

    Resampling clips (not classes) keeps the class mix random as it is in a labeled sample; a resample
    missing a class scores the classes it has, as :func:`unweighted_accuracy` does.

    Example:
        >>> e = ua_with_interval(np.array([0, 0, 1, 1] * 5), np.array([0, 0, 1, 0] * 5))
        >>> round(e.ua, 2), e.low < e.ua < e.high
        (0.75, True)
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    ua = unweighted_accuracy(y_true, y_pred)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(y_true), size=(samples, len(y_true)))
    scores = np.array([unweighted_accuracy(y_true[p], y_pred[p]) for p in picks])
    low, high = np.percentile(scores, [2.5, 97.5])
    return UAEstimate(ua=ua, low=float(low), high=float(high), n=len(y_true))


def fold_of_each(
    labels: np.ndarray, folds: int, seed: int = 0, groups: Sequence[str | None] | None = None
) -> np.ndarray:
    """Assign each labeled clip to one of ``folds`` folds, classes spread evenly over the folds.

    Clips of one group (the utterances of one recording: same voice, room and often mood) share a fold
    where there are at least ``folds`` groups, else a held-out clip would be judged by a model trained on
    its neighbours; clips without a group are groups of their own. With fewer groups, or where grouping
    would leave a fold empty, clips are dealt one by one, and :func:`groups_split` says so.

    Example:
        >>> fold_of_each(np.array([0, 0, 1, 1, 2, 2]), 2).tolist()
        [0, 1, 0, 1, 0, 1]
        >>> fold_of_each(np.array([0, 0, 1, 1, 2, 2]), 2, groups=["a", "a", "b", "b", "c", "c"]).tolist()
        [0, 0, 1, 1, 0, 0]
    """
    labels = np.asarray(labels)
    if groups is not None:
        names = [f"\0clip {i}" if g is None else g for i, g in enumerate(groups)]
        if len(set(names)) < len(names) and len(set(names)) >= folds:
            from sklearn.model_selection import StratifiedGroupKFold  # only rounds need it: not at start-up

            splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
            assignment = np.zeros(len(labels), np.int64)
            with warnings.catch_warnings():  # "the least populated class has only N members": expected
                warnings.simplefilter("ignore", UserWarning)
                for fold, (_, held) in enumerate(splitter.split(labels, labels, names)):
                    assignment[held] = fold
            if len(np.unique(assignment)) == folds:
                return assignment
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(labels), np.int64)
    offset = 0
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        # deal the class's clips round-robin, continuing where the last class stopped
        assignment[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return assignment


def groups_split(assignment: np.ndarray, groups: Sequence[str | None]) -> int:
    """How many groups (recordings) have clips in more than one fold of ``assignment``."""
    folds_of: dict[str, set[int]] = {}
    for fold, group in zip(assignment.tolist(), groups, strict=True):
        if group is not None:
            folds_of.setdefault(group, set()).add(fold)
    return sum(len(f) > 1 for f in folds_of.values())


@dataclass(frozen=True)
class Comparison:
    """Two versions on the same clips, and a paired 95% interval of their UA difference (new - old)."""

    new: UAEstimate
    old: UAEstimate
    diff_low: float
    diff_high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored with a model version."""
        return {
            "new": self.new.to_dict(),
            "old": self.old.to_dict(),
            "diff_low": self.diff_low,
            "diff_high": self.diff_high,
        }

    def verdict(self) -> str:
        """One plain sentence: is there enough to judge, and did the new version help on these clips."""
        if self.new.n < MIN_CLIPS_TO_JUDGE:
            return (
                f"Too few clips to judge ({self.new.n}; at least {MIN_CLIPS_TO_JUDGE} needed): "
                "the interval is too wide to tell a better model from a worse one. Label more clips."
            )
        change = (
            f"UA change {self.new.ua - self.old.ua:+.1%} "
            f"(95% CI {self.diff_low:+.1%} to {self.diff_high:+.1%})"
        )
        if self.diff_low > 0:
            return f"The new version is better on these clips: {change}."
        if self.diff_high < 0:
            return f"The new version is worse on these clips: {change}; consider rolling back."
        return f"These clips cannot tell the two versions apart: {change}."


def compare(
    y_true: np.ndarray,
    new_pred: np.ndarray,
    old_pred: np.ndarray,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> Comparison:
    """Both versions' UA with intervals and the paired interval of the difference (same resamples).

    Example:
        >>> y = np.array([0, 1] * 15)
        >>> c = compare(y, y, np.zeros_like(y))
        >>> round(c.new.ua - c.old.ua, 2), c.diff_low > 0
        (0.5, True)
    """
    y_true = np.asarray(y_true, np.int64)
    new_pred, old_pred = np.asarray(new_pred, np.int64), np.asarray(old_pred, np.int64)
    picks = np.random.default_rng(seed).integers(0, len(y_true), size=(samples, len(y_true)))
    new = np.array([unweighted_accuracy(y_true[p], new_pred[p]) for p in picks])
    old = np.array([unweighted_accuracy(y_true[p], old_pred[p]) for p in picks])

    def estimate(pred: np.ndarray, scores: np.ndarray) -> UAEstimate:
        low, high = np.percentile(scores, [2.5, 97.5])
        return UAEstimate(unweighted_accuracy(y_true, pred), float(low), float(high), len(y_true))

    diff_low, diff_high = np.percentile(new - old, [2.5, 97.5])
    return Comparison(estimate(new_pred, new), estimate(old_pred, old), float(diff_low), float(diff_high))
