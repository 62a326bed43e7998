"""serdemo's plain-torch Whisper network against transformers' WhisperEncoder: same names, same bits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from serdemo.encoders import whisper
from serdemo.encoders.whisper_network import WhisperEncoderNetwork, WhisperNetworkConfig, sinusoids

TINY = dict(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32, num_mel_bins=8)


def _transformers_encoder(config: WhisperNetworkConfig):
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    settings = dict(vars(config), attn_implementation="sdpa")
    return WhisperEncoder(WhisperConfig(**settings)).eval()


def _padded_batch(config: WhisperNetworkConfig, lengths: list[int], seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), config.num_mel_bins, max(lengths), generator=generator)
    return features, torch.tensor(lengths)


def _hidden(network, features, mel_lengths):
    """Every layer's hidden states, through serdemo's masking, of our network or transformers'."""
    with torch.no_grad():
        return whisper.WhisperEncoder(network, "test").forward_features(features, mel_lengths)[0]


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_transformers_weights_give_bit_identical_hidden_states(heads):
    config = whisper.base_config(**{**TINY, "encoder_attention_heads": heads, "max_source_positions": 64})
    torch.manual_seed(heads)
    reference = _transformers_encoder(config)
    ours = WhisperEncoderNetwork(config).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    features, lengths = _padded_batch(config, [100, 37, 64])  # padded rows exercise the attention mask
    expected, got = _hidden(reference, features, lengths), _hidden(ours, features, lengths)
    assert expected.shape == (3, config.encoder_layers + 1, 50, config.d_model)
    assert torch.equal(got, expected)


def test_state_dicts_have_the_same_names_and_shapes_both_ways():
    config = whisper.base_config(**TINY, max_source_positions=64)
    ours = WhisperEncoderNetwork(config).reset_parameters()
    reference = _transformers_encoder(config)
    reference.load_state_dict(ours.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_gradients_match_transformers_in_training_mode():
    config = whisper.base_config(**TINY, max_source_positions=64)
    torch.manual_seed(0)
    reference = _transformers_encoder(config).train()
    ours = WhisperEncoderNetwork(config).train()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 20, config.d_model)
    for network in (reference, ours):
        out = x
        for layer in network.layers:
            out = layer(out, None)
        network.layer_norm(out).square().sum().backward()
    for (name, ours_param), (_, ref_param) in zip(
        ours.named_parameters(), reference.named_parameters(), strict=True
    ):
        assert (ours_param.grad is None) == (ref_param.grad is None), name
        if ref_param.grad is not None:
            torch.testing.assert_close(ours_param.grad, ref_param.grad, rtol=1e-5, atol=1e-6, msg=name)
    assert not ours.embed_positions.weight.requires_grad


def test_random_init_matches_transformers_statistics():
    config = whisper.base_config(**TINY, max_source_positions=64)
    ours = WhisperEncoderNetwork(config).reset_parameters()
    torch.testing.assert_close(ours.embed_positions.weight, sinusoids(64, 16))
    from transformers.models.whisper.modeling_whisper import sinusoids as reference_sinusoids

    assert torch.equal(sinusoids(64, 16), reference_sinusoids(64, 16))
    assert torch.all(ours.layers[0].fc1.bias == 0)
    assert 0.01 < float(ours.layers[0].fc1.weight.detach().std()) < 0.03  # N(0, 0.02), as transformers
    assert torch.all(ours.layer_norm.weight == 1)


def test_mel_filters_are_whisper_feature_extractor_s():
    from transformers import WhisperFeatureExtractor

    encoder = whisper.WhisperEncoder.random(whisper.base_config(**{**TINY, "num_mel_bins": 80}))
    expected = WhisperFeatureExtractor(feature_size=80).mel_filters.T.astype(np.float32)
    assert np.array_equal(encoder.mel_filters.numpy(), expected)


def test_odd_head_split_is_refused():
    with pytest.raises(ValueError, match="not divisible"):
        WhisperEncoderNetwork(whisper.base_config(d_model=16, encoder_attention_heads=3))


def test_real_weights_match_transformers_bit_for_bit():
    try:
        encoder = whisper.load_whisper_base()
    except whisper.EncoderUnavailableError as error:
        pytest.skip(f"whisper-base weights not installed: {error}")
    reference = _transformers_encoder(encoder.encoder.config)
    reference.load_state_dict(encoder.encoder.state_dict(), strict=True)
    features, lengths = _padded_batch(encoder.encoder.config, [300, 151])
    assert torch.equal(_hidden(encoder.encoder, features, lengths), _hidden(reference, features, lengths))


def test_loading_the_offline_encoder_does_not_import_transformers_modeling():
    """The start-up budget (issue 12) has no room for transformers' modeling stack."""
    code = (
        "import sys\n"
        "from serdemo.encoders import whisper\n"
        "try:\n"
        "    whisper.load_whisper_base()\n"
        "except whisper.EncoderUnavailableError:\n"
        "    whisper.WhisperEncoder.random(whisper.base_config(d_model=16, encoder_attention_heads=2))\n"
        "heavy = [m for m in ('transformers.modeling_utils', 'transformers.models.whisper.modeling_whisper',"
        " 'torch._dynamo', 'scipy.optimize') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported on the start-up path: {result.stdout.strip()}"


def test_a_checkpoint_with_another_activation_is_refused(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32, decoder_layers=1,
        decoder_attention_heads=2, decoder_ffn_dim=32, vocab_size=64, max_target_positions=8,
        max_source_positions=64, activation_function="relu", pad_token_id=0, bos_token_id=0, eos_token_id=1,
        decoder_start_token_id=1,
    )  # fmt: skip
    WhisperModel(config).save_pretrained(tmp_path)
    with pytest.raises(whisper.EncoderUnavailableError, match="'relu'.*'gelu' only"):
        whisper.load_from_transformers(tmp_path)
