"""The experiment CLI's fine-tuning options and --encoder-source, without training anything."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import serdemo.experiment as experiment
from serdemo.cli import build_parser, main
from serdemo.config import AdaptConfig
from serdemo.encoders.base import EncoderUnavailableError
from serdemo.encoders.local import load_local_encoder
from tests.test_encoders import _speechlike, _tiny_whisper


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    """Required arguments with (empty) corpus folders: the fake runner never reads them."""
    for name in ("ravdess", "emodb"):
        (tmp_path / "corpora" / name).mkdir(parents=True, exist_ok=True)
    root = tmp_path / "corpora"
    return ["experiment", "--source", f"ravdess={root / 'ravdess'}", "--target", f"emodb={root / 'emodb'}",
            "--out", str(tmp_path / "r.json"), *extra]  # fmt: skip


class _FakeRunner:
    """Stands in for ExperimentRunner: records what the CLI built, trains nothing."""

    seen: dict = {}

    def __init__(self, encoder=None, **kwargs) -> None:
        _FakeRunner.seen["encoder"] = encoder

    def run(self, spec):
        _FakeRunner.seen["config"] = spec.adapt
        return {}


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch):
    _FakeRunner.seen = {}
    monkeypatch.setattr(experiment, "ExperimentRunner", _FakeRunner)
    return _FakeRunner.seen


def _tiny_whisper_folder(folder: Path) -> dict[str, torch.Tensor]:
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32, vocab_size=64,
        max_target_positions=8, pad_token_id=0, bos_token_id=0, eos_token_id=1, decoder_start_token_id=1,
    )  # fmt: skip
    torch.manual_seed(3)
    model = WhisperModel(config).eval()
    model.save_pretrained(folder)
    return model.encoder.state_dict()


def test_finetune_flags_default_to_adapt_config(tmp_path: Path):
    args = build_parser().parse_args(_argv(tmp_path))
    defaults = AdaptConfig()
    for field in ("encoder_lr", "freeze_blocks", "encoder_warmup_epochs", "precision", "eval_batch_size"):
        assert getattr(args, field) == getattr(defaults, field), field
    assert args.encoder_source is None


def test_finetune_flags_reach_the_config(tmp_path: Path, fake_runner: dict):
    code = main(_argv(
        tmp_path, "--quiet", "--mode", "finetune", "--encoder-lr", "3e-4", "--freeze-blocks", "2",
        "--encoder-warmup-epochs", "5", "--precision", "bf16", "--eval-batch-size", "16",
    ))  # fmt: skip
    assert code == 0
    config = fake_runner["config"]
    assert (config.mode, config.encoder_lr, config.freeze_blocks) == ("finetune", 3e-4, 2)
    assert (config.encoder_warmup_epochs, config.precision, config.eval_batch_size) == (5, "bf16", 16)
    assert fake_runner["encoder"] is None  # no --encoder-source: the registry builds it


def test_encoder_source_loads_local_whisper_weights_and_reaches_the_runner(tmp_path: Path, fake_runner: dict):
    state = _tiny_whisper_folder(tmp_path / "whisper")
    code = main(_argv(tmp_path, "--quiet", "--encoder-source", str(tmp_path / "whisper")))
    assert code == 0
    encoder = fake_runner["encoder"]
    assert encoder.identity.startswith("whisper-base/hf-")
    reference = _tiny_whisper()
    reference.encoder.load_state_dict(state)
    clip = [_speechlike(0.8)]
    np.testing.assert_allclose(encoder.embed(clip), reference.embed(clip), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "encoder", "message"),
    [
        (lambda root: root / "nowhere", "whisper-base", "does not exist"),
        (lambda root: root, "whisper-base", "not a folder with config.json"),
        (
            lambda root: (root / "config.json").write_text(json.dumps({"model_type": "hubert"})) and root,
            "whisper-base",
            "describes a 'hubert' model",
        ),
        (lambda root: (root / "model.bin").write_bytes(b"not weights") and root / "model.bin", "whisper-base",
         "corrupted"),
        (lambda root: root, "emotion-cnn", "has no pretrained weights"),
        (lambda root: root, "byol-s", "is a folder, not a .pth file"),
    ],
)  # fmt: skip
def test_unusable_encoder_source_is_one_clear_line(tmp_path, capsys, fake_runner, make, encoder, message):
    path = make(tmp_path)
    with pytest.raises(EncoderUnavailableError, match=message):
        load_local_encoder(encoder, path)
    code = main(_argv(tmp_path, "--encoder", encoder, "--encoder-source", str(path)))
    err = capsys.readouterr().err
    assert code == 2 and message in err and str(path) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "config" not in fake_runner  # nothing ran


def test_the_app_loads_its_encoder_from_encoder_source(tmp_path: Path):
    from serdemo.app.service import Service, ServiceConfig

    _tiny_whisper_folder(tmp_path / "whisper")
    config = ServiceConfig(
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        encoder_source=tmp_path / "whisper",
        examples_dir=tmp_path / "no-examples",
        default_model_dir=tmp_path / "no-default-model",
        shipped_source_set=tmp_path / "no-source-set.npz",
        warm_up_umap=False,
    )
    service = Service(config, log=lambda text: None).start(background=False)
    assert service.ws.encoder.identity.startswith("whisper-base/hf-")


def test_the_adapt_tab_shows_fine_tuning_disabled_with_the_reason_on_a_cpu(tmp_path, monkeypatch):
    from serdemo.app.ui import build_app
    from serdemo.learn.finetune import ALLOW_CPU_ENV
    from tests.test_service import make_service

    def finetune_box(app) -> dict:
        components = app.config["components"]
        (box,) = [c for c in components if c.get("props", {}).get("elem_id") == "adapt-finetune"]
        return box

    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    service = make_service(tmp_path)
    box = finetune_box(build_app(service))
    assert box["type"] == "checkbox" and box["props"]["interactive"] is False
    assert box["props"]["value"] is False and "needs a GPU" in box["props"]["info"]
    assert "--allow-cpu-finetune" in box["props"]["info"]
    # the opt-in makes it a live option, still saying what it costs here
    monkeypatch.setenv(ALLOW_CPU_ENV, "1")
    box = finetune_box(build_app(service))
    assert box["props"].get("interactive") is not False and "takes hours" in box["props"]["info"]
