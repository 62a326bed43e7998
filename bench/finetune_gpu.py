"""Issue 15's GPU table: RAVDESS -> EMO-DB in finetune mode at 0 / 100 / all target labels, beside frozen.

Runs the project's own experiment protocol (serdemo.experiment: speaker-independent splits, early
stopping on both languages, UA on both test splits) once per setting over ``--seeds`` and prints a
markdown table: UA mean ± std of each language, seconds of one adaptation round (median over seeds)
and the same scaled to 100 epochs, the issue's target being <= 60 s on one GPU. Every AdaptConfig
default applies (encoder_lr, precision, ...) unless a flag here changes it. Results go to ``--out``.

Run on a GPU (the figures issue 15 still owes)::

    python bench/finetune_gpu.py --device cuda --out finetune_gpu.json
    python bench/finetune_gpu.py --device cuda --precision bf16 --seeds 0 --out bf16.json

CPU smoke run (tests/test_bench_finetune_gpu.py does this on synthetic corpora)::

    python bench/finetune_gpu.py --tiny-encoder --epochs 1 --window 1 --seeds 0 --labeled 0 5 all \\
        --source ravdess=PATH --target emodb=PATH --out smoke.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from serdemo.config import AdaptConfig
from serdemo.experiment import CorpusRef, ExperimentRunner, ExperimentSpec, write_json_atomic

ALL = "all"  # --labeled value: every target train clip labeled (the upper bound)


def tiny_encoder():  # noqa: ANN201  (an UtteranceEncoder; imported lazily like the real ones)
    """A random 2-block Whisper encoder of width 16: the same code path at a size a CPU runs in seconds."""
    from serdemo.encoders.whisper import WhisperEncoder, base_config

    config = base_config(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32)
    return WhisperEncoder.random(config, seed=0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line; defaults of training settings come from AdaptConfig."""
    defaults = AdaptConfig()
    corpora = Path(os.environ.get("SERDEMO_CORPORA", "../shared/corpora"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=f"ravdess={corpora / 'ravdess'}", metavar="NAME=PATH")
    p.add_argument("--target", default=f"emodb={corpora / 'emodb'}", metavar="NAME=PATH")
    p.add_argument(
        "--labeled",
        nargs="+",
        default=["0", "100", ALL],
        metavar="N",
        help="target label counts to run, 'all' = every target train clip (default 0 100 all)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=list(defaults.seeds))
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--window", type=int, default=defaults.window)
    p.add_argument("--device", default="cuda")
    p.add_argument("--encoder-lr", type=float, default=defaults.encoder_lr)
    p.add_argument("--freeze-blocks", type=int, default=defaults.freeze_blocks)
    p.add_argument("--encoder-warmup-epochs", type=int, default=defaults.encoder_warmup_epochs)
    p.add_argument("--precision", default=defaults.precision)
    p.add_argument("--frontend", default=defaults.frontend)
    p.add_argument("--frozen-labeled", type=int, default=100, help="labels of the frozen reference row")
    p.add_argument("--no-frozen-reference", action="store_true", help="skip the frozen reference row")
    p.add_argument("--encoder-source", type=Path, default=None, help="local encoder weights")
    p.add_argument("--tiny-encoder", action="store_true", help="random tiny Whisper (smoke runs)")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    bad = [n for n in args.labeled if n != ALL and not n.isdigit()]
    if bad:
        p.error(f"--labeled takes counts or 'all', got {bad}")
    return args


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Run every row and return the JSON-ready results (rows plus each experiment's full results)."""
    encoder = None
    if args.tiny_encoder:
        encoder = tiny_encoder()
    elif args.encoder_source is not None:
        from serdemo.encoders.local import load_local_encoder

        encoder = load_local_encoder("whisper-base", args.encoder_source)
    runner = ExperimentRunner(encoder=encoder, cache_dir=args.cache_dir)
    base = AdaptConfig(
        mode="finetune",
        device=args.device,
        epochs=args.epochs,
        window=args.window,
        seeds=tuple(args.seeds),
        encoder_lr=args.encoder_lr,
        freeze_blocks=args.freeze_blocks,
        encoder_warmup_epochs=args.encoder_warmup_epochs,
        precision=args.precision,
        frontend=args.frontend,
    )
    frozen = ("frozen (reference)", base.replace(mode="frozen"), str(args.frozen_labeled))
    plan = [] if args.no_frozen_reference else [frozen]
    plan += [(f"finetune, encoder lr {args.encoder_lr:g}", base, n) for n in args.labeled]
    rows, experiments = [], []
    for name, config, labeled in plan:
        spec = ExperimentSpec(
            sources=(CorpusRef.parse(args.source),),
            target=CorpusRef.parse(args.target),
            labeled=0 if labeled == ALL else int(labeled),
            target_all_labeled=labeled == ALL,
            adapt=config,
        )
        results = runner.run(spec)
        rows.append(row(name, labeled, results))
        experiments.append(results)
        print(markdown_row(rows[-1]), flush=True)
    command = " ".join(["python", "bench/finetune_gpu.py", *argv])
    return {"command": command, "rows": rows, "experiments": experiments}


def row(name: str, labeled: str, results: dict[str, Any]) -> dict[str, Any]:
    """One table row from an experiment's results: UA per language and time per round."""
    seeds = results["per_seed"]
    seconds = [s["timings"]["training"] for s in seeds]
    per_100 = [100 * s["timings"]["training"] / max(s["epochs_run"], 1) for s in seeds]
    summary = results["summary"]
    return {
        "run": name,
        "target_labels": labeled,
        "seeds": [s["seed"] for s in seeds],
        "target_ua": [summary["target"]["ua"]["mean"], summary["target"]["ua"]["std"]],
        "source_ua": [summary["source"]["ua"]["mean"], summary["source"]["ua"]["std"]],
        "seconds_per_round": statistics.median(seconds),
        "seconds_per_100_epochs": statistics.median(per_100),
        "machine": results["machine"],
    }


def markdown_row(r: dict[str, Any]) -> str:
    """``| run | labels | target UA | source UA | s/round | s/100 epochs |``."""
    (t, ts), (s, ss) = r["target_ua"], r["source_ua"]
    return (
        f"| {r['run']} | {r['target_labels']} | {t:.1f} ± {ts:.1f} | {s:.1f} ± {ss:.1f} | "
        f"{r['seconds_per_round']:.0f} | {r['seconds_per_100_epochs']:.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the table and write ``--out``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    print("| run | target labels | target UA | source UA | s per round | s per 100 epochs |")
    print("|---|---|---|---|---|---|")
    results = run(args, argv)
    write_json_atomic(results, args.out)
    print(f"-> {args.out} ({results['rows'][0]['machine']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
