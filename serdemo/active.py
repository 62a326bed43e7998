"""Uncertainty sampling: which unlabeled clips a person should label next."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

import numpy as np


class UncertaintyRule(str, Enum):
    """How uncertain a prediction is, from its class probabilities (Settles, 2009, Sec. 3.1)."""

    LEAST_CONFIDENCE = "least_confidence"  # 1 - p(top class)
    MARGIN = "margin"  # 1 - (p(top) - p(second)): a near tie between two emotions
    ENTROPY = "entropy"  # entropy over all classes, divided by log(C) so it lies in [0, 1]


class Ranking(NamedTuple):
    """Clips to label, most uncertain first."""

    order: np.ndarray  # (N,) indices into the probability rows, most uncertain first
    scores: np.ndarray  # (N,) uncertainty of row i in [0, 1]; scores[order] is non-increasing


def uncertainty(
    probs: np.ndarray, rule: UncertaintyRule | str = UncertaintyRule.LEAST_CONFIDENCE
) -> np.ndarray:
    """Uncertainty of each row of ``probs`` (N, C) under ``rule``; higher means less sure.

    Raises:
        ValueError: unknown rule, or rows that are not probability distributions (e.g. logits).

    Example:
        >>> uncertainty(np.array([[0.9, 0.1], [0.5, 0.5]])).round(2).tolist()
        [0.1, 0.5]

    """
    rule = _check_rule(rule)
    probs = _check_probs(probs)
    if rule is UncertaintyRule.LEAST_CONFIDENCE:
        return 1.0 - probs.max(axis=1)
    if rule is UncertaintyRule.MARGIN:
        top2 = np.sort(probs, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    # xlogy-style: 0 * log 0 counts as 0, so one-hot rows score exactly 0.
    logs = np.log(np.where(probs > 0, probs, 1.0))
    return -(probs * logs).sum(axis=1) / np.log(probs.shape[1])


def rank_for_labeling(
    probs: np.ndarray, rule: UncertaintyRule | str = UncertaintyRule.LEAST_CONFIDENCE
) -> Ranking:
    """Order clips by how much a label would help: most uncertain prediction first.

    Ties keep the input order, so the ranking is reproducible.

    Args:
        probs: (N, C) softmax outputs of the current model for N unlabeled clips.
        rule: one of :class:`UncertaintyRule`.

    Example:
        >>> rank_for_labeling(np.array([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3]])).order.tolist()
        [1, 2, 0]

    """
    scores = uncertainty(probs, rule)
    order = np.argsort(-scores, kind="stable")
    return Ranking(order=order, scores=scores)


def _check_rule(rule: UncertaintyRule | str) -> UncertaintyRule:
    try:
        return UncertaintyRule(rule)
    except ValueError:
        choices = ", ".join(r.value for r in UncertaintyRule)
        raise ValueError(f"unknown uncertainty rule {rule!r}: use one of {choices}") from None


def _check_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C >= 2 classes, got {probs.shape}")
    if probs.size and (
        not np.isfinite(probs).all()
        or (probs < 0).any()
        or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise ValueError(
            "each row of probs must be a probability distribution: apply softmax to logits first"
        )
    return probs
