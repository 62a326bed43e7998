"""The only API the app sees: predict, labeling queue, adaptation rounds, versions, projections, export."""

from __future__ import annotations

import atexit
import dataclasses
import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from serdemo.active import COVERAGE_RULE, UncertaintyRule, rank_by_coverage, rank_for_labeling
from serdemo.adapt import AdaptResult, ClipSet, ProgressEvent, embed, load_model, predict_proba, save_model
from serdemo.adapt import adapt as run_adaptation
from serdemo.audio import SAMPLE_RATE, AudioError, AudioInfo, load_audio, load_audio_checked, segment
from serdemo.auth import Accounts, AuthError, Sessions
from serdemo.bundle import clean_work, export_bundle, import_bundle
from serdemo.cache import EmbeddingCache, default_cache_dir, embed_files, embed_waveforms
from serdemo.config import AdaptConfig, Policy
from serdemo.corpora import load_corpus
from serdemo.corpora.base import Utterance
from serdemo.encoders import build_encoder
from serdemo.encoders.base import UtteranceEncoder
from serdemo.encoders.local import load_local_encoder
from serdemo.labels import EMOTIONS, emotion_index
from serdemo.metrics import evaluate
from serdemo.projection import ColorBy, project, projection_figure, projection_title
from serdemo.pseudo_labels import make_policy
from serdemo.safezip import ArchiveError, ZipLimits, unpack
from serdemo.speech import MIN_SPEECH_S, FrontEnd, SpeechActivity, speech_activity, with_frontend
from serdemo.splits import speaker_split
from serdemo.store import AnnotationStore, Clip, ClipSource
from serdemo.target_eval import (
    MIN_CLIPS_TO_JUDGE,
    Comparison,
    UAEstimate,
    compare,
    fold_of_each,
    ua_with_interval,
)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
# the first is the default: docs/active-learning.md (bench/active_learning.py) measures each against random
RANKING_RULES: tuple[str, ...] = (COVERAGE_RULE, *(rule.value for rule in UncertaintyRule))
COLOR_CHOICES: tuple[str, ...] = tuple(choice.value for choice in ColorBy)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MIN_CLIP_SECONDS = (
    0.5  # shorter clips hold too little speech for an emotion: warned in predict, refused in pools
)
CV_FOLDS = 5  # target UA from human labels: 5-fold cross-validation once there are 5 labeled clips
EMBED_BATCH = 16  # clips embedded per hold of the encoder lock
EXPORT_FORMATS = ("csv", "jsonl", "bundle")
QUIET_DBFS = -40.0  # speech RMS below this: a laptop microphone at arm's length, ~25 dB under normal speech

Progress = Callable[[float, str], None]  # progress(fraction in [0, 1], what is happening)


class ServiceError(RuntimeError):
    """Something the user asked for that cannot be done now; the message says what to do instead."""


class BusyError(ServiceError):
    """The app is busy with something shared (an adaptation round, start-up): try again later."""


@dataclass(frozen=True)
class ServiceConfig:
    """How the app is set up; ``app.py`` fills it from the command line."""

    data_dir: Path = Path("annotations")  # annotation store, model versions and exports
    encoder: str = "whisper-base"  # registry name of the utterance encoder
    encoder_source: Path | None = None  # local weights of the encoder (serdemo.encoders.local); None: default
    source_corpora: tuple[tuple[str, Path], ...] = ()  # (corpus name, root): the labeled source set
    target_corpora: tuple[tuple[str, Path], ...] = ()  # (corpus name, root): seeds the unlabeled target pool
    corpus_limit: int | None = None  # at most this many clips per corpus, balanced by emotion (quick demos)
    cache_dir: Path | None = None  # embedding cache; None: serdemo.cache.default_cache_dir()
    examples_dir: Path = ASSETS / "examples"  # example clips offered on the Predict tab
    default_model_dir: Path = ASSETS / "default_model"  # a saved model served when no version exists yet
    shipped_source_set: Path = ASSETS / "source_set.npz"  # embedded source set when no --source-corpus given
    max_clip_seconds: float = 60.0  # longer uploads are refused with a message saying how to trim them
    min_clip_seconds: float = 0.05  # shorter clips are refused before they reach the store
    max_upload_bytes: int = 512 << 20  # Gradio refuses larger uploads (bundles and zips included)
    max_bulk_files: int = 2_000  # audio files one bulk add may take (a zip's members count)
    public_file_seconds: float = 1800.0  # copies of audio/exports handed to pages are deleted after this
    segment_above_seconds: float = 4.0  # longer clips also get a timeline of emotions
    segment_window_seconds: float = 2.0  # the models are trained on ~2 s clips (paper: 2 s crops)
    segment_hop_seconds: float = 1.0
    frontend: str | None = None  # speech front end (serdemo.speech); None: AdaptConfig's default
    first_epochs: int = 100  # epochs of the source-only model trained at first start (frozen: seconds)
    explore_source_clips: int = 300  # source clips drawn in the Explore plots, beside the target pool
    explore_target_clips: int = 600
    seed: int = 0
    warm_up_umap: bool = True  # compile UMAP's numba code in the background after start-up (~50 s once)


@dataclass(frozen=True)
class Segment:
    """Prediction for one window of a long clip."""

    start: float  # seconds
    end: float
    probs: dict[str, float]  # empty where the window holds no speech
    top: str  # NO_SPEECH_LABEL where the window holds no speech: it is marked, not classified
    speech: bool = True


NO_SPEECH_LABEL = "no speech"


@dataclass(frozen=True)
class Prediction:
    """What the model says about one clip."""

    probs: dict[str, float]  # emotion -> probability, in the model's class order
    top: str
    confidence: float  # probability of ``top``
    model_version: str
    duration: float  # seconds
    language: str | None  # the language the features were normalised as
    segments: list[Segment] = field(default_factory=list)  # only for clips longer than segment_above_seconds
    warnings: list[str] = field(default_factory=list)  # e.g. silent or clipped audio

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the ``/predict`` API returns it."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class QueueItem:
    """The clip a person should label next, with what the model thinks of it."""

    clip_id: int
    path: str
    name: str
    duration: float
    suggestion: str
    confidence: float
    score: float  # uncertainty under the ranking rule, in [0, 1]
    spectrogram: np.ndarray  # (bands, frames) log power in dB, for display
    spectrogram_times: np.ndarray  # (frames,) seconds
    spectrogram_freqs: np.ndarray  # (bands,) centre frequency in Hz


@dataclass(frozen=True)
class LabelState:
    """One browser session's place in the labeling queue (kept in ``gr.State``, never shared)."""

    language: str = ""
    rule: str = RANKING_RULES[0]
    current: int | None = None  # clip on screen
    skipped: tuple[int, ...] = ()  # skipped in this session; they come back after the rest
    hide_names: bool = False  # file names can give the label away (e.g. "angry_03.wav")

    def with_settings(self, language: str | None, rule: str | None) -> LabelState:
        """This state under the dropdown values; a new language starts a fresh queue.

        A blank picker keeps the language on screen (a page can show the default language's clip before
        its picker has the choice), so a label never lands on "no clip on screen".
        """
        language = (language or "").strip().lower() or self.language
        rule = rule or self.rule
        if language != self.language:
            return LabelState(language=language, rule=rule, hide_names=self.hide_names)
        return dataclasses.replace(self, rule=rule)


@dataclass(frozen=True)
class LabelView:
    """What the Label tab shows after an action."""

    state: LabelState
    item: QueueItem | None
    counts: dict[str, int]  # labels per emotion in this language
    unlabeled: int
    message: str = ""  # what the action did, when the screen alone does not say it (undo)


@dataclass(frozen=True)
class AdaptRequest:
    """The Adapt tab's settings; defaults, and everything else, are AdaptConfig's (shared with the CLI)."""

    language: str
    policy: str = AdaptConfig.policy
    tau: float = AdaptConfig.tau
    epochs: int = AdaptConfig.epochs
    window: int = AdaptConfig.window
    rebalance: bool = AdaptConfig.rebalance
    pseudo_balance: str = AdaptConfig.pseudo_balance  # see AdaptConfig.pseudo_balance


