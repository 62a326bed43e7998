"""One cross-lingual experiment in the paper's protocol, repeated over seeds, as a JSON-ready dict.

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

import copy
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serdemo import __version__
from serdemo.adapt import AdaptResult, ClipSet, ProgressEvent, adapt, embed, predict_proba
from serdemo.audio import load_audio
from serdemo.cache import EmbeddingCache, default_cache_dir, embed_files
from serdemo.config import AdaptConfig, Mode, Policy
from serdemo.confound import confine_speaker_emotions
from serdemo.corpora import CORPORA, CorpusError, Utterance, corpus_names, load_corpus
from serdemo.encoders import ENCODERS, build_encoder, encoder_names
from serdemo.encoders.base import UtteranceEncoder
from serdemo.metrics import evaluate, silhouette
from serdemo.speech import with_frontend
from serdemo.splits import Split, speaker_split

SOURCE, TARGET = "source", "target"  # the two roles; JSON keys of per-language results
ROLES = (SOURCE, TARGET)
SCORES = ("ua", "wa", "macro_f1")  # reported in percent


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
    labeled: int = 100  # labeled target clips, class-stratified from target train; 0 = zero-label setting
    target_all_labeled: bool = False  # every target train clip labeled: the multilingual upper bound
    adapt: AdaptConfig = field(default_factory=AdaptConfig)  # seeds, policy, classes, encoder, ...
    # stress protocol: every target speaker keeps clips of only this many emotions in each part (train
    # pool, validation, test; serdemo.confound); 0 = all, the corpus as recorded
    speaker_emotions: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        if not self.sources:
            raise ExperimentError("give at least one source corpus (--source NAME=PATH)")
        if self.labeled < 0:
            raise ExperimentError(f"labeled must be >= 0, got {self.labeled}")
        if self.speaker_emotions < 0:
            raise ExperimentError(
                f"speaker_emotions must be >= 0 (0 = every emotion), got {self.speaker_emotions}"
            )
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
            "setting": self.setting,
            "adapt": self.adapt.to_dict(),
        }


# ----------------------------------------------------------------------------------------------
# data of one seed


@dataclass
class _Corpus:
    """A loaded corpus restricted to the experiment's classes (plus unlabeled clips, for a target)."""

    ref: CorpusRef
    utterances: list[Utterance]


@dataclass
class _SeedData:
    """The utterances of every role for one seed."""

    source_train: list[Utterance]
    source_validation: list[Utterance]
    source_test: list[Utterance]
    target_labeled: list[Utterance]
    target_unlabeled: list[Utterance]  # labels present where known, never trained on
    target_validation: list[Utterance]
    target_test: list[Utterance]
    notes: list[str]

    def sizes(self) -> dict[str, dict[str, int]]:
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


