"""The confounded stress protocol (--speaker-emotions K) on synthetic utterances."""

from pathlib import Path

import numpy as np
import pytest

from serdemo.confound import confine_speaker_emotions
from serdemo.corpora.base import Utterance
from serdemo.labels import EMOTIONS


def part(speakers: int, clips_per_emotion: int = 3, emotions=EMOTIONS) -> list[Utterance]:
    return [
        Utterance(f"s{s}-{e}-{i}", Path("x.wav"), "demo", "xx", f"demo/{s}", None, e, e)
        for s in range(speakers)
        for e in emotions
        for i in range(clips_per_emotion)
    ]


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("speakers", [3, 5, 6, 14])
def test_each_speaker_keeps_k_emotions_and_the_part_covers_what_it_can(k, speakers):
    clips = part(speakers)
    kept, notes = confine_speaker_emotions(clips, k, EMOTIONS, np.random.default_rng(0))
    by_speaker = {}
    for u in kept:
        by_speaker.setdefault(u.speaker, set()).add(u.emotion)
    assert len(by_speaker) == speakers  # nobody is dropped
    assert all(len(shown) == k for shown in by_speaker.values())
    covered = {u.emotion for u in kept}
    assert len(covered) == min(len(EMOTIONS), speakers * k)
    assert bool(notes) == (speakers * k < len(EMOTIONS))
    # every kept speaker keeps all of their clips of the emotions they keep
    assert len(kept) == 3 * speakers * k
    # classes spread evenly: no class is kept by two more speakers than another
    counts = [sum(e in shown for shown in by_speaker.values()) for e in EMOTIONS]
    assert max(counts) - min(counts) <= 1


def test_same_seed_same_assignment_other_seed_other_one():
    clips = part(6)

    def assignment(seed):
        kept, _ = confine_speaker_emotions(clips, 1, EMOTIONS, np.random.default_rng(seed))
        return sorted({(u.speaker, u.emotion) for u in kept})

    assert assignment(3) == assignment(3)
    assert len({tuple(assignment(seed)) for seed in range(6)}) > 1


def test_speakers_missing_an_emotion_and_unlabeled_clips():
    clips = part(2, emotions=("anger",)) + part(1, emotions=("sadness",))
    clips.append(Utterance("u", Path("x.wav"), "demo", "xx", "demo/0", None, None, ""))
    kept, notes = confine_speaker_emotions(clips, 2, EMOTIONS, np.random.default_rng(0))
    assert {u.emotion for u in kept} == {"anger", "sadness"}  # a speaker can only keep what it shows
    assert all(u.emotion is not None for u in kept)  # an unlabeled clip's emotion cannot be confined
    assert len(kept) == 9
    assert not notes  # the absent classes were never in this part, so nothing was lost


def test_k_below_one_is_an_error():
    with pytest.raises(ValueError, match="k must be >= 1"):
        confine_speaker_emotions(part(2), 0, EMOTIONS, np.random.default_rng(0))
