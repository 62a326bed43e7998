"""Label propagation over the target pool's neighbourhood graph, to make a few target labels count.

With 10-25 labeled target clips the head learns little from them directly: they are a handful of rows
among hundreds of source rows. Their neighbours in the target's own feature space, however, are likely
to share their emotion (clips of one corpus and language cluster). Label spreading (Zhou et al., 2004;
scikit-learn's :class:`~sklearn.semi_supervised.LabelSpreading`) carries each label along the k-nearest-
neighbour graph of the labeled and unlabeled target clips; the pseudo-labeler then averages those
probabilities with the model's.
"""

from __future__ import annotations

import numpy as np

NEIGHBOURS = 10  # k of the kNN graph
PCA_DIM = 64  # distances in 7,168 raw dimensions are mostly noise; the top components carry the clusters


def propagate(features: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """Class probabilities (N, C) of every row, spread from the rows with a label (>= 0) to the rest.

    Args:
        features: (N, ...) normalised features of the target clips, labeled and unlabeled.
        labels: (N,) class index, or -1 for unlabeled.
        num_classes: C; classes without a labeled row get probability 0.
        seed: PCA's randomness.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(0, 0.1, (20, 3)), rng.normal(3, 0.1, (20, 3))])
        >>> y = np.full(40, -1)
        >>> y[0], y[20] = 0, 1
        >>> propagate(x, y, 2).argmax(1).tolist() == [0] * 20 + [1] * 20
        True

    """
    from sklearn.decomposition import PCA  # here: importing adapt (the app's start-up) needs no sklearn
    from sklearn.semi_supervised import LabelSpreading

    flat = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full((len(flat), num_classes), 1.0 / num_classes, np.float32)
    if not (labels >= 0).any() or len(flat) <= NEIGHBOURS:
        return out
    dim = min(PCA_DIM, len(flat) - 1, flat.shape[1])
    reduced = PCA(dim, random_state=seed).fit_transform(flat) if dim < flat.shape[1] else flat
    model = LabelSpreading(kernel="knn", n_neighbors=NEIGHBOURS, alpha=0.2, max_iter=100)
    model.fit(reduced, labels)
    out[:] = 0.0
    out[:, model.classes_] = np.nan_to_num(model.label_distributions_, nan=0.0)
    rows = out.sum(axis=1, keepdims=True)
    return np.where(rows > 0, out / np.maximum(rows, 1e-12), 1.0 / num_classes).astype(np.float32)
