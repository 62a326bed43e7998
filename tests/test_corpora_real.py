"""The loaders and splits on the real RAVDESS and EMO-DB copies in ../shared/corpora."""

from __future__ import annotations

from collections import Counter

import pytest

from serdemo.corpora import load_corpus
from serdemo.labels import EMOTIONS
from serdemo.splits import speaker_split

pytestmark = pytest.mark.corpora

EXPECTED = {  # /work/shared/corpora/README.md: anger / fear / happiness / neutral / sadness, speakers
    "ravdess": ((192, 191, 191, 96, 192), 24, {"calm": 189, "disgust": 192, "surprised": 191}),
    "emodb": ((127, 69, 71, 79, 62), 10, {"boredom": 81, "disgust": 46}),
}


@pytest.fixture(params=sorted(EXPECTED))
def corpus(request, ravdess_root, emodb_root):
    root = {"ravdess": ravdess_root, "emodb": emodb_root}[request.param]
    return (
        request.param,
        load_corpus(request.param, root),
        load_corpus(request.param, root, keep_unmapped=True),
    )


def test_counts_per_emotion_and_speakers_match_the_corpus_readme(corpus):
    name, utterances, everything = corpus
    per_class, speakers, dropped = EXPECTED[name]
    counts = Counter(u.emotion for u in utterances)
    assert tuple(counts[e] for e in EMOTIONS) == per_class
    assert len({u.speaker for u in utterances}) == speakers
    assert Counter(u.original_label for u in everything if u.emotion is None) == dropped


def test_splits_are_speaker_disjoint_seeded_and_cover_every_class(corpus):
    name, utterances, _ = corpus
    split = speaker_split(utterances, seed=0)
    speakers = [{u.speaker for u in part} for part in split.parts.values()]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
    assert sum(map(len, split.parts.values())) == len(utterances)
    for part in split.parts.values():
        assert {u.emotion for u in part} == set(EMOTIONS)
    assert split.notes == []
    assert speaker_split(utterances, seed=0) == split
    assert speaker_split(utterances, seed=1).test != split.test
