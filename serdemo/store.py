"""The annotation store: target-language clips, their labels and model versions, in one SQLite file."""

from __future__ import annotations

import csv
import hashlib
import json
import operator
import os
import re
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any

from serdemo.audio import AudioError, decode_bytes
from serdemo.labels import EMOTIONS, emotion_index

SCHEMA_VERSION = 2
DB_NAME = "store.sqlite"
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another process's transaction before giving up
MAX_AUDIO_BYTES = 64 << 20  # one clip's file; 60 s of 48 kHz stereo 24-bit WAV is ~17 MB
MAX_ANNOTATOR_CHARS = 64
MAX_TEXT_CHARS = 256  # names, speakers, sessions, version ids in imports
MAX_IMPORT_RECORDS = 200_000
MAX_IMPORT_BYTES = 64 << 20  # a label file; 200k records of ~300 bytes
_CLOCK_SKEW_S = 300  # an imported time further in the future than this is the server's time instead

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # ISO 639 code, optional BCP 47 subtags
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class LabelKind(str, Enum):
    """Who produced a label (audformat's RaterType: human / machine / ground truth)."""

    HUMAN = "human"  # a user of the app
    MACHINE = "machine"  # a pseudo-label from a model version; never overrides a human or gold label
    GOLD = "gold"  # a corpus's own ground truth, imported with the clip


class ClipSource(str, Enum):
    """How a clip entered the store; corpus imports use ``"corpus:<name>"`` instead."""

    UPLOAD = "upload"
    MICROPHONE = "microphone"
    BULK = "bulk"
    EXAMPLE = "example"


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


_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clips (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    language TEXT NOT NULL,
    source TEXT NOT NULL,
    duration REAL NOT NULL,
    added_at TEXT NOT NULL,
    original_name TEXT,
    speaker TEXT,
    session TEXT
);
CREATE INDEX clips_language ON clips(language);
CREATE TABLE model_versions (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    parent TEXT REFERENCES model_versions(id),
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    weights_path TEXT,
    active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
);
-- At most one active row; add_model_version and activate keep it at exactly one.
CREATE UNIQUE INDEX one_active_version ON model_versions(active) WHERE active = 1;
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    clip_id INTEGER NOT NULL REFERENCES clips(id),
    emotion TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('human', 'machine', 'gold')),
    annotator TEXT NOT NULL,
    confidence REAL,
    model_version TEXT,  -- no foreign key: imported labels may name a version of another store
    created_at TEXT NOT NULL,
    retracts TEXT REFERENCES labels(uid),
    CHECK ((emotion IS NULL) = (retracts IS NOT NULL))
);
CREATE INDEX labels_clip ON labels(clip_id);
CREATE INDEX labels_annotator ON labels(annotator);
CREATE INDEX labels_retracts ON labels(retracts);
-- Labels still in force: not retraction rows and not retracted.
CREATE VIEW live_labels AS
    SELECT l.* FROM labels l
    WHERE l.retracts IS NULL AND NOT EXISTS (SELECT 1 FROM labels r WHERE r.retracts = l.uid);
-- Each clip's current label: the latest live human label, else the latest live gold label.
CREATE VIEW current_labels AS
    SELECT * FROM (
        SELECT l.*, ROW_NUMBER() OVER (
            PARTITION BY l.clip_id
            ORDER BY CASE l.kind WHEN 'human' THEN 0 ELSE 1 END, l.created_at DESC, l.id DESC
        ) AS rank
        FROM live_labels l WHERE l.kind IN ('human', 'gold')
    ) WHERE rank = 1;
"""

# v2: a clip whose audio turned out unusable (found at start-up) is set aside with the reason, not
# deleted; labels record who put them into this store; a clip's current label is the latest to
# *arrive* (local id order), so an imported label dated in the future cannot outrank later ones.
_SCHEMA_V2 = """
ALTER TABLE clips ADD COLUMN unusable TEXT;
ALTER TABLE labels ADD COLUMN received_by TEXT;
DROP VIEW current_labels;
CREATE VIEW current_labels AS
    SELECT * FROM (
        SELECT l.*, ROW_NUMBER() OVER (
            PARTITION BY l.clip_id ORDER BY CASE l.kind WHEN 'human' THEN 0 ELSE 1 END, l.id DESC
        ) AS rank
        FROM live_labels l WHERE l.kind IN ('human', 'gold')
    ) WHERE rank = 1;
