"""The two pool jobs (embed, predict) and the uncertainty queue: list, plan shards, run them on an engine.

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
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from serdemo.cache import WHOLE
from serdemo.scale.engine import Engine, ScaleError
from serdemo.scale.pool_store import PoolStore, StoreSpec, require_pyarrow
from serdemo.scale.workers import (
    PREDICTIONS,
    RULES,
    EmbedWorker,
    PredictWorker,
    StatsWorker,
    pool_normalizer,
)

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
# the two jobs


def behind_frontend(encoder_factory: Callable[[], Any], frontend: str | None) -> Any:
    """What ``encoder_factory`` builds, behind the speech front end the app and the experiment CLI use.

    Without it a pool embedded here has another encoder identity than the app's, so the app re-embeds
    every queued clip and a model trained in the app would score vectors of another kind.
    """
    from serdemo.config import AdaptConfig
    from serdemo.speech import with_frontend

    return with_frontend(encoder_factory(), frontend or AdaptConfig.frontend)


def store_frontend(spec: StoreSpec) -> str:
    """The speech front end a store's vectors were made with (the last part of the encoder identity)."""
    from serdemo.speech import FrontEnd

    try:
        return str(FrontEnd.parse(spec.encoder.rsplit("/", 1)[-1]))
    except ValueError:
        return "none"


def encoder_spec(encoder_factory: Callable[[], Any]) -> StoreSpec:
    """The store spec of what ``encoder_factory`` builds (builds it once on the driver, to read its shape)."""
    encoder = encoder_factory()
    return StoreSpec(encoder.identity, WHOLE, encoder.num_layers, 2 * encoder.hidden_size)


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
    from serdemo.learn import load_model
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
    if normalizer is not None and normalizer.mode == "per-speaker":  # the one mode with batch statistics
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
