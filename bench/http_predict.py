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
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from serdemo.app import ASSETS, Service, ServiceConfig
from serdemo.app.local_server import served
from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.experiment import CorpusRef, machine_info

ROWS = {
    "in-process": "in-process Service.predict",
    "page": "HTTP /predict (page endpoint)",
    "plain": "HTTP POST /api/predict_probs (plain route)",
    "versions": "HTTP /versions (no input, no model)",
    "preprocess": "gr.Audio preprocess of one upload",
}

# The tiny model (--tiny-model): a random 2-layer Whisper over tones, one pitch per emotion, as in the tests.
PITCH = {"anger": 220.0, "fear": 330.0, "happiness": 440.0, "neutral": 550.0, "sadness": 660.0}


def corpus_arg(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (name, path)."""
    try:
        ref = CorpusRef.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return ref.name, ref.root


def tiny_service(folder: Path) -> Service:
    """A service on a tiny random encoder and a tone corpus: what HTTP costs with almost no model."""
    import csv

    from serdemo.encoders.whisper import WhisperEncoder, base_config

    corpus = folder / "tones"
    corpus.mkdir(parents=True)
    rows = []
    for e, (emotion, pitch) in enumerate(PITCH.items()):
        for i in range(6):
            t = np.arange(int((0.6 + 0.1 * (i % 3)) * SAMPLE_RATE)) / SAMPLE_RATE
            noise = np.random.default_rng(100 * e + i).standard_normal(len(t))
            wave = 0.3 * np.sin(2 * np.pi * pitch * (1 + 0.01 * i) * t) + 0.01 * noise
            sf.write(corpus / f"{emotion}_{i}.wav", wave.astype(np.float32), SAMPLE_RATE)
            rows.append(
                {"path": f"{emotion}_{i}.wav", "emotion": emotion, "speaker": f"s{i % 3}", "language": "en"}
            )
    with open(corpus / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "emotion", "speaker", "language"])
        writer.writeheader()
        writer.writerows(rows)
    config = ServiceConfig(
        data_dir=folder / "data",
        source_corpora=(("folder", corpus / "labels.csv"),),
        cache_dir=folder / "cache",
        examples_dir=folder / "no-examples",
        default_model_dir=folder / "no-default-model",
        shipped_source_set=folder / "no-source-set.npz",
        first_epochs=20,
        frontend="energy-trim0.1-weighted",  # tones are not speech to Silero
        warm_up_umap=False,
    )
    encoder = WhisperEncoder.random(
        base_config(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32), seed=0
    )
    return Service(config, encoder=encoder, log=lambda text: None).start(background=False)


def main() -> None:
    """Start the service and the app, then time the rows round-robin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=corpus_arg, action="append", metavar="NAME=PATH", help="first model's source corpus"
    )
    parser.add_argument("--tiny-model", action="store_true", help="a tiny random encoder: HTTP's own cost")
    parser.add_argument("--clip", type=Path, default=ASSETS / "examples" / "en_happy_news.flac")
    parser.add_argument("--seconds", type=float, default=3.0, help="cut or zero-pad the clip to this length")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per row")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS),
                        help="rows to time (default: all); e.g. in-process plain: the route without Gradio's "
                        "client calls in between")  # fmt: skip
    args = parser.parse_args()
    if not args.source and not args.tiny_model:
        parser.error("give --source NAME=PATH (whisper-base) or --tiny-model")
    torch.set_num_threads(args.threads)

    import gradio as gr
    import httpx
    from gradio.data_classes import FileData
    from gradio_client import Client, handle_file

    from serdemo.app.lean_api import add_probability_route

    samples = round(args.seconds * SAMPLE_RATE)
    wave = load_audio(args.clip)[:samples]
    wave = np.pad(wave, (0, samples - len(wave)))
    rng = np.random.default_rng()  # fresh entropy: a rerun must not find last run's clips in the cache
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.tiny_model:
            service = tiny_service(scratch)
        else:
            # without UMAP's ~15 s warm-up compile, which takes a core and doubles call times meanwhile
            config = ServiceConfig(
                data_dir=scratch / "data", source_corpora=tuple(args.source), warm_up_umap=False
            )
            service = Service(config, log=lambda text: None).start(background=False)

        def probability_route(app) -> None:  # the plain route app.py adds beside the page's endpoints
            add_probability_route(app.server_app, service, service.config.max_upload_bytes)

        with served(service, probability_route) as url:
            client = Client(url, verbose=False)
            session = httpx.Client()  # keep-alive, as a script calling repeatedly would
            audio = gr.Audio(type="filepath")
            counter = iter(range(10**9))

            def new_clip() -> Path:
                path = scratch / f"clip-{next(counter)}.wav"
                dither = rng.standard_normal(len(wave)).astype(np.float32) * 10 ** (-90 / 20)
                sf.write(path, wave + dither, SAMPLE_RATE, subtype="FLOAT")
                return path

            calls = {
                "in-process": lambda path: service.predict(path),
                "page": lambda path: client.predict(handle_file(str(path)), api_name="/predict"),
                "plain": lambda path: session.post(
                    f"{url}api/predict_probs", content=path.read_bytes(), timeout=60
                ).raise_for_status(),
                "versions": lambda path: client.predict(api_name="/versions"),
                "preprocess": lambda path: audio.preprocess(FileData(path=str(path))),
            }
            rows = {ROWS[key]: calls[key] for key in ROWS if key in args.rows}
            times: dict[str, list[float]] = {name: [] for name in rows}
            for call in range(args.warmup + args.runs):
                for name, run in rows.items():
                    path = new_clip()
                    tick = time.perf_counter()
                    run(path)
                    if call >= args.warmup:
                        times[name].append(time.perf_counter() - tick)

    machine = machine_info()
    model = "tests' tiny random encoder" if args.tiny_model else "whisper-base"
    print(
        f"\n{model}; {args.clip.name} cut to {args.seconds:g} s, a new clip every call; "
        f"{args.runs} calls per row, alternating"
    )
    print("| row | p50 ms | p95 ms | p50 over in-process |")
    print("|---|---:|---:|---:|")
    base = statistics.median(times.get(ROWS["in-process"], [np.nan]))
    for name, values in times.items():
        p50, p95 = statistics.median(values), float(np.percentile(values, 95))
        print(f"| {name} | {1000 * p50:.0f} | {1000 * p95:.0f} | {1000 * (p50 - base):+.0f} |")
    print(
        f"machine: {machine['nproc']} cores, {machine['cpu']}, torch {machine['torch']}, "
        f"{args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
