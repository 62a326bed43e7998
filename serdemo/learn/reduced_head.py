"""Train a concat :class:`~serdemo.learn.model.EmotionHead` on its per-layer normalised input, computed once.

In frozen mode the features never change, and a concat head starts every forward pass with work
whose result never changes either: pick the layers, then LayerNorm each one over its F values. Only
the LayerNorm's affine (scale, shift) is learned. :class:`ReducedHead` computes the parameter-free
part once per run (:func:`reduce_inputs`) and keeps the learned part in every step, folded into the
first linear layer where no dropout sits between them, so it gives the same logits and gradients as
the head itself (up to float rounding) at a fraction of the cost per step (bench/adapt_round.py).
The head's parameters are shared, not copied: training the view trains the head, and the head is
what is saved and served.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from serdemo.learn.model import EmotionHead

CHUNK_ROWS = 512  # rows normalised at a time: bounds the temporaries (15 MB for whisper-base's 7 x 1024)


def can_reduce(model: nn.Module) -> bool:
    """True for a head whose input normalisation is parameter-free up to an affine: a concat EmotionHead."""
    return isinstance(model, EmotionHead) and model.combination == "concat"


def reduce_inputs(head: EmotionHead, features: torch.Tensor) -> torch.Tensor:
    """Selected layers of ``features`` (N, L, F), each LayerNormed without affine: (N, L', F).

    Raises:
        ValueError: where ``features`` do not fit the head (the head's own message).

    """
    if features.ndim != 3 or features.shape[1:] != (head.num_layers, head.feature_dim):
        head._combined(features[:1])  # raises the head's explanation of the shape mismatch
    out = torch.empty(
        (len(features), len(head.layer_index), head.feature_dim), dtype=features.dtype, device=features.device
    )
    every_layer = torch.equal(head.layer_index.cpu(), torch.arange(head.num_layers))  # the default
    for start in range(0, len(features), CHUNK_ROWS):
        chosen = features[start : start + CHUNK_ROWS]
        chosen = chosen if every_layer else chosen.index_select(1, head.layer_index)
        out[start : start + CHUNK_ROWS] = functional.layer_norm(
            chosen, (head.feature_dim,), eps=head.norm.eps
        )
    return out


def fold_affine(layer: nn.Linear, head: EmotionHead) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``head``'s per-layer LayerNorm affine folded into ``layer``, its first linear layer on reduced inputs.

    Returns ``(weight, folded, bias)``: the layer's weight viewed per layer (out, L', F), and the weight
    (out, L'F) and bias that give ``layer(affine(x))`` from reduced rows ``x`` directly: (out, L'F) work per
    step instead of (N, L'F). :class:`ReducedHead`, the hand-written step and the component head share it.
    """
    weight = layer.weight.view(layer.out_features, -1, head.feature_dim)
    folded = (weight * head.norm.weight).flatten(1)
    bias = layer.bias + (weight * head.norm.bias).sum((1, 2))
    return weight, folded, bias


class ReducedHead(nn.Module):
    """A concat :class:`EmotionHead` that reads :func:`reduce_inputs`' output instead of raw features.

    Args:
        head: the head to train; its parameters are used (and trained) in place.

    Example:
        >>> head = EmotionHead(3, 8, 5, projection_dim=0, combination="concat").eval()
        >>> x = torch.randn(4, 3, 8)
        >>> torch.allclose(ReducedHead(head)(reduce_inputs(head, x)), head(x), atol=1e-6)
        True

    """

    def __init__(self, head: EmotionHead) -> None:
        super().__init__()
        if not can_reduce(head):
            raise ValueError(
                "only a concat EmotionHead has a per-layer normalisation that can be precomputed"
            )
        self.head = head

    def forward(self, reduced: torch.Tensor) -> torch.Tensor:
        """Logits (N, C) of reduced inputs (N, L', F): the head's affine, dropout, projection, classifier."""
        head = self.head
        first = head.classifier if head.projection is None else head.projection
        if head.training and head.dropout.p > 0:  # dropout sits between the affine and the first layer
            x = head.dropout(torch.addcmul(head.norm.bias, reduced, head.norm.weight).flatten(1))
            hidden = first(x)
        else:
            _, folded, bias = fold_affine(first, head)
            hidden = functional.linear(reduced.flatten(1), folded, bias)
        return hidden if head.projection is None else head.classifier(torch.relu(hidden))
