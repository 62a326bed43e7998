"""TESS loader (Dupuis & Pichora-Fuller, 2010; CC BY-NC-ND 4.0, University of Toronto).

Toronto Emotional Speech Set: 2 female English speakers, OAF (aged 64) and YAF (aged 26), say
"Say the word ___" for 200 target words in 7 emotions: 2,800 clips. Folders are
``<speaker>_<emotion>/`` (``OAF_angry``, ``YAF_pleasant_surprised``, ...) and files
``<speaker>_<word>_<emotion>.wav`` (``OAF_back_angry.wav``). Mirrors are inconsistent about
case and about pleasant surprise (``OAF_Sad``, ``OAF_Pleasant_surprise``; files use ``ps``),
so the emotion token is matched case-insensitively and ``ps`` / ``pleasant_surprise(d)`` are
one label. The target word is kept as ``extra["text"]``: with only two speakers a
speaker-independent split is impossible, and :mod:`serdemo.splits` splits TESS by word instead.

Dupuis K, Pichora-Fuller MK (2010) Toronto emotional speech set (TESS), Scholars Portal
Dataverse, https://doi.org/10.5683/SP2/E8H2MF
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "tess"
LANGUAGE = "en"

_LABELS = {  # lower-cased token -> (corpus label, five-class emotion or None)
    "angry": ("angry", "anger"),
    "disgust": ("disgust", None),
    "fear": ("fear", "fear"),
    "happy": ("happy", "happiness"),
    "neutral": ("neutral", "neutral"),
    "sad": ("sad", "sadness"),
    "ps": ("pleasant_surprise", None),
    "pleasant_surprise": ("pleasant_surprise", None),
    "pleasant_surprised": ("pleasant_surprise", None),
}
_PATTERN = re.compile(
    r"^(OAF|YAF)_([a-z]+)_(angry|disgust|fear|happy|neutral|sad|ps|pleasant_surprised?)$", re.IGNORECASE
)


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` (``OAF_back_angry``) into an utterance, or ``None`` outside the scheme."""
    match = _PATTERN.match(path.stem)
    if match is None:
        return None
    speaker, word = match.group(1).upper(), match.group(2).lower()
    label, emotion = _LABELS[match.group(3).lower()]
    return Utterance(
        # the id is normalised so a case variant of the same clip in another mirror is one clip
        id=f"{NAME}/{speaker}_{word}_{label}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/{speaker}",
        gender="female",
        emotion=emotion,
        original_label=label,
        extra={"text": word},
    )


def load(root: Path) -> list[Utterance]:
    """All TESS clips under ``root`` (the folder holding ``OAF_angry`` ... ``YAF_sad``)."""
    return scan_corpus(
        root,
        parse,
        corpus="TESS",
        pattern="OAF_word_emotion.wav/.flac, e.g. OAF_back_angry.wav",
        hint="point --source tess=PATH at the folder holding OAF_angry, ..., YAF_sad",
    )


SPEC = register_corpus(
    CorpusSpec(NAME, LANGUAGE, "TESS: 2 female English speakers, 200 words, 7 emotions (Dupuis 2010)", load)
)
