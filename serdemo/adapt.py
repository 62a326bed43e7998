"""Algorithm 1 of Agarla et al. (2023): adapt an emotion classifier to a new language with pseudo-labels.

One loop serves both training modes. ``frozen`` trains an :class:`~serdemo.model.EmotionHead` on
cached per-layer encoder features (seconds on a CPU); ``finetune`` trains encoder and head end to
end on random 2 s crops, as the paper does. The data abstraction is :class:`ClipSet` (features or
waveforms, labels with -1 for unlabeled, language, speaker); a batch function per mode turns pool
rows into model inputs, so everything else is shared.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from serdemo import finetune
from serdemo.audio import random_crop
from serdemo.config import AdaptConfig, Balance, ConfigError, Mode, Prior, Selection
from serdemo.corpora.base import Utterance
from serdemo.encoders.base import UtteranceEncoder, pad_batch
from serdemo.metrics import information_maximisation, unweighted_accuracy
from serdemo.model import EmotionHead, SERModel
from serdemo.normalize import FeatureNormalizer
from serdemo.propagation import propagate
from serdemo.pseudo_labels import (
    PseudoLabelPolicy,
    balance_by_group,
    make_policy,
    mixup,
    soft_cross_entropy,
)

BALANCE_CLIPS_PER_CLASS = 4  # smallest group pseudo_balance rescales: this many clips per class
BALANCE_UNTIL_LABELS_PER_CLASS = 10  # "auto-language" balances while fewer target labels per class


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
        return cls(
            ids=[utterances[i].id for i in keep],
            labels=labels[keep] if len(keep) else np.zeros(0, np.int64),
            languages=[utterances[i].language for i in keep],
            speakers=[utterances[i].speaker for i in keep],
            features=None if features is None else np.asarray(features)[keep],
            waveforms=None if waveforms is None else [waveforms[i] for i in keep],
        )


@dataclass
class TrainingSet:
    """The training set D of Algorithm 1 as rows of the clip pool, with per-row targets and weights."""

    rows: np.ndarray  # (M,) pool index of each training row (oversampled rows repeat)
    targets: np.ndarray  # (M, C) float32 probability targets (one-hot for human labels)
    weights: np.ndarray  # (M,) float32 per-row loss weight from the policy (1 for human labels)
    pseudo: np.ndarray  # (M,) True where the target is a pseudo-label

    def __len__(self) -> int:
        return len(self.rows)


def build_training_set(
    labels: np.ndarray,
    is_target: np.ndarray,
    num_classes: int,
    pseudo_rows: np.ndarray | None = None,
    pseudo_targets: np.ndarray | None = None,
    pseudo_weights: np.ndarray | None = None,
    rebalance: bool = True,
    rng: np.random.Generator | None = None,
    max_repeats: int = 0,
) -> TrainingSet:
    """D = D_s + K_t + K'_t, built afresh: pseudo-labels replace, never add to, an earlier round's.

    Args:
        labels: (N,) pool labels; -1 for clips whose label training must not see.
        is_target: (N,) True for clips of the target language.
        num_classes: C.
        pseudo_rows: pool rows of the pseudo-labeled clips; rows with zero weight are left out (K'_t).
        pseudo_targets: (len(pseudo_rows), C) their targets.
        pseudo_weights: (len(pseudo_rows),) their weights.
        rebalance: oversample target rows at random, with replacement, until they are as many as the
            source rows; every original row stays (utterance rebalancing, Agarla et al., 2023).
        rng: randomness of the oversampling.
        max_repeats: with ``rebalance``, add at most ``max_repeats - 1`` extra rows per target row (0 = no
            limit): ten labeled clips repeated fifty times to match the source are memorised, not learned.

    """
    labeled = np.flatnonzero(labels >= 0)
    rows = [labeled]
    targets = [np.eye(num_classes, dtype=np.float32)[labels[labeled]]]
    weights = [np.ones(len(labeled), np.float32)]
    pseudo = [np.zeros(len(labeled), bool)]
    if pseudo_rows is not None and len(pseudo_rows):
        keep = np.asarray(pseudo_weights) > 0
        rows.append(np.asarray(pseudo_rows)[keep])
        targets.append(np.asarray(pseudo_targets, np.float32)[keep])
        weights.append(np.asarray(pseudo_weights, np.float32)[keep])
        pseudo.append(np.ones(int(keep.sum()), bool))
    out = TrainingSet(
        np.concatenate(rows), np.concatenate(targets), np.concatenate(weights), np.concatenate(pseudo)
    )
    if rebalance:
        target_rows = np.flatnonzero(is_target[out.rows])
        missing = (len(out) - len(target_rows)) - len(target_rows)
        if max_repeats > 0:
            missing = min(missing, (max_repeats - 1) * len(target_rows))
        if missing > 0 and len(target_rows):
            rng = rng if rng is not None else np.random.default_rng()
            extra = np.sort(rng.choice(target_rows, size=missing, replace=True))
            out = TrainingSet(
                np.concatenate([out.rows, out.rows[extra]]),
                np.concatenate([out.targets, out.targets[extra]]),
                np.concatenate([out.weights, out.weights[extra]]),
                np.concatenate([out.pseudo, out.pseudo[extra]]),
            )
    return out


# ----------------------------------------------------------------------------------------------
# results and progress


@dataclass(frozen=True)
class ProgressEvent:
    """What the loop reports after every epoch."""

    epoch: int
    total_epochs: int
    losses: dict[str, float]  # mean "loss", "supervised" and "unlabeled" of the epoch
    pseudo_counts: dict[str, int] | None  # accepted pseudo-labels per class of the latest round
    train_ua: dict[str, float]  # running UA on the labeled training clips, per language
    val_ua: dict[str, float]  # UA per validation set
    best_epoch: int
    lr: float
    seconds: float  # since the start of the run


@dataclass
class AdaptResult:
    """A trained model with everything needed to use, plot, save and judge it."""

    config: AdaptConfig
    model: nn.Module  # EmotionHead (frozen) or SERModel (finetune), best weights, eval mode
    normalizer: FeatureNormalizer | None  # frozen mode: apply to features before the head
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch (paper Fig. 5)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # one row per pseudo-label round
    best_epoch: int = 0
    best_score: float | None = None  # mean validation UA at best_epoch
    epochs_run: int = 0
    stopped: str = "completed"  # "completed", "early-stopping" or "cancelled"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in the order of the model's outputs."""
        return self.config.classes

    @property
    def head(self) -> EmotionHead:
        """The classification head (the whole model in frozen mode)."""
        return self.model.head if isinstance(self.model, SERModel) else self.model


# ----------------------------------------------------------------------------------------------
# the loop


def adapt(
    source: ClipSet,
    target_labeled: ClipSet,
    target_unlabeled: ClipSet,
    validation: dict[str, ClipSet],
    config: AdaptConfig | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    encoder: UtteranceEncoder | None = None,
    should_stop: Callable[[], bool] | threading.Event | None = None,
) -> AdaptResult:
    """Train on source + few labeled target clips, pseudo-labeling the unlabeled target pool every W epochs.

    Agarla et al. (2023), Algorithm 1: train E epochs on D = D_s + K_t; at epochs W, 2W, ... label
    U_t with the current model and rebuild D = D_s + K_t + K'_t; oversample target clips to the
    source count after every rebuild. The weights of the epoch with the best mean validation UA
    over ``validation``'s sets (e.g. source and target language) are kept.

    Args:
        source: labeled source-language clips D_s.
        target_labeled: the few labeled target-language clips K_t (may be empty).
        target_unlabeled: the unlabeled target pool U_t. Its labels are never trained on; where
            known (>= 0) they only measure pseudo-label accuracy in ``AdaptResult.rounds``.
        validation: named labeled sets scored every epoch, e.g. ``{"en": ..., "de": ...}``.
        config: hyper-parameters; :class:`AdaptConfig` defaults are the paper's.
        progress: called after every epoch.
        encoder: the encoder to fine-tune (finetune mode only; trained in place).
        should_stop: polled between mini-batches; True (or a set Event) cancels the run, which
            then returns the best model so far with ``stopped == "cancelled"``.

    """
    config = config or AdaptConfig()
    threads = config.threads or (1 if config.mode == Mode.FROZEN.value else torch.get_num_threads())
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):  # seeding must not disturb the caller's random state
            return _adapt(
                source, target_labeled, target_unlabeled, validation, config, progress, encoder, should_stop
            )
    finally:
        torch.set_num_threads(previous_threads)


