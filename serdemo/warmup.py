"""Compile UMAP's numba code in the background once the app has started, before anyone asks for UMAP.

umap-learn and pynndescent compile their numba kernels on first use: tens of seconds on a small CPU
(issue 12), which the first person to pick UMAP on the Explore tab would otherwise sit through. One
tiny projection on random points, started after the service is ready (so it never delays the page
or the first model), compiles them; the user's projection then finds them compiled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

LOG = logging.getLogger(__name__)
WARMUP_POINTS = 40  # enough for UMAP's spectral initialisation and nearest-neighbour descent paths


def warm_projection() -> float:
    """Run one 2-D and one 3-D UMAP on random points; returns the seconds it took."""
    from serdemo.projection import project

    tick = time.perf_counter()
    points = np.random.default_rng(0).standard_normal((WARMUP_POINTS, 16))
    for dims in (2, 3):
        project(points, "umap", dims=dims)
    return time.perf_counter() - tick


def warm_in_background(
    wait: Callable[[], object] | None = None, log: Callable[[str], None] | None = None
) -> threading.Thread:
    """Start a daemon thread that calls ``wait()`` (e.g. until the service is ready), then warms UMAP.

    Args:
        wait: blocks until the app's own start-up work is done; None starts at once.
        log: gets one line when the warm-up ends (or fails: UMAP then compiles on first use, as before).

    """

    def run() -> None:
        try:
            if wait is not None:
                wait()
            seconds = warm_projection()
            if log is not None:
                log(f"UMAP compiled in the background in {seconds:.1f} s")
        except Exception as error:  # a failed warm-up only costs the first UMAP its compile time
            LOG.warning("UMAP warm-up failed: %s", error)
            if log is not None:
                log(f"UMAP warm-up failed ({error}); the first UMAP will compile it")

    thread = threading.Thread(target=run, name="serdemo-umap-warmup", daemon=True)
    thread.start()
    return thread
