"""The one emotion scheme every corpus is mapped onto."""

from __future__ import annotations

from enum import Enum


class Emotion(str, Enum):
    """The five emotions of Agarla et al. (2023), in the order of the classifier's outputs."""

    ANGER = "anger"
    FEAR = "fear"
    HAPPINESS = "happiness"
    NEUTRAL = "neutral"
    SADNESS = "sadness"


EMOTIONS: tuple[str, ...] = tuple(e.value for e in Emotion)
# One fixed colour per emotion everywhere (app plots, Explore figures): Okabe & Ito's colour-blind-safe
# palette, so "before" and "after" figures read the same way; legends always name each emotion too.
EMOTION_COLORS: dict[str, str] = {
    "anger": "#D55E00",
    "fear": "#CC79A7",
    "happiness": "#E69F00",
    "neutral": "#7A7A7A",
    "sadness": "#0072B2",
}


class UnknownEmotionError(ValueError):
    """Raised for a label outside the scheme."""


def emotion_index(name: str, classes: tuple[str, ...] = EMOTIONS) -> int:
    """Position of ``name`` in ``classes``.

    Example:
        >>> emotion_index("fear")
        1
    """
    try:
        return classes.index(name)
    except ValueError:
        raise UnknownEmotionError(f"unknown emotion {name!r}: use one of {', '.join(classes)}") from None


def parse_classes(text: str) -> tuple[str, ...]:
    """Parse a comma-separated class list such as ``"anger,happiness,neutral,sadness"``.

    Keeps the canonical order of :data:`EMOTIONS` so outputs are comparable across runs.
    """
    names = {part.strip() for part in text.split(",") if part.strip()}
    for name in names:
        emotion_index(name)
    if len(names) < 2:
        raise UnknownEmotionError("give at least two classes, e.g. anger,happiness,neutral,sadness")
    return tuple(e for e in EMOTIONS if e in names)