def _adapt(source, target_labeled, target_unlabeled, validation, config, progress, encoder, should_stop):
    start_time = time.perf_counter()
    timings = {"train": 0.0, "validation": 0.0, "pseudo_label": 0.0}
    stop = _stop_function(should_stop)

    # 1) check inputs and seed every random number generator
    device = _device(config.device)
    _check_inputs(source, target_labeled, target_unlabeled, validation, config, encoder)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    num_classes = len(config.classes)

    # 2) one pool of all training clips; the unlabeled pool's labels are hidden from training
    pool = ClipSet.concat([source, target_labeled, target_unlabeled])
    n_source, n_labeled = len(source), len(target_labeled)
    unlabeled_rows = np.arange(n_source + n_labeled, len(pool))
    train_labels = pool.labels.copy()
    train_labels[unlabeled_rows] = -1
    is_target = np.arange(len(pool)) >= n_source

    # 3) model, inputs and batch function of the mode
    if config.mode == Mode.FROZEN.value:
        normalizer = FeatureNormalizer(config.normalization, nap_dim=config.nap_dim).fit(
            pool.features, pool.languages, pool.speakers, train_labels
        )
        _, num_layers, feature_dim = pool.features.shape
        model = _make_head(config, num_layers, feature_dim)
        pool_inputs = _Inputs.frozen(
            normalizer.transform(pool.features, pool.languages, pool.speakers), device
        )
    else:
        normalizer = None  # encoder features move during fine-tuning; the head's LayerNorm handles scale
        model = SERModel(encoder, _make_head(config, encoder.num_layers, 2 * encoder.hidden_size))
        pool_inputs = _Inputs.finetune(pool.waveforms, config, device)
    model.to(device)
    val_inputs = {name: _inputs_for(config, normalizer, clips, device) for name, clips in validation.items()}
    policy = make_policy(config, _prior(config, target_labeled))
    # weight decay regularises the head only: pulling a pretrained encoder's weights to zero would undo it
    head = model if isinstance(model, EmotionHead) else model.head
    # the encoder has its own, smaller learning rate, warm-up and frozen blocks (serdemo.finetune)
    optimizer, scheduler = finetune.make_optimizer(model, head, config)

    # 4) D = D_s + K_t, target rows oversampled to the source count
    train = build_training_set(
        train_labels,
        is_target,
        num_classes,
        rebalance=config.rebalance,
        rng=rng,
        max_repeats=config.max_repeats,
    )
    result = AdaptResult(config=config, model=model, normalizer=normalizer)
    best_state, best_score, stale_epochs, latest_counts = None, -np.inf, 0, None
    choosing = _choosing_sets(config, validation, target_labeled, target_unlabeled)
    spread = None  # label propagation's probabilities of the unlabeled pool, once computed
    rounds_planned = policy.uses_unlabeled and len(unlabeled_rows) and config.epochs > config.window
    first_eligible = config.window + 1 if rounds_planned and config.select_after_first_round else 1

    for epoch in range(1, config.epochs + 1):
        # 5) one pass over D in shuffled mini-batches
        tick = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        encoder_lr = optimizer.param_groups[1]["lr"] if len(optimizer.param_groups) > 1 else None
        epoch_stats = _train_epoch(
            model, policy, train, pool_inputs, train_labels, pool.languages, config, optimizer, rng, stop
        )
        timings["train"] += time.perf_counter() - tick
        if epoch_stats is None:  # cancelled mid-epoch: this epoch does not count
            result.stopped = "cancelled"
            break
        scheduler.step()

        # 6) validation UA per set; keep the weights of the best mean (both languages count)
        tick = time.perf_counter()
        val_ua = {
            name: unweighted_accuracy(clips.labels, _predict(model, val_inputs[name]).argmax(1))
            for name, clips in validation.items()
        }
        parts = [val_ua[name] for name in choosing]
        pool_score = None
        if config.selection == Selection.LABEL_FREE.value and len(unlabeled_rows):
            pool_score = information_maximisation(_predict(model, pool_inputs.subset(unlabeled_rows)))
            parts.append(pool_score)
        timings["validation"] += time.perf_counter() - tick
        score = float(np.mean(parts)) if parts else float(epoch)  # nothing to judge by: keep the last
        if epoch < first_eligible:
            pass  # before the first pseudo-label round: neither kept nor counted towards patience
        elif score > best_score:
            best_state, best_score, stale_epochs = copy.deepcopy(model.state_dict()), score, 0
            result.best_epoch = epoch
        else:
            stale_epochs += 1

        # 7) every W epochs: pseudo-label U_t with the current model and rebuild D from scratch
        if (
            policy.uses_unlabeled
            and len(unlabeled_rows)
            and epoch % config.window == 0
            and epoch < config.epochs
        ):
            tick = time.perf_counter()
            probs = _predict(model, pool_inputs.subset(unlabeled_rows))
            if config.propagation > 0 and n_labeled and pool_inputs.features is not None:
                if spread is None:  # the labels do not change between rounds: spread them once
                    target_rows = np.arange(n_source, len(pool))
                    spread = propagate(
                        pool_inputs.features[target_rows].cpu().numpy(),
                        train_labels[target_rows],
                        num_classes,
                        config.seed,
                    )[n_labeled:]
                probs = (1 - config.propagation) * probs + config.propagation * spread
            probs = _balance(config, probs, target_unlabeled, _prior(config, target_labeled), n_labeled)
            targets, weights = policy.select(torch.from_numpy(probs))
            targets, weights = targets.numpy(), weights.numpy()
            train = build_training_set(
                train_labels,
                is_target,
                num_classes,
                unlabeled_rows,
                targets,
                weights,
                config.rebalance,
                rng,
                config.max_repeats,
            )
            round_stats = _round_stats(epoch, config, probs, targets, weights, target_unlabeled.labels, train)
            result.rounds.append(round_stats)
            latest_counts = round_stats["accepted_per_class"]
            timings["pseudo_label"] += time.perf_counter() - tick

        # 8) record, report, and stop early when validation has not improved for `patience` epochs
        row = {
            "epoch": epoch,
            "lr": lr,
            "encoder_lr": encoder_lr,  # finetune mode: shows the warm-up; None in frozen mode
            **epoch_stats,
            "val_ua": val_ua,
            "pool_score": pool_score,
            "val_score": score if parts else None,
        }
        result.history.append(row)
        result.epochs_run = epoch
        if progress is not None:
            progress(
                ProgressEvent(
                    epoch=epoch,
                    total_epochs=config.epochs,
                    losses=epoch_stats["losses"],
                    pseudo_counts=latest_counts,
                    train_ua=epoch_stats["train_ua"],
                    val_ua=val_ua,
                    best_epoch=result.best_epoch,
                    lr=lr,
                    seconds=time.perf_counter() - start_time,
                )
            )
        if stop():
            result.stopped = "cancelled"
            break
        if val_ua and config.patience and stale_epochs >= config.patience:
            result.stopped = "early-stopping"
            break

    # 9) restore the best weights
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.best_score = best_score if validation and best_state is not None else None
    timings["total"] = time.perf_counter() - start_time
    result.timings = timings
    return result


