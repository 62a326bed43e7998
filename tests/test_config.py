import json

import pytest

from serdemo.config import AdaptConfig, ConfigError, Policy
from serdemo.labels import EMOTIONS


def test_defaults_are_the_papers():
    config = AdaptConfig()
    assert config.classes == EMOTIONS
    assert (config.epochs, config.window, config.tau) == (100, 30, 0.5)
    assert (config.lr, config.lr_decay, config.lr_decay_every, config.batch_size) == (1e-3, 0.95, 10, 100)
    assert (config.lambda_a, config.lambda_h) == (0.8, 0.4)
    assert (config.crop_seconds, config.seeds, config.rebalance) == (2.0, (0, 1, 2), True)
    assert (config.policy, config.mode, config.device, config.normalization) == (
        "hard",
        "frozen",
        "cpu",
        # docs/results.md (issue 9): holds where speakers show one emotion, needs no speaker id, and keeps
        # the first model's answers on a language it has no statistics for (issue 16 section)
        "nap",
    )
    assert (config.nap_dim, config.pseudo_balance, config.selection) == (5, "auto-language", "validation")
    assert (config.select_after_first_round, config.propagation) == (True, 0.0)
    # docs/representation.md: a linear head over all layers concatenated beat the 256-d layer-mix head
    assert (config.projection_dim, config.layer_combination, config.weight_decay, config.dropout) == (
        0,
        "concat",
        1e-2,
        0.0,
    )


def test_json_round_trip_keeps_every_field():
    config = AdaptConfig(
        policy="soft", classes=("anger", "happiness", "neutral", "sadness"), layers=(0, 3), seed=2
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["layers"] == [0, 3]
    assert AdaptConfig.from_dict(data) == config


def test_enum_values_are_accepted_and_stored_as_strings():
    config = AdaptConfig(policy=Policy.SOFT)
    assert config.policy == "soft" and json.dumps(config.to_dict())


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"policy": "fuzzy"}, "policy"),
        ({"mode": "train"}, "mode"),
        ({"tau": 1.5}, "tau"),
        ({"epochs": 0}, "epochs"),
        ({"classes": ("anger",)}, "classes"),
        ({"classes": ("sadness", "anger")}, "order"),
        ({"classes": ("anger", "joy")}, "joy"),
        ({"layers": "last"}, "layers"),
        ({"normalization": "per-corpus"}, "normalization"),
        ({"projection_dim": -1}, "projection_dim"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(changes, field):
    with pytest.raises(ValueError, match=field):
        AdaptConfig(**changes)


def test_unknown_keys_in_json_are_an_error():
    data = AdaptConfig().to_dict() | {"lamda_a": 0.3}
    with pytest.raises(ConfigError, match="lamda_a"):
        AdaptConfig.from_dict(data)
