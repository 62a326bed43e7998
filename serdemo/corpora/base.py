"""The utterance record every corpus loader returns, and the corpus registry."""

from __future__ import annotations

import logging
import os
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


# --- Shared helpers for the corpus modules (added with the loaders) ---------------------------------

AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")  # originals are WAV; our shared copies are FLAC

_log = logging.getLogger(__name__)


def is_unmapped(utterance: Utterance) -> bool:
    """Tell whether the corpus gave a label that has no place in the five classes (e.g. "calm").

    Unlabeled clips (``original_label == ""``) are not unmapped: they are what semi-supervised
    adaptation feeds on, so :func:`serdemo.corpora.load_corpus` keeps them.
    """
    return utterance.emotion is None and utterance.original_label != ""


def check_root(root: str | Path, corpus: str, hint: str) -> Path:
    """``root`` as an absolute folder, or :class:`CorpusError` saying what to point at instead."""
    path = Path(root).expanduser()
    if not path.exists():
        raise CorpusError(f"{corpus} root {path} does not exist; {hint}")
    if not path.is_dir():
        raise CorpusError(f"{corpus} root {path} is not a folder; {hint}")
    return path.resolve()


def audio_files(root: Path) -> list[Path]:
    """Every ``.wav``/``.flac`` file below ``root``, in a fixed order.

    Hidden files and folders are skipped: macOS copies carry ``._name.wav`` resource forks that
    look like audio but are not.
    """
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(AUDIO_SUFFIXES):
                found.append(Path(folder) / name)
    return found


def scan_corpus(
    root: str | Path,
    parse: Callable[[Path], Utterance | None],
    *,
    corpus: str,
    pattern: str,
    hint: str,
) -> list[Utterance]:
    """Parse every audio file under ``root`` with ``parse``; files it rejects are skipped.

    Args:
        root: the corpus folder as downloaded (any nesting).
        parse: the corpus's file-name parser; returns ``None`` for names outside its scheme.
        corpus: display name for messages, e.g. ``"RAVDESS"``.
        pattern: the accepted file names, for the "nothing found" message.
        hint: what the user should do, e.g. ``"point --source ravdess=PATH at ..."``.

    Returns:
        Utterances sorted by id. Where two files give the same id (a WAV and a FLAC copy, or
        the nested duplicate folder some mirrors ship) the first path in sorted order wins.

    Raises:
        CorpusError: ``root`` is missing, not a folder, or holds no file of the corpus.

    """
    folder = check_root(root, corpus, hint)
    by_id: dict[str, Utterance] = {}
    duplicates = 0
    for path in audio_files(folder):
        utterance = parse(path)
        if utterance is None:
            continue
        if utterance.id in by_id:
            duplicates += 1
            continue
        by_id[utterance.id] = utterance
    if not by_id:
        raise CorpusError(f"no {corpus} files ({pattern}) under {folder}; {hint}")
    if duplicates:
        _log.warning("%s: skipped %d duplicate copies of clips under %s", corpus, duplicates, folder)
    return sorted(by_id.values(), key=lambda u: u.id)
