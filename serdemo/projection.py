"""2-D / 3-D projections of utterance embeddings, their plotly figures and cluster silhouettes; no I/O."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from enum import Enum
from typing import TypeVar

import numpy as np
import plotly.graph_objects as go

from serdemo.labels import EMOTION_COLORS, EMOTIONS
from serdemo.metrics import SILHOUETTE_METRIC, silhouette

E = TypeVar("E", bound=Enum)

UMAP_MIN_POINTS = 4  # below this UMAP has no neighbourhood graph to speak of; project() uses PCA instead

UNLABELED = "unlabeled"
UNLABELED_COLOR = "#d4d4d4"
# Symbols that both Scatter and Scatter3d draw; languages get them in sorted order.
LANGUAGE_SYMBOLS: tuple[str, ...] = (
    "circle",
    "diamond",
    "square",
    "x",
    "cross",
    "circle-open",
    "diamond-open",
    "square-open",
)


class ProjectionMethod(str, Enum):
    """How embeddings are flattened to 2 or 3 dimensions."""

    PCA = "pca"  # linear, deterministic; distances are comparable
    UMAP = "umap"  # non-linear, keeps neighbourhoods; axes and distances mean little


class ColorBy(str, Enum):
    """What a point's colour shows."""

    EMOTION = "emotion"  # the ``emotions`` argument (e.g. label where known, else prediction)
    GOLD = "gold"  # the human / corpus label; unlabeled points grey
    PSEUDO = "pseudo"  # the model's prediction (pseudo-label)
    CONFIDENCE = "confidence"  # the prediction's probability, on a 0-1 colour scale


