"""Speaker-independent splits on synthetic utterances."""

from __future__ import annotations

from pathlib import Path

import pytest

from serdemo.corpora.base import Utterance
from serdemo.labels import EMOTIONS
from serdemo.splits import Split, speaker_split, split_summary


def clip(speaker: str, emotion: str | None, index: int, text: str | None = None) -> Utterance:
    extra = {"text": text} if text else {}
    return Utterance(
        f"x/{speaker}_{emotion}_{index}", Path(f"{index}.wav"), "x", "en", f"x/{speaker}", None, emotion,
        emotion or "", extra,
    )  # fmt: skip


def corpus(speakers: int, per_class: int = 4, classes=EMOTIONS) -> list[Utterance]:
    return [clip(f"s{s:02d}", e, i) for s in range(speakers) for e in classes for i in range(per_class)]


def speakers_of(split: Split) -> list[set[str]]:
    return [{u.speaker for u in part} for part in split.parts.values()]


def assert_disjoint(split: Split) -> None:
    train, validation, test = speakers_of(split)
    assert not (train & validation or train & test or validation & test)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_speakers_never_cross_parts_and_nothing_is_lost(seed):
    utterances = corpus(20)
    split = speaker_split(utterances, seed=seed)
    assert_disjoint(split)
    assert sorted(u.id for p in split.parts.values() for u in p) == sorted(u.id for u in utterances)
    assert split.grouping == "speaker"


def test_same_seed_same_split_other_seed_other_split():
    utterances = corpus(20)
    assert speaker_split(utterances, seed=3) == speaker_split(list(reversed(utterances)), seed=3)
    assert speaker_split(utterances, seed=3).test != speaker_split(utterances, seed=4).test


def test_shares_follow_the_ratios_where_speakers_allow():
    split = speaker_split(corpus(20), ratios=(0.6, 0.2, 0.2))
    assert [len(p) for p in split.parts.values()] == [240, 80, 80]
    assert split.notes == []
    split = speaker_split(corpus(20), ratios=(0.5, 0.25, 0.25))
    assert [len(p) for p in split.parts.values()] == [200, 100, 100]


def test_unequal_speakers_still_land_near_the_ratios():
    utterances = [clip(f"s{s:02d}", EMOTIONS[i % 5], i) for s in range(15) for i in range(5 + 3 * s)]
    split = speaker_split(utterances)
    shares = [len(p) / len(utterances) for p in split.parts.values()]
    assert shares == pytest.approx([0.6, 0.2, 0.2], abs=0.03)


def test_every_class_reaches_every_part_when_a_search_is_needed():
    # fear is spoken by only 3 of 12 speakers: a naive shuffle often puts two of them together
    utterances = corpus(12, classes=("anger", "happiness", "neutral", "sadness"))
    utterances += [clip(s, "fear", i) for s in ("s00", "s01", "s02") for i in range(4)]
    for seed in range(10):
        split = speaker_split(utterances, seed=seed)
        assert all({u.emotion for u in part} == set(EMOTIONS) for part in split.parts.values())


def test_a_class_with_too_few_speakers_is_reported():
    utterances = corpus(10, classes=("anger", "sadness")) + [clip("s00", "fear", 0), clip("s01", "fear", 1)]
    split = speaker_split(utterances)
    assert any(n.startswith("fear is missing from") and "only 2 speakers have it" in n for n in split.notes)


def test_savee_like_four_speakers_split_two_one_one():
    split = speaker_split(corpus(4))
    assert [len(s) for s in speakers_of(split)] == [2, 1, 1]
    assert_disjoint(split)
    assert any("50%/25%/25%" in n and "4 speakers cannot be divided more evenly" in n for n in split.notes)


def test_emovo_like_six_speakers_split_four_one_one():
    split = speaker_split(corpus(6))
    assert [len(s) for s in speakers_of(split)] == [4, 1, 1]
    assert_disjoint(split)


def test_three_speakers_give_one_each():
    assert [len(s) for s in speakers_of(speaker_split(corpus(3)))] == [1, 1, 1]


def test_tess_like_two_speakers_fall_back_to_text_disjoint_split():
    words = [f"w{i:03d}" for i in range(50)]
    utterances = [
        clip(s, e, i, text=w) for s in ("OAF", "YAF") for e in EMOTIONS for i, w in enumerate(words)
    ]
    split = speaker_split(utterances)
    assert split.grouping == "text"
    texts = [{u.extra["text"] for u in part} for part in split.parts.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert [len(t) for t in texts] == [30, 10, 10]
    assert any("speaker-independent 3-way split is impossible; split by text" in n for n in split.notes)
    assert all({u.emotion for u in part} == set(EMOTIONS) for part in split.parts.values())


def test_one_speaker_without_text_falls_back_to_utterances_and_says_so():
    split = speaker_split(corpus(1, per_class=10))
    assert split.grouping == "utterance"
    assert [len(p) for p in split.parts.values()] == [30, 10, 10]
    assert any("split by utterance" in n and "optimistic" in n for n in split.notes)


@pytest.mark.parametrize(
    ("utterances", "ratios", "message"),
    [
        ([], (0.6, 0.2, 0.2), "no utterances"),
        (corpus(5), (0.6, 0.4), "three positive shares"),
        (corpus(5), (0.7, 0.2, 0.2), "summing to 1"),
        (corpus(5), (1.0, 0.0, 0.0), "three positive shares"),
        (corpus(5) + corpus(5), (0.6, 0.2, 0.2), "ids repeat"),
        ([clip("a", "anger", 0), clip("a", "fear", 1)], (0.6, 0.2, 0.2), "at least 3 utterances"),
    ],
)
def test_bad_input_is_refused_with_a_reason(utterances, ratios, message):
    with pytest.raises(ValueError, match=message):
        speaker_split(utterances, ratios=ratios)


def test_summary_counts_parts_by_emotion():
    utterances = corpus(10) + [clip("s00", None, 99)]
    split = speaker_split(utterances)
    table = split_summary(split)
    assert list(table.index) == ["train", "validation", "test"]
    assert list(table.columns) == [*EMOTIONS, "unlabeled", "total", "speakers"]
    assert table["total"].sum() == len(utterances)
    assert table.loc["test", "anger"] == sum(u.emotion == "anger" for u in split.test)
    assert table["unlabeled"].sum() == 1
    assert "unlabeled" not in split_summary(speaker_split(corpus(10))).columns
