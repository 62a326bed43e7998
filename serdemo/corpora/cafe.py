"""CaFE loader (Gournay, Lahaie & Lefebvre, 2018; CC BY-NC-SA 4.0).

Canadian French Emotional speech dataset: 12 actors (odd numbers male, even female), 6
sentences, 6 emotions at two intensities plus neutral: 936 clips. The original archive sorts
files into ``<Emotion>/<Faible|Fort>/`` (``Neutre/`` has no intensity level); folder names are
accented and mangled by some unzip tools (``ColŠre``), so only file names are trusted. Names are
``<actor>-<emotion>-<intensity>-<sentence>.wav``, e.g. ``01-C-1-1.wav``: emotion C colère/anger,
D dégoût/disgust, J joie/happiness, N neutre/neutral, P peur/fear, S surprise, T tristesse/
sadness; intensity 1 faible (mild), 2 fort (strong); sentence 1-6.

Gournay P, Lahaie O, Lefebvre R (2018) "A Canadian French emotional speech dataset", Proc. ACM
Multimedia Systems, 399-402. https://zenodo.org/record/1478765
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "cafe"
LANGUAGE = "fr"

_LABELS = {  # letter -> (corpus label, five-class emotion or None)
    "C": ("colère", "anger"),
    "D": ("dégoût", None),
    "J": ("joie", "happiness"),
    "N": ("neutre", "neutral"),
    "P": ("peur", "fear"),
    "S": ("surprise", None),
    "T": ("tristesse", "sadness"),
}
_PATTERN = re.compile(r"^(0[1-9]|1[0-2])-([CDJNPST])-([12])-([1-6])$")


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` (``01-C-1-1``) into an utterance, or ``None`` outside the scheme."""
    match = _PATTERN.match(path.stem)
    if match is None:
        return None
    actor, letter, intensity, sentence = match.groups()
    label, emotion = _LABELS[letter]
    return Utterance(
        id=f"{NAME}/{path.stem}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/{actor}",
        gender="male" if int(actor) % 2 else "female",
        emotion=emotion,
        original_label=label,
        extra={"code": letter, "intensity": "strong" if intensity == "2" else "mild", "text": sentence},
    )


def load(root: Path) -> list[Utterance]:
    """All CaFE clips under ``root`` (the unzipped ``CaFE_48k`` or ``CaFE_192k`` folder)."""
    return scan_corpus(
        root,
        parse,
        corpus="CaFE",
        pattern="AA-E-I-S.wav/.flac, e.g. 01-C-1-1.wav",
        hint="point --source cafe=PATH at the unzipped CaFE_48k folder (Colère/, Neutre/, ...)",
    )


SPEC = register_corpus(
    CorpusSpec(NAME, LANGUAGE, "CaFE: 12 Canadian-French actors, 7 emotions (Gournay et al. 2018)", load)
)
