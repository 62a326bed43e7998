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
def answers(tmp_path_factory) -> dict[str, str]:
    """Top emotion of every example, from a fresh app that starts on the shipped source set."""
    scratch = tmp_path_factory.mktemp("examples")
    config = ServiceConfig(data_dir=scratch / "data", cache_dir=scratch / "cache", warm_up_umap=False)
    service = Service(config, log=lambda text: None).start(background=False)
    return {
        p.stem: service.predict(p, p.stem.split("_")[0]).top
        for p in sorted((ASSETS / "examples").glob("*.flac"))
    }


def test_the_first_model_does_not_answer_one_emotion_for_most_examples(answers):
    """The shipped set without training copies answered fear for 5 of the 8 examples (issue 16)."""
    assert set(answers.values()) <= set(EMOTIONS)
    counts = {e: list(answers.values()).count(e) for e in EMOTIONS}
    assert sum(1 for c in counts.values() if c) >= 3, answers  # at least three different answers
    assert answers["en_angry_kids"] == "anger" and answers["de_angry_tuer"] == "anger", answers
    assert answers["en_fear_noise"] == "fear", answers


@pytest.mark.xfail(
    strict=True,
    reason="the examples are eSpeak formant speech whose emotion is only suggested by pitch, rate and "
    "loudness: the first model (RAVDESS, acted human speech) hears the neutral, sad and happy ones as "
    "aroused (3 of 7 as named, issue 16); they need examples that carry the emotion",
)
def test_the_first_model_gets_most_named_examples_right(answers):
    named = {stem: suggested(Path(stem)) for stem in answers if suggested(Path(stem))}
    right = [stem for stem, emotion in named.items() if answers[stem] == emotion]
    assert len(right) >= 0.7 * len(named), (answers, named)
