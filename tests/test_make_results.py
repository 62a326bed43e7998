from scripts.make_results import _robustness_targets, _table_paired, _table_representation, _table_robustness
from serdemo.config import AdaptConfig


def run(variant, seed, budget, de, en):
    return {"variant": variant, "seed": seed, "budget": budget, "ua_de": de, "ua_en": en, "seconds": 10.0}


def test_the_representation_study_becomes_a_section_of_the_results_page():
    report = {
        "variants": {"linear-speaker-auto": {}, "mix-speaker": {}},
        "runs": [
            run("linear-speaker-auto", 0, "0", 60.0, 80.0),
            run("linear-speaker-auto", 1, "0", 70.0, 84.0),
            run("linear-speaker-auto", 0, "100", 92.0, 82.0),
            run("mix-speaker", 0, "100", 86.0, 79.0),
        ],
        "round_seconds_2000": {"linear-speaker-auto": 22.5},
    }
    text = "\n".join(_table_representation(report))
    assert text.startswith("## Representation variants (issue 5)")
    auto_row = next(line for line in text.splitlines() if line.startswith("| linear-speaker-auto |"))
    assert auto_row.split(" | ")[1] == "65.0 ± 5.0"  # mean ± std over the two 0-label seeds
    assert "| mix-speaker | - | - | 86.0 ± 0.0 |" in text  # budgets a variant never ran stay blank
    assert "| paper: HuBERT fine-tuned (GPU) | - | - | 93.95 | 94.37 |" in text
    assert "- linear-speaker-auto: 22.5 s" in text


def test_no_representation_report_means_no_section():
    assert _table_representation(None) == []


def fake_result(target: float, source: float = 80.0) -> dict:
    summary = {
        role: {"ua": {"mean": value, "std": 1.0}} for role, value in (("target", target), ("source", source))
    }
    return {
        "summary": summary,
        "config": {"adapt": AdaptConfig(seeds=(0, 1, 2)).to_dict()},
        "command": "python scripts/make_results.py",
        "created": "2026-11-30T20:00:00+00:00",
        "wall_seconds": 60.0,
    }


def test_the_robustness_section_shows_both_protocols_and_checks_the_targets():
    robust = {
        "rb-en-de-k0-source-only": fake_result(63.0),
        "rb-en-de-k0-0-label-free": fake_result(67.0),
        "rb-en-de-k0-0": fake_result(64.0),
        "rb-en-de-k0-25": fake_result(72.0),
        "rb-en-de-k0-100": fake_result(88.0),
        "rb-en-de-k1-0": fake_result(40.0),
        "rb-de-en-k0-0": fake_result(50.0),
        "rb-de-en-k0-25": fake_result(61.0),
        "rb-en-de-k0-25-margin": fake_result(79.0),
    }
    text = "\n".join(_table_robustness(robust, None))
    assert (
        "| en-de | full | 63.00 ± 1.00 | 67.00 ± 1.00 | 64.00 ± 1.00 | – | 72.00 ± 1.00 | 79.00 ± 1.00 | – | "
        "88.00 ± 1.00 |" in text
    )
    assert "| en-de full, 25 least-certain labels >= 0 labels + 10 | +15.0 | yes |" in text
    assert "de-en full, 25 least-certain" not in text  # no such run, no such row
    assert "| en-de | 1 emotion per speaker | – | – | 40.00 ± 1.00 |" in text
    assert "| en-de full, 100 labels >= 85.6 | 88.0 | yes |" in text
    assert "| en-de full, 25 labels >= 0 labels + 10 | +8.0 | no |" in text
    assert "| de-en full, 25 labels >= 0 labels + 10 | +11.0 | yes |" in text
    assert "| en-de full, 0 labels label-free >= source only + 3 | +4.0 | yes |" in text
    assert _table_robustness({}, None) == []


