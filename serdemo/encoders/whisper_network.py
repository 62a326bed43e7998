"""Whisper's audio encoder network in plain torch, interchangeable with transformers' ``WhisperEncoder``.

Why not import transformers' class: importing ``transformers.models.whisper.modeling_whisper`` pulls in
its generation, sharding (``torch.distributed.tensor``), masking (``torch._dynamo``) and loss
(``scipy.optimize``) utilities, ~2.1 s of the app's 6 s start-up budget on a 2-core VM (issue 12), all
for six pre-norm transformer blocks. This module is that computation and nothing else: the same
parameter names (a transformers ``WhisperEncoder`` state dict loads into it strictly, and back), the same
operations in the same order, so the outputs are bit-identical (tests/test_whisper_network.py checks
that against transformers on random configs, and on the real weights when installed). transformers
stays the loader for hub checkpoints and HuBERT; the frame masking and 30 s chunking live in
:class:`serdemo.encoders.whisper.WhisperEncoder`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class WhisperNetworkConfig:
    """The encoder fields of transformers' ``WhisperConfig``, same names; the defaults are whisper-base."""

    d_model: int = 512
    encoder_layers: int = 6
    encoder_attention_heads: int = 8
    encoder_ffn_dim: int = 2048
    num_mel_bins: int = 80
    max_source_positions: int = 1500

    @classmethod
    def of(cls, config: object) -> WhisperNetworkConfig:
        """Take the encoder fields of any config that has them (e.g. a transformers ``WhisperConfig``)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


class SelfAttention(nn.Module):
    """Multi-head self-attention with Whisper's quirks: no key bias, queries scaled before the product."""

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"d_model {embed_dim} is not divisible by {num_heads} attention heads")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, T, D) -> (B, T, D); ``attention_mask`` additive, broadcastable to (B, heads, T, T)."""
        batch, steps = x.shape[:2]
        heads = (batch, steps, self.num_heads, self.head_dim)
        # Scale q before q.k (not inside the product) as Whisper and transformers do: the rounding differs.
        q = (self.q_proj(x) * self.scaling).view(heads).transpose(1, 2).contiguous()
        k = self.k_proj(x).view(heads).transpose(1, 2).contiguous()
        v = self.v_proj(x).view(heads).transpose(1, 2).contiguous()
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, scale=1.0)
        return self.out_proj(out.transpose(1, 2).reshape(batch, steps, -1))


class EncoderBlock(nn.Module):
    """One pre-norm transformer block: x + attn(LN(x)), then x + fc2(gelu(fc1(LN(x))))."""

    def __init__(self, config: WhisperNetworkConfig) -> None:
        super().__init__()
        self.self_attn = SelfAttention(config.d_model, config.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.fc1 = nn.Linear(config.d_model, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, T, D); ``attention_mask`` additive, broadcastable to (B, heads, T, T)."""
        x = x + self.self_attn(self.self_attn_layer_norm(x), attention_mask)
        x = x + self.fc2(nn.functional.gelu(self.fc1(self.final_layer_norm(x))))
        if x.dtype == torch.float16:  # as Whisper does, keep fp16 activations finite
            limit = torch.finfo(x.dtype).max - 1000
            x = x.clamp(min=-limit, max=limit)
        return x


class WhisperEncoderNetwork(nn.Module):
    """Convolutional front end, fixed sinusoidal positions, transformer blocks and a final layer norm.

    :class:`~serdemo.encoders.whisper.WhisperEncoder` calls the parts one by one (to mask padded
    frames and keep every layer's output), so there is no ``forward`` here.
    """

    def __init__(self, config: WhisperNetworkConfig) -> None:
        super().__init__()
        self.config = config
        d_model = config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, d_model)
        self.embed_positions.requires_grad_(False)  # fixed sinusoids in Whisper, never trained
        self.layers = nn.ModuleList([EncoderBlock(config) for _ in range(config.encoder_layers)])
        self.layer_norm = nn.LayerNorm(d_model)

    def reset_parameters(self) -> WhisperEncoderNetwork:
        """Initialise as transformers does a new Whisper encoder: N(0, 0.02) weights, 0 biases, sinusoids."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Conv1d):
                    module.weight.normal_(0.0, 0.02)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.reset_parameters()
            self.embed_positions.weight.copy_(sinusoids(*self.embed_positions.weight.shape))
        return self


def sinusoids(length: int, channels: int, max_timescale: float = 10_000.0) -> torch.Tensor:
    """Whisper's positional table (length, channels): sines, then cosines, at geometric timescales."""
    if channels % 2:
        raise ValueError(f"sinusoidal positions need an even number of channels, got {channels}")
    log_timescale_increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length).view(-1, 1) * inv_timescales.view(1, -1)
    return torch.cat([scaled_time.sin(), scaled_time.cos()], dim=1)
