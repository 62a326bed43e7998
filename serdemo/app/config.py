"""How the app is set up (ServiceConfig), its layer's constants, and the errors a user can cause."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serdemo.active import COVERAGE_RULE, UncertaintyRule
from serdemo.config import AdaptConfig
from serdemo.projection import ColorBy

ASSETS = Path(__file__).resolve().parents[2] / "assets"
# the first is the default: docs/active-learning.md (bench/active_learning.py) measures each against random
RANKING_RULES: tuple[str, ...] = (COVERAGE_RULE, *(rule.value for rule in UncertaintyRule))
COLOR_CHOICES: tuple[str, ...] = tuple(choice.value for choice in ColorBy)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MIN_CLIP_SECONDS = (
    0.5  # shorter clips hold too little speech for an emotion: warned in predict, refused in pools
)
CV_FOLDS = 5  # target UA from human labels: 5-fold cross-validation once there are 5 labeled clips
EMBED_BATCH = 16  # clips embedded per turn on the model thread (predicts wait at most one batch)
EXPORT_FORMATS = ("csv", "jsonl", "bundle")
QUIET_DBFS = -40.0  # speech RMS below this: a laptop microphone at arm's length, ~25 dB under normal speech

Progress = Callable[[float, str], None]  # progress(fraction in [0, 1], what is happening)

_SERVER_PATH = re.compile(r"(?:[A-Za-z]:)?[/\\](?:[^\s/\\:'\"`]+[/\\])+")


class ServiceError(RuntimeError):
    """Something the user asked for that cannot be done now; the message says what to do instead."""


class NothingToDoError(ServiceError):
    """The action has nothing to act on (no clip on screen, no label to undo): a notice, not a failure.

    The page shows it as a warning and keeps what it shows, instead of marking every output with an error.
    """


class BusyError(ServiceError):
    """The app is busy with something shared (an adaptation round, start-up): try again later."""


class RoundCancelledError(ServiceError):
    """An adaptation round was cancelled: nothing was saved and the active version stays as it was."""


def scrub(message: str) -> str:
    """A message without server folders: ``/tmp/gradio/ab12/clip.wav: ...`` -> ``clip.wav: ...``."""
    return _SERVER_PATH.sub("", message)


@dataclass(frozen=True)
class ServiceConfig:
    """How the app is set up; ``app.py`` fills it from the command line."""

    data_dir: Path = Path("annotations")  # annotation store, model versions and exports
    encoder: str = AdaptConfig.encoder  # registry name of the utterance encoder
    encoder_source: Path | None = None  # local weights of the encoder (serdemo.encoders.local); None: default
    source_corpora: tuple[tuple[str, Path], ...] = ()  # (corpus name, root): the labeled source set
    target_corpora: tuple[tuple[str, Path], ...] = ()  # (corpus name, root): seeds the unlabeled target pool
    corpus_limit: int | None = None  # at most this many clips per corpus, balanced by emotion (quick demos)
    cache_dir: Path | None = None  # embedding cache; None: serdemo.cache.default_cache_dir()
    examples_dir: Path = ASSETS / "examples"  # example clips offered on the Predict tab
    default_model_dir: Path = ASSETS / "default_model"  # a saved model served when no version exists yet
    shipped_source_set: Path = ASSETS / "source_set.npz"  # embedded source set when no --source-corpus given
    max_clip_seconds: float = 60.0  # longer uploads are refused with a message saying how to trim them
    # a recording longer than this joins a pool as its utterances, cut at pauses (0: always whole)
    split_above_seconds: float = 10.0
    max_recording_seconds: float = 600.0  # the longest recording a pool takes (cut into utterances)
    min_clip_seconds: float = 0.05  # shorter clips are refused before they reach the store
    max_upload_bytes: int = 512 << 20  # Gradio refuses larger uploads (bundles and zips included)
    max_bulk_files: int = 2_000  # audio files one bulk add may take (a zip's members count)
    public_file_seconds: float = 1800.0  # copies of audio/exports handed to pages are deleted after this
    segment_above_seconds: float = 4.0  # longer clips also get a timeline of emotions
    segment_window_seconds: float = 2.0  # the models are trained on ~2 s clips (paper: 2 s crops)
    segment_hop_seconds: float = 1.0
    frontend: str | None = None  # speech front end (serdemo.speech); None: AdaptConfig's default
    augment_copies: int | None = (
        None  # training copies per labeled clip (serdemo.learn.augment); None: default
    )
    first_epochs: int = AdaptConfig.epochs  # epochs of the first, source-only model (frozen: seconds)
    explore_source_clips: int = 300  # source clips drawn in the Explore plots, beside the target pool
    explore_target_clips: int = 600
    # offer fine-tune rounds without a GPU (app.py --allow-cpu-finetune): hours per round with whisper-base
    allow_cpu_finetune: bool = False
    seed: int = 0
    warm_up_umap: bool = True  # compile UMAP's numba code in the background after start-up (~50 s once)
