"""Uncertainty sampling picks the clips a person should label first."""

from __future__ import annotations

import numpy as np
import pytest

from serdemo.active import Ranking, UncertaintyRule, rank_for_labeling, uncertainty

# Row 0: sure. Row 1: torn between two classes. Row 2: flat over all five. Row 3: fairly sure.
PROBS = np.array(
    [
        [0.96, 0.01, 0.01, 0.01, 0.01],
        [0.45, 0.44, 0.05, 0.03, 0.03],
        [0.20, 0.20, 0.20, 0.20, 0.20],
        [0.70, 0.20, 0.05, 0.03, 0.02],
    ]
)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("least_confidence", [2, 1, 3, 0]),
        # The flat row's top two are equal (margin 0), so it leads the 0.45 / 0.44 near tie.
        ("margin", [2, 1, 3, 0]),
        ("entropy", [2, 1, 3, 0]),
    ],
)
def test_most_uncertain_first(rule: str, expected: list[int]) -> None:
    ranking = rank_for_labeling(PROBS, rule)
    assert isinstance(ranking, Ranking)
    assert ranking.order.tolist() == expected
    assert np.all(np.diff(ranking.scores[ranking.order]) <= 0)


def test_rules_disagree_where_they_should() -> None:
    # Row 0: a close two-way tie, the rest empty. Row 1: a clear winner over four small classes.
    probs = np.array([[0.5, 0.5, 0.0, 0.0, 0.0], [0.4, 0.15, 0.15, 0.15, 0.15]])
    assert rank_for_labeling(probs, "margin").order.tolist() == [0, 1]  # margin 0 vs 0.25
    assert rank_for_labeling(probs, "least_confidence").order.tolist() == [1, 0]  # top 0.4 vs 0.5
    assert rank_for_labeling(probs, "entropy").order.tolist() == [1, 0]  # spread over five vs two


def test_scores_have_known_values() -> None:
    probs = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(uncertainty(probs, UncertaintyRule.LEAST_CONFIDENCE), [0.0, 2 / 3, 0.4])
    np.testing.assert_allclose(uncertainty(probs, UncertaintyRule.MARGIN), [0.0, 1.0, 0.7])
    entropy = -(0.6 * np.log(0.6) + 0.3 * np.log(0.3) + 0.1 * np.log(0.1)) / np.log(3)
    np.testing.assert_allclose(uncertainty(probs, UncertaintyRule.ENTROPY), [0.0, 1.0, entropy])


def test_ties_keep_input_order() -> None:
    probs = np.tile([0.5, 0.5], (4, 1))
    assert rank_for_labeling(probs, "entropy").order.tolist() == [0, 1, 2, 3]


def test_no_clips_gives_an_empty_ranking() -> None:
    ranking = rank_for_labeling(np.zeros((0, 5)))
    assert ranking.order.shape == ranking.scores.shape == (0,)


@pytest.mark.parametrize(
    ("probs", "rule", "message"),
    [
        (np.array([[2.0, -1.0]]), "entropy", "apply softmax"),
        (np.array([[0.2, 0.2]]), "margin", "apply softmax"),
        (np.array([[np.nan, 1.0]]), "margin", "apply softmax"),
        (np.array([0.5, 0.5]), "margin", r"shape \(N, C\)"),
        (np.array([[0.5, 0.5]]), "random", "least_confidence, margin, entropy"),
    ],
)
def test_bad_input_is_explained(probs: np.ndarray, rule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rank_for_labeling(probs, rule)


def test_coverage_spreads_labels_over_regions_before_going_deeper() -> None:
    from serdemo.active import rank_by_coverage

    rng = np.random.default_rng(0)
    # two well separated regions of the representation; region A holds every uncertain clip
    a = rng.normal([5.0, 0.0], 0.1, size=(6, 2))
    b = rng.normal([0.0, 5.0], 0.1, size=(6, 2))
    flat = np.full(5, 0.2)
    sure = np.array([0.96, 0.01, 0.01, 0.01, 0.01])
    probs = np.array([flat] * 6 + [sure] * 6)
    points = np.concatenate([a, b])
    # plain uncertainty would take all six region-A clips first; coverage alternates regions
    ranking = rank_by_coverage(probs, points, np.zeros((0, 2)), clusters=2)
    assert sorted(ranking.order.tolist()) == list(range(12))
    first_two = set(ranking.order[:2].tolist())
    assert len(first_two & set(range(6))) == 1 and len(first_two & set(range(6, 12))) == 1
    # clips labeled earlier count: with three labels in region A, the next three come from region B
    done = rng.normal([5.0, 0.0], 0.1, size=(3, 2))
    after = rank_by_coverage(probs, points, done, clusters=2)
    assert all(i >= 6 for i in after.order[:3])


def test_coverage_on_an_empty_pool() -> None:
    from serdemo.active import rank_by_coverage

    ranking = rank_by_coverage(np.zeros((0, 5)), np.zeros((0, 3)), np.zeros((2, 3)))
    assert ranking.order.tolist() == []
