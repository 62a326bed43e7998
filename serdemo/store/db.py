"""The annotation store: target-language clips, their labels and model versions, in one SQLite file."""

from __future__ import annotations

import hashlib
import operator
import os
import re
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from serdemo.audio import AudioError, decode_bytes
from serdemo.labels import EMOTIONS, emotion_index
from serdemo.store.exchange import Exchange
from serdemo.store.records import (
    MAX_AUDIO_BYTES,
    Clip,
    Label,
    LabelKind,
    check_annotator,
    check_kind,
    check_language,
    check_source,
    check_text,
    clip_from_row,
    label_from_row,
    read_bounded,
    utc_now,
)
from serdemo.store.schema import MIGRATIONS
from serdemo.store.versions import ModelRegistry

SCHEMA_VERSION = 2
DB_NAME = "store.sqlite"
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another process's transaction before giving up


# Connections a forked child inherited; kept referenced so they are never closed (see _connect).
_FORKED_CONNECTIONS: list[sqlite3.Connection] = []


class AnnotationStore(Exchange, ModelRegistry):
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
            for script in MIGRATIONS[version:]:
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
        language = check_language(language)
        source = check_source(source)
        original_name = check_text(original_name, "original_name")
        speaker, session = check_text(speaker, "speaker"), check_text(session, "session")
        if isinstance(audio, (str, Path)):
            path = Path(audio)
            original_name = original_name or path.name
            data = read_bounded(path, original_name)
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
                (sha, str(stored), language, source, duration, utc_now(), original_name, speaker, session),
            )
            row = conn.execute("SELECT * FROM clips WHERE sha256 = ?", (sha,)).fetchone()
        return clip_from_row(row)

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
            return clip_from_row(_existing_clip(conn, clip_id))

    def clip_by_sha256(self, sha256: str) -> Clip | None:
        """Return the clip whose audio has this hash, if any."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM clips WHERE sha256 = ?", (sha256,)).fetchone()
        return clip_from_row(row) if row else None

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
            return [clip_from_row(row) for row in conn.execute(sql + " ORDER BY c.id", args)]

    def set_unusable(self, clip_id: int, reason: str) -> None:
        """Set a clip aside (its audio cannot be used): :meth:`clips` skips it; its labels stay."""
        with self._write() as conn:
            _existing_clip(conn, clip_id)
            conn.execute("UPDATE clips SET unusable = ? WHERE id = ?", (reason[:500] or "unusable", clip_id))

    def unusable_clips(self) -> list[tuple[Clip, str]]:
        """Clips set aside by :meth:`set_unusable`, with the reason."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM clips WHERE unusable IS NOT NULL ORDER BY id").fetchall()
        return [(clip_from_row(row), row["unusable"]) for row in rows]

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
        kind = check_kind(kind)
        annotator = check_annotator(annotator)
        with self._write() as conn:
            if (
                model_version is not None
                and not conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (model_version,)).fetchone()
            ):
                raise ValueError(f"unknown model version {model_version!r}: see model_versions()")
            ids = self._insert_labels(conn, items, annotator, kind, model_version)
            marks = ",".join("?" * len(ids))
            found = conn.execute(f"SELECT * FROM labels WHERE id IN ({marks}) ORDER BY id", ids).fetchall()
        return [label_from_row(row) for row in found]

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
        created_at = utc_now()
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
                (uuid.uuid4().hex, row["clip_id"], row["kind"], annotator, utc_now(), row["uid"], annotator),
            )
        return label_from_row(row)

    def current_label(self, clip_id: int) -> Label | None:
        """Return the latest human label in force, else the latest gold label; never a machine label."""
        with self._connect() as conn:
            _existing_clip(conn, clip_id)
            row = conn.execute("SELECT * FROM current_labels WHERE clip_id = ?", (clip_id,)).fetchone()
        return label_from_row(row) if row else None

    def machine_label(self, clip_id: int) -> Label | None:
        """Return the latest pseudo-label in force, kept apart from :meth:`current_label`."""
        with self._connect() as conn:
            _existing_clip(conn, clip_id)
            row = conn.execute(
                "SELECT * FROM live_labels WHERE clip_id = ? AND kind = 'machine' ORDER BY id DESC LIMIT 1",
                (clip_id,),
            ).fetchone()
        return label_from_row(row) if row else None

    def label_history(self, clip_id: int) -> list[Label]:
        """Every label row of the clip, retractions included, oldest first."""
        with self._connect() as conn:
            _existing_clip(conn, clip_id)
            rows = conn.execute("SELECT * FROM labels WHERE clip_id = ? ORDER BY id", (clip_id,)).fetchall()
        return [label_from_row(row) for row in rows]

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


def _split_sql(script: str) -> list[str]:
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


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
