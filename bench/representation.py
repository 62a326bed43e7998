"""Representation study (serdemo issue 5): which frozen whisper-base features adapt best, RAVDESS -> EMO-DB.

Every variant runs the real :func:`serdemo.learn.adapt.adapt` (Algorithm 1, hard pseudo-labels, the paper's
E=100, W=30, tau=0.5) on cached features, for 3 seeds of speaker-independent splits of both corpora,
with 0, 25, 100 and all German training clips labeled (class-stratified; the rest of the German
training clips are the unlabeled pool). Scores are UA on EMO-DB test speakers (de) and RAVDESS test
speakers (en); "source-only" is the same variant trained on RAVDESS alone (no German clip at all),
whose English UA the adapted models must stay within 2 points of.

Run (the first run embeds both corpora into the shared cache: ~15 min on 2 cores; later runs read it)::

    python bench/representation.py                       # all variants, 3 seeds: prints the table
    python bench/representation.py --variants all-speaker --seeds 0 --budgets 100
    python bench/representation.py --round-time-only       # the app's round time for 2,000 clips

Writes docs/results/representation.json (every run's numbers, per-seed, with timings).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from serdemo.audio import file_sha256, load_audio
from serdemo.cache import CacheKey, EmbeddingCache, default_cache_dir, embed_files
from serdemo.config import AdaptConfig
from serdemo.corpora import load_corpus
from serdemo.labels import EMOTIONS
from serdemo.learn import ClipSet, adapt, predict_proba
from serdemo.learn.normalize import FeatureNormalizer
from serdemo.metrics import unweighted_accuracy
from serdemo.research.alignment import CoralAligner
from serdemo.research.prosody import PROSODY_NAMES, prosody_features
from serdemo.splits import speaker_split

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("SERDEMO_CORPORA", ROOT.parent / "shared" / "corpora"))
OUT = ROOT / "docs" / "results" / "representation.json"
PROSODY_IDENTITY = "prosody/yin-v1"  # cache key of serdemo.research.prosody features; bump when they change
PAPER_HUBERT = {"100": 93.95, "all": 94.37}  # Agarla et al. (2023), fine-tuned HuBERT, RAVDESS -> EMO-DB


@dataclass(frozen=True)
class Variant:
    """One way of turning cached whisper-base features into the head's input."""

    name: str
    description: str
    layers: str | tuple[int, ...] = "all"  # which layers the head's softmax mix may use
    normalization: str = "per-speaker"  # FeatureNormalizer groups
    target_speakers: bool = True  # False: German speaker ids hidden (app uploads): one group per language
    coral: bool = False  # recolour source features with the target covariance (CORAL)
    prosody: bool = False  # append serdemo.research.prosody descriptors to every layer's vector
    combination: str = "mix"  # the head's layer combination: softmax "mix" or "concat"
    projection_dim: int = 256  # hidden projection of the head; 0 = linear head (a linear probe)
    weight_decay: float = 0.0  # Adam weight decay
    dropout: float = 0.1  # dropout on the head's input
    pseudo_balance: str = "none"  # Sinkhorn prior matching of pseudo-label probabilities (AdaptConfig)

    def adapt_config(self, **changes) -> AdaptConfig:
        """The AdaptConfig of this variant, with run-specific ``changes`` (policy, seed, patience)."""
        return AdaptConfig(
            layers=self.layers,
            normalization=self.normalization,
            layer_combination=self.combination,
            projection_dim=self.projection_dim,
            weight_decay=self.weight_decay,
            dropout=self.dropout,
            pseudo_balance=self.pseudo_balance,
            **changes,
        )


# the linear head of linear-speaker-nodrop, which later variants keep while changing one thing
LINEAR_HEAD = dict(combination="concat", projection_dim=0, weight_decay=1e-2, dropout=0.0)

