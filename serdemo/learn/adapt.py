"""Algorithm 1 of Agarla et al. (2023): adapt an emotion classifier to a new language with pseudo-labels.

One loop serves both training modes. ``frozen`` trains an :class:`~serdemo.learn.model.EmotionHead` on
cached per-layer encoder features (seconds on a CPU); ``finetune`` trains encoder and head end to
end on random 2 s crops, as the paper does. The data abstraction is
:class:`~serdemo.learn.clips.ClipSet` (features or waveforms, labels with -1 for unlabeled, language,
speaker); :mod:`serdemo.learn.inference` turns pool rows into model inputs per mode, so everything
else is shared.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from serdemo.config import FROZEN_THREADS, AdaptConfig, ConfigError, Mode, Selection
from serdemo.encoders.base import UtteranceEncoder
from serdemo.learn import finetune
from serdemo.learn.clips import AdaptError, ClipSet
from serdemo.learn.components import ComponentHead, can_use_components, fit_components
from serdemo.learn.denormals import flushing_denormals
from serdemo.learn.inference import Inputs, inputs_for, predict
from serdemo.learn.linear_step import can_step_by_hand, weighted_ce_step
from serdemo.learn.model import EmotionHead, SERModel, make_head
from serdemo.learn.normalize import FeatureNormalizer
from serdemo.learn.pool_moods import is_judged, relative_spread, sounds_like_one_mood
from serdemo.learn.propagation import propagate
from serdemo.learn.pseudo_labels import (
    PseudoLabelPolicy,
    balance_pseudo_probs,
    class_prior,
    labels_given,
    make_policy,
    mixup,
    soft_cross_entropy,
)
from serdemo.learn.reduced_head import ReducedHead, can_reduce, reduce_inputs
from serdemo.learn.result import AdaptResult, ProgressEvent, PseudoLabels
from serdemo.learn.small_pool import (
    is_small_pool,
    labels_of_few_emotions,
    labels_set_aside,
    learning_nothing,
)
from serdemo.learn.transplant import language_transplants
from serdemo.metrics import information_maximisation, unweighted_accuracy


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
    rebalance: bool = AdaptConfig.rebalance,
    rng: np.random.Generator | None = None,
    max_repeats: int = AdaptConfig.max_repeats,
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
    reduce: bool = True,
    judge: AdaptResult | None = None,
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
        reduce: frozen mode with a concat head: normalise each layer once per run and train on that
            (:mod:`serdemo.learn.reduced_head`; same model, rounds 1.2-2.2x faster). False: raw features.
        judge: a model trained without this target pool (the app's active version, an experiment's
            source-only model). Where the pool holds few labels, the spread of its answers over the pool
            says whether the pool sounds like one mood; the run then learns nothing from the language
            (:mod:`serdemo.learn.pool_moods`, ``AdaptConfig.one_mood_spread``). None: not judged.

    """
    config = config or AdaptConfig()
    threads = config.threads or torch.get_num_threads()
    if not config.threads and config.mode == Mode.FROZEN.value:
        threads = min(threads, FROZEN_THREADS)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # seeding must not disturb the caller's random state; subnormal weights would slow every step 10x
        with torch.random.fork_rng(devices=[]), flushing_denormals():
            return _adapt(
                source,
                target_labeled,
                target_unlabeled,
                validation,
                config,
                progress,
                encoder,
                should_stop,
                reduce,
                judge,
            )
    finally:
        torch.set_num_threads(previous_threads)


