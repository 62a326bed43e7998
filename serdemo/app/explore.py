"""Explore: maps of the learned representation under two model versions, and the audio of their points."""

from __future__ import annotations

import os
import threading

import numpy as np

from serdemo.app import tuned
from serdemo.app.config import COLOR_CHOICES, ServiceError
from serdemo.app.views import ProjectionView
from serdemo.app.workspace import Workspace
from serdemo.config import Policy
from serdemo.learn import ClipSet, embed, predict_proba
from serdemo.projection import ColorBy, projection_figure, projection_title
from serdemo.projection import project as project_points
from serdemo.store import Clip


def baseline_version_id(ws: Workspace) -> str | None:
    """The first source-only model (trained on no target label), else the oldest version."""
    versions = ws.store.model_versions()
    source_only = [
        v for v in versions if v.config.get("policy") == Policy.NONE.value and not v.metrics.get("labeled")
    ]
    candidates = source_only or versions
    return candidates[0].id if candidates else None


def project(
    ws: Workspace,
    language: str | None,
    method: str = "pca",
    dims: int = 2,
    color_by: str = "emotion",
    before: str | None = None,
    after: str | None = None,
) -> ProjectionView:
    """2-D/3-D maps of the learned representation under two model versions, with silhouettes.

    Args:
        ws: the app's shared state.
        language: the target pool drawn beside held-out source clips.
        method: ``pca`` or ``umap``.
        dims: 2 or 3.
        color_by: one of ``COLOR_CHOICES``.
        before: the baseline version; default: the first source-only model.
        after: the version to compare with it; default: the active one.
    """
    active_id, _ = ws.require_model()
    known = ws.version_ids()
    for name, vid in (("baseline", before), ("compared", after)):
        if vid and vid not in known:
            raise ServiceError(f"no model version {vid!r} as the {name} version: pick one from the list")
    version_id = after or active_id
    parent_id = before or baseline_version_id(ws)
    if parent_id == version_id and not before:
        parent_id = None  # one model so far: compare it with the encoder's own features
    after_model = ws.model(version_id)
    language = (language or "").strip().lower() or ws.default_language()
    color = ColorBy(color_by) if color_by in COLOR_CHOICES else None
    if color is None:
        raise ServiceError(f"colour by one of {', '.join(COLOR_CHOICES)}")
    # 1) the clips: a sample of held-out source clips and the target pool, each under the vectors of the
    #    encoder its version reads (a fine-tuned version's own encoder; the base encoder's otherwise)
    encoders = [ws.encoder_for(vid) if vid else None for vid in (parent_id, version_id)]
    held_under: list[ClipSet] = []
    keys, gold, no_source_audio = [], [], False
    if ws.source is not None:
        held = ClipSet.concat([ws.source.validation, ws.source.test])
        held = held.subset(_spread(len(held), ws.config.explore_source_clips, ws.config.seed))
        held_under = [tuned.source_vectors(ws, held, encoder) for encoder in encoders]
        if any(part is None for part in held_under):  # a fine-tuned encoder cannot embed shipped vectors
            held_under, no_source_audio = [], True
        else:
            keys += [f"s:{i}" for i in held.ids]
            gold += [after_model.classes[label] for label in held.labels]
    target = ws.store.clips(language) if language else []
    target = [target[i] for i in _spread(len(target), ws.config.explore_target_clips, ws.config.seed)]
    if target:
        keys += [f"t:{c.id}" for c in target]
        gold += [_known_label(ws, c) for c in target]
    if not keys:
        raise ServiceError("nothing to draw: no source set and no target clips yet")

    def clips_under(index: int) -> ClipSet:
        parts = [held_under[index]] if held_under else []
        if target:
            ws.embed_pool(target, encoders[index])
            parts.append(ws.clipset(target, encoder=encoders[index]))
        return ClipSet.concat(parts)

    clips_before, clips = clips_under(0), clips_under(1)
    # 2) before = the baseline version, after = the version compared with it
    figures = []
    for name, model, vid, drawn in (
        ("before", ws.model(parent_id) if parent_id else None, parent_id, clips_before),
        ("after", after_model, version_id, clips),
    ):
        if model is None:
            points = drawn.features.mean(axis=1)
            heading = "Before: encoder features (no trained head)"
            probs = ws.model_thread.run(predict_proba, after_model, clips)
        else:
            points = ws.model_thread.run(embed, model, drawn)
            heading = f"{name.capitalize()}: model {vid}"
            probs = ws.model_thread.run(predict_proba, model, drawn)
        preds = [(model or after_model).classes[i] for i in probs.argmax(1)]
        coords = project_points(points, method, dims, seed=ws.config.seed)
        title = projection_title(heading, points, gold, list(clips.languages))
        figure = projection_figure(
            coords,
            emotions=[g or p for g, p in zip(gold, preds, strict=True)],
            languages=list(clips.languages),
            ids=keys,
            labels=gold,
            preds=preds,
            confidence=probs.max(1).tolist(),
            color_by=color,
            title=title,
        )
        figure.update_layout(
            height=480, margin={"l": 10, "r": 10, "t": 60, "b": 10}, title={"font": {"size": 13}}
        )
        figures.append(figure)
    # only clips with audio can be played: the shipped source set holds embeddings, no audio
    source_paths = ws.source.paths if ws.source is not None else {}
    choices = [
        (f"{k[2:]} ({g or 'unlabeled'}, {lang})", k)
        for k, g, lang in zip(keys, gold, clips.languages, strict=True)
        if k.startswith("t:") or k[2:] in source_paths
    ]
    silent = len(keys) - len(target) if not source_paths else 0
    target_part = f"{len(target)} target `{language}`" if language else "no target language chosen"
    message = (
        f"{len(keys)} clips ({len(keys) - len(target)} held-out source, {target_part}); "
        "colour = label where known (yours or the corpus's), else the prediction; symbol = language. "
        "Click a point (or pick its id below) to play it."
        + (f" The {silent} source points are embeddings only (no audio shipped)." if silent else "")
        + (
            " Source clips are left out: a fine-tuned version reads its own encoder's vectors, and the "
            "shipped source set has no audio to embed (start with --source-corpus NAME=PATH)."
            if no_source_audio
            else ""
        )
    )
    return ProjectionView(message=message, before=figures[0], after=figures[1], clip_choices=choices)


