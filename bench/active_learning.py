"""Replay labeling with a target corpus's gold labels: target UA against labels given, per selection rule.

The app's loop, simulated (serdemo issue 10, item 3; issue 9 for the few-label gain): a zero-label round
(source corpus, frozen whisper-base features from the embedding cache) -> the rule picks ``--batch`` clips
of the unlabeled target pool -> their gold labels are "given" -> an adaptation round (Algorithm 1, hard
pseudo-labels on the rest of the pool) -> target test UA -> the rule picks again from the new model.
Everything a round does is what the app does: AdaptConfig's defaults (front end, augmented training
copies of the source and of every labeled clip, normalisation, E, W), and the epoch chosen on the source
validation set only, since an app user has no labeled target validation set. Pool = the
speaker-independent train + validation speakers of the target, test = its held-out test speakers
(split, training and k-means all seeded). Rules: ``random`` order, the three uncertainty rules, and
``coverage`` (serdemo.active.rank_by_coverage, the app's default).

Run (reads the embedding cache; loads whisper-base once to name the cache entries)::

    python bench/active_learning.py --out docs/results/active-learning.json --plot docs/active-learning.svg
    python bench/active_learning.py --source emodb --target ravdess --rules random coverage --batch 5

Prints a table of mean UA (over seeds) per rule and label count, and the area under each curve.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from serdemo.active import UncertaintyRule, rank_by_coverage, rank_for_labeling
from serdemo.cache import EmbeddingCache, default_cache_dir, embed_files
from serdemo.config import AdaptConfig
from serdemo.corpora import load_corpus
from serdemo.encoders import build_encoder
from serdemo.labels import EMOTIONS
from serdemo.learn import ClipSet, adapt, embed, predict_proba
from serdemo.learn.augment import with_augmented_copies
from serdemo.metrics import unweighted_accuracy
from serdemo.speech import with_frontend
from serdemo.splits import speaker_split

CORPORA = Path(os.environ.get("SERDEMO_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))
RULES = ("random", "least_confidence", "margin", "entropy", "coverage")


def corpus_set(name: str, root: Path, encoder, cache: EmbeddingCache) -> tuple[list, np.ndarray]:
    utterances = [u for u in load_corpus(name, root) if u.emotion in EMOTIONS]
    return utterances, embed_files(encoder, [u.path for u in utterances], cache)


def as_clipset(utterances: list, features: np.ndarray, index: dict, labeled: bool = True) -> ClipSet:
    rows = [index[u.id] for u in utterances]
    return ClipSet(
        ids=[u.id for u in utterances],
        labels=[EMOTIONS.index(u.emotion) if labeled else -1 for u in utterances],
        languages=[u.language for u in utterances],
        speakers=[u.speaker for u in utterances],
        features=features[rows],
    )


def pick(rule: str, model, pool: ClipSet, labeled: ClipSet, batch: int, rng: np.random.Generator, seed: int):
    """Positions in ``pool`` of the next ``batch`` clips to label under ``rule``."""
    if rule == "random":
        return rng.permutation(len(pool))[:batch]
    probs = predict_proba(model, pool)
    if rule == "coverage":
        pool_emb = embed(model, pool)
        labeled_emb = embed(model, labeled) if len(labeled) else np.zeros((0, pool_emb.shape[1]))
        return rank_by_coverage(probs, pool_emb, labeled_emb, seed=seed).order[:batch]
    return rank_for_labeling(probs, UncertaintyRule(rule)).order[:batch]


def replay(rule: str, seed: int, data: dict, args: argparse.Namespace) -> tuple[list[float], list[dict]]:
    """Target test UA after 0, batch, 2*batch, ... labels chosen by ``rule``.

    Also returns, per step, how sure the model was of the clips the rule picked and how many of them
    it had wrong: an over-confident head shows as picks at ~99% confidence that are still wrong.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    source, validation, pool_all, test = data["source"], data["validation"], data["pool"], data["test"]
    copies = data["pool_copies"]  # the pool followed by its augmented copies, k-th copy of clip i at i + k*N
    config = AdaptConfig(epochs=args.epochs, window=args.window, seed=seed, **args.adapt)
    chosen: list[int] = []
    curve, picks = [], []
    for step in range(args.steps + 1):
        inside = np.zeros(len(pool_all), bool)
        inside[chosen] = True
        unlabeled = pool_all.subset(~inside)
        # labeled clips with their training copies, as the app's round adds them (ws.with_copies)
        rows = np.concatenate(
            [np.asarray(chosen, int) + k * len(pool_all) for k in range(len(copies) // len(pool_all))]
        )
        labeled = copies.subset(rows)
        unlabeled_blind = unlabeled.without_labels()
        model = adapt(source, labeled, unlabeled_blind, {"source": validation}, config)
        curve.append(unweighted_accuracy(test.labels, predict_proba(model, test).argmax(1)))
        if model.labels_of_few_emotions:  # AdaptConfig.few_emotion_labels: this round learned nothing
            emotions = len(set(labeled.labels[: len(chosen)].tolist()))
            print(f"  seed {seed} {rule}: {len(chosen)} labels of {emotions} emotion(s), nothing learned")
        if step == args.steps:
            break
        remaining = np.flatnonzero(~inside)
        labeled_once = pool_all.subset(inside)  # the clips themselves, not their copies, for coverage
        picked = pick(rule, model, unlabeled_blind, labeled_once, args.batch, rng, seed)
        probs = predict_proba(model, unlabeled_blind.subset(picked))
        truth = np.asarray(unlabeled.labels)[picked]
        picks.append(
            {"confidence": float(probs.max(1).mean()), "wrong": float((probs.argmax(1) != truth).mean())}
        )
        chosen += remaining[picked].tolist()
    return curve, picks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=10, help="clips labeled between two rounds")
    parser.add_argument("--steps", type=int, default=6, help="rounds after the source-only one")
    parser.add_argument("--epochs", type=int, default=AdaptConfig.epochs, help="E of each round (the app's)")
    parser.add_argument("--window", type=int, default=AdaptConfig.window, help="W of each round (the app's)")
    parser.add_argument(
        "--adapt",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="AdaptConfig changes of every round, e.g. max_repeats=10 normalization=nap (values as JSON)",
    )
    parser.add_argument("--source", default="ravdess", help="source corpus under --corpora")
    parser.add_argument(
        "--target", default="emodb", help="target corpus under --corpora (its pool is labeled)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--out", type=Path, default=None, help="write the curves as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="write the curves as an SVG")
    parser.add_argument("--from-json", type=Path, default=None, help="only redraw --plot from a saved --out")
    args = parser.parse_args(argv)
    args.adapt = dict(_field(item) for item in args.adapt)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        print_areas(saved["curves"])
        if args.plot:
            plot(saved["labels"], saved["curves"], args.plot, saved["args"].get("target", "emodb"))
        return
    torch.set_num_threads(args.threads)
    cache = EmbeddingCache(default_cache_dir())
    defaults = AdaptConfig()
    encoder = with_frontend(build_encoder(defaults.encoder), defaults.frontend)  # what the app embeds with
    src, src_features = corpus_set(args.source, args.corpora / args.source, encoder, cache)
    tgt, tgt_features = corpus_set(args.target, args.corpora / args.target, encoder, cache)
    src_index, tgt_index = {u.id: i for i, u in enumerate(src)}, {u.id: i for i, u in enumerate(tgt)}
    curves: dict[str, dict[int, list[float]]] = {rule: {} for rule in args.rules}
    picked: dict[str, dict[int, list[dict]]] = {rule: {} for rule in args.rules}
    tick = time.perf_counter()
    for seed in args.seeds:
        src_split, tgt_split = speaker_split(src, seed=seed), speaker_split(tgt, seed=seed)
        pool = tgt_split.train + tgt_split.validation
        pool_set = as_clipset(pool, tgt_features, tgt_index)
        source_set = as_clipset(src_split.train, src_features, src_index)
        copies = defaults.augment_copies
        data = {
            "source": with_augmented_copies(source_set, paths_of(src_split.train), encoder, cache, copies),
            "validation": as_clipset(src_split.validation, src_features, src_index),
            "pool": pool_set,
            "pool_copies": with_augmented_copies(pool_set, paths_of(pool), encoder, cache, copies),
            "test": as_clipset(tgt_split.test, tgt_features, tgt_index),
        }
        for rule in args.rules:
            curves[rule][seed], picked[rule][seed] = replay(rule, seed, data, args)
            print(
                f"seed {seed} {rule:>16}: " + " ".join(f"{ua:.3f}" for ua in curves[rule][seed]),
                f"({time.perf_counter() - tick:.0f} s)",
                flush=True,
            )
    labels = [args.batch * step for step in range(args.steps + 1)]
    print(f"\nmean {args.target} test UA (%) over seeds", args.seeds, "by labels given:")
    print(f"{'rule':>16} " + " ".join(f"{n:>6}" for n in labels) + "   mean over labels > 0")
    summary = {}
    for rule, by_seed in curves.items():
        mean = np.mean(list(by_seed.values()), axis=0)
        summary[rule] = {"mean": mean.tolist(), "area": float(mean[1:].mean())}
        print(f"{rule:>16} " + " ".join(f"{100 * v:6.1f}" for v in mean) + f"   {100 * mean[1:].mean():.1f}")
    print("\nclips picked at each step: mean model confidence / share the model had wrong (mean over seeds)")
    for rule, by_seed in picked.items():
        steps = list(zip(*by_seed.values(), strict=True))
        cells = [
            f"{np.mean([p['confidence'] for p in step]):.2f}/{np.mean([p['wrong'] for p in step]):.2f}"
            for step in steps
        ]
        summary.setdefault(rule, {})["picks"] = cells
        print(f"{rule:>16} " + " ".join(cells))
    print_areas(curves)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "labels": labels,
            "args": {k: str(v) for k, v in vars(args).items()},
            "curves": curves,
            "picks": picked,
        }
        args.out.write_text(json.dumps({**payload, "summary": summary}, indent=1))
    if args.plot:
        plot(labels, curves, args.plot, args.target)


def paths_of(utterances: list) -> list[Path]:
    """The audio file of each utterance, as with_augmented_copies reads them."""
    return [u.path for u in utterances]


def _field(item: str) -> tuple[str, object]:
    """``"max_repeats=10"`` -> ``("max_repeats", 10)``; a value that is not JSON stays a string."""
    name, _, value = item.partition("=")
    if name not in AdaptConfig.__dataclass_fields__:
        raise SystemExit(f"--adapt {item}: AdaptConfig has no field {name!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def print_areas(curves: dict) -> None:
    """Mean UA over the labeled steps (labels > 0) per rule and seed, and each rule's lead over random."""
    areas = {
        rule: {seed: float(np.mean(c[1:])) for seed, c in by_seed.items()} for rule, by_seed in curves.items()
    }
    print("\nmean UA (%) over the steps with labels, per seed, and the lead over random order in that seed:")
    for rule, by_seed in areas.items():
        cells = [
            f"seed {seed}: {100 * area:.1f}"
            + (
                f" ({100 * (area - areas['random'][seed]):+.1f})"
                if "random" in areas and rule != "random"
                else ""
            )
            for seed, area in by_seed.items()
        ]
        print(f"{rule:>16}  " + "  ".join(cells))


COLOURS = {  # Okabe-Ito (colour-blind safe); the markers and the legend tell the rules apart too
    "random": "#000000",
    "least_confidence": "#E69F00",
    "margin": "#56B4E9",
    "entropy": "#009E73",
    "coverage": "#D55E00",
}
MARKERS = {
    "random": "circle",
    "least_confidence": "square",
    "margin": "diamond",
    "entropy": "up",
    "coverage": "down",
}


def plot(labels: list[int], curves: dict, path: Path, target: str = "emodb") -> None:
    """UA against labels given, one line per rule (mean over seeds), as a self-contained SVG."""
    width, height, left, right, top, bottom = 720, 420, 60, 170, 40, 50
    means = {rule: np.mean(list(by_seed.values()), axis=0) * 100 for rule, by_seed in curves.items()}
    low = np.floor(min(m.min() for m in means.values()) / 5) * 5
    high = np.ceil(max(m.max() for m in means.values()) / 5) * 5

    def x(n: float) -> float:
        return left + (n - labels[0]) / (labels[-1] - labels[0]) * (width - left - right)

    def y(ua: float) -> float:
        return top + (high - ua) / (high - low) * (height - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">{target} test UA (%) by clips labeled, mean of '
        f"{len(next(iter(curves.values())))} seeds</text>",
    ]
    for tick in np.arange(low, high + 0.1, 5):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.0f}</text>')
    for n in labels:
        out.append(f'<text x="{x(n):.1f}" y="{height - bottom + 18}" text-anchor="middle">{n}</text>')
    middle = (left + width - right) / 2
    out.append(f'<text x="{middle:.0f}" y="{height - 10}" text-anchor="middle">clips labeled</text>')
    for i, (rule, mean) in enumerate(means.items()):
        colour = COLOURS[rule]
        points = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in zip(labels, mean, strict=True))
        dash = ' stroke-dasharray="6 4"' if rule == "random" else ""
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for n, v in zip(labels, mean, strict=True):
            out.append(_marker(MARKERS[rule], x(n), y(v), colour))
        ly = top + 10 + 22 * i
        out.append(_marker(MARKERS[rule], width - right + 20, ly, colour))
        out.append(f'<text x="{width - right + 32}" y="{ly + 4}">{rule.replace("_", " ")}</text>')
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def _marker(shape: str, cx: float, cy: float, colour: str, r: float = 4.5) -> str:
    if shape == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" fill="{colour}"/>'
    if shape == "square":
        return f'<rect x="{cx - r:.1f}" y="{cy - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{colour}"/>'
    corners = {
        "diamond": [(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
        "up": [(0, -r - 1), (r + 1, r), (-r - 1, r)],
        "down": [(0, r + 1), (r + 1, -r), (-r - 1, -r)],
    }[shape]
    points = " ".join(f"{cx + dx:.1f},{cy + dy:.1f}" for dx, dy in corners)
    return f'<polygon points="{points}" fill="{colour}"/>'


if __name__ == "__main__":
    main()
