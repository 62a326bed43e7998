"""Projections, their plotly figures, and silhouettes of embeddings."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest

from serdemo.labels import EMOTION_COLORS
from serdemo.metrics import silhouette
from serdemo.projection import (
    UNLABELED_COLOR,
    project,
    projection_figure,
    projection_title,
)


def clusters(n_per: int = 20, k: int = 3, p: int = 32, spread: float = 0.05, seed: int = 0):
    """``k`` tight, far-apart clusters in ``p`` dimensions and each point's cluster index."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, p)) * 3
    groups = np.repeat(np.arange(k), n_per)
    return centers[groups] + rng.normal(scale=spread, size=(k * n_per, p)), groups


# -- project ---------------------------------------------------------------------------------


def test_pca_finds_the_direction_of_largest_spread() -> None:
    rng = np.random.default_rng(0)
    t = rng.uniform(-5, 5, 50)
    direction = rng.normal(size=16)
    direction /= np.linalg.norm(direction)
    points = 3.0 + t[:, None] * direction + rng.normal(scale=0.01, size=(50, 16))

    coords = project(points, "pca", dims=2)
    assert coords.shape == (50, 2)
    assert abs(np.corrcoef(coords[:, 0], t)[0, 1]) > 0.999  # the line becomes the first axis
    assert coords[:, 1].std() < 0.02  # and nothing is left for the second
    np.testing.assert_array_equal(project(points, "pca", dims=2), coords)  # same input, same picture


def test_pca_keeps_clusters_apart_in_3d() -> None:
    points, groups = clusters()
    coords = project(points, "pca", dims=3)
    assert coords.shape == (60, 3)
    assert silhouette(coords, groups.astype(str).tolist(), metric="euclidean") > 0.9


@pytest.mark.parametrize(("n", "method"), [(1, "pca"), (2, "pca"), (3, "umap")])
def test_tiny_inputs_still_give_coordinates(n: int, method: str) -> None:
    points = np.arange(n * 5, dtype=float).reshape(n, 5) ** 2
    coords = project(points, method, dims=3)
    assert coords.shape == (n, 3)
    assert np.isfinite(coords).all()
    # Below 4 points UMAP falls back to PCA (stated in project's docstring).
    np.testing.assert_array_equal(coords, project(points, "pca", dims=3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "tsne"}, "pca, umap"),
        ({"dims": 4}, "dims must be 2 or 3"),
        ({"embeddings": np.full((5, 3), np.nan)}, "NaN"),
        ({"embeddings": np.zeros(5)}, r"shape \(N, P\)"),
    ],
)
def test_bad_projection_arguments(kwargs: dict, message: str) -> None:
    args = {"embeddings": np.eye(5), **kwargs}
    with pytest.raises(ValueError, match=message):
        project(**args)


@pytest.mark.slow  # importing umap-learn and compiling its numba code takes ~10-60 s on a cold cache
def test_umap_separates_clusters_and_is_seeded() -> None:
    points, groups = clusters()
    coords = project(points, "umap", dims=2, seed=0)
    assert coords.shape == (60, 2)
    assert silhouette(coords, groups.astype(str).tolist(), metric="euclidean") > 0.5
    np.testing.assert_allclose(project(points, "umap", dims=2, seed=0), coords)
    assert project(points[:6], "umap", dims=3).shape == (6, 3)  # few points: random init, still works


# -- silhouette ------------------------------------------------------------------------------


def test_silhouette_high_for_separable_low_for_random() -> None:
    points, groups = clusters()
    labels = [("anger", "fear", "sadness")[g] for g in groups]
    assert silhouette(points, labels) > 0.8
    shuffled = list(np.random.default_rng(1).permutation(labels))
    assert abs(silhouette(points, shuffled)) < 0.1


def test_silhouette_undefined_cases_give_none() -> None:
    points, groups = clusters(n_per=2, k=2)
    assert silhouette(points, ["it"] * 4) is None  # one group
    assert silhouette(points, ["a", "b", None, None]) is None  # two points in two groups
    assert silhouette(points, ["a", "a", "b", None]) is not None  # unlabeled points are left out
    with pytest.raises(ValueError, match="one group per row"):
        silhouette(points, ["a", "b"])


def test_title_reports_both_silhouettes() -> None:
    points, groups = clusters()
    emotions = [("anger", "fear", "sadness")[g] for g in groups]
    languages = ["it", "de"] * 30  # spread evenly over the clusters: no language structure
    title = projection_title("Before adaptation", points, emotions, languages)
    assert re.fullmatch(r"Before adaptation \(silhouette, cosine: emotion 1\.00, language -?0\.0\d\)", title)
    assert projection_title("After", points, emotions, ["it"] * 60).endswith("language n/a)")