def _known_label(ws: Workspace, clip: Clip) -> str | None:
    current = ws.store.current_label(clip.id)
    if current is not None:
        return current.emotion
    with ws.lock:
        return ws.corpus_labels.get(clip.id)


def clip_path(ws: Workspace, key: str | int) -> str:
    """Audio file of an Explore point (``"t:<clip id>"``, ``"s:<utterance id>"``) or of a pool clip id."""
    key = str(key)
    if key.startswith("s:") and ws.source is not None and key[2:] in ws.source.paths:
        return ws.public_file(ws.source.paths[key[2:]])
    if key.startswith("s:"):
        raise ServiceError(
            f"no audio for source clip {key[2:]}: the shipped source set holds embeddings only "
            "(start with --source-corpus NAME=PATH to play source clips)"
        )
    clip_id = key[2:] if key.startswith("t:") else key
    if not clip_id.isdigit() or len(clip_id) > 18:
        raise ServiceError(f"unknown clip {key[:40]!r}")
    return ws.public_file(ws.store.clip(int(clip_id)).path)


def _spread(n: int, limit: int, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` items, seeded and sorted."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def warm_up_umap() -> None:
    """Run UMAP once on random points, so the first Explore UMAP does not wait for numba to compile."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: this thread only
    except (AttributeError, OSError):
        pass
    try:
        project_points(np.random.default_rng(0).normal(size=(64, 8)), "umap", 2, seed=0)
    except Exception:  # a failed warm-up only means the first real UMAP compiles instead  # noqa: BLE001
        pass
