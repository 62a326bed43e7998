"""Time an app fine-tune round beside a frozen one, and what the app does after it (issue 15, needs a GPU).

Starts the app's Service (no web server) on a fresh data folder with a source and a target corpus, labels
``--labels`` pool clips with their corpus labels (as a user would), then runs one frozen round and one
fine-tune round on the same pool with the Adapt tab's settings (``AdaptConfig`` defaults unless given). Per
round it reports seconds, source UA on held-out speakers and target UA on the corpus labels of the pool
clips nobody labeled; then, under each version, the seconds of the first labeling-queue view (a fine-tuned
version's encoder embeds there the pool clips the round did not score: with a corpus-seeded pool only the
labeled ones, with a pool of user clips all of them) and the median seconds of a prediction. The fine-tune
round runs where the app would run it: on the GPU, or on the CPU only with ``--allow-cpu`` (hours at full
size; a smoke run with ``--corpus-limit 40 --epochs 2`` takes minutes).

Usage::

    python bench/app_finetune_round.py --source-corpus ravdess=PATH --target-corpus emodb=PATH --out ft.json
    python bench/app_finetune_round.py ... --corpus-limit 40 --epochs 2 --allow-cpu --out smoke.json  # CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serdemo.cli_options import corpus_arg
from serdemo.config import AdaptConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    defaults = AdaptConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source-corpus", type=corpus_arg, action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--target-corpus", type=corpus_arg, action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--corpus-limit", type=int, default=None, help="clips per corpus, balanced by emotion")
    p.add_argument("--labels", type=int, default=100, help="pool clips labeled (with their corpus label)")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--window", type=int, default=defaults.window)
    p.add_argument("--policy", default=defaults.policy)
    p.add_argument("--predictions", type=int, default=5, help="timed predictions per version")
    p.add_argument("--allow-cpu", action="store_true", help="fine-tune on the CPU where no GPU is found")
    p.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary folder")
    p.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default: the app's)")
    p.add_argument("--out", type=Path, required=True)
    return p.parse_args(argv)


def run(args: argparse.Namespace, command: str, encoder: Any = None, **overrides: Any) -> dict[str, Any]:
    """Start the Service, label, run both rounds and time what follows; JSON-ready results."""
    from serdemo.app import AdaptRequest, LabelState, Service, ServiceConfig
    from serdemo.experiment import machine_info

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="serdemo-app-ft-"))
    config = ServiceConfig(
        data_dir=data_dir,
        source_corpora=tuple(args.source_corpus),
        target_corpora=tuple(args.target_corpus),
        corpus_limit=args.corpus_limit,
        cache_dir=args.cache_dir,
        allow_cpu_finetune=args.allow_cpu,
        warm_up_umap=False,
        **overrides,
    )
    t0 = time.perf_counter()
    service = Service(config, encoder=encoder, log=lambda text: None).start(background=False)
    started = time.perf_counter() - t0
    offer = service.finetune_offer()
    if not offer.offered:
        raise SystemExit(f"fine-tune rounds are not offered here: {offer.reason}")
    language = service.default_language()
    pool = service.store.clips(language)
    known = [c for c in pool if service.ws.corpus_labels.get(c.id)]
    for clip in known[: args.labels]:
        service.label(clip.id, service.ws.corpus_labels[clip.id], annotator="bench")
    rounds = {}
    for mode in ("frozen", "finetune"):
        request = AdaptRequest(
            language=language,
            policy=args.policy,
            epochs=args.epochs,
            window=args.window,
            finetune=mode == "finetune",
        )
        tick = time.perf_counter()
        report = service.adapt(request)
        seconds = time.perf_counter() - tick
        tick = time.perf_counter()
        service.label_view(LabelState(language=language))  # a fine-tuned encoder embeds unscored clips here
        first_queue = time.perf_counter() - tick
        times = []
        for clip in pool[: args.predictions]:
            tick = time.perf_counter()
            service.predict(clip.path, language)
            times.append(time.perf_counter() - tick)
        rounds[mode] = {
            "version": report.version_id,
            "seconds": seconds,
            "epochs_run": report.epochs_run,
            "source_ua": report.source_metrics["ua"],
            "target_ua": (report.target_metrics or {}).get("ua"),
            "target_n": (report.target_metrics or {}).get("n"),
            "first_queue_seconds": first_queue,
            "predict_median_seconds": statistics.median(times) if times else None,
        }
        print(markdown_row(mode, rounds[mode]), flush=True)
    return {
        "command": command,
        "device": offer.device,
        "start_seconds": started,
        "labeled": min(args.labels, len(known)),
        "pool": len(pool),
        "rounds": rounds,
        "machine": machine_info(),
    }


def markdown_row(mode: str, r: dict[str, Any]) -> str:
    """``| mode | s/round | epochs | source UA | target UA | first queue s | predict s |``."""
    target = f"{r['target_ua']:.1%} (n={r['target_n']})" if r["target_ua"] is not None else "n/a"
    predict = f"{r['predict_median_seconds']:.2f}" if r["predict_median_seconds"] is not None else "n/a"
    return (
        f"| {mode} | {r['seconds']:.1f} | {r['epochs_run']} | {r['source_ua']:.1%} | {target} | "
        f"{r['first_queue_seconds']:.1f} | {predict} |"
    )


def main(argv: list[str] | None = None, encoder: Any = None, **overrides: Any) -> int:
    """Run and write ``--out``."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    print("| round | s/round | epochs | source UA | target UA | first queue view s | predict s (median) |")
    print("|---|---|---|---|---|---|---|")
    results = run(args, " ".join(["python", "bench/app_finetune_round.py", *argv]), encoder, **overrides)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