"""

# _MIGRATIONS[i] takes a database from schema version i to i + 1.
_MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2)

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
_CLIP_FIELDS = EXPORT_FIELDS[:9]

# Connections a forked child inherited; kept referenced so they are never closed (see _connect).
_FORKED_CONNECTIONS: list[sqlite3.Connection] = []
_LABEL_FIELDS = EXPORT_FIELDS[9:]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class AnnotationStore:
    """Clips, labels and model versions under one folder, safe to share between threads and processes.

    Layout: ``<root>/store.sqlite`` (WAL mode) and ``<root>/audio/<sha[:2]>/<sha>.<ext>``.

    Durability choices:
        * ``synchronous=FULL``: in WAL mode NORMAL already survives a killed process, but may lose the
          last commits on power loss; a label is a person's work and costs one fsync per click, so FULL.
        * Every write is one ``BEGIN IMMEDIATE`` transaction: it takes the write lock up front, so a
          concurrent writer waits on ``busy_timeout`` instead of failing with "database is locked" when
          a read transaction tries to upgrade.
        * One connection per thread (and per process: a forked child opens its own), because Gradio
          calls from worker threads. Not a connection per call: closing the last connection to a WAL
          database checkpoints and deletes the WAL, which made each call cost ~6 ms more.

    Labels are append-only. Undo appends a retraction row naming the undone label's ``uid``, so the
    log keeps who changed what and exports carry the undo to other stores.

    Example:
        >>> import tempfile, numpy as np, soundfile as sf
        >>> root = Path(tempfile.mkdtemp())
        >>> sf.write(root / "a.wav", np.zeros(1600, dtype="float32"), 16000)
        >>> store = AnnotationStore(root / "store")
        >>> clip = store.add_clip(root / "a.wav", language="it", source="upload")
        >>> _ = store.add_label(clip.id, "anger", annotator="ada")
        >>> store.current_label(clip.id).emotion
        'anger'

    """

    def __init__(
        self, root: Path | str, max_clip_seconds: float = 60.0, min_clip_seconds: float = 0.05
    ) -> None:
        self.root = Path(root)
        # every clip is decoded and checked against these before it is committed (see add_clip)
        self.max_clip_seconds, self.min_clip_seconds = max_clip_seconds, min_clip_seconds
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "audio").mkdir(exist_ok=True)
        self.db_path = self.root / DB_NAME
        self._local = threading.local()
        with self._connect() as conn:
            # WAL is a property of the file: set once here, every later connection uses it.
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"{self.db_path}: SQLite refused WAL mode ({mode}); use a local disk")
        self._migrate()

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """Yield the calling thread's connection, opened on first use."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if getattr(local, "conn", None) is not None:
                # Inherited through fork: closing it here could checkpoint or delete the parent's WAL.
                _FORKED_CONNECTIONS.append(local.conn)
            local.conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            local.conn.row_factory = sqlite3.Row
            local.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            local.conn.execute("PRAGMA synchronous=FULL")
            local.conn.execute("PRAGMA foreign_keys=ON")
            local.pid = os.getpid()
        yield local.conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; rolled back (nothing written) if the body or the commit fails."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends); later calls reopen."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = self._local.pid = None

    def __getstate__(self) -> dict[str, Any]:
        # Connections do not cross process boundaries; the copy opens its own.
        return {
            "root": self.root,
            "db_path": self.db_path,
            "max_clip_seconds": self.max_clip_seconds,
            "min_clip_seconds": self.min_clip_seconds,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _migrate(self) -> None:
        with self._write() as conn:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            version = 0
            if has_meta:
                version = int(
                    conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
                )
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.db_path} has schema version {version}, newer than this serdemo's "
                    f"{SCHEMA_VERSION}: upgrade serdemo"
                )
            for script in _MIGRATIONS[version:]:
                # executescript would COMMIT; run statement by statement to stay in this transaction.
                for statement in _split_sql(script):
                    conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def schema_version(self) -> int:
        """Return the schema version recorded in the database."""
        with self._connect() as conn:
            return int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    # -- clips ------------------------------------------------------------------------------

    def add_clip(
        self,
        audio: Path | str | bytes,
        language: str,
        source: str,
        *,
        original_name: str | None = None,
        speaker: str | None = None,
        session: str | None = None,
    ) -> Clip:
        """Copy an audio file into the store and record it; the same audio twice returns the first clip.

        Args:
            audio: a file path, or the file's bytes (e.g. an upload).
            language: ISO 639-1 code of the speech, e.g. ``"it"``.
            source: one of :class:`ClipSource` or ``"corpus:<name>"``.
            original_name: the name to show; defaults to the path's file name.
            speaker: optional speaker id, used for speaker-independent splits.
            session: optional recording session.

        Raises:
            AudioError: the audio is unreadable, empty, too short or long, or not finite (a ValueError);
                nothing is written then.
            ValueError: bad language or source.

        """
        language = _check_language(language)
        source = _check_source(source)
        original_name = _check_text(original_name, "original_name")
        speaker, session = _check_text(speaker, "speaker"), _check_text(session, "session")
        if isinstance(audio, (str, Path)):
            path = Path(audio)
            original_name = original_name or path.name
            data = _read_bounded(path, original_name)
        elif isinstance(audio, (bytes, bytearray, memoryview)):
            data = bytes(audio)
        else:
            raise TypeError(f"audio must be a path or bytes, not {type(audio).__name__}")
        known = self.clip_by_sha256(hashlib.sha256(data).hexdigest())
        if known is not None:  # checked when it was added; no need to decode it again
            return known
        sha, stored, duration = self._store_audio(data, original_name or "audio")
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO clips (sha256, path, language, source, duration, added_at, "
                "original_name, speaker, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sha, str(stored), language, source, duration, _now(), original_name, speaker, session),
            )
            row = conn.execute("SELECT * FROM clips WHERE sha256 = ?", (sha,)).fetchone()
        return _clip(row)

    def _store_audio(self, data: bytes, name: str) -> tuple[str, Path, float]:
        """Validate audio bytes and write them content-addressed; returns (sha256, path, seconds).

        The whole file is decoded (header limits first), so a clip that is too short or long, holds
        NaN samples or lies in its header never reaches the store; the duration is the decoded one.
        """
        name = Path(name).name  # messages never show a server path
        if len(data) > MAX_AUDIO_BYTES:
            raise AudioError(f"{name}: {len(data) >> 20} MB is over the {MAX_AUDIO_BYTES >> 20} MB limit")
        _, info = decode_bytes(data, name, self.max_clip_seconds, self.min_clip_seconds)
        duration = info.duration_s
        sha = hashlib.sha256(data).hexdigest()
        ext = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}.get(
            info.format, re.sub(r"[^a-z0-9]", "", info.format.lower()) or "audio"
        )
        target = self.root / "audio" / sha[:2] / f"{sha}.{ext}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves a half-written file under the final name.
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp.name, target)
        return sha, target, duration

    def clip(self, clip_id: int) -> Clip:
        """Return the clip with this id; ValueError if there is none."""
        with self._connect() as conn:
            return _clip(_existing_clip(conn, clip_id))

    def clip_by_sha256(self, sha256: str) -> Clip | None:
        """Return the clip whose audio has this hash, if any."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM clips WHERE sha256 = ?", (sha256,)).fetchone()
        return _clip(row) if row else None

    def clips(self, language: str | None = None, labeled: bool | None = None) -> list[Clip]:
        """Clips in insertion order, optionally of one language and with/without a current label.

        ``labeled`` refers to :meth:`current_label` (human or gold); machine labels do not count.
        """
        sql = "SELECT c.* FROM clips c"
        where, args = ["c.unusable IS NULL"], []
        if language is not None:
            where.append("c.language = ?")
            args.append(language)
        if labeled is not None:
            exists = "EXISTS (SELECT 1 FROM current_labels l WHERE l.clip_id = c.id)"
            where.append(exists if labeled else f"NOT {exists}")
        sql += " WHERE " + " AND ".join(where)
        with self._connect() as conn:
            return [_clip(row) for row in conn.execute(sql + " ORDER BY c.id", args)]

    def set_unusable(self, clip_id: int, reason: str) -> None:
        """Set a clip aside (its audio cannot be used): :meth:`clips` skips it; its labels stay."""
        with self._write() as conn:
            _existing_clip(conn, clip_id)
            conn.execute("UPDATE clips SET unusable = ? WHERE id = ?", (reason[:500] or "unusable", clip_id))

    def unusable_clips(self) -> list[tuple[Clip, str]]:
        """Clips set aside by :meth:`set_unusable`, with the reason."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM clips WHERE unusable IS NOT NULL ORDER BY id").fetchall()
        return [(_clip(row), row["unusable"]) for row in rows]

    # -- labels -----------------------------------------------------------------------------

    def add_label(
        self,
        clip_id: int,
        emotion: str,
        annotator: str,
        kind: LabelKind | str = LabelKind.HUMAN,
        confidence: float | None = None,
        model_version: str | None = None,
    ) -> Label:
        """Append a label; nothing is written if any argument is invalid.

        Args:
            clip_id: a clip of this store.
            emotion: one of :data:`serdemo.labels.EMOTIONS`.
            annotator: who labeled it (user name; for machine labels, e.g. the model version).
            kind: human, machine (pseudo-label) or gold (corpus ground truth).
            confidence: the model's probability in [0, 1], for machine labels.
            model_version: id of a model version of this store that produced or saw the label.

        Raises:
            ValueError: unknown emotion, kind, clip or model version, or a bad confidence.

        """
        return self.add_labels([(clip_id, emotion, confidence)], annotator, kind, model_version)[0]

    def add_labels(
        self,
        items: Sequence[tuple[int, str, float | None]],
        annotator: str,
        kind: LabelKind | str = LabelKind.HUMAN,
        model_version: str | None = None,
    ) -> list[Label]:
        """Append many ``(clip_id, emotion, confidence)`` labels in one transaction (one disk sync).

        An adaptation round records hundreds of pseudo-labels; one :meth:`add_label` each would cost a
        sync apiece. All items are checked first: one bad item writes nothing.
        """
        kind = _check_kind(kind)
        annotator = _check_annotator(annotator)
        with self._write() as conn:
            if (
                model_version is not None
                and not conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (model_version,)).fetchone()
            ):
                raise ValueError(f"unknown model version {model_version!r}: see model_versions()")
            ids = self._insert_labels(conn, items, annotator, kind, model_version)
            marks = ",".join("?" * len(ids))
            found = conn.execute(f"SELECT * FROM labels WHERE id IN ({marks}) ORDER BY id", ids).fetchall()
        return [_label(row) for row in found]

    @staticmethod
    def _insert_labels(
        conn: sqlite3.Connection,
        items: Sequence[tuple[int, str, float | None]],
        annotator: str,
        kind: str,
        model_version: str | None,
    ) -> list[int]:
        """Check and insert label rows inside the caller's transaction; returns their ids."""
        rows = []
        for clip_id, emotion, confidence in items:
            emotion_index(emotion)
            if confidence is not None:
                confidence = float(confidence)
                if not 0.0 <= confidence <= 1.0:
                    raise ValueError(f"confidence must be a probability in [0, 1], got {confidence}")
            rows.append((int(clip_id), emotion, confidence))
        created_at = _now()
        ids = []
        for clip_id, emotion, confidence in rows:
            _existing_clip(conn, clip_id)
            cursor = conn.execute(
                "INSERT INTO labels (uid, clip_id, emotion, kind, annotator, confidence, model_version, "
                "created_at, received_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    uuid.uuid4().hex,
                    clip_id,
                    emotion,
                    kind,
                    annotator,
                    confidence,
                    model_version,
                    created_at,
                    annotator,
                ),
            )
            ids.append(cursor.lastrowid)
        return ids

    def undo_last_label(self, annotator: str) -> Label | None:
        """Retract ``annotator``'s latest label still in force; returns it, or None if there is none.

        Calling it again undoes the label before that one.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM live_labels WHERE annotator = ? ORDER BY id DESC LIMIT 1",
                (annotator,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "INSERT INTO labels (uid, clip_id, emotion, kind, annotator, confidence, model_version, "
                "created_at, retracts, received_by) VALUES (?, ?, NULL, ?, ?, NULL, NULL, ?, ?, ?)",
                (uuid.uuid4().hex, row["clip_id"], row["kind"], annotator, _now(), row["uid"], annotator),
            )
        return _label(row)

    def current_label(self, clip_id: int) -> Label | None:
        """Return the latest human label in force, else the latest gold label; never a machine label."""
        with self._connect() as conn:
            _existing_clip(conn, clip_id)
            row = conn.execute("SELECT * FROM current_labels WHERE clip_id = ?", (clip_id,)).fetchone()
        return _label(row) if row else None

    def machine_label(self, clip_id: int) -> Label | None:
        """Return the latest pseudo-label in force, kept apart from :meth:`current_label`."""
        with self._connect() as conn:
            _existing_clip(conn, clip_id)
            row = conn.execute(
                "SELECT * FROM live_labels WHERE clip_id = ? AND kind = 'machine' ORDER BY id DESC LIMIT 1",
                (clip_id,),
            ).fetchone()
        return _label(row) if row else None

    def label_history(self, clip_id: int) -> list[Label]:
        """Every label row of the clip, retractions included, oldest first."""
        with self._connect() as conn:
            _existing_clip(conn, clip_id)
            rows = conn.execute("SELECT * FROM labels WHERE clip_id = ? ORDER BY id", (clip_id,)).fetchall()
        return [_label(row) for row in rows]

    def label_counts(self, language: str) -> dict[str, int]:
        """Count clips of ``language`` per current-label emotion (all five keys, zeros included)."""
        counts = dict.fromkeys(EMOTIONS, 0)
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT l.emotion, COUNT(*) FROM current_labels l JOIN clips c ON c.id = l.clip_id "
                "WHERE c.language = ? GROUP BY l.emotion",
                (language,),
            )
            for emotion, count in rows:
                counts[emotion] = count
        return counts

    # -- model versions ---------------------------------------------------------------------

    def add_model_version(
        self,
        config: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        weights_path: Path | str | None = None,
        parent: str | None = None,
        activate: bool = True,
        machine_labels: Sequence[tuple[int, str, float | None]] = (),
    ) -> ModelVersion:
        """Record a trained model; it becomes the active one if ``activate`` or if it is the first.

        ``machine_labels`` (``(clip_id, emotion, confidence)``, the round's pseudo-labels) are stored
        in the same transaction, annotated by the new version: a crash leaves both or neither.

        Raises:
            ValueError: unknown parent, or config/metrics that are not JSON-serializable.

        """
        config_json = _to_json(config, "config")
        metrics_json = _to_json(metrics or {}, "metrics")
        with self._write() as conn:
            if (
                parent is not None
                and not conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (parent,)).fetchone()
            ):
                raise ValueError(f"unknown parent model version {parent!r}: see model_versions()")
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM model_versions").fetchone()[0]
            version_id = f"v{seq}-{uuid.uuid4().hex[:6]}"
            first = seq == 1
            if activate and not first:
                conn.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
            conn.execute(
                "INSERT INTO model_versions (id, seq, created_at, parent, config, metrics, weights_path, "
                "active) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version_id,
                    seq,
                    _now(),
                    parent,
                    config_json,
                    metrics_json,
                    None if weights_path is None else str(weights_path),
                    int(activate or first),
                ),
            )
            if machine_labels:
                self._insert_labels(conn, machine_labels, version_id, LabelKind.MACHINE.value, version_id)
            row = conn.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
        return _version(row)

    def model_versions(self) -> list[ModelVersion]:
        """All model versions, oldest first."""
        with self._connect() as conn:
            return [_version(row) for row in conn.execute("SELECT * FROM model_versions ORDER BY seq")]

    def active_version(self) -> ModelVersion | None:
        """Return the version the app serves, or None before any was added."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM model_versions WHERE active = 1").fetchone()
        return _version(row) if row else None

    def activate(self, version_id: str) -> ModelVersion:
        """Make ``version_id`` the active version (rollback or roll forward); ValueError if unknown."""
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (version_id,)).fetchone():
                raise ValueError(f"unknown model version {version_id!r}: see model_versions()")
            conn.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
            conn.execute("UPDATE model_versions SET active = 1 WHERE id = ?", (version_id,))
            row = conn.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
        return _version(row)

    def backup(self, path: Path | str) -> Path:
        """Copy the database, consistently, to ``path`` while the store stays in use; return the path.

        Copying ``store.sqlite`` by hand can miss commits still in the WAL file. Audio is not copied.
        """
        path = Path(path)
        if path.resolve() == self.db_path.resolve():
            raise ValueError(f"{path} is the store's own database: back up to another file")
        with self._connect() as conn, sqlite3.connect(path) as target:
            conn.backup(target)
        target.close()
        return path

    # -- export / import --------------------------------------------------------------------

    def export_records(self) -> list[dict[str, Any]]:
        """One record per label row (in log order), then one per clip without any label row.

        ``path`` is relative to the store's folder (``audio/<sha[:2]>/<sha>.<ext>``): exports never
        show where the server keeps its files, and a bundle stores the audio under the same name.
        """
        with self._connect() as conn:
            labeled = conn.execute(
                "SELECT c.*, l.uid AS label_uid, l.emotion, l.kind, l.annotator, l.confidence, "
                "l.model_version, l.created_at, l.retracts FROM labels l JOIN clips c ON c.id = l.clip_id "
                "ORDER BY l.id"
            ).fetchall()
            unlabeled = conn.execute(
                "SELECT * FROM clips c WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.clip_id = c.id) "
                "ORDER BY c.id"
            ).fetchall()
        records = []
        for row in [*labeled, *unlabeled]:
            keys = row.keys()
            record = {name: row[name] if name in keys else None for name in EXPORT_FIELDS}
            record["path"] = self.relative_audio_path(Path(row["path"]))
            records.append(record)
        return records

    def relative_audio_path(self, path: Path) -> str:
        """A stored clip's path relative to the store (POSIX form), as exports and bundles name it."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:  # stored by an older serdemo under another root: keep the content address
            return f"audio/{path.name[:2]}/{path.name}"

    def export_csv(self, path: Path | str) -> int:
        """Write clips and the label log as CSV (columns :data:`EXPORT_FIELDS`); return the row count.

        Text cells that a spreadsheet would run as a formula (starting with ``= + - @``, a tab or a
        carriage return) get a leading ``'``, as OWASP advises; :meth:`import_file` removes it again.
        """
        records = self.export_records()
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            for record in records:
                writer.writerow({k: _csv_cell(v) for k, v in record.items()})
        return len(records)

    def export_jsonl(self, path: Path | str) -> int:
        """Write the same records as :meth:`export_csv`, one JSON object per line; returns the count."""
        records = self.export_records()
        with open(path, "w", encoding="utf-8") as file:
            for record in records:
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(records)

    def import_file(
        self, path: Path | str, audio_root: Path | str | None = None, received_by: str | None = None
    ) -> ImportReport:
        """Add the clips and labels of an export (``.csv`` or ``.jsonl``).

        Clips are matched by audio hash and labels by ``label_uid``, so importing twice adds nothing.
        A clip this store lacks needs its audio: it is read only from inside ``audio_root`` (an
        unpacked bundle), at the record's relative ``path``; absolute paths and ``..`` are refused
        and a missing file reads the same as a refused one. Without ``audio_root`` such clips and
        their labels are skipped. Every clip is decoded and checked like :meth:`add_clip`, and its
        duration comes from the audio. Labels are ordered by arrival in this store, never by the
        imported ``created_at``; a time further in the future than a few minutes becomes the
        server's time. A retraction of another annotator's label is skipped. Every skip is
        reported in :attr:`ImportReport.notes`.

        Args:
            path: the export file.
            audio_root: the folder the export's audio paths are relative to (an unpacked bundle).
            received_by: who imports (the logged-in user), kept in the label log.

        Raises:
            ValueError: unknown format, a file over the size limits, or a bad record (its line is
                named); nothing is written then.

        """
        path = Path(path)
        name = path.name
        records = _read_records(path)
        prepared_clips: dict[str, dict[str, Any]] = {}
        prepared_labels: list[dict[str, Any]] = []
        first_line: dict[str, int] = {}
        notes: list[str] = []
        for line, record in records:
            try:
                if not isinstance(record, dict):
                    raise ValueError(
                        f"not a record (an object with the export's fields), got {type(record).__name__}"
                    )
                clip = _check_clip_record(record)
                label = _check_label_record(record)
            except (ValueError, TypeError, OverflowError) as error:
                raise ValueError(f"{name}:{line}: {error}") from None
            prepared_clips.setdefault(clip["sha256"], clip)
            if label is None:
                continue
            if label["uid"] in first_line:
                notes.append(
                    f"line {line}: label uid {label['uid']} repeats line {first_line[label['uid']]}; "
                    "kept the first"
                )
                continue
            first_line[label["uid"]] = line
            label["line"] = line
            prepared_labels.append(label)

        with self._connect() as conn:
            have = {row[0] for row in conn.execute("SELECT sha256 FROM clips")}
            have_labels = {row[0]: row[1] for row in conn.execute("SELECT uid, annotator FROM labels")}
        missing: set[str] = set()
        for sha, clip in prepared_clips.items():
            if sha in have:
                continue
            if audio_root is None:
                missing.add(sha)
                continue
            try:
                clip["stored"], clip["duration"] = self._import_audio(clip, Path(audio_root))
            except AudioError as error:
                notes.append(f"clip {sha[:12]} skipped: {error}")
                missing.add(sha)
        if missing and audio_root is None:
            notes.append(
                f"{len(missing)} clips skipped: their audio is not in this store; import the bundle "
                "(.zip from Export) to bring the audio along"
            )

        kept, annotators, now = [], dict(have_labels), datetime.now(timezone.utc)
        dropped_for_audio = future = 0
        for label in prepared_labels:
            if label["sha256"] in missing:
                dropped_for_audio += 1
                continue
            retracts = label["retracts"]
            if retracts is not None:
                if retracts not in annotators:
                    notes.append(
                        f"line {label['line']}: retracts label {retracts}, which is not here; skipped"
                    )
                    continue
                if annotators[retracts] != label["annotator"]:
                    notes.append(
                        f"line {label['line']}: {label['annotator']!r} cannot retract a label of "
                        f"{annotators[retracts]!r}; skipped"
                    )
                    continue
            if label["created_at"] > now + timedelta(seconds=_CLOCK_SKEW_S):
                label["created_at"] = now
                future += 1
            label["created_at"] = label["created_at"].isoformat(timespec="microseconds")
            annotators.setdefault(label["uid"], label["annotator"])
            kept.append(label)
        if dropped_for_audio and audio_root is not None:
            notes.append(f"{dropped_for_audio} labels of skipped clips were not imported")
        if future:
            notes.append(f"{future} labels dated in the future got this server's time instead")

        with self._write() as conn:
            new_clips = new_labels = 0
            for sha, clip in prepared_clips.items():
                if sha in have or sha in missing:
                    continue
                new_clips += conn.execute(
                    "INSERT OR IGNORE INTO clips (sha256, path, language, source, duration, added_at, "
                    "original_name, speaker, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sha, str(clip["stored"]), *(clip[k] for k in _CLIP_FIELDS[2:])),
                ).rowcount
            ids = {row[0]: row[1] for row in conn.execute("SELECT sha256, id FROM clips")}
            for label in kept:
                new_labels += conn.execute(
                    "INSERT OR IGNORE INTO labels (uid, clip_id, emotion, kind, annotator, confidence, "
                    "model_version, created_at, retracts, received_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        label["uid"],
                        ids[label["sha256"]],
                        label["emotion"],
                        label["kind"],
                        label["annotator"],
                        label["confidence"],
                        label["model_version"],
                        label["created_at"],
                        label["retracts"],
                        received_by or f"import:{name[:MAX_TEXT_CHARS]}",
                    ),
                ).rowcount
        return ImportReport(new_clips, new_labels, tuple(notes))

    def _import_audio(self, clip: dict[str, Any], root: Path) -> tuple[Path, float]:
        """Store a clip's audio from inside ``root``; returns (stored path, decoded duration)."""
        sha = clip["sha256"]
        relative = PurePosixPath(str(clip["path"]).replace("\\", "/"))
        # one message for outside, missing and unreadable: the answer must not reveal which files exist
        refused = AudioError(f"its audio {relative.name!r} is not in the bundle")
        if relative.is_absolute() or ".." in relative.parts or not relative.parts or ":" in relative.parts[0]:
            raise refused
        base = root.resolve()
        for candidate in (root / relative, root / "audio" / sha[:2] / relative.name):
            try:
                resolved = candidate.resolve()
                if not resolved.is_relative_to(base) or not resolved.is_file():
                    continue
            except OSError:
                continue
            data = _read_bounded(resolved, relative.name)
            if hashlib.sha256(data).hexdigest() != sha:
                raise AudioError(f"its audio {relative.name!r} does not match its sha256")
            _, stored, duration = self._store_audio(data, clip.get("original_name") or relative.name)
            return stored, duration
        raise refused