VARIANTS = {
    v.name: v
    for v in [
        Variant(
            "layer3-language",
            "layer 3 only, per-corpus standardisation (the issue's baseline)",
            (3,),
            "per-language",
        ),
        Variant(
            "mix-language", "softmax mix of all 7 layers, per-corpus standardisation", "all", "per-language"
        ),
        Variant("mix-global", "softmax mix of all 7 layers, one global standardisation", "all", "global"),
        Variant("layer3-speaker", "layer 3 only, per-speaker standardisation", (3,), "per-speaker"),
        Variant(
            "mix-speaker", "softmax mix of all 7 layers, per-speaker standardisation", "all", "per-speaker"
        ),
        Variant(
            "mix-speaker-unknown",
            "mix, per-speaker for RAVDESS, German speaker ids hidden (per-language group, the app's case)",
            "all",
            "per-speaker",
            target_speakers=False,
        ),
        Variant("mix-speaker-coral", "mix-speaker + CORAL (source recoloured to target)", coral=True),
        Variant("mix-speaker-prosody", "mix-speaker + 19 prosodic descriptors on every layer", prosody=True),
        Variant(
            "concat-language",
            "all 7 layers concatenated, per-corpus standardisation",
            normalization="per-language",
            combination="concat",
        ),
        Variant(
            "concat-speaker", "all 7 layers concatenated, per-speaker standardisation", combination="concat"
        ),
        *[
            Variant(
                f"linear-speaker-wd{wd:g}",
                f"linear head on all 7 layers concatenated (LR probe), per-speaker, Adam weight decay {wd:g}",
                combination="concat",
                projection_dim=0,
                weight_decay=wd,
            )
            for wd in (1e-4, 1e-3, 1e-2)
        ],
        Variant(
            "linear-speaker-nodrop",
            "linear head, weight decay 1e-2, no dropout (dropout over 7,168 inputs is most of a step's time)",
            **LINEAR_HEAD,
        ),
        Variant(
            "linear-speaker-unknown",
            "linear-speaker-nodrop with German speaker ids hidden (the app's case)",
            target_speakers=False,
            **LINEAR_HEAD,
        ),
        Variant(
            "linear-speaker-balanced",
            "linear-speaker-nodrop + pseudo-label probabilities balanced to a uniform prior per speaker",
            **LINEAR_HEAD,
            pseudo_balance="per-speaker",
        ),
        Variant(
            "linear-speaker-balanced-unknown",
            "linear-speaker-balanced with German speaker ids hidden (the app's case: balanced per language)",
            target_speakers=False,
            **LINEAR_HEAD,
            pseudo_balance="per-speaker",
        ),
        Variant(
            "linear-speaker-auto",
            "linear-speaker-nodrop + balancing only while no German clip is labeled (the new default)",
            **LINEAR_HEAD,
            pseudo_balance="auto",
        ),
        Variant(
            "linear-speaker-auto-unknown",
            "linear-speaker-auto with German speaker ids hidden (the app's case with the new default)",
            target_speakers=False,
            **LINEAR_HEAD,
            pseudo_balance="auto",
        ),
        Variant(
            "linear-language-auto",
            "the new default head, per-corpus standardisation, German speakers hidden (the app's fallback)",
            normalization="per-language",
            target_speakers=False,
            pseudo_balance="auto",
            **LINEAR_HEAD,
        ),
        Variant(
            "concat-speaker-unknown",
            "concat, per-speaker for RAVDESS, German speaker ids hidden (the app's case)",
            target_speakers=False,
            combination="concat",
        ),
    ]
}


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class Corpus:
    utterances: list
    features: np.ndarray  # (N, 7, 1024) whisper-base per-layer mean+std
    prosody: np.ndarray  # (N, 19)
    index: dict[str, int]


def load(name: str, cache: EmbeddingCache, encoder) -> Corpus:
    utterances = [u for u in load_corpus(name, CORPORA / name) if u.emotion in EMOTIONS]
    tick = time.perf_counter()
    features = embed_files(encoder, [u.path for u in utterances], cache, progress=_progress(name))
    prosody = np.stack([_prosody(u.path, cache) for u in utterances])
    print(f"{name}: {len(utterances)} clips, features {features.shape} in {time.perf_counter() - tick:.0f} s")
    return Corpus(utterances, features, prosody, {u.id: i for i, u in enumerate(utterances)})


def _prosody(path: Path, cache: EmbeddingCache) -> np.ndarray:
    key = CacheKey(PROSODY_IDENTITY, file_sha256(path), "whole")
    vector = cache.get(key)
    if vector is None or vector.shape != (len(PROSODY_NAMES),):
        vector = prosody_features(load_audio(path))
        cache.put(key, vector)
    return vector


