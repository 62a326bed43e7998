"""An unlabeled pool that sounds like one mood is not learned from (serdemo.learn.pool_moods)."""

from pathlib import Path

import numpy as np
import pytest

from serdemo.config import AdaptConfig, ConfigError
from serdemo.learn import ClipSet, load_model, predict_proba, save_model
from serdemo.learn.pool_moods import answer_spread, is_judged, relative_spread, sounds_like_one_mood
from serdemo.learn.small_pool import SMALL_POOL_PRIOR
from tests.test_adapt import make_clips, make_task, quick_config, run


def pool_task(one_mood: bool):
    """The toy task of test_adapt, with a pool of 100 clips whose classes the source's cues tell apart.

    ``one_mood``: all 100 of one class; else 50 of each.
    """
    task = make_task(n_labeled=0, n_unlabeled=100)
    clips = make_clips(np.random.default_rng(11), 100, "de", False, "u")  # the source's cues hold
    rows = np.flatnonzero(clips.labels == 0) if one_mood else np.arange(0, 200, 2)
    return {**task, "unlabeled": clips.subset(rows).without_labels()}


@pytest.fixture(scope="module")
def judge():
    """A model trained on the source alone: what the app's first version is to a new language."""
    task = make_task(n_labeled=0, n_unlabeled=100)
    empty = task["labeled"].subset([])
    return run({**task, "labeled": empty, "unlabeled": empty.without_labels()}, quick_config(policy="none"))


def test_answer_spread_is_the_variance_of_the_logits_whatever_their_offset():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 5))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    shifted = np.exp(logits + 3.0) / np.exp(logits + 3.0).sum(1, keepdims=True)  # same answers
    centred = logits - logits.mean(1, keepdims=True)
    assert answer_spread(probs) == pytest.approx(centred.var(0).sum(), rel=1e-6)
    assert answer_spread(shifted) == pytest.approx(answer_spread(probs), rel=1e-6)
    assert answer_spread(np.tile(probs[:1], (10, 1))) == pytest.approx(0.0, abs=1e-12)
    assert answer_spread(np.zeros((0, 5))) == 0.0


def test_a_pool_of_one_class_spreads_the_answers_less_than_a_pool_of_both(judge):
    task = pool_task(one_mood=False)
    reference = task["validation"]["en"]
    mixed = relative_spread(judge, task["unlabeled"], reference)
    one = relative_spread(judge, pool_task(one_mood=True)["unlabeled"], reference)
    assert one is not None and mixed is not None
    assert one < 0.5 * mixed, (one, mixed)
    # the pool is scored as a language the judge has no statistics for: its labels and tags do not matter
    relabeled = task["unlabeled"]
    tagged = ClipSet(relabeled.ids, relabeled.labels, ["en"] * len(relabeled), relabeled.speakers,
                     features=relabeled.features)  # fmt: skip
    assert relative_spread(judge, tagged, reference) == pytest.approx(mixed)
    # nothing to compare: no reference clips, or clips of another width
    assert relative_spread(judge, task["unlabeled"], reference.subset([])) is None
    narrow = ClipSet(relabeled.ids, relabeled.labels, relabeled.languages, relabeled.speakers,
                     features=relabeled.features[:, :, :3])  # fmt: skip
    assert relative_spread(judge, narrow, reference) is None


def test_only_pools_a_round_would_learn_from_with_few_labels_are_judged():
    config = AdaptConfig()  # under 0.2; pools of 40 clips or more, fewer than 5 labels
    assert is_judged(config, 40, 4) and sounds_like_one_mood(config, 0.1)
    assert not is_judged(config, 39, 0)  # a small pool: its own rule
    assert not is_judged(config, 200, 5)  # labels say which emotions the pool holds
    assert not is_judged(config.replace(one_mood_spread=0), 200, 0)
    assert not sounds_like_one_mood(config, 0.25) and not sounds_like_one_mood(config, None)
    with pytest.raises(ConfigError, match="one_mood_spread must be in"):
        AdaptConfig(one_mood_spread=-0.1)
    with pytest.raises(ConfigError, match="one_mood_spread must be in"):
        AdaptConfig(one_mood_spread=1.0)


def test_a_round_on_a_pool_in_one_mood_learns_nothing_from_it_and_a_mixed_pool_is_learned_from(
    judge, tmp_path: Path
):
    task = pool_task(one_mood=True)
    mixed_task = pool_task(one_mood=False)
    reference = task["validation"]["en"]
    one = relative_spread(judge, task["unlabeled"], reference)
    mixed = relative_spread(judge, mixed_task["unlabeled"], reference)
    config = quick_config(policy="hard", one_mood_spread=(one + mixed) / 2)  # the toy's own line
    result = run(task, config, judge=judge)
    assert result.pool_in_one_mood and not result.small_pool and result.pool_spread == pytest.approx(one)
    assert result.rounds == [] and result.config.policy == "none"  # no pseudo-labels
    assert result.normalizer.language_prior == SMALL_POOL_PRIOR  # statistics near the global ones
    # the same as the run learning nothing from the pool by the small-pool rule
    nothing = run(task, config.replace(small_pool_clips=10_000))
    test = task["test"]
    np.testing.assert_array_equal(predict_proba(result, test), predict_proba(nothing, test))
    loaded = load_model(save_model(result, tmp_path / "one"))
    assert loaded.pool_in_one_mood and loaded.pool_spread == pytest.approx(one)
    # learned from: a mixed pool, no judge, the switch off, or labels enough to say what the pool holds
    learned = run(mixed_task, config, judge=judge)
    assert not learned.pool_in_one_mood and learned.rounds and learned.pool_spread == pytest.approx(mixed)
    unjudged = run(task, config)
    assert not unjudged.pool_in_one_mood and unjudged.rounds and unjudged.pool_spread is None
    assert run(task, config.replace(one_mood_spread=0), judge=judge).rounds
    labeled = run(
        {**task, "labeled": mixed_task["validation"]["de"].subset(np.arange(35, 45))}, config, judge=judge
    )
    assert not labeled.pool_in_one_mood and labeled.pool_spread is None and labeled.rounds
