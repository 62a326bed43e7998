import json
import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score, silhouette_score

from serdemo.metrics import (
    confusion,
    evaluate,
    macro_f1,
    silhouette,
    unweighted_accuracy,
    weighted_accuracy,
)


def test_ua_is_mean_recall_and_wa_is_accuracy_by_hand():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 1]
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(5 / 8)


def test_ua_ignores_classes_absent_from_y_true_and_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.choice([0, 2, 3], size=200)  # class 1 and 4 never occur
    y_pred = rng.integers(0, 5, size=200)
    expected = recall_score(y_true, y_pred, labels=[0, 2, 3], average="macro")
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx(expected)
    assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_confusion_keeps_fixed_class_order_with_absent_classes():
    matrix = confusion([0, 2, 2], [0, 2, 0], num_classes=4)
    assert matrix.shape == (4, 4)
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_silhouette_matches_sklearn_and_is_none_for_one_group():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (30, 3)), rng.normal(5, 1, (30, 3))])
    groups = ["en"] * 30 + ["de"] * 30
    assert silhouette(x, groups, metric="euclidean") == pytest.approx(silhouette_score(x, groups))
    assert silhouette(x, groups) == pytest.approx(silhouette_score(x, groups, metric="cosine"))
    assert silhouette(x, groups, metric="euclidean") > 0.5
    assert silhouette(x, ["en"] * 60) is None
    with pytest.raises(ValueError, match="one group per row"):
        silhouette(x, groups[:-1])


def test_evaluate_is_json_ready_and_consistent():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    report = evaluate([0, 1, 1, 0], probs, ["anger", "happiness", "sadness"])
    json.dumps(report)
    assert report["ua"] == pytest.approx(0.5) and report["wa"] == pytest.approx(0.5)
    assert report["confusion"] == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]
    assert report["recall"] == {"anger": 0.5, "happiness": 0.5, "sadness": None}
    assert report["support"]["sadness"] == 0 and report["n"] == 4
    assert not math.isnan(report["macro_f1"])


def test_unlabeled_or_mismatched_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unlabeled"):
        unweighted_accuracy([0, -1], [0, 0])
    with pytest.raises(ValueError, match="predictions"):
        weighted_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        evaluate([0], np.ones((1, 3)) / 3, ["anger", "sadness"])
