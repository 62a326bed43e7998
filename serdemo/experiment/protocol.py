"""The experiment protocol: which corpora, which clips each role gets per seed, what is compared.

Protocol (Agarla et al., 2023, Sec. 4): every corpus is split 60/20/20 into speaker-independent
train / validation / test parts (:func:`serdemo.splits.speaker_split`, seeded by the run's seed).
The source corpora are pooled as the source language. ``labeled`` clips are drawn class-stratified
from the target train part; the rest of the target train part is the unlabeled pool, whose labels
training never sees. Both languages' validation parts pick the best epoch; both test parts are
scored. ``labeled=0`` with policy ``none`` is the cross-lingual lower bound, ``target_all_labeled``
the multilingual upper bound.

Besides the scores, every seed records the training curves (paper Fig. 5) and the silhouette of the
learned representation of the test clips by emotion and by language, before adaptation (a
source-only model trained with the same seed) and after (paper Fig. 6).

Example:
    >>> spec = ExperimentSpec(  # doctest: +SKIP
    ...     sources=(CorpusRef.parse("ravdess=../shared/corpora/ravdess"),),
    ...     target=CorpusRef.parse("emodb=../shared/corpora/emodb"),
    ...     labeled=100,
    ...     adapt=AdaptConfig(policy="hard", seeds=(0, 1, 2)),
    ... )
    >>> results = ExperimentRunner().run(spec)  # doctest: +SKIP
    >>> results["target_ua"]  # mean test UA on EMO-DB over the seeds, percent  # doctest: +SKIP

"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serdemo.config import LABELED_TARGET_CLIPS, AdaptConfig, Policy
from serdemo.confound import confine_speaker_emotions
from serdemo.corpora import CORPORA, Utterance, corpus_names
from serdemo.encoders import ENCODERS, encoder_names
from serdemo.splits import Split, speaker_split

SOURCE, TARGET = "source", "target"  # the two roles; JSON keys of per-language results
ROLES = (SOURCE, TARGET)
SCORES = ("ua", "wa", "macro_f1")  # reported in percent
LABEL_CHOICES = ("stratified", "margin")  # ExperimentSpec.label_choice


class ExperimentError(ValueError):
    """An experiment that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class CorpusRef:
    """A corpus to load: its registry name and the folder (or CSV) it sits in."""

    name: str
    root: Path

    @classmethod
    def parse(cls, text: str) -> CorpusRef:
        """Read ``NAME=PATH`` or ``NAME`` (as on the command line); the name and path must exist.

        A bare ``NAME`` means the folder ``NAME`` under :func:`default_corpora_dir`.

        Example:
            >>> CorpusRef.parse("emodb=/data/emodb").name  # doctest: +SKIP
            'emodb'

        """
        name, sep, root = text.partition("=")
        name = name.strip().lower()
        if not sep and name:  # a bare name: the corpus's folder under $SERDEMO_CORPORA
            root = str(default_corpora_dir() / name)
        if not name or not root.strip():
            raise ExperimentError(f"expected NAME or NAME=PATH such as ravdess=/data/ravdess, got {text!r}")
        if name not in CORPORA:
            raise ExperimentError(
                f"unknown corpus {name!r} in {text!r}: use one of {', '.join(corpus_names())}"
            )
        path = Path(root.strip()).expanduser()
        if not path.exists():
            raise ExperimentError(
                f"{name}: {path} does not exist; give the folder the corpus was unpacked to as "
                f"{name}=PATH, or set SERDEMO_CORPORA to the folder holding {name}/"
            )
        return cls(name, path)

    def __str__(self) -> str:
        return f"{self.name}={self.root}"