@dataclass(frozen=True)
class ImportReport:
    """What :meth:`AnnotationStore.import_file` added, and what it skipped and why."""

    new_clips: int
    new_labels: int
    notes: tuple[str, ...] = ()


# -- validation and row conversion -----------------------------------------------------------


def _split_sql(script: str) -> list[str]:
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _check_language(language: str) -> str:
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        raise ValueError(f"language {language!r} is not an ISO 639-1 code: use e.g. 'it', 'de', 'en'")
    return language


def _check_source(source: str) -> str:
    values = {s.value for s in ClipSource}
    if isinstance(source, ClipSource):
        return source.value
    if source in values or (isinstance(source, str) and re.fullmatch(r"corpus:[\w.-]+", source)):
        return source
    raise ValueError(f"source {source!r}: use one of {', '.join(sorted(values))} or 'corpus:<name>'")


def _check_kind(kind: LabelKind | str) -> str:
    try:
        return LabelKind(kind).value
    except ValueError:
        raise ValueError(f"label kind {kind!r}: use one of {', '.join(k.value for k in LabelKind)}") from None


def _check_annotator(annotator: str) -> str:
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError("annotator must be a non-empty name, e.g. the user's name or a model version")
    annotator = annotator.strip()
    if len(annotator) > MAX_ANNOTATOR_CHARS or not annotator.isprintable():
        raise ValueError(
            f"annotator name must be at most {MAX_ANNOTATOR_CHARS} printable characters, "
            f"got {len(annotator)}: use a short name"
        )
    return annotator