def _train_epoch(
    model: nn.Module,
    policy: PseudoLabelPolicy,
    train: TrainingSet,
    pool_inputs: _Inputs,
    train_labels: np.ndarray,
    languages: np.ndarray,
    config: AdaptConfig,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    stop: Callable[[], bool],
) -> dict[str, Any] | None:
    """One shuffled pass over ``train``; None when cancelled."""
    model.train()
    device = pool_inputs.device
    order = rng.permutation(len(train))
    # running sums and predictions stay on the device: a .item() per step would wait for the GPU each time
    totals = {"loss": 0.0, "supervised": 0.0, "unlabeled": 0.0}
    seen_rows, seen_preds, batches = [], [], 0
    for start in range(0, len(order), config.batch_size):
        if stop():
            return None
        sel = order[start : start + config.batch_size]
        # a) inputs of the rows (features, or fresh random crops), their targets and weights
        x, lengths = pool_inputs.train_batch(train.rows[sel], rng)
        targets = torch.from_numpy(train.targets[sel]).to(device)
        weights = torch.from_numpy(train.weights[sel]).to(device)
        pseudo = torch.from_numpy(train.pseudo[sel]).to(device)
        # b) mixup (soft policy): each row stays dominated by its own clip, so keeps its role
        if policy.uses_mixup and len(sel) > 1:
            x, targets, lam, perm = mixup(x, targets, config.mixup_alpha, rng)
            weights = lam * weights + (1 - lam) * weights[perm]
            if lengths is not None:
                lengths = torch.maximum(lengths, lengths[perm])
        # c) L = CE(labeled rows) + policy loss(pseudo-labeled rows)
        with finetune.autocast(config, device):
            logits = model(x) if lengths is None else model(x, lengths)
        logits = logits.float()
        zero = logits.new_zeros(())
        any_human, any_pseudo = bool((~train.pseudo[sel]).any()), bool(train.pseudo[sel].any())  # host-side
        supervised = soft_cross_entropy(logits[~pseudo], targets[~pseudo]).mean() if any_human else zero
        unlabeled = (
            policy.unlabeled_loss(logits[pseudo], targets[pseudo], weights[pseudo]) if any_pseudo else zero
        )
        loss = supervised + unlabeled
        # d) step
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals["loss"] += loss.detach()
        totals["supervised"] += supervised.detach()
        totals["unlabeled"] += unlabeled.detach()
        batches += 1
        human = ~train.pseudo[sel]
        seen_rows.append(train.rows[sel][human])
        seen_preds.append(logits.detach().argmax(1)[torch.from_numpy(human).to(device)])
    totals = {k: float(v) for k, v in totals.items()}  # one host sync per epoch
    rows, preds = np.concatenate(seen_rows), torch.cat(seen_preds).cpu().numpy()
    train_ua = {
        lang: unweighted_accuracy(train_labels[rows][languages[rows] == lang], preds[languages[rows] == lang])
        for lang in np.unique(languages[rows])
    }
    return {"losses": {k: v / max(batches, 1) for k, v in totals.items()}, "train_ua": train_ua}


