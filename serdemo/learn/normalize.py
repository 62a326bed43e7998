"""Feature standardisation fitted on training clips: global, per language, per speaker, or "nap".

"nap" standardises per language and projects out a speaker subspace (nuisance attribute projection).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from serdemo.config import AdaptConfig, Normalization


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

    def __init__(
        self,
        mode: str = AdaptConfig.normalization,
        min_group_size: int = 10,
        eps: float = 1e-5,
        nap_dim: int = AdaptConfig.nap_dim,
    ) -> None:
        self.mode = Normalization(mode).value
        self.min_group_size = min_group_size
        self.eps = eps
        self.nap_dim = nap_dim
        self.global_stats: tuple[np.ndarray, np.ndarray] | None = None
        self.language_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.speaker_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.nap_basis: np.ndarray | None = None  # (k, D) orthonormal speaker directions ("nap" mode)

    def _stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x.astype(np.float64)
        return x.mean(axis=0).astype(np.float32), (x.std(axis=0) + self.eps).astype(np.float32)

    def fit(
        self,
        features: np.ndarray,
        languages: Sequence[str] | None = None,
        speakers: Sequence[str] | None = None,
        labels: Sequence[int] | None = None,
    ) -> FeatureNormalizer:
        """Fit statistics on ``features`` (N, ...) with each clip's language and speaker.

        ``labels`` (class indices, -1 unlabeled) are used by the ``nap`` mode only, to learn the speaker
        subspace from the labeled clips of known speakers; the other modes use no labels.
        """
        x, languages, speakers = self._check(features, languages, speakers)
        self.global_stats = self._stats(x)
        self.language_stats, self.speaker_stats, self.nap_basis = {}, {}, None
        if self.mode == "nap":
            self.language_stats = {g: self._stats(x[languages == g]) for g in np.unique(languages)}
            labels = np.full(len(x), -1) if labels is None else np.asarray(labels, dtype=np.int64)
            standardised = self.transform(x, languages, speakers)  # no basis yet: per-language only
            self.nap_basis = speaker_subspace(standardised, labels, languages, speakers, self.nap_dim)
            return self
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
        if self.mode in ("per-language", "per-speaker", "nap"):
            for lang in np.unique(languages):
                rows = languages == lang
                mean[rows], std[rows] = self._group(lang, rows, x, self.language_stats, self.global_stats)
        if self.mode == "per-speaker":
            for spk in np.unique(speakers):
                rows = speakers == spk
                # falls back to whatever the language step already put in these rows
                fallback = (mean[rows][0], std[rows][0])
                mean[rows], std[rows] = self._group(spk, rows, x, self.speaker_stats, fallback)
        out = ((x - mean) / std).astype(np.float32)
        if self.nap_basis is not None and len(self.nap_basis):
            flat = out.reshape(len(out), -1)
            flat = flat - (flat @ self.nap_basis.T) @ self.nap_basis
            out = flat.reshape(out.shape).astype(np.float32)
        return out

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
        if self.mode in ("per-language", "per-speaker", "nap") and len(languages) != n:
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
        if self.nap_basis is not None:
            arrays["nap/basis"] = self.nap_basis
        meta = {
            "mode": self.mode,
            "min_group_size": self.min_group_size,
            "eps": self.eps,
            "nap_dim": self.nap_dim,
            "languages": list(self.language_stats),
            "speakers": list(self.speaker_stats),
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeatureNormalizer:
        """Rebuild a fitted normaliser from :meth:`state`."""
        norm = cls(meta["mode"], meta["min_group_size"], meta["eps"], meta.get("nap_dim", 10))
        norm.global_stats = (arrays["global/mean"], arrays["global/std"])
        norm.nap_basis = arrays.get("nap/basis")
        norm.language_stats = {
            g: (arrays[f"language/{i}/mean"], arrays[f"language/{i}/std"])
            for i, g in enumerate(meta["languages"])
        }
        norm.speaker_stats = {
            g: (arrays[f"speaker/{i}/mean"], arrays[f"speaker/{i}/std"])
            for i, g in enumerate(meta["speakers"])
        }
        return norm


def speaker_subspace(
    x: np.ndarray, labels: np.ndarray, languages: np.ndarray, speakers: np.ndarray, dim: int
) -> np.ndarray:
    """Orthonormal (k, D) basis of the directions in which speakers differ, with the emotion removed.

    Nuisance attribute projection (Solomonoff et al., 2005; Campbell et al., 2006, speaker recognition's
    channel compensation, here with the speaker as the nuisance). A speaker's mean alone mixes who speaks
    with what they feel; the mean of their clips *minus each clip's class mean* does not, so it is a
    clean speaker offset even for a speaker who shows one emotion. The top ``dim`` principal directions
    of those offsets are the subspace. Only labeled clips of known speakers count: the ``""`` speaker and
    ``"<language>/unknown"`` groups (app uploads) are skipped. Returns an empty (0, D) basis when fewer
    than two speakers qualify.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> speaker = np.repeat(np.arange(6), 10)
        >>> emotion = np.tile(np.arange(2), 30)
        >>> x = rng.normal(size=(60, 3)) * 0.1
        >>> x[:, 0] += 3 * (speaker % 2)  # speakers differ along axis 0, emotions along axis 1
        >>> x[:, 1] += 2 * emotion
        >>> basis = speaker_subspace(x, emotion, np.zeros(60, str), speaker.astype(str), 1)
        >>> np.abs(basis.round(2)).tolist()
        [[1.0, 0.0, 0.0]]

    """
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    labels = np.asarray(labels, dtype=np.int64)
    speakers = np.asarray(speakers, dtype=str)
    languages = np.asarray(languages, dtype=str)
    known = (labels >= 0) & (speakers != "") & ~np.char.endswith(speakers, "/unknown")
    empty = np.zeros((0, flat.shape[1]), np.float32)
    if dim < 1 or not known.any():
        return empty
    residual = flat[known].copy()
    lab, lang, spk = labels[known], languages[known], speakers[known]
    for c in np.unique(lab):
        pooled = residual[lab == c].mean(axis=0)
        for g in np.unique(lang):
            rows = (lab == c) & (lang == g)
            # a language's own class mean where it has a few clips of the class, else every language's
            residual[rows] -= residual[rows].mean(axis=0) if rows.sum() >= 3 else pooled
    names = np.unique(spk)
    if len(names) < 2:
        return empty
    offsets = np.stack([residual[spk == s].mean(axis=0) for s in names])
    offsets -= offsets.mean(axis=0)
    _, singular, vt = np.linalg.svd(offsets, full_matrices=False)
    rank = int((singular > 1e-6 * max(singular.max(), 1e-12)).sum())
    return vt[: min(dim, rank)].astype(np.float32)
