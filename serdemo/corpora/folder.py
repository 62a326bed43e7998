"""Generic loader for your own recordings: emotion folders or a CSV of labels.

Two layouts are read:

1. Folders named after emotions: ``<root>/<emotion>/<file>.wav``, optionally
   ``<root>/<emotion>/<speaker>/<file>.wav``. Audio directly in ``<root>`` or in
   ``<root>/unlabeled/`` is unlabeled (kept for semi-supervised adaptation). Folder names are
   matched case-insensitively against the five classes and common adjectives (``angry``,
   ``happy``, ``sad``, ``fearful``); any other folder name is kept as an unmapped label.
2. A CSV, ``<root>/labels.csv`` or a ``.csv`` path given as root, with columns ``path``,
   ``emotion`` and optionally ``speaker`` and ``language`` (ISO 639-1). An empty emotion means
   unlabeled. Relative paths resolve against the CSV's folder.

Without a speaker the clip's speaker is ``folder/unknown``; :func:`serdemo.splits.speaker_split`
then cannot keep speakers apart and says so. Without a language it is ``und`` (undetermined).

Example:
    >>> from serdemo.corpora import load_corpus
    >>> utterances = load_corpus("folder", "my_recordings/labels.csv")  # doctest: +SKIP

"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

from serdemo.corpora.base import (
    AUDIO_SUFFIXES,
    CorpusError,
    CorpusSpec,
    Utterance,
    audio_files,
    check_root,
    register_corpus,
)
from serdemo.labels import EMOTIONS

NAME = "folder"
LANGUAGE = "und"  # ISO 639-2 "undetermined": the loader cannot know what language you recorded
CSV_NAME = "labels.csv"

_SYNONYMS = {"angry": "anger", "happy": "happiness", "sad": "sadness", "fearful": "fear", "afraid": "fear"}
_UNLABELED_FOLDERS = {"unlabeled", "unlabelled"}
_UNKNOWN_SPEAKER = "unknown"
_HINT = (
    f"point --source folder=PATH at a folder of <emotion>/ subfolders, a folder holding {CSV_NAME}, "
    "or a CSV file with columns path,emotion[,speaker,language]"
)
_log = logging.getLogger(__name__)


def to_emotion(label: str) -> str | None:
    """Map a user label to its five-class emotion (``"Angry"`` -> ``"anger"``), or ``None``."""
    key = label.strip().lower()
    return key if key in EMOTIONS else _SYNONYMS.get(key)


def load(root: Path) -> list[Utterance]:
    """Utterances from a CSV file, a folder holding ``labels.csv``, or emotion folders."""
    path = Path(root).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise CorpusError(f"folder corpus root {path} is a file but not a .csv; {_HINT}")
        return _load_csv(path.resolve())
    folder = check_root(path, "folder corpus", _HINT)
    if (folder / CSV_NAME).is_file():
        return _load_csv(folder / CSV_NAME)
    return _load_tree(folder)


def _utterance(
    path: Path, key: str, label: str, speaker: str = _UNKNOWN_SPEAKER, language: str = LANGUAGE
) -> Utterance:
    return Utterance(
        id=f"{NAME}/{key}",
        path=path,
        corpus=NAME,
        language=language,
        speaker=f"{NAME}/{speaker}",
        gender=None,
        emotion=to_emotion(label),
        original_label=label,
    )


def _load_tree(folder: Path) -> list[Utterance]:
    utterances = []
    for path in audio_files(folder):
        parts = path.relative_to(folder).parts
        label = "" if len(parts) == 1 or parts[0].lower() in _UNLABELED_FOLDERS else parts[0]
        speaker = parts[1] if len(parts) >= 3 else _UNKNOWN_SPEAKER
        key = path.relative_to(folder).with_suffix("").as_posix()
        utterances.append(_utterance(path, key, label, speaker))
    if not utterances:
        raise CorpusError(f"no .wav/.flac files and no {CSV_NAME} under {folder}; {_HINT}")
    _warn_unmapped(utterances, folder)
    return sorted(utterances, key=lambda u: u.id)


def _load_csv(csv_path: Path) -> list[Utterance]:
    base = csv_path.parent
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: Excel writes a BOM
        reader = csv.DictReader(handle)
        columns = [name.strip().lower() for name in reader.fieldnames or []]
        if "path" not in columns or "emotion" not in columns:
            raise CorpusError(
                f"{csv_path} needs a header with columns path,emotion (optional speaker,language); "
                f"found {columns or 'no header'}"
            )
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    if not rows:
        raise CorpusError(f"{csv_path} has a header but no rows; add one row per clip")

    utterances, seen, missing = [], {}, []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        if not row["path"]:
            raise CorpusError(f"{csv_path} line {line}: empty path")
        path = (base / row["path"]).resolve()
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            raise CorpusError(f"{csv_path} line {line}: {row['path']} is not a .wav or .flac file")
        if not path.is_file():
            missing.append(f"line {line}: {row['path']}")
            continue
        if path in seen:
            raise CorpusError(f"{csv_path}: {row['path']} is listed twice (lines {seen[path]} and {line})")
        seen[path] = line
        key = path.relative_to(base).with_suffix("").as_posix() if path.is_relative_to(base) else str(path)
        speaker = row.get("speaker") or _UNKNOWN_SPEAKER
        utterances.append(_utterance(path, key, row["emotion"], speaker, row.get("language") or LANGUAGE))
    if missing:
        shown = "; ".join(missing[:5]) + (f"; and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CorpusError(
            f"{csv_path}: {len(missing)} listed files do not exist ({shown}); "
            "paths are relative to the CSV's folder"
        )
    _warn_unmapped(utterances, csv_path)
    return sorted(utterances, key=lambda u: u.id)


def _warn_unmapped(utterances: list[Utterance], source: Path) -> None:
    # a typo such as "angr" would otherwise vanish silently when unmapped labels are dropped
    unmapped = Counter(u.original_label for u in utterances if u.emotion is None and u.original_label)
    if unmapped:
        labels = ", ".join(f"{label!r} x{count}" for label, count in sorted(unmapped.items()))
        _log.warning(
            "%s: labels outside %s are not used for training: %s", source, "/".join(EMOTIONS), labels
        )


SPEC = register_corpus(
    CorpusSpec(
        NAME, LANGUAGE, "your own clips: <emotion>/ folders or a CSV path,emotion,speaker,language", load
    )
)
