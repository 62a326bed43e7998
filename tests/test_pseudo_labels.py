import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from serdemo.config import AdaptConfig
from serdemo.learn.pseudo_labels import (
    HardPseudoLabels,
    NoPseudoLabels,
    SoftPseudoLabels,
    balance_by_group,
    balance_to_prior,
    entropy_term,
    make_policy,
    mixup,
    prior_matching,
    soft_cross_entropy,
)


def test_prior_matching_is_zero_when_mean_prediction_equals_prior():
    probs = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    assert prior_matching(probs, torch.tensor([0.5, 0.5])).item() == pytest.approx(0.0, abs=1e-7)
    skewed = torch.tensor([[0.7, 0.3], [0.5, 0.5]])
    assert prior_matching(skewed, torch.tensor([0.6, 0.4])).item() == pytest.approx(0.0, abs=1e-7)


def test_prior_matching_known_two_class_value():
    # mean prediction (0.8, 0.2) against a uniform prior: 0.5 log(0.5/0.8) + 0.5 log(0.5/0.2)
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3]])
    expected = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert prior_matching(probs, torch.tensor([0.5, 0.5])).item() == pytest.approx(expected, rel=1e-5)


def test_entropy_term_zero_for_one_hot_log_c_for_uniform():
    assert entropy_term(torch.eye(5)).item() == pytest.approx(0.0, abs=1e-7)
    assert entropy_term(torch.full((3, 5), 0.2)).item() == pytest.approx(math.log(5), rel=1e-6)


def test_soft_cross_entropy_equals_cross_entropy_for_one_hot():
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    expected = F.cross_entropy(logits, labels, reduction="none")
    assert torch.allclose(soft_cross_entropy(logits, F.one_hot(labels, 4).float()), expected, atol=1e-6)


def test_mixup_makes_convex_combinations_dominated_by_each_item():
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    y = torch.eye(4)
    mixed_x, mixed_y, lam, perm = mixup(x, y, alpha=1.0, rng=np.random.default_rng(3))
    assert 0.5 <= lam <= 1.0
    assert torch.allclose(mixed_x, lam * x + (1 - lam) * x[perm])
    assert torch.allclose(mixed_y, lam * y + (1 - lam) * y[perm])
    assert torch.allclose(mixed_y.sum(1), torch.ones(4))
    assert sorted(perm.tolist()) == [0, 1, 2, 3]
    again = mixup(x, y, alpha=1.0, rng=np.random.default_rng(3))
    assert again[2] == lam and torch.equal(again[3], perm)


def test_hard_policy_masks_exactly_by_tau():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.49, 0.41, 0.1], [0.1, 0.2, 0.7], [0.34, 0.33, 0.33]])
    policy = HardPseudoLabels(tau=0.5)
    targets, weights = policy.select(probs)
    assert weights.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert targets.argmax(1).tolist() == [0, 0, 2, 0] and torch.equal(targets.sum(1), torch.ones(4))


def test_zero_weights_remove_items_from_the_loss():
    logits = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss = HardPseudoLabels(tau=0.5).unlabeled_loss(logits, targets, torch.tensor([1.0, 0.0]))
    # weighted mean over the batch: (ce_0 * 1 + ce_1 * 0) / 2
    assert loss.item() == pytest.approx(F.cross_entropy(logits[:1], torch.tensor([0])).item() / 2)


