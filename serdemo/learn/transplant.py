"""Language transplants: source clips of every emotion carrying a labeled target clip's language residue.

A round trained on a target pool whose labels are all one emotion (a person recording themselves in one
mood) learns the shortcut "this language = that emotion": every clip of the language then gets that answer
(docs/results.md, "A labeled pool in one mood"). The pool cannot show the language's other emotions, but
the source can lend them. For a labeled target clip of class c, its residue is where it sits minus where
the source's clips of class c sit on average (standardised features): the language, the speaker, the room,
not the emotion. Added to a source clip of any class, it makes a training row of that class *in the target
language*, so the language alone no longer predicts the pool's emotion.

Where a language is standardised by a pool of one emotion, the pool sits at the centre and its residue
holds minus the emotion as well. Measured (docs/results.md, "Transplants"): a small lift at 25 labels on the
full corpora, a loss where each speaker shows one emotion; off by default (``AdaptConfig.transplant_copies``).
"""

from __future__ import annotations

import numpy as np


def language_transplants(
    features: np.ndarray,
    labels: np.ndarray,
    is_target: np.ndarray,
    copies: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``copies`` transplant rows per labeled target row: ``(features, labels, donor rows)``.

    Args:
        features: (N, ...) standardised features of the pool.
        labels: (N,) class per row, -1 where training must not see one.
        is_target: (N,) True for rows of the target language.
        copies: transplants per labeled target row whose class the source has.
        rng: picks the source clip each residue is added to.

    Returns:
        (M, ...) float32 features, (M,) labels (the source clip's), (M,) the target row each residue came
        from (its language and speaker are the transplant's). Empty when nothing can be transplanted.

    Example:
        >>> x = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 5.0]], np.float32)  # source: class 0, 1; target: 1
        >>> rows, labels, donors = language_transplants(
        ...     x, np.array([0, 1, 1]), np.array([False, False, True]), 2, np.random.default_rng(0)
        ... )
        >>> sorted(map(tuple, rows.tolist())), labels.tolist(), donors.tolist()
        ([(0.0, 5.0), (2.0, 5.0)], [0, 1], [2, 2])

    """
    labels = np.asarray(labels)
    source = np.flatnonzero((labels >= 0) & ~is_target)
    target = np.flatnonzero((labels >= 0) & is_target)
    empty = np.zeros((0, *features.shape[1:]), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    if copies < 1 or not len(source) or not len(target):
        return empty
    positions = {
        int(c): features[source[labels[source] == c]].astype(np.float64).mean(axis=0)
        for c in np.unique(labels[source])
    }
    target = target[np.isin(labels[target], list(positions))]
    if not len(target):
        return empty
    donors = np.repeat(target, copies)
    # each donor's residue lands on different source clips, spread over the source's classes
    hosts = rng.choice(source, size=len(donors), replace=len(donors) > len(source))
    residues = features[donors].astype(np.float64) - np.stack([positions[int(c)] for c in labels[donors]])
    rows = (features[hosts].astype(np.float64) + residues).astype(np.float32)
    return rows, labels[hosts].astype(np.int64), donors