@dataclass
class AdaptReport:
    """What one adaptation round produced."""

    version_id: str
    parent: str | None
    language: str
    policy: str
    labeled: int  # human-labeled target clips trained on
    unlabeled: int  # target clips the policy could pseudo-label
    source_metrics: dict[str, Any] | None  # metrics.evaluate on held-out source clips
    target_metrics: dict[str, Any] | None  # metrics.evaluate on held-out target clips, if any
    target_note: str  # what the target figure is measured on
    pseudo_per_class: dict[str, int]  # accepted in the last pseudo-label round
    epochs_run: int
    best_epoch: int
    seconds: float
    comparison: Comparison | None = None  # this version and the previous one on the same target clips
    previous_note: str = ""  # which clips the previous version is compared on, or why it is not

    def markdown(self) -> str:
        """A short summary for the Adapt tab: what ran, and target UA with its uncertainty."""
        accepted = sum(self.pseudo_per_class.values())
        source = self.source_metrics
        rows = [f"| source (held-out speakers) | {source['ua']:.1%} (n={source['n']}) |"] if source else []
        estimate = (self.target_metrics or {}).get("estimate")
        if estimate:
            rows.append(f"| target `{self.language}`, this version | {UAEstimate(**estimate).text()} |")
        else:
            rows.append(f"| target `{self.language}` | n/a |")
        if self.comparison is not None:
            rows.append(
                f"| target `{self.language}`, previous version {self.parent}, same clips | "
                f"{self.comparison.old.text()} |"
            )
        if estimate and self.comparison is not None:
            verdict = self.comparison.verdict()
        elif estimate and estimate["n"] < MIN_CLIPS_TO_JUDGE:
            verdict = f"Too few clips to judge ({estimate['n']}; at least {MIN_CLIPS_TO_JUDGE} needed)."
        else:
            verdict = ""
        return (
            f"### New model {self.version_id} is active\n"
            f"Policy **{self.policy}**, {self.labeled} labeled + {self.unlabeled} unlabeled "
            f"`{self.language}` clips; "
            f"{self.epochs_run} epochs (best {self.best_epoch}) in {self.seconds:.1f} s; "
            f"{accepted} pseudo-labels accepted in the last round.\n\n"
            "| model on | UA (95% interval) |\n|---|---|\n"
            + "\n".join(rows)
            + f"\n\n**{verdict}**\n\n{self.target_note} {self.previous_note}".rstrip()
        )


@dataclass
class ProjectionView:
    """The Explore tab's two figures and the clips they show."""

    message: str
    before: go.Figure
    after: go.Figure
    clip_choices: list[tuple[str, str]]  # (label, key) for the "play a clip" dropdown


@dataclass
class _SourceData:
    """The labeled source set, embedded once, split by speaker."""

    language: str
    train: ClipSet
    validation: ClipSet
    test: ClipSet
    paths: dict[str, Path]  # utterance id -> audio file, to play source points in Explore

    PARTS = ("train", "validation", "test")

    def save(self, path: Path, encoder_identity: str) -> None:
        """Write the embedded set (features as float16: half the size, far below the head's noise)."""
        sets = [getattr(self, part) for part in self.PARTS]
        merged = ClipSet.concat(sets)
        np.savez_compressed(
            path,
            encoder=encoder_identity,
            language=self.language,
            ids=np.asarray(merged.ids),
            labels=merged.labels,
            languages=merged.languages,
            speakers=merged.speakers,
            features=merged.features.astype(np.float16),
            part=np.concatenate([np.full(len(c), i) for i, c in enumerate(sets)]),
        )

    @classmethod
    def load(cls, path: Path, encoder_identity: str) -> _SourceData:
        """Read a set written by :meth:`save`; refuses one embedded by another encoder."""
        with np.load(path, allow_pickle=False) as data:
            if str(data["encoder"]) != encoder_identity:
                raise ServiceError(
                    f"{path} was embedded by {data['encoder']}, not by the active encoder "
                    f"{encoder_identity}: pass --source-corpus NAME=PATH to embed a source corpus"
                )
            merged = ClipSet(
                ids=data["ids"].tolist(),
                labels=data["labels"],
                languages=data["languages"],
                speakers=data["speakers"],
                features=data["features"].astype(np.float32),
            )
            part, language = data["part"], str(data["language"])
        parts = {name: merged.subset(part == i) for i, name in enumerate(cls.PARTS)}
        return cls(language=language, paths={}, **parts)