def _round_stats(
    epoch: int,
    config: AdaptConfig,
    probs: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    hidden_labels: np.ndarray,
    train: TrainingSet,
) -> dict[str, Any]:
    accepted = weights > 0
    guessed = targets.argmax(1)
    known = accepted & (hidden_labels >= 0)
    counts = np.bincount(guessed[accepted], minlength=len(config.classes))
    return {
        "epoch": epoch,
        "pool": int(len(probs)),
        "accepted": int(accepted.sum()),
        "accepted_per_class": {name: int(c) for name, c in zip(config.classes, counts, strict=True)},
        "mean_confidence": float(probs.max(1).mean()) if len(probs) else None,
        # only where the "unlabeled" pool secretly has labels (experiments), never used in training
        "accuracy": float((guessed[known] == hidden_labels[known]).mean()) if known.any() else None,
        "training_rows": int(len(train)),
        "pseudo_rows": int(len(np.unique(train.rows[train.pseudo]))),
    }


# ----------------------------------------------------------------------------------------------
# inputs per mode


class _Inputs:
    """Model inputs of a set of clips: a features tensor (frozen) or waveforms (finetune)."""

    def __init__(self, features: torch.Tensor | None, waveforms: list[np.ndarray] | None, config, device):
        self.features, self.waveforms, self.config, self.device = features, waveforms, config, device

    @classmethod
    def frozen(cls, features: np.ndarray, device: torch.device) -> _Inputs:
        return cls(
            torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device), None, None, device
        )

    @classmethod
    def finetune(cls, waveforms: list[np.ndarray], config: AdaptConfig, device: torch.device) -> _Inputs:
        return cls(None, list(waveforms), config, device)

    def __len__(self) -> int:
        return len(self.features) if self.features is not None else len(self.waveforms)

    def subset(self, rows: np.ndarray) -> _Inputs:
        if self.features is not None:
            return _Inputs(self.features[torch.from_numpy(rows)], None, None, self.device)
        return _Inputs(None, [self.waveforms[r] for r in rows], self.config, self.device)

    def train_batch(
        self, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.features is not None:
            return self.features[torch.from_numpy(rows)], None
        # the paper trains on random 2 s crops; a new crop every time a clip is drawn
        crops = [random_crop(self.waveforms[r], self.config.crop_seconds, rng) for r in rows]
        batch, lengths = pad_batch(crops)
        return finetune.to_device(batch, self.device), finetune.to_device(lengths, self.device)

    def eval_batches(self):
        """``(positions, x, lengths)`` covering every clip once, whole utterances."""
        if self.features is not None:
            for start in range(0, len(self), 4096):
                yield (
                    np.arange(start, min(start + 4096, len(self))),
                    self.features[start : start + 4096],
                    None,
                )
            return
        order = np.argsort([len(w) for w in self.waveforms], kind="stable")  # similar lengths, little padding
        for start in range(0, len(order), self.config.eval_batch_size):
            idx = order[start : start + self.config.eval_batch_size]
            batch, lengths = pad_batch([self.waveforms[i] for i in idx])
            yield idx, finetune.to_device(batch, self.device), finetune.to_device(lengths, self.device)


def _inputs_for(config: AdaptConfig, normalizer: FeatureNormalizer | None, clips: ClipSet, device) -> _Inputs:
    if config.mode == Mode.FROZEN.value:
        if clips.features is None:
            raise AdaptError("frozen mode needs features in every ClipSet (compute them with the encoder)")
        feats = (
            clips.features
            if normalizer is None
            else normalizer.transform(clips.features, clips.languages, clips.speakers)
        )
        return _Inputs.frozen(feats, device)
    if clips.waveforms is None:
        raise AdaptError("finetune mode needs waveforms in every ClipSet")
    return _Inputs.finetune(clips.waveforms, config, device)


@torch.no_grad()
def _run(model: nn.Module, inputs: _Inputs, what: str) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = None
    for idx, x, lengths in inputs.eval_batches():
        args = (x,) if lengths is None else (x, lengths)
        with finetune.autocast(inputs.config, x.device):
            y = torch.softmax(model(*args).float(), dim=-1) if what == "probs" else model.embedding(*args)
        if out is None:
            out = np.zeros((len(inputs), y.shape[1]), np.float32)
        out[idx] = y.float().cpu().numpy()
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), np.float32)