def _check_text(value: Any, what: str) -> str | None:
    """An optional short free-text field (file name, speaker, session)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"{what} must be text of at most {MAX_TEXT_CHARS} characters")
    return value


def _read_bounded(path: Path, name: str) -> bytes:
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


def _existing_clip(conn: sqlite3.Connection, clip_id: int) -> sqlite3.Row:
    try:
        clip_id = operator.index(clip_id)
    except TypeError:
        clip_id = -1
    if not 0 < clip_id < 2**63:  # SQLite integers are 64-bit signed; a larger one would overflow
        raise ValueError("unknown clip id: clip ids are positive integers, see clips()")
    row = conn.execute("SELECT * FROM clips WHERE id = ?", (clip_id,)).fetchone()
    if row is None:
        raise ValueError(f"unknown clip id {clip_id!r}: see clips()")
    return row


def _to_json(value: dict[str, Any], what: str) -> str:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{what} is not JSON-serializable ({error}): pass plain numbers and strings"
        ) from None


def _csv_cell(value: Any) -> Any:
    """A value as a CSV cell, with formula triggers defused (``'`` itself is escaped so it round-trips)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "'"):
        return "'" + value
    return value


def _csv_value(text: str) -> str | None:
    if text == "":
        return None
    return text[1:] if text.startswith("'") else text


def _read_records(path: Path) -> list[tuple[int, Any]]:
    name = path.name
    if not path.is_file():
        raise ValueError(f"{name}: no such export file")
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise ValueError(
            f"{name}: {size >> 20} MB is over the {MAX_IMPORT_BYTES >> 20} MB limit for a label file"
        )
    records: list[tuple[int, Any]] = []
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as file:
                reader = csv.DictReader(file)
                missing = set(_CLIP_FIELDS) - set(reader.fieldnames or ())
                if missing:
                    raise ValueError(f"{name}: not a serdemo export, missing columns {sorted(missing)}")
                for row in reader:
                    if None in row:  # more cells than columns
                        raise ValueError(f"{name}:{reader.line_num}: more cells than the header has columns")
                    records.append((reader.line_num, {k: _csv_value(v or "") for k, v in row.items()}))
                    if len(records) > MAX_IMPORT_RECORDS:
                        raise ValueError(f"{name}: more than {MAX_IMPORT_RECORDS} records; split the file")
            return records
        if path.suffix.lower() in (".jsonl", ".json"):
            with open(path, encoding="utf-8") as file:
                for i, text in enumerate(file, start=1):
                    if text.strip():
                        try:
                            records.append((i, json.loads(text)))
                        except (json.JSONDecodeError, RecursionError) as error:
                            raise ValueError(f"{name}:{i}: not JSON ({error})") from None
                        if len(records) > MAX_IMPORT_RECORDS:
                            raise ValueError(
                                f"{name}: more than {MAX_IMPORT_RECORDS} records; split the file"
                            )
            return records
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not UTF-8 text; import the file Export wrote") from None
    except csv.Error as error:
        raise ValueError(f"{name}: not a readable CSV file ({error})") from None
    raise ValueError(
        f"{name}: unknown export format; use a .csv or .jsonl file written by export_csv/export_jsonl, "
        "or a bundle (.zip)"
    )


def _check_clip_record(record: dict[str, Any]) -> dict[str, Any]:
    sha = record.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ValueError(f"sha256 {str(sha)[:80]!r} is not a SHA-256 hex digest")
    path = record.get("path")
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise ValueError("path must be the clip's audio file name inside the bundle")
    added_at = record.get("added_at")
    if not isinstance(added_at, str) or not added_at:
        raise ValueError("added_at is empty")
    return {
        "sha256": sha,
        "path": path,
        "language": _check_language(record.get("language")),
        "source": _check_source(record.get("source")),
        "duration": None,  # measured from the audio when it is stored, never taken from the file
        "added_at": _parse_time(added_at, "added_at").isoformat(timespec="microseconds"),
        "original_name": _check_text(record.get("original_name"), "original_name"),
        "speaker": _check_text(record.get("speaker"), "speaker"),
        "session": _check_text(record.get("session"), "session"),
    }


def _check_label_record(record: dict[str, Any]) -> dict[str, Any] | None:
    uid = record.get("label_uid")
    if not uid:
        if any(record.get(k) not in (None, "") for k in _LABEL_FIELDS):
            raise ValueError("label fields given without label_uid")
        return None
    if not isinstance(uid, str) or not _UID.match(uid):
        raise ValueError("label_uid must be 1-64 letters, digits, '-' or '_'")
    retracts = record.get("retracts")
    if retracts is not None and (not isinstance(retracts, str) or not _UID.match(retracts)):
        raise ValueError("retracts must be the label_uid of the label it undoes")
    emotion = record.get("emotion")
    if retracts is None:
        emotion_index(emotion)
    elif emotion is not None:
        raise ValueError("a retraction row has no emotion")
    confidence = record.get("confidence")
    if confidence is not None:
        try:
            confidence = float(confidence)
        except (TypeError, ValueError):
            raise ValueError(f"confidence {str(confidence)[:40]!r} is not a number") from None
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence {confidence} is not a probability in [0, 1]")
    created_at = record.get("created_at")
    if not isinstance(created_at, str) or not created_at:
        raise ValueError("created_at is empty")
    return {
        "uid": uid,
        "sha256": record["sha256"],
        "emotion": emotion,
        "kind": _check_kind(record.get("kind")),
        "annotator": _check_annotator(record.get("annotator")),
        "confidence": confidence,
        "model_version": _check_text(record.get("model_version"), "model_version"),
        "created_at": _parse_time(created_at, "created_at"),
        "retracts": retracts,
    }


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text[:64])
    except ValueError:
        raise ValueError(f"{what} {text[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{what} {text[:40]!r} has no time zone; export times are UTC, e.g. ...+00:00")
    return moment.astimezone(timezone.utc)


def _clip(row: sqlite3.Row) -> Clip:
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


def _label(row: sqlite3.Row) -> Label:
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


def _version(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(
        id=row["id"],
        created_at=row["created_at"],
        parent=row["parent"],
        config=json.loads(row["config"]),
        metrics=json.loads(row["metrics"]),
        weights_path=row["weights_path"],
        active=bool(row["active"]),
    )
