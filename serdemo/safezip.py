"""Unpack an uploaded zip archive without trusting it: streamed, with caps, nothing outside its folder."""

from __future__ import annotations

import lzma
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

CHUNK_BYTES = 1 << 20


class ArchiveError(ValueError):
    """An archive that cannot be unpacked within the limits; the message says which and what to do."""


@dataclass(frozen=True)
class ZipLimits:
    """What one archive may hold. Sizes are counted while inflating, never taken from its headers."""

    max_entries: int = 20_000  # members listed in the archive, kept or not
    max_files: int = 5_000  # members unpacked
    max_file_bytes: int = 64 << 20  # one unpacked member
    max_total_bytes: int = 2 << 30  # all unpacked members together


@dataclass
class Unpacked:
    """Members written under the target folder, and those skipped with the reason."""

    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why"


def unpack(
    archive: Path,
    target: Path,
    keep: Callable[[PurePosixPath], str | None],
    limits: ZipLimits | None = None,
) -> Unpacked:
    """Unpack the members ``keep`` accepts into ``target``; on any error ``target`` is removed again.

    Args:
        archive: the .zip file.
        target: a new folder (created here).
        keep: member name -> ``None`` to unpack it, or why it is skipped (reported, not an error).
        limits: caps on entries and inflated bytes (default :class:`ZipLimits`).

    Raises:
        ArchiveError: not a zip, or over a limit (nothing is left behind).

    """
    limits = limits or ZipLimits()
    out = Unpacked()
    target.mkdir(parents=True, exist_ok=False)
    total = 0
    try:
        # the entry count from the end record, before ZipFile builds an object per entry (a crafted
        # central directory of millions of entries would take gigabytes)
        with archive.open("rb") as raw:
            end = zipfile._EndRecData(raw)  # noqa: SLF001 - stable since Python 2; no public API for it
        if end and end[zipfile._ECD_ENTRIES_TOTAL] > limits.max_entries:  # noqa: SLF001
            raise ArchiveError(
                f"{archive.name}: {end[zipfile._ECD_ENTRIES_TOTAL]} entries, over the "  # noqa: SLF001
                f"{limits.max_entries} limit; split it into smaller archives"
            )
        with zipfile.ZipFile(archive) as handle:
            members = handle.infolist()
            if len(members) > limits.max_entries:
                raise ArchiveError(
                    f"{archive.name}: {len(members)} entries, over the {limits.max_entries} limit; "
                    "split it into smaller archives"
                )
            for member in members:
                if member.is_dir():
                    continue
                name = PurePosixPath(member.filename.replace("\\", "/"))
                # no absolute paths, drive letters or "..": an archive must not write outside its folder
                if name.is_absolute() or ".." in name.parts or (name.parts and ":" in name.parts[0]):
                    out.skipped.append(f"{member.filename[:200]}: a path outside the archive's folder")
                    continue
                if member.flag_bits & 0x1:
                    out.skipped.append(f"{name.name}: encrypted")
                    continue
                if name.suffix.lower() == ".zip":
                    out.skipped.append(f"{name.name}: a zip inside the zip (unpack it first)")
                    continue
                why = keep(name)
                if why is not None:
                    out.skipped.append(f"{name.name}: {why}")
                    continue
                if len(out.files) >= limits.max_files:
                    raise ArchiveError(
                        f"{archive.name}: more than {limits.max_files} files; split it into smaller archives"
                    )
                path = target.joinpath(*name.parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                size = 0
                with handle.open(member) as source, path.open("wb") as sink:
                    while block := source.read(CHUNK_BYTES):
                        size += len(block)
                        total += len(block)
                        if size > limits.max_file_bytes:
                            raise ArchiveError(
                                f"{archive.name}: {name.name} unpacks to over "
                                f"{limits.max_file_bytes >> 20} MB, the limit for one file"
                            )
                        if total > limits.max_total_bytes:
                            raise ArchiveError(
                                f"{archive.name}: unpacks to over {limits.max_total_bytes >> 20} MB, "
                                "the limit for one archive; split it"
                            )
                        sink.write(block)
                out.files.append(path)
    except zipfile.BadZipFile:
        shutil.rmtree(target, ignore_errors=True)
        raise ArchiveError(f"{archive.name}: not a valid .zip archive") from None
    except (
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
        EOFError,
        OSError,
        zlib.error,
        lzma.LZMAError,
    ) as error:
        # unsupported compression, a damaged member (CRC), a full disk
        shutil.rmtree(target, ignore_errors=True)
        raise ArchiveError(f"{archive.name}: cannot be unpacked ({type(error).__name__})") from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return out