def _predict(model: nn.Module, inputs: _Inputs) -> np.ndarray:
    return _run(model, inputs, "probs")


def predict_proba(result: AdaptResult, clips: ClipSet) -> np.ndarray:
    """Class probabilities (N, C) of ``clips`` (whole utterances), columns in ``result.classes`` order."""
    device = next(result.model.parameters()).device
    probs = _run(result.model, _inputs_for(result.config, result.normalizer, clips, device), "probs")
    return probs if len(clips) else np.zeros((0, len(result.classes)), np.float32)


def embed(result: AdaptResult, clips: ClipSet) -> np.ndarray:
    """Return the learned representation (N, P) of ``clips``: the head's projection, for plots."""
    device = next(result.model.parameters()).device
    return _run(result.model, _inputs_for(result.config, result.normalizer, clips, device), "embedding")


# ----------------------------------------------------------------------------------------------
# helpers


def _make_head(config: AdaptConfig, num_layers: int, feature_dim: int) -> EmotionHead:
    return EmotionHead(
        num_layers,
        feature_dim,
        len(config.classes),
        config.projection_dim,
        config.layers,
        config.dropout,
        config.layer_combination,
    )


def _choosing_sets(
    config: AdaptConfig, validation: dict[str, ClipSet], target_labeled: ClipSet, target_unlabeled: ClipSet
) -> list[str]:
    """Names of the validation sets whose UA picks the epoch: all, or (label-free) source-language ones."""
    if config.selection != Selection.LABEL_FREE.value:
        return list(validation)
    target = set(target_labeled.languages.tolist()) | set(target_unlabeled.languages.tolist())
    return [name for name, clips in validation.items() if not set(clips.languages.tolist()) <= target]


