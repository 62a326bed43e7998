"""Embed and pseudo-label a large unlabeled pool as maps over shards, in one process or on Ray Data.

Both engines run the same worker classes on the same shards: the driver lists the pool, drops the
clips a previous run already stored, cuts the rest into shards in a fixed order, and each shard is
one call of :class:`EmbedWorker` (or :class:`PredictWorker`). ``--engine local`` calls the worker in
a loop; ``--engine ray`` hands the shards to ``ray.data ... map_batches`` with the worker as a
callable class, so each Ray actor loads one model and keeps it. A worker writes its shard's Parquet
file itself, atomically: a worker that dies loses only the shard it was on (Ray Data restarts the
actor and retries it), and a job that dies is resumed by running the same command again.

Vectors go through :func:`serdemo.cache.embed_files`, the code path the app and the experiment CLI
use, so they also land in the embedding cache those read, and a shard gives the same bits under
either engine (the tests check this).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from serdemo.pool_store import INSTALL_HINT, PoolStore, StoreSpec, require_pyarrow, vectors_table

ENGINES = ("local", "ray")
PREDICTIONS = "predictions"
RULES = ("least_confidence", "margin", "entropy")


class ScaleError(ValueError):
    """A pool job that cannot run as asked; the message says what to do."""


def require_ray() -> Any:
    """Import Ray (with Ray Data), or say which optional requirements file installs it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise ScaleError(f"--engine ray needs Ray Data, which is not installed: {INSTALL_HINT}") from error
    return ray


# ----------------------------------------------------------------------------------------------
# listing and planning


def list_pool(name: str, root: str | os.PathLike, limit: int | None = None) -> list[dict[str, Any]]:
    """Clip rows of a corpus, a folder or a CSV (``folder`` corpus) with the stat that identifies each.

    Args:
        name: a corpus registry name (``ravdess``, ``emodb``, ``folder`` for your own folder or CSV...).
        root: its folder (or CSV file for ``folder``).
        limit: keep the first ``limit`` clips by id (quick tries).

    """
    from serdemo.corpora import load_corpus

    utterances = load_corpus(name, root, keep_unmapped=True)[:limit]
    rows = []
    for u in utterances:
        stat = u.path.stat()
        rows.append(
            {
                "id": u.id,
                "path": str(u.path),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "language": u.language,
                "speaker": u.speaker,
                "emotion": u.emotion,
            }
        )
    return rows


def plan_shards(
    clips: Sequence[dict[str, Any]], done: set[tuple[str, int, int]], shard_size: int
) -> list[dict[str, Any]]:
    """Cut the clips no shard holds yet into shards of ``shard_size``, in id order.

    A shard's name is a hash of its clips' stats, so the same pending clips always give the same
    shards (hence the same batches and the same bits) and a new run never overwrites an old shard.
    """
    if shard_size < 1:
        raise ScaleError(f"--shard-size must be at least 1, got {shard_size}")
    pending = sorted(
        (c for c in clips if (c["path"], c["size"], c["mtime_ns"]) not in done), key=lambda c: c["id"]
    )
    shards = []
    for start in range(0, len(pending), shard_size):
        part = pending[start : start + shard_size]
        digest = hashlib.sha256(
            json.dumps([[c["path"], c["size"], c["mtime_ns"]] for c in part]).encode()
        ).hexdigest()
        shards.append({"name": f"shard-{digest[:16]}", "clips": part})
    return shards


# ----------------------------------------------------------------------------------------------
# workers: callable classes, one model each, the same under both engines


