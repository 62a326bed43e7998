"""Where the shards run: a loop in this process, or Ray Data's map_batches over an actor pool."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serdemo.scale.pool_store import INSTALL_HINT

ENGINES = ("local", "ray")


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
