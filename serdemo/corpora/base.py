"""The utterance record every corpus loader returns, and the corpus registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from serdemo.labels import EMOTIONS


@dataclass(frozen=True)
class Utterance:
    """One audio clip with what its corpus says about it.

    ``emotion`` is one of :data:`serdemo.labels.EMOTIONS`, or ``None`` where the corpus label has no
    place in the five-class scheme (kept so users can see what was dropped) or the clip is unlabeled.
    """

    id: str  # unique within the corpus, e.g. "emodb/03a01Fa"
    path: Path
    corpus: str  # registry name, e.g. "emodb"
    language: str  # ISO 639-1 code, e.g. "de"
    speaker: str  # corpus-qualified so speakers never collide across corpora, e.g. "emodb/03"
    gender: str | None  # "female" / "male" where the corpus documents it
    emotion: str | None
    original_label: str  # the corpus's own label, before mapping
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.emotion is not None and self.emotion not in EMOTIONS:
            raise ValueError(f"{self.id}: emotion {self.emotion!r} is not one of {EMOTIONS}")


class CorpusError(ValueError):
    """A corpus root that cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class CorpusSpec:
    """How to load one corpus: its name, language and a function from root folder to utterances."""

    name: str
    language: str
    description: str
    load: Callable[[Path], list[Utterance]]


CORPORA: dict[str, CorpusSpec] = {}


def register_corpus(spec: CorpusSpec) -> CorpusSpec:
    """Add ``spec`` to :data:`CORPORA`; a second corpus with the same name is a programming error."""
    if spec.name in CORPORA:
        raise ValueError(f"corpus {spec.name!r} registered twice")
    CORPORA[spec.name] = spec
    return spec
