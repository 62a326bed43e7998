"""The app's labeled source set: embedded once (from corpora or the shipped ``.npz``), split by speaker."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serdemo.app.config import ServiceError
from serdemo.corpora import load_corpus
from serdemo.corpora.base import Utterance
from serdemo.labels import EMOTIONS
from serdemo.learn import ClipSet, build_clipset
from serdemo.splits import speaker_split


@dataclass
class SourceSet:
    """The labeled source set, embedded once, split by speaker."""

    language: str
    train: ClipSet
    validation: ClipSet
    test: ClipSet
    paths: dict[str, Path]  # utterance id -> audio file, to play source points in Explore

    PARTS = ("train", "validation", "test")

    def save(self, path: Path, encoder_identity: str, vectors: str = "int8") -> None:
        """Write the embedded set; ``vectors`` stored as ``"int8"`` (default), ``"float16"`` or ``"float32"``.

        int8 codes (see :func:`quantize`) keep the set with its training copies under the size of the
        float16 set without them; the first model's answers stay the same (docs/results, issue 16).
        """
        sets = [getattr(self, part) for part in self.PARTS]
        merged = ClipSet.concat(sets)
        if vectors == "int8":
            codes, low, step = quantize(merged.features)
            features = {"features_int8": codes, "features_low": low, "features_step": step}
        elif vectors in ("float16", "float32"):
            features = {"features": merged.features.astype(vectors)}
        else:
            raise ValueError(f"vectors must be int8, float16 or float32, got {vectors!r}")
        np.savez_compressed(
            path,
            encoder=encoder_identity,
            language=self.language,
            ids=np.asarray(merged.ids),
            labels=merged.labels,
            languages=merged.languages,
            speakers=merged.speakers,
            part=np.concatenate([np.full(len(c), i) for i, c in enumerate(sets)]),
            **features,
        )

    @classmethod
    def load(cls, path: Path, encoder_identity: str) -> SourceSet:
        """Read a set written by :meth:`save`; refuses one embedded by another encoder."""
        with np.load(path, allow_pickle=False) as data:
            if str(data["encoder"]) != encoder_identity:
                raise ServiceError(
                    f"{path} was embedded by {data['encoder']}, not by the active encoder "
                    f"{encoder_identity}: pass --source-corpus NAME=PATH to embed a source corpus"
                )
            merged = build_clipset(
                ids=data["ids"].tolist(),
                languages=data["languages"].tolist(),
                speakers=data["speakers"].tolist(),
                labels=data["labels"],
                features=(
                    dequantize(data["features_int8"], data["features_low"], data["features_step"])
                    if "features_int8" in data
                    else data["features"].astype(np.float32)
                ),
            )
            part, language = data["part"], str(data["language"])
        parts = {name: merged.subset(part == i) for i, name in enumerate(cls.PARTS)}
        return cls(language=language, paths={}, **parts)


def quantize(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-bit codes of ``features`` (N, ...), one linear scale per feature over the N rows.

    Returns ``(codes uint8, low, step)`` with ``features ~ low + codes * step``: the error is at most
    half a step, 1/510 of each feature's range over the set.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 3, 4)).astype(np.float32)
        >>> codes, low, step = quantize(x)
        >>> bool(np.all(np.abs(dequantize(codes, low, step) - x) <= step / 2 + 1e-6))
        True

    """
    low = features.min(axis=0)
    step = (features.max(axis=0) - low) / 255
    step = np.where(step > 0, step, 1.0).astype(np.float32)  # a constant feature: any step, code 0
    codes = np.clip(np.rint((features - low) / step), 0, 255).astype(np.uint8)
    return codes, low.astype(np.float32), step


def dequantize(codes: np.ndarray, low: np.ndarray, step: np.ndarray) -> np.ndarray:
    """float32 features back from :func:`quantize`'s codes."""
    return (low + codes.astype(np.float32) * step).astype(np.float32)


def load_source_corpora(
    corpora: Sequence[tuple[str, Path]],
    limit: int | None,
    seed: int,
    embed_paths: Callable[[Sequence[Path], str], np.ndarray],
    say: Callable[[str], None],
    log: Callable[[str], None],
    add_copies: Callable[[ClipSet, Sequence[Path]], ClipSet] = lambda clips, paths: clips,
) -> SourceSet:
    """Read, embed (through ``embed_paths``) and split the labeled source corpora (``--source-corpus``).

    ``add_copies`` adds the training clips' augmented copies (learn.augment): only corpora have the audio.
    """
    utterances: list[Utterance] = []
    for name, root in corpora:
        say(f"reading source corpus {name} at {root}")
        found = [u for u in load_corpus(name, root) if u.emotion is not None]
        utterances += balanced(found, limit, seed)
    languages = sorted({u.language for u in utterances})
    features = embed_paths([u.path for u in utterances], "source clips")
    by_id = dict(zip((u.id for u in utterances), features, strict=True))
    split = speaker_split(utterances, seed=seed)
    for note in split.notes:
        log(f"source split: {note}")

    def part(items: list[Utterance]) -> ClipSet:
        return ClipSet.from_utterances(items, EMOTIONS, features=np.stack([by_id[u.id] for u in items]))

    # silence/noise padding and gain, as recordings have (the shipped set has no audio for this)
    train = add_copies(part(split.train), [u.path for u in split.train])
    return SourceSet(
        language="+".join(languages),
        train=train,
        validation=part(split.validation),
        test=part(split.test),
        paths={u.id: u.path for u in utterances},
    )


def balanced(utterances: list[Utterance], limit: int | None, seed: int) -> list[Utterance]:
    """Pick at most ``limit`` utterances, emotions (and unlabeled clips) in turn, seeded; all if no limit."""
    if limit is None or len(utterances) <= limit:
        return utterances
    rng = random.Random(seed)
    groups: dict[str | None, list[Utterance]] = {}
    for utterance in utterances:
        groups.setdefault(utterance.emotion, []).append(utterance)
    for members in groups.values():
        rng.shuffle(members)
    chosen: list[Utterance] = []
    while len(chosen) < limit:
        for key in sorted(groups, key=str):
            if groups[key] and len(chosen) < limit:
                chosen.append(groups[key].pop())
    return sorted(chosen, key=lambda u: u.id)
