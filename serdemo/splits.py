"""Speaker-independent train / validation / test splits.

:func:`speaker_split` keeps every speaker in one part, so test scores measure how a model does
on voices it never heard. Speakers are assigned by a seeded search: a few hundred shuffles of the
speakers, each filled greedily into the part furthest below its target share; the assignment
that misses the fewest (part, class) cells wins, ties broken by the distance of the utterance
shares from ``ratios``. The same seed always gives the same split.

Corpora with few speakers get what their speakers allow, and :attr:`Split.notes` says so:

- 3 or more speakers: speaker-independent, every part has at least one speaker. With 3 that is
  1/1/1; SAVEE's 4 become 2/1/1 and EMOVO's 6 become 4/1/1, so shares stray from 60/20/20.
- Fewer than 3 speakers (TESS has 2): a speaker-independent 3-way split is impossible. If
  every clip carries its text (``extra["text"]``: the TESS word, the RAVDESS statement, ...)
  the split is text-independent instead: no word or sentence appears in two parts, the same
  voices appear in all three.
- Fewer than 3 speakers and no text: utterances are split at random (stratified by the same
  search), which is neither speaker- nor text-independent.

Example:
    >>> from serdemo.corpora import load_corpus  # doctest: +SKIP
    >>> split = speaker_split(load_corpus("emodb", "../shared/corpora/emodb"), seed=0)  # doctest: +SKIP
    >>> split_summary(split)  # doctest: +SKIP

"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from serdemo.corpora.base import Utterance
from serdemo.labels import EMOTIONS

PARTS: tuple[str, ...] = ("train", "validation", "test")
UNLABELED = "unlabeled"  # split_summary's column for clips without one of the five emotions


@dataclass
class Split:
    """Three disjoint lists of utterances and what could not be done as asked."""

    train: list[Utterance]
    validation: list[Utterance]
    test: list[Utterance]
    notes: list[str] = field(default_factory=list)  # warnings for the user, empty when all went as asked
    grouping: str = "speaker"  # what no two parts share: "speaker", "text" or "utterance"

    @property
    def parts(self) -> dict[str, list[Utterance]]:
        """The three parts by name, in the order of :data:`PARTS`."""
        return {"train": self.train, "validation": self.validation, "test": self.test}


def speaker_split(
    utterances: Sequence[Utterance],
    seed: int = 0,
    ratios: tuple[float, float, float] = (0.6, 0.2, 0.2),
    trials: int = 300,
) -> Split:
    """Split ``utterances`` so that no speaker is in two parts.

    Args:
        utterances: clips of one or more corpora (speakers are corpus-qualified).
        seed: seeds the search; the same seed and input give the same split.
        ratios: target shares of train / validation / test, by utterance count.
        trials: number of seeded speaker shuffles to try.

    Returns:
        The split, each part sorted by utterance id, with notes on anything that could not be
        met (too few speakers, a class missing from a part, shares far from ``ratios``).

    Raises:
        ValueError: no utterances, or ``ratios`` not three positive shares summing to 1.

    """
    _check(utterances, ratios, trials)
    notes: list[str] = []
    speakers = sorted({u.speaker for u in utterances})
    key, grouping = (lambda u: u.speaker), "speaker"
    if len(speakers) < 3:
        who = f"only {len(speakers)} speaker{'s' if len(speakers) > 1 else ''} ({', '.join(speakers)})"
        if all(u.extra.get("text") for u in utterances) and len({u.extra["text"] for u in utterances}) >= 3:
            key, grouping = (lambda u: u.extra["text"]), "text"
            notes.append(
                f"{who}: a speaker-independent 3-way split is impossible; split by text instead "
                "(no word or sentence is in two parts, but the same speakers are in all three)"
            )
        elif len(utterances) >= 3:
            key, grouping = (lambda u: u.id), "utterance"
            notes.append(
                f"{who} and no text ids: split by utterance, so the same speakers (and maybe texts) "
                "are in all three parts; test scores will be optimistic"
            )
        else:
            raise ValueError(f"need at least 3 utterances to make 3 parts, got {len(utterances)}")

    groups: dict[Hashable, list[Utterance]] = defaultdict(list)
    for utterance in utterances:
        groups[key(utterance)].append(utterance)
    assignment = _search(groups, np.asarray(ratios, dtype=float), seed, trials)

    parts: list[list[Utterance]] = [[], [], []]
    for group, part in assignment.items():
        parts[part].extend(groups[group])
    split = Split(*(sorted(p, key=lambda u: u.id) for p in parts), notes=notes, grouping=grouping)
    split.notes.extend(_coverage_notes(split, groups))
    split.notes.extend(_ratio_notes(split, ratios))
    return split


def split_summary(split: Split) -> pd.DataFrame:
    """Clip counts per part (rows) and emotion (columns), plus totals and speaker counts.

    Example:
        >>> from pathlib import Path
        >>> def clip(i, speaker, emotion):
        ...     return Utterance(f"x/{i}", Path(f"{i}.wav"), "x", "en", speaker, None, emotion, emotion)
        >>> split = Split([clip(0, "a", "anger")], [clip(1, "b", "fear")], [clip(2, "c", "anger")])
        >>> split_summary(split)[["anger", "fear", "total", "speakers"]]
                    anger  fear  total  speakers
        train           1     0      1         1
        validation      0     1      1         1
        test            1     0      1         1

    """
    rows = {}
    for name, part in split.parts.items():
        row = {emotion: sum(u.emotion == emotion for u in part) for emotion in EMOTIONS}
        row[UNLABELED] = sum(u.emotion is None for u in part)
        row["total"] = len(part)
        row["speakers"] = len({u.speaker for u in part})
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    if not table[UNLABELED].any():
        table = table.drop(columns=UNLABELED)
    return table


def _check(utterances: Sequence[Utterance], ratios: tuple[float, float, float], trials: int) -> None:
    if len(utterances) == 0:
        raise ValueError("no utterances to split; load a corpus first")
    if len(ratios) != 3 or min(ratios) <= 0 or abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(
            f"ratios must be three positive shares summing to 1, e.g. (0.6, 0.2, 0.2); got {ratios}"
        )
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    ids = [u.id for u in utterances]
    if len(set(ids)) != len(ids):
        raise ValueError("utterance ids repeat; split each clip once (did you concatenate a corpus twice?)")


def _search(
    groups: dict[Hashable, list[Utterance]], ratios: np.ndarray, seed: int, trials: int
) -> dict[Hashable, int]:
    """Pick the best of ``trials`` seeded greedy assignments of groups to parts 0/1/2."""
    names = sorted(groups, key=str)  # a fixed order before shuffling keeps the seed meaningful
    sizes = np.array([len(groups[g]) for g in names], dtype=float)
    classes = sorted({u.emotion for g in names for u in groups[g] if u.emotion is not None})
    has_class = np.array(
        [[any(u.emotion == c for u in groups[g]) for c in classes] for g in names], dtype=bool
    )
    targets = ratios * sizes.sum()
    rng = np.random.default_rng(seed)

    best, best_score = None, None
    for _ in range(trials):
        order = rng.permutation(len(names))
        part_of = np.empty(len(names), dtype=int)
        filled = np.zeros(3)
        for rank, index in enumerate(order):
            # the first three groups open the three parts; the rest go where the deficit is largest
            part = rank if rank < 3 else int(np.argmin(filled / targets))
            part_of[index] = part
            filled[part] += sizes[index]
        covered = np.array([has_class[part_of == p].any(axis=0) for p in range(3)])
        score = (int((~covered).sum()), float(np.abs(filled / sizes.sum() - ratios).sum()))
        if best_score is None or score < best_score:
            best, best_score = part_of.copy(), score
    return {name: int(part) for name, part in zip(names, best, strict=True)}


def _coverage_notes(split: Split, groups: dict[Hashable, list[Utterance]]) -> list[str]:
    notes = []
    present = sorted({u.emotion for g in groups.values() for u in g if u.emotion is not None})
    for emotion in present:
        missing = [name for name, part in split.parts.items() if not any(u.emotion == emotion for u in part)]
        if missing:
            holders = sum(any(u.emotion == emotion for u in g) for g in groups.values())
            notes.append(
                f"{emotion} is missing from {' and '.join(missing)}: only {holders} "
                f"{split.grouping}{'s' if holders != 1 else ''} have it"
                + (" (at least 3 are needed)" if holders < 3 else "; no assignment found covering every part")
            )
    return notes


def _ratio_notes(split: Split, ratios: tuple[float, float, float]) -> list[str]:
    total = sum(len(p) for p in split.parts.values())
    shares = [len(p) / total for p in split.parts.values()]
    if max(abs(s - r) for s, r in zip(shares, ratios, strict=True)) <= 0.05:
        return []
    got = "/".join(f"{s:.0%}" for s in shares)
    want = "/".join(f"{r:.0%}" for r in ratios)
    groups = len(
        {u.speaker if split.grouping == "speaker" else u.id for p in split.parts.values() for u in p}
    )
    reason = f" ({groups} speakers cannot be divided more evenly)" if split.grouping == "speaker" else ""
    return [f"utterance shares are {got}, not the {want} asked for{reason}"]
