"""Adaptation rounds: Algorithm 1 on the source set and a language's pool, judged, saved and activated."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from serdemo.app import tuned
from serdemo.app.config import CV_FOLDS, BusyError, Progress, RoundCancelledError, ServiceError
from serdemo.app.target_eval import Comparison, compare, fold_of_each, groups_split, ua_with_interval
from serdemo.app.views import AdaptReport, AdaptRequest
from serdemo.app.workspace import Workspace, language_code
from serdemo.config import AdaptConfig, Mode, Policy
from serdemo.encoders.base import UtteranceEncoder
from serdemo.learn import AdaptResult, ClipSet, ProgressEvent, build_clipset, predict_proba, save_model
from serdemo.learn import adapt as run_adaptation
from serdemo.learn.pool_moods import is_judged, relative_spread, sounds_like_one_mood
from serdemo.learn.small_pool import (
    counts_of_few_emotions,
    emotions_wanted,
    few_emotions,
    is_small_pool,
    labels_wanted,
    labels_wanted_beside_other_emotions,
)
from serdemo.metrics import evaluate
from serdemo.store import Clip

FEW_EMOTIONS_MIN_LABELS = 5  # fewer labels of one or two emotions are an early labeling session, not a mood
# a pool that is mostly one recording's utterances: likely one speaker, often in one mood
ONE_RECORDING_SHARE, ONE_RECORDING_MIN_CLIPS = 0.8, 10


def adapt(ws: Workspace, request: AdaptRequest, progress: Progress | None = None) -> AdaptReport:
    """Run one round of Algorithm 1 on the source set and the ``request.language`` pool; activate it.

    Only one round runs at a time; a second caller gets a ServiceError saying a round is running.
    ``request.finetune`` trains the encoder too, where :func:`serdemo.app.tuned.offer` allows it.

    Raises:
        ServiceError: no source set, still starting, or a round already running; fine-tuning asked for
            where it is off (the message says why).
        RoundCancelledError: :func:`cancel` stopped the round while it trained; nothing was saved. A
            cancel while the saved version is judged (cross-validation) stops the judging only.
        ConfigError: settings out of range (a ValueError naming the field).
    """
    ws.require_model()
    if ws.source is None:
        raise ServiceError("adaptation needs a labeled source set: restart with --source-corpus NAME=PATH")
    language = language_code(request.language)
    device = AdaptConfig.device
    if request.finetune:
        offer = tuned.offer(ws)
        if not offer.offered:
            raise ServiceError(f"fine-tuning is not available: {offer.reason}")
        device = offer.device
    # normalisation, selection and the rest: AdaptConfig's defaults, the same as the experiment CLI's
    # (docs/results.md, "Speakers who show few emotions"); recordings without a speaker id share a
    # "<language>/unknown" group, which the default normalisation does not need
    config = AdaptConfig(
        policy=request.policy,
        tau=float(request.tau),
        epochs=int(request.epochs),
        window=int(request.window),
        rebalance=bool(request.rebalance),
        pseudo_balance=request.pseudo_balance,
        encoder=ws.config.encoder,
        seed=ws.config.seed,
        frontend=str(ws.frontend),
        # the copies are rows of cached vectors; fine-tuning makes its own variety from random crops
        augment_copies=0 if request.finetune else ws.augment_copies,
        mode=Mode.FINETUNE.value if request.finetune else Mode.FROZEN.value,
        device=device,
    )
    if not ws.round_lock.acquire(blocking=False):
        judging = ws.judging
        hint = f", or Cancel round to stop judging it ({judging} stays active)" if judging else ""
        raise BusyError(f"an adaptation round is running ({ws.round_status}); wait for it to finish{hint}")
    try:
        ws.cancel_round.clear()  # a cancel sent while no round ran must not stop this one
        ws.round_status = f"{language}, {config.policy}, {config.mode}, starting"
        return train_and_register(ws, config, language, progress)
    finally:
        ws.round_status, ws.judging = "", None
        ws.round_lock.release()


def cancel(ws: Workspace) -> str:
    """Ask the running round to stop after its current mini-batch; the active version stays as it is."""
    if not ws.round_lock.locked():
        return "No adaptation round is running."
    ws.cancel_round.set()
    if ws.judging:
        return f"Cancelling the judging of {ws.judging}: it stays active, without a target UA."
    return "Cancelling the round: it stops after the current mini-batch and saves nothing."


def train_and_register(
    ws: Workspace, config: AdaptConfig, language: str | None, progress: Progress | None
) -> AdaptReport:
    """Train one round with ``config``, save it, activate it, then judge it (steps below).

    In finetune mode the round trains a fresh copy of the app's encoder on the clips' audio, and is judged
    on the vectors of that fine-tuned encoder, as the app serves it afterwards (:mod:`serdemo.app.tuned`).
    """
    source = ws.source
    assert source is not None  # callers check
    finetuning = config.mode == Mode.FINETUNE.value
    parent = ws.store.active_version()
    # 1) the target clips: human labels are trained on, the rest is the unlabeled pool U_t
    labeled_clips, labels = [], []
    unlabeled_clips = []
    # a source-only model (no language) is still scored on the pool, as the baseline of later rounds
    pool_language = language or ws.default_language()
    if pool_language:
        for clip in ws.store.clips(pool_language):
            current = ws.store.current_label(clip.id)
            if current is not None and current.emotion in config.classes:
                labeled_clips.append(clip)
                labels.append(config.classes.index(current.emotion))
            elif current is None:
                unlabeled_clips.append(clip)
        ws.embed_pool(labeled_clips + unlabeled_clips)
    # 2) how target accuracy is judged: corpus labels of pool clips nobody labeled (never trained on)
    #    where the pool came from a corpus, else cross-validation over the human labels (step 4)
    gold_clips, gold_labels = _corpus_gold(ws, unlabeled_clips, config)
    if not language:  # source only: the pool is scored, never trained on
        labeled_clips, labels, unlabeled_clips = [], [], []
    if language and not labeled_clips and not unlabeled_clips:
        raise ServiceError(
            f"the `{language}` pool has no clips yet: add some first (Predict tab: Add to target pool, "
            "or Label tab: Bulk add), or pick the language of a pool you made"
        )
    notes = [
        _few_emotions_note(language, labels, config),
        _one_recording_note(language, labeled_clips + unlabeled_clips),
    ]
    policy_note = ""
    if config.policy != Policy.NONE.value and not unlabeled_clips:
        if not language:
            raise ServiceError(
                "a round without a target language trains on no target clip: use policy 'none'"
            )
        # a person who labeled every clip they recorded expects the round to run: Algorithm 1 with an
        # empty unlabeled pool is training on the labels alone, so say that instead of refusing
        policy_note = (
            f"Every clip of the `{language}` pool is labeled, so nothing was left to pseudo-label: this "
            f"round trained on your labels alone (policy 'none' instead of '{config.policy}'). "
            "Add unlabeled clips for pseudo-labels."
        )
        config = replace(config, policy=Policy.NONE.value)
    if finetuning:  # waveforms cut to their speech; the source's augmented copies are vectors, left out
        if progress is not None:
            progress(0.0, "reading the clips' audio for fine-tuning")
        train_source = tuned.source_audio(ws, source.train, "source training clips")
        validation = tuned.source_audio(ws, source.validation, "source validation clips")
        target_labeled = tuned.pool_audio(ws, labeled_clips, labels)
        target_unlabeled = tuned.pool_audio(ws, unlabeled_clips)
    else:
        empty = _empty_clipset(source.train)
        train_source, validation = source.train, source.validation
        target_labeled = ws.clipset(labeled_clips, labels) if labeled_clips else empty
        target_unlabeled = ws.clipset(unlabeled_clips) if unlabeled_clips else empty
    judge = None if finetuning else _judge(ws, parent)
    folds = min(CV_FOLDS, len(labeled_clips)) if not gold_clips and len(labeled_clips) >= CV_FOLDS else 0
    stages = 1 + folds  # the round itself, then one training per cross-validation fold

    # 3) Algorithm 1, reporting every epoch to the caller and to the status line of other users
    def on_epoch(stage: int, what: str) -> Callable[[ProgressEvent], None]:
        def report(event: ProgressEvent) -> None:
            text = ("fine-tuning the encoder, " if finetuning else "") + what + _epoch_text(event)
            ws.round_status = text
            if progress is not None:
                progress((stage + event.epoch / event.total_epochs) / stages, text)

        return report

    def train(rows: np.ndarray, stage: int, what: str = "") -> tuple[AdaptResult, UtteranceEncoder | None]:
        """A model trained on the labeled clips ``rows``, as served: (model on vectors, its encoder)."""
        labeled = target_labeled.subset(rows)
        if not finetuning:  # training copies of these labeled clips only
            paths = [labeled_clips[i].path for i in rows]
            labeled = ws.with_copies(labeled, paths, config.augment_copies)
        result = run_adaptation(
            train_source,
            labeled,
            target_unlabeled,
            {"source": validation},
            config,
            progress=on_epoch(stage, what),
            encoder=tuned.fresh_copy(ws) if finetuning else None,
            should_stop=ws.cancel_round,
            judge=judge,
        )
        if result.stopped == "cancelled":
            raise _cancelled(parent)
        trained.append(result)
        return tuned.split(result, ws.frontend) if finetuning else (result, None)

    def scored(model: AdaptResult, encoder: UtteranceEncoder | None, clips: list[Clip]) -> np.ndarray:
        ws.embed_pool(clips, encoder)
        return predict_proba(model, ws.clipset(clips, encoder=encoder))

    trained: list[AdaptResult] = []  # what train() returned as trained (the round's model comes first)
    t0 = time.perf_counter()
    served, encoder = train(np.arange(len(labeled_clips)), 0)
    seconds = time.perf_counter() - t0
    result = trained[0]
    # the run learned nothing from the pool (serdemo.learn.small_pool): say why, and what lets the next learn
    if result.labels_of_few_emotions:
        notes[0] = _few_emotions_round_note(language, labels, len(unlabeled_clips), config)
        policy_note = ""  # "trained on your labels alone" would be wrong: they were set aside
    elif result.small_pool:
        notes.append(_small_pool_note(language, len(unlabeled_clips), len(labeled_clips), config))
        policy_note = ""
    elif result.pool_in_one_mood:
        notes.append(_one_mood_pool_note(language, len(unlabeled_clips), result.pool_spread, config))
        policy_note = ""
    pool_note = "\n\n".join(note for note in notes if note)
    pseudo = result.rounds[-1]["accepted_per_class"] if result.rounds else dict.fromkeys(config.classes, 0)
    # 4) source score on held-out speakers, on the vectors the version reads when served (a fine-tuned
    #    encoder's own)
    source_test = tuned.source_vectors(ws, source.test, encoder)
    assert source_test is not None  # fine-tuning is offered only with the source audio
    source_metrics = evaluate(source_test.labels, predict_proba(served, source_test), config.classes)
    if ws.cancel_round.is_set():  # cancelled after the last mini-batch: still nothing is saved
        raise _cancelled(parent)
    # 5) save, record and activate the new version now: judging it by cross-validation (step 6) costs one
    #    training per fold, five times the round's own, and the person can use the new model meanwhile
    folder = (
        ws.config.data_dir / "models" / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"
    )
    save_model(result, folder)
    metrics = {
        "language": language or (pool_language and f"({pool_language}, not trained on)"),
        "source_ua": source_metrics["ua"],
        "target_ua": None,
        "target_interval": None,
        "target_note": "being judged",
        "previous": None,
        "trained_clip_ids": [c.id for c in labeled_clips],
        "labeled": len(labeled_clips),
        "unlabeled": len(unlabeled_clips),
        "pseudo_per_class": pseudo,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "source": {"test": source_metrics},
        "target": {"heldout": None},
    }
    # the version row and its pseudo-labels in one transaction: a crash leaves both or neither
    version = ws.store.add_model_version(
        result.config.to_dict(),  # what the round trained with (a small pool's: no pseudo-labels)
        metrics,
        weights_path=folder,
        parent=parent.id if parent else None,
        machine_labels=_pseudo_labels(result, unlabeled_clips),
    )
    with ws.lock:
        ws.models[version.id] = served
        if encoder is not None:
            ws.tuned_encoders[version.id] = encoder
    ws.judging = version.id
    # 6) the target clips, judged against the previous version on the same clips
    if gold_clips:
        judged_clips, judged_labels = gold_clips, gold_labels
        target_probs = scored(served, encoder, gold_clips)
        note = (
            f"Target UA on {len(gold_clips)} pool clips nobody labeled, against their corpus labels, "
            "which training never sees (they are in the unlabeled pool, as in transductive evaluation)."
        )
    elif folds and result.labels_of_few_emotions:
        # UA over one or two emotions says little of the others, and a fold of fewer labels would be
        # trained on them where the version set them aside: no judge is better than a wrong one
        judged_clips, judged_labels, target_probs = [], [], None
        note = (
            f"No target UA: your labels are all {_labeled_emotions(labels, config.classes)}, so "
            "cross-validation over them could only say how often those are answered. Label clips of other "
            "emotions."
        )
    elif folds:
        # every labeled clip is scored by a model trained without it: K rounds of the same settings
        started = time.perf_counter()
        sessions = [clip.session for clip in labeled_clips]  # a long recording's utterances share one
        assignment = fold_of_each(np.asarray(labels), folds, ws.config.seed, groups=sessions)
        split_recordings = groups_split(assignment, sessions)
        target_probs = np.zeros((len(labeled_clips), len(config.classes)), np.float32)
        judged_clips, judged_labels = labeled_clips, labels
        try:
            for fold in range(folds):
                inside = np.flatnonzero(assignment != fold)
                held = np.flatnonzero(assignment == fold)
                what = f"{version.id} is active; judging it, cross-validation fold {fold + 1}/{folds}: "
                fold_model, fold_encoder = train(inside, 1 + fold, what)
                target_probs[held] = scored(fold_model, fold_encoder, [labeled_clips[i] for i in held])
                if fold_encoder is not None:  # no version serves a fold's encoder: free its vectors
                    ws.forget(fold_encoder)
            note = (
                f"Target UA by {folds}-fold cross-validation over your {len(labeled_clips)} labeled clips: "
                "each is scored by a model trained with the same settings without it; "
                f"the new version itself trained on all of them and was active after {seconds:.0f} s "
                f"(the {folds} extra trainings took {time.perf_counter() - started:.0f} s more)."
            )
            if split_recordings:
                note += (
                    f" Utterances of {split_recordings} recording{'s' if split_recordings > 1 else ''} "
                    "fall on both sides of the folds (too "
                    f"few recordings to keep each on one side of {folds} folds): a held-out utterance's "
                    "neighbours were trained on, so this estimate is optimistic; label more recordings."
                )
        except RoundCancelledError:  # the version is saved and active: only its judgement stops
            judged_clips, judged_labels, target_probs = [], [], None
            note = (
                f"Judging cancelled: {version.id} stays active without a target UA; "
                "the next round judges its own model again."
            )
    else:
        judged_clips, judged_labels, target_probs = [], [], None
        note = (
            f"No target UA: label at least {CV_FOLDS} clips (they are then cross-validated), "
            "or seed the pool with --target-corpus."
        )
    target_metrics, comparison, previous_note = None, None, ""
    if judged_clips:
        target_metrics = evaluate(judged_labels, target_probs, config.classes)
        target_metrics["estimate"] = ua_with_interval(
            np.asarray(judged_labels), target_probs.argmax(1), seed=ws.config.seed
        ).to_dict()
        comparison, previous_note = _compare_with_parent(
            ws, parent, judged_clips, judged_labels, target_probs.argmax(1)
        )
    metrics.update(
        target_ua=target_metrics["ua"] if target_metrics else None,
        target_interval=(
            [target_metrics["estimate"]["low"], target_metrics["estimate"]["high"]]
            if target_metrics
            else None
        ),
        target_note=note,
        previous={"version": parent.id, **comparison.to_dict()} if comparison else None,
        target={"heldout": target_metrics},
    )
    ws.store.update_model_metrics(version.id, metrics)
    ws.judging = None  # also reset by adapt() on an error; the start-up's first model comes here directly
    ws.log(f"model {version.id}: source UA {source_metrics['ua']:.3f}, target UA {metrics['target_ua']}")
    return AdaptReport(
        version_id=version.id,
        parent=parent.id if parent else None,
        language=language or pool_language or "-",
        policy=result.config.policy,
        labeled=len(labeled_clips),
        unlabeled=len(unlabeled_clips),
        source_metrics=source_metrics,
        target_metrics=target_metrics,
        target_note=note,
        comparison=comparison,
        previous_note=previous_note,
        pseudo_per_class=pseudo,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        seconds=seconds,
        mode=config.mode,
        policy_note=policy_note,
        pool_note=pool_note,
    )


def _labeled_emotions(labels: list[int], classes: tuple[str, ...]) -> str:
    """The emotions of ``labels``, in class order: "anger", "anger or neutral"."""
    return _emotions_with_labels(classes, np.bincount(labels, minlength=len(classes)).tolist())


def _emotions_with_labels(classes: tuple[str, ...], counts: list[int]) -> str:
    """The emotions with a label, from the labels per class, in class order: "anger or neutral"."""
    return " or ".join(emotion for emotion, count in zip(classes, counts, strict=True) if count)


def _more_emotions(config: AdaptConfig, counts: list[int]) -> str:
    """What a pool labeled in few emotions lacks: "a label of another emotion", "labels of 2 other ..."."""
    wanted = emotions_wanted(config, counts)
    return "a label of another emotion" if wanted == 1 else f"labels of {wanted} other emotions"


def _few_emotions_note(language: str | None, labels: list[int], config: AdaptConfig) -> str:
    """A warning when the pool's human labels all carry one or two emotions (a person recording in few moods).

    A round that trains on such labels makes those moods its language's baseline, and the model then hears
    other clips of the language wrong (bench/one_mood_pool.py --labels; docs/results.md). From
    ``AdaptConfig.few_emotion_labels`` labels the round learns nothing from the pool instead and
    :func:`_few_emotions_round_note` replaces this one; this caution is for fewer labels, or the switch off.
    """
    if not language or len(labels) < FEW_EMOTIONS_MIN_LABELS or len(set(labels)) > few_emotions(config):
        return ""
    return (
        f"**All {len(labels)} of your labels in `{language}` are {_labeled_emotions(labels, config.classes)}"
        ".** If the pool holds only those moods, a round on it makes them the language's baseline, and the "
        f'model may then hear other `{language}` clips wrong (docs/results.md, "A round on a pool recorded '
        'in one mood"). Add and label clips of other emotions; roll back in the versions table if answers '
        "got worse."
    )


def _few_emotions_round_note(
    language: str | None, labels: list[int], unlabeled: int, config: AdaptConfig
) -> str:
    """Why a round whose labels carry one or two emotions learned nothing from the pool, and what lets it."""
    emotions = _labeled_emotions(labels, config.classes)
    counts = np.bincount(labels, minlength=len(config.classes)).tolist()
    more = labels_wanted_beside_other_emotions(config, len(labels) + unlabeled, counts)
    also = f" and {config.small_pool_clips} clips or {more} more labels" if more is not None else ""
    return (
        f"**All {len(labels)} of your labels in `{language}` are {emotions}.** Labels of one or two "
        f'emotions teach a model "`{language}` = {emotions}", and a pool they come from is often in those '
        "moods, which a round would make the language's baseline: so this round set them aside as pool "
        f"clips and learned nothing from the `{language}` pool (no pseudo-labels, the language's statistics "
        "kept near the other languages'). On EMO-DB pools of 40 clips of one emotion with 10 labeled, a "
        "round that trained on them took the language's other clips from 67.5 UA to 53.8, one that learned "
        "nothing to 71.4; of two emotions, 58.0 against 71.2 "
        f'(docs/results.md, "Labels of one emotion"). A round learns from the pool once it has '
        f"{_more_emotions(config, counts)}{also}: label clips of other emotions, or add recordings of other "
        "moods."
    )


def _one_recording_note(language: str | None, clips: list[Clip]) -> str:
    """A caution when most of the pool is the utterances of one long recording (:mod:`serdemo.app.ingest`).

    Its predictions cannot tell a pool in one mood from a mixed one (docs/results.md), but where the clips
    came from can: one recording is one or two speakers, often in one mood, the case above.
    """
    sessions = Counter(clip.session for clip in clips if clip.session)
    if not language or len(clips) < ONE_RECORDING_MIN_CLIPS or not sessions:
        return ""
    session, count = sessions.most_common(1)[0]
    if count < ONE_RECORDING_SHARE * len(clips):
        return ""
    recording = session.rsplit(" ", 1)[0]  # "call.wav 1a2b3c4d5e6f": the file name, then its hash
    return (
        f"**{count} of the {len(clips)} `{language}` clips are utterances of one recording, {recording}.** "
        "One recording is one or two voices, often in one mood: a round on it may make that mood the "
        f"language's baseline and hear other `{language}` speakers wrong (docs/results.md, \"A round on a "
        'pool recorded in one mood"). Add recordings of other speakers and moods, or label some of its '
        "clips; roll back in the versions table if answers got worse."
    )


def _small_pool_note(language: str | None, unlabeled: int, labeled: int, config: AdaptConfig) -> str:
    """Why a round on a small pool learned nothing from it, and what lets the next one learn.

    :mod:`serdemo.learn.small_pool` decides it, on the figures of bench/one_mood_pool.py --mixed
    many-speakers --pool N (docs/results.md, "A round on a small pool").
    """
    clips = unlabeled + labeled
    more = labels_wanted(config, labeled)
    plural = "s" if labeled > 1 else ""
    aside = f", and set your {labeled} label{plural} aside as pool clips" if labeled else ""
    return (
        f"**The `{language}` pool is small: {clips} clips, {labeled} labeled.** Too few to learn a language "
        "from, so this round trained without pseudo-labels, kept the language's statistics near the other "
        f"languages'{aside} (on unlabeled pools of 20 and 30 clips a round that learned from them took the "
        "language's other clips from 67.5 UA to 62.7 and 67.6, one that did not to 71.4 and 72.3; a few "
        'labels of one emotion would teach "this language = that emotion"; docs/results.md, "A round on a '
        f'small pool"). A round learns from the pool once it holds {config.small_pool_clips} clips or '
        f"{more} more of them are labeled: give it clips of several speakers and emotions first, since a "
        "pool in one mood makes that mood the language's baseline."
    )


def _one_mood_pool_note(
    language: str | None, unlabeled: int, spread: float | None, config: AdaptConfig
) -> str:
    """Why a round on an unlabeled pool that sounds like one mood learned nothing from it.

    :mod:`serdemo.learn.pool_moods` decides it, on the figures of bench/pool_moods.py and
    bench/one_mood_pool.py (docs/results.md, "An unlabeled pool in one mood").
    """
    return (
        f"**The `{language}` pool sounds like one mood.** Over its {unlabeled} unlabeled clips the current "
        f"model's answers vary {spread:.2f} times as much as over the source language's clips of every "
        f"emotion (under {config.one_mood_spread} a pool of one mood is likely; pools of every emotion "
        "measured 0.24 or more). A round that learns from such a pool makes its mood the language's "
        "baseline (EMO-DB pools of one emotion: held-out clips from 67.5 UA to 59.0), so this round learned "
        "nothing from it and kept the language's statistics near the other languages' (docs/results.md, "
        f'"An unlabeled pool in one mood"). Label {config.few_emotion_labels} clips or more, of at least '
        f"{few_emotions(config) + 1} emotions, or add recordings of other moods, and the next round learns "
        "from the pool."
    )


def pool_outlook(ws: Workspace, language: str | None) -> str:
    """What a round with the default settings would make of the ``language`` pool, before it is run.

    A person who presses Start on a handful of clips should not wait for the report to learn that a round
    does not learn from so few (:mod:`serdemo.learn.small_pool`).
    """
    language = (language or "").strip().lower()
    if not language:
        return ""
    clips = len(ws.store.clips(language))
    if not clips:
        where = "Predict tab: Add to target pool, or Label tab: Bulk add"
        return f"No `{language}` pool yet: add clips first ({where})."
    counts = ws.store.label_counts(language)
    labeled = sum(counts.values())
    config = AdaptConfig()
    summary = f"`{language}` pool: {clips} clips, {labeled} labeled."
    per_emotion = [counts.get(emotion, 0) for emotion in config.classes]
    if counts_of_few_emotions(config, per_emotion):
        emotions = _emotions_with_labels(config.classes, per_emotion)
        more = labels_wanted_beside_other_emotions(config, clips, per_emotion)
        also = ""
        if more is not None:  # labels of the missing emotions would leave the pool too small on their own
            also = f", and it holds {config.small_pool_clips} clips or {more} more are labeled"
        wanted = emotions_wanted(config, per_emotion)
        which = "a clip of another emotion is" if wanted == 1 else f"clips of {wanted} other emotions are"
        return (
            f"{summary} **All labels are {emotions}:** a round does not learn from this pool until "
            f'{which} labeled{also} (docs/results.md, "Labels of one emotion").'
        )
    if not is_small_pool(config, clips, labeled):
        spread = _outlook_spread(ws, language) if is_judged(config, clips, labeled) else None
        if not sounds_like_one_mood(config, spread):
            return summary
        return (
            f"{summary} **Sounds like one mood:** the current model's answers over its unlabeled clips vary "
            f"{spread:.2f} times as much as over the source language's clips of every emotion (under "
            f"{config.one_mood_spread}), so a round does not learn from this pool until "
            f"{config.few_emotion_labels} or more clips are labeled, of at least {few_emotions(config) + 1} "
            'emotions, or clips of other moods are added (docs/results.md, "An unlabeled pool in one mood").'
        )
    more = labels_wanted(config, labeled)
    return (
        f"{summary} **Too small to learn from yet:** a round trains without it until it holds "
        f"{config.small_pool_clips} clips or {more} more are labeled "
        '(docs/results.md, "A round on a small pool").'
    )


def _judge(ws: Workspace, version: Any) -> AdaptResult | None:
    """The model that judges whether an unlabeled pool sounds like one mood: the active version, if frozen.

    A fine-tuned version reads its own encoder's vectors, not the pool's (serdemo.learn.pool_moods).
    """
    if version is None or tuned.is_finetuned(version.config):
        return None
    return ws.model(version.id)


def _outlook_spread(ws: Workspace, language: str) -> float | None:
    """The spread a round's judge will measure over the unlabeled ``language`` clips; None until embedded."""
    judge = _judge(ws, ws.store.active_version())
    unlabeled = [c for c in ws.store.clips(language) if ws.store.current_label(c.id) is None]
    with ws.lock:
        embedded = all(c.id in ws.features for c in unlabeled)
    if judge is None or ws.source is None or not unlabeled or not embedded:
        return None  # the round embeds and judges them itself
    pool = ws.clipset(unlabeled)
    return ws.model_thread.run(relative_spread, judge, pool, ws.source.validation)


