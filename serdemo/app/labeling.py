"""The labeling queue: which clip a person labels next, labels saved at once, skip and undo."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from serdemo.active import COVERAGE_RULE, UncertaintyRule, rank_by_coverage, rank_for_labeling
from serdemo.app.config import RANKING_RULES, NothingToDoError, ServiceError
from serdemo.app.views import LabelState, LabelView, QueueItem, spectrogram
from serdemo.app.workspace import Workspace
from serdemo.audio import load_audio
from serdemo.labels import EMOTIONS, emotion_index
from serdemo.learn import embed
from serdemo.store import Clip


def label_view(ws: Workspace, state: LabelState) -> LabelView:
    """The clip to show: the current one while it is still unlabeled, else the most uncertain."""
    language = state.language or ws.default_language() or ""
    state = dataclasses.replace(state, language=language)
    if state.rule not in RANKING_RULES:
        raise ServiceError(f"unknown ranking rule {state.rule!r}: use one of {', '.join(RANKING_RULES)}")
    unlabeled = ws.store.clips(language, labeled=False) if language else []
    item = None
    if unlabeled:
        version_id, _ = ws.require_model()
        probs = ws.probabilities(version_id, unlabeled)
        ranking = _rank(ws, version_id, state.rule, unlabeled, probs, language)
        by_id = {c.id: i for i, c in enumerate(unlabeled)}
        if state.current in by_id:
            pick = by_id[state.current]
        else:
            skipped = set(state.skipped)
            fresh = [i for i in ranking.order if unlabeled[i].id not in skipped]
            # once everything was skipped, skipped clips come back in skip order
            pick = fresh[0] if fresh else by_id.get(state.skipped[0], ranking.order[0])
            if not fresh:
                state = dataclasses.replace(state, skipped=())
        item = _queue_item(ws, unlabeled[pick], probs[pick], float(ranking.scores[pick]), version_id)
        state = dataclasses.replace(state, current=item.clip_id)
    else:
        state = dataclasses.replace(state, current=None)
    counts = ws.store.label_counts(language) if language else dict.fromkeys(EMOTIONS, 0)
    return LabelView(state=state, item=item, counts=counts, unlabeled=len(unlabeled))


def _rank(
    ws: Workspace, version_id: str, rule: str, unlabeled: list[Clip], probs: np.ndarray, language: str
) -> Any:
    """The labeling order of ``unlabeled`` under ``rule`` (see serdemo.active)."""
    if rule != COVERAGE_RULE:
        return rank_for_labeling(probs, UncertaintyRule(rule))
    model, encoder = ws.model(version_id), ws.encoder_for(version_id)  # a fine-tuned one: its own vectors
    labeled = ws.store.clips(language, labeled=True)
    ws.embed_pool(unlabeled + labeled, encoder)
    points = embed(model, ws.clipset(unlabeled, encoder=encoder))
    done = embed(model, ws.clipset(labeled, encoder=encoder)) if labeled else np.zeros((0, points.shape[1]))
    return rank_by_coverage(probs, points, done, seed=ws.config.seed)


def skip(ws: Workspace, state: LabelState) -> LabelView:
    """Put the current clip at the back of this session's queue and show the next."""
    if state.current is None:
        return label_view(ws, state)
    skipped = tuple(c for c in state.skipped if c != state.current) + (state.current,)
    return label_view(ws, dataclasses.replace(state, current=None, skipped=skipped))


def label_current(ws: Workspace, state: LabelState, emotion: str, annotator: str) -> LabelView:
    """Save ``emotion`` for the clip on screen (immediately, in the store) and show the next."""
    if state.current is None:
        raise NothingToDoError(
            "no clip on screen to label: add clips to this language's pool, "
            "or pick a language with unlabeled clips"
        )
    label(ws, state.current, emotion, annotator)
    skipped = tuple(c for c in state.skipped if c != state.current)
    return label_view(ws, dataclasses.replace(state, current=None, skipped=skipped))


def undo(ws: Workspace, state: LabelState, annotator: str) -> LabelView:
    """Retract ``annotator``'s latest label and show that clip again."""
    undone = ws.store.undo_last_label(annotator)
    if undone is None:
        raise NothingToDoError("nothing to undo: none of your labels is in force")
    clip = ws.store.clip(undone.clip_id)
    view = label_view(ws, dataclasses.replace(state, language=clip.language, current=clip.id))
    name = "" if state.hide_names else f" ({clip.original_name or clip.path.name})"
    # only the caller's own labels are undone: "your", not the annotator id (an anonymous tab's is "web-...")
    message = f"Undid your label **{undone.emotion}** on clip {clip.id}{name}; it is back on screen."
    return dataclasses.replace(view, message=message)


def label(ws: Workspace, clip_id: int, emotion: str, annotator: str) -> dict[str, Any]:
    """Save a human label for any pool clip; returns the clip's language and labels per emotion."""
    emotion_index(emotion)  # UnknownEmotionError (a ValueError) lists the five emotions
    version = ws.store.active_version()
    label = ws.store.add_label(
        int(clip_id), emotion, annotator=annotator, model_version=version.id if version else None
    )
    clip = ws.store.clip(label.clip_id)
    return {
        "clip_id": clip.id,
        "emotion": emotion,
        "language": clip.language,
        "counts": ws.store.label_counts(clip.language),
    }


def _queue_item(ws: Workspace, clip: Clip, probs: np.ndarray, score: float, version_id: str) -> QueueItem:
    classes = ws.model(version_id).classes
    top = int(probs.argmax())
    spec, times, freqs = spectrogram(load_audio(clip.path))
    return QueueItem(
        clip_id=clip.id,
        path=ws.public_file(clip.path),
        name=clip.original_name or clip.path.name,
        duration=clip.duration,
        suggestion=classes[top],
        confidence=float(probs[top]),
        score=score,
        spectrogram=spec,
        spectrogram_times=times,
        spectrogram_freqs=freqs,
    )
