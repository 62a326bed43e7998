"""Export bundles: one zip with the audio, the label log and a manifest, importable on another machine."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from serdemo.safezip import ArchiveError, ZipLimits, unpack
from serdemo.store.db import AnnotationStore
from serdemo.store.records import MAX_AUDIO_BYTES, ImportReport

FORMAT = "serdemo-bundle"
VERSION = 1
MANIFEST = "manifest.json"
LABELS = "labels.jsonl"


def export_bundle(store: AnnotationStore, path: Path) -> Path:
    """Write ``path`` (.zip): ``labels.jsonl`` (the export records), ``audio/..`` and ``manifest.json``.

    The manifest lists every file with its SHA-256, so an import checks what it unpacked. Audio is
    stored as is (already compressed formats gain nothing from deflate); the labels are deflated.
    """
    records = store.export_records()
    files: dict[str, str] = {}
    partial = path.with_name(path.name + ".part")
    with zipfile.ZipFile(partial, "w") as archive:
        labels = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        archive.writestr(LABELS, labels, compress_type=zipfile.ZIP_DEFLATED)
        files[LABELS] = hashlib.sha256(labels).hexdigest()
        for clip in store.clips() + [clip for clip, _ in store.unusable_clips()]:
            name = store.relative_audio_path(clip.path)
            if name not in files and clip.path.is_file():
                archive.write(clip.path, name, compress_type=zipfile.ZIP_STORED)
                files[name] = clip.sha256
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "labels": LABELS,
            "records": len(records),
            "files": files,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1), compress_type=zipfile.ZIP_DEFLATED)
    os.replace(partial, path)
    return path


def import_bundle(
    store: AnnotationStore,
    path: Path,
    work: Path | None = None,
    received_by: str | None = None,
    limits: ZipLimits | None = None,
) -> ImportReport:
    """Check and import a bundle made by :func:`export_bundle` (here or on another machine).

    It is unpacked, streamed and capped, into a fresh folder under ``work`` (default: the store's
    ``tmp/``), which is removed afterwards whatever happens. Only files the manifest lists with a
    matching SHA-256 are used; the label file's audio paths may only point inside the bundle.

    Raises:
        ValueError: not a bundle, over a limit, a file that does not match the manifest, or a bad
            record; nothing is written then.

    """
    work = work if work is not None else store.root / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bundle-", dir=work))
    target = folder / "content"
    try:
        unpacked = unpack(
            path, target, _audio_or_manifest, limits or ZipLimits(max_file_bytes=MAX_AUDIO_BYTES)
        )
        manifest = _manifest(target / MANIFEST, path.name)
        listed = manifest["files"]
        for file in unpacked.files:
            name = file.relative_to(target).as_posix()
            if name == MANIFEST:
                continue
            if name not in listed:
                file.unlink()
                unpacked.skipped.append(f"{name}: not listed in the manifest")
            elif _sha256(file) != listed[name]:
                raise ArchiveError(f"{path.name}: {name} does not match its SHA-256 in the manifest")
        if not (target / LABELS).is_file():
            raise ArchiveError(f"{path.name}: no {LABELS} in the bundle")
        report = store.import_file(target / LABELS, audio_root=target, received_by=received_by)
        skipped = tuple(f"zip entry {s}" for s in unpacked.skipped)
        return ImportReport(report.new_clips, report.new_labels, skipped + report.notes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def clean_work(work: Path, older_than_s: float = 3600.0) -> int:
    """Remove unpacked bundles a killed process left under ``work``; returns how many."""
    if not work.is_dir():
        return 0
    now, removed = datetime.now().timestamp(), 0
    for child in work.iterdir():
        if child.name.startswith(("bundle-", "bulk-")) and now - child.stat().st_mtime > older_than_s:
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


def _audio_or_manifest(name: PurePosixPath) -> str | None:
    if name.as_posix() in (MANIFEST, LABELS):
        return None
    if len(name.parts) == 3 and name.parts[0] == "audio":
        return None
    return "not part of a serdemo bundle"


def _manifest(path: Path, bundle: str) -> dict:
    if not path.is_file():
        raise ArchiveError(f"{bundle}: no {MANIFEST}; export a bundle with serdemo's Export tab")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ArchiveError(f"{bundle}: {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{bundle}: not a serdemo bundle (its manifest names no {FORMAT!r} format)")
    if manifest.get("version") != VERSION:
        raise ArchiveError(
            f"{bundle}: bundle version {manifest.get('version')!r}; this serdemo reads {VERSION}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()
    ):
        raise ArchiveError(f"{bundle}: the manifest's file list is malformed")
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