def _cancelled(parent: Any) -> RoundCancelledError:
    active = f"model {parent.id} stays active" if parent is not None else "no model was added"
    return RoundCancelledError(f"Round cancelled: nothing was saved, {active}.")


def _pseudo_labels(result: AdaptResult, clips: list[Clip]) -> list[tuple[int, str, float]]:
    """The pseudo-labels the round's last pseudo-labeling step trained on, as machine labels of its version.

    Exactly those (after balancing and the policy's selection, with the probability they were selected
    at), not a re-selection by the finished model. Kept apart from human labels in the store (they
    never count as a clip's label), so exports show which labels a person gave and which the model
    guessed, with its confidence.
    """
    used = result.pseudo_labels
    if used is None:
        return []
    by_id = {str(clip.id): clip for clip in clips}
    return [
        (by_id[clip_id].id, result.classes[int(guess)], float(confidence))
        for clip_id, guess, confidence in zip(used.ids, used.classes, used.confidence, strict=True)
    ]


def _corpus_gold(ws: Workspace, unlabeled: list[Clip], config: AdaptConfig) -> tuple[list[Clip], list[int]]:
    """Pool clips nobody labeled whose corpus label is known (never trained on), with that label."""
    with ws.lock:
        known = [
            (c, ws.corpus_labels[c.id]) for c in unlabeled if ws.corpus_labels.get(c.id) in config.classes
        ]
    return [c for c, _ in known], [config.classes.index(e) for _, e in known]


