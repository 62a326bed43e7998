import numpy as np
import pytest
import torch

from serdemo.learn.model import EmotionHead
from serdemo.learn.reduced_head import ReducedHead, can_reduce, reduce_inputs
from tests.test_adapt import make_task, quick_config, run


def _grads(module, x):
    module.zero_grad()
    module(x).square().sum().backward()
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("projection_dim", [0, 6])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_reduced_head_gives_the_heads_logits_and_gradients(projection_dim, dropout):
    torch.manual_seed(0)
    head = EmotionHead(3, 8, 5, projection_dim, layers=[0, 2], dropout=dropout, combination="concat")
    with torch.no_grad():  # non-trivial affine, so folding it into the linear layer is exercised
        head.norm.weight.uniform_(0.5, 1.5)
        head.norm.bias.uniform_(-0.5, 0.5)
    features = 3 * torch.randn(10, 3, 8) + 1
    reduced = reduce_inputs(head, features)
    view = ReducedHead(head)
    assert reduced.shape == (10, 2, 8)
    view.eval()  # eval: dropout off in both, so the outputs must agree exactly
    assert not head.training
    torch.testing.assert_close(view(reduced), head(features), atol=1e-5, rtol=1e-5)
    expected = _grads(head, features)
    got = _grads(view, reduced)
    assert set(got) == {f"head.{name}" for name in expected}
    for name, grad in expected.items():
        torch.testing.assert_close(got[f"head.{name}"], grad, atol=1e-4, rtol=1e-4)
    view.train()
    assert head.training  # training mode reaches the shared head (its dropout)


def test_only_a_concat_head_can_be_reduced_and_shape_errors_say_so():
    mix = EmotionHead(3, 8, 5, combination="mix")
    assert not can_reduce(mix) and not can_reduce(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="concat"):
        ReducedHead(mix)
    concat = EmotionHead(3, 8, 5, combination="concat")
    with pytest.raises(ValueError, match="encoder this head was trained on"):
        reduce_inputs(concat, torch.zeros(4, 2, 8))


def test_adapt_on_reduced_inputs_trains_the_same_model_as_on_raw_features():
    task = make_task(seed=3)
    config = quick_config(layer_combination="concat", projection_dim=0, dropout=0.0, epochs=7, window=3)
    fast, slow = run(task, config), run(task, config, reduce=False)
    assert fast.best_epoch == slow.best_epoch and fast.best_score == slow.best_score
    assert [r["accepted"] for r in fast.rounds] == [r["accepted"] for r in slow.rounds] and fast.rounds
    for name, value in slow.model.state_dict().items():
        torch.testing.assert_close(fast.model.state_dict()[name], value, atol=1e-4, rtol=1e-4)
    # the saved model is the head itself, reading raw features
    assert isinstance(fast.model, EmotionHead)
    assert np.isfinite(fast.history[-1]["losses"]["loss"])


def test_a_run_of_pool_rows_is_a_view_and_other_rows_a_copy():
    from serdemo.learn.inference import Inputs

    features = torch.randn(8, 2, 3)
    inputs = Inputs.frozen_tensor(features, torch.device("cpu"))
    run_of_rows = inputs.subset(np.arange(3, 7))
    assert torch.equal(run_of_rows.features, features[3:7])
    assert run_of_rows.features.data_ptr() == features[3].data_ptr()  # no copy of the unlabeled pool
    scattered = inputs.subset(np.array([5, 1, 2]))
    assert torch.equal(scattered.features, features[[5, 1, 2]])
    assert len(inputs.subset(np.arange(0))) == 0
