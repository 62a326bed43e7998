"""The first, source-only model of a fresh data folder, remembered between starts in the embedding cache.

Every start from an empty data folder trains the same model: the same source set, the same settings,
seeded, on one thread. That training (and the imports it needs: the optimiser, scikit-learn for the
scores) is the largest step between launch and the first answered prediction, so its result is kept
under the cache folder, keyed by everything that decides it: the source set's clips and vectors, the
settings, the code that trains and scores it, and the library versions. A later fresh start with the
same key registers a copy instead of training again. Only without a target pool: with one, the
model's scores depend on the pool's clips. Failures to read or write the cache are logged, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import serdemo
from serdemo.app.source_set import SourceSet
from serdemo.config import AdaptConfig
from serdemo.learn import AdaptResult, load_model
from serdemo.store import AnnotationStore, ModelVersion

FOLDER = "first-models"  # under the embedding cache's root
# the code that decides the first model's weights and scores: a change to any of it is a new key
CODE = ("learn", "metrics.py", "config.py", "app/rounds.py", "app/first_model.py")


def first_model_key(source: SourceSet, config: AdaptConfig) -> str:
    """Hex digest of the source set, the settings, the training code and the library versions."""
    digest = hashlib.sha256()
    versions = {"serdemo": serdemo.__version__, "torch": torch.__version__, "numpy": np.__version__}
    digest.update(json.dumps([config.to_dict(), versions], sort_keys=True).encode())
    root = Path(serdemo.__file__).parent
    for name in CODE:
        path = root / name
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    for part in SourceSet.PARTS:
        clips = getattr(source, part)
        digest.update("\0".join([part, *clips.ids, *clips.languages, *clips.speakers]).encode())
        digest.update(np.ascontiguousarray(clips.labels, np.int64).tobytes())
        digest.update(np.ascontiguousarray(clips.features).tobytes())
    return digest.hexdigest()


def register_cached(
    cache_root: Path,
    key: str,
    config: AdaptConfig,
    data_dir: Path,
    store: AnnotationStore,
    log: Callable[[str], None],
) -> tuple[ModelVersion, AdaptResult] | None:
    """Register a copy of the cached first model as the active version; None where there is none.

    Returns:
        ``(version, loaded model)``, or None when the cache has no usable entry for ``key``.

    """
    cached = cache_root / FOLDER / key
    if not (cached / "metrics.json").is_file():
        return None
    try:
        metrics = json.loads((cached / "metrics.json").read_text())
        result = load_model(cached)  # a damaged entry is a miss, not a broken start
    except Exception as error:  # corrupt JSON, safetensors or missing files
        log(f"cached first model {key[:12]} unusable ({type(error).__name__}); training instead")
        shutil.rmtree(cached, ignore_errors=True)
        return None
    folder = data_dir / "models" / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"
    _copy_atomically(cached, folder)
    (folder / "metrics.json").unlink()
    version = store.add_model_version(
        config.to_dict(), {**metrics, "origin": "first model, from the cache"}, weights_path=folder
    )
    return version, result


def remember(cache_root: Path, key: str, version: ModelVersion, log: Callable[[str], None]) -> None:
    """Copy a freshly trained first model (its files and scores) into the cache under ``key``."""
    target = cache_root / FOLDER / key
    if target.exists() or not version.weights_path:
        return
    try:
        with tempfile.TemporaryDirectory(dir=_mkdir(cache_root / FOLDER)) as tmp:
            staged = Path(tmp) / "model"
            shutil.copytree(version.weights_path, staged)
            (staged / "metrics.json").write_text(json.dumps(version.metrics))
            os.replace(staged, target)  # whole or not at all; a concurrent writer's copy is as good
    except OSError as error:
        if not target.exists():  # else another process cached the same model first: as good
            log(f"could not cache the first model ({error}); the next fresh start trains it again")


def _copy_atomically(source: Path, folder: Path) -> None:
    staged = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=_mkdir(folder.parent)))
    try:
        shutil.copytree(source, staged, dirs_exist_ok=True)
        os.replace(staged, folder)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
