"""The app's shared state: encoder, store, embedded pool, loaded models; what every room of the app uses.

Everything here is safe to call from Gradio's worker threads: the tables are guarded by ``lock``,
the encoder and the heads' scoring run on ``model_thread`` (one forward pass at a time, on one thread:
serdemo/app/model_thread.py says why), adaptation rounds by ``round_lock``.
A fine-tuned model version reads the vectors of its own encoder (:mod:`serdemo.app.tuned`): ask
:meth:`Workspace.encoder_for` which encoder a version uses and pass it to :meth:`Workspace.clipset`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from serdemo.app import tuned
from serdemo.app.config import EMBED_BATCH, BusyError, ServiceConfig, ServiceError
from serdemo.app.model_thread import ModelThread
from serdemo.app.source_set import SourceSet
from serdemo.audio import AudioError, load_audio
from serdemo.cache import EmbeddingCache, default_cache_dir, embed_files
from serdemo.config import AdaptConfig
from serdemo.encoders.base import UtteranceEncoder
from serdemo.learn import AdaptResult, ClipSet, build_clipset, load_model, predict_proba
from serdemo.learn.augment import with_augmented_copies
from serdemo.speech import FrontEnd
from serdemo.store import AnnotationStore, Clip

T = TypeVar("T")


class Stage:
    """What start-up is doing, for the status line (written by the start-up thread, read by all)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.text, self.done, self.total = "starting", 0, 0

    def set(self, text: str, done: int = 0, total: int = 0) -> None:
        """Say what start-up does now, with its progress."""
        with self._lock:
            self.text, self.done, self.total = text, done, total

    def describe(self) -> str:
        """The stage as one line of text."""
        with self._lock:
            return f"{self.text} {self.done}/{self.total}" if self.total else self.text


