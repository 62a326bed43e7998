"""Embed a labeled source corpus once and write it to assets/source_set.npz, which the app ships.

With that file the app predicts and adapts on a fresh offline machine without any corpus: the first start
trains the source-only model from it (seconds, frozen encoder) and every round uses it as D_s.

Usage::

    python scripts/build_source_set.py --source ravdess=../shared/corpora/ravdess
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from serdemo.app import ASSETS, Service, ServiceConfig
from serdemo.cli_options import corpus_arg


def main() -> None:
    """Embed the corpora through the app's own start-up path and export the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=corpus_arg, action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--encoder", default="whisper-base")
    parser.add_argument("--out", type=Path, default=ASSETS / "source_set.npz")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        config = ServiceConfig(
            data_dir=Path(scratch),
            encoder=args.encoder,
            source_corpora=tuple(args.source),
            shipped_source_set=Path(scratch) / "none.npz",
        )
        service = Service(config, log=lambda text: print(f"serdemo: {text}", flush=True))
        service.start(background=False)
        out = service.export_source_set(args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
