"""CSV / JSONL exchange of the annotation store: export the label log, import another store's."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from serdemo.audio import AudioError
from serdemo.labels import emotion_index
from serdemo.store.records import (
    CLIP_FIELDS,
    EXPORT_FIELDS,
    LABEL_FIELDS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_RECORDS,
    MAX_TEXT_CHARS,
    ImportReport,
    check_annotator,
    check_kind,
    check_language,
    check_source,
    check_text,
    read_bounded,
)

_CLOCK_SKEW_S = 300  # an imported time further in the future than this is the server's time instead
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Exchange:
    """Export and import of an :class:`~serdemo.store.db.AnnotationStore`; mixed into it (its connections)."""

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
                    (sha, str(clip["stored"]), *(clip[k] for k in CLIP_FIELDS[2:])),
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
            data = read_bounded(resolved, relative.name)
            if hashlib.sha256(data).hexdigest() != sha:
                raise AudioError(f"its audio {relative.name!r} does not match its sha256")
            _, stored, duration = self._store_audio(data, clip.get("original_name") or relative.name)
            return stored, duration
        raise refused


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
                missing = set(CLIP_FIELDS) - set(reader.fieldnames or ())
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
        "language": check_language(record.get("language")),
        "source": check_source(record.get("source")),
        "duration": None,  # measured from the audio when it is stored, never taken from the file
        "added_at": _parse_time(added_at, "added_at").isoformat(timespec="microseconds"),
        "original_name": check_text(record.get("original_name"), "original_name"),
        "speaker": check_text(record.get("speaker"), "speaker"),
        "session": check_text(record.get("session"), "session"),
    }


def _check_label_record(record: dict[str, Any]) -> dict[str, Any] | None:
    uid = record.get("label_uid")
    if not uid:
        if any(record.get(k) not in (None, "") for k in LABEL_FIELDS):
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
        "kind": check_kind(record.get("kind")),
        "annotator": check_annotator(record.get("annotator")),
        "confidence": confidence,
        "model_version": check_text(record.get("model_version"), "model_version"),
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
