"""Learning: clip sets, Algorithm 1, inference, checkpoints, the head, normalisation, pseudo-label policies.

The names most callers need are re-exported here: ``from serdemo.learn import ClipSet, adapt, predict_proba``.
"""

from serdemo.learn.adapt import adapt, build_training_set
from serdemo.learn.checkpoint import load_model, save_model
from serdemo.learn.clips import AdaptError, ClipSet, build_clipset, unknown_speaker
from serdemo.learn.inference import embed, predict_proba
from serdemo.learn.result import AdaptResult, ProgressEvent, PseudoLabels

__all__ = [
    "AdaptError",
    "AdaptResult",
    "ClipSet",
    "ProgressEvent",
    "PseudoLabels",
    "adapt",
    "build_clipset",
    "build_training_set",
    "embed",
    "load_model",
    "predict_proba",
    "save_model",
    "unknown_speaker",
]
