"""Clips into the target pool: one upload, or a bulk add of files and zips, each checked at the door.

A recording longer than ``ServiceConfig.split_above_seconds`` (a call, a talk show, a long take) joins the
pool as its utterances, cut at its pauses by the speech front end's detector
(:func:`serdemo.speech.utterance_spans`): each is a clip of its own, labeled on its own, and all carry the
recording as their ``session``, so cross-validation keeps them on one side (:mod:`serdemo.app.rounds`).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf

from serdemo.app.config import AUDIO_SUFFIXES, MIN_CLIP_SECONDS, Progress, ServiceError, scrub
from serdemo.app.workspace import Workspace, language_code
from serdemo.audio import SAMPLE_RATE, AudioError, AudioInfo, file_sha256, load_audio_checked
from serdemo.safezip import ArchiveError, ZipLimits, unpack
from serdemo.speech import (
    UTTERANCE_PAUSE_S,
    UTTERANCE_SPEECH_S,
    FrontEnd,
    clip_activity,
    utterance_spans,
)
from serdemo.store import Clip, ClipSource


@dataclass(frozen=True)
class PoolItem:
    """One clip a file adds to a pool: the file itself, or one utterance of a long recording."""

    audio: Path | bytes  # the file, or the utterance as 16 kHz FLAC bytes
    name: str  # shown in the Label tab: the file name, plus the utterance's times in the recording
    session: str | None  # the recording an utterance came from
    sha256: str  # of the audio's bytes: the store knows a clip by it


def add_to_pool(
    ws: Workspace, path: str | os.PathLike, language: str, source: str = ClipSource.UPLOAD.value
) -> str:
    """Add one file to the unlabeled target pool of ``language``; returns a message for the user."""
    language = language_code(language)
    path = Path(path)
    items, info = pool_items(ws, path)
    added, known = _add_items(ws, items, language, source)
    known_clips = [] if added else [ws.store.clip_by_sha256(item.sha256) for item in items]
    ws.embed_pool(added or [c for c in known_clips if c is not None])  # an old clip may have missed it
    warnings = "".join(f"\n\n⚠️ {warning}" for warning in _audio_warnings(info))
    if items[0].session is not None:  # a long recording, cut into its utterances
        there = f" ({known} already were)" if known else ""
        count = f"{len(items)} utterance{'s' if len(items) > 1 else ''}"
        return (
            f"Cut {path.name} ({info.duration_s:.0f} s) at its pauses into {count} and added "
            f"{len(added)} to the `{language}` target pool{there}: label each one on its own."
        ) + warnings
    if known:
        clip = known_clips[0]
        return f"Clip {clip.id} is already in the `{clip.language}` pool (same audio); nothing added."
    clip = added[0]
    return f"Added clip {clip.id} to the `{language}` target pool ({clip.duration:.1f} s)." + warnings


def add_files(
    ws: Workspace, paths: Sequence[str | os.PathLike], language: str, progress: Progress | None = None
) -> str:
    """Bulk-add audio files and/or zip archives of them to the ``language`` pool; returns a summary."""
    language = language_code(language)
    if not paths:
        raise ServiceError("no files given: choose audio files or a .zip of them")
    added: list[Clip] = []
    duplicates, errors, flagged, cut = 0, [], [], []
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
                items, info = pool_items(ws, path)
                new, known = _add_items(ws, items, language, ClipSource.BULK.value)
            except (AudioError, ValueError) as error:
                errors.append(scrub(str(error)))
                continue
            duplicates += known
            added += new
            if items[0].session is not None:
                cut.append(f"{path.name}: {len(items)} utterance{'s' if len(items) > 1 else ''}")
            if new:
                flagged += [f"{path.name}: {w.split(':')[0]}" for w in _audio_warnings(info)]
        if progress is not None:
            progress(1.0, f"embedding {len(added)} new clips")
        ws.embed_pool(added)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    lines = [f"Added {len(added)} clips to the `{language}` pool; {duplicates} were already there."]
    if cut:
        lines.append(
            (
                "1 long recording was cut at its"
                if len(cut) == 1
                else f"{len(cut)} long recordings were cut at their"
            )
            + " pauses into utterances, each a clip to label:\n"
            + "\n".join(f"- {c}" for c in cut[:20])
        )
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


def pool_items(ws: Workspace, path: Path) -> tuple[list[PoolItem], AudioInfo]:
    """What ``path`` adds to a pool: the clip itself, or the utterances of a long recording.

    Raises:
        AudioError: unreadable audio, a clip too short to carry an emotion, a recording too long, or a
            long recording in which the detector finds no speech; nothing is added then.

    """
    config = ws.config
    longest = max(config.max_recording_seconds, config.max_clip_seconds) if _split_above(ws) else None
    wave, info = load_audio_checked(
        path, max_seconds=longest or config.max_clip_seconds, min_seconds=config.min_clip_seconds
    )
    duration = len(wave) / SAMPLE_RATE
    spans = recording_cuts(ws, wave)
    if spans is None:
        if duration < MIN_CLIP_SECONDS:
            raise AudioError(
                f"{path.name}: only {duration:.2f} s long; clips in a pool need at least "
                f"{MIN_CLIP_SECONDS} s of speech to be labeled by emotion"
            )
        return [PoolItem(path, path.name, None, file_sha256(path))], info
    if not spans:
        raise AudioError(
            f"{path.name}: no speech found in its {duration:.0f} s, so nothing was added; check that it "
            f"holds speech, or cut the part to label to under {_split_above(ws):g} s and add that"
        )
    session = f"{path.name} {file_sha256(path)[:12]}"
    items = []
    for start, end in spans:
        data = _flac(wave[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)])
        name = f"{path.name} {_clock(start)}-{_clock(end)}"
        items.append(PoolItem(data, name, session, hashlib.sha256(data).hexdigest()))
    return items, info


def recording_cuts(ws: Workspace, wave: np.ndarray) -> list[tuple[float, float]] | None:
    """The utterances a pool cuts a 16 kHz recording into; None when it is short enough to join whole."""
    split_above = _split_above(ws)
    if not split_above or len(wave) <= split_above * SAMPLE_RATE:
        return None
    return utterances_of(wave, ws.frontend, split_above)


def _split_above(ws: Workspace) -> float:
    """Recordings longer than this are cut into utterances of at most this long (0: never cut)."""
    return max(0.0, min(ws.config.split_above_seconds, ws.config.max_clip_seconds))


def utterances_of(
    wave: np.ndarray,
    frontend: FrontEnd,
    max_s: float,
    min_pause_s: float = UTTERANCE_PAUSE_S,
    min_speech_s: float = UTTERANCE_SPEECH_S,
) -> list[tuple[float, float]]:
    """Where a pool cuts a long 16 kHz recording: its utterances, by the front end's speech detector."""
    activity = clip_activity(wave, frontend)
    duration = len(wave) / SAMPLE_RATE
    return utterance_spans(activity, duration, max_s, min_pause_s=min_pause_s, min_speech_s=min_speech_s)


def _add_items(ws: Workspace, items: list[PoolItem], language: str, source: str) -> tuple[list[Clip], int]:
    """Store ``items`` in the ``language`` pool: (the new clips, how many the store already held)."""
    added, known = [], 0
    for item in items:
        if ws.store.clip_by_sha256(item.sha256) is not None:
            known += 1
            continue
        added.append(
            ws.store.add_clip(
                item.audio, language=language, source=source, original_name=item.name, session=item.session
            )
        )
    return added, known


def _flac(wave: np.ndarray) -> bytes:
    """16-bit FLAC bytes of a 16 kHz wave (the same samples always give the same bytes)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _clock(seconds: float) -> str:
    """``83.25`` -> ``"1:23.2"``: a time in a recording as people read it."""
    minutes, rest = divmod(round(seconds, 1), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def _audio_warnings(info: AudioInfo) -> list[str]:
    """What is odd about usable audio: the same words on predict and when a clip joins a pool."""
    warnings = []
    if info.silent:
        warnings.append("silent: the clip is (nearly) silent; record closer to the microphone")
    if info.clipped:
        warnings.append("clipped: distorted by too loud input; lower the recording level")
    return warnings