class _Stage:
    """What start-up is doing, for the status line (written by the start-up thread, read by all)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.text, self.done, self.total = "starting", 0, 0

    def set(self, text: str, done: int = 0, total: int = 0) -> None:
        with self._lock:
            self.text, self.done, self.total = text, done, total

    def describe(self) -> str:
        with self._lock:
            return f"{self.text} {self.done}/{self.total}" if self.total else self.text


class Service:
    """Shared state of the app: encoder, annotation store, labeled source set, target pool and models.

    Everything here is safe to call from Gradio's worker threads. Per-user state (the labeling queue
    position) lives in :class:`LabelState` values the UI keeps per browser session.

    Args:
        config: where data lives and which corpora seed the app.
        encoder: an already built encoder (tests pass a tiny random one); default: built from
            ``config.encoder`` during :meth:`start`.
        log: where start-up progress is reported besides the status line (the console).
        accounts: who may label, adapt, import and export (``SERDEMO_AUTH``); None: everyone.

    Example:
        >>> service = Service(ServiceConfig(data_dir=Path("annotations"))).start()  # doctest: +SKIP
        >>> service.wait_ready(600)  # doctest: +SKIP
        >>> service.predict("assets/examples/en_happy_news.flac").top  # doctest: +SKIP
        'happiness'
    """

    def __init__(
        self,
        config: ServiceConfig,
        encoder: UtteranceEncoder | None = None,
        log: Callable[[str], None] = print,
        accounts: Accounts | None = None,
    ) -> None:
        self.config = config
        # None: no login, anyone may label under any name (a laptop); else see serdemo.auth
        self.sessions = Sessions(accounts) if accounts is not None else None
        self.store = AnnotationStore(
            config.data_dir,
            max_clip_seconds=config.max_clip_seconds,
            min_clip_seconds=config.min_clip_seconds,
        )
        # Pages get copies of the files they show, from this folder, never the data folder itself
        # (which holds the database and the model weights): see allowed_paths / blocked_paths.
        self.public_dir = Path(tempfile.mkdtemp(prefix="serdemo-public-"))
        atexit.register(shutil.rmtree, self.public_dir, True)
        self._interactive_waiting = 0  # predicts waiting for the encoder: bulk work lets them go first
        self.cache = EmbeddingCache(config.cache_dir or default_cache_dir())
        self._log = log
        self._encoder = encoder
        self.frontend = FrontEnd.parse(config.frontend or AdaptConfig().frontend)
        self._encoder_lock = threading.Lock()  # one forward pass at a time: 2 CPU cores, no gain from more
        self._round_lock = threading.Lock()  # one adaptation round at a time
        self._round_status = ""
        self._lock = threading.RLock()  # guards the tables below
        self._source: _SourceData | None = None
        self._features: dict[int, np.ndarray] = {}  # target clip id -> (L, F) encoder features
        self._corpus_labels: dict[int, str] = {}  # target clip id -> corpus label, never trained on
        self._models: dict[str, AdaptResult] = {}  # version id -> loaded model
        self._probs: dict[tuple[str, int], np.ndarray] = {}  # (version id, clip id) -> probabilities
        self._stage = _Stage()
        self._ready = threading.Event()
        self._error: str | None = None
        self._no_model_reason = ""

    # -- start-up ---------------------------------------------------------------------------------

    def start(self, background: bool = True) -> Service:
        """Load the encoder, embed the corpora and make sure a model exists; in a thread by default.

        The page answers while this runs; the status line shows the progress and actions that need
        the model say what is still happening.
        """
        if background:
            threading.Thread(target=self._start_safely, name="serdemo-startup", daemon=True).start()
        else:
            self._start()
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until start-up finished (True) or ``timeout`` seconds passed (False)."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        """Whether start-up has finished (successfully or not)."""
        return self._ready.is_set()

    def _start_safely(self) -> None:
        try:
            self._start()
        except Exception as error:  # shown in the status line: the app keeps serving the page
            self._error = f"{type(error).__name__}: {error}"
            self._log(f"start-up failed: {self._error}")
            self._ready.set()

    def _start(self) -> None:
        t0 = time.perf_counter()
        # 0) unpacked uploads a killed process left behind
        # (only this app unpacks there, and nothing runs yet: everything left is from a killed run)
        if removed := clean_work(self.config.data_dir / "tmp", older_than_s=0):
            self._log(f"removed {removed} unpacked uploads left by an earlier run")
        # 1) the encoder (whisper-base: ~20 s to read and check its weights)
        if self._encoder is None:
            self._say(f"loading encoder {self.config.encoder}")
            self._encoder = (
                load_local_encoder(self.config.encoder, self.config.encoder_source)
                if self.config.encoder_source is not None
                else build_encoder(self.config.encoder)
            )
        # every embedding (source, pool, predictions, timeline windows) goes through one speech front end
        self._encoder = with_frontend(self._encoder, self.frontend)
        # 2) the labeled source set, embedded through the cache (slow only the first time)
        if self.config.source_corpora:
            self._source = self._load_source()
        elif self.config.shipped_source_set.is_file():
            self._say(f"reading the shipped source set {self.config.shipped_source_set}")
            self._source = _SourceData.load(self.config.shipped_source_set, self._encoder.identity)
        # 3) the target pool: corpus clips enter the store unlabeled; their labels stay out of training
        for name, root in self.config.target_corpora:
            self._seed_target(name, root)
        self._embed_pool(self.store.clips())
        # 4) a model to serve
        self._ensure_model()
        self._say("ready")
        self._log(f"ready after {time.perf_counter() - t0:.1f} s")
        self._ready.set()
        if self.config.warm_up_umap:
            threading.Thread(target=_warm_up_umap, name="serdemo-umap-warm-up", daemon=True).start()

    def _say(self, text: str, done: int = 0, total: int = 0) -> None:
        self._stage.set(text, done, total)
        if not total or done in (0, total):
            self._log(f"{text} {done}/{total}" if total else text)

    def _embed_progress(self, what: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self._say(f"embedding {what}", done, total)

        return report

    def _load_source(self) -> _SourceData:
        utterances: list[Utterance] = []
        for name, root in self.config.source_corpora:
            self._say(f"reading source corpus {name} at {root}")
            found = [u for u in load_corpus(name, root) if u.emotion is not None]
            utterances += _balanced(found, self.config.corpus_limit, self.config.seed)
        languages = sorted({u.language for u in utterances})
        features = self._embed_paths([u.path for u in utterances], "source clips")
        by_id = dict(zip((u.id for u in utterances), features, strict=True))
        split = speaker_split(utterances, seed=self.config.seed)
        for note in split.notes:
            self._log(f"source split: {note}")

        def part(items: list[Utterance]) -> ClipSet:
            return ClipSet.from_utterances(items, EMOTIONS, features=np.stack([by_id[u.id] for u in items]))

        return _SourceData(
            language="+".join(languages),
            train=part(split.train),
            validation=part(split.validation),
            test=part(split.test),
            paths={u.id: u.path for u in utterances},
        )

    def _seed_target(self, name: str, root: Path) -> None:
        self._say(f"reading target corpus {name} at {root}")
        utterances = _balanced(load_corpus(name, root), self.config.corpus_limit, self.config.seed)
        for i, utterance in enumerate(utterances):
            if i % 25 == 0:
                self._say(f"adding {name} clips to the target pool", i, len(utterances))
            try:
                clip = self.store.add_clip(
                    utterance.path,
                    language=utterance.language,
                    source=f"corpus:{name}",
                    original_name=utterance.path.name,
                    speaker=utterance.speaker,
                )
            except AudioError as error:  # one unusable corpus file is reported, not fatal
                self._log(f"target corpus {name}: skipped {error}")
                continue
            if utterance.emotion is not None:
                with self._lock:
                    self._corpus_labels[clip.id] = utterance.emotion

    def _embed_pool(self, clips: Sequence[Clip]) -> None:
        if self._encoder is None:
            raise ServiceError(f"still starting ({self._stage.describe()}); try again in a moment")
        with self._lock:
            missing = [c for c in clips if c.id not in self._features]
        if not missing:
            return
        try:
            features = self._embed_paths([c.path for c in missing], "target pool clips")
        except AudioError:  # one bad clip must not stop the rest: find it, set it aside, go on
            missing = self._skip_unusable(missing)
            features = self._embed_paths([c.path for c in missing], "target pool clips")
        with self._lock:
            for clip, row in zip(missing, features, strict=True):
                self._features[clip.id] = row

    def _embed_paths(self, paths: Sequence[Path], what: str) -> np.ndarray:
        # Batches, taking the encoder lock for one batch at a time and stepping aside while a predict
        # waits: a 10,000-clip bulk add held the lock for minutes and made another user's predict wait.
        report = self._embed_progress(what)
        parts = []
        for start in range(0, len(paths), EMBED_BATCH):
            while self._interactive_waiting:
                time.sleep(0.01)
            with self._encoder_lock:
                parts.append(embed_files(self._encoder, paths[start : start + EMBED_BATCH], self.cache))
            report(min(start + EMBED_BATCH, len(paths)), len(paths))
        if not parts:
            return embed_files(self._encoder, [], self.cache)
        return np.concatenate(parts)

    def _skip_unusable(self, clips: Sequence[Clip]) -> list[Clip]:
        """Clips whose audio loads; the others are set aside in the store and reported, not fatal.

        A clip stored by an older serdemo (before audio was checked at the door) could hold NaN
        samples or be too short, and made start-up fail for everyone.
        """
        good = []
        for clip in clips:
            try:
                load_audio(
                    clip.path,
                    max_seconds=self.config.max_clip_seconds,
                    min_seconds=self.config.min_clip_seconds,
                )
            except AudioError as error:
                reason = str(error).replace(str(clip.path), clip.original_name or clip.path.name)
                self.store.set_unusable(clip.id, reason)
                self._log(f"clip {clip.id} set aside: {reason}")
                continue
            good.append(clip)
        return good

    def _ensure_model(self) -> None:
        active = self.store.active_version()
        if active is not None:
            self._say(f"loading model {active.id}")
            if self._load_or_fall_back(active.id):
                return
        default = self.config.default_model_dir
        if (default / "model.safetensors").is_file():
            self._say(f"registering the shipped model {default}")
            result = load_model(default)
            self.store.add_model_version(
                result.config.to_dict(), {"origin": "shipped default model"}, weights_path=default
            )
            return
        if self._source is None:
            self._no_model_reason = (
                "No model yet: restart with `--source-corpus NAME=PATH` "
                "(e.g. `--source-corpus ravdess=/data/ravdess`) to train one, "
                "or ship a saved model in assets/default_model/."
            )
            self._log(self._no_model_reason)
            return
        self._say(f"training the first model (frozen encoder, {self._source.language} source only)")
        config = AdaptConfig(
            policy=Policy.NONE.value,
            epochs=self.config.first_epochs,
            encoder=self.config.encoder,
            seed=self.config.seed,
            frontend=str(self.frontend),
        )
        self._train_and_register(config, language=None, progress=None)

    def _load_or_fall_back(self, active_id: str) -> bool:
        """Load the active model; if its files are damaged, activate the newest version that loads.

        A crash or a full disk can leave a truncated ``model.safetensors``; start-up must still serve.
        """
        versions = list(reversed(self.store.model_versions()))
        candidates = [v for v in versions if v.id == active_id] + [v for v in versions if v.id != active_id]
        for version in candidates:
            try:
                self._model(version.id)
            except Exception as error:  # safetensors, json and OS errors all mean "cannot serve this"
                self._log(f"model {version.id} cannot be loaded ({type(error).__name__}: {error}); skipped")
                continue
            if version.id != active_id:
                self.store.activate(version.id)
                self._log(f"model {active_id} is damaged: fell back to {version.id}, the newest that loads")
            return True
        return False

    # -- status -----------------------------------------------------------------------------------

    def status(self) -> str:
        """One markdown line: start-up progress or the active model, the pool and any running round."""
        if self._error:
            return f"**Start-up failed:** {self._error}. Fix it and restart `python app.py`."
        if not self._ready.is_set():
            return (
                f"**Starting:** {self._stage.describe()} "
                "(the first start embeds the corpora; later starts use the cache)"
            )
        parts = []
        active = self.store.active_version()
        if active is None:
            parts.append(self._no_model_reason or "No model yet.")
        else:
            parts.append(
                f"Model **{active.id}** active "
                f"({self.config.encoder}, {active.config.get('mode', 'frozen')} head)"
            )
        if self._source is not None:
            parts.append(f"source {self._source.language}: {len(self._source.train)} training clips")
        for language, (total, labeled) in self._pool_sizes().items():
            parts.append(f"pool {language}: {total} clips, {labeled} labeled")
        if self._round_lock.locked():
            parts.append(f"**adaptation round running:** {self._round_status}")
        return " · ".join(parts)

    def _pool_sizes(self) -> dict[str, tuple[int, int]]:
        sizes: dict[str, tuple[int, int]] = {}
        for language in self.languages():
            counts = self.store.label_counts(language)
            sizes[language] = (len(self.store.clips(language)), sum(counts.values()))
        return sizes

    def languages(self) -> list[str]:
        """Languages of the target pool, sorted."""
        return sorted({clip.language for clip in self.store.clips()})

    def choices_signature(self) -> str:
        """A fingerprint of everything the UI's pickers list: pool languages, model versions, the active one.

        Tabs poll it and reload their pickers only when it changes, so a language or version created in
        one tab (or by the API) appears in every open tab.
        """
        versions = self.store.model_versions()
        active = next((v.id for v in versions if v.active), "")
        return "|".join([",".join(self.languages()), ",".join(v.id for v in versions), active])

    def default_language(self) -> str | None:
        """The language the tabs start on: the first target corpus's, else the pool's first."""
        languages = self.languages()
        return languages[0] if languages else None

    def default_epochs(self) -> int:
        """E of the paper (AdaptConfig default)."""
        return AdaptConfig().epochs

    def default_window(self) -> int:
        """W of the paper (AdaptConfig default)."""
        return AdaptConfig().window

    def example_files(self) -> list[str]:
        """The shipped example clips (synthetic speech, CC0), sorted."""
        folder = self.config.examples_dir
        return (
            sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if folder.is_dir()
            else []
        )

    @staticmethod
    def example_language(path: str) -> str:
        """``de_angry_tuer.flac`` -> ``de``: example files start with their language code."""
        return Path(path).stem.partition("_")[0]

    @staticmethod
    def example_label(path: str) -> str:
        """``en_angry_kids.flac`` -> ``en · angry kids``."""
        language, _, rest = Path(path).stem.partition("_")
        return f"{language} · {rest.replace('_', ' ')}" if rest else language

    def allowed_paths(self) -> list[str]:
        """Folders the web server may serve files from: the examples and the short-lived public copies.

        Never the data folder (database, model weights, every clip) nor the corpora: a page gets a
        copy of the one file it shows, from :meth:`public_file`.
        """
        return [str(Path(r).resolve()) for r in (self.config.examples_dir, self.public_dir)]

    def blocked_paths(self) -> list[str]:
        """Folders Gradio must never serve nor copy to its cache, whatever else allows them."""
        roots = [self.config.data_dir, self.cache.root]
        roots += [root for _, root in (*self.config.source_corpora, *self.config.target_corpora)]
        # a folder holding the public copies or Gradio's uploads (e.g. --data-dir /tmp) cannot be
        # blocked without blocking every upload; it stays unserved, as no allowed path reaches it
        gradio_uploads = os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio"
        needed = [self.public_dir.resolve(), Path(gradio_uploads).resolve()]
        resolved = [Path(r).resolve() for r in roots]
        return [str(r) for r in resolved if not any(n.is_relative_to(r) for n in needed)]

    def public_file(self, path: str | os.PathLike, name: str | None = None) -> str:
        """A copy of ``path`` a page may fetch, under a random folder, deleted after a while."""
        self._prune_public()
        folder = Path(tempfile.mkdtemp(dir=self.public_dir))
        target = folder / Path(name or Path(path).name).name
        shutil.copyfile(path, target)
        return str(target)

    def _prune_public(self) -> None:
        cutoff = time.time() - self.config.public_file_seconds
        for folder in self.public_dir.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

    # -- login ------------------------------------------------------------------------------------

    @property
    def login_required(self) -> bool:
        """Whether labeling, adaptation, import and export need a login (``SERDEMO_AUTH`` is set)."""
        return self.sessions is not None

    def login(self, session: str | None, user: str, password: str) -> str:
        """Log ``session`` (a browser tab or an API client) in; returns a message."""
        if self.sessions is None:
            return "This app has no accounts (SERDEMO_AUTH is not set): everything is open."
        try:
            name = self.sessions.login(session, user, password)
        except AuthError as error:
            raise ServiceError(str(error)) from None
        self._log(f"login: {name}")
        return f"Logged in as **{name}**: your labels are saved under this name."

    def logout(self, session: str | None) -> str:
        """End ``session``'s login."""
        if self.sessions is not None:
            self.sessions.logout(session)
        return "Logged out."

    def require_login(self, session: str | None, action: str) -> str | None:
        """The logged-in user of ``session``; None when the app has no accounts.

        Raises:
            ServiceError: accounts are set and ``session`` is not logged in.

        """
        if self.sessions is None:
            return None
        user = self.sessions.user(session)
        if user is None:
            raise ServiceError(
                f"log in to {action} (the Log in box at the top of the page, or the /login API)"
            )
        return user

    # -- models -----------------------------------------------------------------------------------

    def _require_model(self) -> tuple[str, AdaptResult]:
        if self._error:
            raise ServiceError(f"the app failed to start ({self._error}); restart it")
        if not self._ready.is_set():
            raise BusyError(f"still starting ({self._stage.describe()}); try again in a moment")
        active = self.store.active_version()
        if active is None:
            raise ServiceError(self._no_model_reason or "no model yet")
        return active.id, self._model(active.id)

    def _model(self, version_id: str) -> AdaptResult:
        with self._lock:
            if version_id not in self._models:
                version = next((v for v in self.store.model_versions() if v.id == version_id), None)
                if version is None or not version.weights_path:
                    raise ServiceError(f"model version {version_id!r} has no saved weights")
                try:
                    self._models[version_id] = load_model(version.weights_path)
                except Exception as error:  # truncated or missing files: a message, not a traceback
                    raise ServiceError(
                        f"model version {version_id} cannot be loaded ({type(error).__name__}); "
                        "activate another version"
                    ) from error
            return self._models[version_id]

    def _probabilities(self, version_id: str, clips: Sequence[Clip]) -> np.ndarray:
        """Probabilities (N, C) of pool clips under a version, memoised (the queue asks on every click)."""
        result = self._model(version_id)
        with self._lock:
            missing = [c for c in clips if (version_id, c.id) not in self._probs]
        if missing:
            self._embed_pool(missing)
            probs = predict_proba(result, self._clipset(missing))
            with self._lock:
                for clip, row in zip(missing, probs, strict=True):
                    self._probs[(version_id, clip.id)] = row
        with self._lock:
            return np.stack([self._probs[(version_id, c.id)] for c in clips]) if clips else np.zeros((0, 5))

    def _clipset(self, clips: Sequence[Clip], labels: Sequence[int] | None = None) -> ClipSet:
        with self._lock:
            features = np.stack([self._features[c.id] for c in clips])
        return ClipSet(
            ids=[str(c.id) for c in clips],
            labels=labels if labels is not None else [-1] * len(clips),
            languages=[c.language for c in clips],
            speakers=[c.speaker or f"{c.language}/unknown" for c in clips],
            features=features,
        )

    # -- predict ----------------------------------------------------------------------------------

    def predict(self, path: str | os.PathLike, language: str | None = None) -> Prediction:
        """Emotion probabilities of an audio file; clips longer than a few seconds also get a timeline.

        Args:
            path: any audio file (WAV, FLAC, OGG, MP3...), any sample rate.
            language: ISO 639-1 code of the speech, so features are normalised like that language's
                training clips; ``None`` uses the statistics of all training clips.

        Raises:
            AudioError: the file is unusable (message says why).
            ServiceError: no model yet, or still starting.
        """
        version_id, result = self._require_model()
        wave, info = load_audio_checked(path, max_seconds=self.config.max_clip_seconds)
        windows: list[tuple[float, float, np.ndarray]] = []
        if info.duration_s > self.config.segment_above_seconds:
            windows = segment(wave, self.config.segment_window_seconds, self.config.segment_hop_seconds)
        detector = self.frontend.detector if self.frontend.detector != "none" else "energy"
        with self._lock:
            self._interactive_waiting += 1  # bulk embedding yields the encoder between batches
        try:
            self._encoder_lock.acquire()
        finally:
            with self._lock:
                self._interactive_waiting -= 1
        try:
            activity = speech_activity(wave, detector)
            # windows without speech are marked, not classified: a model always answers something
            spoken = [activity.speech_seconds(start, end) >= MIN_SPEECH_S for start, end, _ in windows]
            features = embed_waveforms(
                self._encoder,
                [wave, *(w for (_, _, w), talk in zip(windows, spoken, strict=True) if talk)],
                self.cache,
            )
        finally:
            self._encoder_lock.release()
        language = (language or "").strip().lower() or None
        # The whole clip and its windows go through the model separately: the feature normaliser may
        # standardise a batch of an unseen language by its own statistics, and the whole clip's answer
        # must not depend on how it was cut.
        probs = np.concatenate(
            [
                predict_proba(result, _unlabeled(part, language))
                for part in (features[:1], features[1:])
                if len(part)
            ]
        )
        classes = result.classes
        rows = iter(probs[1:])
        segments = []
        for (start, end, _), talk in zip(windows, spoken, strict=True):
            if talk:
                row = next(rows)
                segments.append(Segment(start, end, _named(row, classes), classes[int(row.argmax())]))
            else:
                segments.append(Segment(start, end, {}, NO_SPEECH_LABEL, speech=False))
        warnings = recording_warnings(wave, info, activity)
        # a version saved before the speech front end existed has no "frontend" and was trained on whole clips
        trained_with = next(
            (v.config.get("frontend", "none") for v in self.store.model_versions() if v.id == version_id),
            None,
        )
        if trained_with is not None and trained_with != str(self.frontend):
            warnings.append(
                f"model version {version_id} was trained with the speech front end {trained_with!r}, "
                f"this app embeds with {str(self.frontend)!r}: run an adaptation round to retrain it"
            )
        if info.duration_s < MIN_CLIP_SECONDS:
            warnings.append(
                f"the clip is only {info.duration_s:.2f} s long: below {MIN_CLIP_SECONDS} s there is too "
                "little speech to tell an emotion, so the answer means little; record a whole word or phrase"
            )
        top = int(probs[0].argmax())
        return Prediction(
            probs=_named(probs[0], classes),
            top=classes[top],
            confidence=float(probs[0, top]),
            model_version=version_id,
            duration=info.duration_s,
            language=language,
            segments=segments,
            warnings=warnings,
        )

    # -- target pool ------------------------------------------------------------------------------

    def add_to_pool(
        self, path: str | os.PathLike, language: str, source: str = ClipSource.UPLOAD.value
    ) -> str:
        """Add one clip to the unlabeled target pool of ``language``; returns a message for the user."""
        language = _language(language)
        name = Path(path).name
        # refuse unusable audio with a clear message, and say what is odd about usable audio
        _, info = load_audio_checked(
            path, max_seconds=self.config.max_clip_seconds, min_seconds=self.config.min_clip_seconds
        )
        _check_pool_clip(path, self.config.max_clip_seconds)  # too short to carry an emotion
        before = self.store.clip_by_sha256(_sha256(path))
        clip = self.store.add_clip(path, language=language, source=source, original_name=name)
        self._embed_pool([clip])
        if before is not None:
            return f"Clip {clip.id} is already in the `{clip.language}` pool (same audio); nothing added."
        return f"Added clip {clip.id} to the `{language}` target pool ({clip.duration:.1f} s)." + "".join(
            f"\n\n⚠️ {warning}" for warning in _audio_warnings(info)
        )

    def add_files(
        self, paths: Sequence[str | os.PathLike], language: str, progress: Progress | None = None
    ) -> str:
        """Bulk-add audio files and/or zip archives of them to the ``language`` pool; returns a summary."""
        language = _language(language)
        if not paths:
            raise ServiceError("no files given: choose audio files or a .zip of them")
        added, duplicates, errors, flagged = [], 0, [], []
        work = self.config.data_dir / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        unpacked = Path(tempfile.mkdtemp(prefix="bulk-", dir=work))  # cleaned at start-up if killed
        try:
            files, skipped = _expand_archives([Path(p) for p in paths], unpacked, self.config.max_bulk_files)
            errors += skipped
            done, total = 0, max(1, len(files))
            for path in files:
                if progress is not None:
                    progress(done / total, f"adding {path.name}")
                done += 1
                try:
                    _, info = load_audio_checked(
                        path,
                        max_seconds=self.config.max_clip_seconds,
                        min_seconds=self.config.min_clip_seconds,
                    )
                    _check_pool_clip(path, self.config.max_clip_seconds)
                    known = self.store.clip_by_sha256(_sha256(path)) is not None
                    clip = self.store.add_clip(
                        path, language=language, source=ClipSource.BULK.value, original_name=path.name
                    )
                except (AudioError, ValueError) as error:
                    errors.append(_scrub(str(error)))
                    continue
                duplicates += known
                if not known:
                    added.append(clip)
                    flagged += [f"{path.name}: {w.split(':')[0]}" for w in _audio_warnings(info)]
            if progress is not None:
                progress(1.0, f"embedding {len(added)} new clips")
            self._embed_pool(added)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
        lines = [f"Added {len(added)} clips to the `{language}` pool; {duplicates} were already there."]
        if flagged:
            lines.append(
                f"⚠️ {len(flagged)} added clips sound wrong (check them before labeling):\n"
                + "\n".join(f"- {f}" for f in flagged[:20])
            )
        if errors:
            lines.append(f"Skipped {len(errors)} files:\n" + "\n".join(f"- {e}" for e in errors[:20]))
        return "\n\n".join(lines)

    # -- labeling ---------------------------------------------------------------------------------

    def label_view(self, state: LabelState) -> LabelView:
        """The clip to show: the current one while it is still unlabeled, else the most uncertain."""
        language = state.language or self.default_language() or ""
        state = dataclasses.replace(state, language=language)
        if state.rule not in RANKING_RULES:
            raise ServiceError(f"unknown ranking rule {state.rule!r}: use one of {', '.join(RANKING_RULES)}")
        unlabeled = self.store.clips(language, labeled=False) if language else []
        item = None
        if unlabeled:
            version_id, _ = self._require_model()
            probs = self._probabilities(version_id, unlabeled)
            ranking = self._rank(version_id, state.rule, unlabeled, probs, language)
            by_id = {c.id: i for i, c in enumerate(unlabeled)}
            if state.current in by_id:
                pick = by_id[state.current]
            else:
                skipped = set(state.skipped)
                fresh = [i for i in ranking.order if unlabeled[i].id not in skipped]
                # once everything was skipped, skipped clips come back in skip order
                pick = fresh[0] if fresh else by_id.get(state.skipped[0], ranking.order[0])
                if not fresh:
                    state = dataclasses.replace(state, skipped=())
            item = self._queue_item(unlabeled[pick], probs[pick], float(ranking.scores[pick]), version_id)
            state = dataclasses.replace(state, current=item.clip_id)
        else:
            state = dataclasses.replace(state, current=None)
        counts = self.store.label_counts(language) if language else dict.fromkeys(EMOTIONS, 0)
        return LabelView(state=state, item=item, counts=counts, unlabeled=len(unlabeled))

    def _rank(
        self, version_id: str, rule: str, unlabeled: list[Clip], probs: np.ndarray, language: str
    ) -> Any:
        """The labeling order of ``unlabeled`` under ``rule`` (see serdemo.active)."""
        if rule != COVERAGE_RULE:
            return rank_for_labeling(probs, UncertaintyRule(rule))
        model = self._model(version_id)
        labeled = self.store.clips(language, labeled=True)
        self._embed_pool(labeled)
        points = embed(model, self._clipset(unlabeled))
        done = embed(model, self._clipset(labeled)) if labeled else np.zeros((0, points.shape[1]))
        return rank_by_coverage(probs, points, done, seed=self.config.seed)

    def skip(self, state: LabelState) -> LabelView:
        """Put the current clip at the back of this session's queue and show the next."""
        if state.current is None:
            return self.label_view(state)
        skipped = tuple(c for c in state.skipped if c != state.current) + (state.current,)
        return self.label_view(dataclasses.replace(state, current=None, skipped=skipped))

    def label_current(self, state: LabelState, emotion: str, annotator: str) -> LabelView:
        """Save ``emotion`` for the clip on screen (immediately, in the store) and show the next."""
        if state.current is None:
            raise ServiceError("no clip on screen to label: pick a language with unlabeled clips")
        self.label(state.current, emotion, annotator)
        skipped = tuple(c for c in state.skipped if c != state.current)
        return self.label_view(dataclasses.replace(state, current=None, skipped=skipped))

    def undo(self, state: LabelState, annotator: str) -> LabelView:
        """Retract ``annotator``'s latest label and show that clip again."""
        undone = self.store.undo_last_label(annotator)
        if undone is None:
            raise ServiceError(f"nothing to undo: {annotator} has no labels in force")
        clip = self.store.clip(undone.clip_id)
        view = self.label_view(dataclasses.replace(state, language=clip.language, current=clip.id))
        name = "" if state.hide_names else f" ({clip.original_name or clip.path.name})"
        message = (
            f"Undid {annotator}'s label **{undone.emotion}** on clip {clip.id}{name}; it is back on screen."
        )
        return dataclasses.replace(view, message=message)

    def label(self, clip_id: int, emotion: str, annotator: str) -> dict[str, Any]:
        """Save a human label for any pool clip; returns the clip's language and labels per emotion."""
        emotion_index(emotion)  # UnknownEmotionError (a ValueError) lists the five emotions
        version = self.store.active_version()
        label = self.store.add_label(
            int(clip_id), emotion, annotator=annotator, model_version=version.id if version else None
        )
        clip = self.store.clip(label.clip_id)
        return {
            "clip_id": clip.id,
            "emotion": emotion,
            "language": clip.language,
            "counts": self.store.label_counts(clip.language),
        }

    def _queue_item(self, clip: Clip, probs: np.ndarray, score: float, version_id: str) -> QueueItem:
        classes = self._model(version_id).classes
        top = int(probs.argmax())
        spec, times, freqs = spectrogram(load_audio(clip.path))
        return QueueItem(
            clip_id=clip.id,
            path=self.public_file(clip.path),
            name=clip.original_name or clip.path.name,
            duration=clip.duration,
            suggestion=classes[top],
            confidence=float(probs[top]),
            score=score,
            spectrogram=spec,
            spectrogram_times=times,
            spectrogram_freqs=freqs,
        )

    # -- adaptation -------------------------------------------------------------------------------

    def adapt(self, request: AdaptRequest, progress: Progress | None = None) -> AdaptReport:
        """Run one round of Algorithm 1 on the source set and the ``request.language`` pool; activate it.

        Only one round runs at a time; a second caller gets a ServiceError saying a round is running.

        Raises:
            ServiceError: no source set, still starting, or a round already running.
            ConfigError: settings out of range (a ValueError naming the field).
        """
        self._require_model()
        if self._source is None:
            raise ServiceError(
                "adaptation needs a labeled source set: restart with --source-corpus NAME=PATH"
            )
        language = _language(request.language)
        # normalisation, selection and the rest: AdaptConfig's defaults, the same as the experiment CLI's
        # (docs/results.md, "Speakers who show few emotions"); recordings without a speaker id share a
        # "<language>/unknown" group, which the default normalisation does not need
        config = AdaptConfig(
            policy=request.policy,
            tau=float(request.tau),
            epochs=int(request.epochs),
            window=int(request.window),
            rebalance=bool(request.rebalance),
            pseudo_balance=request.pseudo_balance,
            encoder=self.config.encoder,
            seed=self.config.seed,
            frontend=str(self.frontend),
        )
        if not self._round_lock.acquire(blocking=False):
            raise BusyError(f"an adaptation round is running ({self._round_status}); wait for it to finish")
        try:
            self._round_status = f"{language}, {config.policy}, starting"
            return self._train_and_register(config, language, progress)
        finally:
            self._round_status = ""
            self._round_lock.release()

    def _train_and_register(
        self, config: AdaptConfig, language: str | None, progress: Progress | None
    ) -> AdaptReport:
        source = self._source
        assert source is not None  # callers check
        # 1) the target clips: human labels are trained on, the rest is the unlabeled pool U_t
        labeled_clips, labels = [], []
        unlabeled_clips = []
        # a source-only model (no language) is still scored on the pool, as the baseline of later rounds
        pool_language = language or self.default_language()
        if pool_language:
            for clip in self.store.clips(pool_language):
                current = self.store.current_label(clip.id)
                if current is not None and current.emotion in config.classes:
                    labeled_clips.append(clip)
                    labels.append(config.classes.index(current.emotion))
                elif current is None:
                    unlabeled_clips.append(clip)
            self._embed_pool(labeled_clips + unlabeled_clips)
        # 2) how target accuracy is judged: corpus labels of pool clips nobody labeled (never trained on)
        #    where the pool came from a corpus, else cross-validation over the human labels (step 4)
        gold_clips, gold_labels = self._corpus_gold(unlabeled_clips, config)
        if not language:  # source only: the pool is scored, never trained on
            labeled_clips, labels, unlabeled_clips = [], [], []
        empty = self._empty_clipset(source.train)
        target_labeled = self._clipset(labeled_clips, labels) if labeled_clips else empty
        target_unlabeled = self._clipset(unlabeled_clips) if unlabeled_clips else empty
        if config.policy != Policy.NONE.value and not unlabeled_clips:
            raise ServiceError(
                f"the `{language}` pool has no unlabeled clips for pseudo-labels: "
                "add clips or choose policy 'none'"
            )
        folds = min(CV_FOLDS, len(labeled_clips)) if not gold_clips and len(labeled_clips) >= CV_FOLDS else 0
        stages = 1 + folds  # the round itself, then one training per cross-validation fold

        # 3) Algorithm 1, reporting every epoch to the caller and to the status line of other users
        def on_epoch(stage: int, what: str) -> Callable[[ProgressEvent], None]:
            def report(event: ProgressEvent) -> None:
                text = what + _epoch_text(event)
                self._round_status = text
                if progress is not None:
                    progress((stage + event.epoch / event.total_epochs) / stages, text)

            return report

        def train(labeled: ClipSet, stage: int, what: str = "") -> AdaptResult:
            return run_adaptation(
                source.train,
                labeled,
                target_unlabeled,
                {"source": source.validation},
                config,
                progress=on_epoch(stage, what),
            )

        t0 = time.perf_counter()
        result = train(target_labeled, 0)
        seconds = time.perf_counter() - t0
        # 4) held-out scores; the target clips are judged against the previous version on the same clips
        source_metrics = evaluate(source.test.labels, predict_proba(result, source.test), config.classes)
        parent = self.store.active_version()
        if gold_clips:
            judged_clips, judged_labels = gold_clips, gold_labels
            target_probs = predict_proba(result, self._clipset(gold_clips))
            note = (
                f"Target UA on {len(gold_clips)} pool clips nobody labeled, against their corpus labels, "
                "which training never sees (they are in the unlabeled pool, as in transductive evaluation)."
            )
        elif folds:
            # every labeled clip is scored by a model trained without it: K rounds of the same settings
            started = time.perf_counter()
            assignment = fold_of_each(np.asarray(labels), folds, self.config.seed)
            target_probs = np.zeros((len(labeled_clips), len(config.classes)), np.float32)
            for fold in range(folds):
                inside = np.flatnonzero(assignment != fold)
                held = np.flatnonzero(assignment == fold)
                fold_model = train(
                    target_labeled.subset(inside), 1 + fold, f"cross-validation fold {fold + 1}/{folds}: "
                )
                target_probs[held] = predict_proba(fold_model, target_labeled.subset(held))
            judged_clips, judged_labels = labeled_clips, labels
            note = (
                f"Target UA by {folds}-fold cross-validation over your {len(labeled_clips)} labeled clips: "
                "each is scored by a model trained with the same settings without it; "
                "the new version itself trained on all of them "
                f"(the {folds} extra trainings took {time.perf_counter() - started:.0f} s)."
            )
        else:
            judged_clips, judged_labels, target_probs = [], [], None
            note = (
                f"No target UA: label at least {CV_FOLDS} clips (they are then cross-validated), "
                "or seed the pool with --target-corpus."
            )
        target_metrics, comparison, previous_note = None, None, ""
        if judged_clips:
            target_metrics = evaluate(judged_labels, target_probs, config.classes)
            target_metrics["estimate"] = ua_with_interval(
                np.asarray(judged_labels), target_probs.argmax(1), seed=self.config.seed
            ).to_dict()
            comparison, previous_note = self._compare_with_parent(
                parent, judged_clips, judged_labels, target_probs.argmax(1)
            )
        pseudo = (
            result.rounds[-1]["accepted_per_class"] if result.rounds else dict.fromkeys(config.classes, 0)
        )
        # 5) save, record and activate the new version
        folder = (
            self.config.data_dir
            / "models"
            / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"
        )
        save_model(result, folder)
        metrics = {
            "language": language or (pool_language and f"({pool_language}, not trained on)"),
            "source_ua": source_metrics["ua"],
            "target_ua": target_metrics["ua"] if target_metrics else None,
            "target_interval": (
                [target_metrics["estimate"]["low"], target_metrics["estimate"]["high"]]
                if target_metrics
                else None
            ),
            "target_note": note,
            "previous": {"version": parent.id, **comparison.to_dict()} if comparison else None,
            "trained_clip_ids": [c.id for c in labeled_clips],
            "labeled": len(labeled_clips),
            "unlabeled": len(unlabeled_clips),
            "pseudo_per_class": pseudo,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "source": {"test": source_metrics},
            "target": {"heldout": target_metrics},
        }
        # the version row and its pseudo-labels in one transaction: a crash leaves both or neither
        version = self.store.add_model_version(
            config.to_dict(),
            metrics,
            weights_path=folder,
            parent=parent.id if parent else None,
            machine_labels=self._pseudo_labels(config, result, unlabeled_clips),
        )
        with self._lock:
            self._models[version.id] = result
        self._log(
            f"model {version.id}: source UA {source_metrics['ua']:.3f}, target UA {metrics['target_ua']}"
        )
        return AdaptReport(
            version_id=version.id,
            parent=parent.id if parent else None,
            language=language or pool_language or "-",
            policy=config.policy,
            labeled=len(labeled_clips),
            unlabeled=len(unlabeled_clips),
            source_metrics=source_metrics,
            target_metrics=target_metrics,
            target_note=note,
            comparison=comparison,
            previous_note=previous_note,
            pseudo_per_class=pseudo,
            epochs_run=result.epochs_run,
            best_epoch=result.best_epoch,
            seconds=seconds,
        )

    def _pseudo_labels(
        self, config: AdaptConfig, result: AdaptResult, clips: list[Clip]
    ) -> list[tuple[int, str, float]]:
        """What the new model would pseudo-label in the pool, stored as machine labels of its version.

        Kept apart from human labels in the store (they never count as a clip's label), so exports show
        which labels a person gave and which the model guessed, with its confidence.
        """
        if config.policy == Policy.NONE.value or not clips:
            return []
        probs = predict_proba(result, self._clipset(clips))
        targets, weights = make_policy(config).select(torch.from_numpy(probs))
        guessed, accepted = targets.numpy().argmax(1), weights.numpy() > 0
        return [
            (clip.id, config.classes[guess], float(probs[row, guess]))
            for row, (clip, guess) in enumerate(zip(clips, guessed, strict=True))
            if accepted[row]
        ]

    def _corpus_gold(self, unlabeled: list[Clip], config: AdaptConfig) -> tuple[list[Clip], list[int]]:
        """Pool clips nobody labeled whose corpus label is known (never trained on), with that label."""
        with self._lock:
            known = [
                (c, self._corpus_labels[c.id])
                for c in unlabeled
                if self._corpus_labels.get(c.id) in config.classes
            ]
        return [c for c, _ in known], [config.classes.index(e) for _, e in known]

    def _compare_with_parent(
        self, parent: Any, clips: list[Clip], labels: list[int], preds: np.ndarray
    ) -> tuple[Comparison | None, str]:
        """The previous version on the same clips, leaving out any it was trained on."""
        if parent is None:
            return None, "No previous version to compare with."
        trained = parent.metrics.get("trained_clip_ids")
        if trained is None and parent.metrics.get("labeled"):
            return None, f"Previous version {parent.id} does not record which clips it trained on."
        seen = set(trained or [])
        keep = [i for i, c in enumerate(clips) if c.id not in seen]
        if not keep:
            return None, f"Previous version {parent.id} trained on all of these clips: no fair comparison."
        parent_probs = predict_proba(self._model(parent.id), self._clipset([clips[i] for i in keep]))
        comparison = compare(
            np.asarray(labels)[keep], preds[keep], parent_probs.argmax(1), seed=self.config.seed
        )
        left_out = len(clips) - len(keep)
        note = f" ({left_out} clips it trained on left out)" if left_out else ""
        return comparison, f"Previous version {parent.id} on the same {len(keep)} clips{note}."

    @staticmethod
    def _empty_clipset(like: ClipSet) -> ClipSet:
        return ClipSet(
            ids=[],
            labels=[],
            languages=[],
            speakers=[],
            features=np.zeros((0, *like.features.shape[1:]), np.float32),
        )

    # -- versions ---------------------------------------------------------------------------------

    def versions(self) -> pd.DataFrame:
        """Model versions, newest first, with their held-out scores."""
        rows = []
        for v in reversed(self.store.model_versions()):
            m = v.metrics
            rows.append(
                {
                    "version": v.id,
                    "active": "✓" if v.active else "",
                    "created (UTC)": v.created_at[:19].replace("T", " "),
                    "parent": v.parent or "",
                    "policy": v.config.get("policy", ""),
                    "language": m.get("language") or "",
                    "labeled": m.get("labeled", ""),
                    "source UA": _pct(m.get("source_ua")),
                    "target UA": _pct(m.get("target_ua"))
                    + (" [{:.0%}-{:.0%}]".format(*m["target_interval"]) if m.get("target_interval") else ""),
                }
            )
        columns = [
            "version",
            "active",
            "created (UTC)",
            "parent",
            "policy",
            "language",
            "labeled",
            "source UA",
            "target UA",
        ]
        return pd.DataFrame(rows, columns=columns)

    def version_ids(self) -> list[str]:
        """Ids of every model version, newest first."""
        return [v.id for v in reversed(self.store.model_versions())]

    def activate(self, version_id: str) -> str:
        """Serve ``version_id`` from now on (roll back or forward); returns a message."""
        if not version_id:
            raise ServiceError("choose a version to activate")
        if self._round_lock.locked():
            raise BusyError("an adaptation round is running: activate a version after it finished")
        if version_id not in self.version_ids():
            raise ServiceError(f"no model version {version_id!r}: choose one listed in the versions table")
        self._model(version_id)  # fails before switching if the weights are gone
        version = self.store.activate(version_id)
        return f"Model {version.id} is active now."

    # -- explore ----------------------------------------------------------------------------------

    def baseline_version_id(self) -> str | None:
        """The first source-only model (trained on no target label), else the oldest version."""
        versions = self.store.model_versions()
        source_only = [
            v
            for v in versions
            if v.config.get("policy") == Policy.NONE.value and not v.metrics.get("labeled")
        ]
        candidates = source_only or versions
        return candidates[0].id if candidates else None

    def project(
        self,
        language: str | None,
        method: str = "pca",
        dims: int = 2,
        color_by: str = "emotion",
        before: str | None = None,
        after: str | None = None,
    ) -> ProjectionView:
        """2-D/3-D maps of the learned representation under two model versions, with silhouettes.

        Args:
            language: the target pool drawn beside held-out source clips.
            method: ``pca`` or ``umap``.
            dims: 2 or 3.
            color_by: one of ``COLOR_CHOICES``.
            before: the baseline version; default: the first source-only model.
            after: the version to compare with it; default: the active one.
        """
        active_id, _ = self._require_model()
        known = self.version_ids()
        for name, vid in (("baseline", before), ("compared", after)):
            if vid and vid not in known:
                raise ServiceError(f"no model version {vid!r} as the {name} version: pick one from the list")
        version_id = after or active_id
        parent_id = before or self.baseline_version_id()
        if parent_id == version_id and not before:
            parent_id = None  # one model so far: compare it with the encoder's own features
        after_model = self._model(version_id)
        language = (language or "").strip().lower() or self.default_language()
        color = ColorBy(color_by) if color_by in COLOR_CHOICES else None
        if color is None:
            raise ServiceError(f"colour by one of {', '.join(COLOR_CHOICES)}")
        # 1) the clips: a sample of held-out source clips and the target pool
        sets, keys, gold = [], [], []
        if self._source is not None:
            held = ClipSet.concat([self._source.validation, self._source.test])
            pick = _spread(len(held), self.config.explore_source_clips, self.config.seed)
            held = held.subset(pick)
            sets.append(held)
            keys += [f"s:{i}" for i in held.ids]
            gold += [after_model.classes[label] for label in held.labels]
        target = self.store.clips(language) if language else []
        target = [target[i] for i in _spread(len(target), self.config.explore_target_clips, self.config.seed)]
        if target:
            self._embed_pool(target)
            sets.append(self._clipset(target))
            keys += [f"t:{c.id}" for c in target]
            gold += [self._known_label(c) for c in target]
        if not sets:
            raise ServiceError("nothing to draw: no source set and no target clips yet")
        clips = ClipSet.concat(sets)
        # 2) before = the baseline version, after = the version compared with it
        figures = []
        for name, model, vid in (
            ("before", self._model(parent_id) if parent_id else None, parent_id),
            ("after", after_model, version_id),
        ):
            if model is None:
                points = clips.features.mean(axis=1)
                heading = "Before: encoder features (no trained head)"
                probs = predict_proba(after_model, clips)
            else:
                points = embed(model, clips)
                heading = f"{name.capitalize()}: model {vid}"
                probs = predict_proba(model, clips)
            preds = [(model or after_model).classes[i] for i in probs.argmax(1)]
            coords = project(points, method, dims, seed=self.config.seed)
            title = projection_title(heading, points, gold, list(clips.languages))
            figure = projection_figure(
                coords,
                emotions=[g or p for g, p in zip(gold, preds, strict=True)],
                languages=list(clips.languages),
                ids=keys,
                labels=gold,
                preds=preds,
                confidence=probs.max(1).tolist(),
                color_by=color,
                title=title,
            )
            figure.update_layout(
                height=480, margin={"l": 10, "r": 10, "t": 60, "b": 10}, title={"font": {"size": 13}}
            )
            figures.append(figure)
        # only clips with audio can be played: the shipped source set holds embeddings, no audio
        source_paths = self._source.paths if self._source is not None else {}
        choices = [
            (f"{k[2:]} ({g or 'unlabeled'}, {lang})", k)
            for k, g, lang in zip(keys, gold, clips.languages, strict=True)
            if k.startswith("t:") or k[2:] in source_paths
        ]
        silent = len(keys) - len(target) if not source_paths else 0
        message = (
            f"{len(keys)} clips ({len(keys) - len(target)} held-out source, "
            f"{len(target)} target `{language}`); "
            "colour = label where known (yours or the corpus's), else the prediction; symbol = language. "
            "Click a point (or pick its id below) to play it."
            + (f" The {silent} source points are embeddings only (no audio shipped)." if silent else "")
        )
        return ProjectionView(message=message, before=figures[0], after=figures[1], clip_choices=choices)

    def _known_label(self, clip: Clip) -> str | None:
        current = self.store.current_label(clip.id)
        if current is not None:
            return current.emotion
        with self._lock:
            return self._corpus_labels.get(clip.id)

    def clip_path(self, key: str | int) -> str:
        """Audio file of an Explore point (``"t:<clip id>"``, ``"s:<utterance id>"``) or of a pool clip id."""
        key = str(key)
        if key.startswith("s:") and self._source is not None and key[2:] in self._source.paths:
            return self.public_file(self._source.paths[key[2:]])
        if key.startswith("s:"):
            raise ServiceError(
                f"no audio for source clip {key[2:]}: the shipped source set holds embeddings only "
                "(start with --source-corpus NAME=PATH to play source clips)"
            )
        clip_id = key[2:] if key.startswith("t:") else key
        if not clip_id.isdigit() or len(clip_id) > 18:
            raise ServiceError(f"unknown clip {key[:40]!r}")
        return self.public_file(self.store.clip(int(clip_id)).path)

    # -- export -----------------------------------------------------------------------------------

    def import_labels(self, path: str | os.PathLike, received_by: str | None = None) -> str:
        """Merge an export of this or another serdemo store; what exists already is skipped.

        A bundle (.zip from :meth:`export` ``"bundle"``) brings its audio; a plain CSV/JSONL brings
        labels of clips this store already has. The message lists everything skipped and why.
        """
        path = Path(path)
        try:
            if path.suffix.lower() == ".zip":
                report = import_bundle(self.store, path, received_by=received_by)
            else:
                report = self.store.import_file(path, received_by=received_by)
        except ValueError as error:
            raise ServiceError(_scrub(str(error))) from None
        self._embed_pool(self.store.clips())  # imported clips join the pool with their features
        lines = [
            f"Imported {report.new_clips} new clips and {report.new_labels} new labels from {path.name}."
        ]
        if report.notes:
            lines.append(
                f"Skipped {len(report.notes)} items:\n"
                + "\n".join(f"- {_scrub(n)}" for n in report.notes[:30])
                + ("\n- ..." if len(report.notes) > 30 else "")
            )
        return "\n\n".join(lines)

    def export_source_set(self, path: Path) -> Path:
        """Write the embedded source set so the app can adapt without the corpus (``assets/``)."""
        if self._source is None:
            raise ServiceError("no source set loaded: start with --source-corpus NAME=PATH")
        self._source.save(path, self._encoder.identity)
        return path

    def export(self, fmt: str = "csv") -> Path:
        """Write every clip and label (with the undo log) to a new short-lived file a page may fetch.

        ``csv`` / ``jsonl``: the label log alone, for label-only exchange or training elsewhere.
        ``bundle``: a .zip with the audio, the label log and a manifest with SHA-256 sums, which
        :meth:`import_labels` accepts on another machine.
        """
        if fmt not in EXPORT_FORMATS:
            raise ServiceError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        self._prune_public()
        folder = Path(tempfile.mkdtemp(dir=self.public_dir))
        stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
        if fmt == "bundle":
            return export_bundle(self.store, folder / f"serdemo-bundle-{stamp}.zip")
        path = folder / f"labels-{stamp}.{fmt}"
        (self.store.export_csv if fmt == "csv" else self.store.export_jsonl)(path)
        return path


