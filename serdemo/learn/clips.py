"""The clips a training run sees (:class:`ClipSet`), and the one way to build them.

Every layer (app, experiment, pool predictions, benchmarks) builds its clip sets with
:func:`build_clipset`, so a clip without a speaker id is grouped the same way everywhere: as the
``"<language>/unknown"`` speaker of its language (:func:`unknown_speaker`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serdemo.corpora.base import Utterance

UNKNOWN_SPEAKER_SUFFIX = "/unknown"
COPY_ID_MARK = "#aug"  # "<id>#aug<k>": the k-th augmented training copy of clip <id> (serdemo.learn.augment)


def copy_id(clip_id: str, k: int) -> str:
    """The id of the ``k``-th augmented training copy of ``clip_id``."""
    return f"{clip_id}{COPY_ID_MARK}{k}"


def is_copy(clip_id: str) -> bool:
    """Whether ``clip_id`` names an augmented training copy rather than a clip someone gave."""
    return COPY_ID_MARK in clip_id


def unknown_speaker(language: str) -> str:
    """The speaker group of a clip whose speaker is not known: one per language.

    Example:
        >>> unknown_speaker("de")
        'de/unknown'

    """
    return f"{language}{UNKNOWN_SPEAKER_SUFFIX}"


class AdaptError(ValueError):
    """Inputs :func:`adapt` cannot train on; the message says what to change."""


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class ClipSet:
    """Clips of one role (source, labeled target, unlabeled target, a validation set).

    Exactly what the loop needs per clip: ``features`` (N, L, F) for frozen mode or ``waveforms``
    (N 1-D float32 arrays at 16 kHz) for finetune mode, ``labels`` (N,) as indices into the
    config's classes with -1 for unlabeled, and ``languages`` / ``speakers`` / ``ids`` (N,).
    """

    ids: list[str]
    labels: np.ndarray
    languages: np.ndarray
    speakers: np.ndarray
    features: np.ndarray | None = None
    waveforms: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        n = len(self.ids)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.languages = np.asarray(self.languages, dtype=str).reshape(-1)
        self.speakers = np.asarray(self.speakers, dtype=str).reshape(-1)
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float32)
            if self.features.ndim == 2:  # one layer: (N, F) -> (N, 1, F)
                self.features = self.features[:, None, :]
            if self.features.ndim != 3:
                raise AdaptError(f"features must be (N, L, F), got shape {self.features.shape}")
        sizes = {
            "labels": len(self.labels),
            "languages": len(self.languages),
            "speakers": len(self.speakers),
            "features": n if self.features is None else len(self.features),
            "waveforms": n if self.waveforms is None else len(self.waveforms),
        }
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise AdaptError(f"ClipSet has {n} ids but {wrong}: give one entry per clip")
        if self.features is None and self.waveforms is None:
            raise AdaptError("ClipSet needs features (frozen mode) or waveforms (finetune mode)")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labeled(self) -> np.ndarray:
        """(N,) True where the clip has a label."""
        return self.labels >= 0

    def subset(self, index: Sequence[int] | np.ndarray) -> ClipSet:
        """Return the clips at ``index`` (integer positions or a boolean mask)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)  # an empty list arrives as float64
        return ClipSet(
            ids=[self.ids[i] for i in index],
            labels=self.labels[index],
            languages=self.languages[index],
            speakers=self.speakers[index],
            features=None if self.features is None else self.features[index],
            waveforms=None if self.waveforms is None else [self.waveforms[i] for i in index],
        )

    def without_labels(self) -> ClipSet:
        """Return a copy with every label -1, e.g. to use labeled clips as the unlabeled pool."""
        out = self.subset(np.arange(len(self)))
        out.labels = np.full(len(out), -1, dtype=np.int64)
        return out

    @classmethod
    def concat(cls, sets: Sequence[ClipSet]) -> ClipSet:
        """One ClipSet of all ``sets`` in order; they must all carry the same kind of input."""
        if not sets:
            raise AdaptError("nothing to concatenate")
        has_features = all(s.features is not None for s in sets)
        has_waves = all(s.waveforms is not None for s in sets)
        if not (has_features or has_waves):
            raise AdaptError("cannot mix ClipSets with features and ClipSets with waveforms only")
        return cls(
            ids=[i for s in sets for i in s.ids],
            labels=np.concatenate([s.labels for s in sets]),
            languages=np.concatenate([s.languages for s in sets]),
            speakers=np.concatenate([s.speakers for s in sets]),
            features=np.concatenate([s.features for s in sets]) if has_features else None,
            waveforms=[w for s in sets for w in s.waveforms] if has_waves else None,
        )

    @classmethod
    def from_utterances(
        cls,
        utterances: Sequence[Utterance],
        classes: Sequence[str],
        features: np.ndarray | None = None,
        waveforms: Sequence[np.ndarray] | None = None,
        drop_unknown: bool = True,
    ) -> ClipSet:
        """Clips from corpus utterances, labels as indices into ``classes``.

        Args:
            utterances: the clips, in the order of ``features`` / ``waveforms``.
            classes: the config's class list.
            features: (N, L, F) encoder features of the utterances.
            waveforms: their audio.
            drop_unknown: drop clips whose emotion is missing or outside ``classes``; if False
                they are kept with label -1 (unlabeled).

        """
        labels = np.array([classes.index(u.emotion) if u.emotion in classes else -1 for u in utterances])
        keep = np.flatnonzero(labels >= 0) if drop_unknown else np.arange(len(utterances))
        return build_clipset(
            ids=[utterances[i].id for i in keep],
            languages=[utterances[i].language for i in keep],
            speakers=[utterances[i].speaker for i in keep],
            labels=labels[keep] if len(keep) else np.zeros(0, np.int64),
            features=None if features is None else np.asarray(features)[keep],
            waveforms=None if waveforms is None else [waveforms[i] for i in keep],
        )


def build_clipset(
    ids: Sequence[str | int],
    languages: Sequence[str],
    speakers: Sequence[str | None] | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
    features: np.ndarray | None = None,
    waveforms: Sequence[np.ndarray] | None = None,
    feature_shape: tuple[int, ...] | None = None,
) -> ClipSet:
    """Build a :class:`ClipSet`: the one place that decides what a missing speaker or label becomes.

    Args:
        ids: one id per clip.
        languages: each clip's language code.
        speakers: each clip's speaker; a missing one (None or ``""``) becomes
            :func:`unknown_speaker` of the clip's language. None: every speaker is unknown.
        labels: class indices, -1 for unlabeled; None: every clip unlabeled.
        features: (N, L, F) encoder features (frozen mode).
        waveforms: N waveforms (finetune mode).
        feature_shape: ``(L, F)`` of an empty set's features, so it concatenates with full ones.

    Example:
        >>> clips = build_clipset(["1", "2"], ["de", "de"], ["emodb/03", None], features=np.zeros((2, 1, 4)))
        >>> clips.speakers.tolist(), clips.labels.tolist()
        (['emodb/03', 'de/unknown'], [-1, -1])

    """
    n = len(ids)
    if features is None and waveforms is None and feature_shape is not None:
        features = np.zeros((n, *feature_shape), np.float32)
    speakers = [None] * n if speakers is None else list(speakers)
    return ClipSet(
        ids=[str(i) for i in ids],
        labels=np.full(n, -1, np.int64) if labels is None else np.asarray(labels, dtype=np.int64),
        languages=list(languages),
        speakers=[s or unknown_speaker(lang) for s, lang in zip(speakers, languages, strict=True)],
        features=features,
        waveforms=None if waveforms is None else list(waveforms),
    )
