"""What an experiment reports: scores in percent, summaries over seeds, silhouettes, curves, the machine."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from serdemo.experiment.protocol import ROLES, SCORES, SOURCE, TARGET, ExperimentError
from serdemo.learn import AdaptResult, ClipSet, embed
from serdemo.metrics import silhouette


def percent(scores: dict[str, Any]) -> dict[str, Any]:
    """:func:`serdemo.metrics.evaluate` scores with UA, WA, macro-F1 and recalls in percent."""
    out = dict(scores)
    for key in SCORES:
        out[key] = 100.0 * scores[key]
    out["recall"] = {c: None if r is None else 100.0 * r for c, r in scores["recall"].items()}
    return out


def summarise(scores: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample std over seeds of each score."""
    return {key: mean_std([s[key] for s in scores]) for key in SCORES}


def mean_std(values: list[float]) -> dict[str, float]:
    """``{"mean", "std"}`` of per-seed values (sample std; 0 for one seed)."""
    array = np.array(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0}


def silhouettes(result: AdaptResult, tests: dict[str, ClipSet]) -> dict[str, float | None]:
    """Silhouette of the learned representation of the test clips.

    ``emotion_target``: target test clips grouped by emotion; ``emotion_both``: both test sets by
    emotion; ``language``: both test sets grouped by language (lower means the languages mix).
    """
    vectors = {role: embed(result, tests[role]) for role in ROLES}
    both = np.concatenate([vectors[SOURCE], vectors[TARGET]])
    emotions = np.concatenate([tests[SOURCE].labels, tests[TARGET].labels])
    languages = np.array([SOURCE] * len(tests[SOURCE]) + [TARGET] * len(tests[TARGET]))
    return {
        "emotion_target": _safe_silhouette(vectors[TARGET], tests[TARGET].labels),
        "emotion_both": _safe_silhouette(both, emotions),
        "language": _safe_silhouette(both, languages),
    }


def _safe_silhouette(vectors: np.ndarray, groups: np.ndarray) -> float | None:
    # Euclidean, as every published results file: docs/results.md's silhouettes stay reproducible
    # (the app's Explore tab uses the default, cosine); None for a single group
    return silhouette(vectors, groups.tolist(), metric="euclidean")


def curves(result: AdaptResult, tags: dict[str, str]) -> dict[str, Any]:
    """Per-epoch train and validation UA per role, in percent (paper Fig. 5); None where unmeasured."""
    role_of = {tag: role for role, tag in tags.items()}

    def pct(value: float | None) -> float | None:
        return None if value is None else 100.0 * value

    train = {role: [] for role in ROLES}
    for row in result.history:
        by_role = {role_of.get(tag, tag): ua for tag, ua in row["train_ua"].items()}
        for role in ROLES:
            train[role].append(pct(by_role.get(role)))
    return {
        "epoch": [row["epoch"] for row in result.history],
        "loss": [row["losses"]["loss"] for row in result.history],
        "train_ua": train,
        "val_ua": {role: [pct(row["val_ua"].get(role)) for row in result.history] for role in ROLES},
    }


def machine_info() -> dict[str, Any]:
    """Where a result was measured: CPU model, core count, Python and torch versions."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def write_json_atomic(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` so readers never see half a file (temp file + ``os.replace``).

    Raises:
        ExperimentError: the folder of ``path`` does not exist.

    """
    path = Path(path)
    check_output_path(path)
    handle = tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8"
    )
    try:
        with handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(handle.name, path)
    except BaseException:  # KeyboardInterrupt included: leave no temporary file behind
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path


def check_output_path(path: str | os.PathLike) -> Path:
    """``path`` if a results file can be written there, else :class:`ExperimentError`."""
    path = Path(path)
    if path.is_dir():
        raise ExperimentError(f"--out {path} is a folder; give a file name such as {path / 'results.json'}")
    if not path.parent.is_dir():
        raise ExperimentError(f"--out {path}: folder {path.parent} does not exist; create it first")
    return path
