"""Does storing the shipped source set's vectors in fewer bits change the first model's answers? (issue 16)

Embeds ``--source`` corpora through the app's own start-up (front end and training copies as the app
has them), writes the source set as float32, float16 and int8, starts a fresh app on each file (the
way an installed app starts from ``assets/source_set.npz``) and predicts the held-out clips of the
test corpora (as ``bench/padding.py`` picks them) and the shipped examples. Prints the file size, how
many top emotions agree with the float32 set's model and the largest probability difference.

Usage::

    python bench/source_set_precision.py --source ravdess=../shared/corpora/ravdess \\
        ravdess=../shared/corpora/ravdess emodb=../shared/corpora/emodb
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from padding import held_out  # noqa: E402  (the bench folder's own module)

from serdemo.app import ASSETS, Service, ServiceConfig  # noqa: E402
from serdemo.cli_options import corpus_arg
from serdemo.experiment import machine_info  # noqa: E402
from serdemo.labels import EMOTIONS  # noqa: E402

PRECISIONS = ("float32", "float16", "int8")


def main() -> None:
    """Build the set once, save it three ways, compare the first models' predictions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=corpus_arg, nargs="+", metavar="NAME=PATH", help="clips to predict")
    parser.add_argument("--source", type=corpus_arg, action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--clips", type=int, default=100, help="held-out clips per corpus (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    paths = [u.path for name, root in args.corpora for u in held_out(name, root, args.clips)]
    paths += sorted((ASSETS / "examples").glob("*.flac"))

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        none = scratch / "none.npz"
        config = ServiceConfig(
            data_dir=scratch / "build", source_corpora=tuple(args.source), shipped_source_set=none
        )
        built = Service(config, log=lambda text: None).start(background=False)
        print(f"front end: {built.frontend}; machine: {machine_info()['cpu']}, torch {torch.__version__}\n")
        probs: dict[str, np.ndarray] = {}
        sizes: dict[str, float] = {}
        for precision in PRECISIONS:
            file = scratch / f"{precision}.npz"
            built.ws.source.save(file, built.ws.encoder.identity, precision)
            sizes[precision] = file.stat().st_size / 1e6
            fresh = Service(
                ServiceConfig(data_dir=scratch / precision, shipped_source_set=file), log=lambda text: None
            ).start(background=False)
            rows = [fresh.predict(p).probs for p in paths]
            print(f"{precision}: first model {fresh.store.active_version().id}", flush=True)
            probs[precision] = np.array([[row[e] for e in EMOTIONS] for row in rows])
        print(f"{len(paths)} clips (held-out test clips and the shipped examples), model trained on "
              f"{len(built.ws.source.train)} source rows\n")  # fmt: skip
        print("| vectors | file | top emotion as float32 | largest probability difference |")
        print("|---|---|---|---|")
        reference = probs["float32"]
        for precision in PRECISIONS:
            same = int(np.sum(probs[precision].argmax(1) == reference.argmax(1)))
            diff = float(np.abs(probs[precision] - reference).max())
            print(f"| {precision} | {sizes[precision]:.1f} MB | {same} / {len(paths)} | {diff:.4f} |")
        # a difference that int8 and float16 share comes from training (e.g. another epoch picked), not bits
        same = int(np.sum(probs["int8"].argmax(1) == probs["float16"].argmax(1)))
        diff = float(np.abs(probs["int8"] - probs["float16"]).max())
        print(f"\nint8 against float16: top emotion the same for {same} / {len(paths)}, "
              f"largest difference {diff:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
