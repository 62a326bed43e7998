"""Scores of a classifier and of a representation: UA, WA, macro-F1, confusion, silhouette."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# scikit-learn (with SciPy, ~1 s of imports) is imported where a score needs it, not at import time:
# the app's first prediction needs none of these scores (docs/performance.md, start-up)


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if len(y_true) == 0:
        raise ValueError("no clips to score: give at least one labeled clip")
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if (y_true < 0).any():
        raise ValueError("y_true holds -1 (unlabeled) entries: score labeled clips only")
    return y_true, y_pred


def unweighted_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """UA: mean recall over the classes present in ``y_true`` (the paper's main metric).

    Same value as sklearn's ``recall_score(..., labels=present, average="macro")``, computed with
    numpy because the training loop calls it every epoch and sklearn's checks cost ~10 ms a call.

    Example:
        >>> unweighted_accuracy([0, 0, 0, 1], [0, 0, 0, 0])
        0.5

    """
    y_true, y_pred = _check_labels(y_true, y_pred)
    present, inverse = np.unique(y_true, return_inverse=True)
    support = np.bincount(inverse)
    hits = np.bincount(inverse, weights=(y_true == y_pred))
    return float(np.mean(hits / support))


def information_maximisation(probs: np.ndarray) -> float:
    """Label-free score of predictions on a pool: (H(mean prediction) - mean H(prediction)) / log C.

    The mutual information between clips and predicted classes (Krause et al., 2010; SHOT, Liang et al.,
    2020), scaled to [0, 1]: 1 when every clip is predicted with certainty and the classes are used
    equally, 0 when every clip gets the same prediction, whether confident or flat.

    Example:
        >>> information_maximisation(np.eye(4))
        1.0
        >>> information_maximisation(np.full((4, 4), 0.25))
        0.0

    """
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    if probs.ndim != 2 or len(probs) == 0 or probs.shape[1] < 2:
        raise ValueError(f"need (N >= 1, C >= 2) probabilities, got shape {probs.shape}")
    mean = probs.mean(axis=0)
    marginal = -(mean * np.log(mean)).sum()
    conditional = -(probs * np.log(probs)).sum(axis=1).mean()
    return float(round((marginal - conditional) / np.log(probs.shape[1]), 6))


def weighted_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """WA: plain accuracy, i.e. recall weighted by class frequency.

    Example:
        >>> weighted_accuracy([0, 0, 0, 1], [0, 0, 0, 0])
        0.75

    """
    from sklearn import metrics as skm

    y_true, y_pred = _check_labels(y_true, y_pred)
    return float(skm.accuracy_score(y_true, y_pred))


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Unweighted mean F1 over the classes present in ``y_true`` or ``y_pred``."""
    from sklearn import metrics as skm

    y_true, y_pred = _check_labels(y_true, y_pred)
    return float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))


def confusion(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class, in the fixed class order."""
    from sklearn import metrics as skm

    y_true, y_pred = _check_labels(y_true, y_pred)
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


SILHOUETTE_METRIC = "cosine"  # speech embeddings compare by direction; also what projection gives UMAP


def silhouette(
    representation: np.ndarray,
    groups: Sequence[Any | None],
    metric: str = SILHOUETTE_METRIC,
    max_samples: int = 5000,
    seed: int = 0,
) -> float | None:
    """Silhouette score of ``representation`` (N, D) grouped by ``groups`` (N,); the one in serdemo.

    High (near 1) when clips of one group (an emotion, or a language) sit together and apart from
    other groups; near 0 when groups overlap. Clips whose group is None are left out. Above
    ``max_samples`` clips a seeded random subset is scored, as sklearn allows, to keep the O(N^2)
    cost bounded.

    Returns:
        The mean silhouette, or None with fewer than 2 groups or no more clips than groups (where
        the score is undefined).

    Raises:
        ValueError: ``representation`` is not (N, D) with one group per row.

    Example:
        >>> points = np.array([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.1]])
        >>> round(silhouette(points, ["a", "a", "b", "b"]), 2)
        0.99
        >>> silhouette(points, ["a", "a", "a", None]) is None
        True

    """
    from sklearn import metrics as skm

    x = np.asarray(representation, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(groups):
        raise ValueError(f"need one group per row of (N, D) vectors: {x.shape} vs {len(groups)} groups")
    keep = np.array([g is not None for g in groups], dtype=bool)
    labels = np.array([str(g) for g in groups if g is not None], dtype=object)
    n_groups = len(set(labels.tolist()))
    if n_groups < 2 or len(labels) <= n_groups:
        return None
    x = x[keep]
    sample = max_samples if len(x) > max_samples else None
    return float(
        skm.silhouette_score(x, labels.astype(str), metric=metric, sample_size=sample, random_state=seed)
    )


def evaluate(y_true: Sequence[int], probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """All classifier scores of ``probs`` (N, C) against ``y_true`` (N,), JSON-ready.

    Returns:
        ``ua``, ``wa``, ``macro_f1``, ``n``, ``classes``, ``confusion`` (list of rows),
        ``recall`` and ``support`` per class name (recall is ``None`` for an absent class).

    Example:
        >>> import numpy as np
        >>> evaluate([0, 1], np.array([[0.9, 0.1], [0.8, 0.2]]), ["anger", "sadness"])["ua"]
        0.5

    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ValueError(f"probs must be (N, {len(classes)}) for classes {list(classes)}, got {probs.shape}")
    y_true, y_pred = _check_labels(y_true, probs.argmax(axis=1))
    if y_true.max() >= len(classes):
        raise ValueError(f"label {y_true.max()} is out of range for {len(classes)} classes")
    matrix = confusion(y_true, y_pred, len(classes))
    support = matrix.sum(axis=1)
    recall = [float(matrix[c, c] / support[c]) if support[c] else None for c in range(len(classes))]
    return {
        "ua": unweighted_accuracy(y_true, y_pred),
        "wa": weighted_accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred),
        "n": int(len(y_true)),
        "classes": list(classes),
        "confusion": matrix.tolist(),
        "recall": dict(zip(classes, recall, strict=True)),
        "support": {name: int(s) for name, s in zip(classes, support, strict=True)},
    }
