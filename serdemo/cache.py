"""A content-addressed on-disk cache so an encoder never embeds the same audio twice."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serdemo.audio import file_sha256, load_audio, waveform_sha256
from serdemo.encoders.base import UtteranceEncoder

Progress = Callable[[int, int], None]  # progress(done, total), counted in utterances


@dataclass(frozen=True)
class CacheKey:
    """What an embedding depends on: the model, the audio's bytes and how the audio was cropped."""

    encoder: str  # UtteranceEncoder.identity; changes whenever weights or preprocessing change
    content: str  # SHA-256 of the file (file_sha256) or of the samples (waveform_sha256)
    policy: str  # WHOLE: the part of the clip embedded


# How a clip is embedded, part of every cache key: whole clips. (The key kept its "policy" field, so
# the vectors cached since random training crops were dropped, all of whole clips, stay valid.)
WHOLE = "whole"


class EmbeddingCache:
    """Float32 arrays on disk, one ``.npy`` file per :class:`CacheKey`.

    Layout: ``root/<encoder name>-<8 hex>/<2 hex>/<64 hex>.npy``: one folder per encoder identity
    (delete it to drop that model's vectors), sharded by the first two hex digits of the entry's hash
    so no folder grows past a few thousand files.

    Safe for several processes at once: an entry is written to a temporary file in its own folder and
    renamed into place with ``os.replace``, which is atomic, so a reader sees the old entry, no entry
    or the whole new one. Two writers of one key both write the same vector, and the last rename wins.
    An entry that cannot be read back (truncated, damaged) counts as a miss and is overwritten later.

    Example:
        >>> cache = EmbeddingCache(tmp_path)  # doctest: +SKIP
        >>> key = CacheKey("whisper-base", file_sha256("a.wav"), "whole")  # doctest: +SKIP
        >>> cache.put(key, vectors)  # doctest: +SKIP
        >>> cache.get(key).shape  # doctest: +SKIP
        (6, 1024)

    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, key: CacheKey) -> Path:
        """Where the entry for ``key`` lives (whether or not it exists)."""
        encoder_hash = hashlib.sha256(key.encoder.encode()).hexdigest()[:8]
        readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key.encoder)[:40]
        entry = hashlib.sha256(f"{key.encoder}\0{key.content}\0{key.policy}".encode()).hexdigest()
        return self.root / f"{readable}-{encoder_hash}" / entry[:2] / f"{entry}.npy"

    def get(self, key: CacheKey) -> np.ndarray | None:
        """Return the stored array, or ``None`` when it is absent or unreadable."""
        try:
            array = np.load(self.path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            # missing, or cut short by a crash or a full disk: recomputing is always safe
            return None
        return array if array.dtype == np.float32 else None

    def put(self, key: CacheKey, array: np.ndarray) -> None:
        """Store ``array`` as float32 under ``key``, replacing any older entry atomically."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # the temporary file must sit in the target's folder: os.replace is atomic only within one filesystem
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", suffix=".npy", delete=False)
        try:
            with handle:
                np.save(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
            # no fsync: after a power cut an empty or partial entry is just a miss, never a wrong vector
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise

    def __contains__(self, key: object) -> bool:
        return isinstance(key, CacheKey) and self.get(key) is not None


def default_cache_dir() -> Path:
    """``$SERDEMO_CACHE``, else ``$XDG_CACHE_HOME/serdemo/embeddings`` (``~/.cache/serdemo/embeddings``)."""
    if "SERDEMO_CACHE" in os.environ:
        return Path(os.environ["SERDEMO_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "serdemo" / "embeddings"


def embed_files(
    encoder: UtteranceEncoder,
    paths: Sequence[str | os.PathLike],
    cache: EmbeddingCache | None,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed audio files, reusing every vector already in ``cache``.

    Each file is hashed once; files whose content is already cached (under this encoder's identity
    are not even decoded. The misses are loaded with :func:`~serdemo.audio.load_audio` and
    embedded ``batch_size`` at a time and stored after every batch, so an interrupted run keeps its work.

    Args:
        encoder: any :class:`~serdemo.encoders.base.UtteranceEncoder`.
        paths: audio files; duplicates (same path or same bytes) are embedded once.
        cache: where vectors are kept; ``None`` embeds everything and stores nothing.
        batch_size: utterances per forward pass.
        progress: called as ``progress(done, total)`` after the lookup and after every batch.

    Returns:
        (N, L, 2D) float32, in the order of ``paths``.

    Raises:
        AudioError: a file is missing or unusable; the message names it.

    """
    paths = [Path(p) for p in paths]
    contents = [file_sha256(p) for p in paths]
    sizes = [p.stat().st_size for p in paths]
    return _embed(encoder, contents, sizes, lambda i: load_audio(paths[i]), cache, batch_size, progress)


def embed_waveforms(
    encoder: UtteranceEncoder,
    waveforms: Sequence[np.ndarray],
    cache: EmbeddingCache | None,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed in-memory 16 kHz waveforms (e.g. app recordings) through the cache, like :func:`embed_files`.

    Args:
        encoder: any :class:`~serdemo.encoders.base.UtteranceEncoder`.
        waveforms: 1-D float32 arrays at 16 kHz.
        cache: where vectors are kept; ``None`` stores nothing.
        batch_size: utterances per forward pass.
        progress: called as ``progress(done, total)``.

    Returns:
        (N, L, 2D) float32, in the order of ``waveforms``.

    """
    keys = [waveform_sha256(w) for w in waveforms]
    sizes = [len(w) for w in waveforms]
    return _embed(encoder, keys, sizes, lambda i: waveforms[i], cache, batch_size, progress)


def _embed(
    encoder: UtteranceEncoder,
    contents: list[str],
    sizes: list[int],
    load: Callable[[int], np.ndarray],
    cache: EmbeddingCache | None,
    batch_size: int,
    progress: Progress | None,
) -> np.ndarray:
    total = len(contents)
    shape = (encoder.num_layers, 2 * encoder.hidden_size)
    out = np.zeros((total, *shape), dtype=np.float32)

    # 1) look every distinct content up once; duplicates share one slot
    positions: dict[str, list[int]] = {}
    for i, content in enumerate(contents):
        positions.setdefault(content, []).append(i)
    misses: list[str] = []
    for content, where in positions.items():
        cached = cache.get(CacheKey(encoder.identity, content, WHOLE)) if cache is not None else None
        if cached is not None and cached.shape == shape:
            out[where] = cached
        else:
            misses.append(content)
    # batches of similar length waste little compute on padding; file size is a free proxy for length
    misses.sort(key=lambda c: sizes[positions[c][0]])
    done = total - sum(len(positions[c]) for c in misses)
    if progress is not None:
        progress(done, total)

    # 2) load, embed and store the misses a batch at a time
    for start in range(0, len(misses), batch_size):
        batch = misses[start : start + batch_size]
        waves = [load(positions[c][0]) for c in batch]
        vectors = encoder.embed(waves, batch_size=batch_size)
        for content, vector in zip(batch, vectors, strict=True):
            out[positions[content]] = vector
            if cache is not None:
                cache.put(CacheKey(encoder.identity, content, WHOLE), vector)
            done += len(positions[content])
        if progress is not None:
            progress(done, total)
    return out
