"""bench/finetune_gpu.py end to end on CPU: a tiny random Whisper and synthetic corpora (a smoke run)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from tests.test_experiment import corpora  # noqa: F401  (the synthetic RAVDESS/EMO-DB fixture)

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("finetune_gpu", ROOT / "bench" / "finetune_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_table_script_runs_end_to_end_on_cpu(corpora, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "table.json"
    code = _bench().main([
        "--source", f"ravdess={corpora['ravdess']}", "--target", f"emodb={corpora['emodb']}",
        "--tiny-encoder", "--device", "cpu", "--epochs", "2", "--window", "1", "--seeds", "0",
        "--labeled", "0", "5", "all", "--frozen-labeled", "5", "--frontend", "none",
        "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    rows = results["rows"]
    assert [(r["run"].split(",")[0], r["target_labels"]) for r in rows] == [
        ("frozen (reference)", "5"), ("finetune", "0"), ("finetune", "5"), ("finetune", "all"),
    ]  # fmt: skip
    modes = [e["config"]["adapt"]["mode"] for e in results["experiments"]]
    assert modes == ["frozen", "finetune", "finetune", "finetune"]
    assert results["experiments"][-1]["config"]["target_all_labeled"] is True
    assert results["experiments"][1]["config"]["adapt"]["encoder_lr"] == 1e-5
    for r in rows:
        assert all(math.isfinite(x) and 0 <= x <= 100 for x in (*r["target_ua"], *r["source_ua"]))
        assert r["seconds_per_round"] > 0 and r["seconds_per_100_epochs"] >= r["seconds_per_round"]
    table = capsys.readouterr().out
    assert table.count("| finetune, encoder lr 1e-05 |") == 3 and "--tiny-encoder" in results["command"]
