"""URDU loader (Latif et al., 2018; free for research, see its repository).

URDU: 400 utterances of 38 speakers (27 male, 11 female) from Urdu TV talk shows, in folders
``Angry/``, ``Happy/``, ``Neutral/``, ``Sad/``. File names are ``S<G><X>_F<Y>_<E><Z>.wav``, e.g.
``SM1_F10_A01.wav``: gender M/F and speaker number, file number, emotion letter (A angry,
H happy, N neutral, S sad) and clip number. Numbers are not zero-padded consistently
(``SM20_F8_N012``, ``SM5_F72_N0100``), so any digit count is accepted.

Latif S, Qayyum A, Usman M, Qadir J (2018) "Cross lingual speech emotion recognition: Urdu vs.
Western languages", Proc. FIT, 88-93. https://github.com/siddiquelatif/URDU-Dataset
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "urdu"
LANGUAGE = "ur"

_LABELS = {  # letter -> (corpus label, five-class emotion)
    "A": ("angry", "anger"),
    "H": ("happy", "happiness"),
    "N": ("neutral", "neutral"),
    "S": ("sad", "sadness"),
}
_PATTERN = re.compile(r"^S([MF])(\d+)_F(\d+)_([AHNS])(\d+)$")


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` (``SM1_F10_A01``) into an utterance, or ``None`` outside the scheme."""
    match = _PATTERN.match(path.stem)
    if match is None:
        return None
    gender, number, _file, letter, _clip = match.groups()
    label, emotion = _LABELS[letter]
    return Utterance(
        id=f"{NAME}/{path.stem}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/S{gender}{int(number)}",
        gender="female" if gender == "F" else "male",
        emotion=emotion,
        original_label=label,
        extra={"code": letter},
    )


def load(root: Path) -> list[Utterance]:
    """All URDU clips under ``root`` (the folder holding ``Angry/``, ``Happy/``, ...)."""
    return scan_corpus(
        root,
        parse,
        corpus="URDU",
        pattern="SGX_FY_EZ.wav/.flac, e.g. SM1_F10_A01.wav",
        hint="point --source urdu=PATH at the URDU folder holding Angry/, Happy/, Neutral/, Sad/",
    )


SPEC = register_corpus(
    CorpusSpec(NAME, LANGUAGE, "URDU: 38 Urdu talk-show speakers, 4 emotions (Latif et al. 2018)", load)
)
