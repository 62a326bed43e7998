"""Options and exit codes shared by ``python -m serdemo``'s subcommands, app.py, bench/ and scripts/."""

from __future__ import annotations

import argparse
from pathlib import Path

from serdemo.config import AdaptConfig

EXIT_USAGE = 2  # argparse's code for bad arguments; ours match it
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def corpus_arg(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (name, path), with a message saying the expected form."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, e.g. ravdess=/data/ravdess, got {text!r}")
    return name.strip().lower(), Path(path.strip()).expanduser()


def add_encoder_option(parser: argparse.ArgumentParser) -> None:
    """``--encoder NAME``, defaulting to AdaptConfig's encoder."""
    default = AdaptConfig.encoder
    parser.add_argument("--encoder", default=default, help=f"registry name (default {default})")


def add_cache_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir DIR``: the embedding cache read and filled (default: serdemo.cache.default_cache_dir)."""
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="embedding cache to read and fill (default $SERDEMO_CACHE or ~/.cache/serdemo/embeddings)",
    )