class EmbedWorker:
    """Embed one shard per call and write it to the pool store (a Ray Data callable class).

    Args:
        store_root: the pool store folder (on a cluster: a path every node sees).
        spec: the store's :class:`~serdemo.pool_store.StoreSpec`.
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
            vectors = list(
                embed_files(self.encoder, paths, self.cache, self.batch_size, policy=self.store.spec.policy)
            )
        except (AudioError, ValueError):
            # one unusable clip must not sink the shard: embed one by one and record what failed
            vectors = []
            for clip in clips:
                try:
                    vectors.append(
                        embed_files(
                            self.encoder, [clip["path"]], self.cache, 1, policy=self.store.spec.policy
                        )[0]
                    )
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
    """Per-group feature statistics of one shard (count, mean, M2) for the normaliser's unseen groups."""

    def __init__(self, store_root: str) -> None:
        self.store = PoolStore.open(store_root)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Statistics of the shards named in ``batch["task"]``, pickled as bytes (one row per shard)."""
        import pickle

        rows = [pickle.dumps(self.shard_stats(str(name))) for name in batch["task"]]
        return {"shard": np.array([str(n) for n in batch["task"]]), "stats": np.array(rows, dtype=object)}

    def shard_stats(self, name: str) -> dict[str, dict[str, tuple[int, np.ndarray, np.ndarray]]]:
        """``{"language": {group: (n, mean, M2)}, "speaker": {...}}`` over the shard's valid rows."""
        table, vectors, valid = self.store.read_vectors(name)
        x = vectors[valid].astype(np.float64)
        out: dict[str, dict[str, tuple[int, np.ndarray, np.ndarray]]] = {}
        for kind in ("language", "speaker"):
            groups = np.asarray(table.column(kind).to_pylist(), dtype=str)[valid]
            out[kind] = {}
            for group in np.unique(groups):
                rows = x[groups == group]
                mean = rows.mean(axis=0)
                out[kind][str(group)] = (len(rows), mean, ((rows - mean) ** 2).sum(axis=0))
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
    """A copy of a fitted FeatureNormalizer whose unseen large groups use statistics of the whole pool.

    The app standardises a speaker (or language) unseen at fit time with the statistics of its clips
    in the batch at hand; over an archive the batch is the pool, so here those statistics are summed
    over every shard first, and a clip's probabilities no longer depend on which shard it sits in.
    """
    import copy

    if normalizer is None or normalizer.mode in ("none", "global"):
        return normalizer
    out = copy.deepcopy(normalizer)
    kinds = [("language", out.language_stats)]
    if out.mode == "per-speaker":
        kinds.append(("speaker", out.speaker_stats))
    for kind, table in kinds:
        groups: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for stats in shard_stats:
            for group, part in stats[kind].items():
                groups.setdefault(group, []).append(part)
        for group, parts in sorted(groups.items()):
            n, mean, m2 = merge_stats(parts)
            if group in table or n < out.min_group_size:
                continue  # fitted groups keep their statistics; small ones fall back as in transform
            table[group] = (mean.astype(np.float32), (np.sqrt(m2 / n) + out.eps).astype(np.float32))
    return out


