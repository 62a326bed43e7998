"""Clips into the target pool: one upload, or a bulk add of files and zips, each checked at the door."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from serdemo.app.config import AUDIO_SUFFIXES, MIN_CLIP_SECONDS, Progress, ServiceError, scrub
from serdemo.app.workspace import Workspace, language_code
from serdemo.audio import SAMPLE_RATE, AudioError, AudioInfo, file_sha256, load_audio, load_audio_checked
from serdemo.safezip import ArchiveError, ZipLimits, unpack
from serdemo.store import ClipSource


def add_to_pool(
    ws: Workspace, path: str | os.PathLike, language: str, source: str = ClipSource.UPLOAD.value
) -> str:
    """Add one clip to the unlabeled target pool of ``language``; returns a message for the user."""
    language = language_code(language)
    name = Path(path).name
    # refuse unusable audio with a clear message, and say what is odd about usable audio
    _, info = load_audio_checked(
        path, max_seconds=ws.config.max_clip_seconds, min_seconds=ws.config.min_clip_seconds
    )
    _check_pool_clip(path, ws.config.max_clip_seconds)  # too short to carry an emotion
    before = ws.store.clip_by_sha256(file_sha256(path))
    clip = ws.store.add_clip(path, language=language, source=source, original_name=name)
    ws.embed_pool([clip])
    if before is not None:
        return f"Clip {clip.id} is already in the `{clip.language}` pool (same audio); nothing added."
    return f"Added clip {clip.id} to the `{language}` target pool ({clip.duration:.1f} s)." + "".join(
        f"\n\n⚠️ {warning}" for warning in _audio_warnings(info)
    )


def add_files(
    ws: Workspace, paths: Sequence[str | os.PathLike], language: str, progress: Progress | None = None
) -> str:
    """Bulk-add audio files and/or zip archives of them to the ``language`` pool; returns a summary."""
    language = language_code(language)
    if not paths:
        raise ServiceError("no files given: choose audio files or a .zip of them")
    added, duplicates, errors, flagged = [], 0, [], []
    work = ws.config.data_dir / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(prefix="bulk-", dir=work))  # cleaned at start-up if killed
    try:
        files, skipped = _expand_archives([Path(p) for p in paths], unpacked, ws.config.max_bulk_files)
        errors += skipped
        done, total = 0, max(1, len(files))
        for path in files:
            if progress is not None:
                progress(done / total, f"adding {path.name}")
            done += 1
            try:
                _, info = load_audio_checked(
                    path,
                    max_seconds=ws.config.max_clip_seconds,
                    min_seconds=ws.config.min_clip_seconds,
                )
                _check_pool_clip(path, ws.config.max_clip_seconds)
                known = ws.store.clip_by_sha256(file_sha256(path)) is not None
                clip = ws.store.add_clip(
                    path, language=language, source=ClipSource.BULK.value, original_name=path.name
                )
            except (AudioError, ValueError) as error:
                errors.append(scrub(str(error)))
                continue
            duplicates += known
            if not known:
                added.append(clip)
                flagged += [f"{path.name}: {w.split(':')[0]}" for w in _audio_warnings(info)]
        if progress is not None:
            progress(1.0, f"embedding {len(added)} new clips")
        ws.embed_pool(added)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    lines = [f"Added {len(added)} clips to the `{language}` pool; {duplicates} were already there."]
    if flagged:
        lines.append(
            f"⚠️ {len(flagged)} added clips sound wrong (check them before labeling):\n"
            + "\n".join(f"- {f}" for f in flagged[:20])
        )
    if errors:
        lines.append(f"Skipped {len(errors)} files:\n" + "\n".join(f"- {e}" for e in errors[:20]))
    return "\n\n".join(lines)


def _expand_archives(paths: list[Path], folder: Path, max_files: int) -> tuple[list[Path], list[str]]:
    """Audio files among ``paths``, .zip archives unpacked (streamed, capped) into ``folder``.

    Returns the files and what was skipped, one ``"name: why"`` each (hidden files, non-audio,
    paths outside the archive, nested zips): nothing is dropped without saying so.
    """

    def audio_only(name: PurePosixPath) -> str | None:
        if name.name.startswith(".") or "__MACOSX" in name.parts:
            return "a hidden or system file"
        if name.suffix.lower() not in AUDIO_SUFFIXES:
            return f"not audio (use {', '.join(AUDIO_SUFFIXES)})"
        return None

    out: list[Path] = []
    skipped: list[str] = []
    for i, path in enumerate(paths):
        if len(out) > max_files:
            break
        if path.suffix.lower() != ".zip":
            out.append(path)
            continue
        try:
            unpacked = unpack(path, folder / str(i), audio_only, ZipLimits(max_files=max_files))
        except ArchiveError as error:
            raise ServiceError(scrub(str(error))) from None
        out += unpacked.files
        skipped += [f"zip entry {s}" for s in unpacked.skipped]
    if len(out) > max_files:
        raise ServiceError(
            f"{len(out)}+ files in one bulk add, over the {max_files} limit: add them in parts"
        )
    return out, skipped


def _check_pool_clip(path: str | os.PathLike, max_seconds: float) -> None:
    """Refuse audio a pool should not hold: unreadable, too long, or too short to carry an emotion."""
    wave = load_audio(path, max_seconds=max_seconds)
    if len(wave) < MIN_CLIP_SECONDS * SAMPLE_RATE:
        raise AudioError(
            f"{Path(path).name}: only {len(wave) / SAMPLE_RATE:.2f} s long; clips in a pool need at least "
            f"{MIN_CLIP_SECONDS} s of speech to be labeled by emotion"
        )


def _audio_warnings(info: AudioInfo) -> list[str]:
    """What is odd about usable audio: the same words on predict and when a clip joins a pool."""
    warnings = []
    if info.silent:
        warnings.append("silent: the clip is (nearly) silent; record closer to the microphone")
    if info.clipped:
        warnings.append("clipped: distorted by too loud input; lower the recording level")
    return warnings
