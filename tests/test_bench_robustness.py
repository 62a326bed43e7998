"""bench/robustness.py's seed-by-seed comparison: only seeds both variants ran, paired seed with seed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def robustness():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "bench" / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(seeds, uas):
    return {"seeds": seeds, "target_ua": uas, "source_ua": [50.0] * len(seeds), "notes": []}


def test_paired_table_pairs_the_seeds_both_variants_ran_whatever_their_order():
    bench = robustness()
    report = {
        "runs": {
            # a ran seeds 2, 0, 1; b ran 0..3: pairs are (0: 60-50), (1: 70-80), (2: 90-70)
            "en-de/k0/a/25": row([2, 0, 1], [90.0, 60.0, 70.0]),
            "en-de/k0/b/25": row([0, 1, 2, 3], [50.0, 80.0, 70.0, 10.0]),
            "en-de/k0/a/100": row([5], [1.0]),  # no seed in common: no line
            "en-de/k0/b/100": row([6], [2.0]),
        }
    }
    lines = bench.paired_table(report, "a", "b").splitlines()
    assert len(lines) == 3, lines
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:4] == ["en-de", "0", "25", "3"]
    assert cells[4].startswith("73.3") and cells[5].startswith("66.7")  # b's seed 3 left out
    assert cells[6].startswith("+6.7") and cells[7] == "2 / 1"
