"""Does an unlabeled pool sound like one mood? How far a model's answers spread over it says so.

A round on an unlabeled pool recorded in one mood (a call centre's angry calls, a person recording
themselves in one mood) makes the mood its language's baseline: rounds on EMO-DB pools of 40 clips of one
emotion took the language's held-out clips from 67.5 UA to 59.0 (mean of five pools), 69.0 with this rule
(docs/results.md, "An unlabeled pool in one mood"). The model's most frequent answer cannot tell such a
pool from a mixed one (bench/one_mood_detect.py: a happy pool is heard as fear, an angry one split). How far
its answers spread can: a pool of one mood varies within one emotion only, so the model's logits vary less
over it than over clips of every emotion. The spread is measured relative to the same model's spread over
labeled clips of a language it knows (the source validation set), so it needs no threshold per model.

``python bench/pool_moods.py`` (source-only models, pools of 40 clips from the target's training
speakers, 6 seeds): relative spread of one-mood pools 0.09-0.27 (median 0.18) into EMO-DB and 0.14-0.31
(0.23) into RAVDESS; of pools of every emotion 0.24 or more, of one speaker's clips of every emotion
0.20-0.52 (with noise and silence around the clips, down to 0.17). Under
:attr:`AdaptConfig.one_mood_spread` (0.2) a pool is judged to be in one mood. Pools of two moods mostly
are not (5 + 2 of 120 pairs): their spread overlaps mixed pools'.
"""

from __future__ import annotations

import numpy as np

from serdemo.config import AdaptConfig, Mode
from serdemo.learn.clips import ClipSet
from serdemo.learn.inference import predict_proba
from serdemo.learn.result import AdaptResult

UNSEEN_LANGUAGE = "\x00pool"  # no model has statistics for it: the pool is scored with the global ones


def answer_spread(probs: np.ndarray) -> float:
    """Spread of answers: the variance over clips of the centred log-probabilities, summed over classes.

    Centred log-probabilities are the logits less their mean, so this is the spread of the logits.

    Example:
        >>> same = np.tile([0.7, 0.2, 0.1], (4, 1))
        >>> answer_spread(same)
        0.0
        >>> round(answer_spread(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])), 3)
        2.162

    """
    logs = np.log(np.clip(np.asarray(probs, np.float64), 1e-6, 1.0))
    centred = logs - logs.mean(axis=1, keepdims=True)
    return float(centred.var(axis=0).sum()) if len(centred) else 0.0


def scored_as_unseen(judge: AdaptResult, pool: ClipSet) -> np.ndarray:
    """``judge``'s probabilities for ``pool`` scored as a language it has no statistics for.

    Its own statistics, where it has them, would absorb the pool's mood.
    """
    unseen = ClipSet(
        pool.ids,
        np.full(len(pool), -1),
        [UNSEEN_LANGUAGE] * len(pool),
        [f"{UNSEEN_LANGUAGE}/speaker"] * len(pool),
        features=pool.features,
    )
    return predict_proba(judge, unseen)


def relative_spread(judge: AdaptResult, pool: ClipSet, reference: ClipSet) -> float | None:
    """``judge``'s answer spread over ``pool`` (scored as unseen) relative to its spread over ``reference``.

    None where ``judge`` cannot score these clips (fine-tuned, another encoder's feature shapes) or
    ``reference`` holds no spread to compare with.
    """
    if judge.config.mode != Mode.FROZEN.value or pool.features is None or reference.features is None:
        return None
    shapes = {pool.features.shape[1:], reference.features.shape[1:]}
    if not len(pool) or not len(reference) or shapes != {(judge.head.num_layers, judge.head.feature_dim)}:
        return None
    own = answer_spread(predict_proba(judge, reference))
    return answer_spread(scored_as_unseen(judge, pool)) / own if own > 0 else None


def is_judged(config: AdaptConfig, clips: int, labels: int) -> bool:
    """Whether a target pool of ``clips`` clips, ``labels`` of them labeled by a person, is judged at all.

    Only pools a round would learn from (not small) with fewer labels than ``config.few_emotion_labels``:
    from that many labels, the person's labels say which emotions the pool holds.

    Example:
        >>> config = AdaptConfig()
        >>> is_judged(config, 40, 4), is_judged(config, 39, 0), is_judged(config, 200, 5)
        (True, False, False)

    """
    enough_clips = clips >= config.small_pool_clips
    return config.one_mood_spread > 0 and enough_clips and labels < max(config.few_emotion_labels, 1)


def sounds_like_one_mood(config: AdaptConfig, spread: float | None) -> bool:
    """Whether a judged pool's relative answer spread (:func:`relative_spread`) says one mood."""
    return spread is not None and spread < config.one_mood_spread
