from scripts.make_results import _table_representation


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
