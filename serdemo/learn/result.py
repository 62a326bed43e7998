"""What a training run returns (:class:`AdaptResult`) and reports each epoch (:class:`ProgressEvent`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from serdemo.config import AdaptConfig
from serdemo.learn.model import EmotionHead, SERModel
from serdemo.learn.normalize import FeatureNormalizer


@dataclass(frozen=True)
class ProgressEvent:
    """What the loop reports after every epoch."""

    epoch: int
    total_epochs: int
    losses: dict[str, float]  # mean "loss", "supervised" and "unlabeled" of the epoch
    pseudo_counts: dict[str, int] | None  # accepted pseudo-labels per class of the latest round
    train_ua: dict[str, float]  # running UA on the labeled training clips, per language
    val_ua: dict[str, float]  # UA per validation set
    best_epoch: int
    lr: float
    seconds: float  # since the start of the run


@dataclass
class AdaptResult:
    """A trained model with everything needed to use, plot, save and judge it."""

    config: AdaptConfig
    model: nn.Module  # EmotionHead (frozen) or SERModel (finetune), best weights, eval mode
    normalizer: FeatureNormalizer | None  # frozen mode: apply to features before the head
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch (paper Fig. 5)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # one row per pseudo-label round
    best_epoch: int = 0
    best_score: float | None = None  # mean validation UA at best_epoch
    epochs_run: int = 0
    stopped: str = "completed"  # "completed", "early-stopping" or "cancelled"
    # the target was too small to learn from (serdemo.learn.small_pool): ``config`` is the one the run used,
    # without pseudo-labels and with the languages' statistics near the global ones
    small_pool: bool = False
    # the person's target labels carried few emotions (AdaptConfig.few_emotion_labels): as for a small
    # pool they were set aside and nothing was learned from the language; ``config`` is the one the run used
    labels_of_few_emotions: bool = False
    # the unlabeled pool sounded like one mood to the model it was judged by (serdemo.learn.pool_moods): as
    # for a small pool; ``pool_spread`` is that model's relative answer spread over it (None: not measured)
    pool_in_one_mood: bool = False
    pool_spread: float | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    pseudo_labels: PseudoLabels | None = None  # the last round's accepted pseudo-labels; not saved

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in the order of the model's outputs."""
        return self.config.classes

    @property
    def head(self) -> EmotionHead:
        """The classification head (the whole model in frozen mode)."""
        return self.model.head if isinstance(self.model, SERModel) else self.model


@dataclass(frozen=True)
class PseudoLabels:
    """The pseudo-labels the last round of a run trained on, per unlabeled target clip.

    What the app stores as machine labels: exactly what training used (after balancing and the
    policy's selection), not a re-selection by the finished model.
    """

    ids: list[str]  # ids of the accepted clips (ClipSet ids of the unlabeled pool)
    classes: np.ndarray  # (K,) class index of each accepted clip's target (argmax for soft targets)
    confidence: np.ndarray  # (K,) the (balanced) probability of that class when it was selected