def test_the_confounded_target_compares_the_default_with_every_normalisation_of_the_study():
    study = {
        "runs": {
            "en-de/k1/default-nap5/0": {"target_ua": [50.0, 60.0]},
            "en-de/k1/speaker/0": {"target_ua": [30.0, 30.0]},
            "en-de/k1/language-bl/0": {"target_ua": [60.0, 58.0]},
            "en-de/k1/default-nap5/25": {"target_ua": [70.0]},
            "en-de/k1/global-bl/25": {"target_ua": [71.0]},
        }
    }
    text = "\n".join(_robustness_targets({}, study))
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in text.splitlines()}
    first = "| en-de 1 emotion per speaker, 0 labels: default within 2 of the best normalisation of the study"
    assert rows[f"{first} (3 tried)"] == ["55.0 vs 59.0 (language-bl)", "no |"]
    second = first.replace("0 labels", "25 labels")
    assert rows[f"{second} (2 tried)"] == ["70.0 vs 71.0 (global-bl)", "yes |"]


def paired_run(seeds, target, every=None):
    return {"seeds": seeds, "target_ua": target, "target_every_emotion_ua": every or []}


def test_the_paired_section_reads_two_variants_seed_by_seed():
    study = {
        "runs": {
            "en-de/k0/nap5-bl/25": paired_run([0, 1, 2], [70.0, 80.0, 90.0]),
            "en-de/k0/language-bl/25": paired_run([0, 1, 2], [68.0, 79.0, 91.0]),
            "en-de/k1/nap5-bl/0": paired_run([0, 1, 2], [40.0, 90.0, 60.0], every=[60.0, 62.0, 64.0]),
            "en-de/k1/language-bl/0": paired_run([0, 1, 2], [50.0, 80.0, 60.0], every=[59.0, 60.0, 61.0]),
            "de-en/k0/nap5-bl/0": paired_run([0, 1], [55.0, 56.0]),  # no partner run: no row
        }
    }
    text = "\n".join(_table_paired(study))
    assert text.startswith("### The default (nap, 5 speaker directions) against per-language standardisation")
    assert "nap10-bl - " not in text  # no run of the previous default: no second table
    # differences 2, 1, -1: mean +0.7, std 1.53, standard error 0.9; the default won 2 seeds, lost 1
    assert "| en-de | 0 | 25 | 3 | 80.0 ± 10.0 | 79.3 ± 11.5 | +0.7 ± 0.9 | 2 / 1 |" in text
    assert "| en-de | 1 | 0 | 3 | 63.3 ± 25.2 | 63.3 ± 15.3 | +0.0 ± 5.8 | 1 / 1 |" in text
    assert "| en-de | 1 (every emotion) | 0 | 3 | 62.0 ± 2.0 | 60.0 ± 1.0 | +2.0 ± 0.6 | 3 / 0 |" in text
    assert "| de-en |" not in text
    assert _table_paired(None) == []
    # with runs of the previous default (nap, 10 directions) a second table compares it with today's
    study["runs"]["en-de/k0/nap10-bl/25"] = paired_run([0, 1, 2], [60.0, 80.0, 88.0])
    text = "\n".join(_table_paired(study))
    assert "| en-de | 0 | 25 | 3 | 80.0 ± 10.0 | 76.0 ± 14.4 | +4.0 ± 3.1 | 2 / 0 |" in text


def test_the_confounded_target_is_also_read_seed_by_seed_where_nine_seeds_ran():
    paired = {
        "runs": {
            "en-de/k1/nap5-bl/25": paired_run([0, 1, 2], [70.0, 60.0, 80.0]),
            "en-de/k1/language-bl/25": paired_run([0, 1, 2], [75.0, 63.0, 80.0]),
            "en-de/k0/nap5-bl/100": paired_run([0, 1, 2, 3], [84.0, 86.0, 88.0, 90.0]),
        }
    }
    text = "\n".join(_robustness_targets({}, None, paired))
    row = "| en-de 1 emotion per speaker, 25 labels: default within 2 of language-bl, 3 seeds, seed by seed"
    # differences -5, -3, 0: mean -2.7, std 2.52, standard error 1.5: missed
    assert f"{row} | 70.0 vs 72.7 (-2.7 ± 1.5) | no |" in text
    assert "| en-de full, 100 labels >= 85.6, 4 seeds | 87.0 | yes |" in text
