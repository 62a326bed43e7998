"""Every encoder at tiny size: shapes, batch-independent embeddings, gradients, determinism; the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serdemo.encoders import build_encoder, encoder_names
from serdemo.encoders.base import ENCODERS, EncoderUnavailableError, pad_batch

SR = 16_000


def _tiny_whisper(seed: int = 0, **overrides):
    from serdemo.encoders.whisper import WhisperEncoder, base_config

    settings = dict(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32)
    settings.update(overrides)
    return WhisperEncoder.random(base_config(**settings), seed=seed)


def _tiny_hubert(seed: int = 0, feat_extract_norm: str = "group"):
    from transformers import HubertConfig

    from serdemo.encoders.hubert import HubertEncoder

    config = HubertConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=feat_extract_norm == "layer",
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
    )
    return HubertEncoder.random(config, seed=seed)


def _tiny_byols(seed: int = 0):
    return build_encoder("byol-s", seed=seed, n_mels=16, channels=4, d=8, dropout=0.0)


def _tiny_cnn(seed: int = 0):
    return build_encoder("emotion-cnn", seed=seed, n_channels=16, conv_channels=(4, 4, 4), d=8)


TINY = {
    "whisper": (_tiny_whisper, 3, 16),
    "hubert-group": (_tiny_hubert, 3, 16),
    "hubert-layer": (lambda seed=0: _tiny_hubert(seed, "layer"), 3, 16),
    "byol-s": (_tiny_byols, 1, 8),
    "emotion-cnn": (_tiny_cnn, 1, 8),
}


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-like signal: harmonics of a wandering pitch under a syllable-rate envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    pitch = 150 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * envelope * voiced + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(params=sorted(TINY))
def tiny(request):
    build, layers, dim = TINY[request.param]
    return build, layers, dim


def test_forward_shapes_and_frame_lengths(tiny):
    build, layers, dim = tiny
    encoder = build()
    batch, lengths = pad_batch([_speechlike(2.0), _speechlike(1.0, seed=1)])
    hidden, frame_lengths = encoder(batch, lengths)
    assert hidden.shape[:2] == (2, layers) and hidden.shape[-1] == dim
    assert (encoder.num_layers, encoder.hidden_size) == (layers, dim)
    assert frame_lengths[0] == hidden.shape[2] and frame_lengths[1] < frame_lengths[0]
    assert torch.isfinite(hidden).all()


def test_embedding_does_not_depend_on_batch_padding(tiny):
    """A short clip batched with a long one (so zero-padded) embeds as it does alone."""
    build, _, _ = tiny
    encoder = build()
    short, long = _speechlike(0.7, seed=2), _speechlike(2.3, seed=3)
    alone = encoder.embed([short])
    batched = encoder.embed([short, long], batch_size=2)
    np.testing.assert_allclose(batched[0], alone[0], rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_layer_for_finetuning(tiny):
    build, _, _ = tiny
    encoder = build().train()
    batch, lengths = pad_batch([_speechlike(1.0), _speechlike(0.6, seed=1)])
    hidden, _ = encoder(batch, lengths)
    hidden[:, -1].pow(2).mean().backward()
    first_weight = next(p for p in encoder.parameters() if p.requires_grad and p.ndim > 1)
    assert first_weight.grad is not None and first_weight.grad.abs().sum() > 0


def test_same_seed_same_model_different_seed_different_identity(tiny):
    build, _, _ = tiny
    clips = [_speechlike(1.0)]
    first, again, other = build(0), build(0), build(1)
    np.testing.assert_array_equal(first.embed(clips), again.embed(clips))
    np.testing.assert_array_equal(first.embed(clips), first.embed(clips))
    assert first.identity == again.identity != other.identity


# ---------------------------------------------------------------------------------------------
# Whisper specifics


def test_whisper_log_mel_equals_the_feature_extractor():
    from transformers import WhisperFeatureExtractor

    encoder = _tiny_whisper()
    clips = [_speechlike(1.37, seed=4), _speechlike(0.5, seed=5)]
    batch, lengths = pad_batch(clips)
    features, mel_lengths = encoder.log_mel(batch, lengths)
    assert mel_lengths.tolist() == [len(c) // 160 for c in clips]
    for row, clip in enumerate(clips):
        expected = WhisperFeatureExtractor()(clip, sampling_rate=SR, padding="longest").input_features[0]
        got = features[row, :, : mel_lengths[row]].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert (features[row, :, mel_lengths[row] :] == 0).all()


def test_whisper_frame_lengths_follow_the_conv_stride():
    encoder = _tiny_whisper()
    lengths = torch.tensor([48_000, 48_001, 16_159, 800])
    batch = torch.zeros(4, 48_001)
    for row, n in enumerate(lengths.tolist()):
        batch[row, :n] = torch.from_numpy(_speechlike(n / SR, seed=row)[:n])
    hidden, frame_lengths = encoder(batch, lengths)
    assert frame_lengths.tolist() == [150, 150, 50, 3]  # ceil((samples // 160) / 2)
    assert hidden.shape == (4, 3, 150, 16)


def test_whisper_encodes_clips_longer_than_its_window_in_chunks():
    encoder = _tiny_whisper(max_source_positions=50)  # a 1 s window keeps the test small
    clip = _speechlike(3.5)  # 4 windows, plus 1 for the short clip: two groups of chunks
    batch, lengths = pad_batch([clip, clip[:8000]])
    hidden, frame_lengths = encoder(batch, lengths)
    assert frame_lengths.tolist() == [175, 25]
    features, mel_lengths = encoder.log_mel(batch, lengths)
    first_window, _ = encoder.forward_features(features[:1, :, :100], torch.tensor([100]))
    torch.testing.assert_close(hidden[:1, :, :50], first_window)
    assert torch.isfinite(hidden).all() and (hidden[0, :, 150:175].abs().sum(-1) > 0).all()


def test_whisper_refuses_a_clip_too_short_for_one_frame():
    with pytest.raises(ValueError, match="needs at least 400"):
        _tiny_whisper().embed([np.zeros(300, np.float32)])


def test_whisper_loads_a_local_transformers_folder(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32, vocab_size=64,
        max_target_positions=8, pad_token_id=0, bos_token_id=0, eos_token_id=1, decoder_start_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = WhisperModel(config).eval()
    model.save_pretrained(tmp_path)
    encoder = build_encoder("whisper-base", source=str(tmp_path))
    assert encoder.identity.startswith("whisper-base/hf-")
    reference = _tiny_whisper()
    reference.encoder.load_state_dict(model.encoder.state_dict())
    clips = [_speechlike(1.0)]
    np.testing.assert_allclose(encoder.embed(clips), reference.embed(clips), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# HuBERT, BYOL-S, EmotionCNN specifics


def test_hubert_normalises_input_only_for_layer_norm_models():
    group, layer = _tiny_hubert(), _tiny_hubert(feat_extract_norm="layer")
    assert not group.normalize and layer.normalize
    clip = _speechlike(1.0)
    # A normalising model cannot tell a quiet clip from a loud one.
    np.testing.assert_allclose(layer.embed([clip]), layer.embed([4 * clip]), rtol=1e-3, atol=1e-4)
    assert group.identity != layer.identity


def test_hubert_without_weights_explains_how_to_provide_them(tmp_path):
    from serdemo.encoders.hubert import load_hubert

    with pytest.raises(EncoderUnavailableError, match="HF_HOME.*local folder"):
        load_hubert(tmp_path / "missing" / "hubert")


def test_byols_loads_a_checkpoint_with_wrapper_prefixes(tmp_path):
    source = _tiny_byols(seed=7)
    state = {f"module.model.{k}": v for k, v in source.net.state_dict().items()}
    state["module.projector.weight"] = torch.zeros(3)  # BYOL training heads are ignored
    path = tmp_path / "byols.pth"
    torch.save({"state_dict": state}, path)
    loaded = build_encoder("byol-s", checkpoint=str(path), seed=1, n_mels=16, channels=4, d=8, dropout=0.0)
    clips = [_speechlike(1.0)]
    np.testing.assert_array_equal(loaded.embed(clips), source.embed(clips))
    assert "/ckpt-" in loaded.identity and "random-init" in source.identity


def test_byols_refuses_a_checkpoint_of_another_size(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(_tiny_byols().net.state_dict(), path)
    with pytest.raises(EncoderUnavailableError, match="does not fit BYOL-S"):
        build_encoder("byol-s", checkpoint=str(path), n_mels=32, channels=4, d=8)
    with pytest.raises(EncoderUnavailableError, match="not found"):
        build_encoder("byol-s", checkpoint=str(tmp_path / "absent.pth"))


def test_byols_full_size_frames_are_2048_wide():
    encoder = build_encoder("byol-s")
    hidden, frame_lengths = encoder(*pad_batch([_speechlike(1.0)]))
    assert hidden.shape == (1, 1, 12, 2048) and frame_lengths.tolist() == [12]  # 101 mel frames / 8


def test_emotion_cnn_cochleagram_resolves_pitch_harmonics():
    """A 1 kHz tone lights up the gammatone channels near 1 kHz, not the ones far away."""
    from serdemo.encoders.emotion_cnn import Cochleagram, EmotionCNNConfig, erb_space

    config = EmotionCNNConfig()
    tone = torch.from_numpy(np.sin(2 * np.pi * 1000 * np.arange(SR) / SR).astype(np.float32))
    cochleagram = Cochleagram(config)(tone)
    centres = erb_space(config.f_min, config.f_max, config.n_channels)
    assert cochleagram.shape == (64, 98)
    assert abs(centres[int(cochleagram.mean(1).argmax())] - 1000) < 100


def test_emotion_cnn_full_size_gives_128_d_frames():
    encoder = build_encoder("emotion-cnn")
    hidden, frame_lengths = encoder(*pad_batch([_speechlike(3.0)]))
    assert hidden.shape[:2] == (1, 1) and hidden.shape[-1] == 128
    assert frame_lengths.tolist() == [hidden.shape[2]] == [38]  # 298 energy frames halved three times
    assert encoder.identity.startswith("emotion-cnn/random-init-")


# ---------------------------------------------------------------------------------------------
# Registry


def test_registry_lists_every_encoder_with_a_description():
    assert encoder_names() == ["byol-s", "emotion-cnn", "hubert-base", "whisper-base", "whisper-base-int8"]
    assert all(ENCODERS[name].description for name in encoder_names())
    assert ENCODERS["whisper-base"].offline and not ENCODERS["hubert-base"].offline


def test_unknown_encoder_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown encoder 'wav2vec'(.|\n)*whisper-base: Whisper base"):
        build_encoder("wav2vec")


def test_importing_the_registry_loads_no_model_code():
    import subprocess
    import sys

    code = "import sys, serdemo.encoders; print('transformers' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ---------------------------------------------------------------------------------------------
# The real default encoder on a real clip


@pytest.mark.corpora
def test_whisper_base_embeds_a_ravdess_clip(ravdess_root):
    from serdemo.audio import load_audio

    clip = load_audio(sorted(ravdess_root.rglob("*.flac"))[0])
    encoder = build_encoder("whisper-base")
    embedding = encoder.embed([clip])
    assert embedding.shape == (1, 7, 1024)
    assert np.isfinite(embedding).all() and embedding.std() > 0