# -- figure ----------------------------------------------------------------------------------

EMOTIONS = ["anger", "anger", "sadness", "fear", None, "sadness"]
LANGUAGES = ["it", "de", "it", "it", "it", "de"]
IDS = [11, 12, 13, 14, 15, 16]
LABELS = ["anger", None, "sadness", None, None, "sadness"]
PREDS = ["anger", "anger", "fear", "fear", "neutral", "sadness"]
CONFIDENCE = [0.9, 0.8, 0.4, 0.55, None, 0.99]


def figure(dims: int = 2, **kwargs) -> go.Figure:
    coords = np.arange(6 * dims, dtype=float).reshape(6, dims)
    args = {"labels": LABELS, "preds": PREDS, "confidence": CONFIDENCE, **kwargs}
    return projection_figure(coords, EMOTIONS, LANGUAGES, IDS, **args)


def test_figure_colours_by_emotion_and_marks_language() -> None:
    fig = figure(title="Before")
    names = [trace.name for trace in fig.data]
    assert names == [
        "anger (de)",
        "anger (it)",
        "fear (it)",
        "sadness (de)",
        "sadness (it)",
        "unlabeled (it)",
    ]
    assert all(isinstance(trace, go.Scatter) for trace in fig.data)
    by_name = {trace.name: trace for trace in fig.data}
    assert by_name["anger (it)"].marker.color == EMOTION_COLORS["anger"]
    assert by_name["unlabeled (it)"].marker.color == UNLABELED_COLOR
    assert {t.marker.symbol for t in fig.data if t.name.endswith("(de)")} == {"circle"}  # sorted: de, it
    assert {t.marker.symbol for t in fig.data if t.name.endswith("(it)")} == {"diamond"}
    assert fig.layout.title.text == "Before"


def test_hover_and_customdata_carry_the_clip() -> None:
    fig = figure()
    rows = [row for trace in fig.data for row in trace.customdata]
    assert sorted(row[0] for row in rows) == IDS  # the UI plays customdata[0]
    row = next(row for row in rows if row[0] == 13)
    assert list(row) == [13, "sadness", "fear", "0.40", "it"]
    row = next(row for row in rows if row[0] == 15)
    assert list(row) == [15, "unlabeled", "neutral", "-", "it"]
    assert all("clip %{customdata[0]}" in trace.hovertemplate for trace in fig.data)
    assert all("prediction: %{customdata[2]}" in trace.hovertemplate for trace in fig.data)


def test_points_keep_their_coordinates() -> None:
    fig = figure()
    trace = next(t for t in fig.data if t.name == "fear (it)")
    assert (tuple(trace.x), tuple(trace.y), tuple(trace.customdata[0][:1])) == ((6.0,), (7.0,), (14,))


def test_colour_by_gold_pseudo_and_confidence() -> None:
    gold = {t.name for t in figure(color_by="gold").data}
    assert gold == {"anger (it)", "sadness (it)", "sadness (de)", "unlabeled (it)", "unlabeled (de)"}
    pseudo = {t.name for t in figure(color_by="pseudo").data}
    assert "neutral (it)" in pseudo and not any(name.startswith("unlabeled") for name in pseudo)

    fig = figure(color_by="confidence")
    scaled = [t for t in fig.data if t.name.startswith("confidence")]
    assert sorted(c for t in scaled for c in t.marker.color) == [0.4, 0.55, 0.8, 0.9, 0.99]
    assert [t.marker.showscale for t in scaled] == [True, False]  # one colour bar, not one per language
    assert [t.name for t in fig.data if t.name.startswith("no prediction")] == ["no prediction (it)"]


def test_3d_figure_uses_scatter3d() -> None:
    fig = figure(dims=3)
    assert all(isinstance(trace, go.Scatter3d) for trace in fig.data)
    assert sum(len(trace.z) for trace in fig.data) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"color_by": "speaker"}, "emotion, gold, pseudo, confidence"),
        ({"color_by": "confidence", "confidence": None}, "needs confidence"),
        ({"color_by": "gold", "labels": [None] * 6}, "needs labels"),
        ({"preds": PREDS[:5]}, "preds has 5 entries for 6 points"),
    ],
)
def test_bad_figure_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        figure(**kwargs)
