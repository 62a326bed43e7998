"""Domain alignment of utterance features: CORAL recolours source features with the target's covariance.

CORAL (Sun, Feng & Saenko, 2016, "Return of frustratingly easy domain adaptation") whitens the
source features with their own covariance and recolours them with the target's, so a classifier
trained on the aligned source sees second-order statistics like the target's. No labels are used,
so unlabeled target clips are enough. Works per layer on (N, L, F) features; a shrinkage towards
the identity keeps the covariances invertible when there are fewer clips than dimensions.
"""

from __future__ import annotations

import numpy as np


def _covariance(x: np.ndarray, shrinkage: float) -> np.ndarray:
    """Shrunk covariance ``(1 - s) C + s * mean(diag C) * I`` of rows ``x`` (N, F), float64."""
    x = x - x.mean(axis=0)
    cov = x.T @ x / max(len(x) - 1, 1)
    scale = float(np.trace(cov)) / len(cov)
    return (1.0 - shrinkage) * cov + shrinkage * max(scale, 1e-12) * np.eye(len(cov))


def _matrix_power(cov: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values, 1e-10 * values.max(), None)
    return (vectors * values**power) @ vectors.T


class CoralAligner:
    """Map source features so their per-layer covariance equals the target's.

    ``transform`` applies ``x -> (x - mu_s) C_s^{-1/2} C_t^{1/2} + mu_t`` layer by layer. Fit it
    on standardised features (e.g. after :class:`serdemo.learn.normalize.FeatureNormalizer`): the
    shrinkage is relative to the mean variance, and the means are then already aligned.

    Args:
        shrinkage: weight of the identity in each covariance, in [0, 1]. CORAL's original
            ``C + I`` on unit-variance features is about ``shrinkage = 0.5``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> source = rng.normal(size=(500, 1, 2)) * [3.0, 0.5]
        >>> target = rng.normal(size=(500, 1, 2))
        >>> aligned = CoralAligner(shrinkage=0.0).fit(source, target).transform(source)
        >>> np.round(aligned[:, 0].std(axis=0), 1).tolist()
        [1.0, 1.0]

    """

    def __init__(self, shrinkage: float = 0.5) -> None:
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        self.shrinkage = shrinkage
        self.maps: list[np.ndarray] = []  # per layer (F, F)
        self.source_means: list[np.ndarray] = []
        self.target_means: list[np.ndarray] = []

    def fit(self, source: np.ndarray, target: np.ndarray) -> CoralAligner:
        """Estimate one map per layer from source (Ns, L, F) and target (Nt, L, F) features.

        Raises:
            ValueError: shapes that differ per clip, or fewer than two clips on a side.

        """
        source, target = _as_3d(source, "source"), _as_3d(target, "target")
        if source.shape[1:] != target.shape[1:]:
            raise ValueError(
                f"source clips have shape {source.shape[1:]} but target clips {target.shape[1:]}: "
                "embed both with the same encoder"
            )
        if len(source) < 2 or len(target) < 2:
            raise ValueError(f"CORAL needs at least 2 clips per side, got {len(source)} and {len(target)}")
        self.maps, self.source_means, self.target_means = [], [], []
        for layer in range(source.shape[1]):
            xs, xt = source[:, layer].astype(np.float64), target[:, layer].astype(np.float64)
            whiten = _matrix_power(_covariance(xs, self.shrinkage), -0.5)
            colour = _matrix_power(_covariance(xt, self.shrinkage), 0.5)
            self.maps.append(whiten @ colour)
            self.source_means.append(xs.mean(axis=0))
            self.target_means.append(xt.mean(axis=0))
        return self

    def transform(self, source: np.ndarray) -> np.ndarray:
        """Aligned copy of source-domain features (N, L, F), float32."""
        if not self.maps:
            raise RuntimeError("CoralAligner.transform called before fit")
        x = _as_3d(source, "source")
        if x.shape[1] != len(self.maps) or x.shape[2] != len(self.maps[0]):
            raise ValueError(
                f"features of shape {x.shape[1:]} per clip, but the aligner was fitted on "
                f"{(len(self.maps), len(self.maps[0]))}"
            )
        out = np.empty(x.shape, np.float32)
        for layer, (matrix, mu_s, mu_t) in enumerate(
            zip(self.maps, self.source_means, self.target_means, strict=True)
        ):
            out[:, layer] = (x[:, layer].astype(np.float64) - mu_s) @ matrix + mu_t
        return out


def _as_3d(features: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3:
        raise ValueError(f"{name} features must be (N, F) or (N, L, F), got shape {x.shape}")
    return x
