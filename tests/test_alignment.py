import numpy as np
import pytest

from serdemo.research.alignment import CoralAligner


def correlated(rng, n, mixing, shift=0.0):
    return (rng.standard_normal((n, mixing.shape[0])) @ mixing + shift)[:, None, :]


def test_coral_gives_source_the_target_covariance_and_mean():
    rng = np.random.default_rng(0)
    source = correlated(rng, 4000, np.array([[2.0, 1.5, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 3.0]]), shift=5.0)
    target = correlated(rng, 4000, np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 0.5]]), shift=-1.0)
    aligned = CoralAligner(shrinkage=0.0).fit(source, target).transform(source)
    np.testing.assert_allclose(np.cov(aligned[:, 0].T), np.cov(target[:, 0].T), atol=0.05)
    np.testing.assert_allclose(aligned.mean(axis=0), target.mean(axis=0), atol=1e-6)


def test_coral_keeps_a_linear_class_boundary_usable_on_the_target():
    # two classes apart along one direction; the target domain shrinks that axis, stretches the
    # other and shifts both (a channel / language offset). Class means learned on the raw source
    # fail on the target; learned on the CORAL-aligned source they work.
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 600)
    base = rng.standard_normal((600, 2)) * 0.5 + np.c_[2.0 * labels - 1.0, np.zeros(600)]
    source, target = base[:, None, :], (base * [0.3, 4.0] + [5.0, -2.0])[:, None, :]

    def accuracy(train):
        means = np.stack([train[labels == k, 0].mean(axis=0) for k in (0, 1)])
        guess = np.linalg.norm(target[:, 0, None, :] - means[None], axis=2).argmin(axis=1)
        return (guess == labels).mean()

    aligned = CoralAligner(shrinkage=0.0).fit(source, target).transform(source)
    assert accuracy(source) < 0.7
    assert accuracy(aligned) > 0.9


def test_layers_are_aligned_independently_and_shapes_are_kept():
    rng = np.random.default_rng(2)
    source = rng.standard_normal((300, 3, 4)) * np.array([1.0, 4.0, 0.5])[None, :, None]
    target = rng.standard_normal((200, 3, 4))
    aligned = CoralAligner(shrinkage=0.0).fit(source, target).transform(source)
    assert aligned.shape == source.shape and aligned.dtype == np.float32
    np.testing.assert_allclose(aligned.std(axis=0), 1.0, atol=0.15)


def test_shrinkage_keeps_few_clips_in_many_dimensions_finite():
    rng = np.random.default_rng(3)
    source, target = rng.standard_normal((20, 1, 64)), 2 * rng.standard_normal((15, 1, 64))
    aligned = CoralAligner(shrinkage=0.5).fit(source, target).transform(source)
    assert np.isfinite(aligned).all()
    assert 1.0 < aligned.std() < 3.0


def test_bad_use_says_what_to_do():
    with pytest.raises(ValueError, match="same encoder"):
        CoralAligner().fit(np.zeros((5, 2, 3)), np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        CoralAligner().fit(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="shrinkage"):
        CoralAligner(shrinkage=2.0)
    with pytest.raises(RuntimeError, match="before fit"):
        CoralAligner().transform(np.zeros((2, 3)))
    aligner = CoralAligner().fit(
        np.random.default_rng(0).standard_normal((10, 3)), np.ones((10, 3)) + np.eye(10, 3)
    )
    with pytest.raises(ValueError, match="fitted on"):
        aligner.transform(np.zeros((2, 4)))