def test_soft_policy_keeps_probabilities_and_adds_regularisers():
    probs = torch.tensor([[0.6, 0.4], [0.2, 0.8]])
    policy = SoftPseudoLabels(lambda_a=0.8, lambda_h=0.4)
    targets, weights = policy.select(probs)
    assert torch.equal(targets, probs) and weights.tolist() == [1.0, 1.0]
    logits = torch.log(probs)
    loss = policy.unlabeled_loss(logits, targets, weights)
    ce = soft_cross_entropy(logits, targets).mean()
    expected = ce + 0.8 * prior_matching(probs, torch.tensor([0.5, 0.5])) + 0.4 * entropy_term(probs)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_make_policy_follows_the_config():
    assert isinstance(make_policy(AdaptConfig(policy="none")), NoPseudoLabels)
    hard = make_policy(AdaptConfig(policy="hard", tau=0.7))
    assert isinstance(hard, HardPseudoLabels) and hard.tau == 0.7
    assert make_policy(AdaptConfig(policy="hard", hard_mixup=True)).uses_mixup
    assert not make_policy(AdaptConfig(policy="hard", hard_mixup=False)).uses_mixup  # the paper's
    soft = make_policy(AdaptConfig(policy="soft", lambda_a=0.1))
    assert isinstance(soft, SoftPseudoLabels) and soft.lambda_a == 0.1 and soft.uses_mixup
    assert NoPseudoLabels().select(torch.ones(3, 2) / 2)[1].sum() == 0


def test_every_policy_has_a_builder():
    from serdemo.config import Policy
    from serdemo.learn.pseudo_labels import POLICIES

    assert set(POLICIES) == {p.value for p in Policy}


def biased_probs(rng, n=200, classes=4, bias_to=0):
    """Probabilities of a model that ranks clips well per class but over-predicts one class."""
    labels = np.arange(n) % classes
    logits = rng.normal(size=(n, classes)) + 3.0 * np.eye(classes)[labels]
    logits[:, bias_to] += 4.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels


def test_balancing_matches_the_prior_keeps_rows_distributions_and_fixes_a_class_bias():
    rng = np.random.default_rng(0)
    probs, labels = biased_probs(rng)
    prior = np.full(4, 0.25)
    balanced = balance_to_prior(probs, prior)
    np.testing.assert_allclose(balanced.mean(0), prior, atol=1e-3)
    np.testing.assert_allclose(balanced.sum(1), 1.0, rtol=1e-6)
    # it is a per-class shift of every clip's logits: log q - log p = bias[class] - log Z[clip]
    shift = np.log(balanced) - np.log(probs)
    np.testing.assert_allclose(
        shift - shift[:, :1], np.broadcast_to(shift[:1] - shift[:1, :1], shift.shape), atol=1e-5
    )
    assert (probs.argmax(1) == labels).mean() < 0.5  # the bias wins most argmaxes ...
    assert (balanced.argmax(1) == labels).mean() > 0.9  # ... until the prior is matched


def test_balancing_follows_a_non_uniform_prior_and_leaves_a_matching_pool_alone():
    rng = np.random.default_rng(1)
    probs, _ = biased_probs(rng, classes=3)
    prior = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(balance_to_prior(probs, prior).mean(0), prior, atol=1e-3)
    already = balance_to_prior(probs, prior)
    np.testing.assert_allclose(balance_to_prior(already, prior), already, atol=1e-5)


def test_groups_are_balanced_apart_small_ones_together_per_language_and_tiny_ones_not_at_all():
    rng = np.random.default_rng(2)
    big, _ = biased_probs(rng, n=40, classes=2, bias_to=0)
    other, _ = biased_probs(rng, n=40, classes=2, bias_to=1)
    small, _ = biased_probs(rng, n=12, classes=2, bias_to=0)  # 3 speakers of 4 clips, one language
    tiny, _ = biased_probs(rng, n=3, classes=2, bias_to=0)  # the only clips of another language
    probs = np.concatenate([big, other, small, tiny])
    groups = ["de/a"] * 40 + ["de/b"] * 40 + [f"de/s{i % 3}" for i in range(12)] + ["fr/x"] * 3
    languages = ["de"] * 92 + ["fr"] * 3
    out = balance_by_group(probs, np.array(groups), np.array(languages), np.full(2, 0.5), min_size=8)
    for rows in (slice(0, 40), slice(40, 80), slice(80, 92)):
        np.testing.assert_allclose(out[rows].mean(0), [0.5, 0.5], atol=1e-3)
    np.testing.assert_array_equal(out[92:], probs[92:])
    # one balancing over both big speakers together would differ from balancing each apart
    joint = balance_to_prior(probs[:80], np.full(2, 0.5))
    assert not np.allclose(joint, out[:80], atol=1e-3)
