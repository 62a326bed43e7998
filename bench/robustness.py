"""Normalisation, selection and few-label study of issue 9, on full and confounded (--speaker-emotions) data.

Every run is the experiment CLI's protocol (:class:`serdemo.experiment.ExperimentRunner`, the same as
``python -m serdemo experiment``), so a row here can be rerun alone with the printed command. A run is
one direction (``en-de``: RAVDESS -> EMO-DB, ``de-en``: EMO-DB -> RAVDESS), one confounding K (0 =
every speaker keeps every emotion), one number of target labels and one variant (AdaptConfig changes).
Budgets larger than a confounded train pool are skipped.

Run::

    python bench/robustness.py --variants speaker language nap10 --k 0 1 --labels 0 25 --seeds 0
    python bench/robustness.py --variants nap10 --k 0 1 --labels none 0 10 25 50 100   # a curve
    python bench/robustness.py --out runs.json --paired default language-bl   # seed by seed
    python bench/robustness.py --variants default default-nogate --k 0 --pool 20 40 --labels 0   # small pools

Appends to (and replaces matching runs in) docs/results/robustness.json and prints a table of target
test UA, mean ± sample std over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from serdemo.config import AdaptConfig
from serdemo.experiment import (
    CorpusRef,
    ExperimentError,
    ExperimentRunner,
    ExperimentSpec,
    write_json_atomic,
)

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("SERDEMO_CORPORA", ROOT.parent / "shared" / "corpora"))
OUT = ROOT / "docs" / "results" / "robustness.json"
DIRECTIONS = {"en-de": ("ravdess", "emodb"), "de-en": ("emodb", "ravdess")}

# AdaptConfig changes of each variant (everything else: the AdaptConfig default of this checkout)
VARIANTS: dict[str, dict[str, Any]] = {
    # the previous default: per-speaker standardisation and per-speaker balancing while nothing is labeled
    "speaker": {"normalization": "per-speaker", "pseudo_balance": "auto"},
    "language": {"normalization": "per-language", "pseudo_balance": "auto"},
    "global": {"normalization": "global", "pseudo_balance": "auto"},
    **{
        f"nap{k}": {"normalization": "nap", "nap_dim": k, "pseudo_balance": "auto"}
        for k in (2, 5, 10, 20, 40)
    },
    "language-bl": {"normalization": "per-language", "pseudo_balance": "auto-language"},
    "speaker-bl": {"normalization": "per-speaker", "pseudo_balance": "auto-language"},
    **{
        f"nap{k}-bl": {"normalization": "nap", "nap_dim": k, "pseudo_balance": "auto-language"}
        for k in (5, 10, 20)
    },
    "global-bl": {"normalization": "global", "pseudo_balance": "auto-language"},
    "language-bl-w10": {"normalization": "per-language", "pseudo_balance": "auto-language", "window": 10},
    "language-balance": {"normalization": "per-language", "pseudo_balance": "per-language"},
    "language-bl-soft": {
        "normalization": "per-language",
        "pseudo_balance": "auto-language",
        "policy": "soft",
    },
    **{
        f"language-bl-prop{int(a * 10)}": {
            "normalization": "per-language",
            "pseudo_balance": "auto-language",
            "propagation": a,
        }
        for a in (0.5, 1.0)
    },
    "language-bl-free": {
        "normalization": "per-language",
        "pseudo_balance": "auto-language",
        "selection": "label-free",
    },
    "language-bl-from-start": {
        "normalization": "per-language",
        "pseudo_balance": "auto-language",
        "select_after_first_round": False,
    },
    "default": {},
    **{f"default-prop{int(a * 10)}": {"propagation": a} for a in (0.5, 1.0)},
    "default-nap20": {"nap_dim": 20},
    "default-nap5": {"nap_dim": 5},
    "default-labelfree": {"selection": "label-free"},
    "default-from-start": {"select_after_first_round": False},
    "default-labelfree-from-start": {"selection": "label-free", "select_after_first_round": False},
    "default-w10": {"window": 10},
    "default-labelfree-w10": {"selection": "label-free", "window": 10},
    "default-balance-language": {"pseudo_balance": "per-language"},
    "default-soft": {"policy": "soft"},
    "default-norebalance": {"rebalance": False},
    "default-cap10": {"max_repeats": 10},
    # a language's statistics shrunk toward the global ones (a pool in one mood: docs/results.md)
    **{f"default-prior{k}": {"language_prior": k} for k in (200, 1000)},
    # a language's labeled clips measured class by class against the source (serdemo.learn.normalize)
    "default-anchored": {"language_anchoring": True},
    # labeled target clips lend their language residue to source clips of every emotion
    **{f"default-transplant{n}": {"transplant_copies": n} for n in (4, 16)},
    "default-prior1000-transplant4": {"language_prior": 1000, "transplant_copies": 4},
    # what 25 labels are drowned by: no balancing, fewer pseudo-labels, none at all
    "default-nobalance": {"pseudo_balance": "none"},
    "default-tau08": {"tau": 0.8},
    "default-nopseudo": {"policy": "none"},
    # the head trained on the leading principal components of its input (serdemo.learn.components)
    **{f"default-components{k}": {"input_components": k} for k in (256, 512)},
    # a round that learns nothing from the unlabeled pool (docs/results.md, "A round on a small pool")
    "default-nopseudo-prior1000": {"policy": "none", "language_prior": 1000},
    # the same, the few labeled target clips not oversampled to the source count
    "default-nopseudo-prior1000-norebalance": {"policy": "none", "language_prior": 1000, "rebalance": False},
    # a small target pool learned from all the same (serdemo.learn.small_pool off), for --pool runs
    "default-nogate": {"small_pool_clips": 0},
    # an unlabeled pool is learned from whatever the source-only model's answers over it (pool_moods off)
    "default-nojudge": {"one_mood_spread": 0.0},
}


def spec_for(
    direction: str, k: int, labels: str, variant: str, seeds: list[int], pool: int = 0
) -> ExperimentSpec:
    """The experiment of one row; ``labels`` "none" is the source-only model (policy none, 0 labels).

    ``pool``: the target's unlabeled clips kept (``--unlabeled-pool``; 0 = all).
    """
    source, target = DIRECTIONS[direction]
    changes = dict(VARIANTS[variant])
    if labels == "none":
        changes["policy"] = "none"
    config = AdaptConfig().replace(seeds=tuple(seeds), **changes)
    return ExperimentSpec(
        sources=(CorpusRef.parse(f"{source}={CORPORA / source}"),),
        target=CorpusRef.parse(f"{target}={CORPORA / target}"),
        labeled=0 if labels == "none" else int(labels),
        speaker_emotions=k,
        unlabeled_pool=pool,
        adapt=config,
    )


def command_for(
    direction: str, k: int, labels: str, config: AdaptConfig, seeds: list[int], pool: int = 0
) -> str:
    """The ``python -m serdemo experiment`` line that reruns one row (flags: what differs from defaults)."""
    source, target = DIRECTIONS[direction]
    defaults = AdaptConfig()
    labeled = 0 if labels == "none" else int(labels)
    flags = [f"--source {source} --target {target} --labeled {labeled}"]
    if k:
        flags.append(f"--speaker-emotions {k}")
    if pool:
        flags.append(f"--unlabeled-pool {pool}")
    fields = (
        "policy",
        "normalization",
        "nap_dim",
        "selection",
        "window",
        "pseudo_balance",
        "propagation",
        "max_repeats",
        "language_prior",
        "transplant_copies",
        "small_pool_clips",
        "one_mood_spread",
        "tau",
    )
    for field in fields:
        if field == "nap_dim" and config.normalization != "nap":
            continue  # only nap reads it
        if getattr(config, field) != getattr(defaults, field):
            flags.append(f"--{field.replace('_', '-')} {getattr(config, field)}")
    if not config.select_after_first_round:
        flags.append("--select-from-start")
    if not config.rebalance:
        flags.append("--no-rebalance")
    if config.language_anchoring:
        flags.append("--language-anchoring")
    flags.append(f"--seeds {' '.join(map(str, seeds))} --out results.json")
    return "python -m serdemo experiment " + " ".join(flags)


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a table needs from the experiment's full JSON."""
    per_seed = result["per_seed"]
    rounds = [s["pseudo_label_rounds"] for s in per_seed]
    return {
        "target_ua": [s["target"]["ua"] for s in per_seed],
        # confounded runs: the same test speakers' clips of every emotion (serdemo.experiment SeedData)
        "target_every_emotion_ua": [
            s["target_every_emotion"]["ua"] for s in per_seed if "target_every_emotion" in s
        ],
        "source_ua": [s["source"]["ua"] for s in per_seed],
        "source_only_target_ua": [s["source_only_ua"]["target"] for s in per_seed],
        "best_epoch": [s["best_epoch"] for s in per_seed],
        "epochs_run": [s["epochs_run"] for s in per_seed],
        "pseudo_accuracy": [[r["accuracy"] for r in seed] for seed in rounds],
        "sizes": [s["sizes"] for s in per_seed],
        "training_seconds": [s["timings"]["training"] for s in per_seed],
        "notes": result["notes"],
        # which switches set the target aside, and the judge's answer spread (serdemo.learn.pool_moods)
        "learned_nothing": [s.get("learned_nothing") for s in per_seed],
    }


