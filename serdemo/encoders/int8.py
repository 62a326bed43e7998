"""Whisper-base with int8 linear layers (PyTorch dynamic quantisation): the encoder's CPU fast path.

Every ``nn.Linear`` of the transformer (attention projections and feed-forward layers, ~90 % of
the encoder's multiply-adds on a 3 s clip) gets int8 weights, quantised once at load, and int8
activations quantised per call (dynamic quantisation, Jacob et al., 2018); the convolutional front
end, layer norms and positions stay fp32. The encoder's ``identity`` carries the numeric path, so
the embedding cache never mixes int8 and fp32 vectors. bench/encoder_speed.py measures it beside
fp32 and CTranslate2 on the same weights; docs/performance.md says which path is the default and why.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from serdemo.encoders.whisper import WhisperEncoder, load_whisper_base

NUMERIC_PATH = "int8-dynamic-linear"  # part of the cache key: bump when the quantisation changes


def quantize_linear_int8(encoder: WhisperEncoder) -> WhisperEncoder:
    """Quantise ``encoder``'s linear layers to int8 in place and mark its identity; returns it.

    Raises:
        ValueError: the encoder is already quantised (its identity would claim the path twice).

    """
    if NUMERIC_PATH in encoder.identity:
        raise ValueError(f"encoder {encoder.identity!r} is already quantised")
    with warnings.catch_warnings():  # torch.ao's eager quantisation warns it will move to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        encoder.encoder = quantize_dynamic(encoder.encoder, {nn.Linear}, dtype=torch.qint8)
    encoder.name = "whisper-base-int8"  # the registry name; with the suffix below, in every cache key
    encoder._identity = f"{encoder._identity}/{NUMERIC_PATH}"
    encoder.requires_grad_(False)  # int8 weights have no gradient: frozen mode only
    return encoder


def load_whisper_base_int8(source: str | None = None) -> WhisperEncoder:
    """Whisper-base's encoder (see :func:`~serdemo.encoders.whisper.load_whisper_base`) with int8 linears."""
    return quantize_linear_int8(load_whisper_base(source))
