"""A new language's pool recorded in one mood: what an adaptation round on it does to every other clip.

A person records themselves (or a call centre uploads its angry calls): every clip of the pool carries one
emotion. For each emotion in turn: a fresh data folder (the shipped source set, the app's defaults), the
held-out speakers' clips of every emotion scored as clips of a new language (the first model: no
statistics for it), then a pool of that one emotion from the corpus' training speakers added in that
language, unlabeled or labeled with its emotion, one round with the app's defaults, and the same held-out
clips scored again by the new version. Prints UA before and after and what the new version answers.

Usage::

    python bench/one_mood_pool.py emodb=../shared/corpora/emodb
    python bench/one_mood_pool.py emodb=PATH --pool 20 --labeled
    python bench/one_mood_pool.py emodb=PATH --language-prior 200   # a candidate setting for the rounds
    python bench/one_mood_pool.py emodb=PATH --labeled --language-anchoring
    python bench/one_mood_pool.py emodb=PATH --labeled --language-prior 1000 --transplant-copies 4
    python bench/one_mood_pool.py emodb=PATH --mixed one-speaker   # the contrast: a mixed recording
    python bench/one_mood_pool.py emodb=PATH --mixed many-speakers --pool 30 --small-pool-clips 0
    python bench/one_mood_pool.py emodb=PATH --pool 40 --labels 10         # 10 of the 40 clips labeled
    python bench/one_mood_pool.py emodb=PATH --mixed many-speakers --pool 60 --labels 10 --label-emotion each
    python bench/one_mood_pool.py emodb=PATH --emotions 2 --pool 40 --labels 10  # a pool in two moods
    python bench/one_mood_pool.py emodb=PATH --pool 40 --one-mood-spread 0  # learn from a one-mood pool
    python bench/one_mood_pool.py emodb=PATH --pool 60 --mostly neutral --share 0.85  # mostly one mood
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from one_mood_batches import NEW_LANGUAGE, score  # noqa: E402
from padding import held_out  # noqa: E402

from serdemo.app import AdaptRequest, Service, ServiceConfig, rounds  # noqa: E402
from serdemo.audio import load_audio  # noqa: E402
from serdemo.cache import embed_waveforms  # noqa: E402
from serdemo.cli_options import corpus_arg  # noqa: E402
from serdemo.config import AdaptConfig  # noqa: E402
from serdemo.corpora import load_corpus  # noqa: E402
from serdemo.experiment import machine_info  # noqa: E402
from serdemo.labels import EMOTIONS  # noqa: E402
from serdemo.metrics import unweighted_accuracy  # noqa: E402
from serdemo.splits import speaker_split  # noqa: E402


def use_round_config(**changes) -> None:
    """Make the app's rounds use AdaptConfig with these defaults changed, all else its own."""
    fields = [(name, type(value), dataclasses.field(default=value)) for name, value in changes.items()]
    candidate = dataclasses.make_dataclass("Candidate", fields, bases=(AdaptConfig,), frozen=True)
    rounds.AdaptConfig = candidate  # type: ignore[misc]  (rounds build their config from this name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=corpus_arg, metavar="NAME=PATH", help="corpus of the clips")
    parser.add_argument("--pool", type=int, default=20, help="clips in the one-mood pool (default 20)")
    parser.add_argument("--labeled", action="store_true", help="label every pool clip with its emotion")
    parser.add_argument(
        "--emotions",
        type=int,
        choices=[1, 2],
        default=1,
        help="emotions per pool: 1 (a pool per emotion) or 2 (a pool per pair of emotions, taken in turn; "
        "a call centre's angry and neutral calls)",
    )
    parser.add_argument(
        "--labels", type=int, metavar="N", help="label the first N pool clips with their emotion (not all)"
    )
    parser.add_argument(
        "--label-emotion",
        choices=["each", "pairs"],
        help="with --mixed and --labels: label only clips of one emotion, each pool once per emotion (a "
        "person who labels, say, their angry files and adds the rest unlabeled); pairs: of two emotions, "
        "each pool once per pair, the two taken in turn",
    )
    parser.add_argument("--draws", type=int, default=5, help="--mixed many-speakers: pools drawn (default 5)")
    parser.add_argument("--clips", type=int, default=100, help="held-out clips scored (default 100)")
    parser.add_argument(
        "--language-prior",
        type=int,
        default=AdaptConfig.language_prior,
        metavar="CLIPS",
        help="the round's AdaptConfig.language_prior (a candidate; default: the app's)",
    )
    parser.add_argument(
        "--language-anchoring",
        action=argparse.BooleanOptionalAction,
        default=AdaptConfig.language_anchoring,
        help="the round's AdaptConfig.language_anchoring (a candidate; default: the app's)",
    )
    parser.add_argument(
        "--transplant-copies",
        type=int,
        default=AdaptConfig.transplant_copies,
        help="the round's AdaptConfig.transplant_copies (a candidate; default: the app's)",
    )
    parser.add_argument(
        "--small-pool-clips",
        type=int,
        default=AdaptConfig.small_pool_clips,
        help="the round's AdaptConfig.small_pool_clips: a smaller pool with few labels is not learned from "
        "(default: the app's; 0 = learn from any pool, the app before this setting)",
    )
    parser.add_argument(
        "--few-emotion-labels",
        type=int,
        default=AdaptConfig.few_emotion_labels,
        help="the round's AdaptConfig.few_emotion_labels (default: the app's; 0 = train on such labels)",
    )
    parser.add_argument(
        "--one-mood-spread",
        type=float,
        default=AdaptConfig.one_mood_spread,
        help="the round's AdaptConfig.one_mood_spread: an unlabeled pool the active model's answers spread "
        "less over sounds like one mood and is not learned from (default: the app's; 0 = learn from it)",
    )
    parser.add_argument("--policy", default=AdaptConfig.policy, help="the round's pseudo-label policy")
    parser.add_argument(
        "--pseudo-balance", default=AdaptConfig.pseudo_balance, help="the round's pseudo-label balancing"
    )
    parser.add_argument("--no-rebalance", action="store_true", help="the round without utterance rebalancing")
    parser.add_argument(
        "--mixed",
        choices=["one-speaker", "many-speakers"],
        help="the contrast: pools of every emotion instead of one emotion's clips; one-speaker: each pool "
        "is one training speaker's clips (one recording of a mixed conversation), a pool per speaker; "
        "many-speakers: clips of every training speaker, drawn five times with different seeds",
    )
    parser.add_argument(
        "--mostly",
        choices=EMOTIONS,
        help="pools mostly of this emotion, as natural speech is mostly neutral: --share of the --pool clips "
        "of it, the rest of the other emotions in turn, --draws draws",
    )
    parser.add_argument("--share", type=float, default=0.85, help="--mostly: its share of each pool")
    args = parser.parse_args()
    if args.mostly and args.mixed:
        parser.error("--mostly and --mixed are two kinds of pool: give one")
    if args.label_emotion and not (args.mixed and args.labels):
        parser.error("--label-emotion needs --mixed and --labels")
    candidate = {
        "language_prior": args.language_prior,
        "language_anchoring": args.language_anchoring,
        "transplant_copies": args.transplant_copies,
        "small_pool_clips": args.small_pool_clips,
        "few_emotion_labels": args.few_emotion_labels,
        "one_mood_spread": args.one_mood_spread,
    }
    use_round_config(**{k: v for k, v in candidate.items() if v != getattr(AdaptConfig, k)})
    torch.set_num_threads(1)
    name, root = args.corpus
    root = Path(root)
    train = speaker_split([u for u in load_corpus(name, root) if u.emotion in EMOTIONS], seed=0).train
    test = held_out(name, root, args.clips)
    truth = np.array([EMOTIONS.index(u.emotion) for u in test])
    every = list(range(len(test)))
    state = (
        "labeled"
        if args.labeled
        else f"unlabeled, {args.labels} of them labeled"
        if args.labels
        else "unlabeled"
    )
    print(f"{name}: {len(test)} held-out clips scored as `{NEW_LANGUAGE}`; {args.pool} {state} pool clips")
    machine = machine_info()["cpu"]
    settings = f"policy {args.policy}, pseudo_balance {args.pseudo_balance}"
    settings += f", language_prior {args.language_prior}, language_anchoring {args.language_anchoring}"
    settings += f", transplant_copies {args.transplant_copies}, small_pool_clips {args.small_pool_clips}"
    settings += f", few_emotion_labels {args.few_emotion_labels}, rebalance {not args.no_rebalance}"
    settings += f", one_mood_spread {args.one_mood_spread}"
    print(f"{settings}; machine: {machine}, torch {torch.__version__}\n")
    if args.mixed == "one-speaker":
        speakers = sorted({u.speaker for u in train})
        pools = {f"speaker {s}, every emotion": mixed_pool(train, [s], args.pool) for s in speakers}
    elif args.mixed == "many-speakers":
        speakers = sorted({u.speaker for u in train})
        pools = {}
        for draw in range(args.draws):
            shuffled = [train[i] for i in np.random.default_rng(draw).permutation(len(train))]
            pools[f"draw {draw}, every speaker and emotion"] = mixed_pool(shuffled, speakers, args.pool)
    elif args.mostly:
        pools = {}
        mostly = [u for u in train if u.emotion == args.mostly]
        rest = [u for u in train if u.emotion != args.mostly]
        count = round(args.share * args.pool)
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            main = [mostly[i] for i in rng.permutation(len(mostly))[:count]]
            shuffled = [rest[i] for i in rng.permutation(len(rest))]
            others = mixed_pool(shuffled, sorted({u.speaker for u in rest}), args.pool - len(main))
            pools[f"draw {draw}, {len(main)} {args.mostly} + {len(others)} of the others"] = main + others
    else:
        pools = {
            " and ".join(moods): mood_pool(train, moods, args.pool)
            for moods in itertools.combinations(EMOTIONS, args.emotions)
        }
    # which pool clips get their label: all (--labeled), the first N (--labels), or N of one emotion
    labeled = {what: pool if args.labeled else pool[: args.labels or 0] for what, pool in pools.items()}
    if args.label_emotion:  # every mixed pool once per emotion (or pair): only those clips labeled
        size = 1 if args.label_emotion == "each" else 2
        mixed, pools, labeled = pools, {}, {}
        for what, pool in mixed.items():
            for moods in itertools.combinations(EMOTIONS, size):
                key = f"{what}, {' and '.join(moods)} labeled"
                pools[key] = pool
                labeled[key] = mood_pool(pool, moods, args.labels)
    print("| pool | UA before the round | UA after | share of answers after | answer spread (one mood?) |")
    print("|---|---:|---:|---|---|")
    for what, pool in pools.items():
        with tempfile.TemporaryDirectory() as scratch:
            service = Service(ServiceConfig(data_dir=Path(scratch) / "data"), log=lambda text: None)
            service.start(background=False)
            ws = service.ws
            features = embed_waveforms(ws.encoder, [load_audio(u.path) for u in test], ws.cache)
            first = ws.model(service.store.active_version().id)
            before = score(first, test, features, every).argmax(1)
            service.add_files([str(u.path) for u in pool], NEW_LANGUAGE)
            emotion_of = {u.path.name: u.emotion for u in labeled[what]}
            for clip in service.store.clips(NEW_LANGUAGE):
                if clip.original_name in emotion_of:
                    service.label(clip.id, emotion_of[clip.original_name], "bench")
            request = AdaptRequest(
                NEW_LANGUAGE,
                policy=args.policy,
                pseudo_balance=args.pseudo_balance,
                rebalance=not args.no_rebalance,
            )
            report = service.adapt(request)
            version = ws.model(report.version_id)
            after = score(version, test, features, every).argmax(1)
            spread = "-" if version.pool_spread is None else f"{version.pool_spread:.2f}"
            shares = np.bincount(after, minlength=len(EMOTIONS)) / len(after)
            print(
                f"| {what} ({len(pool)} clips, {len(labeled[what])} labeled) | "
                f"{100 * unweighted_accuracy(truth, before):.1f} | "
                f"{100 * unweighted_accuracy(truth, after):.1f} | "
                + ", ".join(f"{e} {s:.0%}" for e, s in zip(EMOTIONS, shares, strict=True))
                + f" | {spread} ({'yes' if version.pool_in_one_mood else 'no'}) |",
                flush=True,
            )


def mood_pool(train: list, moods: tuple[str, ...], size: int) -> list:
    """Up to ``size`` clips of ``moods`` from every training speaker, the moods taken in turn."""
    by_mood = [[u for u in train if u.emotion == mood] for mood in moods]
    return [u for turn in itertools.zip_longest(*by_mood) for u in turn if u is not None][:size]


def mixed_pool(train: list, speakers: list[str], size: int) -> list:
    """Up to ``size`` clips of ``speakers``, the emotions taken in turn so each is as present as it can be."""
    by_emotion = [[u for u in train if u.speaker in speakers and u.emotion == e] for e in EMOTIONS]
    pool: list = []
    for turn in range(size):
        for clips in by_emotion:
            if turn < len(clips) and len(pool) < size:
                pool.append(clips[turn])
    return pool


if __name__ == "__main__":
    main()