# -- helpers ------------------------------------------------------------------------------------


def spectrogram(
    wave: np.ndarray, bands: int = 80, max_frames: int = 400
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute a display spectrogram: (bands, frames) dB over 0-8 kHz, frame times (s), band centres (Hz).

    Linear frequency bins are averaged into ``bands`` rows; long clips are thinned to ``max_frames`` columns.
    """
    # numpy rather than scipy.signal: importing scipy.signal adds seconds to the app's start
    size, hop = 400, 160  # 25 ms Hann windows every 10 ms
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < size:
        wave = np.pad(wave, (0, size - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, size)[::hop]
    power = (np.abs(np.fft.rfft(frames * np.hanning(size).astype(np.float32), axis=1)) ** 2).T
    freqs = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    times = (np.arange(frames.shape[0]) * hop + size / 2) / SAMPLE_RATE
    edges = np.linspace(0, power.shape[0], bands + 1).astype(int)
    rows = np.stack([power[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:], strict=True)])
    step = max(1, int(np.ceil(rows.shape[1] / max_frames)))
    db = 10 * np.log10(rows[:, ::step] + 1e-10)
    centres = np.array([freqs[a:b].mean() for a, b in zip(edges[:-1], edges[1:], strict=True)], np.float32)
    return np.maximum(db, db.max() - 80).astype(np.float32), times[::step].astype(np.float32), centres


def _balanced(utterances: list[Utterance], limit: int | None, seed: int) -> list[Utterance]:
    """Pick at most ``limit`` utterances, emotions (and unlabeled clips) in turn, seeded; all if no limit."""
    if limit is None or len(utterances) <= limit:
        return utterances
    rng = random.Random(seed)
    groups: dict[str | None, list[Utterance]] = {}
    for utterance in utterances:
        groups.setdefault(utterance.emotion, []).append(utterance)
    for members in groups.values():
        rng.shuffle(members)
    chosen: list[Utterance] = []
    while len(chosen) < limit:
        for key in sorted(groups, key=str):
            if groups[key] and len(chosen) < limit:
                chosen.append(groups[key].pop())
    return sorted(chosen, key=lambda u: u.id)


def _unlabeled(features: np.ndarray, language: str | None) -> ClipSet:
    """Clips of one recording (no ids, no labels, one unknown speaker) for the model."""
    n = len(features)
    return ClipSet(
        ids=[str(i) for i in range(n)],
        labels=[-1] * n,
        languages=[language or ""] * n,
        speakers=[""] * n,
        features=features,
    )


def _spread(n: int, limit: int, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` items, seeded and sorted."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _warm_up_umap() -> None:
    """Run UMAP once on random points, so the first Explore UMAP does not wait for numba to compile."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: this thread only
    except (AttributeError, OSError):
        pass
    try:
        project(np.random.default_rng(0).normal(size=(64, 8)), "umap", 2, seed=0)
    except Exception:  # a failed warm-up only means the first real UMAP compiles instead  # noqa: BLE001
        pass


def _check_pool_clip(path: str | os.PathLike, max_seconds: float) -> None:
    """Refuse audio a pool should not hold: unreadable, too long, or too short to carry an emotion."""
    wave = load_audio(path, max_seconds=max_seconds)
    if len(wave) < MIN_CLIP_SECONDS * SAMPLE_RATE:
        raise AudioError(
            f"{Path(path).name}: only {len(wave) / SAMPLE_RATE:.2f} s long; clips in a pool need at least "
            f"{MIN_CLIP_SECONDS} s of speech to be labeled by emotion"
        )


def _language(language: str | None) -> str:
    language = (language or "").strip().lower()
    if not language:
        raise ServiceError("choose the clips' language (an ISO 639-1 code such as de, it or fr)")
    return language


def _named(row: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    return {name: float(p) for name, p in zip(classes, row, strict=True)}


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else ""


def _sha256(path: str | os.PathLike) -> str:
    from serdemo.audio import file_sha256

    return file_sha256(path)


def _epoch_text(event: ProgressEvent) -> str:
    text = f"epoch {event.epoch}/{event.total_epochs}"
    if event.pseudo_counts is not None:
        accepted = sum(event.pseudo_counts.values())
        per_class = ", ".join(f"{k} {v}" for k, v in event.pseudo_counts.items())
        text += f" · {accepted} pseudo-labels ({per_class})"
    if event.val_ua:
        text += " · validation UA " + ", ".join(f"{k} {v:.0%}" for k, v in event.val_ua.items())
    return text


def _audio_warnings(info: AudioInfo) -> list[str]:
    """What is odd about usable audio: the same words on predict and when a clip joins a pool."""
    warnings = []
    if info.silent:
        warnings.append("silent: the clip is (nearly) silent; record closer to the microphone")
    if info.clipped:
        warnings.append("clipped: distorted by too loud input; lower the recording level")
    return warnings


_SERVER_PATH = re.compile(r"(?:[A-Za-z]:)?[/\\](?:[^\s/\\:'\"`]+[/\\])+")


def _scrub(message: str) -> str:
    """A message without server folders: ``/tmp/gradio/ab12/clip.wav: ...`` -> ``clip.wav: ...``."""
    return _SERVER_PATH.sub("", message)


def _expand_archives(paths: list[Path], folder: Path, max_files: int) -> tuple[list[Path], list[str]]:
    """Audio files among ``paths``, .zip archives unpacked (streamed, capped) into ``folder``.

    Returns the files and what was skipped, one ``"name: why"`` each (hidden files, non-audio,
    paths outside the archive, nested zips): nothing is dropped without saying so.
    """

    def audio_only(name: PurePosixPath) -> str | None:
        if name.name.startswith(".") or "__MACOSX" in name.parts:
            return "a hidden or system file"
        if name.suffix.lower() not in AUDIO_SUFFIXES:
            return f"not audio (use {', '.join(AUDIO_SUFFIXES)})"
        return None

    out: list[Path] = []
    skipped: list[str] = []
    for i, path in enumerate(paths):
        if len(out) > max_files:
            break
        if path.suffix.lower() != ".zip":
            out.append(path)
            continue
        try:
            unpacked = unpack(path, folder / str(i), audio_only, ZipLimits(max_files=max_files))
        except ArchiveError as error:
            raise ServiceError(_scrub(str(error))) from None
        out += unpacked.files
        skipped += [f"zip entry {s}" for s in unpacked.skipped]
    if len(out) > max_files:
        raise ServiceError(
            f"{len(out)}+ files in one bulk add, over the {max_files} limit: add them in parts"
        )
    return out, skipped


def recording_warnings(wave: np.ndarray, info: AudioInfo, activity: SpeechActivity) -> list[str]:
    """What is wrong with a recording for emotion recognition: silence, little speech, too quiet, clipped."""
    warnings = []
    span = activity.span()
    speech_s = activity.speech_seconds(0.0, info.duration_s)
    if info.silent:
        warnings.append(
            "the clip is (nearly) silent: the prediction means little; record closer to the microphone"
        )
    elif span is None:
        warnings.append("no speech found in the clip: the prediction means little; speak and record again")
    elif speech_s < 0.4 * info.duration_s:
        warnings.append(
            f"the clip is mostly silence or noise ({speech_s:.1f} s of speech in {info.duration_s:.1f} s): "
            "only the speech is used, but a longer utterance gives a surer answer"
        )
    if not info.silent and span is not None:
        start, end = (round(t * SAMPLE_RATE) for t in span)
        level = 10 * np.log10(float(np.mean(np.square(wave[start:end], dtype=np.float64))) + 1e-20)
        if level < QUIET_DBFS:
            warnings.append(
                f"the speech is very quiet ({level:.0f} dBFS): "
                "record closer to the microphone or raise the input level"
            )
    if info.clipped:
        warnings.append("the clip is clipped (distorted by too loud input): lower the recording level")
    return warnings
