"""Whisper log-mel features of a padded batch in one STFT, on the batch's device.

Whisper's feature extractor runs a centred STFT on each clip alone: the reflect padding at the end
sees the clip's last samples, not the zeros of a padded batch. One STFT per clip costs ~10 small
operations each, which leaves a GPU waiting on the host (issue 15). Here the reflect padding of every
row is built at once with one gather, so the whole batch is one ``torch.stft`` call with the same
frames as the per-clip loop.
"""

from __future__ import annotations

import torch
from torch import nn


def batched_log_mel(
    waveforms: torch.Tensor,
    lengths: torch.Tensor,
    window: torch.Tensor,
    mel_filters: torch.Tensor,
    hop_length: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whisper log-mel of each row at its own length, zero after each row's end.

    Args:
        waveforms: (B, S) float32, zero-padded on the right; every length >= ``len(window)``.
        lengths: (B,) valid samples per row (any device; moved to the waveforms').
        window: (N_FFT,) analysis window.
        mel_filters: (n_mels, N_FFT // 2 + 1) mel filter bank.
        hop_length: samples between frames.

    Returns:
        features: (B, n_mels, M) with ``M = max(lengths) // hop_length``.
        mel_lengths: (B,) ``lengths // hop_length`` valid frames per row, on the waveforms' device.

    """
    device = waveforms.device
    lengths = lengths.to(device)
    n_fft = window.shape[0]
    half = n_fft // 2
    mel_lengths = lengths // hop_length
    frames = int(mel_lengths.max())
    # torch.stft's center=True reflect padding, done per row: zero-pad the batch, then write each
    # row's reflected start and end (``half`` samples each) with one gather and one scatter
    steps = frames * hop_length + n_fft
    padded = nn.functional.pad(waveforms, (half, max(steps - half - waveforms.shape[1], 0)))[:, :steps]
    offsets = torch.arange(1, half + 1, device=device)
    padded[:, :half] = waveforms[:, 1 : half + 1].flip(1)
    end = (lengths - 1)[:, None]
    reflected = torch.gather(waveforms, 1, (end - offsets).clamp_min(0))  # samples len-2, len-3, ...
    positions = (end + half + offsets).clamp_max(steps - 1)
    padded.scatter_(1, positions, reflected)
    stft = torch.stft(padded, n_fft, hop_length, window=window, center=False, return_complex=True)
    power = stft[..., :frames].abs() ** 2  # per clip the last centred frame is dropped, as Whisper does
    log_spec = (mel_filters @ power).clamp_min(1e-10).log10()
    valid = torch.arange(frames, device=device)[None, :] < mel_lengths[:, None]  # (B, M)
    peak = log_spec.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=(1, 2), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return ((log_spec + 4.0) / 4.0) * valid[:, None, :].to(log_spec.dtype), mel_lengths
