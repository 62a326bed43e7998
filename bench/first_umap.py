"""First UMAP in a fresh process, as the user sees it: cold (numba compiles on the call) vs warmed.

Each measurement runs in its own Python process, so nothing is compiled beforehand except what
numba's on-disk cache keeps. ``cold``: the first ``project(..., "umap")`` of a process, on
``--points`` random 256-d embeddings (the Explore tab's projection). ``warmed``: the same call after
the service's UMAP warm-up (``serdemo.app.explore.warm_up_umap``, started in a low-priority thread once
the first model is ready, ``ServiceConfig.warm_up_umap``) has finished (its own time is printed too:
the background cost the user does not wait for).

Usage::

    python bench/first_umap.py --points 500 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time
import numpy as np
from serdemo.app.explore import warm_up_umap
from serdemo.projection import project
background = None
if {warm}:
    tick = time.perf_counter()
    warm_up_umap()
    background = time.perf_counter() - tick
points = np.random.default_rng(1).standard_normal(({points}, 256))
tick = time.perf_counter()
project(points, "umap")
print(json.dumps({{"first_umap": time.perf_counter() - tick, "background": background}}))
"""


def measure(warm: bool, points: int) -> dict[str, float]:
    """Run one child process and return its timings."""
    code = CHILD.format(root=str(ROOT), warm=warm, points=points)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Alternate cold and warmed processes and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    cold, warmed, background = [], [], []
    for run in range(args.runs):
        cold.append(measure(False, args.points)["first_umap"])
        result = measure(True, args.points)
        warmed.append(result["first_umap"])
        background.append(result["background"])
        print(f"run {run}: cold {cold[-1]:.1f} s, warmed {warmed[-1]:.1f} s (warm-up {background[-1]:.1f} s)")
    print(
        f"first UMAP of {args.points} points in a fresh process, median of {args.runs}: "
        f"cold {statistics.median(cold):.1f} s, "
        f"after the background warm-up {statistics.median(warmed):.1f} s "
        f"(warm-up itself {statistics.median(background):.1f} s, behind the page); "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
