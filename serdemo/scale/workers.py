"""The shard workers: callable classes, one model each, that the local loop and Ray Data both run."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serdemo.scale.pool_store import PoolStore, StoreSpec, vectors_table

PREDICTIONS = "predictions"  # the folder of per-shard prediction files
RULES = ("least_confidence", "margin", "entropy")  # uncertainty scores written per clip


# ----------------------------------------------------------------------------------------------
# workers: callable classes, one model each, the same under both engines


class EmbedWorker:
    """Embed one shard per call and write it to the pool store (a Ray Data callable class).

    Args:
        store_root: the pool store folder (on a cluster: a path every node sees).
        spec: the store's :class:`~serdemo.scale.pool_store.StoreSpec`.
        encoder_factory: builds the encoder once per worker, e.g. ``encoder_factory("whisper-base")``.
        cache_dir: the embedding cache to read and fill; ``None`` stores vectors only in the pool store.
        batch_size: utterances per forward pass.
        threads: torch threads of this worker; ``None`` keeps torch's default.

    """

    def __init__(
        self,
        store_root: str,
        spec: dict[str, Any],
        encoder_factory: Callable[[], Any],
        cache_dir: str | None,
        batch_size: int = 8,
        threads: int | None = None,
    ) -> None:
        import torch

        from serdemo.cache import EmbeddingCache

        if threads:
            torch.set_num_threads(threads)
        self.store = PoolStore(store_root, StoreSpec(**spec))
        self.encoder = encoder_factory()
        self.cache = EmbeddingCache(cache_dir) if cache_dir else None
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed the shards in ``batch["task"]`` (JSON strings); return one summary row per shard."""
        rows = [self.embed_shard(json.loads(str(task))) for task in batch["task"]]
        return {key: np.array([row[key] for row in rows]) for key in rows[0]}

    def embed_shard(self, shard: dict[str, Any]) -> dict[str, Any]:
        """Embed the clips of ``shard``, write its Parquet file and return a summary."""
        from serdemo.audio import AudioError, file_sha256
        from serdemo.cache import embed_files

        started, cpu_started = time.perf_counter(), time.process_time()
        clips = [dict(c) for c in shard["clips"]]
        paths = [c["path"] for c in clips]
        vectors: list[np.ndarray | None]
        for clip in clips:
            clip["sha256"], clip["error"] = None, None
        try:
            vectors = list(embed_files(self.encoder, paths, self.cache, self.batch_size))
        except (AudioError, ValueError):
            # one unusable clip must not sink the shard: embed one by one and record what failed
            vectors = []
            for clip in clips:
                try:
                    vectors.append(embed_files(self.encoder, [clip["path"]], self.cache, 1)[0])
                except (AudioError, ValueError) as error:
                    clip["error"] = " ".join(str(error).split())
                    vectors.append(None)
        for clip in clips:
            if clip["error"] is None:
                clip["sha256"] = file_sha256(clip["path"])
        self.store.write_shard(shard["name"], vectors_table(self.store.spec, clips, vectors))
        return {
            "shard": shard["name"],
            "clips": len(clips),
            "failed": sum(c["error"] is not None for c in clips),
            "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started,  # not inflated by other jobs' time slices
            "pid": os.getpid(),
        }


class StatsWorker:
    """Per-speaker feature statistics of one shard (count, mean, M2) for the normaliser's unseen speakers."""

    def __init__(self, store_root: str) -> None:
        self.store = PoolStore.open(store_root)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Statistics of the shards named in ``batch["task"]``, pickled as bytes (one row per shard)."""
        import pickle

        rows = [pickle.dumps(self.shard_stats(str(name))) for name in batch["task"]]
        return {"shard": np.array([str(n) for n in batch["task"]]), "stats": np.array(rows, dtype=object)}

    def shard_stats(self, name: str) -> dict[str, tuple[int, np.ndarray, np.ndarray]]:
        """``{speaker: (n, mean, M2)}`` over the shard's valid rows."""
        table, vectors, valid = self.store.read_vectors(name)
        x = vectors[valid].astype(np.float64)
        speakers = np.asarray(table.column("speaker").to_pylist(), dtype=str)[valid]
        out: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
        for speaker in np.unique(speakers):
            rows = x[speakers == speaker]
            mean = rows.mean(axis=0)
            out[str(speaker)] = (len(rows), mean, ((rows - mean) ** 2).sum(axis=0))
        return out