def cell(values: list[float] | None) -> str:
    """``mean ± std`` of a list of percentages, or "-"."""
    if not values:
        return "-"
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.1f} ± {std:.1f}"


def main(argv: list[str] | None = None) -> int:
    """Run the grid, merge it into the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=list(DIRECTIONS))
    parser.add_argument("--k", type=int, nargs="+", default=[0, 1], help="--speaker-emotions values")
    parser.add_argument("--labels", nargs="+", default=["none", "0", "25", "100"])
    parser.add_argument("--variants", nargs="+", default=["speaker", "language", "nap10"], choices=VARIANTS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--pool",
        type=int,
        nargs="+",
        default=[0],
        help="unlabeled target clips kept (--unlabeled-pool; 0 = all, the default); a row's K: k0-pool20",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--print-only", action="store_true", help="print the table of --out, run nothing")
    parser.add_argument("--merge", nargs="+", type=Path, help="join these JSON files into --out, run nothing")
    parser.add_argument(
        "--paired",
        nargs=2,
        metavar=("FIRST", "SECOND"),
        help="print FIRST against SECOND seed by seed from --out, on the seeds both ran (mean difference ± "
        "standard error); run nothing",
    )
    args = parser.parse_args(argv)
    if args.paired:
        print(paired_table(json.loads(args.out.read_text()), *args.paired))
        return 0
    if args.merge:
        merged: dict[str, Any] = {"runs": {}}
        for path in args.merge:
            merged["runs"].update(json.loads(path.read_text())["runs"])
        for row in merged["runs"].values():  # commands against this checkout's defaults
            config = AdaptConfig.from_dict(row["config"])
            row["command"] = command_for(
                row["direction"], row["k"], row["labels"], config, row["seeds"], row.get("pool", 0)
            )
        write_json_atomic(merged, args.out)
        print(table(merged, sorted(merged["runs"])))
        return 0

    report = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": {}}
    runner = ExperimentRunner()
    keys = []
    for direction in args.directions:
        for k, pool in ((k, pool) for k in args.k for pool in args.pool):
            for variant in args.variants:
                for labels in args.labels:
                    key = f"{direction}/k{k}{f'-pool{pool}' if pool else ''}/{variant}/{labels}"
                    keys.append(key)
                    if args.print_only:
                        continue
                    try:
                        spec = spec_for(direction, k, labels, variant, args.seeds, pool)
                        tick = time.perf_counter()
                        result = runner.run(spec)
                    except ExperimentError as error:  # e.g. more labels than a confounded pool holds
                        print(f"{key}: skipped ({error})", flush=True)
                        continue
                    row = summarise(result)
                    row.update(
                        direction=direction,
                        k=k,
                        pool=pool,
                        variant=variant,
                        labels=labels,
                        seeds=args.seeds,
                        config=spec.adapt.to_dict(),
                        command=command_for(direction, k, labels, spec.adapt, args.seeds, pool),
                        wall_seconds=time.perf_counter() - tick,
                        load_average=os.getloadavg()[0],
                    )
                    report["runs"][key] = row
                    write_json_atomic(report, args.out)
                    scores = f"target UA {cell(row['target_ua'])}  source {cell(row['source_ua'])}"
                    print(f"{key}: {scores}", flush=True)
    print(table(report, keys))
    return 0


def table(report: dict[str, Any], keys: list[str]) -> str:
    """Markdown table: one row per direction/K/variant, one column per label budget."""
    runs = report["runs"]
    budgets = sorted(dict.fromkeys(k.rsplit("/", 1)[1] for k in keys), key=budget_order)
    rows = list(dict.fromkeys(k.rsplit("/", 1)[0] for k in keys))
    lines = ["| direction / K / variant | " + " | ".join(budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for row in rows:
        cells = [cell(runs.get(f"{row}/{b}", {}).get("target_ua")) for b in budgets]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def budget_order(labels: str) -> tuple[int, int]:
    """Sort key of a label budget: "none" first, then by number (5 between 0 and 10)."""
    return (0, 0) if labels == "none" else (1, int(labels))


def paired_table(report: dict[str, Any], first: str, second: str) -> str:
    """Markdown table: ``first`` against ``second`` on the same seeds, cell by cell (direction, K, labels).

    Both variants of a cell see the same splits, labeled clips and initialisation per seed, so the
    per-seed difference removes most of the spread the seeds put into each mean (at K = 1 the test is two
    speakers' ~10 clips). "first - second" is the mean difference ± its standard error, "wins" counts the
    seeds on which each side scored higher. Confounded cells add a row "(every emotion)": the same models
    on every clip of the same test speakers.
    """
    runs = report["runs"]
    lines = [
        f"| direction | K | labels | seeds | {first} | {second} | {first} - {second} "
        f"| wins {first} / {second} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cells = sorted(
        {(direction, k, labels) for direction, k, _, labels in (key.split("/") for key in runs)},
        key=lambda c: (c[0] != "en-de", c[1], *budget_order(c[2])),
    )
    for direction, k, labels in cells:
        a, b = runs.get(f"{direction}/{k}/{first}/{labels}"), runs.get(f"{direction}/{k}/{second}/{labels}")
        if not a or not b:
            continue
        common = sorted(set(a["seeds"]) & set(b["seeds"]))  # the seeds both ran, paired in one order
        if not common:
            continue
        a, b = on_seeds(a, common), on_seeds(b, common)
        rows = [("target_ua", "")]
        if a.get("target_every_emotion_ua") and b.get("target_every_emotion_ua"):
            rows.append(("target_every_emotion_ua", " (every emotion)"))  # confounded: the unconfined test
        for field, what in rows:
            mean, error, wins, losses = paired_difference(a[field], b[field])
            lines.append(
                f"| {direction} | {k[1:]}{what} | {labels} | {len(a[field])} | {cell(a[field])} | "
                f"{cell(b[field])} | {mean:+.1f} ± {error:.1f} | {wins} / {losses} |"
            )
    return "\n".join(lines)


def on_seeds(row: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """``row`` cut to ``seeds`` (each one it ran), its per-seed lists in that order."""
    keep = [row["seeds"].index(seed) for seed in seeds]
    cut = {
        field: [value[i] for i in keep]
        if isinstance(value, list) and len(value) == len(row["seeds"])
        else value
        for field, value in row.items()
    }
    cut["seeds"] = list(seeds)
    return cut


def paired_difference(first: list[float], second: list[float]) -> tuple[float, float, int, int]:
    """Per-seed ``first - second``: its mean, standard error (0 for one seed), and the seeds each side won."""
    diff = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    error = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()), error, int((diff > 0).sum()), int((diff < 0).sum())


if __name__ == "__main__":
    raise SystemExit(main())
