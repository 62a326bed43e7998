"""Where a prediction's time goes over HTTP: in-process model vs ``/predict`` vs ``/api/predict_probs``.

One service (source corpus from the embedding cache, a fresh data folder) answers in-process and
through the app's HTTP API (``gradio_client``, one client) in the same process; calls alternate, so
load from other jobs falls on all alike. Every call gets the clip with fresh dither at -90 dBFS, so
the embedding cache never answers: each call pays for upload, decoding, voice activity detection,
the encoder and the head. Rows:

- ``in-process``: ``Service.predict`` on the file (the model's cost);
- ``/predict``: the page's endpoint (audio component, label + summary + timeline + JSON outputs);
- ``POST /api/predict_probs``: the plain HTTP route (audio bytes in, probabilities out, one request);
- ``/versions``: a no-input endpoint, Gradio's own round trip (queue, SSE) without upload or model;
- ``gr.Audio preprocess``: the page audio component's preprocessing of one upload, in-process.

Usage::

    python bench/http_predict.py --source ravdess=../shared/corpora/ravdess --runs 30
    python bench/http_predict.py --tiny-model --runs 30     # ~no model: what HTTP itself costs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import corpus_arg  # noqa: E402
from serdemo.audio import SAMPLE_RATE, load_audio  # noqa: E402
from serdemo.experiment import machine_info  # noqa: E402
from serdemo.service import ASSETS, Service, ServiceConfig  # noqa: E402


def free_port() -> int:
    """A TCP port nobody listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    """Start the service and the app, then time the rows round-robin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=corpus_arg, action="append", metavar="NAME=PATH", help="first model's source corpus"
    )
    parser.add_argument("--tiny-model", action="store_true", help="the tests' tiny encoder: HTTP's own cost")
    parser.add_argument("--clip", type=Path, default=ASSETS / "examples" / "en_happy_news.flac")
    parser.add_argument("--seconds", type=float, default=3.0, help="cut or zero-pad the clip to this length")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per row")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not args.source and not args.tiny_model:
        parser.error("give --source NAME=PATH (whisper-base) or --tiny-model")
    torch.set_num_threads(args.threads)

    import gradio as gr
    import httpx
    from gradio.data_classes import FileData
    from gradio_client import Client, handle_file

    from serdemo.lean_api import add_probability_route
    from serdemo.ui import build_app

    samples = round(args.seconds * SAMPLE_RATE)
    wave = load_audio(args.clip)[:samples]
    wave = np.pad(wave, (0, samples - len(wave)))
    rng = np.random.default_rng()  # fresh entropy: a rerun must not find last run's clips in the cache
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.tiny_model:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from test_service import make_service

            service = make_service(scratch, target=False)
        else:
            config = ServiceConfig(data_dir=scratch / "data", source_corpora=tuple(args.source))
            service = Service(config, log=lambda text: None).start(background=False)
        app = build_app(service)
        port = free_port()
        app.queue().launch(
            server_name="127.0.0.1",
            server_port=port,
            prevent_thread_lock=True,
            quiet=True,
            allowed_paths=service.allowed_paths(),
        )
        add_probability_route(app.server_app, service, service.config.max_upload_bytes)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        session = httpx.Client()  # keep-alive, as a script calling repeatedly would
        audio = gr.Audio(type="filepath")
        counter = iter(range(10**9))

        def new_clip() -> Path:
            path = scratch / f"clip-{next(counter)}.wav"
            dither = rng.standard_normal(len(wave)).astype(np.float32) * 10 ** (-90 / 20)
            sf.write(path, wave + dither, SAMPLE_RATE, subtype="FLOAT")
            return path

        rows = {
            "in-process Service.predict": lambda path: service.predict(path),
            "HTTP /predict (page endpoint)": lambda path: client.predict(
                handle_file(str(path)), api_name="/predict"
            ),
            "HTTP POST /api/predict_probs (plain route)": lambda path: session.post(
                f"http://127.0.0.1:{port}/api/predict_probs", content=path.read_bytes(), timeout=60
            ).raise_for_status(),
            "HTTP /versions (no input, no model)": lambda path: client.predict(api_name="/versions"),
            "gr.Audio preprocess of one upload": lambda path: audio.preprocess(FileData(path=str(path))),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for call in range(args.warmup + args.runs):
            for name, run in rows.items():
                path = new_clip()
                tick = time.perf_counter()
                run(path)
                if call >= args.warmup:
                    times[name].append(time.perf_counter() - tick)
        app.close()
        threading.Event().wait(0.1)

    machine = machine_info()
    model = "tests' tiny random encoder" if args.tiny_model else "whisper-base"
    print(
        f"\n{model}; {args.clip.name} cut to {args.seconds:g} s, a new clip every call; "
        f"{args.runs} calls per row, alternating"
    )
    print("| row | p50 ms | p95 ms | p50 over in-process |")
    print("|---|---:|---:|---:|")
    base = statistics.median(times["in-process Service.predict"])
    for name, values in times.items():
        p50, p95 = statistics.median(values), float(np.percentile(values, 95))
        print(f"| {name} | {1000 * p50:.0f} | {1000 * p95:.0f} | {1000 * (p50 - base):+.0f} |")
    print(
        f"machine: {machine['nproc']} cores, {machine['cpu']}, torch {machine['torch']}, "
        f"{args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