class Workspace:
    """The state the app's rooms share (start-up, predict, ingest, labeling, rounds, explore, export).

    Args:
        config: where data lives and which corpora seed the app.
        encoder: an already built encoder; None: built from ``config.encoder`` at start-up.
        log: where progress is reported besides the status line (the console).

    """

    def __init__(
        self, config: ServiceConfig, encoder: UtteranceEncoder | None, log: Callable[[str], None]
    ) -> None:
        self.config = config
        self.store = AnnotationStore(
            config.data_dir,
            max_clip_seconds=config.max_clip_seconds,
            min_clip_seconds=config.min_clip_seconds,
        )
        # Pages get copies of the files they show, from this folder, never the data folder itself
        # (which holds the database and the model weights): see Service.allowed_paths / blocked_paths.
        self.public_dir = Path(tempfile.mkdtemp(prefix="serdemo-public-"))
        atexit.register(shutil.rmtree, self.public_dir, True)
        self.interactive_waiting = 0  # predicts waiting for the encoder: bulk work lets them go first
        self.cache = EmbeddingCache(config.cache_dir or default_cache_dir())
        self.log = log
        self.encoder = encoder
        self.frontend = FrontEnd.parse(config.frontend or AdaptConfig().frontend)
        copies = config.augment_copies
        self.augment_copies = AdaptConfig().augment_copies if copies is None else copies  # learn.augment
        self.model_thread = ModelThread()  # every interactive forward pass, one at a time, on one thread
        self.round_lock = threading.Lock()  # one adaptation round at a time
        self.round_status = ""
        self.cancel_round = threading.Event()  # set: the running round stops after its current mini-batch
        self.judging: str | None = None  # the version a round saved and is now judging (cross-validation)
        self.lock = threading.RLock()  # guards the tables below
        self.source: SourceSet | None = None
        self.features: dict[int, np.ndarray] = {}  # target clip id -> (L, F) encoder features
        # fine-tuned versions: version id -> its encoder; encoder identity -> clip id -> its vectors
        self.tuned_encoders: dict[str, UtteranceEncoder] = {}
        self.tuned_features: dict[str, dict[int, np.ndarray]] = {}
        self.corpus_labels: dict[int, str] = {}  # target clip id -> corpus label, never trained on
        self.models: dict[str, AdaptResult] = {}  # version id -> loaded model
        self.probs: dict[tuple[str, int], np.ndarray] = {}  # (version id, clip id) -> probabilities
        self.stage = Stage()
        self.ready_event = threading.Event()
        self.error: str | None = None
        self.no_model_reason = ""

    def say(self, text: str, done: int = 0, total: int = 0) -> None:
        """Report start-up progress on the status line, and to the log at its start and end."""
        self.stage.set(text, done, total)
        if not total or done in (0, total):
            self.log(f"{text} {done}/{total}" if total else text)

    def embed_progress(self, what: str) -> Callable[[int, int], None]:
        """A progress callback for embedding ``what``."""

        def report(done: int, total: int) -> None:
            self.say(f"embedding {what}", done, total)

        return report

    def embed_pool(self, clips: Sequence[Clip], encoder: UtteranceEncoder | None = None) -> None:
        """Embed the pool clips ``encoder`` (None: the base encoder) has not embedded yet.

        Unusable clips are set aside, not fatal.
        """
        if self.encoder is None:
            raise ServiceError(f"still starting ({self.stage.describe()}); try again in a moment")
        with self.lock:
            table = self._vectors(encoder)
            missing = [c for c in clips if c.id not in table]
        if not missing:
            return
        try:
            features = self.embed_paths([c.path for c in missing], "target pool clips", encoder)
        except AudioError:  # one bad clip must not stop the rest: find it, set it aside, go on
            missing = self.skip_unusable(missing)
            features = self.embed_paths([c.path for c in missing], "target pool clips", encoder)
        with self.lock:
            for clip, row in zip(missing, features, strict=True):
                table[clip.id] = row

    def _vectors(self, encoder: UtteranceEncoder | None) -> dict[int, np.ndarray]:
        """The pool vectors of ``encoder`` (caller holds ``lock``): the base table, or a fine-tuned one."""
        if encoder is None or encoder is self.encoder:
            return self.features
        return self.tuned_features.setdefault(encoder.identity, {})

    def forget(self, encoder: UtteranceEncoder) -> None:
        """Drop the pool vectors of a fine-tuned encoder no version serves (a cross-validation fold's)."""
        with self.lock:
            self.tuned_features.pop(encoder.identity, None)

    def embed_paths(
        self, paths: Sequence[Path], what: str, encoder: UtteranceEncoder | None = None
    ) -> np.ndarray:
        """Features of audio files by ``encoder`` (None: the base encoder) through the cache.

        Yields the encoder to waiting predicts between batches.
        """
        encoder = encoder or self.encoder
        # Batches, one model-thread turn each, stepping aside while a predict waits: a 10,000-clip bulk
        # add in one piece once made another user's predict wait for minutes.
        report = self.embed_progress(what)
        parts = []
        for start in range(0, len(paths), EMBED_BATCH):
            while self.interactive_waiting:
                time.sleep(0.01)
            parts.append(
                self.model_thread.run(embed_files, encoder, paths[start : start + EMBED_BATCH], self.cache)
            )
            report(min(start + EMBED_BATCH, len(paths)), len(paths))
        if not parts:
            return embed_files(encoder, [], self.cache)
        return np.concatenate(parts)

    def run_interactive(self, work: Callable[[], T]) -> T:
        """``work()`` on the model thread, ahead of bulk embedding (which steps aside between batches)."""
        with self.lock:
            self.interactive_waiting += 1
        waiting = True

        def turn() -> T:
            nonlocal waiting
            with self.lock:
                self.interactive_waiting -= 1  # our turn: bulk work may queue again behind us
            waiting = False
            return work()

        try:
            return self.model_thread.run(turn)
        finally:
            if waiting:  # never reached the thread (it was shut down)
                with self.lock:
                    self.interactive_waiting -= 1

    def with_copies(self, clips: ClipSet, paths: Sequence[Path], copies: int) -> ClipSet:
        """``clips`` plus ``copies`` augmented training rows each (learn.augment), embedded a batch a turn."""
        if not copies or not len(clips):
            return clips
        parts = []
        for start in range(0, len(clips), EMBED_BATCH):
            while self.interactive_waiting:  # as in embed_paths: a waiting predict goes first
                time.sleep(0.01)
            rows = np.arange(start, min(start + EMBED_BATCH, len(clips)))
            parts.append(
                self.model_thread.run(
                    with_augmented_copies,
                    clips.subset(rows),
                    [paths[i] for i in rows],
                    self.encoder,
                    self.cache,
                    copies,
                )
            )
        return ClipSet.concat(parts)

    def skip_unusable(self, clips: Sequence[Clip]) -> list[Clip]:
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
                self.log(f"clip {clip.id} set aside: {reason}")
                continue
            good.append(clip)
        return good

    def require_model(self) -> tuple[str, AdaptResult]:
        """The active version and its model; ServiceError / BusyError saying why there is none yet."""
        if self.error:
            raise ServiceError(f"the app failed to start ({self.error}); restart it")
        if not self.ready_event.is_set():
            raise BusyError(f"still starting ({self.stage.describe()}); try again in a moment")
        active = self.store.active_version()
        if active is None:
            raise ServiceError(self.no_model_reason or "no model yet")
        return active.id, self.model(active.id)

    def model(self, version_id: str) -> AdaptResult:
        """The model of ``version_id``, loaded once; ServiceError if its files cannot be loaded.

        A fine-tuned version comes back as its head, to use on the vectors of :meth:`encoder_for`.
        """
        with self.lock:
            if version_id not in self.models:
                version = next((v for v in self.store.model_versions() if v.id == version_id), None)
                if version is None or not version.weights_path:
                    raise ServiceError(f"model version {version_id!r} has no saved weights")
                finetuned = tuned.is_finetuned(version.config)
                try:
                    loaded = load_model(
                        version.weights_path, encoder=tuned.fresh_copy(self) if finetuned else None
                    )
                except ServiceError:
                    raise
                except Exception as error:  # truncated or missing files: a message, not a traceback
                    raise ServiceError(
                        f"model version {version_id} cannot be loaded ({type(error).__name__}); "
                        "activate another version"
                    ) from error
                if finetuned:
                    loaded.model.to(tuned.offer(self).device)
                    loaded, self.tuned_encoders[version_id] = tuned.split(loaded, self.frontend)
                self.models[version_id] = loaded
            return self.models[version_id]

    def encoder_for(self, version_id: str) -> UtteranceEncoder:
        """The encoder whose vectors ``version_id`` reads: its own if fine-tuned, else the app's."""
        self.model(version_id)  # loads a fine-tuned version's encoder with it
        with self.lock:
            encoder = self.tuned_encoders.get(version_id, self.encoder)
        if encoder is None:
            raise ServiceError(f"still starting ({self.stage.describe()}); try again in a moment")
        return encoder

    def probabilities(self, version_id: str, clips: Sequence[Clip]) -> np.ndarray:
        """Probabilities (N, C) of pool clips under a version, memoised (the queue asks on every click)."""
        result = self.model(version_id)
        with self.lock:
            missing = [c for c in clips if (version_id, c.id) not in self.probs]
        if missing:
            encoder = self.encoder_for(version_id)
            self.embed_pool(missing, encoder)
            probs = self.model_thread.run(predict_proba, result, self.clipset(missing, encoder=encoder))
            with self.lock:
                for clip, row in zip(missing, probs, strict=True):
                    self.probs[(version_id, clip.id)] = row
        with self.lock:
            return np.stack([self.probs[(version_id, c.id)] for c in clips]) if clips else np.zeros((0, 5))

    def clipset(
        self,
        clips: Sequence[Clip],
        labels: Sequence[int] | None = None,
        encoder: UtteranceEncoder | None = None,
    ) -> ClipSet:
        """Pool clips as a ClipSet of ``encoder``'s vectors (None: the base encoder's; embed them first)."""
        with self.lock:
            table = self._vectors(encoder)
            features = np.stack([table[c.id] for c in clips])
        return build_clipset(
            ids=[c.id for c in clips],
            languages=[c.language for c in clips],
            speakers=[c.speaker for c in clips],
            labels=labels,
            features=features,
        )

    def public_file(self, path: str | os.PathLike, name: str | None = None) -> str:
        """A copy of ``path`` a page may fetch, under a random folder, deleted after a while."""
        self.prune_public()
        folder = Path(tempfile.mkdtemp(dir=self.public_dir))
        target = folder / Path(name or Path(path).name).name
        shutil.copyfile(path, target)
        return str(target)

    def prune_public(self) -> None:
        """Delete public copies older than ``config.public_file_seconds``."""
        cutoff = time.time() - self.config.public_file_seconds
        for folder in self.public_dir.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

    def languages(self) -> list[str]:
        """Languages of the target pool, sorted."""
        return sorted({clip.language for clip in self.store.clips()})

    def default_language(self) -> str | None:
        """The language the tabs start on: the first target corpus's, else the pool's first."""
        languages = self.languages()
        return languages[0] if languages else None

    def version_ids(self) -> list[str]:
        """Ids of every model version, newest first."""
        return [v.id for v in reversed(self.store.model_versions())]


def language_code(language: str | None) -> str:
    """The pool language a user typed, normalised; ServiceError when it is blank."""
    language = (language or "").strip().lower()
    if not language:
        raise ServiceError("choose the clips' language (an ISO 639-1 code such as de, it or fr)")
    return language
