"""Helpers for the spectrogram CNN encoders: per-clip features and length-exact masking of a padded batch."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def per_clip(
    waveforms: torch.Tensor, lengths: torch.Tensor, features: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``features`` (1-D waveform -> (F, T)) to each clip at its own length and zero-pad the results.

    Computing per clip keeps the STFT's reflect padding at the clip's end identical to what the
    clip gives alone, so batching never changes a clip's features.

    Returns:
        features: (B, F, T_max); frame_lengths: (B,).

    """
    rows = [features(wave[:length]) for wave, length in zip(waveforms, lengths.tolist(), strict=True)]
    frame_lengths = torch.tensor([r.shape[-1] for r in rows], dtype=torch.long)
    out = rows[0].new_zeros(len(rows), rows[0].shape[0], int(frame_lengths.max()))
    for i, row in enumerate(rows):
        out[i, :, : row.shape[-1]] = row
    return out, frame_lengths


def normalize_utterance(features: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over one clip's whole (F, T) spectrogram, so loudness does not matter."""
    return (features - features.mean()) / (features.std(unbiased=False) + 1e-5)


def time_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, 1, 1, steps) boolean mask of valid frames for (B, C, F, T) maps."""
    return (torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None])[:, None, None, :]


def pooled_lengths(lengths: torch.Tensor, pool: nn.MaxPool2d) -> torch.Tensor:
    """Frames left along time after ``pool`` (the same formula as PyTorch's, floor mode)."""
    kernel, stride, padding = (_time(v) for v in (pool.kernel_size, pool.stride, pool.padding))
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


def masked_pool(
    x: torch.Tensor, lengths: torch.Tensor, pool: nn.MaxPool2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-pool (B, C, F, T) so padded frames act like the pool's own -inf padding, then zero them.

    With this, and zeros in padded frames before every convolution (what conv zero padding gives
    a clip alone), a clip's valid frames are the same in any batch.
    """
    x = pool(x.masked_fill(~time_mask(lengths, x.shape[-1]), float("-inf")))
    lengths = pooled_lengths(lengths, pool).clamp_min(0)
    return x.masked_fill(~time_mask(lengths, x.shape[-1]), 0.0), lengths


def _time(value: int | tuple[int, ...]) -> int:
    return value[-1] if isinstance(value, tuple) else value
