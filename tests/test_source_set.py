"""The shipped source set's file: int8 vectors close to the originals, older float16 files still read."""

from __future__ import annotations

import numpy as np
import pytest

from serdemo.app.config import ServiceError
from serdemo.app.source_set import SourceSet, dequantize, quantize
from serdemo.learn import build_clipset


def _part(rng: np.random.Generator, n: int, offset: int) -> object:
    features = rng.normal(size=(n, 3, 32)).astype(np.float32) * rng.uniform(0.1, 5, size=(1, 3, 32))
    return build_clipset(
        ids=[f"c{offset + i}" for i in range(n)],
        languages=["en"] * n,
        speakers=[f"s{i % 3}" for i in range(n)],
        labels=rng.integers(0, 5, n),
        features=features.astype(np.float32),
    )


@pytest.fixture
def source() -> SourceSet:
    rng = np.random.default_rng(0)
    return SourceSet("en", _part(rng, 40, 0), _part(rng, 10, 40), _part(rng, 10, 50), paths={})


def test_quantized_features_are_within_half_a_step_of_each_features_range():
    x = np.random.default_rng(1).normal(size=(200, 7, 16)).astype(np.float32) * 3
    x[:, 0, 0] = 2.5  # a constant feature comes back exactly
    codes, low, step = quantize(x)
    assert codes.dtype == np.uint8
    back = dequantize(codes, low, step)
    assert np.all(np.abs(back - x) <= step / 2 + 1e-5)
    assert np.all(back[:, 0, 0] == 2.5)
    varying = x.max(axis=0) > x.min(axis=0)
    assert np.all(step[varying] <= (x.max(axis=0) - x.min(axis=0))[varying] / 255 * (1 + 1e-5))


@pytest.mark.parametrize("precision", ["int8", "float16", "float32"])
def test_every_precision_reads_back_the_same_clips_and_nearly_the_same_vectors(tmp_path, source, precision):
    path = tmp_path / "set.npz"
    source.save(path, "enc/1", precision)
    loaded = SourceSet.load(path, "enc/1")
    scale = max(np.abs(getattr(source, part).features).max() for part in SourceSet.PARTS)
    for part in SourceSet.PARTS:
        a, b = getattr(source, part), getattr(loaded, part)
        assert a.ids == b.ids and np.array_equal(a.labels, b.labels) and list(a.speakers) == list(b.speakers)
        # int8: half a step, 1/510 of a feature's range (at most 2 * scale); float16: 11 bits of mantissa
        tolerance = {"int8": 1 / 255, "float16": 1e-3, "float32": 0.0}[precision] * scale
        assert np.abs(a.features - b.features).max() <= tolerance + 1e-7
    with pytest.raises(ServiceError, match="--source-corpus"):
        SourceSet.load(path, "another/encoder")


def test_int8_is_the_default_and_smaller_than_float16(tmp_path):
    rng = np.random.default_rng(2)
    source = SourceSet("en", _part(rng, 300, 0), _part(rng, 50, 300), _part(rng, 50, 350), paths={})
    source.save(tmp_path / "default.npz", "enc/1")
    source.save(tmp_path / "half.npz", "enc/1", "float16")
    with np.load(tmp_path / "default.npz") as data:
        assert "features_int8" in data and "features" not in data
    assert (tmp_path / "default.npz").stat().st_size < 0.7 * (tmp_path / "half.npz").stat().st_size
    with pytest.raises(ValueError, match="vectors must be int8, float16 or float32"):
        source.save(tmp_path / "x.npz", "enc/1", "int4")


def test_the_shipped_set_is_embedded_as_the_app_embeds_and_carries_its_training_copies():
    """The installed app's first model trains on this file: it must match the default configuration."""
    from serdemo.app import ASSETS
    from serdemo.config import AdaptConfig

    path = ASSETS / "source_set.npz"
    config = AdaptConfig()
    assert path.stat().st_size <= 20e6  # the repository stays reasonable
    with np.load(path) as data:
        assert str(data["encoder"]).endswith("/" + config.frontend), "rebuild: scripts/build_source_set.py"
        ids, part = data["ids"].tolist(), data["part"]
    train = [i for i, p in zip(ids, part, strict=True) if p == 0]
    originals = [i for i in train if "#aug" not in i]
    assert len(train) == len(originals) * (1 + config.augment_copies), "rebuild: scripts/build_source_set.py"
    assert not any("#aug" in i for i, p in zip(ids, part, strict=True) if p != 0)  # copies train only
