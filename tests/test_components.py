import numpy as np
import pytest
import torch
from torch.nn import functional

from serdemo.config import AdaptConfig, ConfigError
from serdemo.learn import predict_proba
from serdemo.learn.components import ComponentHead, _balanced_sample, fit_components
from serdemo.learn.linear_step import can_step_by_hand, weighted_ce_step
from serdemo.learn.model import EmotionHead
from serdemo.learn.pseudo_labels import HardPseudoLabels
from serdemo.learn.reduced_head import ReducedHead, reduce_inputs
from serdemo.metrics import unweighted_accuracy
from tests.test_adapt import make_task, quick_config, run
from tests.test_linear_step import _autograd_step, _head


def test_components_span_the_leading_principal_directions_and_leave_torch_random_state_alone():
    generator = torch.Generator().manual_seed(0)
    # 3 strong directions in 40 dimensions, plus weak noise
    strong = torch.linalg.qr(torch.randn(40, 3, generator=generator))[0].t()
    rows = torch.randn(500, 3, generator=generator) * torch.tensor([10.0, 6.0, 3.0]) @ strong
    rows += 0.01 * torch.randn(500, 40, generator=generator) + 5.0
    before = torch.get_rng_state()
    components = fit_components(rows, 3, seed=1)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.allclose(components.basis @ components.basis.t(), torch.eye(3), atol=1e-5)
    # the fitted subspace is the strong one: projecting onto it keeps each strong direction whole
    assert torch.allclose(torch.linalg.norm(strong @ components.basis.t(), dim=1), torch.ones(3), atol=1e-3)
    assert torch.allclose(components.mean, rows.mean(0), atol=1e-4)
    # ... in a rotated basis: every coordinate mixes the directions (on the principal axes themselves the
    # projections would be uncorrelated), so that Adam's per-coordinate steps do not whiten them
    covariance = torch.cov(components.project(rows).t())
    assert (covariance - torch.diag(torch.diag(covariance))).abs().max() > 0.1 * covariance.diag().max()
    again = fit_components(rows, 3, seed=1)
    assert torch.equal(again.basis, components.basis)
    assert fit_components(rows, 100, seed=1).basis.shape == (40, 40)  # cut to what the rows can hold


def test_a_large_group_does_not_crowd_the_other_out_of_the_fitted_sample():
    groups = np.array([0] * 100 + [1] * 10_000)
    sample = _balanced_sample(len(groups), groups, 1000, np.random.default_rng(0))
    assert len(sample) == len(set(sample)) == 1000
    assert (groups[sample] == 0).sum() == 100  # all of the small group, the rest from the large one
    assert np.array_equal(_balanced_sample(50, groups[:50], 1000, np.random.default_rng(0)), np.arange(50))


def test_a_component_head_folds_back_into_the_emotion_head_it_stands_for():
    head = _head()  # non-trivial LayerNorm affine: the fold must absorb it
    reduced = reduce_inputs(head, 3 * torch.randn(200, 3, 8, generator=torch.Generator().manual_seed(2)) + 1)
    components = fit_components(reduced, 10, seed=0)
    net = ComponentHead(head, components)
    projected = components.project(reduced)
    with torch.no_grad():
        start = net(projected)
        net.linear.weight.add_(
            torch.randn(net.linear.weight.shape, generator=torch.Generator().manual_seed(3))
        )
        net.linear.bias.sub_(0.5)
        trained = net(projected)
    # it starts as the head seen in the components: the head's logits on the rows projected onto them
    flat = reduced.flatten(1)
    on_subspace = (flat - components.mean) @ components.basis.t() @ components.basis + components.mean
    with torch.no_grad():
        assert torch.allclose(start, ReducedHead(head)(on_subspace.view_as(reduced)), atol=1e-4)
        net.fold_into(head)
        assert torch.allclose(ReducedHead(head)(reduced), trained, atol=1e-4)
        assert torch.equal(head.norm.weight, torch.ones(8)) and torch.equal(head.norm.bias, torch.zeros(8))


def test_a_component_head_is_stepped_by_hand_with_autograds_exact_gradients():
    head = _head()
    generator = torch.Generator().manual_seed(4)
    reduced = reduce_inputs(head, torch.randn(60, 3, 8, generator=generator))
    components = fit_components(reduced, 6, seed=0)
    net = ComponentHead(head, components).train()
    policy = HardPseudoLabels(0.5)
    assert can_step_by_hand(net, policy)
    x = components.project(reduced)
    targets = functional.one_hot(torch.randint(0, 5, (60,), generator=generator), 5).float()
    weights = (torch.rand(60, generator=generator) > 0.3).float()
    pseudo = torch.rand(60, generator=generator) < 0.5
    expected = _autograd_step(net, policy, x, targets, weights, pseudo)
    reference = {name: p.grad.clone() for name, p in net.named_parameters()}
    got = weighted_ce_step(net, x, targets, weights, pseudo)
    assert set(reference) == {"linear.weight", "linear.bias"}  # the head's own parameters are not trained
    for name, p in net.named_parameters():
        assert torch.equal(p.grad, reference[name]), name
    for value, reference_value in zip(got, expected, strict=True):
        assert torch.equal(value, reference_value)
    with pytest.raises(ValueError, match="linear head"):
        ComponentHead(EmotionHead(3, 8, 5, projection_dim=4, combination="concat"), components)


def test_adapt_on_components_keeps_a_full_width_head_that_scores_what_training_scored():
    task = make_task(seed=5)
    config = quick_config(
        layer_combination="concat", projection_dim=0, dropout=0.0, epochs=9, window=3, input_components=12
    )
    result = run(task, config)
    assert isinstance(result.model, EmotionHead) and result.best_epoch is not None
    # the saved head, on the usual features, agrees with the validation score that chose its epoch
    scores = [
        unweighted_accuracy(clips.labels, predict_proba(result, clips).argmax(1))
        for clips in task["validation"].values()
    ]
    assert result.best_score == pytest.approx(np.mean(scores))
    assert result.best_score > 0.5  # 3 classes: it learned
    full_width = run(task, config.replace(input_components=0))
    assert not torch.equal(full_width.model.classifier.weight, result.model.classifier.weight)
    with pytest.raises(ConfigError, match="input_components"):
        AdaptConfig(input_components=-1)
