"""A target language a run cannot learn from yet, too small or labeled in few emotions: it learns nothing.

A round's pseudo-labels and a language's own feature statistics need a pool to stand on. Measured on
unlabeled pools of EMO-DB clips of every speaker and emotion, five draws each, the app's round took
held-out clips of the language from 67.5 UA (the first model) to 62.7 with 20 clips and 67.6 with 30,
while a round that learned nothing from the pool (no pseudo-labels, statistics shrunk to the global
ones) reached 71.4 and 72.3; from 40 clips the round gained (72.8 against 69.7; 100 clips: 78.3).
A few labels do not change that, and must not be trained on: with the statistics shrunk, labeled clips of
one emotion teach the head "this language = that emotion" (8 of them: 23.8 UA). So a small pool's labels
are set aside as pool clips (68.6; a round learning from the pool: 59.5), until there are 10 of them.

Labels that all carry one or two emotions say the same of any pool: a person recording in one or two
moods (a call centre's angry and neutral calls), or labeling only their angry clips. On EMO-DB pools of 40
clips of one emotion with 10 of them labeled, a round that trained on them took the language's held-out
clips from 67.5 UA to 53.8 (mean of five emotions), one that learned nothing to 71.4; pools of two emotions,
5 + 5 labeled: 58.0 against 71.2 (mean of ten pairs). On pools of every emotion with 10 labels of two,
training on them did better, but by less: 71.2 against 69.2. So from ``few_emotion_labels`` labels of at
most ``few_emotions`` emotions the run learns nothing either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serdemo.config import AdaptConfig, Policy
from serdemo.learn.clips import ClipSet, is_copy

# language_prior of a run on a small pool: a handful of clips weigh ~2-4 % of their language's statistics
SMALL_POOL_PRIOR = 1000


def is_small_pool(config: AdaptConfig, clips: int, labels: int) -> bool:
    """Whether a target language of ``clips`` clips, ``labels`` of them labeled by a person, is too small.

    Example:
        >>> config = AdaptConfig()
        >>> is_small_pool(config, 20, 9), is_small_pool(config, 20, 10), is_small_pool(config, 200, 0)
        (True, False, False)

    """
    return 0 < clips < config.small_pool_clips and labels <= config.small_pool_labels


def labels_of_few_emotions(config: AdaptConfig, labeled: ClipSet) -> bool:
    """Whether a person gave the target ``config.few_emotion_labels`` labels or more, of few emotions.

    Few: at most :func:`few_emotions`.

    Augmented training copies repeat a label and are not counted.

    Example:
        >>> features = np.zeros((6, 1, 2), np.float32)
        >>> ids = ["a", "b", "c", "d", "e", "a#aug0"]
        >>> clips = ClipSet(ids, np.full(6, 2), ["de"] * 6, ["s"] * 6, features=features)
        >>> config = AdaptConfig()  # from 5 labels of at most 2 emotions
        >>> labels_of_few_emotions(config, clips), labels_of_few_emotions(config, clips.subset([0, 5]))
        (True, False)

    """
    given = labeled.labels[[not is_copy(clip_id) for clip_id in labeled.ids]]
    return counts_of_few_emotions(config, np.bincount(given).tolist())


def counts_of_few_emotions(config: AdaptConfig, counts: Sequence[int]) -> bool:
    """:func:`labels_of_few_emotions` from the number of labels per emotion (the Adapt tab's outlook).

    Example:
        >>> config = AdaptConfig()
        >>> counts_of_few_emotions(config, [0, 0, 6, 0, 0]), counts_of_few_emotions(config, [3, 3, 0, 0, 0])
        (True, True)
        >>> counts_of_few_emotions(config, [1, 1, 3, 0, 0]), counts_of_few_emotions(config, [2, 2, 0, 0, 0])
        (False, False)

    """
    return 0 < config.few_emotion_labels <= sum(counts) and emotions_labeled(counts) <= few_emotions(config)


def few_emotions(config: AdaptConfig) -> int:
    """``config.few_emotions``, capped at the classes less one (of two classes, one emotion is few)."""
    return min(config.few_emotions, len(config.classes) - 1)


def emotions_labeled(counts: Sequence[int]) -> int:
    """How many emotions have a label, from the number of labels per emotion."""
    return sum(1 for n in counts if n)


def emotions_wanted(config: AdaptConfig, counts: Sequence[int]) -> int:
    """How many more emotions need a label before a pool labeled in few emotions is learned from."""
    return max(few_emotions(config) + 1 - emotions_labeled(counts), 0)


def labels_wanted_beside_other_emotions(config: AdaptConfig, clips: int, counts: Sequence[int]) -> int | None:
    """How many more labels a pool of few labeled emotions needs beside labels of the emotions it lacks.

    ``clips`` and ``counts`` (labels per emotion) are the pool's now; None where labels of the missing
    emotions are enough (the pool is then not small).
    """
    after = sum(counts) + emotions_wanted(config, counts)
    return labels_wanted(config, after) if is_small_pool(config, clips, after) else None


def labels_wanted(config: AdaptConfig, labels: int) -> int:
    """How many more labels make a pool of ``labels`` labeled clips one a round learns from."""
    return max(config.small_pool_labels + 1 - labels, 0)


def learning_nothing(config: AdaptConfig) -> AdaptConfig:
    """``config`` for a target not learned from: no pseudo-labels, statistics near the global ones.

    The labels go too (:func:`labels_set_aside`): with policy none they would be all the run learns from.
    """
    return config.replace(
        policy=Policy.NONE.value, language_prior=max(config.language_prior, SMALL_POOL_PRIOR)
    )


def labels_set_aside(labeled: ClipSet, unlabeled: ClipSet) -> tuple[ClipSet, ClipSet]:
    """A small pool's labeled clips as pool clips: ``(no labeled clip, the given ones + unlabeled)``.

    With the statistics shrunk, a few labels of one emotion would teach the head "this language = that
    emotion" (8 clips: 23.8 UA); as pool clips they still count in the language's statistics. Augmented
    training copies are dropped: they are rows of a label, not clips.
    """
    given = [i for i, clip_id in enumerate(labeled.ids) if not is_copy(clip_id)]
    pool = ClipSet.concat([labeled.subset(given).without_labels(), unlabeled])
    return labeled.subset(np.zeros(0, np.int64)), pool
