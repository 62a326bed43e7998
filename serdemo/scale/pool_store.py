"""The vectors of a large clip pool as Parquet shards plus a manifest: columnar, streamable, resumable.

Layout of a pool store folder::

    manifest.json           encoder identity, crop policy, vector shape, shard list and row counts
    vectors/<shard>.parquet one row per clip: id, path, size, mtime_ns, sha256, language, speaker,
                            emotion, error, vector (float32 list of L * 2D, or null where embedding failed)

Each shard is written whole to a temporary file and renamed into place, so a shard file is either
complete or absent: a job killed halfway loses only the shards that were in flight, and the next run
skips every clip some shard already holds (matched by path, size and modification time, which a
stat gives without reading the audio). The manifest is rebuilt from the shard files' footers, so a
shard written by a worker whose driver died is still counted.

Readers stream one shard (or one column) at a time; nothing here holds the whole pool in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "serdemo-pool/1"
MANIFEST = "manifest.json"
VECTORS = "vectors"
INSTALL_HINT = "pip install -r requirements-scale.txt (ray[data] and pyarrow)"
# What a clip row holds besides its vector; a stat (path, size, mtime) identifies it for resuming.
CLIP_COLUMNS = ("id", "path", "size", "mtime_ns", "sha256", "language", "speaker", "emotion", "error")
# Floats do not dictionary-encode: the default tries and falls back, leaving 45 kB per whisper-base clip
# and a 7x slower write; byte-stream-split + zstd stores the same bits in 23 kB (28.7 kB raw).
WRITE_OPTIONS: dict[str, Any] = {
    "use_dictionary": ["language", "speaker", "emotion"],
    "use_byte_stream_split": ["vector.list.element"],
    "compression": "zstd",
}


class PoolStoreError(ValueError):
    """A pool store that cannot be used as asked; the message says what to do."""


def require_pyarrow() -> Any:
    """Import pyarrow, or say which optional requirements file installs it."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as error:
        raise PoolStoreError(f"pool stores are Parquet files and need pyarrow: {INSTALL_HINT}") from error
    return pyarrow


@dataclass(frozen=True)
class StoreSpec:
    """What every vector in a store was made with; a store never mixes two specs."""

    encoder: str  # UtteranceEncoder.identity
    policy: str  # serdemo.cache.WHOLE: whole clips (kept in the manifest, as in the cache key)
    layers: int
    dim: int  # 2 * hidden size (mean + std)