def _balance(
    config: AdaptConfig,
    probs: np.ndarray,
    unlabeled: ClipSet,
    prior: torch.Tensor | None,
    target_labels: int,
) -> np.ndarray:
    """Match the pool's mean prediction to the class prior, per speaker group or per language."""
    if (
        config.pseudo_balance == Balance.NONE.value
        or (config.pseudo_balance == Balance.AUTO.value and target_labels > 0)
        or (
            config.pseudo_balance == Balance.AUTO_LANGUAGE.value
            and target_labels >= BALANCE_UNTIL_LABELS_PER_CLASS * probs.shape[1]
        )
    ):
        return probs
    prior = np.full(probs.shape[1], 1.0 / probs.shape[1]) if prior is None else prior.numpy()
    # a group needs a few clips per class before "every class is equally likely" is a fair guess
    min_size = BALANCE_CLIPS_PER_CLASS * probs.shape[1]
    if config.pseudo_balance in (Balance.PER_LANGUAGE.value, Balance.AUTO_LANGUAGE.value):
        return balance_by_group(probs, unlabeled.languages, unlabeled.languages, prior, min_size)
    # "<language>/unknown" speakers (app uploads) form one group per language, as in normalisation
    return balance_by_group(probs, unlabeled.speakers, unlabeled.languages, prior, min_size)


