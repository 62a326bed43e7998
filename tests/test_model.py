import pytest
import torch
from torch import nn

from serdemo.encoders.base import UtteranceEncoder
from serdemo.learn.model import EmotionHead, SERModel


class TinyEncoder(UtteranceEncoder):
    """Two conv layers over the waveform: L = 2 layers of D = 4 features."""

    name = "tiny"
    num_layers = 2
    hidden_size = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 4, kernel_size=400, stride=320)
        self.conv2 = nn.Conv1d(4, 4, kernel_size=3, padding=1)

    def forward(self, waveforms, lengths):
        h1 = torch.relu(self.conv1(waveforms[:, None]))
        h2 = torch.relu(self.conv2(h1))
        frames = ((lengths - 400) // 320 + 1).clamp(min=1)
        return torch.stack([h1, h2], dim=1).transpose(2, 3), frames


def test_head_shapes_and_layer_weights():
    head = EmotionHead(num_layers=3, feature_dim=6, num_classes=5, projection_dim=4, combination="mix")
    x = torch.randn(7, 3, 6)
    assert head(x).shape == (7, 5)
    assert head.embedding(x).shape == (7, 4)
    assert head.layer_weights.sum().item() == pytest.approx(1.0)
    assert torch.allclose(head.layer_weights, torch.full((3,), 1 / 3))


def test_head_ignores_layers_it_was_not_given():
    torch.manual_seed(0)
    head = EmotionHead(num_layers=3, feature_dim=6, num_classes=2, layers=[0, 2], combination="mix").eval()
    x = torch.randn(4, 3, 6)
    changed = x.clone()
    changed[:, 1] += 100.0
    assert torch.allclose(head(x), head(changed))
    changed[:, 2, 0] += 1.0
    assert not torch.allclose(head(x), head(changed))


def test_head_rejects_missing_layers_and_wrong_features():
    with pytest.raises(ValueError, match="do not exist"):
        EmotionHead(num_layers=2, feature_dim=6, num_classes=2, layers=[5])
    head = EmotionHead(num_layers=2, feature_dim=6, num_classes=2)
    with pytest.raises(ValueError, match="encoder"):
        head(torch.randn(3, 2, 5))


def test_ser_model_runs_end_to_end_and_trains_the_encoder():
    torch.manual_seed(0)
    encoder = TinyEncoder()
    model = SERModel(encoder, EmotionHead(2, 8, 3, projection_dim=4))
    waves, lengths = torch.randn(2, 8000), torch.tensor([8000, 5000])
    logits = model(waves, lengths)
    assert logits.shape == (2, 3) and model.embedding(waves, lengths).shape == (2, 4)
    logits.sum().backward()
    assert encoder.conv1.weight.grad is not None and encoder.conv1.weight.grad.abs().sum() > 0


def test_ser_model_rejects_a_head_for_another_encoder():
    with pytest.raises(ValueError, match="tiny"):
        SERModel(TinyEncoder(), EmotionHead(2, 6, 3))


def test_concat_head_sees_every_layer_and_rejects_unknown_combinations():
    head = EmotionHead(3, 4, num_classes=5, projection_dim=8, combination="concat").eval()
    assert head.projection.in_features == 12
    x = torch.randn(2, 3, 4)
    changed = x.clone()
    changed[:, 2] = torch.randn(2, 4)  # only the last layer differs
    assert not torch.allclose(head(x), head(changed))
    assert (
        EmotionHead(3, 4, 5, projection_dim=8, combination="concat", layers=[0, 1]).projection.in_features
        == 8
    )
    with pytest.raises(ValueError, match="combination"):
        EmotionHead(3, 4, 5, combination="sum")


def test_linear_head_is_one_linear_map_over_every_layer_and_plots_its_logits():
    head = EmotionHead(3, 4, num_classes=5, projection_dim=0, combination="concat", dropout=0.5).eval()
    assert head.projection is None and head.classifier.in_features == 12
    x = torch.randn(6, 3, 4)
    # linear in the normalised features: the logits of a mix of two inputs are the mix of their logits
    normed_a, normed_b = head.norm(x[:3]).flatten(1), head.norm(x[3:]).flatten(1)
    mixed = head.classifier(0.3 * normed_a + 0.7 * normed_b)
    assert torch.allclose(mixed, 0.3 * head(x[:3]) + 0.7 * head(x[3:]), atol=1e-5)
    # no hidden layer: what the app plots is the logits, which training moves (the input does not)
    assert torch.allclose(head.embedding(x), head(x))
    changed = x.clone()
    changed[:, 0] = torch.randn(6, 4)  # only the first layer differs
    assert not torch.allclose(head(x), head(changed))
    assert (
        EmotionHead(3, 4, 5, projection_dim=0, combination="mix").classifier.in_features == 4
    )  # mix: one layer's width
    with pytest.raises(ValueError, match="projection_dim"):
        EmotionHead(3, 4, 5, projection_dim=-1)


def test_head_defaults_are_the_configs():
    import inspect

    from serdemo.config import AdaptConfig

    params = inspect.signature(EmotionHead).parameters
    defaults = {name: params[name].default for name in ("projection_dim", "layers", "dropout", "combination")}
    config = AdaptConfig()
    expected = (config.projection_dim, config.layers, config.dropout, config.layer_combination)
    assert tuple(defaults.values()) == expected
