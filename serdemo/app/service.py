"""The only API the app sees: a thin facade over the rooms of :mod:`serdemo.app`.

Start-up, predict, ingest, labeling, adaptation rounds, explore and export each live in their own
module as functions of the shared :class:`~serdemo.app.workspace.Workspace`; this class holds the
workspace and the login sessions and hands each call to its room.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from serdemo.app import explore, ingest, labeling, predict, rounds, startup, transfer, tuned
from serdemo.app.auth import Accounts, AuthError, Sessions
from serdemo.app.config import AUDIO_SUFFIXES, Progress, ServiceConfig, ServiceError
from serdemo.app.model_thread import in_passing_thread
from serdemo.app.views import AdaptReport, AdaptRequest, LabelState, LabelView, Prediction, ProjectionView
from serdemo.app.workspace import Workspace
from serdemo.config import AdaptConfig
from serdemo.encoders.base import UtteranceEncoder
from serdemo.learn.clips import is_copy
from serdemo.learn.finetune import FinetuneAvailability
from serdemo.speech import FrontEnd
from serdemo.store import ClipSource


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
        # None: no login, anyone may label under any name (a laptop); else see serdemo.app.auth
        self.sessions = Sessions(accounts) if accounts is not None else None
        self.ws = Workspace(config, encoder, log)
        self.store = self.ws.store
        self.cache = self.ws.cache
        self.public_dir = self.ws.public_dir

    @property
    def frontend(self) -> FrontEnd:
        """The speech front end every embedding of this app goes through."""
        return self.ws.frontend

    def start(self, background: bool = True) -> Service:
        """Load the encoder, embed the corpora and make sure a model exists; in a thread by default.

        The page answers while this runs; the status line shows the progress and actions that need
        the model say what is still happening.
        """
        if background:
            threading.Thread(
                target=startup.start_safely, args=(self.ws,), name="serdemo-startup", daemon=True
            ).start()
        else:  # in a thread that ends with start-up, as in the background (model_thread.py says why)
            in_passing_thread(startup.start_up, self.ws, name="serdemo-startup")
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until start-up finished (True) or ``timeout`` seconds passed (False)."""
        return self.ws.ready_event.wait(timeout)

    @property
    def ready(self) -> bool:
        """Whether start-up has finished (successfully or not)."""
        return self.ws.ready_event.is_set()

    def status(self) -> str:
        """One markdown line: start-up progress or the active model, the pool and any running round."""
        if self.ws.error:
            return f"**Start-up failed:** {self.ws.error}. Fix it and restart `python app.py`."
        if not self.ws.ready_event.is_set():
            return (
                f"**Starting:** {self.ws.stage.describe()} "
                "(the first start embeds the corpora; later starts use the cache)"
            )
        parts = []
        active = self.ws.store.active_version()
        if active is None:
            parts.append(self.ws.no_model_reason or "No model yet.")
        else:
            encoder = "fine-tuned" if tuned.is_finetuned(active.config) else "frozen"
            parts.append(f"Model **{active.id}** active ({self.config.encoder}, {encoder} encoder + head)")
        if self.ws.source is not None:
            train = self.ws.source.train
            copies = sum(is_copy(i) for i in train.ids)
            parts.append(
                f"source {self.ws.source.language}: {len(train) - copies} training clips"
                + (f" (+{copies} augmented copies)" if copies else "")
            )
        for language, (total, labeled) in self._pool_sizes().items():
            parts.append(f"pool {language}: {total} clips, {labeled} labeled")
        if self.ws.round_lock.locked():
            parts.append(f"**adaptation round running:** {self.ws.round_status}")
        return " · ".join(parts)

    def _pool_sizes(self) -> dict[str, tuple[int, int]]:
        sizes: dict[str, tuple[int, int]] = {}
        for language in self.languages():
            counts = self.ws.store.label_counts(language)
            sizes[language] = (len(self.ws.store.clips(language)), sum(counts.values()))
        return sizes

    def languages(self) -> list[str]:
        """Languages of the target pool, sorted."""
        return self.ws.languages()

    def choices_signature(self) -> str:
        """A fingerprint of everything the UI's pickers list: pool languages, model versions, the active one.

        Tabs poll it and reload their pickers only when it changes, so a language or version created in
        one tab (or by the API) appears in every open tab.
        """
        versions = self.ws.store.model_versions()
        active = next((v.id for v in versions if v.active), "")
        return "|".join([",".join(self.ws.languages()), ",".join(v.id for v in versions), active])

    def default_language(self) -> str | None:
        """The language the tabs start on: the first target corpus's, else the pool's first."""
        return self.ws.default_language()

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
        return [str(Path(r).resolve()) for r in (self.config.examples_dir, self.ws.public_dir)]

    def blocked_paths(self) -> list[str]:
        """Folders Gradio must never serve nor copy to its cache, whatever else allows them."""
        roots = [self.config.data_dir, self.ws.cache.root]
        roots += [root for _, root in (*self.config.source_corpora, *self.config.target_corpora)]
        # a folder holding the public copies or Gradio's uploads (e.g. --data-dir /tmp) cannot be
        # blocked without blocking every upload; it stays unserved, as no allowed path reaches it
        gradio_uploads = os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio"
        needed = [self.ws.public_dir.resolve(), Path(gradio_uploads).resolve()]
        resolved = [Path(r).resolve() for r in roots]
        return [str(r) for r in resolved if not any(n.is_relative_to(r) for n in needed)]

    def public_file(self, path: str | os.PathLike, name: str | None = None) -> str:
        """A copy of ``path`` a page may fetch, under a random folder, deleted after a while."""
        return self.ws.public_file(path, name)

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
        self.ws.log(f"login: {name}")
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

    # -- the rooms: each call is one function of serdemo.app.<room> on the shared workspace ---------

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
        return predict.predict(self.ws, path, language)

    def add_to_pool(
        self, path: str | os.PathLike, language: str, source: str = ClipSource.UPLOAD.value
    ) -> str:
        """Add one clip to the unlabeled target pool of ``language``; returns a message for the user."""
        return ingest.add_to_pool(self.ws, path, language, source)

    def add_files(
        self, paths: Sequence[str | os.PathLike], language: str, progress: Progress | None = None
    ) -> str:
        """Bulk-add audio files and/or zip archives of them to the ``language`` pool; returns a summary."""
        return ingest.add_files(self.ws, paths, language, progress)

    def label_view(self, state: LabelState) -> LabelView:
        """The clip to show: the current one while it is still unlabeled, else the most uncertain."""
        return labeling.label_view(self.ws, state)

    def skip(self, state: LabelState) -> LabelView:
        """Put the current clip at the back of this session's queue and show the next."""
        return labeling.skip(self.ws, state)

    def label_current(self, state: LabelState, emotion: str, annotator: str) -> LabelView:
        """Save ``emotion`` for the clip on screen (immediately, in the store) and show the next."""
        return labeling.label_current(self.ws, state, emotion, annotator)

    def undo(self, state: LabelState, annotator: str) -> LabelView:
        """Retract ``annotator``'s latest label and show that clip again."""
        return labeling.undo(self.ws, state, annotator)

    def label(self, clip_id: int, emotion: str, annotator: str) -> dict[str, Any]:
        """Save a human label for any pool clip; returns the clip's language and labels per emotion."""
        return labeling.label(self.ws, clip_id, emotion, annotator)

    def adapt(self, request: AdaptRequest, progress: Progress | None = None) -> AdaptReport:
        """Run one round of Algorithm 1 on the source set and the ``request.language`` pool; activate it.

        Only one round runs at a time; a second caller gets a ServiceError saying a round is running.

        Raises:
            ServiceError: no source set, still starting, or a round already running.
            ConfigError: settings out of range (a ValueError naming the field).
        """
        # in a thread that ends with the round, so its OpenMP team does not outlive it (model_thread.py)
        return in_passing_thread(rounds.adapt, self.ws, request, progress)

    def pool_outlook(self, language: str | None) -> str:
        """The ``language`` pool's size, and whether a round would learn from it yet (Markdown)."""
        return rounds.pool_outlook(self.ws, language)

    def cancel_round(self) -> str:
        """Stop the running round after its current mini-batch; nothing is saved, the active version stays."""
        return rounds.cancel(self.ws)

    def finetune_offer(self) -> FinetuneAvailability:
        """Whether the Adapt tab offers fine-tune rounds here (a GPU, or the CPU opt-in), and why not."""
        return tuned.offer(self.ws)

    def versions(self) -> pd.DataFrame:
        """Model versions, newest first, with their held-out scores."""
        return rounds.versions(self.ws)

    def version_ids(self) -> list[str]:
        """Ids of every model version, newest first."""
        return self.ws.version_ids()

    def activate(self, version_id: str) -> str:
        """Serve ``version_id`` from now on (roll back or forward); returns a message."""
        return rounds.activate(self.ws, version_id)

    def baseline_version_id(self) -> str | None:
        """The first source-only model (trained on no target label), else the oldest version."""
        return explore.baseline_version_id(self.ws)

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
        return explore.project(self.ws, language, method, dims, color_by, before, after)

    def clip_path(self, key: str | int) -> str:
        """Audio file of an Explore point (``"t:<clip id>"``, ``"s:<utterance id>"``) or of a pool clip id."""
        return explore.clip_path(self.ws, key)

    def import_labels(self, path: str | os.PathLike, received_by: str | None = None) -> str:
        """Merge an export of this or another serdemo store; what exists already is skipped.

        A bundle (.zip from :meth:`export` ``"bundle"``) brings its audio; a plain CSV/JSONL brings
        labels of clips this store already has. The message lists everything skipped and why.
        """
        return transfer.import_labels(self.ws, path, received_by)

    def export_source_set(self, path: Path) -> Path:
        """Write the embedded source set so the app can adapt without the corpus (``assets/``)."""
        return transfer.export_source_set(self.ws, path)

    def export(self, fmt: str = "csv") -> Path:
        """Write every clip and label (with the undo log) to a new short-lived file a page may fetch.

        ``csv`` / ``jsonl``: the label log alone, for label-only exchange or training elsewhere.
        ``bundle``: a .zip with the audio, the label log and a manifest with SHA-256 sums, which
        :meth:`import_labels` accepts on another machine.
        """
        return transfer.export(self.ws, fmt)