def project(
    embeddings: np.ndarray,
    method: ProjectionMethod | str = ProjectionMethod.PCA,
    dims: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Project (N, P) embeddings to (N, dims) coordinates.

    Each call fits its own projection, seeded, so a "before adaptation" and an "after adaptation"
    figure are each reproducible; PCA axes are signed deterministically. UMAP uses the cosine metric,
    ``n_neighbors = min(15, N - 1)``, and falls back to PCA below :data:`UMAP_MIN_POINTS` points.
    Where N or P is smaller than ``dims``, the missing PCA axes are zeros.

    Raises:
        ValueError: bad shape, non-finite values, unknown method or dims not 2 or 3.

    Example:
        >>> project(np.eye(4, 8)).shape
        (4, 2)

    """
    method = _choice(ProjectionMethod, method, "projection method")
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise ValueError(f"embeddings must have shape (N, P) with N >= 1, got {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or infinity: check the encoder output")
    if method is ProjectionMethod.UMAP and len(embeddings) >= UMAP_MIN_POINTS:
        return _umap(embeddings, dims, seed)
    return _pca(embeddings, dims, seed)


def _pca(embeddings: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA  # here: the app's start-up needs no projection

    n, p = embeddings.shape
    coords = np.zeros((n, dims))
    k = min(dims, n, p)
    if k > 0 and n > 1:
        coords[:, :k] = PCA(n_components=k, svd_solver="full", random_state=seed).fit_transform(embeddings)
    return coords


def _umap(embeddings: np.ndarray, dims: int, seed: int) -> np.ndarray:
    import umap  # imported here: it takes seconds to load (numba), and PCA users should not pay that

    n = len(embeddings)
    reducer = umap.UMAP(
        n_components=dims,
        n_neighbors=max(2, min(15, n - 1)),
        metric="cosine",
        random_state=seed,
        # Spectral initialisation needs more points than dims + 1; random init works for any N.
        init="spectral" if n >= 10 else "random",
    )
    with warnings.catch_warnings():
        # A seed makes UMAP single-threaded and it says so each call; that is the trade we want.
        warnings.filterwarnings("ignore", message=".*random_state.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
        return np.asarray(reducer.fit_transform(embeddings), dtype=np.float64)


def projection_title(
    title: str, embeddings: np.ndarray, emotions: Sequence[str | None], languages: Sequence[str]
) -> str:
    """``title`` followed by the silhouette by emotion and by language, e.g. for before/after figures."""
    parts = []
    for name, groups in (("emotion", emotions), ("language", languages)):
        score = silhouette(embeddings, list(groups))
        parts.append(f"{name} {score:.2f}" if score is not None else f"{name} n/a")
    return f"{title} (silhouette, {SILHOUETTE_METRIC}: {', '.join(parts)})"


def projection_figure(
    coords: np.ndarray,
    emotions: Sequence[str | None],
    languages: Sequence[str],
    ids: Sequence[int | str],
    labels: Sequence[str | None] | None = None,
    preds: Sequence[str | None] | None = None,
    confidence: Sequence[float | None] | None = None,
    color_by: ColorBy | str = ColorBy.EMOTION,
    title: str = "",
) -> go.Figure:
    """Draw projected clips as a scatter (2-D) or scatter3d (3-D).

    Colour shows ``color_by``; marker symbol shows language; hovering shows clip id, label and
    prediction. Each point's ``customdata[0]`` is its clip id so the UI can play a selected point.
    Categorical colourings get one trace per (category, language), grouped in the legend by category.

    Args:
        coords: (N, 2) or (N, 3) output of :func:`project`.
        emotions: the emotion to colour by with ``color_by="emotion"``; None shows as unlabeled.
        languages: ISO 639-1 code of each clip.
        ids: clip ids, e.g. :attr:`serdemo.store.Clip.id`.
        labels: human / gold label of each clip, None where unlabeled.
        preds: model prediction (pseudo-label) of each clip.
        confidence: probability of each prediction in [0, 1].
        color_by: one of :class:`ColorBy`.
        title: figure title, e.g. from :func:`projection_title`.

    Raises:
        ValueError: mismatched lengths, bad coords, or ``color_by`` needing an argument not given.

    """
    color_by = _choice(ColorBy, color_by, "color_by")
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise ValueError(f"coords must have shape (N, 2) or (N, 3), got {coords.shape}")
    n = len(coords)
    labels = [None] * n if labels is None else list(labels)
    preds = [None] * n if preds is None else list(preds)
    given_confidence = confidence is not None
    confidence = [None] * n if confidence is None else list(confidence)
    columns = {
        "emotions": emotions,
        "languages": languages,
        "ids": ids,
        "labels": labels,
        "preds": preds,
        "confidence": confidence,
    }
    for name, values in columns.items():
        if len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n} points")
    if color_by is ColorBy.GOLD and all(x is None for x in labels):
        raise ValueError("color_by='gold' needs labels")
    if color_by is ColorBy.PSEUDO and all(x is None for x in preds):
        raise ValueError("color_by='pseudo' needs preds")
    if color_by is ColorBy.CONFIDENCE and not given_confidence:
        raise ValueError("color_by='confidence' needs confidence")

    symbols = {
        lang: LANGUAGE_SYMBOLS[i % len(LANGUAGE_SYMBOLS)] for i, lang in enumerate(sorted(set(languages)))
    }
    customdata = [
        [ids[i], labels[i] or UNLABELED, preds[i] or "-", _fmt_prob(confidence[i]), languages[i]]
        for i in range(n)
    ]
    hovertemplate = (
        "clip %{customdata[0]}<br>label: %{customdata[1]}<br>"
        "prediction: %{customdata[2]} (p=%{customdata[3]})<br>language: %{customdata[4]}<extra></extra>"
    )

    fig = go.Figure()
    if color_by is ColorBy.CONFIDENCE:
        groups = _group(n, [("no prediction" if c is None else "confidence") for c in confidence], languages)
    else:
        category = {ColorBy.EMOTION: emotions, ColorBy.GOLD: labels, ColorBy.PSEUDO: preds}[color_by]
        groups = _group(n, [c or UNLABELED for c in category], languages)
    first_colorbar = True
    for (name, language), index in groups.items():
        marker: dict = {"symbol": symbols[language], "size": 6 if coords.shape[1] == 3 else 9}
        if name == "confidence":
            marker.update(
                color=[confidence[i] for i in index],
                colorscale="Viridis",
                cmin=0.0,
                cmax=1.0,
                showscale=first_colorbar,
                colorbar={"title": {"text": "confidence"}},
            )
            first_colorbar = False
        else:
            marker["color"] = EMOTION_COLORS.get(name, UNLABELED_COLOR)
        fig.add_trace(
            _scatter(coords[index], f"{name} ({language})", name, marker, [customdata[i] for i in index])
        )
        fig.data[-1].hovertemplate = hovertemplate
    # the legend goes under the plot: on the right it sat on the confidence colour bar. Fixed entry
    # widths and the title above the entries: in the app's half-width plots plotly otherwise laid the
    # (category, language) groups out in one row and the last emotion fell outside the figure
    fig.update_layout(
        title={"text": title},
        legend={
            "title": {"text": f"{color_by.value} (language)", "side": "top"},
            "orientation": "h",
            "y": -0.05,
            "entrywidth": 120,
        },
    )
    if coords.shape[1] == 3:  # a camera further out, so the axis labels stay inside the figure
        fig.update_layout(scene={"camera": {"eye": {"x": 1.6, "y": 1.6, "z": 1.0}}, "aspectmode": "cube"})
    return fig


def _group(n: int, names: list[str], languages: Sequence[str]) -> dict[tuple[str, str], list[int]]:
    """Point indices per (category, language), emotions in scheme order so legends line up across figures."""
    order = {name: i for i, name in enumerate((*EMOTIONS, UNLABELED, "confidence", "no prediction"))}
    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(n):
        groups.setdefault((names[i], languages[i]), []).append(i)
    return dict(sorted(groups.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0])))


def _scatter(
    xyz: np.ndarray, name: str, group: str, marker: dict, customdata: list
) -> go.Scatter | go.Scatter3d:
    common = {
        "mode": "markers",
        "name": name,
        "legendgroup": group,
        "marker": marker,
        "customdata": customdata,
    }
    if xyz.shape[1] == 3:
        return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], **common)
    return go.Scatter(x=xyz[:, 0], y=xyz[:, 1], **common)


def _fmt_prob(p: float | None) -> str:
    return "-" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.2f}"


def _choice(enum: type[E], value: E | str, what: str) -> E:
    try:
        return enum(value)
    except ValueError:
        raise ValueError(f"unknown {what} {value!r}: use one of {', '.join(e.value for e in enum)}") from None