def merge_stats(parts: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray, np.ndarray]:
    """Combine per-shard ``(n, mean, M2)`` (Chan et al.'s parallel variance); the order is the caller's."""
    n, mean, m2 = parts[0]
    for n_b, mean_b, m2_b in parts[1:]:
        total = n + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (n * n_b / total)
        n = total
    return n, mean, m2


def pool_normalizer(normalizer: Any, shard_stats: Sequence[dict[str, Any]]) -> Any:
    """A copy of a fitted FeatureNormalizer whose unseen large speakers use statistics of the whole pool.

    In ``per-speaker`` mode the app standardises a speaker unseen at fit time with the statistics of
    their clips in the batch at hand; over an archive the batch is the pool, so here those statistics
    are summed over every shard first, and a clip's probabilities no longer depend on which shard it
    sits in. Unseen languages need nothing: they always get the global statistics.
    """
    import copy

    if normalizer is None or normalizer.mode != "per-speaker":
        return normalizer
    out = copy.deepcopy(normalizer)
    groups: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for stats in shard_stats:
        for group, part in stats.items():
            groups.setdefault(group, []).append(part)
    for group, parts in sorted(groups.items()):
        n, mean, m2 = merge_stats(parts)
        if group in out.speaker_stats or n < out.min_group_size:
            continue  # fitted speakers keep their statistics; small ones fall back as in transform
        out.speaker_stats[group] = (mean.astype(np.float32), (np.sqrt(m2 / n) + out.eps).astype(np.float32))
    return out


class PredictWorker:
    """Probabilities and uncertainty scores of one shard per call, written as a Parquet file."""

    def __init__(self, store_root: str, model_dir: str, out_root: str, normalizer: Any = None) -> None:
        import torch

        from serdemo.learn import load_model

        torch.set_num_threads(1)  # the head is tiny: one thread per worker is plenty and deterministic
        self.store = PoolStore.open(store_root)
        self.result = load_model(model_dir)
        if normalizer is not None:
            self.result.normalizer = normalizer
        self.out = Path(out_root)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predict the shards named in ``batch["task"]``; return one summary row per shard."""
        rows = [self.predict_shard(str(name)) for name in batch["task"]]
        return {key: np.array([row[key] for row in rows]) for key in rows[0]}

    def predict_shard(self, name: str) -> dict[str, Any]:
        """Write ``predictions/<shard>.parquet``: clip columns, p_<class>, top, confidence, uncertainties."""
        import pyarrow as pa

        from serdemo.active import uncertainty
        from serdemo.learn import build_clipset, predict_proba

        started = time.perf_counter()
        table, vectors, valid = self.store.read_vectors(name)
        table = table.filter(pa.array(valid))
        keep = ["id", "path", "sha256", "language", "speaker", "emotion"]
        out = table.select(keep)
        classes = self.result.classes
        if len(table):
            clips = build_clipset(
                ids=table.column("id").to_pylist(),
                languages=table.column("language").to_pylist(),
                speakers=table.column("speaker").to_pylist(),
                features=vectors[valid],
            )
            probs = predict_proba(self.result, clips)
        else:
            probs = np.zeros((0, len(classes)), np.float32)
        for i, emotion in enumerate(classes):
            out = out.append_column(f"p_{emotion}", pa.array(probs[:, i], pa.float32()))
        top = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
        out = out.append_column("top", pa.array([classes[i] for i in top], pa.string()))
        out = out.append_column("confidence", pa.array(probs.max(axis=1) if len(probs) else [], pa.float32()))
        for rule in RULES:
            scores = uncertainty(probs, rule) if len(probs) else np.zeros(0)
            out = out.append_column(rule, pa.array(scores, pa.float64()))
        _write_parquet_atomic(out, self.out / PREDICTIONS / f"{name}.parquet")
        return {
            "shard": name,
            "clips": len(out),
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
        }


def _write_parquet_atomic(table: Any, target: Path) -> None:
    import tempfile

    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", suffix=".parquet", delete=False)
    handle.close()
    try:
        pq.write_table(table, handle.name)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
