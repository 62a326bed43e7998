"""Large unlabeled pools: embed and pseudo-label them as maps over shards, in one process or on Ray Data.

Both engines run the same worker classes on the same shards: the driver lists the pool, drops the
clips a previous run already stored, cuts the rest into shards in a fixed order, and each shard is
one call of :class:`~serdemo.scale.workers.EmbedWorker` (or ``PredictWorker``). ``--engine local``
calls the worker in a loop; ``--engine ray`` hands the shards to ``ray.data ... map_batches`` with the
worker as a callable class, so each Ray actor loads one model and keeps it. A worker writes its
shard's Parquet file itself, atomically: a worker that dies loses only the shard it was on, and a job
that dies is resumed by running the same command again.

Modules: ``pool_store`` (Parquet shards + manifest), ``workers``, ``engine``, ``jobs`` (the two jobs
and the queue), ``cli`` (``python -m serdemo embed`` / ``predict``).
"""

import importlib
from typing import Any

# Loaded on first use (PEP 562): the CLI builds its parser from serdemo.scale.cli without torch.
_HOMES = {
    "serdemo.scale.engine": ("ENGINES", "Engine", "ScaleError", "require_ray"),
    "serdemo.scale.jobs": (
        "behind_frontend",
        "store_frontend",
        "embed_pool",
        "encoder_factory",
        "encoder_spec",
        "list_pool",
        "most_uncertain",
        "plan_shards",
        "predict_pool",
        "write_queue_csv",
    ),
    "serdemo.scale.workers": (
        "PREDICTIONS",
        "RULES",
        "EmbedWorker",
        "PredictWorker",
        "StatsWorker",
        "merge_stats",
        "pool_normalizer",
    ),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'serdemo.scale' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