@dataclass(frozen=True)
class ExperimentSpec:
    """What one experiment compares: which corpora, how many target labels, and the training config."""

    sources: tuple[CorpusRef, ...]  # pooled as the source language
    target: CorpusRef
    labeled: int = LABELED_TARGET_CLIPS  # class-stratified from target train; 0 = zero-label setting
    target_all_labeled: bool = False  # every target train clip labeled: the multilingual upper bound
    adapt: AdaptConfig = field(default_factory=AdaptConfig)  # seeds, policy, classes, encoder, ...
    # stress protocol: every target speaker keeps clips of only this many emotions in each part (train
    # pool, validation, test; serdemo.confound); 0 = all, the corpus as recorded
    speaker_emotions: int = 0
    # which target train clips get the labels: "stratified" (random, class shares kept: the paper's draw) or
    # "margin" (the source-only model's least certain clips, as the app's Label tab offers them to a user)
    label_choice: str = "stratified"
    # stress protocol: the run sees only this many of the target's unlabeled train clips (a random draw per
    # seed, the same for every setting), as a person's small pool; 0 = all of them
    unlabeled_pool: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        if not self.sources:
            raise ExperimentError("give at least one source corpus (--source NAME=PATH)")
        if self.labeled < 0:
            raise ExperimentError(f"labeled must be >= 0, got {self.labeled}")
        if self.label_choice not in LABEL_CHOICES:
            raise ExperimentError(
                f"label_choice must be one of {list(LABEL_CHOICES)}, got {self.label_choice!r}"
            )
        if self.speaker_emotions < 0:
            raise ExperimentError(
                f"speaker_emotions must be >= 0 (0 = every emotion), got {self.speaker_emotions}"
            )
        if self.unlabeled_pool < 0:
            raise ExperimentError(f"unlabeled_pool must be >= 0 clips (0 = all), got {self.unlabeled_pool}")
        if not self.adapt.seeds:
            raise ExperimentError("give at least one seed")
        if len(set(self.adapt.seeds)) != len(self.adapt.seeds):
            raise ExperimentError(f"seeds repeat: {list(self.adapt.seeds)}")
        resolved = {(s.name, s.root.resolve()) for s in self.sources}
        if len(resolved) != len(self.sources):
            raise ExperimentError("a source corpus is given twice; give each --source once")
        if (self.target.name, self.target.root.resolve()) in resolved:
            raise ExperimentError(f"{self.target} is both a source and the target; pick another target")

    @property
    def setting(self) -> str:
        """``lower-bound``, ``upper-bound`` or ``<policy>-<labeled>``; ``-k<K>`` appended when confounded."""
        suffix = f"-k{self.speaker_emotions}" if self.speaker_emotions else ""
        suffix += f"-{self.label_choice}" if self.label_choice != "stratified" else ""
        suffix += f"-pool{self.unlabeled_pool}" if self.unlabeled_pool else ""
        if self.target_all_labeled:
            return "upper-bound" + suffix
        if self.labeled == 0 and self.adapt.policy == Policy.NONE.value:
            return "lower-bound" + suffix
        return f"{self.adapt.policy}-{self.labeled}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the ``config`` entry of the results)."""
        return {
            "sources": [{"name": s.name, "root": str(s.root)} for s in self.sources],
            "target": {"name": self.target.name, "root": str(self.target.root)},
            "labeled": self.labeled,
            "target_all_labeled": self.target_all_labeled,
            "speaker_emotions": self.speaker_emotions,
            "label_choice": self.label_choice,
            "unlabeled_pool": self.unlabeled_pool,
            "setting": self.setting,
            "adapt": self.adapt.to_dict(),
        }


# ----------------------------------------------------------------------------------------------
# data of one seed


@dataclass
class Corpus:
    """A loaded corpus restricted to the experiment's classes (plus unlabeled clips, for a target)."""

    ref: CorpusRef
    utterances: list[Utterance]


@dataclass
class SeedData:
    """The utterances of every role for one seed."""

    source_train: list[Utterance]
    source_validation: list[Utterance]
    source_test: list[Utterance]
    target_labeled: list[Utterance]
    target_unlabeled: list[Utterance]  # labels present where known, never trained on
    target_validation: list[Utterance]
    target_test: list[Utterance]
    notes: list[str]
    # confounded runs (--speaker-emotions K): the target test speakers' labeled clips of every emotion,
    # before confining; scored beside the confined test, which at K = 1 is a handful of clips
    target_test_every_emotion: list[Utterance] = field(default_factory=list)

    def sizes(self) -> dict[str, dict[str, int]]:
        """Clips per part of each role, for the results file."""
        return {
            SOURCE: {
                "train": len(self.source_train),
                "validation": len(self.source_validation),
                "test": len(self.source_test),
            },
            TARGET: {
                "labeled": len(self.target_labeled),
                "unlabeled": len(self.target_unlabeled),
                "validation": len(self.target_validation),
                "test": len(self.target_test),
            },
        }


