"""Algorithm 1's default training step with its gradients written out: the same numbers as autograd, faster.

The default round trains a linear head (``projection_dim=0``, no dropout) on precomputed per-layer
normalised features (:mod:`serdemo.learn.reduced_head`) with a loss that is a weighted cross-entropy of
every row: human labels ``mean(CE)``, hard pseudo-labels ``mean(CE * w)``. For that case the gradient
has a closed form, and about half of a step's time went to autograd's bookkeeping, the masked indexing
of the batch and the loss's small tensors, not to the two matrix products that carry the work
(``bench/adapt_round.py``). :func:`weighted_ce_step` runs the same operations autograd would run, in the
same order, so the gradients are bit-identical to ``loss.backward()`` (``tests/test_linear_step.py``
checks it with ``torch.equal``): the trained head, the chosen epoch and every score stay what they were.
Other heads and policies (soft pseudo-labels, mixup, a projection, dropout) keep autograd.
"""

from __future__ import annotations

import torch
from torch import nn

from serdemo.learn.components import ComponentHead, can_use_components
from serdemo.learn.pseudo_labels import HardPseudoLabels, NoPseudoLabels, PseudoLabelPolicy
from serdemo.learn.reduced_head import ReducedHead, fold_affine


def can_step_by_hand(net: nn.Module, policy: PseudoLabelPolicy) -> bool:
    """True where :func:`weighted_ce_step` gives ``net``'s exact gradients under ``policy``."""
    weighted_ce = isinstance(policy, (HardPseudoLabels, NoPseudoLabels)) and not policy.uses_mixup
    return weighted_ce and (isinstance(net, ComponentHead) or can_use_components(net))


@torch.no_grad()
def weighted_ce_step(
    net: ReducedHead | ComponentHead,
    x: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    pseudo: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward a batch and set the head's ``.grad`` as ``(supervised + unlabeled).backward()`` would.

    ``supervised`` is ``mean(CE)`` over the human-labeled rows, ``unlabeled`` ``mean(CE * weights)``
    over the pseudo-labeled ones (HardPseudoLabels / NoPseudoLabels.unlabeled_loss), CE the soft
    cross-entropy against ``targets``. Gradients are set, not accumulated, so there is nothing to zero first.

    Args:
        net: a reduced linear head, or a component head (:func:`can_step_by_hand`).
        x: (B, L', F) reduced inputs of the batch, or (B, k) projected ones for a component head.
        targets: (B, C) probability targets.
        weights: (B,) pseudo-label weights (read on pseudo-labeled rows only).
        pseudo: (B,) True where the row's target is a pseudo-label.

    Returns:
        ``(logits, supervised, unlabeled)``, detached; a part without rows is a zero scalar.

    """
    if isinstance(net, ComponentHead):  # a plain linear layer: F.linear's forward and backward
        linear = net.linear
        logits = torch.addmm(linear.bias, x, linear.weight.t())
        grad_logits, supervised, unlabeled = _weighted_ce_grad(logits, targets, weights, pseudo)
        linear.weight.grad = grad_logits.t().mm(x)
        linear.bias.grad = grad_logits.sum(0)
        return logits, supervised, unlabeled
    head = net.head
    classifier, norm = head.classifier, head.norm
    # forward, as ReducedHead.forward: the LayerNorm affine folded into the classifier
    weight, folded, bias = fold_affine(classifier, head)
    logits = torch.addmm(bias, x.flatten(1), folded.t())
    grad_logits, supervised, unlabeled = _weighted_ce_grad(logits, targets, weights, pseudo)

    # d logits -> parameters: addmm's backward, then the fold's
    grad_folded = grad_logits.t().mm(x.flatten(1)).view_as(weight)
    grad_bias = grad_logits.sum(0, keepdim=True).view(-1)
    expanded = grad_bias.view(-1, 1, 1).expand_as(weight)  # SumBackward of (weight * norm.bias).sum
    classifier.weight.grad = (grad_folded * norm.weight + expanded * norm.bias).view_as(classifier.weight)
    classifier.bias.grad = grad_bias
    norm.weight.grad = (grad_folded * weight).sum((0, 1), keepdim=True).view_as(norm.weight)
    norm.bias.grad = (expanded * weight).sum((0, 1), keepdim=True).view_as(norm.bias)
    return logits, supervised, unlabeled


def _weighted_ce_grad(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, pseudo: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(d loss / d logits, supervised, unlabeled)`` of :func:`weighted_ce_step`'s loss."""
    log_probs = torch.log_softmax(logits, dim=-1)

    # d loss / d logits, as autograd forms it (mean -> mul by weights -> neg -> sum -> mul -> log_softmax),
    # for both parts at once: each row's upstream is 1/n of its part, times its weight if pseudo-labeled
    per_row = -(targets * log_probs).sum(dim=-1)
    human = ~pseudo
    humans = int(human.sum())
    parts = (humans, len(pseudo) - humans)
    scale = [logits.new_ones(()) / count if count else logits.new_zeros(()) for count in parts]
    upstream = torch.where(pseudo, scale[1] * weights, scale[0])
    grad_logits = torch._log_softmax_backward_data(
        (-upstream).unsqueeze(-1) * targets, log_probs, -1, log_probs.dtype
    )
    zero = logits.new_zeros(())
    supervised = per_row[human].mean() if parts[0] else zero
    unlabeled = (per_row[pseudo] * weights[pseudo]).mean() if parts[1] else zero
    return grad_logits, supervised, unlabeled
