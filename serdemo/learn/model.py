"""The classifier: a layer-weighted (projection or linear) head over encoder features, and encoder + head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from serdemo.config import AdaptConfig
from serdemo.encoders.base import UtteranceEncoder, mean_std_pool


class EmotionHead(nn.Module):
    """Utterance features of every encoder layer -> emotion logits.

    A learnable softmax-weighted sum over layers (the SUPERB "featurizer", Yang et al., 2021) lets
    training pick the layers that carry emotion; then LayerNorm -> Dropout -> Linear projection ->
    ReLU gives the learned representation (:meth:`embedding`), and a Linear layer gives the logits
    whose softmax is the paper's classifier (Agarla et al., 2023). With ``projection_dim=0`` the head
    is linear (a linear probe): LayerNorm -> Dropout -> Linear to the logits.

    Args:
        num_layers: L, layers in the input (N, L, F).
        feature_dim: F, size of one layer's utterance vector (2 * D for mean+std pooling).
        num_classes: C, emotions predicted.
        projection_dim: P, size of the learned representation; 0 for a linear head (no projection,
            no ReLU: normalised features -> Dropout -> Linear to the logits, a linear probe).
        layers: ``"all"`` or the indices of the layers to use (others are ignored).
        dropout: dropout probability before the projection.
        combination: ``"mix"`` for the softmax-weighted sum over layers, or ``"concat"`` to
            LayerNorm each selected layer and concatenate them, so the projection sees every
            layer (larger projection, higher UA across languages: docs/representation.md).

    Example:
        >>> head = EmotionHead(num_layers=3, feature_dim=8, num_classes=5, projection_dim=4)
        >>> head(torch.zeros(2, 3, 8)).shape, head.embedding(torch.zeros(2, 3, 8)).shape
        (torch.Size([2, 5]), torch.Size([2, 4]))

    """

    def __init__(
        self,
        num_layers: int,
        feature_dim: int,
        num_classes: int,
        projection_dim: int = AdaptConfig.projection_dim,
        layers: str | Sequence[int] = AdaptConfig.layers,
        dropout: float = AdaptConfig.dropout,
        combination: str = AdaptConfig.layer_combination,
    ) -> None:
        super().__init__()
        if num_layers < 1 or feature_dim < 1 or num_classes < 2:
            raise ValueError(
                f"need num_layers, feature_dim >= 1 and num_classes >= 2, got "
                f"{num_layers}, {feature_dim}, {num_classes}"
            )
        selected = list(range(num_layers)) if layers == "all" else [int(i) for i in layers]
        bad = [i for i in selected if not -num_layers <= i < num_layers]
        if not selected or bad:
            raise ValueError(f"layers {bad or selected} do not exist: the encoder has {num_layers} layers")
        if projection_dim < 0:
            raise ValueError(f"projection_dim must be >= 1, or 0 for a linear head, got {projection_dim}")
        if combination not in ("mix", "concat"):
            raise ValueError(f"combination must be 'mix' or 'concat', got {combination!r}")
        self.num_layers, self.feature_dim, self.num_classes = num_layers, feature_dim, num_classes
        self.combination, self.projection_dim = combination, projection_dim
        self.register_buffer(
            "layer_index", torch.tensor([i % num_layers for i in selected]), persistent=False
        )
        self.layer_logits = nn.Parameter(torch.zeros(len(selected)))  # equal weights at the start
        self.norm = nn.LayerNorm(feature_dim)
        self.dropout = nn.Dropout(dropout)
        width = feature_dim * (len(selected) if combination == "concat" else 1)
        # projection None = linear head: the classifier reads the normalised features themselves
        self.projection = nn.Linear(width, projection_dim) if projection_dim else None
        self.classifier = nn.Linear(projection_dim or width, num_classes)

    @property
    def layer_weights(self) -> torch.Tensor:
        """Softmax weight of each selected layer, (len(layers),): which layers the head listens to.

        Unused (and uniform) when ``combination == "concat"``: there every selected layer counts in full.
        """
        return torch.softmax(self.layer_logits, dim=0)

    def _combined(self, features: torch.Tensor) -> torch.Tensor:
        """Normalised, combined layers (N, F) or (N, len(layers) * F), before dropout."""
        if features.ndim != 3 or features.shape[1:] != (self.num_layers, self.feature_dim):
            raise ValueError(
                f"expected features (N, {self.num_layers}, {self.feature_dim}), got {tuple(features.shape)}: "
                "were they made by the encoder this head was trained on?"
            )
        chosen = features.index_select(1, self.layer_index)
        if self.combination == "concat":
            # LayerNorm per layer: layers differ in scale, and no layer should drown the others
            return self.norm(chosen).flatten(1)
        return self.norm(torch.einsum("l,nlf->nf", self.layer_weights, chosen))

    def embedding(self, features: torch.Tensor) -> torch.Tensor:
        """Return the learned representation of features (N, L, F), for plots.

        That is the projection (N, P); a linear head (``projection_dim=0``) has no hidden layer, so
        its learned representation is the logits (N, C): the input features do not change with training.
        """
        hidden = self._hidden(features)
        return hidden if self.projection is not None else self.classifier(hidden)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (N, C) of features (N, L, F)."""
        return self.classifier(self._hidden(features))

    def _hidden(self, features: torch.Tensor) -> torch.Tensor:
        """The classifier's input: the ReLU projection, or the dropped-out features of a linear head."""
        x = self.dropout(self._combined(features))
        return x if self.projection is None else torch.relu(self.projection(x))


class SERModel(nn.Module):
    """Encoder + :class:`EmotionHead`, trained end to end on waveforms (the paper's setting).

    Args:
        encoder: any :class:`~serdemo.encoders.base.UtteranceEncoder`.
        head: a head built for ``encoder.num_layers`` layers of ``2 * encoder.hidden_size`` features.

    """

    def __init__(self, encoder: UtteranceEncoder, head: EmotionHead) -> None:
        super().__init__()
        if (head.num_layers, head.feature_dim) != (encoder.num_layers, 2 * encoder.hidden_size):
            raise ValueError(
                f"head expects ({head.num_layers}, {head.feature_dim}) features but encoder "
                f"{encoder.name!r} gives ({encoder.num_layers}, {2 * encoder.hidden_size})"
            )
        self.encoder = encoder
        self.head = head

    def features(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-layer mean+std utterance vectors (B, L, 2D) of a padded batch (B, S)."""
        hidden, frame_lengths = self.encoder(waveforms, lengths)
        return mean_std_pool(hidden, frame_lengths)

    def embedding(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Return the learned representation (B, P) of a padded batch."""
        return self.head.embedding(self.features(waveforms, lengths))

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of a padded batch of 16 kHz waveforms."""
        return self.head(self.features(waveforms, lengths))


def make_head(config: AdaptConfig, num_layers: int, feature_dim: int) -> EmotionHead:
    """The head ``config`` describes, for inputs of ``num_layers`` x ``feature_dim``."""
    return EmotionHead(
        num_layers,
        feature_dim,
        len(config.classes),
        config.projection_dim,
        config.layers,
        config.dropout,
        config.layer_combination,
    )
