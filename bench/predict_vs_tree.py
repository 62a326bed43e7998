"""In-process ``Service.predict`` of a new 3 s clip: this checkout against another source tree, same machine.

Issue 16 asks that predictions stay "within 10 ms of today's in-process p50" with ``today`` the issue's
commit (db9d5e0), measured on another machine. This bench runs that commit's service beside this
checkout's on one machine: ``git worktree add /tmp/db9d5e0 db9d5e0`` (or ``git archive db9d5e0 | tar
-x -C /tmp/db9d5e0``), then::

    python bench/predict_vs_tree.py --against /tmp/db9d5e0 --rounds 3 --runs 40

Each round starts one fresh process per tree, alternating, with that tree on ``PYTHONPATH``; each
process starts the tree's own service with its defaults (shipped source set, default encoder and front
end), waits for background warm-ups to end (this checkout compiles UMAP for ~15 s after start-up, which
doubles prediction times while it runs), warms up with two calls, then times ``--runs`` calls. Every
call gets the clip with fresh dither at -90 dBFS, so no cache answers. The processes run the same code
below, which uses only what the service API has always had (``Service(config).start(background=False)``
and ``predict(path)``).
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

TIMING = """
import json, sys, tempfile, threading, time
from pathlib import Path
import numpy as np, soundfile as sf, torch
try:
    from serdemo.app import Service, ServiceConfig
except ImportError:  # the layout before serdemo/app/
    from serdemo.service import Service, ServiceConfig
from serdemo.audio import load_audio

clip, seconds, runs, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
samples = round(seconds * 16000)
wave = load_audio(clip)[:samples]
wave = np.pad(wave, (0, samples - len(wave)))
rng = np.random.default_rng()
with tempfile.TemporaryDirectory() as scratch:
    service = Service(ServiceConfig(data_dir=Path(scratch) / "data"), log=lambda text: None)
    service.start(background=False)
    for thread in threading.enumerate():  # UMAP's compile warm-up (~15 s) takes a core: the steady state
        if "warm-up" in thread.name:
            thread.join()
    torch.set_num_threads(threads)  # whatever start-up did to the count (issue 12: Silero pinned it)
    times = []
    for run in range(runs + 2):
        path = Path(scratch) / "clip.wav"
        sf.write(path, wave + rng.standard_normal(samples).astype(np.float32) * 10 ** (-90 / 20), 16000,
                 subtype="FLOAT")
        tick = time.perf_counter()
        service.predict(path)
        if run >= 2:
            times.append(time.perf_counter() - tick)
print(json.dumps(times))
"""


def time_tree(tree: Path, args: argparse.Namespace) -> list[float]:
    """Seconds per call of ``--runs`` predictions in a fresh process of ``tree``'s service."""
    command = [
        sys.executable,
        "-c",
        TIMING,
        str(args.clip),
        str(args.seconds),
        str(args.runs),
        str(args.threads),
    ]
    env = os.environ | {"PYTHONPATH": str(tree)}
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{tree}: the timing process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, metavar="DIR", help="the other source tree")
    parser.add_argument("--clip", type=Path, default=ROOT / "assets" / "examples" / "en_happy_news.flac")
    parser.add_argument("--seconds", type=float, default=3.0, help="cut or zero-pad the clip to this length")
    parser.add_argument("--runs", type=int, default=40, help="timed calls per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per tree, alternating")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from serdemo.experiment import machine_info

    trees = {"this checkout": ROOT, str(args.against): args.against.resolve()}
    medians: dict[str, list[float]] = {name: [] for name in trees}
    print(
        f"{args.clip.name} cut to {args.seconds:g} s, {args.runs} calls per process, {args.threads} thread(s)"
    )
    print(f"machine: {machine_info()['cpu']}, load average {os.getloadavg()[0]:.1f} at the start\n")
    print("| round | " + " | ".join(f"{name}: p50 / p90 ms" for name in trees) + " |")
    print("|---|" + "---:|" * len(trees))
    for round_ in range(1, args.rounds + 1):
        cells = []
        for name, tree in reversed(trees.items()) if round_ % 2 == 0 else trees.items():
            times = time_tree(tree, args)
            medians[name].append(statistics.median(times))
            cells.append(
                (name, f"{1000 * medians[name][-1]:.0f} / {1000 * statistics.quantiles(times, n=10)[-1]:.0f}")
            )
        cells.sort(key=lambda cell: list(trees).index(cell[0]))
        print(f"| {round_} | " + " | ".join(text for _, text in cells) + " |", flush=True)
    ours, theirs = (statistics.median(medians[name]) for name in trees)
    print(
        f"\nmedian of the rounds' p50: this checkout {1000 * ours:.0f} ms, {args.against} "
        f"{1000 * theirs:.0f} ms; difference {1000 * (ours - theirs):+.0f} ms "
        f"(load average {os.getloadavg()[0]:.1f} at the end)"
    )


if __name__ == "__main__":
    main()