def _prior(config: AdaptConfig, target_labeled: ClipSet) -> torch.Tensor | None:
    if config.prior == Prior.LABELED.value and len(target_labeled):
        counts = np.bincount(target_labeled.labels, minlength=len(config.classes)) + 1.0  # add-one smoothing
        return torch.tensor(counts / counts.sum(), dtype=torch.float32)
    return None  # uniform


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is available: use device='cpu'")
    return device


def _stop_function(should_stop: Callable[[], bool] | threading.Event | None) -> Callable[[], bool]:
    if should_stop is None:
        return lambda: False
    if isinstance(should_stop, threading.Event):
        return should_stop.is_set
    return should_stop


def _check_inputs(source, target_labeled, target_unlabeled, validation, config, encoder) -> None:
    num_classes = len(config.classes)
    if not len(source):
        raise AdaptError("the source set is empty: give labeled clips of the source language")
    for name, clips in [("source", source), ("target_labeled", target_labeled), *validation.items()]:
        if len(clips) and ((clips.labels < 0).any() or (clips.labels >= num_classes).any()):
            raise AdaptError(
                f"{name}: every clip needs a label in 0..{num_classes - 1} (classes {list(config.classes)}); "
                "put unlabeled clips in target_unlabeled"
            )
    for name, clips in validation.items():
        if not len(clips):
            raise AdaptError(f"validation set {name!r} is empty: drop it or give it labeled clips")
    if len(np.unique(source.labels)) < 2:
        raise AdaptError("the source set holds a single emotion: give clips of at least two classes")
    sets = [source, target_labeled, target_unlabeled, *validation.values()]
    if config.mode == Mode.FROZEN.value:
        if any(s.features is None for s in sets):
            raise AdaptError("frozen mode needs features in every ClipSet (compute them with the encoder)")
        shapes = {s.features.shape[1:] for s in sets if len(s)}
        if len(shapes) > 1:
            raise AdaptError(f"feature shapes differ between sets {sorted(shapes)}: use one encoder for all")
    else:
        if encoder is None:
            raise AdaptError("finetune mode needs the encoder: adapt(..., encoder=ENCODERS[name].build())")
        if any(s.waveforms is None for s in sets):
            raise AdaptError("finetune mode needs waveforms in every ClipSet")