def _seed_data(sources: list[_Corpus], target: _Corpus, spec: ExperimentSpec, seed: int) -> _SeedData:
    """Split every corpus with ``seed`` and draw the labeled target clips."""
    notes: list[str] = []
    parts: dict[str, list[Utterance]] = {"train": [], "validation": [], "test": []}
    for corpus in sources:
        split = _split(corpus, seed, notes)
        for name in parts:
            parts[name].extend(split.parts[name])
    target_split = _split(target, seed, notes)
    if spec.speaker_emotions:
        target_split = _confine(target_split, target.ref.name, spec, seed, notes)
    train = target_split.train
    labeled_rows = [i for i, u in enumerate(train) if u.emotion is not None]
    if spec.target_all_labeled:
        chosen = set(labeled_rows)
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
    return _SeedData(
        source_train=parts["train"],
        source_validation=parts["validation"],
        source_test=parts["test"],
        target_labeled=[u for i, u in enumerate(train) if i in chosen],
        target_unlabeled=[u for i, u in enumerate(train) if i not in chosen],
        target_validation=[u for u in target_split.validation if u.emotion is not None],
        target_test=[u for u in target_split.test if u.emotion is not None],
        notes=notes,
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


def _split(corpus: _Corpus, seed: int, notes: list[str]) -> Split:
    split = speaker_split(corpus.utterances, seed=seed)
    notes.extend(f"{corpus.ref.name} (seed {seed}): {note}" for note in split.notes)
    return split


# ----------------------------------------------------------------------------------------------
# the runner


class ExperimentRunner:
    """Runs experiments, sharing the encoder, the embedding cache and loaded features between them.

    Args:
        encoder: an encoder instance to use instead of building ``spec.adapt.encoder`` from the
            registry (tests pass a tiny random one; scripts pass one they built once).
        cache_dir: embedding cache folder; default :func:`serdemo.cache.default_cache_dir`.
        show_progress: draw tqdm bars on stderr (embedding, then epochs over all seeds).
        log: called with one-line status messages (e.g. ``print``); default silent.

    """

    def __init__(
        self,
        encoder: UtteranceEncoder | None = None,
        cache_dir: str | os.PathLike | None = None,
        show_progress: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._encoder = encoder
        self.cache = EmbeddingCache(cache_dir if cache_dir is not None else default_cache_dir())
        self.show_progress = show_progress
        self.log = log or (lambda message: None)
        self._corpora: dict[tuple[str, Path], list[Utterance]] = {}
        self._inputs: dict[tuple[str, str], np.ndarray] = {}  # (encoder identity or "wave", path) -> input
        self._baselines: dict[str, AdaptResult] = {}  # source-only models, shared by experiments

    # --- public ---

    def encoder(self, name: str) -> UtteranceEncoder:
        """Return the encoder given at construction, else build ``name`` from the registry (once)."""
        if self._encoder is None:
            check_encoder_name(name)
            self._encoder = build_encoder(name)
        return self._encoder

    def run(self, spec: ExperimentSpec) -> dict[str, Any]:
        """Run ``spec`` for every seed of ``spec.adapt.seeds`` and return the JSON-ready results.

        Raises:
            ExperimentError, CorpusError, ConfigError, EncoderUnavailableError, AudioError: inputs
                that cannot be used; nothing has been trained when they are raised.

        """
        started = time.perf_counter()
        config = spec.adapt
        if self._encoder is None:
            check_encoder_name(config.encoder)
        # 1) load and split everything first: bad arguments fail before minutes of embedding
        sources = [self._corpus(ref, config.classes, keep_unlabeled=False) for ref in spec.sources]
        target = self._corpus(spec.target, config.classes, keep_unlabeled=True)
        seeds = {seed: _seed_data(sources, target, spec, seed) for seed in config.seeds}
        tags = _language_tags(sources, target)
        # the speech front end is part of the encoder (and of its cache identity): every clip is trimmed alike
        encoder = with_frontend(self.encoder(config.encoder), config.frontend)
        encoder.to(config.device)  # frozen-mode embedding runs on --device too, not only training

        # 2) inputs of every clip: cached encoder features (frozen) or waveforms (finetune)
        tick = time.perf_counter()
        everything = [u for c in [*sources, target] for u in c.utterances]
        self._prepare_inputs(encoder, everything, config.mode)
        embedding_seconds = time.perf_counter() - tick

        # 3) train and score each seed
        per_seed = []
        bar = self._epoch_bar(spec)
        try:
            for seed, data in seeds.items():
                per_seed.append(self._run_seed(spec, seed, data, encoder, tags, bar))
        finally:
            if bar is not None:
                bar.close()

        summary = {role: _summary([s[role] for s in per_seed]) for role in ROLES}
        notes = sorted({note for data in seeds.values() for note in data.notes})
        if ":" in tags[TARGET]:  # see _language_tags
            notes.append(f"the target shares the source language; its clips are tagged {tags[TARGET]!r}")
        return {
            "serdemo_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "config": spec.to_dict(),
            "encoder_identity": encoder.identity,
            "languages": tags,
            "source_ua": summary[SOURCE]["ua"]["mean"],
            "target_ua": summary[TARGET]["ua"]["mean"],
            "summary": summary,
            "per_seed": per_seed,
            "timings": {
                "embedding": embedding_seconds,
                "training_per_seed": [s["timings"]["training"] for s in per_seed],
                "total": time.perf_counter() - started,
            },
            "units": "ua, wa, macro_f1, recall: percent; std: sample std over seeds; times: seconds",
            "notes": notes,
            "machine": machine_info(),
        }

    # --- data ---

    def _corpus(self, ref: CorpusRef, classes: tuple[str, ...], keep_unlabeled: bool) -> _Corpus:
        key = (ref.name, ref.root.resolve())
        if key not in self._corpora:
            self._corpora[key] = load_corpus(ref.name, ref.root)
        kept = [
            u
            for u in self._corpora[key]
            if u.emotion in classes or (keep_unlabeled and u.emotion is None and not u.original_label)
        ]
        labeled = {u.emotion for u in kept if u.emotion is not None}
        if len(labeled) < 2:
            raise ExperimentError(
                f"{ref}: only {len(labeled)} of the classes {', '.join(classes)} occur in it; "
                "check the corpus folder or --classes"
            )
        return _Corpus(ref, kept)

    def _prepare_inputs(self, encoder: UtteranceEncoder, utterances: list[Utterance], mode: str) -> None:
        kind = encoder.identity if mode == Mode.FROZEN.value else "wave"
        todo = [u for u in utterances if (kind, str(u.path)) not in self._inputs]
        if not todo:
            return
        if mode == Mode.FROZEN.value:
            self.log(f"embedding {len(todo)} clips with {encoder.name} (cache: {self.cache.root})")
            bar = _tqdm(len(todo), "embedding", "clip", self.show_progress)
            done_before = [0]

            def progress(done: int, total: int) -> None:
                if bar is not None:
                    bar.update(done - done_before[0])
                done_before[0] = done

            try:
                features = embed_files(encoder, [u.path for u in todo], self.cache, progress=progress)
            finally:
                if bar is not None:
                    bar.close()
            for utterance, vector in zip(todo, features, strict=True):
                self._inputs[kind, str(utterance.path)] = vector
        else:
            for utterance in todo:
                self._inputs[kind, str(utterance.path)] = load_audio(utterance.path)

    def _clips(
        self, utterances: list[Utterance], config: AdaptConfig, tag: str, encoder: UtteranceEncoder
    ) -> ClipSet:
        """ClipSet of ``utterances`` with the role's language tag; unknown emotions get label -1."""
        frozen = config.mode == Mode.FROZEN.value
        kind = encoder.identity if frozen else "wave"
        inputs = [self._inputs[kind, str(u.path)] for u in utterances]
        classes = list(config.classes)
        return ClipSet(
            ids=[u.id for u in utterances],
            labels=np.array([classes.index(u.emotion) if u.emotion in classes else -1 for u in utterances]),
            languages=[tag] * len(utterances),
            speakers=[u.speaker for u in utterances],
            features=(np.stack(inputs) if inputs else _no_features(encoder)) if frozen else None,
            waveforms=None if frozen else inputs,
        )

    # --- training ---

    def _run_seed(
        self,
        spec: ExperimentSpec,
        seed: int,
        data: _SeedData,
        encoder: UtteranceEncoder,
        tags: dict[str, str],
        bar: Any,
    ) -> dict[str, Any]:
        config = spec.adapt.replace(seed=seed)

        def clips(utterances: list[Utterance], role: str) -> ClipSet:
            return self._clips(utterances, config, tags[role], encoder)

        source = clips(data.source_train, SOURCE)
        target_labeled = clips(data.target_labeled, TARGET)
        target_unlabeled = clips(data.target_unlabeled, TARGET)
        validation = {
            SOURCE: clips(data.source_validation, SOURCE),
            TARGET: clips(data.target_validation, TARGET),
        }
        tests = {SOURCE: clips(data.source_test, SOURCE), TARGET: clips(data.target_test, TARGET)}

        # 1) the source-only model: the "before adaptation" representation, shared across settings
        baseline_key = _baseline_key(spec, seed)
        tick = time.perf_counter()
        if baseline_key not in self._baselines:
            everything_unlabeled = ClipSet.concat([target_labeled, target_unlabeled]).without_labels()
            self._baselines[baseline_key] = self._adapt(
                source, target_labeled.subset(np.zeros(0, int)), everything_unlabeled, validation,
                _baseline_config(config), encoder, bar, f"seed {seed} source-only",
            )  # fmt: skip
        baseline = self._baselines[baseline_key]
        baseline_seconds = time.perf_counter() - tick

        # 2) the run itself (the lower bound is the source-only model)
        tick = time.perf_counter()
        if spec.setting == "lower-bound":
            result, tick = baseline, tick - baseline_seconds  # its training time is the baseline's
        else:
            result = self._adapt(
                source, target_labeled, target_unlabeled, validation, config, encoder, bar, f"seed {seed}"
            )
        training_seconds = time.perf_counter() - tick

        # 3) scores on both test sets, curves and representation quality
        out: dict[str, Any] = {"seed": seed}
        for role in ROLES:
            out[role] = _percent(
                evaluate(tests[role].labels, predict_proba(result, tests[role]), config.classes)
            )
        out["source_only_ua"] = {  # the same seed's model before adaptation, for the gain adaptation brings
            role: _percent(
                evaluate(tests[role].labels, predict_proba(baseline, tests[role]), config.classes)
            )["ua"]
            for role in ROLES
        }
        out["silhouette"] = {"before": _silhouettes(baseline, tests), "after": _silhouettes(result, tests)}
        out["curves"] = _curves(result, tags)
        out["pseudo_label_rounds"] = result.rounds
        out.update(best_epoch=result.best_epoch, epochs_run=result.epochs_run, stopped=result.stopped)
        out["sizes"] = data.sizes()
        out["target_labeled_per_class"] = {
            c: sum(u.emotion == c for u in data.target_labeled) for c in config.classes
        }
        out["timings"] = {
            "training": training_seconds,
            "source_only_training": baseline_seconds,
            "phases": result.timings,
        }
        self.log(
            f"seed {seed}: source UA {out[SOURCE]['ua']:.2f}  target UA {out[TARGET]['ua']:.2f}  "
            f"(best epoch {result.best_epoch}, {training_seconds:.1f} s)"
        )
        return out

    def _adapt(
        self,
        source: ClipSet,
        target_labeled: ClipSet,
        target_unlabeled: ClipSet,
        validation: dict[str, ClipSet],
        config: AdaptConfig,
        encoder: UtteranceEncoder,
        bar: Any,
        what: str,
    ) -> AdaptResult:
        finetune = config.mode == Mode.FINETUNE.value
        done = [0]

        def progress(event: ProgressEvent) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(
                    f"{what} epoch {event.epoch} val UA "
                    + " ".join(f"{k} {100 * v:.1f}" for k, v in event.val_ua.items())
                )
            done[0] = event.epoch

        result = adapt(
            source, target_labeled, target_unlabeled, validation, config, progress,
            encoder=copy.deepcopy(encoder) if finetune else None,  # fine-tuning trains its encoder in place
        )  # fmt: skip
        if bar is not None:  # early stopping skips epochs the bar counted on
            bar.update(config.epochs - done[0])
        return result

    def _epoch_bar(self, spec: ExperimentSpec) -> Any:
        fresh = [seed for seed in spec.adapt.seeds if _baseline_key(spec, seed) not in self._baselines]
        runs = len(spec.adapt.seeds) * (spec.setting != "lower-bound") + len(fresh)
        return _tqdm(runs * spec.adapt.epochs, spec.setting, "epoch", self.show_progress)


# ----------------------------------------------------------------------------------------------
# helpers


def default_corpora_dir() -> Path:
    """Where bare corpus names are looked up: ``$SERDEMO_CORPORA``, else ``../shared/corpora``."""
    return Path(os.environ.get("SERDEMO_CORPORA", "../shared/corpora")).expanduser()


def check_encoder_name(name: str) -> None:
    """Raise :class:`ExperimentError` listing the registered encoders unless ``name`` is one."""
    if name not in ENCODERS:
        raise ExperimentError(f"unknown encoder {name!r}: use one of {', '.join(encoder_names())}")


def _baseline_config(config: AdaptConfig) -> AdaptConfig:
    # policy, tau and rebalancing cannot change a model trained without target labels or pseudo-labels
    defaults = AdaptConfig()
    return config.replace(
        policy=Policy.NONE.value, tau=defaults.tau, rebalance=defaults.rebalance, seeds=(config.seed,)
    )


def _baseline_key(spec: ExperimentSpec, seed: int) -> str:
    """Identify the source-only model of ``spec`` and ``seed``: same data, same training settings."""
    config = _baseline_config(spec.adapt.replace(seed=seed))
    description = spec.to_dict()
    data = [description["sources"], description["target"], description["speaker_emotions"]]
    return json.dumps([*data, config.to_dict()], sort_keys=True)


def _language_tags(sources: list[_Corpus], target: _Corpus) -> dict[str, str]:
    """One language tag per role: pooled sources form one language, and the target never shares it."""
    source = "+".join(sorted({u.language for c in sources for u in c.utterances}))
    tag = "+".join(sorted({u.language for u in target.utterances}))
    if tag == source:  # e.g. RAVDESS -> SAVEE: same language, still two roles to normalise and plot
        tag = f"{tag}:{target.ref.name}"
    return {SOURCE: source, TARGET: tag}


def _no_features(encoder: UtteranceEncoder) -> np.ndarray:
    return np.zeros((0, encoder.num_layers, 2 * encoder.hidden_size), np.float32)


def _percent(scores: dict[str, Any]) -> dict[str, Any]:
    out = dict(scores)
    for key in SCORES:
        out[key] = 100.0 * scores[key]
    out["recall"] = {c: None if r is None else 100.0 * r for c, r in scores["recall"].items()}
    return out


def _summary(scores: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in SCORES:
        values = np.array([s[key] for s in scores], dtype=float)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {"mean": float(values.mean()), "std": std}
    return out


def _silhouettes(result: AdaptResult, tests: dict[str, ClipSet]) -> dict[str, float | None]:
    """Silhouette of the learned representation of the test clips.

    ``emotion_target``: target test clips grouped by emotion; ``emotion_both``: both test sets by
    emotion; ``language``: both test sets grouped by language (lower means the languages mix).
    """
    vectors = {role: embed(result, tests[role]) for role in ROLES}
    both = np.concatenate([vectors[SOURCE], vectors[TARGET]])
    emotions = np.concatenate([tests[SOURCE].labels, tests[TARGET].labels])
    languages = np.array([SOURCE] * len(tests[SOURCE]) + [TARGET] * len(tests[TARGET]))
    return {
        "emotion_target": _safe_silhouette(vectors[TARGET], tests[TARGET].labels),
        "emotion_both": _safe_silhouette(both, emotions),
        "language": _safe_silhouette(both, languages),
    }


def _safe_silhouette(vectors: np.ndarray, groups: np.ndarray) -> float | None:
    try:
        return silhouette(vectors, groups)
    except ValueError:  # a single group, e.g. a test split holding one emotion
        return None


def _curves(result: AdaptResult, tags: dict[str, str]) -> dict[str, Any]:
    """Per-epoch train and validation UA per role, in percent (paper Fig. 5); None where unmeasured."""
    role_of = {tag: role for role, tag in tags.items()}

    def pct(value: float | None) -> float | None:
        return None if value is None else 100.0 * value

    train = {role: [] for role in ROLES}
    for row in result.history:
        by_role = {role_of.get(tag, tag): ua for tag, ua in row["train_ua"].items()}
        for role in ROLES:
            train[role].append(pct(by_role.get(role)))
    return {
        "epoch": [row["epoch"] for row in result.history],
        "loss": [row["losses"]["loss"] for row in result.history],
        "train_ua": train,
        "val_ua": {role: [pct(row["val_ua"].get(role)) for row in result.history] for role in ROLES},
    }


def _tqdm(total: int, desc: str, unit: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # disable=None: draw only on a terminal, so logs and CI output stay free of carriage returns
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=None)


def machine_info() -> dict[str, Any]:
    """Where a result was measured: CPU model, core count, Python and torch versions."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def write_json_atomic(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` so readers never see half a file (temp file + ``os.replace``).

    Raises:
        ExperimentError: the folder of ``path`` does not exist.

    """
    path = Path(path)
    check_output_path(path)
    handle = tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8"
    )
    try:
        with handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(handle.name, path)
    except BaseException:  # KeyboardInterrupt included: leave no temporary file behind
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path


def check_output_path(path: str | os.PathLike) -> Path:
    """``path`` if a results file can be written there, else :class:`ExperimentError`."""
    path = Path(path)
    if path.is_dir():
        raise ExperimentError(f"--out {path} is a folder; give a file name such as {path / 'results.json'}")
    if not path.parent.is_dir():
        raise ExperimentError(f"--out {path}: folder {path.parent} does not exist; create it first")
    return path


__all__ = [
    "CorpusError",
    "CorpusRef",
    "ExperimentError",
    "ExperimentRunner",
    "ExperimentSpec",
    "check_encoder_name",
    "check_output_path",
    "default_corpora_dir",
    "machine_info",
    "stratified_sample",
    "write_json_atomic",
]