def _adapt(
    source,
    target_labeled,
    target_unlabeled,
    validation,
    config,
    progress,
    encoder,
    should_stop,
    reduce,
    judge,
):
    start_time = time.perf_counter()
    timings = {"train": 0.0, "validation": 0.0, "pseudo_label": 0.0}
    stop = _stop_function(should_stop)

    # 1) check inputs and seed every random number generator
    device = _device(config.device)
    _check_inputs(source, target_labeled, target_unlabeled, validation, config, encoder)
    given = labels_given(target_labeled.ids)  # augmented copies are rows, not labels
    small_pool = is_small_pool(config, given + len(target_unlabeled), given)
    labeled_in_few_emotions = labels_of_few_emotions(config, target_labeled)
    spread = None  # the judge's answer spread over the pool, relative to the source's (pool_moods)
    judged = is_judged(config, given + len(target_unlabeled), given)
    if judge is not None and judged and not (small_pool or labeled_in_few_emotions):
        reference = _source_language_clips(validation, target_labeled, target_unlabeled)
        spread = relative_spread(judge, target_unlabeled, reference)
    in_one_mood = sounds_like_one_mood(config, spread)
    if small_pool or labeled_in_few_emotions or in_one_mood:
        config = learning_nothing(config)
        target_labeled, target_unlabeled = labels_set_aside(target_labeled, target_unlabeled)
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
    row_languages = pool.languages  # per training row (transplants, below, add rows)

    # 3) model, inputs and batch function of the mode
    if config.mode == Mode.FROZEN.value:
        normalizer = FeatureNormalizer(
            config.normalization,
            nap_dim=config.nap_dim,
            language_prior=config.language_prior,
            language_anchoring=config.language_anchoring,
        ).fit(pool.features, pool.languages, pool.speakers, train_labels)
        _, num_layers, feature_dim = pool.features.shape
        model = make_head(config, num_layers, feature_dim)
        standardised = normalizer.transform(pool.features, pool.languages, pool.speakers)
        if config.transplant_copies:
            # extra labeled target rows after the pool's (every pool row index above stays valid)
            rows, labels, donors = language_transplants(
                standardised, train_labels, is_target, config.transplant_copies, rng
            )
            standardised = np.concatenate([standardised, rows])
            train_labels = np.concatenate([train_labels, labels])
            is_target = np.concatenate([is_target, np.ones(len(rows), bool)])
            row_languages = np.concatenate(
                [row_languages, [f"{g} transplant" for g in pool.languages[donors]]]
            )
        pool_inputs = Inputs.frozen(standardised, device)
        del standardised
    else:
        normalizer = None  # encoder features move during fine-tuning; the head's LayerNorm handles scale
        model = SERModel(encoder, make_head(config, encoder.num_layers, 2 * encoder.hidden_size))
        pool_inputs = Inputs.finetune(pool.waveforms, config, device)
    model.to(device)
    val_inputs = {name: inputs_for(config, normalizer, clips, device) for name, clips in validation.items()}
    # net: what training and prediction call; it shares model's parameters (the head is what is kept)
    net, propagation_features = model, pool_inputs.features
    if reduce and config.mode == Mode.FROZEN.value and can_reduce(model):
        net = ReducedHead(model)
        propagation_features = propagation_features if config.propagation > 0 else None  # else free it
        pool_inputs = Inputs.frozen_tensor(reduce_inputs(model, pool_inputs.features), device)
        val_inputs = {
            name: Inputs.frozen_tensor(reduce_inputs(model, inputs.features), device)
            for name, inputs in val_inputs.items()
        }
        if config.input_components and can_use_components(net):
            components = fit_components(pool_inputs.features, config.input_components, config.seed, is_target)
            net = ComponentHead(model, components)
            pool_inputs = Inputs.frozen_tensor(components.project(pool_inputs.features), device)
            val_inputs = {
                name: Inputs.frozen_tensor(components.project(inputs.features), device)
                for name, inputs in val_inputs.items()
            }
    policy = make_policy(config, class_prior(config, target_labeled.labels))
    # weight decay regularises the head only: pulling a pretrained encoder's weights to zero would undo it
    head = model if isinstance(model, EmotionHead) else model.head
    # the encoder has its own, smaller learning rate, warm-up and frozen blocks (serdemo.learn.finetune)
    if isinstance(net, ComponentHead):  # it trains its own small layer, written into the head when kept
        optimizer, scheduler = finetune.make_optimizer(net, net, config)
    else:
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
    result = AdaptResult(
        config=config,
        model=model,
        normalizer=normalizer,
        small_pool=small_pool,
        labels_of_few_emotions=labeled_in_few_emotions,
        pool_in_one_mood=in_one_mood,
        pool_spread=spread,
    )
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
            net, policy, train, pool_inputs, train_labels, row_languages, config, optimizer, rng, stop
        )
        timings["train"] += time.perf_counter() - tick
        if epoch_stats is None:  # cancelled mid-epoch: this epoch does not count
            result.stopped = "cancelled"
            break
        scheduler.step()

        # 6) validation UA per set; keep the weights of the best mean (both languages count)
        tick = time.perf_counter()
        val_ua = {
            name: unweighted_accuracy(clips.labels, predict(net, val_inputs[name]).argmax(1))
            for name, clips in validation.items()
        }
        parts = [val_ua[name] for name in choosing]
        pool_score = None
        if config.selection == Selection.LABEL_FREE.value and len(unlabeled_rows):
            pool_score = information_maximisation(predict(net, pool_inputs.subset(unlabeled_rows)))
            parts.append(pool_score)
        timings["validation"] += time.perf_counter() - tick
        score = float(np.mean(parts)) if parts else float(epoch)  # nothing to judge by: keep the last
        if epoch < first_eligible:
            pass  # before the first pseudo-label round: neither kept nor counted towards patience
        elif score > best_score:
            if isinstance(net, ComponentHead):
                net.fold_into(model)  # the head is what is kept
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
            probs = predict(net, pool_inputs.subset(unlabeled_rows))
            if config.propagation > 0 and n_labeled and propagation_features is not None:
                if spread is None:  # the labels do not change between rounds: spread them once
                    target_rows = np.arange(n_source, len(pool))
                    spread = propagate(
                        propagation_features[target_rows].cpu().numpy(),
                        train_labels[target_rows],
                        num_classes,
                        config.seed,
                    )[n_labeled:]
                probs = (1 - config.propagation) * probs + config.propagation * spread
            probs = balance_pseudo_probs(
                config,
                probs,
                target_unlabeled.languages,
                target_unlabeled.speakers,
                class_prior(config, target_labeled.labels),
                given,
            )
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
            accepted = np.flatnonzero(weights > 0)
            guessed = targets[accepted].argmax(1)
            result.pseudo_labels = PseudoLabels(
                ids=[target_unlabeled.ids[i] for i in accepted],
                classes=guessed,
                confidence=probs[accepted, guessed].astype(np.float32),
            )
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

    # 9) restore the best weights (or keep the last epoch's, where no epoch was chosen)
    if isinstance(net, ComponentHead):
        net.fold_into(model)
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
    pool_inputs: Inputs,
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
    by_hand = can_step_by_hand(model, policy)
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
        # c) L = CE(labeled rows) + policy loss(pseudo-labeled rows), and its gradients
        if by_hand:  # the default linear head: autograd's numbers without autograd (linear_step)
            # (it sets every parameter's .grad, so there is nothing to zero)
            logits, supervised, unlabeled = weighted_ce_step(model, x, targets, weights, pseudo)
            loss = supervised + unlabeled
        else:
            with finetune.autocast(config, device):
                logits = model(x) if lengths is None else model(x, lengths)
            logits = logits.float()
            zero = logits.new_zeros(())
            any_human, any_pseudo = bool((~train.pseudo[sel]).any()), bool(train.pseudo[sel].any())
            supervised = soft_cross_entropy(logits[~pseudo], targets[~pseudo]).mean() if any_human else zero
            unlabeled = (
                policy.unlabeled_loss(logits[pseudo], targets[pseudo], weights[pseudo])
                if any_pseudo
                else zero
            )
            loss = supervised + unlabeled
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        # d) step
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
# helpers


def _choosing_sets(
    config: AdaptConfig, validation: dict[str, ClipSet], target_labeled: ClipSet, target_unlabeled: ClipSet
) -> list[str]:
    """Names of the validation sets whose UA picks the epoch: all, or (label-free) source-language ones."""
    if config.selection != Selection.LABEL_FREE.value:
        return list(validation)
    target = _target_languages(target_labeled, target_unlabeled)
    return [name for name, clips in validation.items() if not set(clips.languages.tolist()) <= target]


def _target_languages(target_labeled: ClipSet, target_unlabeled: ClipSet) -> set[str]:
    return set(target_labeled.languages.tolist()) | set(target_unlabeled.languages.tolist())


def _source_language_clips(
    validation: dict[str, ClipSet], target_labeled: ClipSet, target_unlabeled: ClipSet
) -> ClipSet:
    """The validation clips of languages other than the target's: what a judge's spread is compared to."""
    target = list(_target_languages(target_labeled, target_unlabeled))
    kept = [clips.subset(~np.isin(clips.languages, target)) for clips in validation.values()]
    return ClipSet.concat(kept) if kept else target_unlabeled.subset(np.zeros(0, np.int64))


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
