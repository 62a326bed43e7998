"""EMO-DB loader (Burkhardt et al., 2005; free for research, TU Berlin).

The Berlin Database of Emotional Speech: 10 German actors (male 03 10 11 12 15, female 08 09
13 14 16), 10 everyday sentences, 7 emotions, 535 clips in one flat ``wav/`` folder. File names
are ``SSTTTEV``, e.g. ``03a01Fa.wav``: speaker ``SS``, text code ``TTT`` (a01..b10), emotion
letter ``E`` (W Wut/anger, L Langeweile/boredom, E Ekel/disgust, A Angst/fear, F Freude/
happiness, T Trauer/sadness, N neutral) and version letter ``V``.

Burkhardt F, Paeschke A, Rolfes M, Sendlmeier W, Weiss B (2005) "A database of German emotional
speech", Proc. Interspeech, 1517-1520. http://emodb.bilderbar.info/
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "emodb"
LANGUAGE = "de"

_GENDERS = {
    "03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
    "12": "male", "13": "female", "14": "female", "15": "male", "16": "female",
}  # fmt: skip
_LABELS = {  # letter -> (corpus label, five-class emotion or None)
    "W": ("anger", "anger"),
    "L": ("boredom", None),
    "E": ("disgust", None),
    "A": ("fear", "fear"),
    "F": ("happiness", "happiness"),
    "T": ("sadness", "sadness"),
    "N": ("neutral", "neutral"),
}
_PATTERN = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])$")


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` into an utterance; ``None`` outside the ``SSTTTEV`` scheme."""
    match = _PATTERN.match(path.stem)
    if match is None or match.group(1) not in _GENDERS:
        return None
    speaker, text, letter, _version = match.groups()
    label, emotion = _LABELS[letter]
    return Utterance(
        id=f"{NAME}/{path.stem}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/{speaker}",
        gender=_GENDERS[speaker],
        emotion=emotion,
        original_label=label,
        extra={"code": letter, "text": text},
    )


def load(root: Path) -> list[Utterance]:
    """All EMO-DB clips under ``root`` (the download, or its ``wav/`` folder)."""
    return scan_corpus(
        root,
        parse,
        corpus="EMO-DB",
        pattern="SSTTTEV.wav/.flac, e.g. 03a01Fa.wav",
        hint="point --source emodb=PATH at the EMO-DB folder holding wav/ or the 535 clips",
    )


SPEC = register_corpus(
    CorpusSpec(NAME, LANGUAGE, "EMO-DB: 10 German actors, 7 emotions (Burkhardt et al. 2005)", load)
)
