"""A fresh data folder trains the first model once, then reuses it from the cache (app/first_model.py)."""

from pathlib import Path

import pytest
import torch

from serdemo.app import Service, ServiceConfig, first_model, startup
from tests.test_service import tiny_encoder, write_corpus


def start(tmp: Path, name: str, corpus: Path, **overrides) -> tuple[Service, list[str]]:
    logs: list[str] = []
    config = ServiceConfig(
        data_dir=tmp / name,
        source_corpora=(("folder", corpus),),
        cache_dir=tmp / "cache",
        examples_dir=tmp / "no-examples",
        default_model_dir=tmp / "no-default-model",
        first_epochs=20,
        frontend="energy-trim0.1-weighted",
        shipped_source_set=tmp / "no-source-set.npz",
        warm_up_umap=False,
        **overrides,
    )
    service = Service(config, encoder=tiny_encoder(), log=logs.append)
    return service.start(background=False), logs


def weights(service: Service) -> dict[str, torch.Tensor]:
    ws = service.ws
    return ws.model(ws.store.active_version().id).model.state_dict()


def test_a_fresh_data_folder_reuses_the_first_model_an_earlier_start_trained(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "src", "en", 1.0, 6, 3)
    trained, logs = start(tmp_path, "first", corpus)
    assert not any("from the cache" in line for line in logs)
    assert len(list((tmp_path / "cache" / first_model.FOLDER).iterdir())) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the cached first model should have been used")

    monkeypatch.setattr(startup, "train_and_register", no_training)
    reused, logs = start(tmp_path, "second", corpus)
    assert any("the first model, from the cache" in line for line in logs)
    first, second = weights(trained), weights(reused)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    old, new = trained.ws.store.active_version(), reused.ws.store.active_version()
    assert new.metrics["source_ua"] == old.metrics["source_ua"] and new.config == old.config
    assert Path(new.weights_path).parent == tmp_path / "second" / "models"  # a copy in its own folder


def test_other_settings_or_a_damaged_entry_train_again(tmp_path):
    corpus = write_corpus(tmp_path / "src", "en", 1.0, 6, 3)
    start(tmp_path, "first", corpus)
    _, logs = start(tmp_path, "other-seed", corpus, seed=1)  # another key: trained, cached beside
    assert not any("from the cache" in line for line in logs)
    entries = sorted((tmp_path / "cache" / first_model.FOLDER).iterdir())
    assert len(entries) == 2
    for entry in entries:
        (entry / "model.safetensors").write_bytes(b"truncated")
    reused, logs = start(tmp_path, "after-damage", corpus)
    assert any("unusable" in line for line in logs) and not any("from the cache" in line for line in logs)
    assert reused.ws.store.active_version() is not None


@pytest.mark.parametrize("change", ["epochs", "features"])
def test_the_key_changes_with_the_settings_and_the_source_vectors(tmp_path, change):
    corpus = write_corpus(tmp_path / "src", "en", 1.0, 6, 3)
    service, _ = start(tmp_path, "first", corpus)
    ws = service.ws
    config = startup.AdaptConfig(epochs=20)
    key = first_model.first_model_key(ws.source, config)
    assert first_model.first_model_key(ws.source, config) == key
    if change == "epochs":
        assert first_model.first_model_key(ws.source, config.replace(epochs=21)) != key
    else:
        ws.source.train.features[0, 0, 0] += 1.0
        assert first_model.first_model_key(ws.source, config) != key
