"""The installed app's first model (the shipped source set, whisper-base) on the shipped example clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from serdemo.app import ASSETS, Service, ServiceConfig
from serdemo.labels import EMOTIONS

pytestmark = pytest.mark.slow

# The emotion a file name suggests (``en_angry_kids`` -> anger); en_long_story changes mood on purpose.
NAMED = {"angry": "anger", "fear": "fear", "happy": "happiness", "neutral": "neutral", "sad": "sadness"}


def suggested(path: Path) -> str | None:
    """The emotion the example's name suggests, if any."""
    word = path.stem.split("_")[1]
    return NAMED.get(word)


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, list[str]]:
    """Each example's emotions, most probable first, from a fresh app on the shipped source set."""
    scratch = tmp_path_factory.mktemp("examples")
    config = ServiceConfig(data_dir=scratch / "data", cache_dir=scratch / "cache", warm_up_umap=False)
    service = Service(config, log=lambda text: None).start(background=False)
    ranked = {}
    for path in sorted((ASSETS / "examples").glob("*.flac")):
        probs = service.predict(path, path.stem.split("_")[0]).probs
        ranked[path.stem] = sorted(probs, key=probs.get, reverse=True)
    return ranked


def test_the_first_model_does_not_answer_one_emotion_for_most_examples(answers):
    """The shipped set without training copies answered fear for 5 of the 8 examples (issue 16)."""
    tops = {stem: ranked[0] for stem, ranked in answers.items()}
    assert set(tops.values()) <= set(EMOTIONS)
    counts = {e: list(tops.values()).count(e) for e in EMOTIONS}
    assert sum(1 for c in counts.values() if c) >= 3, tops  # at least three different answers
    assert max(counts.values()) <= len(tops) // 2, tops  # no emotion for most of them
    assert tops["en_fear_noise"] == "fear", answers
    # the angry examples: anger first or a close second. With 5 nap directions (issue 9) the first model
    # hears both as neutral by 0.02 and 0.06 over anger (with 10: anger by 0.11 and 0.10); eSpeak speech
    # carries its emotion in pitch, rate and loudness only (the xfail below)
    for stem in ("en_angry_kids", "de_angry_tuer"):
        assert "anger" in answers[stem][:2], answers


@pytest.mark.xfail(
    strict=True,
    reason="the examples are eSpeak formant speech whose emotion is only suggested by pitch, rate and "
    "loudness: the first model (RAVDESS, acted human speech) hears the neutral, sad and happy ones as "
    "aroused (1 of 7 as named; 3 with 10 nap directions; issues 16 and 9); they need examples that carry "
    "the emotion",
)
def test_the_first_model_gets_most_named_examples_right(answers):
    named = {stem: suggested(Path(stem)) for stem in answers if suggested(Path(stem))}
    right = [stem for stem, emotion in named.items() if answers[stem][0] == emotion]
    assert len(right) >= 0.7 * len(named), (answers, named)
