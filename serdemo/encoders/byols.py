"""BYOL-S: BYOL-A's AudioNTT2020 convolutional network on log-mel frames, from a serab-byols checkpoint."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from serdemo.audio import SAMPLE_RATE
from serdemo.encoders._frames import masked_pool, normalize_utterance, per_clip, time_mask
from serdemo.encoders.base import EncoderUnavailableError, UtteranceEncoder, weights_hash


@dataclass(frozen=True)
class ByolsConfig:
    """Front end and network size; the defaults are BYOL-A's (Niizumi et al., 2021) and serab-byols'."""

    n_fft: int = 1024  # 64 ms FFT
    win_length: int = (
        1024  # BYOL-A's 64 ms window; serab-byols' AudioNTT2020 class attribute says 400: check yours
    )
    hop_length: int = 160  # 10 ms
    n_mels: int = 64
    f_min: float = 60.0
    f_max: float = 7800.0
    channels: int = 64  # conv channels of each of the three blocks
    d: int = 2048  # frame embedding size (BYOL-S/CvT-free "default" model)
    dropout: float = 0.3


class AudioNTT2020(nn.Module):
    """BYOL-A's ``AudioNTT2020Task6`` network, with the same parameter names as its checkpoints."""

    def __init__(self, n_mels: int = 64, d: int = 2048, channels: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        blocks = []
        for in_channels in (1, channels, channels):
            blocks += [
                nn.Conv2d(in_channels, channels, 3, stride=1, padding=1),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.MaxPool2d(2, stride=2),
            ]
        self.features = nn.Sequential(*blocks)  # indices 0..11 as in BYOL-A
        self.fc = nn.Sequential(
            nn.Linear(channels * (n_mels // 2**3), d),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(d, d),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame embeddings (B, T / 8, d) of log-mel maps (B, 1, n_mels, T) with ``lengths`` valid frames."""
        for i in range(0, len(self.features), 4):
            conv, norm, act, pool = self.features[i : i + 4]
            x = act(norm(conv(x * time_mask(lengths, x.shape[-1]))))
            x, lengths = masked_pool(x, lengths, pool)
        x = x.permute(0, 3, 2, 1)  # (batch, time, mel, channel): BYOL-A's flattening order
        x = x.reshape(x.shape[0], x.shape[1], -1)
        return self.fc(x), lengths


class ByolsEncoder(UtteranceEncoder):
    """BYOL-S frame embeddings (L=1, D=2048, 80 ms frames) of per-utterance normalised log-mels.

    serab-byols normalises with statistics of the whole dataset being embedded; here each clip is
    normalised on its own, so an embedding depends on the clip only and can be cached.

    Example:
        >>> enc = ByolsEncoder(ByolsConfig(n_mels=16, channels=4, d=8))
        >>> enc.embed([np.zeros(16000, np.float32)]).shape
        (1, 1, 16)

    """

    name = "byol-s"
    num_layers = 1

    def __init__(
        self, config: ByolsConfig | None = None, checkpoint: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        self.config = config = config or ByolsConfig()
        self.hidden_size = config.d
        self.net = AudioNTT2020(config.n_mels, config.d, config.channels, config.dropout)
        # torchaudio.transforms.MelSpectrogram's filters (HTK scale, no norm), which BYOL-A uses.
        mel = mel_filter_bank(
            config.n_fft // 2 + 1, config.n_mels, config.f_min, config.f_max, SAMPLE_RATE, None, "htk"
        )
        self.register_buffer("mel_filters", torch.from_numpy(mel.T.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)
        self._identity = "random-init-" + weights_hash(self.net)
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)

    @property
    def identity(self) -> str:
        """Checkpoint hash or random init, plus the front end: the embedding cache key."""
        c = self.config
        front = (
            f"mel{c.n_mels}-fft{c.n_fft}-win{c.win_length}-hop{c.hop_length}-{c.f_min:g}-{c.f_max:g}-uttnorm"
        )
        return f"{self.name}/{self._identity}/{front}"

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Load a BYOL-A / serab-byols state dict, stripping wrapper prefixes (``model.``, ``module.``...).

        Raises:
            EncoderUnavailableError: missing file, or keys/shapes that do not fit this config.

        """
        path = Path(path)
        if not path.is_file():
            raise EncoderUnavailableError(
                f"BYOL-S checkpoint {path} not found: pass checkpoint=<a serab-byols .pth file>, e.g. "
                "checkpoints/default2048_BYOLAs64x96-2105311814-e100-bs256-lr0003-rs42.pth from "
                "github.com/GasserElbanna/serab-byols"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        weights = {}
        for key, value in state.items():
            # BYOL-A's own rule: keep what follows the first "features." or "fc." in the key.
            match = re.search(r"(^fc\.|\.fc\.|^features\.|\.features\.)", key)
            if match is not None:
                weights[key[match.start() :].lstrip(".")] = value
        try:
            self.net.load_state_dict(weights, strict=True)
        except RuntimeError as error:
            raise EncoderUnavailableError(
                f"{path} does not fit BYOL-S with {self.config}: {error}. Pass a matching ByolsConfig "
                "(n_mels, d) or a serab-byols AudioNTT2020 checkpoint."
            ) from error
        self._identity = "ckpt-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Compute the utterance-normalised log-mel (n_mels, frames) of one clip as torchaudio + BYOL-A do."""
        c = self.config
        if len(wave) <= c.n_fft // 2:
            raise ValueError(f"a clip has {len(wave)} samples; BYOL-S needs more than {c.n_fft // 2}")
        stft = torch.stft(
            wave, c.n_fft, c.hop_length, c.win_length, window=self.window, center=True, return_complex=True
        )
        mel = self.mel_filters @ stft.abs() ** 2
        return normalize_utterance((mel + torch.finfo(torch.float32).eps).log())

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch into (B, 1, T, d) frames, ``T = (1 + samples // 160) // 8``."""
        features, mel_lengths = per_clip(waveforms, lengths, self.log_mel)
        frames, frame_lengths = self.net(features[:, None], mel_lengths)
        return frames[:, None], frame_lengths


def build_byols(
    checkpoint: str | os.PathLike[str] | None = None, seed: int = 0, **config: object
) -> ByolsEncoder:
    """Build BYOL-S from a serab-byols checkpoint, or randomly initialised with ``seed`` when none is given.

    Args:
        checkpoint: e.g. serab-byols'
            ``checkpoints/default2048_BYOLAs64x96-2105311814-e100-bs256-lr0003-rs42.pth``.
        seed: seeds the random initialisation (and dropout) when there is no checkpoint.
        **config: :class:`ByolsConfig` fields, e.g. ``n_mels=16, d=8`` for tiny test models.

    """
    torch.manual_seed(seed)
    return ByolsEncoder(ByolsConfig(**config), checkpoint)
