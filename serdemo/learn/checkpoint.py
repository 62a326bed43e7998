"""Save and load trained models (nanoGPT: the config sits beside the weights); crash-atomic saves."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file
from torch import nn

from serdemo.config import AdaptConfig, Mode
from serdemo.encoders.base import UtteranceEncoder
from serdemo.learn.clips import AdaptError
from serdemo.learn.model import SERModel, make_head
from serdemo.learn.normalize import FeatureNormalizer
from serdemo.learn.result import AdaptResult


def save_model(result: AdaptResult, folder: str | Path) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``model.json`` (classes, history) and the normaliser.

    Crash-atomic: everything goes into a temporary sibling folder, each file is fsynced, and the
    folder is renamed to ``folder`` last (then the parent is fsynced), so ``folder`` either holds a
    complete model or does not exist. ``folder`` must not exist yet.
    """
    final = Path(folder)
    if final.exists():
        raise FileExistsError(f"{final} exists: save each model version to a new folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        _write_model_files(result, folder)
        for file in folder.iterdir():
            _fsync(file)
        _fsync(folder)
        os.replace(folder, final)
        _fsync(final.parent)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return final


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_model_files(result: AdaptResult, folder: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2))
    head = result.head
    meta = {
        "classes": list(result.classes),
        "mode": result.config.mode,
        "num_layers": head.num_layers,
        "feature_dim": head.feature_dim,
        "encoder_identity": result.model.encoder.identity if isinstance(result.model, SERModel) else None,
        "best_epoch": result.best_epoch,
        "best_score": result.best_score,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped,
        "small_pool": result.small_pool,
        "labels_of_few_emotions": result.labels_of_few_emotions,
        "pool_in_one_mood": result.pool_in_one_mood,
        "pool_spread": result.pool_spread,
        "history": result.history,
        "rounds": result.rounds,
        "timings": result.timings,
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2))
    if result.normalizer is not None:
        norm_meta, arrays = result.normalizer.state()
        (folder / "normalizer.json").write_text(json.dumps(norm_meta, indent=2))
        np.savez(folder / "normalizer.npz", **arrays)


def load_model(folder: str | Path, encoder: UtteranceEncoder | None = None) -> AdaptResult:
    """Inverse of :func:`save_model`. Finetune models need an encoder of the same architecture.

    Args:
        folder: what :func:`save_model` wrote.
        encoder: finetune mode only: an encoder to load the saved weights into; by default it is
            built from the registry entry ``config.encoder``.

    """
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no saved model (model.safetensors + config.json expected)")
    config = AdaptConfig.from_dict(json.loads((folder / "config.json").read_text()))
    meta = json.loads((folder / "model.json").read_text())
    head = make_head(config, meta["num_layers"], meta["feature_dim"])
    if config.mode == Mode.FINETUNE.value:
        if encoder is None:
            from serdemo.encoders.base import ENCODERS

            if config.encoder not in ENCODERS:
                raise AdaptError(f"encoder {config.encoder!r} is not registered: pass encoder= to load_model")
            encoder = ENCODERS[config.encoder].build()
        model: nn.Module = SERModel(encoder, head)
    else:
        model = head
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.eval()
    normalizer = None
    if (folder / "normalizer.json").is_file():
        with np.load(folder / "normalizer.npz") as data:
            arrays = {k: data[k] for k in data.files}
        normalizer = FeatureNormalizer.from_state(
            json.loads((folder / "normalizer.json").read_text()), arrays
        )
    return AdaptResult(
        config=config,
        model=model,
        normalizer=normalizer,
        history=meta.get("history", []),
        rounds=meta.get("rounds", []),
        best_epoch=meta.get("best_epoch", 0),
        best_score=meta.get("best_score"),
        epochs_run=meta.get("epochs_run", 0),
        stopped=meta.get("stopped", "completed"),
        small_pool=meta.get("small_pool", False),
        labels_of_few_emotions=meta.get("labels_of_few_emotions", meta.get("labels_of_one_emotion", False)),
        pool_in_one_mood=meta.get("pool_in_one_mood", False),
        pool_spread=meta.get("pool_spread"),
        timings=meta.get("timings", {}),
    )
