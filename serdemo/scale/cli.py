"""Arguments of ``python -m serdemo embed`` and ``predict``: the large-pool jobs of :mod:`serdemo.scale`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from serdemo.cli_options import EXIT_INTERRUPTED, add_cache_dir_option, add_encoder_option
from serdemo.config import AdaptConfig

COMMANDS = ("embed", "predict")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``embed`` and ``predict`` subcommands to the CLI's subparsers."""
    e = commands.add_parser(
        "embed",
        help="embed a large unlabeled pool into Parquet shards (and the embedding cache), locally or on Ray",
        description=(
            "Embed every clip of a corpus, folder or CSV with the project's encoder into a pool store "
            "(Parquet shards + manifest.json) and the embedding cache. Rerunning skips stored clips. "
            "Example: python -m serdemo embed --pool folder=archive/ --out pool/ --engine ray --workers 2"
        ),
    )
    e.add_argument(
        "--pool",
        required=True,
        action="append",
        metavar="NAME=PATH",
        help="a corpus (ravdess=PATH), or folder=PATH for your own folder or CSV; repeatable",
    )
    e.add_argument("--out", type=Path, required=True, metavar="DIR", help="the pool store folder")
    add_encoder_option(e)
    e.add_argument(
        "--frontend",
        default=AdaptConfig.frontend,
        help="speech front end before the encoder, as the app's (default %(default)s; 'none': whole clips)",
    )
    e.add_argument("--batch-size", type=int, default=8, help="utterances per forward pass (default 8)")
    e.add_argument("--shard-size", type=int, default=64, help="clips per shard / Parquet file (default 64)")
    e.add_argument("--limit", type=int, default=None, metavar="N", help="first N clips of each pool (tries)")
    add_cache_dir_option(e)
    e.add_argument(
        "--no-cache", action="store_true", help="keep vectors only in the pool store (archives of 10^6 clips)"
    )
    e.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: 1 on Ray)")
    _engine_arguments(e)

    p = commands.add_parser(
        "predict",
        help="pseudo-label and rank a pool store by uncertainty under a saved model, locally or on Ray",
        description=(
            "Write probabilities, the top emotion and three uncertainty scores per clip "
            "(OUT/predictions/*.parquet), and with --queue the most uncertain clips as a CSV that "
            "python app.py --target-corpus folder=FILE adds to the Label tab's pool. Example: "
            "python -m serdemo predict --pool pool/ --model annotations/models/VERSION --out preds/ "
            "--queue 200"
        ),
    )
    p.add_argument("--pool", type=Path, required=True, metavar="DIR", help="a pool store made by embed")
    p.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="DIR",
        help="a saved frozen model (annotations/models/ID)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="where predictions go")
    p.add_argument(
        "--queue", type=int, default=0, metavar="K", help="also write OUT/queue.csv of the K least sure"
    )
    p.add_argument(
        "--rule",
        choices=["least_confidence", "margin", "entropy"],
        default="least_confidence",
        help="uncertainty rule of the queue (default %(default)s)",
    )
    _engine_arguments(p)


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=["local", "ray"], default="local", help="default %(default)s")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors, one model each (default 2)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs Ray reserves per actor")
    parser.add_argument(
        "--address",
        default=None,
        help="a running Ray cluster (auto, ray://HOST:10001); default: start one here",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-shard lines")


def run(args: argparse.Namespace) -> int:
    """Run ``embed`` or ``predict``; prints a JSON summary on stdout."""
    from serdemo import scale

    engine = scale.Engine(args.engine, args.workers, args.cpus_per_worker, args.address, args.quiet)
    if engine.name == "ray":
        scale.require_ray()  # before any work: the error says what to install
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    if args.command == "embed":
        try:
            summary = _embed(args, engine, log)
        except KeyboardInterrupt:
            # unlike experiment, finished work is kept: every shard written so far stays in the store
            print(
                f"\npython -m serdemo embed: interrupted; the shards written so far are kept in {args.out}: "
                "run the same command again to resume",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    else:
        summary = scale.predict_pool(args.pool, args.model, args.out, engine, log)
        if args.queue:
            rows = scale.most_uncertain(args.out, args.queue, args.rule)
            summary["queue"] = str(scale.write_queue_csv(rows, args.out / "queue.csv"))
    print(json.dumps(summary, indent=1))
    return 0


def _embed(args: argparse.Namespace, engine, log) -> dict:
    from serdemo import scale
    from serdemo.cache import default_cache_dir
    from serdemo.experiment import CorpusRef

    clips = []
    for text in args.pool:
        ref = CorpusRef.parse(text)
        clips += scale.list_pool(ref.name, ref.root, args.limit)
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    threads = args.threads if args.threads is not None else (1 if engine.name == "ray" else None)
    return scale.embed_pool(
        clips,
        args.out,
        scale.encoder_factory(args.encoder),
        engine,
        cache_dir,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        threads=threads,
        log=log,
        frontend=args.frontend,
    )
