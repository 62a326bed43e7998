"""EmotionCNN: a small CNN on gammatone cochleagrams, trained from scratch (Agarla et al., 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from serdemo.audio import SAMPLE_RATE
from serdemo.encoders._frames import masked_pool, normalize_utterance, per_clip, time_mask
from serdemo.encoders.base import UtteranceEncoder, weights_hash


@dataclass(frozen=True)
class EmotionCNNConfig:
    """Cochleagram front end and network size."""

    n_channels: int = 64  # gammatone filters, ERB-spaced
    f_min: float = 50.0
    f_max: float = 7900.0  # just below Nyquist, where scipy's gammatone design is defined
    filter_taps: int = 1024  # 64 ms FIR: long enough for the 50 Hz filter's impulse response to decay
    win_length: int = 400  # 25 ms energy frames
    hop_length: int = 160  # 10 ms
    conv_channels: tuple[int, int, int] = (32, 64, 64)
    d: int = 128  # frame representation size


def erb_space(f_min: float, f_max: float, n: int) -> np.ndarray:
    """``n`` centre frequencies equally spaced on Glasberg & Moore's ERB-rate scale.

    Example:
        >>> erb_space(50, 7900, 3).round()
        array([  50., 1277., 7900.])

    """
    rate = np.linspace(*(21.4 * np.log10(1 + 0.00437 * np.array([f_min, f_max]))), n)
    return (10 ** (rate / 21.4) - 1) / 0.00437


class Cochleagram(nn.Module):
    """Log frame energies of a gammatone filterbank: (S,) waveform -> (n_channels, frames)."""

    def __init__(self, config: EmotionCNNConfig) -> None:
        super().__init__()
        from scipy.signal import gammatone

        self.config = config
        filters = [
            gammatone(f, "fir", numtaps=config.filter_taps, fs=SAMPLE_RATE)[0]
            for f in erb_space(config.f_min, config.f_max, config.n_channels)
        ]
        self.register_buffer(
            "filters", torch.tensor(np.stack(filters), dtype=torch.float32), persistent=False
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Cochleagram of one clip, normalised over the clip (zero mean, unit variance)."""
        c = self.config
        if len(wave) < c.win_length:
            raise ValueError(f"a clip has {len(wave)} samples; EmotionCNN needs at least {c.win_length}")
        # Causal FIR filtering by FFT: (channels, samples), each output sample sees only the past.
        size = len(wave) + c.filter_taps - 1
        spectrum = torch.fft.rfft(wave, size) * torch.fft.rfft(self.filters, size)
        bands = torch.fft.irfft(spectrum, size)[:, : len(wave)]
        energy = nn.functional.avg_pool1d(bands[None] ** 2, c.win_length, c.hop_length)[0]
        return normalize_utterance(torch.log(energy + 1e-10))


class EmotionCNN(UtteranceEncoder):
    """Three conv blocks (conv 3x3, ReLU, batch norm, 3x3 max-pool) and a linear layer: 128-d frames, L=1.

    Each max-pool halves time and frequency (stride 2), so a frame covers 80 ms. There are no
    pretrained weights: the encoder is trained with the classifier (``identity`` says random init).

    Example:
        >>> enc = EmotionCNN(EmotionCNNConfig(n_channels=16, conv_channels=(4, 4, 4), d=8))
        >>> enc.embed([np.zeros(16000, np.float32)]).shape
        (1, 1, 16)

    """

    name = "emotion-cnn"
    num_layers = 1

    def __init__(self, config: EmotionCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or EmotionCNNConfig()
        self.hidden_size = config.d
        self.cochleagram = Cochleagram(config)
        blocks, in_channels, height = [], 1, config.n_channels
        for out_channels in config.conv_channels:
            blocks.append(
                nn.ModuleDict(
                    {
                        "conv": nn.Conv2d(in_channels, out_channels, 3, padding=1),
                        "norm": nn.BatchNorm2d(out_channels),
                        "pool": nn.MaxPool2d(3, stride=2, padding=1),
                    }
                )
            )
            in_channels, height = out_channels, (height - 1) // 2 + 1
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(in_channels * height, config.d)
        self._identity = "random-init-" + weights_hash(self)

    @property
    def identity(self) -> str:
        """Initial weights and front end: the embedding cache key (cache only frozen, untrained encoders)."""
        c = self.config
        return f"{self.name}/{self._identity}/gt{c.n_channels}-{c.f_min:g}-{c.f_max:g}-{c.filter_taps}"

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch into (B, 1, T, 128) frames, ``T`` about ``samples / 1280``."""
        x, frame_lengths = per_clip(waveforms, lengths, self.cochleagram)
        x = x[:, None]
        for block in self.blocks:
            x = x * time_mask(frame_lengths, x.shape[-1])  # what conv zero padding gives a clip alone
            x = block["norm"](torch.relu(block["conv"](x)))
            x, frame_lengths = masked_pool(x, frame_lengths, block["pool"])
        x = x.permute(0, 3, 1, 2).flatten(2)  # (batch, time, channel * frequency)
        return self.fc(x)[:, None], frame_lengths


def build_emotion_cnn(seed: int = 0, **config: object) -> EmotionCNN:
    """Build a randomly initialised EmotionCNN; ``config`` overrides :class:`EmotionCNNConfig` fields."""
    torch.manual_seed(seed)
    return EmotionCNN(EmotionCNNConfig(**config))
