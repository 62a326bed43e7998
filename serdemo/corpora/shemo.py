"""ShEMO loader (Mohamad Nezami, Jamshid Lou & Karami, 2019; free for academic use).

Sharif Emotional Speech Database: 3,000 semi-natural Persian utterances from radio plays, 87
speakers (31 female, 56 male), in ``female/`` and ``male/`` folders. File names are
``<G><SS><E><NN>.wav``, e.g. ``F01A01.wav``: gender F/M, two-digit speaker number, emotion
letter (A anger, F fear, H happiness, N neutral, S sadness, W surprise/wonder) and utterance
number. Fear is rare (38 clips), so some splits cannot place it in every part.

Mohamad Nezami O, Jamshid Lou P, Karami M (2019) "ShEMO: a large-scale validated database for
Persian speech emotion detection", Language Resources and Evaluation 53, 1-16.
https://github.com/pariajm/sharif-emotional-speech-dataset
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "shemo"
LANGUAGE = "fa"

_LABELS = {  # letter -> (corpus label, five-class emotion or None)
    "A": ("anger", "anger"),
    "F": ("fear", "fear"),
    "H": ("happiness", "happiness"),
    "N": ("neutral", "neutral"),
    "S": ("sadness", "sadness"),
    "W": ("surprise", None),
}
_PATTERN = re.compile(r"^([FM])(\d\d)([AFHNSW])(\d\d)$")


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` (``F01A01``) into an utterance, or ``None`` outside the scheme."""
    match = _PATTERN.match(path.stem)
    if match is None:
        return None
    gender, number, letter, _utterance = match.groups()
    label, emotion = _LABELS[letter]
    return Utterance(
        id=f"{NAME}/{path.stem}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/{gender}{number}",
        gender="female" if gender == "F" else "male",
        emotion=emotion,
        original_label=label,
        extra={"code": letter},
    )


def load(root: Path) -> list[Utterance]:
    """All ShEMO clips under ``root`` (the folder holding ``female/`` and ``male/``)."""
    return scan_corpus(
        root,
        parse,
        corpus="ShEMO",
        pattern="GSSENN.wav/.flac, e.g. F01A01.wav",
        hint="point --source shemo=PATH at the ShEMO folder holding female/ and male/",
    )


SPEC = register_corpus(
    CorpusSpec(
        NAME, LANGUAGE, "ShEMO: 87 Persian radio-play speakers, 6 emotions (Mohamad Nezami 2019)", load
    )
)