def stratified_sample(labels: Sequence[str], n: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``n`` positions of ``labels`` with class shares as close to the whole as possible.

    Quotas are proportional to class frequency (largest remainder), but every class gets at least
    one clip when ``n`` allows, so few-shot draws never miss an emotion outright.

    Example:
        >>> labels = ["anger"] * 6 + ["sadness"] * 3 + ["fear"]
        >>> sorted(labels[i] for i in stratified_sample(labels, 4, np.random.default_rng(0)))
        ['anger', 'anger', 'fear', 'sadness']

    """
    labels = np.asarray(labels)
    if n > len(labels):
        raise ExperimentError(f"cannot draw {n} clips from {len(labels)}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(int)
    for c in np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]:
        quota[c] += 1
    if n >= len(classes):
        for c in np.flatnonzero(quota == 0):  # take the clip from the class with the largest quota
            quota[np.argmax(quota)] -= 1
            quota[c] = 1
    picks = [
        rng.choice(np.flatnonzero(labels == cls), size=q, replace=False)
        for cls, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, int)


def seed_data(sources: list[Corpus], target: Corpus, spec: ExperimentSpec, seed: int) -> SeedData:
    """Split every corpus with ``seed`` and draw the labeled target clips."""
    notes: list[str] = []
    parts: dict[str, list[Utterance]] = {"train": [], "validation": [], "test": []}
    for corpus in sources:
        split = _split(corpus, seed, notes)
        for name in parts:
            parts[name].extend(split.parts[name])
    target_split = _split(target, seed, notes)
    every_emotion = []
    if spec.speaker_emotions:
        every_emotion = [u for u in target_split.test if u.emotion is not None]
        target_split = _confine(target_split, target.ref.name, spec, seed, notes)
    train = target_split.train
    labeled_rows = [i for i, u in enumerate(train) if u.emotion is not None]
    if spec.target_all_labeled:
        chosen = set(labeled_rows)
    elif spec.label_choice != "stratified":
        chosen = set()  # the runner picks them with the source-only model: :func:`least_certain`
        if spec.labeled > len(labeled_rows):
            raise ExperimentError(
                f"--labeled {spec.labeled} but the {target.ref.name} train split of seed {seed} has only "
                f"{len(labeled_rows)} labeled clips; use --labeled {len(labeled_rows)} or less"
            )
    else:
        if spec.labeled > len(labeled_rows):
            raise ExperimentError(
                f"--labeled {spec.labeled} but the {target.ref.name} train split of seed {seed} has only "
                f"{len(labeled_rows)} labeled clips of {', '.join(spec.adapt.classes)}; use --labeled "
                f"{len(labeled_rows)} or less, or --target-all-labeled"
            )
        rng = np.random.default_rng(
            [seed, 7919]
        )  # its own stream: the draw must not depend on the split search
        draw = stratified_sample([train[i].emotion for i in labeled_rows], spec.labeled, rng)
        chosen = {labeled_rows[i] for i in draw}
    for role, corpus_name, part in [
        (SOURCE, "+".join(c.ref.name for c in sources), parts["validation"]),
        (SOURCE, "+".join(c.ref.name for c in sources), parts["test"]),
        (TARGET, target.ref.name, target_split.validation),
        (TARGET, target.ref.name, target_split.test),
    ]:
        if not any(u.emotion is not None for u in part):
            raise ExperimentError(
                f"{corpus_name}: a {role} validation/test split of seed {seed} holds no labeled clip; "
                "the corpus has too few speakers or labels for a 60/20/20 split"
            )
    data = SeedData(
        source_train=parts["train"],
        source_validation=parts["validation"],
        source_test=parts["test"],
        target_labeled=[u for i, u in enumerate(train) if i in chosen],
        target_unlabeled=[u for i, u in enumerate(train) if i not in chosen],
        target_validation=[u for u in target_split.validation if u.emotion is not None],
        target_test=[u for u in target_split.test if u.emotion is not None],
        notes=notes,
        target_test_every_emotion=every_emotion,
    )
    cap = spec.unlabeled_pool
    if cap and labels_picked_later(spec):  # the runner picks them from this pool, leaving ``cap`` unlabeled
        cap += spec.labeled
    return cap_unlabeled(data, cap, seed)


def labels_picked_later(spec: ExperimentSpec) -> bool:
    """Whether the runner picks the labeled clips with the source-only model (:func:`least_certain`)."""
    return spec.label_choice != "stratified" and spec.labeled > 0 and not spec.target_all_labeled


def cap_unlabeled(data: SeedData, n: int, seed: int) -> SeedData:
    """``data`` with a random ``n`` of its unlabeled target clips (all of them for 0 or fewer clips).

    The draw depends on the seed and the pool only, so every setting of a seed sees the same clips.
    """
    pool = data.target_unlabeled
    if not n or n >= len(pool):
        return data
    keep = np.sort(np.random.default_rng([seed, 104729]).permutation(len(pool))[:n])
    return dataclasses.replace(data, target_unlabeled=[pool[i] for i in keep])


def least_certain(data: SeedData, probs: np.ndarray, n: int) -> SeedData:
    """``data`` with the ``n`` pool clips of smallest margin between the top two classes labeled.

    ``probs`` are the source-only model's class probabilities of ``data.target_unlabeled``; clips
    without a corpus label are never picked (the replay needs the label a user would give).
    """
    from serdemo.active import rank_for_labeling  # here: the protocol module stays free of learning code

    pool = data.target_unlabeled
    order = rank_for_labeling(probs, "margin").order
    picked = set([int(i) for i in order if pool[i].emotion is not None][:n])
    return dataclasses.replace(
        data,
        target_labeled=[u for i, u in enumerate(pool) if i in picked],
        target_unlabeled=[u for i, u in enumerate(pool) if i not in picked],
    )


def _confine(split: Split, name: str, spec: ExperimentSpec, seed: int, notes: list[str]) -> Split:
    """``split`` with every speaker of every part confined to ``spec.speaker_emotions`` emotions."""
    parts = {}
    for i, (part, utterances) in enumerate(split.parts.items()):
        rng = np.random.default_rng([seed, 4099, i])  # its own stream per part: independent of the draw
        parts[part], part_notes = confine_speaker_emotions(
            utterances, spec.speaker_emotions, spec.adapt.classes, rng
        )
        notes.extend(
            f"{name} (seed {seed}) {part}, --speaker-emotions {spec.speaker_emotions}: {n}"
            for n in part_notes
        )
    return dataclasses.replace(split, **parts)


def _split(corpus: Corpus, seed: int, notes: list[str]) -> Split:
    split = speaker_split(corpus.utterances, seed=seed)
    notes.extend(f"{corpus.ref.name} (seed {seed}): {note}" for note in split.notes)
    return split


def default_corpora_dir() -> Path:
    """Where bare corpus names are looked up: ``$SERDEMO_CORPORA``, else ``../shared/corpora``."""
    return Path(os.environ.get("SERDEMO_CORPORA", "../shared/corpora")).expanduser()


def check_encoder_name(name: str) -> None:
    """Raise :class:`ExperimentError` listing the registered encoders unless ``name`` is one."""
    if name not in ENCODERS:
        raise ExperimentError(f"unknown encoder {name!r}: use one of {', '.join(encoder_names())}")


def baseline_config(config: AdaptConfig) -> AdaptConfig:
    """The source-only model's config of a run: no pseudo-labels, the settings that cannot matter reset."""
    # policy, tau and rebalancing cannot change a model trained without target labels or pseudo-labels
    defaults = AdaptConfig()
    return config.replace(
        policy=Policy.NONE.value, tau=defaults.tau, rebalance=defaults.rebalance, seeds=(config.seed,)
    )


def baseline_key(spec: ExperimentSpec, seed: int) -> str:
    """Identify the source-only model of ``spec`` and ``seed``: same data, same training settings."""
    config = baseline_config(spec.adapt.replace(seed=seed))
    description = spec.to_dict()
    data = [description["sources"], description["target"], description["speaker_emotions"]]
    if spec.unlabeled_pool:  # the pool's statistics are the source-only model's too (keys before it: as were)
        data.append(spec.unlabeled_pool)
    return json.dumps([*data, config.to_dict()], sort_keys=True)


def language_tags(sources: list[Corpus], target: Corpus) -> dict[str, str]:
    """One language tag per role: pooled sources form one language, and the target never shares it."""
    source = "+".join(sorted({u.language for c in sources for u in c.utterances}))
    tag = "+".join(sorted({u.language for u in target.utterances}))
    if tag == source:  # e.g. RAVDESS -> SAVEE: same language, still two roles to normalise and plot
        tag = f"{tag}:{target.ref.name}"
    return {SOURCE: source, TARGET: tag}