def clip_schema(spec: StoreSpec) -> pa.Schema:
    """Arrow schema of a vector shard (the vector as a fixed-size float32 list of ``layers * dim``)."""
    pa = require_pyarrow()
    fields = [
        pa.field("id", pa.string()),
        pa.field("path", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("language", pa.string()),
        pa.field("speaker", pa.string()),
        pa.field("emotion", pa.string()),
        pa.field("error", pa.string()),
        pa.field("vector", pa.list_(pa.float32(), spec.layers * spec.dim)),
    ]
    return pa.schema(fields, metadata={"serdemo": json.dumps(spec.__dict__)})


def vectors_table(spec: StoreSpec, clips: list[dict[str, Any]], vectors: list[np.ndarray | None]) -> pa.Table:
    """One shard's table: clip rows (``CLIP_COLUMNS``) and their (L, dim) vectors, ``None`` for failures."""
    pa = require_pyarrow()
    width = spec.layers * spec.dim
    flat = np.zeros((len(clips), width), np.float32)
    valid = np.ones(len(clips), bool)
    for row, vector in enumerate(vectors):
        if vector is None:
            valid[row] = False
        else:
            flat[row] = np.asarray(vector, np.float32).reshape(width)
    vector_column = pa.FixedSizeListArray.from_arrays(
        pa.array(flat.reshape(-1)), width, mask=pa.array(~valid)
    )
    columns = {name: [clip.get(name) for clip in clips] for name in CLIP_COLUMNS}
    schema = clip_schema(spec)
    arrays = [pa.array(columns[name], type=schema.field(name).type) for name in CLIP_COLUMNS]
    return pa.Table.from_arrays([*arrays, vector_column], schema=schema)


def table_vectors(table: pa.Table, spec: StoreSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors (N, L, dim) float32, valid (N,) bool)`` of a shard table; failed rows are zeros."""
    column = table.column("vector").combine_chunks()
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)
    width = spec.layers * spec.dim
    # a fixed-size list keeps width slots for every row, null or not; .values ignores a slice's offset
    values = column.values.slice(column.offset * width, len(column) * width)
    flat = values.to_numpy(zero_copy_only=False) if len(column) else np.zeros(0, np.float32)
    vectors = np.asarray(flat, np.float32).reshape(len(column), width).reshape(-1, spec.layers, spec.dim)
    return np.where(valid[:, None, None], vectors, 0.0).astype(np.float32, copy=False), valid


class PoolStore:
    """A folder of Parquet vector shards for one encoder and crop policy, with its manifest.

    Example:
        >>> spec = StoreSpec("whisper-base/...", "whole", 7, 1024)
        >>> store = PoolStore.open_or_create("pool/", spec)  # doctest: +SKIP
        >>> for name in store.shard_names():  # doctest: +SKIP
        ...     vectors, valid = store.read_vectors(name)

    """

    def __init__(self, root: str | os.PathLike, spec: StoreSpec) -> None:
        self.root = Path(root)
        self.spec = spec

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | os.PathLike) -> PoolStore:
        """Open an existing store; PoolStoreError says how to make one when there is none."""
        root = Path(root)
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise PoolStoreError(
                f"{root} is not a pool store (no {MANIFEST}); make one with "
                "python -m serdemo embed --pool NAME=PATH --out " + str(root)
            )
        data = json.loads(manifest.read_text())
        if data.get("format") != FORMAT:
            raise PoolStoreError(f"{manifest} has format {data.get('format')!r}; this serdemo reads {FORMAT}")
        return cls(root, StoreSpec(**data["spec"]))

    @classmethod
    def open_or_create(cls, root: str | os.PathLike, spec: StoreSpec) -> PoolStore:
        """Open the store at ``root`` made with ``spec``, or create it; a different spec is an error."""
        root = Path(root)
        if (root / MANIFEST).is_file():
            store = cls.open(root)
            if store.spec != spec:
                raise PoolStoreError(
                    f"{root} holds vectors of {store.spec}, not {spec}: embed into another --out folder"
                )
            return store
        if root.exists() and any(root.iterdir()):
            raise PoolStoreError(
                f"{root} exists and is not a pool store: choose an empty or new --out folder"
            )
        store = cls(root, spec)
        store.write_manifest()
        return store

    # -- writing --------------------------------------------------------------------------------

    def write_shard(self, name: str, table: pa.Table) -> Path:
        """Write ``table`` as shard ``name`` atomically (temporary file, then rename)."""
        import pyarrow.parquet as pq

        folder = self.root / VECTORS
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.parquet"
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp-", suffix=".parquet", delete=False)
        handle.close()
        try:
            pq.write_table(table, handle.name, **WRITE_OPTIONS)
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        return target

    def write_manifest(self) -> dict[str, Any]:
        """Rebuild ``manifest.json`` from the shard files' footers (atomic replace) and return it."""
        import pyarrow.parquet as pq

        shards = []
        for name in self.shard_names():
            meta = pq.read_metadata(self.shard_path(name))
            shards.append({"name": name, "file": f"{VECTORS}/{name}.parquet", "rows": meta.num_rows})
        manifest = {
            "format": FORMAT,
            "spec": self.spec.__dict__,
            "columns": [*CLIP_COLUMNS, "vector"],
            "rows": sum(s["rows"] for s in shards),
            "shards": shards,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{MANIFEST}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.root / MANIFEST)
        return manifest

    # -- reading --------------------------------------------------------------------------------

    def shard_names(self) -> list[str]:
        """Names of the complete shard files, sorted (temporary files are not shards)."""
        folder = self.root / VECTORS
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.parquet") if not p.name.startswith("."))

    def shard_path(self, name: str) -> Path:
        """Where shard ``name`` lives."""
        return self.root / VECTORS / f"{name}.parquet"

    def read_table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """Shard ``name`` (or some of its columns) as an Arrow table."""
        import pyarrow.parquet as pq

        return pq.read_table(self.shard_path(name), columns=columns)

    def read_vectors(self, name: str) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """Shard ``name``'s clip columns, vectors (N, L, dim) float32 and valid mask (N,)."""
        table = self.read_table(name)
        vectors, valid = table_vectors(table, self.spec)
        return table.drop_columns(["vector"]), vectors, valid

    def done_stats(self) -> set[tuple[str, int, int]]:
        """``(path, size, mtime_ns)`` of every clip some shard holds, read from three columns only."""
        done: set[tuple[str, int, int]] = set()
        for name in self.shard_names():
            table = self.read_table(name, ["path", "size", "mtime_ns"])
            done.update(
                zip(
                    table.column("path").to_pylist(),
                    table.column("size").to_pylist(),
                    table.column("mtime_ns").to_pylist(),
                    strict=True,
                )
            )
        return done

    def iter_shards(self) -> Iterator[tuple[str, pa.Table, np.ndarray, np.ndarray]]:
        """``(name, clip columns, vectors, valid)`` one shard at a time."""
        for name in self.shard_names():
            yield (name, *self.read_vectors(name))
