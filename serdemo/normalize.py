"""Feature standardisation fitted on training clips: global, per language or per speaker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from serdemo.config import Normalization


class FeatureNormalizer:
    """Subtract a mean and divide by a standard deviation, per feature, fitted per group.

    Standardising each language (or speaker) on its own removes much of the offset between
    corpora that cross-lingual SER suffers from; statistics use no labels, so unlabeled target
    clips may (and should) take part in :meth:`fit`.

    Speakers with fewer than ``min_group_size`` clips at fit time keep their language's statistics.
    Groups unseen at fit time are handled without labels either: an unseen speaker with at least
    ``min_group_size`` clips in the batch is standardised with its own batch statistics (the usual
    speaker normalisation for test speakers), otherwise with its language's statistics; an unseen
    language likewise uses its batch statistics, or else the global ones.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0], [2.0], [10.0], [14.0]], np.float32)
        >>> norm = FeatureNormalizer("per-language").fit(x, ["en", "en", "de", "de"])
        >>> norm.transform(x, ["en", "en", "de", "de"]).ravel().round(3).tolist()
        [-1.0, 1.0, -1.0, 1.0]

    """

    def __init__(self, mode: str = "per-language", min_group_size: int = 10, eps: float = 1e-5) -> None:
        self.mode = Normalization(mode).value
        self.min_group_size = min_group_size
        self.eps = eps
        self.global_stats: tuple[np.ndarray, np.ndarray] | None = None
        self.language_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.speaker_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.astype(np.float64)
        return x.mean(axis=0).astype(np.float32), (x.std(axis=0) + self.eps).astype(np.float32)

    def fit(
        self,
        features: np.ndarray,
        languages: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None,
    ) -> FeatureNormalizer:
        """Fit statistics on ``features`` (N, ...) with each clip's language and speaker."""
        x, languages, speakers = self._check(features, languages, speakers)
        self.global_stats = self._stats(x)
        self.language_stats, self.speaker_stats = {}, {}
        if self.mode in ("per-language", "per-speaker"):
            self.language_stats = {g: self._stats(x[languages == g]) for g in np.unique(languages)}
        if self.mode == "per-speaker":
            # a speaker with a handful of clips would be standardised to noise (one clip: to zeros);
            # such clips keep their language's statistics, as unseen small groups do in transform
            names, counts = np.unique(speakers, return_counts=True)
            self.speaker_stats = {
                g: self._stats(x[speakers == g])
                for g, n in zip(names, counts, strict=True)
                if n >= self.min_group_size
            }
        return self

    def transform(
        self,
        features: np.ndarray,
        languages: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Standardised copy of ``features``, float32, same shape."""
        if self.global_stats is None:
            raise RuntimeError("FeatureNormalizer.transform called before fit")
        x, languages, speakers = self._check(features, languages, speakers)
        if self.mode == "none":
            return x.astype(np.float32, copy=True)
        mean = np.empty_like(x, dtype=np.float32)
        std = np.empty_like(x, dtype=np.float32)
        mean[:], std[:] = self.global_stats
        if self.mode in ("per-language", "per-speaker"):
            for lang in np.unique(languages):
                rows = languages == lang
                mean[rows], std[rows] = self._group(lang, rows, x, self.language_stats, self.global_stats)
        if self.mode == "per-speaker":
            for spk in np.unique(speakers):
                rows = speakers == spk
                # falls back to whatever the language step already put in these rows
                fallback = (mean[rows][0], std[rows][0])
                mean[rows], std[rows] = self._group(spk, rows, x, self.speaker_stats, fallback)
        return ((x - mean) / std).astype(np.float32)

    def _group(
        self,
        name: str,
        rows: np.ndarray,
        x: np.ndarray,
        fitted: dict[str, tuple[np.ndarray, np.ndarray]],
        fallback: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        if name in fitted:
            return fitted[name]
        if rows.sum() >= self.min_group_size:
            return self._stats(x[rows])
        return fallback

    def _check(
        self, features: np.ndarray, languages: Sequence[str] | None, speakers: Sequence[str] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(features)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"features must be a non-empty (N, ...) array, got shape {x.shape}")
        if self.global_stats is not None and x.shape[1:] != self.global_stats[0].shape:
            raise ValueError(
                f"features of shape {x.shape[1:]} per clip, but the normaliser was fitted on "
                f"{self.global_stats[0].shape}: were they made by another encoder?"
            )
        n = len(x)
        languages = np.asarray(languages if languages is not None else [""] * n, dtype=str)
        speakers = np.asarray(speakers if speakers is not None else [""] * n, dtype=str)
        if self.mode in ("per-language", "per-speaker") and len(languages) != n:
            raise ValueError(f"{n} clips but {len(languages)} languages")
        if self.mode == "per-speaker" and len(speakers) != n:
            raise ValueError(f"{n} clips but {len(speakers)} speakers")
        return x, languages, speakers

    # --- persistence: arrays for np.savez, the rest for JSON ---
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)``: a JSON-ready dict and named arrays that :meth:`from_state` restores."""
        if self.global_stats is None:
            raise RuntimeError("cannot save an unfitted FeatureNormalizer")
        arrays = {"global/mean": self.global_stats[0], "global/std": self.global_stats[1]}
        for kind, table in (("language", self.language_stats), ("speaker", self.speaker_stats)):
            for i, (mean, std) in enumerate(table.values()):
                arrays[f"{kind}/{i}/mean"], arrays[f"{kind}/{i}/std"] = mean, std
        meta = {
            "mode": self.mode,
            "min_group_size": self.min_group_size,
            "eps": self.eps,
            "languages": list(self.language_stats),
            "speakers": list(self.speaker_stats),
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeatureNormalizer:
        """Rebuild a fitted normaliser from :meth:`state`."""
        norm = cls(meta["mode"], meta["min_group_size"], meta["eps"])
        norm.global_stats = (arrays["global/mean"], arrays["global/std"])
        norm.language_stats = {
            g: (arrays[f"language/{i}/mean"], arrays[f"language/{i}/std"])
            for i, g in enumerate(meta["languages"])
        }
        norm.speaker_stats = {
            g: (arrays[f"speaker/{i}/mean"], arrays[f"speaker/{i}/std"])
            for i, g in enumerate(meta["speakers"])
        }
        return norm
