"""RAVDESS speech loader (Livingstone & Russo, 2018; CC BY-NC-SA 4.0).

The Ryerson Audio-Visual Database of Emotional Speech and Song: 24 North-American English
actors (odd numbers male, even female), two statements, eight emotions. Only the audio-only
speech part is loaded. File names are ``MM-VC-EE-II-SS-RR-AA.wav`` inside ``Actor_AA/``:

- ``MM`` modality: 01 full AV, 02 video only, 03 audio only (kept)
- ``VC`` vocal channel: 01 speech (kept), 02 song
- ``EE`` emotion: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised
- ``II`` intensity 01 normal / 02 strong; ``SS`` statement 01 "Kids are talking by the door",
  02 "Dogs are sitting by the door"; ``RR`` repetition 01/02; ``AA`` actor 01-24.

Livingstone SR, Russo FA (2018) PLoS ONE 13(5): e0196391. https://zenodo.org/record/1188976
"""

from __future__ import annotations

import re
from pathlib import Path

from serdemo.corpora.base import CorpusSpec, Utterance, register_corpus, scan_corpus

NAME = "ravdess"
LANGUAGE = "en"

_PATTERN = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_LABELS = {  # code -> (corpus label, five-class emotion or None)
    "01": ("neutral", "neutral"),
    "02": ("calm", None),
    "03": ("happy", "happiness"),
    "04": ("sad", "sadness"),
    "05": ("angry", "anger"),
    "06": ("fearful", "fear"),
    "07": ("disgust", None),
    "08": ("surprised", None),
}
_SPEECH = ("03", "01")  # audio-only modality, speech channel
_BINARY = ("01", "02")  # intensity, statement and repetition codes


def parse(path: Path) -> Utterance | None:
    """Parse ``path`` into an utterance; ``None`` unless it is an audio-only speech clip."""
    match = _PATTERN.match(path.stem)
    if match is None:
        return None
    modality, channel, code, intensity, statement, repetition, actor = match.groups()
    if (modality, channel) != _SPEECH or code not in _LABELS or not 1 <= int(actor) <= 24:
        return None
    if not all(part in _BINARY for part in (intensity, statement, repetition)):
        return None
    label, emotion = _LABELS[code]
    return Utterance(
        id=f"{NAME}/{path.stem}",
        path=path,
        corpus=NAME,
        language=LANGUAGE,
        speaker=f"{NAME}/{actor}",
        gender="male" if int(actor) % 2 else "female",
        emotion=emotion,
        original_label=label,
        extra={"code": code, "intensity": "strong" if intensity == "02" else "normal", "text": statement},
    )


def load(root: Path) -> list[Utterance]:
    """All audio-only speech clips under ``root`` (the folder holding ``Actor_01`` .. ``Actor_24``)."""
    return scan_corpus(
        root,
        parse,
        corpus="RAVDESS",
        pattern="03-01-EE-II-SS-RR-AA.wav/.flac",
        hint="point --source ravdess=PATH at the folder holding Actor_01..Actor_24",
    )


SPEC = register_corpus(
    CorpusSpec(
        NAME, LANGUAGE, "RAVDESS speech: 24 English actors, 8 emotions (Livingstone & Russo 2018)", load
    )
)
