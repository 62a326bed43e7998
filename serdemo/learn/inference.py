"""Run a trained model on clips: class probabilities and the learned representation, in both modes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from serdemo.audio import random_crop
from serdemo.config import AdaptConfig, Mode
from serdemo.encoders.base import pad_batch
from serdemo.learn import finetune
from serdemo.learn.clips import AdaptError, ClipSet
from serdemo.learn.normalize import FeatureNormalizer
from serdemo.learn.result import AdaptResult


class Inputs:
    """Model inputs of a set of clips: a features tensor (frozen) or waveforms (finetune)."""

    def __init__(self, features: torch.Tensor | None, waveforms: list[np.ndarray] | None, config, device):
        self.features, self.waveforms, self.config, self.device = features, waveforms, config, device

    @classmethod
    def frozen(cls, features: np.ndarray, device: torch.device) -> Inputs:
        """Inputs of cached encoder features (N, L, F)."""
        return cls(
            torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device), None, None, device
        )

    @classmethod
    def frozen_tensor(cls, features: torch.Tensor, device: torch.device) -> Inputs:
        """Inputs of features already in a tensor (e.g. reduced by :mod:`serdemo.learn.reduced_head`)."""
        return cls(features.to(device), None, None, device)

    @classmethod
    def finetune(cls, waveforms: list[np.ndarray], config: AdaptConfig, device: torch.device) -> Inputs:
        """Inputs of waveforms, cropped at random in training."""
        return cls(None, list(waveforms), config, device)

    def __len__(self) -> int:
        return len(self.features) if self.features is not None else len(self.waveforms)

    def subset(self, rows: np.ndarray) -> Inputs:
        """The inputs of ``rows``."""
        if self.features is not None:
            rows = np.asarray(rows)
            if len(rows) and (np.diff(rows) == 1).all():  # a run of rows (the unlabeled pool): a view
                return Inputs(self.features[int(rows[0]) : int(rows[-1]) + 1], None, None, self.device)
            return Inputs(self.features[torch.from_numpy(rows)], None, None, self.device)
        return Inputs(None, [self.waveforms[r] for r in rows], self.config, self.device)

    def train_batch(
        self, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x, lengths)`` of a training batch; lengths None for features."""
        if self.features is not None:
            return self.features.index_select(0, torch.from_numpy(rows)), None
        # the paper trains on random 2 s crops; a new crop every time a clip is drawn
        crops = [random_crop(self.waveforms[r], self.config.crop_seconds, rng) for r in rows]
        batch, lengths = pad_batch(crops)
        return finetune.to_device(batch, self.device), finetune.to_device(lengths, self.device)

    def eval_batches(self):
        """``(positions, x, lengths)`` covering every clip once, whole utterances."""
        if self.features is not None:
            for start in range(0, len(self), 4096):
                yield (
                    np.arange(start, min(start + 4096, len(self))),
                    self.features[start : start + 4096],
                    None,
                )
            return
        order = np.argsort([len(w) for w in self.waveforms], kind="stable")  # similar lengths, little padding
        for start in range(0, len(order), self.config.eval_batch_size):
            idx = order[start : start + self.config.eval_batch_size]
            batch, lengths = pad_batch([self.waveforms[i] for i in idx])
            yield idx, finetune.to_device(batch, self.device), finetune.to_device(lengths, self.device)


def inputs_for(config: AdaptConfig, normalizer: FeatureNormalizer | None, clips: ClipSet, device) -> Inputs:
    """Model inputs of ``clips`` under ``config``'s mode (frozen features normalised)."""
    if config.mode == Mode.FROZEN.value:
        if clips.features is None:
            raise AdaptError("frozen mode needs features in every ClipSet (compute them with the encoder)")
        feats = (
            clips.features
            if normalizer is None
            else normalizer.transform(clips.features, clips.languages, clips.speakers)
        )
        return Inputs.frozen(feats, device)
    if clips.waveforms is None:
        raise AdaptError("finetune mode needs waveforms in every ClipSet")
    return Inputs.finetune(clips.waveforms, config, device)


@torch.no_grad()
def run_model(model: nn.Module, inputs: Inputs, what: str) -> np.ndarray:
    """``what`` = ``probs`` (softmax) or ``embedding`` of every input, in eval mode, (N, C or P)."""
    was_training = model.training
    model.eval()
    out = None
    for idx, x, lengths in inputs.eval_batches():
        args = (x,) if lengths is None else (x, lengths)
        with finetune.autocast(inputs.config, x.device):
            y = torch.softmax(model(*args).float(), dim=-1) if what == "probs" else model.embedding(*args)
        if out is None:
            out = np.zeros((len(inputs), y.shape[1]), np.float32)
        out[idx] = y.float().cpu().numpy()
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), np.float32)


def predict(model: nn.Module, inputs: Inputs) -> np.ndarray:
    """Class probabilities (N, C) of ``inputs``."""
    return run_model(model, inputs, "probs")


def predict_proba(result: AdaptResult, clips: ClipSet) -> np.ndarray:
    """Class probabilities (N, C) of ``clips`` (whole utterances), columns in ``result.classes`` order."""
    device = next(result.model.parameters()).device
    probs = run_model(result.model, inputs_for(result.config, result.normalizer, clips, device), "probs")
    return probs if len(clips) else np.zeros((0, len(result.classes)), np.float32)


def embed(result: AdaptResult, clips: ClipSet) -> np.ndarray:
    """Return the learned representation (N, P) of ``clips``: the head's projection, for plots."""
    device = next(result.model.parameters()).device
    return run_model(result.model, inputs_for(result.config, result.normalizer, clips, device), "embedding")
