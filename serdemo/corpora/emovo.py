"""EMOVO loader (Costantini et al., 2014; free for research, Fondazione Ugo Bordoni).

Italian emotional speech: 6 actors (f1 f2 f3 female, m1 m2 m3 male), 14 sentences, 7 emotions:
588 clips in one folder per actor. File names are ``<emotion>-<actor>-<sentence>.wav``, e.g.
``rab-f1-b1.wav``: dis disgusto/disgust, gio gioia/joy, neu neutro/neutral, pau paura/fear,
rab rabbia/anger, sor sorpresa/surprise, tri tristezza/sadness; sentences b1-b3, d1-d2, l1-l4,
n1-n5.

Costantini G, Iaderola I, Paoloni A, Todisco M (2014) "EMOVO corpus: an Italian emotional speech
database", Proc. LREC, 3501-3504.
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "emovo"
LANGUAGE = "it"

_LABELS = {  # code -> (corpus label, five-class emotion or None)
    "dis": ("disgusto", None),
    "gio": ("gioia", "happiness"),
    "neu": ("neutro", "neutral"),
    "pau": ("paura", "fear"),
    "rab": ("rabbia", "anger"),
    "sor": ("sorpresa", None),
    "tri": ("tristezza", "sadness"),
}
_PATTERN = re.compile(
    r"^(dis|gio|neu|pau|rab|sor|tri)-([fm][123])-(b[1-3]|d[12]|l[1-4]|n[1-5])$", re.IGNORECASE
)


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` (``rab-f1-b1``) into an utterance, or ``None`` outside the scheme."""
    match = _PATTERN.match(path.stem)
    if match is None:
        return None
    code, actor, sentence = (part.lower() for part in match.groups())
    label, emotion = _LABELS[code]
    return Utterance(
        id=f"{NAME}/{code}-{actor}-{sentence}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/{actor}",
        gender="female" if actor[0] == "f" else "male",
        emotion=emotion,
        original_label=label,
        extra={"code": code, "text": sentence},
    )


def load(root: Path) -> list[Utterance]:
    """All EMOVO clips under ``root`` (the folder holding ``f1`` .. ``m3``)."""
    return scan_corpus(
        root,
        parse,
        corpus="EMOVO",
        pattern="emotion-actor-sentence.wav/.flac, e.g. rab-f1-b1.wav",
        hint="point --source emovo=PATH at the EMOVO folder holding f1, f2, f3, m1, m2, m3",
    )


SPEC = register_corpus(
    CorpusSpec(NAME, LANGUAGE, "EMOVO: 6 Italian actors, 7 emotions (Costantini et al. 2014)", load)
)
