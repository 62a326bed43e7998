"""Cross-validation folds over human labels: classes spread, a recording's utterances kept together."""

from __future__ import annotations

import numpy as np

from serdemo.app.target_eval import fold_of_each, groups_split


def test_clips_without_groups_are_dealt_class_by_class():
    labels = np.repeat(np.arange(5), 4)
    assignment = fold_of_each(labels, 5)
    assert np.array_equal(fold_of_each(labels, 5, groups=[None] * 20), assignment)
    assert np.bincount(assignment).tolist() == [4] * 5
    for c in range(5):  # a class's 4 clips in 4 different folds
        assert len(set(assignment[labels == c].tolist())) == 4


def test_utterances_of_one_recording_share_a_fold():
    rng = np.random.default_rng(0)
    groups = [f"take{i // 3}.wav" for i in range(30)]  # 10 recordings of 3 utterances
    labels = rng.integers(0, 5, 30)
    assignment = fold_of_each(labels, 5, seed=1, groups=groups)
    assert groups_split(assignment, groups) == 0 and set(assignment.tolist()) == set(range(5))
    for name in set(groups):
        assert len({int(a) for a, g in zip(assignment, groups, strict=True) if g == name}) == 1
    # clips added one by one (no group) sit beside the recordings, each a group of its own
    mixed = groups[:15] + [None] * 15
    assert groups_split(fold_of_each(labels, 5, groups=mixed), mixed) == 0


def test_too_few_recordings_fall_back_to_clips_and_say_how_many_were_split():
    groups = ["a.wav"] * 10 + ["b.wav"] * 10
    labels = np.tile(np.arange(5), 4)
    assignment = fold_of_each(labels, 5, groups=groups)
    assert np.array_equal(assignment, fold_of_each(labels, 5))
    assert groups_split(assignment, groups) == 2
