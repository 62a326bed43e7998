"""The experiment runner: loads and embeds the corpora once, trains and scores every seed of a spec."""

from __future__ import annotations

import copy
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from serdemo import __version__
from serdemo.audio import load_audio
from serdemo.cache import EmbeddingCache, default_cache_dir, embed_files
from serdemo.config import AdaptConfig, Mode
from serdemo.corpora import Utterance, load_corpus
from serdemo.encoders import build_encoder
from serdemo.encoders.base import UtteranceEncoder
from serdemo.experiment.protocol import (
    ROLES,
    SOURCE,
    TARGET,
    Corpus,
    CorpusRef,
    ExperimentError,
    ExperimentSpec,
    SeedData,
    baseline_config,
    baseline_key,
    check_encoder_name,
    labels_picked_later,
    language_tags,
    least_certain,
    seed_data,
)
from serdemo.experiment.results import curves, machine_info, mean_std, percent, silhouettes, summarise
from serdemo.learn import AdaptResult, ClipSet, ProgressEvent, adapt, build_clipset, predict_proba
from serdemo.learn.augment import with_augmented_copies
from serdemo.metrics import evaluate
from serdemo.speech import with_frontend


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
        seeds = {seed: seed_data(sources, target, spec, seed) for seed in config.seeds}
        tags = language_tags(sources, target)
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

        summary = {role: summarise([s[role] for s in per_seed]) for role in ROLES}
        if all("target_every_emotion" in s for s in per_seed):
            summary["target_every_emotion"] = {
                key: mean_std([s["target_every_emotion"][key] for s in per_seed])
                for key in ("ua", "source_only_ua")
            }
        notes = sorted({note for data in seeds.values() for note in data.notes})
        if ":" in tags[TARGET]:  # see language_tags
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

    def _corpus(self, ref: CorpusRef, classes: tuple[str, ...], keep_unlabeled: bool) -> Corpus:
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
        return Corpus(ref, kept)

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
        return build_clipset(
            ids=[u.id for u in utterances],
            languages=[tag] * len(utterances),
            speakers=[u.speaker for u in utterances],
            labels=[classes.index(u.emotion) if u.emotion in classes else -1 for u in utterances],
            features=np.stack(inputs) if frozen and inputs else None,
            waveforms=None if frozen else inputs,
            feature_shape=(encoder.num_layers, 2 * encoder.hidden_size) if frozen else None,
        )

    # --- training ---

    def _run_seed(
        self,
        spec: ExperimentSpec,
        seed: int,
        data: SeedData,
        encoder: UtteranceEncoder,
        tags: dict[str, str],
        bar: Any,
    ) -> dict[str, Any]:
        config = spec.adapt.replace(seed=seed)

        def clips(utterances: list[Utterance], role: str) -> ClipSet:
            return self._clips(utterances, config, tags[role], encoder)

        source = clips(data.source_train, SOURCE)
        if labels_picked_later(spec):
            data = self._label_least_certain(spec, seed, data, source, clips, encoder, bar)
        target_labeled = clips(data.target_labeled, TARGET)
        if config.augment_copies and config.mode == Mode.FROZEN.value:  # what a microphone adds
            copies = config.augment_copies
            paths = [u.path for u in data.source_train]
            source = with_augmented_copies(source, paths, encoder, self.cache, copies, log=self.log)
            paths = [u.path for u in data.target_labeled]
            target_labeled = with_augmented_copies(target_labeled, paths, encoder, self.cache, copies)
        target_unlabeled = clips(data.target_unlabeled, TARGET)
        validation = {
            SOURCE: clips(data.source_validation, SOURCE),
            TARGET: clips(data.target_validation, TARGET),
        }
        tests = {SOURCE: clips(data.source_test, SOURCE), TARGET: clips(data.target_test, TARGET)}

        # 1) the source-only model: the "before adaptation" representation, shared across settings
        key = baseline_key(spec, seed)
        tick = time.perf_counter()
        if key not in self._baselines:
            everything_unlabeled = ClipSet.concat([target_labeled, target_unlabeled]).without_labels()
            self._baselines[key] = self._adapt(
                source, target_labeled.subset(np.zeros(0, int)), everything_unlabeled, validation,
                baseline_config(config), encoder, bar, f"seed {seed} source-only",
            )  # fmt: skip
        baseline = self._baselines[key]
        baseline_seconds = time.perf_counter() - tick

        # 2) the run itself (the lower bound is the source-only model)
        tick = time.perf_counter()
        if spec.setting == "lower-bound":
            result, tick = baseline, tick - baseline_seconds  # its training time is the baseline's
        else:
            result = self._adapt(
                source, target_labeled, target_unlabeled, validation, config, encoder, bar, f"seed {seed}",
                judge=baseline,  # the model before the round judges whether the pool is in one mood
            )  # fmt: skip
        training_seconds = time.perf_counter() - tick

        # 3) scores on both test sets, curves and representation quality
        out: dict[str, Any] = {"seed": seed}
        for role in ROLES:
            out[role] = percent(
                evaluate(tests[role].labels, predict_proba(result, tests[role]), config.classes)
            )
        out["source_only_ua"] = {  # the same seed's model before adaptation, for the gain adaptation brings
            role: percent(evaluate(tests[role].labels, predict_proba(baseline, tests[role]), config.classes))[
                "ua"
            ]
            for role in ROLES
        }
        if data.target_test_every_emotion:  # confounded: the same test speakers, every emotion they recorded
            every = clips(data.target_test_every_emotion, TARGET)
            out["target_every_emotion"] = {
                "ua": percent(evaluate(every.labels, predict_proba(result, every), config.classes))["ua"],
                "source_only_ua": percent(
                    evaluate(every.labels, predict_proba(baseline, every), config.classes)
                )["ua"],
                "clips": len(every),
            }
        out["silhouette"] = {"before": silhouettes(baseline, tests), "after": silhouettes(result, tests)}
        out["curves"] = curves(result, tags)
        out["pseudo_label_rounds"] = result.rounds
        out.update(best_epoch=result.best_epoch, epochs_run=result.epochs_run, stopped=result.stopped)
        out["learned_nothing"] = {  # the run's switches that set the target aside (serdemo.learn.small_pool)
            "small_pool": result.small_pool,
            "labels_of_few_emotions": result.labels_of_few_emotions,
            "pool_in_one_mood": result.pool_in_one_mood,
            "pool_spread": result.pool_spread,
        }
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

    def _label_least_certain(self, spec, seed, data, source, clips, encoder, bar) -> SeedData:
        """Label the pool clips the source-only model is least sure of (margin), as a user of the app would.

        The source-only model is trained as in :meth:`_run_seed` (no target label), so it is the same
        baseline key, trained once and shared.
        """
        config = spec.adapt.replace(seed=seed)
        pool = clips(data.target_unlabeled, TARGET)
        validation = {
            SOURCE: clips(data.source_validation, SOURCE),
            TARGET: clips(data.target_validation, TARGET),
        }
        if config.augment_copies and config.mode == Mode.FROZEN.value:
            paths = [u.path for u in data.source_train]
            source = with_augmented_copies(source, paths, encoder, self.cache, config.augment_copies)
        key = baseline_key(spec, seed)
        if key not in self._baselines:
            self._baselines[key] = self._adapt(
                source, pool.subset(np.zeros(0, int)), pool.without_labels(), validation,
                baseline_config(config), encoder, bar, f"seed {seed} source-only",
            )  # fmt: skip
        return least_certain(data, predict_proba(self._baselines[key], pool), spec.labeled)

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
        judge: AdaptResult | None = None,
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
            judge=judge,
        )  # fmt: skip
        if bar is not None:  # early stopping skips epochs the bar counted on
            bar.update(config.epochs - done[0])
        return result

    def _epoch_bar(self, spec: ExperimentSpec) -> Any:
        fresh = [seed for seed in spec.adapt.seeds if baseline_key(spec, seed) not in self._baselines]
        runs = len(spec.adapt.seeds) * (spec.setting != "lower-bound") + len(fresh)
        return _tqdm(runs * spec.adapt.epochs, spec.setting, "epoch", self.show_progress)


def _tqdm(total: int, desc: str, unit: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # disable=None: draw only on a terminal, so logs and CI output stay free of carriage returns
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=None)
