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


COVERAGE_RULE = "coverage"  # least-labeled cluster first, the most uncertain (margin) clip within it
COVERAGE_CLUSTERS = 10


def rank_by_coverage(
    probs: np.ndarray,
    embeddings: np.ndarray,
    labeled_embeddings: np.ndarray,
    clusters: int = COVERAGE_CLUSTERS,
    seed: int = 0,
) -> Ranking:
    """Order clips so labels cover the pool's regions, the most uncertain clip of each region first.

    Uncertainty alone fails twice on a new language: with few labels the model's doubts sit in one
    corner of the pool, and after a pseudo-labeling round the head is over-confident everywhere, so
    "least confident" clips at 99% are no more informative than any other. Here the pool (and the
    clips labeled so far) is cut into ``clusters`` k-means regions of the model's representation;
    the next clip comes from the region with the fewest labels (counting the clips picked before it),
    and within a region by margin (Settles 2009; the cluster step follows the diversity idea of
    core-set / cluster-margin selection, Citovsky et al. 2021).

    Args:
        probs: (N, C) probabilities of the N unlabeled clips.
        embeddings: (N, P) representation of the same clips (e.g. :func:`serdemo.learn.inference.embed`).
        labeled_embeddings: (M, P) representation of the clips labeled so far (M may be 0).
        clusters: number of regions; at most N.
        seed: seeds k-means, so the order is reproducible.

    Returns:
        A :class:`Ranking` whose ``scores`` are margin uncertainties; ``order`` interleaves regions,
        so ``scores[order]`` is not sorted.

    Example:
        >>> probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
        >>> emb = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.1], [0.1, 1.0]])
        >>> rank_by_coverage(probs, emb, np.zeros((0, 2)), clusters=2).order.tolist()
        [0, 2, 3, 1]
    """
    from sklearn.cluster import KMeans  # imported here: only this rule needs it

    probs = _check_probs(probs)
    scores = uncertainty(probs, UncertaintyRule.MARGIN)
    n = len(probs)
    if n == 0:
        return Ranking(order=np.zeros(0, np.int64), scores=scores)
    points = np.concatenate(
        [np.asarray(embeddings), np.asarray(labeled_embeddings).reshape(-1, embeddings.shape[1])]
    )
    points = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)  # cosine geometry
    k = max(1, min(clusters, n))
    regions = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(points)
    covered = np.bincount(regions[n:], minlength=k).astype(np.int64)
    # each region's clips, most uncertain first (stable: ties keep input order)
    queues = [
        list(np.flatnonzero(regions[:n] == r)[np.argsort(-scores[regions[:n] == r], kind="stable")])
        for r in range(k)
    ]
    order = []
    while len(order) < n:
        open_regions = [r for r in range(k) if queues[r]]
        # fewest labels first; among equals the region whose next clip is the most uncertain
        region = min(open_regions, key=lambda r: (covered[r], -scores[queues[r][0]], r))
        order.append(queues[region].pop(0))
        covered[region] += 1
    return Ranking(order=np.asarray(order, np.int64), scores=scores)


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