def _progress(name: str):
    last = [0.0]

    def report(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            print(f"  embedding {name}: {done}/{total}", flush=True)

    return report


def clipset(corpus: Corpus, utterances: list, variant: Variant, labeled: bool = True) -> ClipSet:
    rows = [corpus.index[u.id] for u in utterances]
    features = corpus.features[rows]
    if variant.prosody:
        extra = np.repeat(corpus.prosody[rows][:, None, :], features.shape[1], axis=1)
        features = np.concatenate([features, extra], axis=2)
    speakers = [
        u.speaker if (variant.target_speakers or u.corpus != "emodb") else f"{u.language}/unknown"
        for u in utterances
    ]
    return ClipSet(
        ids=[u.id for u in utterances],
        labels=[EMOTIONS.index(u.emotion) if labeled else -1 for u in utterances],
        languages=[u.language for u in utterances],
        speakers=speakers,
        features=features,
    )


def stratified(utterances: list, budget: int, seed: int) -> list:
    """``budget`` clips, as equal per class as the classes allow, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    by_class = {e: [u for u in utterances if u.emotion == e] for e in EMOTIONS}
    for clips in by_class.values():
        rng.shuffle(clips)
    chosen, rank = [], 0
    while len(chosen) < budget and any(rank < len(c) for c in by_class.values()):
        for clips in by_class.values():
            if rank < len(clips) and len(chosen) < budget:
                chosen.append(clips[rank])
        rank += 1
    return sorted(chosen, key=lambda u: u.id)


# ----------------------------------------------------------------------------------------------
# one run


def split_sets(variant: Variant, source: Corpus, target: Corpus, seed: int):
    """Seed ``seed``'s speaker-independent splits, and the English train / validation / test and German
    validation / test clip sets of ``variant`` (German train is split into labeled and pool by the caller)."""
    en, de = speaker_split(source.utterances, seed=seed), speaker_split(target.utterances, seed=seed)
    sets = {
        "source": clipset(source, en.train, variant),
        "val_en": clipset(source, en.validation, variant),
        "test_en": clipset(source, en.test, variant),
        "val_de": clipset(target, de.validation, variant),
        "test_de": clipset(target, de.test, variant),
    }
    return en, de, sets


def run(variant: Variant, source: Corpus, target: Corpus, seed: int, budget: str) -> dict:
    """Adapt with ``budget`` labeled German clips ("none" = source only, no German clip) and score."""
    _, de, sets = split_sets(variant, source, target, seed)
    if budget == "none":
        labeled, unlabeled = [], []
    else:
        labeled = de.train if budget == "all" else stratified(de.train, int(budget), seed)
        unlabeled = [u for u in de.train if u not in set(labeled)]
    sets["labeled"] = clipset(target, labeled, variant)
    sets["unlabeled"] = clipset(target, unlabeled, variant)  # labels only score the pseudo-labels
    config = variant.adapt_config(policy="none" if budget == "none" else "hard", seed=seed)
    if variant.coral:
        sets, config = _coral(sets, config)
    validation = {"en": sets["val_en"]} if budget == "none" else {"en": sets["val_en"], "de": sets["val_de"]}
    tick = time.perf_counter()
    result = adapt(sets["source"], sets["labeled"], sets["unlabeled"], validation, config)
    seconds = time.perf_counter() - tick
    scores = {
        name: 100 * unweighted_accuracy(sets[name].labels, predict_proba(result, sets[name]).argmax(1))
        for name in ("test_de", "test_en")
    }
    return {
        "variant": variant.name,
        "seed": seed,
        "budget": budget,
        "labeled": len(labeled),
        "unlabeled": len(unlabeled),
        "ua_de": scores["test_de"],
        "ua_en": scores["test_en"],
        "seconds": seconds,
        "best_epoch": result.best_epoch,
        "layer_weights": result.head.layer_weights.detach().numpy().round(3).tolist(),
        "pseudo_accuracy": [r["accuracy"] for r in result.rounds],
    }


def _coral(sets: dict[str, ClipSet], config: AdaptConfig) -> tuple[dict[str, ClipSet], AdaptConfig]:
    """Standardise as the variant says, then recolour the English sets with the German pool's covariance."""
    pool = ClipSet.concat([sets["source"], sets["labeled"], sets["unlabeled"]])
    norm = FeatureNormalizer(config.normalization).fit(pool.features, pool.languages, pool.speakers)
    out = {}
    for name, clips in sets.items():
        clips = clips.subset(np.arange(len(clips)))
        if len(clips):
            clips.features = norm.transform(clips.features, clips.languages, clips.speakers)
        out[name] = clips
    german = (
        ClipSet.concat([out["labeled"], out["unlabeled"]])
        if len(out["labeled"]) + len(out["unlabeled"])
        else out["val_de"]
    )
    aligner = CoralAligner().fit(out["source"].features, german.features)
    for name in ("source", "val_en", "test_en"):
        out[name].features = aligner.transform(out[name].features)
    return out, config.replace(normalization="none")


# ----------------------------------------------------------------------------------------------
# the app's round time


def round_time(
    variant: Variant, source: Corpus, target: Corpus, clips: int = 2000, labeled: int = 100
) -> float:
    """Seconds of one adaptation round with ``clips`` unlabeled target clips (EMO-DB features + noise)."""
    rng = np.random.default_rng(0)
    en, de = speaker_split(source.utterances, seed=0), speaker_split(target.utterances, seed=0)
    pool = clipset(target, de.train, variant, labeled=False)
    rows = rng.integers(0, len(pool), clips)
    unlabeled = pool.subset(rows)
    unlabeled.features = unlabeled.features + 0.05 * unlabeled.features.std() * rng.standard_normal(
        unlabeled.features.shape
    ).astype(np.float32)
    unlabeled.speakers = np.array([f"de/s{r % 10}" for r in range(clips)])
    labeled_set = clipset(target, stratified(de.train, labeled, 0), variant)
    validation = {
        "en": clipset(source, en.validation, variant),
        "de": clipset(target, de.validation, variant),
    }
    config = variant.adapt_config(policy="hard", patience=0)
    tick = time.perf_counter()
    adapt(clipset(source, source.utterances, variant), labeled_set, unlabeled, validation, config)
    return time.perf_counter() - tick


# ----------------------------------------------------------------------------------------------
# table


def table(runs: list[dict], variants: list[str], budgets: list[str]) -> str:
    columns = [b for b in budgets if b != "none"]
    head = (
        "| variant | "
        + " | ".join(f"de UA, {b} labels" for b in columns)
        + " | en UA (adapted, 100) | en UA source-only | round s |"
    )
    lines = [head, "|" + "---|" * (len(columns) + 4)]
    for name in variants:
        mine = [r for r in runs if r["variant"] == name]

        def mean(key: str, budget: str, mine: list[dict] = mine) -> str:
            values = [r[key] for r in mine if r["budget"] == budget]
            return f"{np.mean(values):.1f} ± {np.std(values):.1f}" if values else "-"

        seconds = [r["seconds"] for r in mine if r["budget"] not in ("none",)]
        adapted_en = "100" if "100" in budgets else columns[-1]
        lines.append(
            f"| {name} | "
            + " | ".join(mean("ua_de", b) for b in columns)
            + f" | {mean('ua_en', adapted_en)} | {mean('ua_en', 'none')} | {np.mean(seconds):.1f} |"
        )
    paper = " | ".join(str(PAPER_HUBERT.get(b, "-")) for b in columns)
    lines.append(f"| paper: HuBERT fine-tuned (GPU) | {paper} | - | - | - |")
    return "\n".join(lines)


def merge(paths: list[Path], out: Path, budgets: list[str]) -> None:
    """Join the JSON of shards run in parallel into one report and print its table."""
    report: dict = {"variants": {}, "runs": [], "round_seconds_2000": {}}
    for path in paths:
        part = json.loads(path.read_text())
        for key in report:
            report[key] = report[key] + part[key] if key == "runs" else {**report[key], **part[key]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(table(report["runs"], list(report["variants"]), budgets))
    for name, seconds in report["round_seconds_2000"].items():
        print(f"{name}: one round with 2,000 unlabeled target clips takes {seconds:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budgets", nargs="+", default=["none", "0", "25", "100", "all"])
    parser.add_argument("--round-time-only", action="store_true")
    parser.add_argument(
        "--round-time", nargs="*", default=None, help="variants to time with 2,000 clips (default: all run)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads; run shards in parallel with 1 each"
    )
    parser.add_argument(
        "--merge", nargs="+", type=Path, help="only merge these JSON outputs into --out and print the table"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out, args.budgets)
        return

    from serdemo.encoders.whisper import load_whisper_base

    torch.set_num_threads(args.threads)
    cache = EmbeddingCache(default_cache_dir())
    encoder = load_whisper_base()
    source, target = load("ravdess", cache, encoder), load("emodb", cache, encoder)

    report: dict = {
        "variants": {n: asdict(VARIANTS[n]) for n in args.variants},
        "runs": [],
        "round_seconds_2000": {},
    }
    if not args.round_time_only:
        for name in args.variants:
            for seed in args.seeds:
                for budget in args.budgets:
                    row = run(VARIANTS[name], source, target, seed, budget)
                    report["runs"].append(row)
                    print(
                        f"{name:22s} seed {seed} {budget:>4s}: de {row['ua_de']:5.1f} en {row['ua_en']:5.1f} "
                        f"({row['seconds']:.1f} s, best epoch {row['best_epoch']})",
                        flush=True,
                    )
        print(table(report["runs"], args.variants, args.budgets))
    for name in args.variants if args.round_time is None else args.round_time:
        seconds = round_time(VARIANTS[name], source, target)
        report["round_seconds_2000"][name] = seconds
        print(f"{name}: one round with 2,000 unlabeled target clips takes {seconds:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
