"""SAVEE loader (Haq & Jackson, 2009; free for research, University of Surrey).

Surrey Audio-Visual Expressed Emotion: 4 male British-English speakers (DC, JE, JK, KL),
7 emotions, 480 clips (15 per emotion, 30 neutral, per speaker). The original ``AudioData/``
has one folder per speaker with names like ``DC/a01.wav``; common mirrors flatten it to
``DC_a01.wav``. Both are read. Codes: a anger, d disgust, f fear, h happiness, n neutral,
sa sadness, su surprise; then a two-digit sentence number.

Haq S, Jackson PJB (2009) "Speaker-dependent audio-visual emotion recognition", Proc. AVSP,
53-58. http://kahlan.eps.surrey.ac.uk/savee/
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "savee"
LANGUAGE = "en"

_SPEAKERS = ("DC", "JE", "JK", "KL")
_LABELS = {  # code -> (corpus label, five-class emotion or None)
    "a": ("anger", "anger"),
    "d": ("disgust", None),
    "f": ("fear", "fear"),
    "h": ("happiness", "happiness"),
    "n": ("neutral", "neutral"),
    "sa": ("sadness", "sadness"),
    "su": ("surprise", None),
}
_FLAT = re.compile(r"^(DC|JE|JK|KL)_(a|d|f|h|n|sa|su)(\d\d)$")
_IN_SPEAKER_FOLDER = re.compile(r"^(a|d|f|h|n|sa|su)(\d\d)$")


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` (``DC_a01`` or ``DC/a01``) into an utterance, or ``None`` outside the scheme."""
    if match := _FLAT.match(path.stem):
        speaker, code, number = match.groups()
    elif (match := _IN_SPEAKER_FOLDER.match(path.stem)) and path.parent.name in _SPEAKERS:
        speaker, (code, number) = path.parent.name, match.groups()
    else:
        return None
    label, emotion = _LABELS[code]
    return Utterance(
        id=f"{NAME}/{speaker}_{code}{number}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/{speaker}",
        gender="male",
        emotion=emotion,
        original_label=label,
        extra={"code": code},
    )


def load(root: Path) -> list[Utterance]:
    """All SAVEE clips under ``root`` (``AudioData/`` with DC/JE/JK/KL, or a flat folder)."""
    return scan_corpus(
        root,
        parse,
        corpus="SAVEE",
        pattern="DC/a01.wav or DC_a01.wav, speakers DC JE JK KL",
        hint="point --source savee=PATH at AudioData/ (holding DC, JE, JK, KL) or the flat folder",
    )


SPEC = register_corpus(
    CorpusSpec(
        NAME, LANGUAGE, "SAVEE: 4 male British-English speakers, 7 emotions (Haq & Jackson 2009)", load
    )
)