# ----------------------------------------------------------------------------------------------
# save / load (nanoGPT: the config sits beside the weights)


def save_model(result: AdaptResult, folder: str | Path) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``model.json`` (classes, history) and the normaliser.

    Crash-atomic: everything goes into a temporary sibling folder, each file is fsynced, and the
    folder is renamed to ``folder`` last (then the parent is fsynced), so ``folder`` either holds a
    complete model or does not exist. ``folder`` must not exist yet.
    """
    final = Path(folder)
    if final.exists():
        raise FileExistsError(f"{final} exists: save each model version to a new folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        _write_model_files(result, folder)
        for file in folder.iterdir():
            _fsync(file)
        _fsync(folder)
        os.replace(folder, final)
        _fsync(final.parent)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return final


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_model_files(result: AdaptResult, folder: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2))
    head = result.head
    meta = {
        "classes": list(result.classes),
        "mode": result.config.mode,
        "num_layers": head.num_layers,
        "feature_dim": head.feature_dim,
        "encoder_identity": result.model.encoder.identity if isinstance(result.model, SERModel) else None,
        "best_epoch": result.best_epoch,
        "best_score": result.best_score,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped,
        "history": result.history,
        "rounds": result.rounds,
        "timings": result.timings,
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2))
    if result.normalizer is not None:
        norm_meta, arrays = result.normalizer.state()
        (folder / "normalizer.json").write_text(json.dumps(norm_meta, indent=2))
        np.savez(folder / "normalizer.npz", **arrays)


def load_model(folder: str | Path, encoder: UtteranceEncoder | None = None) -> AdaptResult:
    """Inverse of :func:`save_model`. Finetune models need an encoder of the same architecture.

    Args:
        folder: what :func:`save_model` wrote.
        encoder: finetune mode only: an encoder to load the saved weights into; by default it is
            built from the registry entry ``config.encoder``.

    """
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no saved model (model.safetensors + config.json expected)")
    config = AdaptConfig.from_dict(json.loads((folder / "config.json").read_text()))
    meta = json.loads((folder / "model.json").read_text())
    head = _make_head(config, meta["num_layers"], meta["feature_dim"])
    if config.mode == Mode.FINETUNE.value:
        if encoder is None:
            from serdemo.encoders.base import ENCODERS

            if config.encoder not in ENCODERS:
                raise AdaptError(f"encoder {config.encoder!r} is not registered: pass encoder= to load_model")
            encoder = ENCODERS[config.encoder].build()
        model: nn.Module = SERModel(encoder, head)
    else:
        model = head
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.eval()
    normalizer = None
    if (folder / "normalizer.json").is_file():
        with np.load(folder / "normalizer.npz") as data:
            arrays = {k: data[k] for k in data.files}
        normalizer = FeatureNormalizer.from_state(
            json.loads((folder / "normalizer.json").read_text()), arrays
        )
    return AdaptResult(
        config=config,
        model=model,
        normalizer=normalizer,
        history=meta.get("history", []),
        rounds=meta.get("rounds", []),
        best_epoch=meta.get("best_epoch", 0),
        best_score=meta.get("best_score"),
        epochs_run=meta.get("epochs_run", 0),
        stopped=meta.get("stopped", "completed"),
        timings=meta.get("timings", {}),
    )
