"""The confounded stress protocol: each speaker keeps clips of only K emotions.

Acted corpora (RAVDESS, EMO-DB) have every speaker perform every emotion, which flatters anything that
uses speaker statistics: subtracting a speaker's mean removes the speaker and leaves the emotion. Real
recordings (talk shows, call centres, a user in one mood) often carry one or two emotions per speaker,
and then the same subtraction removes the emotion. :func:`confine_speaker_emotions` builds that harder
case from an acted corpus, one split at a time, so a speaker-independent split stays one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serdemo.corpora.base import Utterance


def confine_speaker_emotions(
    utterances: Sequence[Utterance], k: int, classes: Sequence[str], rng: np.random.Generator
) -> tuple[list[Utterance], list[str]]:
    """Keep, for every speaker, the clips of only ``k`` of the emotions they show.

    Emotions are assigned greedily, speaker by speaker in a seeded order: each speaker gets the ``k``
    classes (among those it has clips of) that the speakers before it covered least, ties broken by a
    seeded class order. So the part covers every class whenever it has enough speakers (``speakers * k
    >= classes``), classes are spread evenly over speakers, and the same ``rng`` state gives the same
    result. Clips without an emotion in ``classes`` are dropped: their emotion cannot be confined.

    Args:
        utterances: the clips of one part of a split (train, validation or test).
        k: emotions kept per speaker (>= 1).
        classes: the emotions of the experiment.
        rng: randomness of the speaker and class orders.

    Returns:
        The kept clips (in input order) and notes on classes the part could not cover.

    Example:
        >>> from pathlib import Path
        >>> clips = [
        ...     Utterance(f"{s}{e}", Path("x"), "demo", "xx", s, None, e, e)
        ...     for s in "ab"
        ...     for e in ("anger", "sadness")
        ... ]
        >>> kept, _ = confine_speaker_emotions(clips, 1, ["anger", "sadness"], np.random.default_rng(0))
        >>> sorted({u.emotion for u in kept}), len({u.speaker for u in kept})
        (['anger', 'sadness'], 2)

    """
    if k < 1:
        raise ValueError(f"k must be >= 1 emotions per speaker, got {k}")
    classes = list(classes)
    labeled = [u for u in utterances if u.emotion in classes]
    speakers = sorted({u.speaker for u in labeled})
    speakers = [speakers[i] for i in rng.permutation(len(speakers))]
    order = {c: rank for rank, c in enumerate(classes[i] for i in rng.permutation(len(classes)))}
    covered = dict.fromkeys(classes, 0)
    keep: dict[str, set[str]] = {}
    for speaker in speakers:
        shown = {u.emotion for u in labeled if u.speaker == speaker}
        chosen = sorted(shown, key=lambda c: (covered[c], order[c]))[:k]
        for c in chosen:
            covered[c] += 1
        keep[speaker] = set(chosen)
    kept = [u for u in labeled if u.emotion in keep[u.speaker]]
    missing = [c for c in classes if c in {u.emotion for u in labeled} and not covered[c]]
    notes = []
    if missing:
        notes.append(
            f"{len(speakers)} speakers x {k} emotions cannot cover every class: "
            f"{', '.join(missing)} absent from this part"
        )
    return kept, notes
