"""What the UI shows: the result types the service returns to the tabs, and the display spectrogram."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go

from serdemo.app.config import RANKING_RULES
from serdemo.app.target_eval import MIN_CLIPS_TO_JUDGE, Comparison, UAEstimate
from serdemo.audio import SAMPLE_RATE
from serdemo.config import AdaptConfig


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
    # (start, end) seconds of the clips a pool would cut this recording into (longer than split_above_seconds)
    utterances: list[tuple[float, float]] = field(default_factory=list)

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
    finetune: bool = False  # train the encoder too (where offered: serdemo.app.tuned.offer)


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
    mode: str = AdaptConfig.mode  # "frozen" (head on cached vectors) or "finetune" (encoder trained too)
    policy_note: str = ""  # why the round ran another policy than asked for (every clip labeled)
    pool_note: str = ""  # a warning about the pool the round trained on (every label one emotion)

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
        encoder = "Encoder **fine-tuned** (this version reads its own encoder's vectors); "
        return (
            f"### New model {self.version_id} is active\n"
            + (encoder if self.mode == "finetune" else "")
            + f"Policy **{self.policy}**, {self.labeled} labeled + {self.unlabeled} unlabeled "
            f"`{self.language}` clips; "
            f"{self.epochs_run} epochs (best {self.best_epoch}) in {self.seconds:.1f} s; "
            f"{accepted} pseudo-labels accepted in the last round.\n\n"
            + (f"{self.pool_note}\n\n" if self.pool_note else "")
            + (f"{self.policy_note}\n\n" if self.policy_note else "")
            + "| model on | UA (95% interval) |\n|---|---|\n"
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
