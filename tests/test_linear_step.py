import sys

import pytest
import torch
from torch.nn import functional

from serdemo.config import AdaptConfig
from serdemo.learn.linear_step import can_step_by_hand, weighted_ce_step
from serdemo.learn.model import EmotionHead
from serdemo.learn.pseudo_labels import HardPseudoLabels, NoPseudoLabels, SoftPseudoLabels, soft_cross_entropy
from serdemo.learn.reduced_head import ReducedHead, reduce_inputs
from tests.test_adapt import make_task, quick_config, run

ADAPT_MODULE = sys.modules["serdemo.learn.adapt"]  # the package re-exports the function under that name


def _head(layers="all"):
    torch.manual_seed(0)
    head = EmotionHead(3, 8, 5, projection_dim=0, layers=layers, combination="concat")
    with torch.no_grad():  # a non-trivial affine and bias, so every term of the fold carries weight
        head.norm.weight.uniform_(0.5, 1.5)
        head.norm.bias.uniform_(-0.5, 0.5)
        head.classifier.bias.uniform_(-0.5, 0.5)
    return head


def _autograd_step(net, policy, x, targets, weights, pseudo):
    """The training loop's autograd path (adapt._train_epoch), for reference."""
    logits = net(x)
    zero = logits.new_zeros(())
    supervised = soft_cross_entropy(logits[~pseudo], targets[~pseudo]).mean() if (~pseudo).any() else zero
    if pseudo.any():
        unlabeled = policy.unlabeled_loss(logits[pseudo], targets[pseudo], weights[pseudo])
    else:
        unlabeled = zero
    for p in net.parameters():
        p.grad = None
    (supervised + unlabeled).backward()
    return logits.detach(), supervised.detach(), unlabeled.detach()


@pytest.mark.parametrize("pseudo_share", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("layers", ["all", [0, 2]])
def test_hand_written_gradients_are_bit_identical_to_autograd(pseudo_share, layers):
    head = _head(layers)
    net = ReducedHead(head).train()
    policy = HardPseudoLabels(0.5)
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = reduce_inputs(head, 3 * torch.randn(40, 3, 8, generator=generator) + 1)
        targets = functional.one_hot(torch.randint(0, 5, (40,), generator=generator), 5).float()
        weights = (torch.rand(40, generator=generator) > 0.3).float()  # some accepted, some not
        pseudo = torch.rand(40, generator=generator) < pseudo_share
        expected = _autograd_step(net, policy, x, targets, weights, pseudo)
        reference = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
        for p in net.parameters():
            p.grad = None
        got = weighted_ce_step(net, x, targets, weights, pseudo)
        grads = {name: p.grad for name, p in net.named_parameters() if p.grad is not None}
        assert set(grads) == set(reference)  # the unused layer weights get no gradient, as with autograd
        for name, grad in reference.items():
            assert torch.equal(grads[name], grad), name
        for value, reference_value in zip(got, expected, strict=True):
            assert torch.equal(value, reference_value)


def test_only_a_reduced_linear_head_under_a_weighted_cross_entropy_is_stepped_by_hand():
    config = AdaptConfig()
    linear = ReducedHead(_head())
    hard, none = HardPseudoLabels(0.5), NoPseudoLabels()
    assert can_step_by_hand(linear, hard) and can_step_by_hand(linear, none)
    assert not can_step_by_hand(linear, HardPseudoLabels(0.5, mixup=True))
    assert not can_step_by_hand(linear, SoftPseudoLabels(config.lambda_a, config.lambda_h))
    assert not can_step_by_hand(_head(), hard)  # raw features: the per-step LayerNorm needs autograd
    projected = EmotionHead(3, 8, 5, projection_dim=4, combination="concat")
    dropped = EmotionHead(3, 8, 5, projection_dim=0, dropout=0.2, combination="concat")
    assert not can_step_by_hand(ReducedHead(projected), hard)
    assert not can_step_by_hand(ReducedHead(dropped), hard)


@pytest.mark.parametrize("policy", ["hard", "none"])
def test_adapt_trains_the_same_model_with_and_without_autograd(policy, monkeypatch):
    task = make_task(seed=5)
    config = quick_config(
        layer_combination="concat", projection_dim=0, dropout=0.0, epochs=7, window=3, policy=policy
    )
    by_hand = run(task, config)
    monkeypatch.setattr(ADAPT_MODULE, "can_step_by_hand", lambda *args: False)
    with_autograd = run(task, config)
    assert by_hand.best_epoch == with_autograd.best_epoch and by_hand.best_score == with_autograd.best_score
    assert [row["losses"] for row in by_hand.history] == [row["losses"] for row in with_autograd.history]
    for name, value in with_autograd.model.state_dict().items():
        assert torch.equal(by_hand.model.state_dict()[name], value), name
