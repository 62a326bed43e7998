"""The encoder protocol: 16 kHz waveforms in, per-layer frame features and pooled utterance vectors out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from serdemo.audio import SAMPLE_RATE  # noqa: F401  (re-exported for encoders)


class EncoderUnavailableError(RuntimeError):
    """Weights for an encoder cannot be found; the message says how to provide them."""


class UtteranceEncoder(nn.Module):
    """Base class of every encoder.

    Subclasses implement :meth:`forward`; pooling and batching live here so every encoder shares them.

    Attributes:
        name: registry name, e.g. ``"whisper-base"``.
        num_layers: number of hidden-state layers :meth:`forward` returns (1 for CNN encoders).
        hidden_size: feature size of one frame of one layer.
        identity: a string that changes whenever the weights or preprocessing change; it keys
            the embedding cache, so two different models never share cached vectors.
    """

    name: str = "encoder"
    num_layers: int = 1
    hidden_size: int = 0

    @property
    def identity(self) -> str:
        """Cache key of this encoder's weights and preprocessing (see the class docstring)."""
        return self.name

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame features of a padded batch.

        Args:
            waveforms: (B, S) float32 at 16 kHz, zero-padded on the right.
            lengths: (B,) number of valid samples per row.

        Returns:
            hidden: (B, L, T, D) hidden states of all ``L = num_layers`` layers.
            frame_lengths: (B,) number of valid frames per row.
        """
        raise NotImplementedError

    @torch.no_grad()
    def embed(self, waveforms: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """Per-layer mean+std pooled vectors of whole utterances, shape (N, L, 2 * D), float32.

        Utterances are batched by similar length so padding stays small.
        """
        was_training = self.training
        self.eval()
        out = np.zeros((len(waveforms), self.num_layers, 2 * self.hidden_size), np.float32)
        order = np.argsort([len(w) for w in waveforms])
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch, lengths = pad_batch([waveforms[i] for i in idx])
            device = next(iter([*self.parameters(), *self.buffers()]), batch).device  # honour .to(device)
            hidden, frame_lengths = self(batch.to(device), lengths.to(device))
            out[idx] = mean_std_pool(hidden, frame_lengths).cpu().numpy()
        self.train(was_training)
        return out


def pad_batch(waveforms: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad 1-D waveforms into a (B, S) tensor plus their lengths."""
    lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.long)
    batch = torch.zeros(len(waveforms), int(lengths.max()), dtype=torch.float32)
    for row, wave in enumerate(waveforms):
        batch[row, : len(wave)] = torch.as_tensor(wave, dtype=torch.float32)
    return batch, lengths


def mean_std_pool(hidden: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """Masked mean and standard deviation over time: (B, L, T, D) -> (B, L, 2 * D)."""
    steps = hidden.shape[2]
    mask = (torch.arange(steps, device=hidden.device)[None, :] < frame_lengths[:, None]).to(hidden.dtype)
    mask = mask[:, None, :, None]
    count = mask.sum(dim=2).clamp_min(1.0)
    mean = (hidden * mask).sum(dim=2) / count
    var = (((hidden - mean[:, :, None, :]) * mask) ** 2).sum(dim=2) / count
    return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)


@dataclass(frozen=True)
class EncoderSpec:
    """A registry entry: the encoder's name, a one-line description and how to build it."""

    name: str
    description: str
    build: Callable[..., UtteranceEncoder]
    offline: bool  # True when it works with nothing but the README's install command


ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` to :data:`ENCODERS`."""
    if spec.name in ENCODERS:
        raise ValueError(f"encoder {spec.name!r} registered twice")
    ENCODERS[spec.name] = spec
    return spec


def weights_hash(module: nn.Module, length: int = 12) -> str:
    """Short SHA-256 of a module's parameters and buffers, for :attr:`UtteranceEncoder.identity`.

    Example:
        >>> weights_hash(nn.Linear(2, 2)) == weights_hash(nn.Linear(2, 2))
        False

    """
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:length]
