"""What the annotation store holds (clips, labels, model versions), the limits on it, and its checks."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from serdemo.audio import AudioError

MAX_AUDIO_BYTES = 64 << 20  # one clip's file; 60 s of 48 kHz stereo 24-bit WAV is ~17 MB
MAX_ANNOTATOR_CHARS = 64
MAX_TEXT_CHARS = 256  # names, speakers, sessions, version ids in imports
MAX_IMPORT_RECORDS = 200_000
MAX_IMPORT_BYTES = 64 << 20  # a label file; 200k records of ~300 bytes

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # ISO 639 code, optional BCP 47 subtags


class LabelKind(str, Enum):
    """Who produced a label (audformat's RaterType: human / machine / ground truth)."""

    HUMAN = "human"  # a user of the app
    MACHINE = "machine"  # a pseudo-label from a model version; never overrides a human or gold label
    GOLD = "gold"  # a corpus's own ground truth; only by import (the app never stores target-corpus labels)


class ClipSource(str, Enum):
    """How a clip entered the store; corpus imports use ``"corpus:<name>"`` instead."""

    UPLOAD = "upload"  # one clip from the Predict tab or the /add_to_pool API (a recording included)
    BULK = "bulk"  # the Label tab's bulk add (files or zips)


@dataclass(frozen=True)
class Clip:
    """One audio clip the store owns (its audio is a copy under ``<root>/audio``)."""

    id: int  # local to this store; ``sha256`` is the identity across stores
    sha256: str  # of the file's bytes
    path: Path  # the store's copy: <root>/audio/<sha[:2]>/<sha>.<ext>
    language: str  # ISO 639-1 code, e.g. "it"
    source: str  # a ClipSource value or "corpus:<name>"
    duration: float  # seconds
    added_at: str  # ISO 8601, UTC
    original_name: str | None = None  # the file name the user gave, for display
    speaker: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class Label:
    """One row of the append-only label log; a retraction row has ``emotion=None`` and ``retracts`` set."""

    id: int  # local insertion order
    uid: str  # identity across stores, so importing twice adds nothing
    clip_id: int
    emotion: str | None
    kind: str  # a LabelKind value
    annotator: str  # user name, or the model version for machine labels
    confidence: float | None  # the model's probability for machine labels
    model_version: str | None
    created_at: str  # ISO 8601, UTC
    retracts: str | None = None  # uid of the label this row undoes


@dataclass(frozen=True)
class ModelVersion:
    """A trained head (and its config) the app can serve; exactly one is active once any exists."""

    id: str  # "v<n>-<random>": readable, and unique across stores so imported labels never collide
    created_at: str
    parent: str | None  # the version it was adapted from
    config: dict[str, Any]
    metrics: dict[str, Any]
    weights_path: str | None
    active: bool


@dataclass(frozen=True)
class ImportReport:
    """What :meth:`AnnotationStore.import_file` added, and what it skipped and why."""

    new_clips: int
    new_labels: int
    notes: tuple[str, ...] = ()


# One flat record per label (or per unlabeled clip) in exports; the same fields for CSV and JSONL.
EXPORT_FIELDS: tuple[str, ...] = (
    "sha256",
    "path",
    "language",
    "source",
    "duration",
    "added_at",
    "original_name",
    "speaker",
    "session",
    "label_uid",
    "emotion",
    "kind",
    "annotator",
    "confidence",
    "model_version",
    "created_at",
    "retracts",
)
CLIP_FIELDS = EXPORT_FIELDS[:9]
LABEL_FIELDS = EXPORT_FIELDS[9:]


# -- validation and row conversion -----------------------------------------------------------


def check_language(language: str) -> str:
    """``language`` if it is an ISO 639 code (optionally with BCP 47 subtags), else ValueError."""
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        raise ValueError(f"language {language!r} is not an ISO 639-1 code: use e.g. 'it', 'de', 'en'")
    return language


def check_source(source: str) -> str:
    """A :class:`ClipSource` value or ``corpus:<name>``, else ValueError."""
    values = {s.value for s in ClipSource}
    if isinstance(source, ClipSource):
        return source.value
    if source in values or (isinstance(source, str) and re.fullmatch(r"corpus:[\w.-]+", source)):
        return source
    raise ValueError(f"source {source!r}: use one of {', '.join(sorted(values))} or 'corpus:<name>'")


def check_kind(kind: LabelKind | str) -> str:
    """A :class:`LabelKind` value, else ValueError."""
    try:
        return LabelKind(kind).value
    except ValueError:
        raise ValueError(f"label kind {kind!r}: use one of {', '.join(k.value for k in LabelKind)}") from None


def check_annotator(annotator: str) -> str:
    """A short printable annotator name, stripped, else ValueError."""
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError("annotator must be a non-empty name, e.g. the user's name or a model version")
    annotator = annotator.strip()
    if len(annotator) > MAX_ANNOTATOR_CHARS or not annotator.isprintable():
        raise ValueError(
            f"annotator name must be at most {MAX_ANNOTATOR_CHARS} printable characters, "
            f"got {len(annotator)}: use a short name"
        )
    return annotator


def check_text(value: Any, what: str) -> str | None:
    """An optional short free-text field (file name, speaker, session)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"{what} must be text of at most {MAX_TEXT_CHARS} characters")
    return value


def read_bounded(path: Path, name: str) -> bytes:
    """A file's bytes, refusing a missing one or one over :data:`MAX_AUDIO_BYTES` before reading it."""
    try:
        size = path.stat().st_size
    except OSError:
        raise AudioError(f"{Path(name).name}: no such audio file") from None
    if not path.is_file():
        raise AudioError(f"{Path(name).name}: not a file")
    if size > MAX_AUDIO_BYTES:
        raise AudioError(f"{Path(name).name}: {size >> 20} MB is over the {MAX_AUDIO_BYTES >> 20} MB limit")
    with path.open("rb") as handle:
        return handle.read(MAX_AUDIO_BYTES + 1)


def clip_from_row(row: sqlite3.Row) -> Clip:
    """A ``clips`` row as a :class:`Clip`."""
    return Clip(
        id=row["id"],
        sha256=row["sha256"],
        path=Path(row["path"]),
        language=row["language"],
        source=row["source"],
        duration=row["duration"],
        added_at=row["added_at"],
        original_name=row["original_name"],
        speaker=row["speaker"],
        session=row["session"],
    )


def label_from_row(row: sqlite3.Row) -> Label:
    """A ``labels`` row as a :class:`Label`."""
    return Label(
        id=row["id"],
        uid=row["uid"],
        clip_id=row["clip_id"],
        emotion=row["emotion"],
        kind=row["kind"],
        annotator=row["annotator"],
        confidence=row["confidence"],
        model_version=row["model_version"],
        created_at=row["created_at"],
        retracts=row["retracts"],
    )


def version_from_row(row: sqlite3.Row) -> ModelVersion:
    """A ``model_versions`` row as a :class:`ModelVersion`."""
    return ModelVersion(
        id=row["id"],
        created_at=row["created_at"],
        parent=row["parent"],
        config=json.loads(row["config"]),
        metrics=json.loads(row["metrics"]),
        weights_path=row["weights_path"],
        active=bool(row["active"]),
    )


def utc_now() -> str:
    """Now, as the store writes times: ISO 8601, UTC, microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def to_json(value: dict[str, Any], what: str) -> str:
    """``value`` as sorted JSON; ValueError naming ``what`` if it is not a JSON-ready dict."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{what} is not JSON-serializable ({error}): pass plain numbers and strings"
        ) from None
