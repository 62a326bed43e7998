"""A target language too small to learn from: the run learns nothing from its pool.

A round's pseudo-labels and a language's own feature statistics need a pool to stand on. Measured on
unlabeled pools of EMO-DB clips of every speaker and emotion, five draws each, the app's round took
held-out clips of the language from 67.5 UA (the first model) to 62.7 with 20 clips and 67.6 with 30,
while a round that learned nothing from the pool (no pseudo-labels, statistics shrunk to the global
ones) reached 71.4 and 72.3; from 40 clips the round gained (72.8 against 69.7; 100 clips: 78.3).
Labels are another matter: with the statistics shrunk, a few labeled clips of one emotion teach the head
"this language = that emotion" (8 of them: 23.8 UA, against 59.5 for a round that learns from the pool), so
by default a single label makes the pool learned from (``AdaptConfig.small_pool_labels`` 0).
"""

from __future__ import annotations

from serdemo.config import AdaptConfig, Policy

# language_prior of a run on a small pool: a handful of clips weigh ~2-4 % of their language's statistics
SMALL_POOL_PRIOR = 1000


def is_small_pool(config: AdaptConfig, clips: int, labels: int) -> bool:
    """Whether a target language of ``clips`` clips, ``labels`` of them labeled by a person, is too small.

    Example:
        >>> config = AdaptConfig()
        >>> is_small_pool(config, 20, 0), is_small_pool(config, 20, 1), is_small_pool(config, 200, 0)
        (True, False, False)

    """
    return 0 < clips < config.small_pool_clips and labels <= config.small_pool_labels


def learning_nothing(config: AdaptConfig) -> AdaptConfig:
    """``config`` for a small pool: no pseudo-labels, the languages' statistics near the global ones."""
    return config.replace(
        policy=Policy.NONE.value, language_prior=max(config.language_prior, SMALL_POOL_PRIOR)
    )