class PredictWorker:
    """Probabilities and uncertainty scores of one shard per call, written as a Parquet file."""

    def __init__(self, store_root: str, model_dir: str, out_root: str, normalizer: Any = None) -> None:
        import torch

        from serdemo.adapt import load_model

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
        from serdemo.adapt import ClipSet, predict_proba

        started = time.perf_counter()
        table, vectors, valid = self.store.read_vectors(name)
        table = table.filter(pa.array(valid))
        keep = ["id", "path", "sha256", "language", "speaker", "emotion"]
        out = table.select(keep)
        classes = self.result.classes
        if len(table):
            clips = ClipSet(
                ids=table.column("id").to_pylist(),
                labels=np.full(len(table), -1),
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


# ----------------------------------------------------------------------------------------------
# engines: a loop, or Ray Data's map_batches over an actor pool


@dataclass(frozen=True)
class Engine:
    """Where the shards run: ``local`` (this process) or ``ray`` (an actor pool of ``workers``).

    Attributes:
        name: ``"local"`` or ``"ray"``.
        workers: Ray actors (each loads one model); ignored by the local engine.
        cpus_per_worker: CPUs Ray reserves per actor.
        address: a running Ray cluster (``"auto"``, ``"ray://host:10001"``); ``None`` starts a local one
            with ``workers * cpus_per_worker`` CPUs unless Ray is already initialised.
        quiet: no Ray Data progress lines.

    """

    name: str = "local"
    workers: int = 1
    cpus_per_worker: float = 1.0
    address: str | None = None
    quiet: bool = False  # silence Ray Data's progress reports (ours come through ``log``)

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ScaleError(f"unknown engine {self.name!r}: use one of {', '.join(ENGINES)}")
        if self.workers < 1:
            raise ScaleError(f"--workers must be at least 1, got {self.workers}")

    def map(self, worker: type, kwargs: dict[str, Any], tasks: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Run ``worker(**kwargs)`` over ``tasks`` (one per call); yield its summary rows as they finish."""
        if not tasks:
            return
        if self.name == "local":
            instance = worker(**kwargs)
            for task in tasks:
                out = instance({"task": np.array([task], dtype=object)})
                yield {key: _plain(values[0]) for key, values in out.items()}
            return
        ray = require_ray()
        if not ray.is_initialized():
            runtime_env = None
            if self.address is not None:
                # remote nodes get this checkout of serdemo; its dependencies must be installed there
                runtime_env = {"py_modules": [str(Path(__file__).resolve().parent)]}
            ray.init(
                address=self.address,
                num_cpus=None if self.address else max(1, int(self.workers * self.cpus_per_worker)),
                include_dashboard=False,
                runtime_env=runtime_env,
                logging_level="WARNING",
            )
        if self.quiet:
            import logging

            ray.data.DataContext.get_current().enable_progress_bars = False
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        dataset = ray.data.from_items([{"task": t} for t in tasks], override_num_blocks=len(tasks))
        mapped = dataset.map_batches(
            worker,
            fn_constructor_kwargs=kwargs,
            batch_size=1,  # one shard per call: a retried call redoes one shard
            compute=ray.data.ActorPoolStrategy(size=self.workers),  # a fixed pool: one model per actor
            num_cpus=self.cpus_per_worker,
            batch_format="numpy",
        )
        for row in mapped.iter_rows():
            yield {key: _plain(value) for key, value in row.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------------------------
# the two jobs


def behind_frontend(encoder_factory: Callable[[], Any], frontend: str | None) -> Any:
    """What ``encoder_factory`` builds, behind the speech front end the app and the experiment CLI use.

    Without it a pool embedded here has another encoder identity than the app's, so the app re-embeds
    every queued clip and a model trained in the app would score vectors of another kind.
    """
    from serdemo.config import AdaptConfig
    from serdemo.speech import with_frontend

    return with_frontend(encoder_factory(), frontend or AdaptConfig().frontend)


def store_frontend(spec: StoreSpec) -> str:
    """The speech front end a store's vectors were made with (the last part of the encoder identity)."""
    from serdemo.speech import FrontEnd

    try:
        return str(FrontEnd.parse(spec.encoder.rsplit("/", 1)[-1]))
    except ValueError:
        return "none"


def encoder_spec(encoder_factory: Callable[[], Any], policy: str = "whole") -> StoreSpec:
    """The store spec of what ``encoder_factory`` builds (builds it once on the driver, to read its shape)."""
    encoder = encoder_factory()
    return StoreSpec(encoder.identity, policy, encoder.num_layers, 2 * encoder.hidden_size)


def embed_pool(
    clips: Sequence[dict[str, Any]],
    store_root: str | os.PathLike,
    encoder_factory: Callable[[], Any],
    engine: Engine,
    cache_dir: str | os.PathLike | None,
    batch_size: int = 8,
    shard_size: int = 64,
    threads: int | None = None,
    spec: StoreSpec | None = None,
    log: Callable[[str], None] | None = None,
    frontend: str | None = None,
) -> dict[str, Any]:
    """Embed every clip no shard of the store holds yet; return counts and timings.

    Args:
        clips: rows from :func:`list_pool`.
        store_root: the pool store folder (created if new).
        encoder_factory: builds the encoder (picklable for Ray, e.g. a ``functools.partial``).
        engine: where to run.
        cache_dir: embedding cache to read and fill (the app's and the CLI's); ``None``: none.
        batch_size: utterances per forward pass.
        shard_size: clips per shard (the unit of work, of retry and of a Parquet file).
        threads: torch threads per worker.
        spec: the store spec; by default read off the encoder (built once here).
        log: called with one line per finished shard.
        frontend: speech front end (:mod:`serdemo.speech`) the encoder embeds through; ``None``: the
            app's default (``AdaptConfig.frontend``), so the app finds these vectors in the cache.

    """
    require_pyarrow()
    encoder_factory = partial(behind_frontend, encoder_factory, frontend)
    spec = spec or encoder_spec(encoder_factory)
    store = PoolStore.open_or_create(store_root, spec)
    done = store.done_stats()
    shards = plan_shards(clips, done, shard_size)
    kwargs = {
        "store_root": str(store.root),
        "spec": spec.__dict__,
        "encoder_factory": encoder_factory,
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "batch_size": batch_size,
        "threads": threads,
    }
    started = time.perf_counter()
    embedded = failed = 0
    worker_seconds = cpu_seconds = 0.0
    for summary in engine.map(EmbedWorker, kwargs, [json.dumps(s) for s in shards]):
        embedded += summary["clips"]
        failed += summary["failed"]
        worker_seconds += summary["seconds"]
        cpu_seconds += summary["cpu_seconds"]
        if log is not None:
            log(f"{summary['shard']}: {summary['clips']} clips in {summary['seconds']:.1f} s")
    manifest = store.write_manifest()
    return {
        "clips": len(clips),
        "skipped": len(clips) - sum(len(s["clips"]) for s in shards),
        "embedded": embedded,
        "failed": failed,
        "shards": len(shards),
        "seconds": time.perf_counter() - started,
        "worker_seconds": worker_seconds,  # summed over shards
        "cpu_seconds": cpu_seconds,
        "rows": manifest["rows"],
    }


def predict_pool(
    store_root: str | os.PathLike,
    model_dir: str | os.PathLike,
    out_root: str | os.PathLike,
    engine: Engine,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Probabilities and uncertainty of every stored clip under a saved model, one Parquet file per shard.

    Two maps over the shards: the first sums feature statistics of the groups (speakers, languages)
    the model's normaliser has not seen, the driver merges them in shard order, and the second
    predicts with those statistics; so a clip's probabilities are the same whatever its shard.
    """
    from serdemo.adapt import load_model
    from serdemo.speech import FrontEnd

    require_pyarrow()
    store = PoolStore.open(store_root)
    result = load_model(model_dir)
    if result.config.mode != "frozen":
        raise ScaleError(
            f"{model_dir} is a {result.config.mode} model; pool prediction needs a frozen-mode head"
        )
    head = result.head
    if (head.num_layers, head.feature_dim) != (store.spec.layers, store.spec.dim):
        raise ScaleError(
            f"{model_dir} expects features ({head.num_layers}, {head.feature_dim}) but {store_root} holds "
            f"({store.spec.layers}, {store.spec.dim}) from {store.spec.encoder}: use a model of that encoder"
        )
    if store_frontend(store.spec) != str(FrontEnd.parse(result.config.frontend)):
        raise ScaleError(
            f"{model_dir} was trained on clips embedded with the speech front end {result.config.frontend!r} "
            f"but {store_root} holds vectors made with {store_frontend(store.spec)!r}: embed the pool again "
            f"with --frontend {result.config.frontend} (into another --out folder)"
        )
    names = store.shard_names()
    started = time.perf_counter()
    normalizer = result.normalizer
    if normalizer is not None and normalizer.mode in ("per-language", "per-speaker"):
        import pickle

        rows = sorted(
            engine.map(StatsWorker, {"store_root": str(store.root)}, names), key=lambda r: r["shard"]
        )
        normalizer = pool_normalizer(normalizer, [pickle.loads(r["stats"]) for r in rows])
    kwargs = {
        "store_root": str(store.root),
        "model_dir": str(model_dir),
        "out_root": str(out_root),
        "normalizer": normalizer,
    }
    predicted = 0
    for summary in engine.map(PredictWorker, kwargs, names):
        predicted += summary["clips"]
        if log is not None:
            log(f"{summary['shard']}: {summary['clips']} clips in {summary['seconds']:.2f} s")
    manifest = {
        "store": str(Path(store_root).resolve()),
        "model": str(Path(model_dir).resolve()),
        "classes": list(result.classes),
        "rows": predicted,
        "shards": [f"{PREDICTIONS}/{n}.parquet" for n in names],
    }
    Path(out_root).mkdir(parents=True, exist_ok=True)
    (Path(out_root) / "predictions.json").write_text(json.dumps(manifest, indent=1))
    return {"clips": predicted, "shards": len(names), "seconds": time.perf_counter() - started}


def most_uncertain(
    out_root: str | os.PathLike, count: int, rule: str = "least_confidence"
) -> list[dict[str, Any]]:
    """The ``count`` most uncertain clips of a prediction folder, streaming one shard at a time.

    Ties break by clip id, so the queue is reproducible.
    """
    import pyarrow.parquet as pq

    if rule not in RULES:
        raise ScaleError(f"unknown uncertainty rule {rule!r}: use one of {', '.join(RULES)}")
    folder = Path(out_root) / PREDICTIONS
    files = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise ScaleError(f"no predictions under {folder}: run python -m serdemo predict first")
    heap: list[tuple[float, tuple[int, ...], int, dict[str, Any]]] = []  # min-heap of the best kept
    columns = ["id", "path", "language", "speaker", "top", "confidence", rule]
    seen = 0
    for path in files:
        table = pq.read_table(path, columns=columns)
        for row in table.to_pylist():
            # higher score first, then smaller id: invert the id so the heap's minimum is the worst kept
            key = (row[rule], _inverted(row["id"]), seen, row)
            seen += 1
            if len(heap) < count:
                heapq.heappush(heap, key)
            elif key[:2] > heap[0][:2]:
                heapq.heapreplace(heap, key)
    return [entry[3] for entry in sorted(heap, key=lambda e: (-e[0], e[3]["id"]))]


def _inverted(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text) + (1,)  # the trailing 1 makes a prefix sort after longer ids


def write_queue_csv(rows: Sequence[dict[str, Any]], target: str | os.PathLike) -> Path:
    """Write clips as a ``folder``-corpus CSV with empty emotions: the app's ``--target-corpus folder=FILE``.

    The app then adds just these clips to its unlabeled pool (their vectors are embedding-cache hits
    when ``embed`` filled the cache) and ranks them with its current model on the Label tab.
    """
    import csv

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "emotion", "speaker", "language"])
        for row in rows:
            writer.writerow([str(Path(row["path"]).resolve()), "", row["speaker"], row["language"]])
    return target


def encoder_factory(name: str, **options: Any) -> Callable[[], Any]:
    """A picklable builder of the registered encoder ``name`` (what each Ray actor calls once)."""
    from serdemo.encoders import build_encoder

    return partial(build_encoder, name, **options)