def _compare_with_parent(
    ws: Workspace, parent: Any, clips: list[Clip], labels: list[int], preds: np.ndarray
) -> tuple[Comparison | None, str]:
    """The previous version on the same clips, leaving out any it was trained on."""
    if parent is None:
        return None, "No previous version to compare with."
    trained = parent.metrics.get("trained_clip_ids")
    if trained is None and parent.metrics.get("labeled"):
        return None, f"Previous version {parent.id} does not record which clips it trained on."
    seen = set(trained or [])
    keep = [i for i, c in enumerate(clips) if c.id not in seen]
    if not keep:
        return None, f"Previous version {parent.id} trained on all of these clips: no fair comparison."
    parent_probs = ws.probabilities(parent.id, [clips[i] for i in keep])  # on the parent's own vectors
    comparison = compare(np.asarray(labels)[keep], preds[keep], parent_probs.argmax(1), seed=ws.config.seed)
    left_out = len(clips) - len(keep)
    note = f" ({left_out} clips it trained on left out)" if left_out else ""
    return comparison, f"Previous version {parent.id} on the same {len(keep)} clips{note}."


def _empty_clipset(like: ClipSet) -> ClipSet:
    return build_clipset(ids=[], languages=[], feature_shape=like.features.shape[1:])


def versions(ws: Workspace) -> pd.DataFrame:
    """Model versions, newest first, with their held-out scores."""
    rows = []
    for v in reversed(ws.store.model_versions()):
        m = v.metrics
        rows.append(
            {
                "version": v.id,
                "active": "✓" if v.active else "",
                "created (UTC)": v.created_at[:19].replace("T", " "),
                "parent": v.parent or "",
                "policy": v.config.get("policy", ""),
                "encoder": "fine-tuned" if tuned.is_finetuned(v.config) else "frozen",
                "language": m.get("language") or "",
                "labeled": m.get("labeled", ""),
                "source UA": _pct(m.get("source_ua")),
                "target UA": _pct(m.get("target_ua"))
                + (" [{:.0%}-{:.0%}]".format(*m["target_interval"]) if m.get("target_interval") else ""),
            }
        )
    columns = [
        "version",
        "active",
        "created (UTC)",
        "parent",
        "policy",
        "encoder",
        "language",
        "labeled",
        "source UA",
        "target UA",
    ]
    return pd.DataFrame(rows, columns=columns)


def activate(ws: Workspace, version_id: str) -> str:
    """Serve ``version_id`` from now on (roll back or forward); returns a message."""
    if not version_id:
        raise ServiceError("choose a version to activate")
    if ws.round_lock.locked():
        raise BusyError("an adaptation round is running: activate a version after it finished")
    if version_id not in ws.version_ids():
        raise ServiceError(f"no model version {version_id!r}: choose one listed in the versions table")
    ws.model(version_id)  # fails before switching if the weights are gone
    version = ws.store.activate(version_id)
    return f"Model {version.id} is active now."


def _epoch_text(event: ProgressEvent) -> str:
    text = f"epoch {event.epoch}/{event.total_epochs}"
    if event.pseudo_counts is not None:
        accepted = sum(event.pseudo_counts.values())
        per_class = ", ".join(f"{k} {v}" for k, v in event.pseudo_counts.items())
        text += f" · {accepted} pseudo-labels ({per_class})"
    if event.val_ua:
        text += " · validation UA " + ", ".join(f"{k} {v:.0%}" for k, v in event.val_ua.items())
    return text


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else ""
