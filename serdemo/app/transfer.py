"""Export and import: bundles (audio + label log) and label files, and the embedded source set."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from serdemo.app.config import EXPORT_FORMATS, ServiceError, scrub
from serdemo.app.workspace import Workspace
from serdemo.store.bundle import export_bundle, import_bundle


def import_labels(ws: Workspace, path: str | os.PathLike, received_by: str | None = None) -> str:
    """Merge an export of this or another serdemo store; what exists already is skipped.

    A bundle (.zip from :meth:`export` ``"bundle"``) brings its audio; a plain CSV/JSONL brings
    labels of clips this store already has. The message lists everything skipped and why.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".zip":
            report = import_bundle(ws.store, path, received_by=received_by)
        else:
            report = ws.store.import_file(path, received_by=received_by)
    except ValueError as error:
        raise ServiceError(scrub(str(error))) from None
    ws.embed_pool(ws.store.clips())  # imported clips join the pool with their features
    lines = [f"Imported {report.new_clips} new clips and {report.new_labels} new labels from {path.name}."]
    if report.notes:
        lines.append(
            f"Skipped {len(report.notes)} items:\n"
            + "\n".join(f"- {scrub(n)}" for n in report.notes[:30])
            + ("\n- ..." if len(report.notes) > 30 else "")
        )
    return "\n\n".join(lines)


def export_source_set(ws: Workspace, path: Path) -> Path:
    """Write the embedded source set so the app can adapt without the corpus (``assets/``)."""
    if ws.source is None:
        raise ServiceError("no source set loaded: start with --source-corpus NAME=PATH")
    ws.source.save(path, ws.encoder.identity)
    return path


def export(ws: Workspace, fmt: str = "csv") -> Path:
    """Write every clip and label (with the undo log) to a new short-lived file a page may fetch.

    ``csv`` / ``jsonl``: the label log alone, for label-only exchange or training elsewhere.
    ``bundle``: a .zip with the audio, the label log and a manifest with SHA-256 sums, which
    :meth:`import_labels` accepts on another machine.
    """
    if fmt not in EXPORT_FORMATS:
        raise ServiceError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    ws.prune_public()
    folder = Path(tempfile.mkdtemp(dir=ws.public_dir))
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    if fmt == "bundle":
        return export_bundle(ws.store, folder / f"serdemo-bundle-{stamp}.zip")
    path = folder / f"labels-{stamp}.{fmt}"
    (ws.store.export_csv if fmt == "csv" else ws.store.export_jsonl)(path)
    return path
