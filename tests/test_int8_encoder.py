import numpy as np
import pytest
import torch

from serdemo.encoders.base import ENCODERS
from serdemo.encoders.int8 import NUMERIC_PATH, quantize_linear_int8
from tests.test_encoders import _tiny_whisper


def test_int8_encoder_keeps_the_outputs_close_and_changes_the_cache_identity():
    fp32 = _tiny_whisper(d_model=64, encoder_ffn_dim=128, encoder_attention_heads=4)
    int8 = quantize_linear_int8(_tiny_whisper(d_model=64, encoder_ffn_dim=128, encoder_attention_heads=4))
    assert NUMERIC_PATH in int8.identity and NUMERIC_PATH not in fp32.identity
    assert int8.identity != fp32.identity and int8.name == "whisper-base-int8"
    assert not any(isinstance(m, torch.nn.Linear) for m in int8.encoder.modules())
    rng = np.random.default_rng(0)
    waves = [
        0.1 * rng.standard_normal(16000).astype(np.float32),
        0.1 * rng.standard_normal(8000).astype(np.float32),
    ]
    a, b = fp32.embed(waves), int8.embed(waves)
    assert a.shape == b.shape
    cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert cosine.min() > 0.99
    assert not np.array_equal(a, b)  # it did quantise
    with pytest.raises(ValueError, match="already quantised"):
        quantize_linear_int8(int8)


def test_int8_whisper_is_registered_offline():
    spec = ENCODERS["whisper-base-int8"]
    assert spec.offline
