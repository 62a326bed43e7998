import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from serdemo.config import FROZEN_THREADS, AdaptConfig, ConfigError
from serdemo.corpora.base import Utterance
from serdemo.learn import (
    AdaptError,
    ClipSet,
    adapt,
    build_training_set,
    embed,
    load_model,
    predict_proba,
    save_model,
)
from serdemo.learn.denormals import denormals_flushed, flushing_denormals
from serdemo.learn.pseudo_labels import mixup
from serdemo.learn.small_pool import (
    SMALL_POOL_PRIOR,
    counts_of_few_emotions,
    emotions_wanted,
    labels_of_few_emotions,
    labels_wanted_beside_other_emotions,
)
from serdemo.metrics import unweighted_accuracy
from tests.test_model import TinyEncoder

CLASSES = ("anger", "sadness")


def make_clips(rng, n_per_class, language, reversed_cue, prefix, noise=0.7):
    """Two classes; feature 0 is a cue shared by both languages, feature 1 a cue whose sign flips
    in the target language, so a source-trained model is confused there until it sees target data."""
    labels = np.repeat([0, 1], n_per_class)
    sign = np.where(labels == 0, 1.0, -1.0)
    x = noise * rng.normal(size=(len(labels), 6))
    x[:, 0] += 2.0 * sign
    x[:, 1] += (-2.5 if reversed_cue else 2.5) * sign
    features = np.stack([x, x + 0.1 * rng.normal(size=x.shape)], axis=1)  # L = 2 layers
    ids = [f"{prefix}{i}" for i in range(len(labels))]
    speakers = [f"{language}/{i % 3}" for i in range(len(labels))]
    return ClipSet(ids, labels, [language] * len(labels), speakers, features=features)


def make_task(n_source=100, n_labeled=2, n_unlabeled=100, n_test=150, seed=7):
    rng = np.random.default_rng(seed)
    return {
        "source": make_clips(rng, n_source, "en", False, "s"),
        "labeled": make_clips(rng, n_labeled, "de", True, "k"),
        "unlabeled": make_clips(rng, n_unlabeled, "de", True, "u"),
        "validation": {
            "en": make_clips(rng, 40, "en", False, "vs"),
            "de": make_clips(rng, 40, "de", True, "vt"),
        },
        "test": make_clips(rng, n_test, "de", True, "t"),
    }


def quick_config(**changes):
    # per-language: these toy speakers span train and test sets, which per-speaker statistics would blur
    base = dict(
        classes=CLASSES,
        epochs=6,
        window=3,
        projection_dim=16,
        batch_size=50,
        patience=0,
        lr=1e-2,
        normalization="per-language",
        # the small projection head these tests were written for (the default is a linear head)
        layer_combination="mix",
        dropout=0.1,
        weight_decay=0.0,
    )
    return AdaptConfig(**(base | changes))


def run(task, config, **kwargs):
    return adapt(task["source"], task["labeled"], task["unlabeled"], task["validation"], config, **kwargs)


def target_ua(result, task):
    return unweighted_accuracy(task["test"].labels, predict_proba(result, task["test"]).argmax(1))


# --- the training set D -------------------------------------------------------------------------


def test_rebalancing_oversamples_target_to_source_count_and_keeps_every_labeled_clip():
    labels = np.array([0] * 30 + [1] * 20 + [0, 1, 1] + [-1] * 10)
    is_target = np.arange(len(labels)) >= 50
    train = build_training_set(labels, is_target, 2, rebalance=True, rng=np.random.default_rng(0))
    target_rows = is_target[train.rows]
    assert target_rows.sum() == (~target_rows).sum() == 50
    assert set(train.rows[target_rows]) == {50, 51, 52}
    assert set(np.flatnonzero(labels >= 0)) <= set(train.rows)
    assert not (labels[train.rows] < 0).any()  # unlabeled clips never enter without a pseudo-label
    unbalanced = build_training_set(labels, is_target, 2, rebalance=False)
    assert len(unbalanced) == 53


def test_rebalancing_repeats_a_target_clip_at_most_max_repeats_times_on_average():
    labels = np.array([0] * 60 + [1] * 40 + [0, 1, 1, 0])
    is_target = np.arange(len(labels)) >= 100
    capped = build_training_set(
        labels, is_target, 2, rebalance=True, rng=np.random.default_rng(0), max_repeats=5
    )
    assert is_target[capped.rows].sum() == 4 * 5  # 4 clips, 5 rows each on average, not 100 rows
    assert set(capped.rows[is_target[capped.rows]]) == {100, 101, 102, 103}
    loose = build_training_set(
        labels, is_target, 2, rebalance=True, rng=np.random.default_rng(0), max_repeats=50
    )
    assert is_target[loose.rows].sum() == 100  # the cap only binds when the source is much larger


def test_pseudo_labels_are_replaced_not_accumulated():
    labels = np.array([0, 1, 0, 1, -1, -1, -1])
    is_target = np.array([False] * 4 + [True] * 3)
    rows = np.array([4, 5, 6])
    first = build_training_set(
        labels, is_target, 2, rows, np.eye(2)[[0, 0, 1]], np.array([1.0, 1.0, 0.0]), False
    )
    second = build_training_set(
        labels, is_target, 2, rows, np.eye(2)[[1, 1, 1]], np.array([0.0, 1.0, 1.0]), False
    )
    assert sorted(first.rows[first.pseudo]) == [4, 5]
    assert sorted(second.rows[second.pseudo]) == [5, 6]
    assert second.targets[second.pseudo].argmax(1).tolist() == [1, 1]  # round-one labels are gone
    assert len(second) == 4 + 2


# --- the loop -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["none", "hard", "soft"])
def test_every_policy_trains_reports_and_predicts(policy):
    task = make_task()
    events = []
    result = run(task, quick_config(policy=policy), progress=events.append)
    assert [e.epoch for e in events] == list(range(1, 7)) and events[-1].total_epochs == 6
    assert set(events[-1].val_ua) == {"en", "de"} and set(events[-1].losses) == {
        "loss",
        "supervised",
        "unlabeled",
    }
    assert len(result.history) == 6 and result.stopped == "completed"
    assert len(result.rounds) == (0 if policy == "none" else 1)  # at epoch 3; never after the last epoch
    probs = predict_proba(result, task["test"])
    assert probs.shape == (300, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert embed(result, task["test"]).shape == (300, 16)
    assert unweighted_accuracy(task["source"].labels, predict_proba(result, task["source"]).argmax(1)) > 0.9
    if policy != "none":
        assert events[-1].pseudo_counts is not None and sum(events[-1].pseudo_counts.values()) > 0
        assert events[-1].losses["unlabeled"] > 0


def test_each_round_trains_on_that_rounds_pseudo_labels_only():
    # no balancing: flattened probabilities rarely reach tau 0.9, and this test needs accepted labels
    config = quick_config(policy="hard", tau=0.9, epochs=10, rebalance=False, pseudo_balance="none")
    result = run(make_task(), config)
    assert len(result.rounds) == 3
    labeled = 200 + 4
    for stats in result.rounds:
        assert stats["pseudo_rows"] == stats["accepted"]
        assert stats["training_rows"] == labeled + stats["accepted"]
        assert sum(stats["accepted_per_class"].values()) == stats["accepted"]
        assert stats["accuracy"] is not None  # the test pool secretly has labels


def test_hidden_labels_of_the_unlabeled_pool_are_never_trained_on():
    task = make_task()
    config = quick_config(policy="hard")
    honest = run(task, config)
    task["unlabeled"] = task["unlabeled"].without_labels()
    blind = run(task, config)
    np.testing.assert_array_equal(predict_proba(honest, task["test"]), predict_proba(blind, task["test"]))
    assert blind.rounds[0]["accuracy"] is None


def test_pseudo_labels_help_where_the_target_cue_is_learnable_from_unlabeled_clips():
    # Two target labels per class; the source teaches a cue that is reversed in the target language.
    # After W epochs the model labels most target clips right, and training on them fixes more.
    task = make_task()
    gains = []
    for seed in (0, 1):
        config = quick_config(epochs=40, window=20, seed=seed)
        without = target_ua(run(task, config.replace(policy="none")), task)
        with_hard = run(task, config.replace(policy="hard"))
        assert with_hard.rounds[0]["accuracy"] > 0.9
        gains.append(target_ua(with_hard, task) - without)
    assert min(gains) >= 0 and np.mean(gains) >= 0.01


def test_early_stopping_keeps_the_best_epoch():
    task = make_task()
    result = run(task, quick_config(policy="none", epochs=60, patience=4, lr=3e-2))
    scores = [row["val_score"] for row in result.history]
    assert result.stopped == "early-stopping" and result.epochs_run < 60
    assert result.best_epoch == int(np.argmax(scores)) + 1
    assert result.epochs_run == result.best_epoch + 4
    assert result.best_score == pytest.approx(max(scores))
    again = {
        name: unweighted_accuracy(clips.labels, predict_proba(result, clips).argmax(1))
        for name, clips in task["validation"].items()
    }
    assert again == pytest.approx(result.history[result.best_epoch - 1]["val_ua"])


def test_same_seed_same_result_other_seed_other_result():
    task = make_task()
    a = run(task, quick_config(policy="soft", seed=1))
    b = run(task, quick_config(policy="soft", seed=1))
    c = run(task, quick_config(policy="soft", seed=2))
    np.testing.assert_array_equal(predict_proba(a, task["test"]), predict_proba(b, task["test"]))
    assert [r["losses"] for r in a.history] == [r["losses"] for r in b.history]
    assert not np.allclose(predict_proba(a, task["test"]), predict_proba(c, task["test"]))


@pytest.mark.parametrize(("threads", "caller", "expected"), [(0, 4, FROZEN_THREADS), (0, 1, 1), (3, 1, 3)])
def test_a_frozen_run_trains_on_the_threads_its_config_asks_for_and_gives_the_callers_back(
    threads, caller, expected
):
    # automatic (0): at most FROZEN_THREADS (2 made rounds 1.15-1.2x faster than 1), and never more than the
    # caller has (a scale worker pins itself to one); an explicit count is taken as asked
    task = make_task(n_unlabeled=20)
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(caller)
    try:
        config = quick_config(threads=threads, epochs=1, window=1)
        run(task, config, progress=lambda event: seen.append(torch.get_num_threads()))
        assert seen == [expected]
        assert torch.get_num_threads() == caller
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush subnormals")
def test_a_run_trains_with_subnormals_flushed_and_gives_the_callers_setting_back():
    # subnormal weights made each step of a long round 10x slower (serdemo.learn.denormals)
    task = make_task(n_unlabeled=20)
    seen = []
    assert not denormals_flushed()
    run(task, quick_config(epochs=2, window=1), progress=lambda event: seen.append(denormals_flushed()))
    assert seen == [True, True]
    assert not denormals_flushed()
    with flushing_denormals():
        run(task, quick_config(epochs=1, window=1))
        assert denormals_flushed()


def test_cancellation_stops_after_the_current_epoch_and_keeps_the_best_model():
    task = make_task()
    cancel = threading.Event()

    def on_progress(event):
        if event.epoch == 2:
            cancel.set()

    result = run(task, quick_config(epochs=50), progress=on_progress, should_stop=cancel)
    assert result.stopped == "cancelled" and result.epochs_run == 2
    assert predict_proba(result, task["test"]).shape == (300, 2)
    nothing = run(task, quick_config(epochs=50), should_stop=lambda: True)
    assert nothing.epochs_run == 0 and nothing.stopped == "cancelled"


def test_finetune_mode_trains_the_encoder_on_crops_and_predicts_whole_utterances():
    rng = np.random.default_rng(0)

    def clips(n, language, prefix):
        labels = np.arange(n) % 2
        t = np.arange(16_000) / 16_000
        waves = [
            (np.sin(2 * np.pi * (200 if y == 0 else 900) * t[: rng.integers(6_000, 16_000)]) * 0.5).astype(
                np.float32
            )
            for y in labels
        ]
        return ClipSet(
            [f"{prefix}{i}" for i in range(n)], labels, [language] * n, [f"{language}/0"] * n, waveforms=waves
        )

    torch.manual_seed(0)
    encoder = TinyEncoder()
    before = encoder.conv1.weight.detach().clone()
    config = quick_config(mode="finetune", epochs=1, crop_seconds=0.5, batch_size=8, eval_batch_size=4)
    result = adapt(
        clips(12, "en", "s"),
        clips(2, "de", "k"),
        clips(6, "de", "u"),
        {"de": clips(4, "de", "v")},
        config,
        encoder=encoder,
    )
    assert result.epochs_run == 1 and result.normalizer is None
    assert not torch.equal(before, encoder.conv1.weight.detach())
    probs = predict_proba(result, clips(5, "de", "t"))
    assert probs.shape == (5, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_save_and_load_give_the_same_predictions(tmp_path: Path):
    task = make_task()
    result = run(task, quick_config(policy="hard", layers=(1,)))
    folder = save_model(result, tmp_path / "model")
    assert {p.name for p in folder.iterdir()} >= {
        "model.safetensors",
        "config.json",
        "model.json",
        "normalizer.npz",
    }
    loaded = load_model(folder)
    assert loaded.config == result.config and loaded.best_epoch == result.best_epoch
    np.testing.assert_allclose(
        predict_proba(loaded, task["test"]), predict_proba(result, task["test"]), atol=1e-6
    )
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load_model(tmp_path)


def test_clear_errors_for_unusable_inputs():
    task = make_task()
    with pytest.raises(AdaptError, match="label"):
        adapt(task["source"].without_labels(), task["labeled"], task["unlabeled"], {}, quick_config())
    with pytest.raises(AdaptError, match="encoder"):
        run(task, quick_config(mode="finetune"))
    waves_only = ClipSet(["a"], [0], ["de"], ["de/0"], waveforms=[np.zeros(100, np.float32)])
    with pytest.raises(AdaptError, match="features"):
        adapt(task["source"], waves_only, task["unlabeled"], {}, quick_config())
    with pytest.raises(AdaptError, match="ids"):
        ClipSet(["a", "b"], [0], ["de"], ["de/0"], features=np.zeros((1, 2, 3)))


def test_clipset_from_utterances_keeps_only_the_configured_classes():
    utterances = [
        Utterance(f"c/{i}", Path(f"{i}.wav"), "c", "de", "c/1", None, emotion, emotion or "x")
        for i, emotion in enumerate(["anger", "fear", "sadness", None])
    ]
    features = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    clips = ClipSet.from_utterances(utterances, CLASSES, features=features)
    assert clips.ids == ["c/0", "c/2"] and clips.labels.tolist() == [0, 1]
    np.testing.assert_array_equal(clips.features, features[[0, 2]])
    kept = ClipSet.from_utterances(utterances, CLASSES, features=features, drop_unknown=False)
    assert kept.labels.tolist() == [0, -1, 1, -1]


def test_linear_head_adapts_and_survives_save_and_load(tmp_path: Path):
    task = make_task()
    config = quick_config(projection_dim=0, layer_combination="concat", epochs=12, weight_decay=1e-3)
    result = run(task, config)
    assert result.head.projection is None
    assert target_ua(result, task) > 0.9  # the sign-flipped cue is learned from the German clips
    assert embed(result, task["test"]).shape == (len(task["test"]), len(CLASSES))  # logits, for plots
    loaded = load_model(save_model(result, tmp_path / "model"))
    assert np.allclose(predict_proba(loaded, task["test"]), predict_proba(result, task["test"]), atol=1e-6)


# --- pseudo-label balancing ---------------------------------------------------------------------


def shifted_task(seed=3, n_labeled=0):
    """The target language moves both cues by +3: a source model calls almost every target clip class 0,
    yet orders the clips right. Features stay unnormalised so the shift survives."""
    rng = np.random.default_rng(seed)

    def clips(n, language, shift, prefix):
        labels = np.repeat([0, 1], n)
        x = 0.7 * rng.normal(size=(len(labels), 6))
        x[:, :2] += 2.0 * np.where(labels == 0, 1.0, -1.0)[:, None] + shift
        ids = [f"{prefix}{i}" for i in range(len(labels))]
        speakers = [f"{language}/{i % 3}" for i in range(len(labels))]
        return ClipSet(ids, labels, [language] * len(labels), speakers, features=np.stack([x, x], axis=1))

    return {
        "source": clips(100, "en", 0.0, "s"),
        "labeled": clips(n_labeled, "de", 3.0, "k"),
        "unlabeled": clips(100, "de", 3.0, "u"),
        "validation": {"en": clips(40, "en", 0.0, "vs"), "de": clips(40, "de", 3.0, "vt")},
        "test": clips(100, "de", 3.0, "t"),
    }


def test_balancing_per_speaker_repairs_a_source_models_class_bias_without_target_labels():
    task = shifted_task()
    config = quick_config(
        policy="hard", normalization="none", epochs=8, window=4, projection_dim=0, layer_combination="concat"
    )
    plain = run(task, config.replace(pseudo_balance="none"))
    balanced = run(task, config.replace(pseudo_balance="per-speaker"))
    assert plain.rounds[0]["accuracy"] < 0.7  # the bias decides most pseudo-labels ...
    assert balanced.rounds[0]["accuracy"] > 0.8  # ... until each speaker's mean prediction is uniform
    counts = balanced.rounds[0]["accepted_per_class"]
    assert min(counts.values()) > 0.3 * sum(counts.values())
    assert target_ua(balanced, task) > target_ua(plain, task) + 0.05


def test_auto_balancing_runs_only_while_no_target_clip_is_labeled():
    config = quick_config(
        policy="hard", normalization="none", epochs=8, window=4, projection_dim=0, layer_combination="concat"
    )
    unlabeled_only = shifted_task()
    auto = run(unlabeled_only, config.replace(pseudo_balance="auto"))
    explicit = run(unlabeled_only, config.replace(pseudo_balance="per-speaker"))
    test = unlabeled_only["test"]
    np.testing.assert_array_equal(predict_proba(auto, test), predict_proba(explicit, test))
    with_labels = shifted_task(n_labeled=3)
    auto = run(with_labels, config.replace(pseudo_balance="auto"))
    plain = run(with_labels, config.replace(pseudo_balance="none"))
    balanced = run(with_labels, config.replace(pseudo_balance="per-speaker"))
    np.testing.assert_array_equal(predict_proba(auto, test), predict_proba(plain, test))
    # ... and balancing would have changed this task's pseudo-labels, so the equality above means something
    assert auto.rounds[0]["accepted_per_class"] != balanced.rounds[0]["accepted_per_class"]


# --- model selection ----------------------------------------------------------------------------


def test_selection_keeps_an_epoch_trained_on_pseudo_labels():
    task = make_task()
    config = quick_config(policy="hard", epochs=12, window=5, patience=2)
    result = run(task, config)
    assert result.best_epoch > 5  # never an epoch from before the first round
    assert result.epochs_run >= 5 + 1 + 2  # patience counts from the first round on
    assert result.rounds  # so the run reached a round
    # the paper's rule (any epoch) stays selectable, and scores the same epochs
    anywhere = run(task, config.replace(select_after_first_round=False, patience=0))
    scores = [row["val_score"] for row in anywhere.history]
    assert anywhere.best_epoch == int(np.argmax(scores)) + 1


def test_label_free_selection_never_looks_at_target_validation_labels():
    task = make_task()
    config = quick_config(policy="hard", epochs=10, window=3, selection="label-free")
    honest = run(task, config)
    wrong = dict(task["validation"])
    wrong["de"] = wrong["de"].subset(np.arange(len(wrong["de"])))
    wrong["de"].labels = 1 - wrong["de"].labels  # every target validation label flipped
    blind = run({**task, "validation": wrong}, config)
    assert blind.best_epoch == honest.best_epoch
    np.testing.assert_array_equal(predict_proba(honest, task["test"]), predict_proba(blind, task["test"]))
    row = honest.history[honest.best_epoch - 1]
    assert 0.0 <= row["pool_score"] <= 1.0
    assert set(row["val_ua"]) == {"en", "de"}  # still scored, for the record
    assert row["val_score"] == pytest.approx((row["val_ua"]["en"] + row["pool_score"]) / 2)
    # the target-label rule does look at them
    flipped = run({**task, "validation": wrong}, config.replace(selection="validation"))
    assert flipped.history[-1]["val_score"] != pytest.approx(
        np.mean(list(honest.history[-1]["val_ua"].values()))
    )


def test_label_propagation_feeds_pseudo_labels_only_when_target_clips_are_labeled():
    task = make_task(n_labeled=3)
    config = quick_config(policy="hard", epochs=4, window=2)
    plain = run(task, config)
    spread = run(task, config.replace(propagation=1.0))
    # the pool's clusters are the classes here: spreading 3 labels per class labels the pool right
    assert spread.rounds[0]["accuracy"] > 0.9
    assert spread.rounds[0]["accuracy"] >= plain.rounds[0]["accuracy"]
    assert [r["accepted_per_class"] for r in spread.rounds] != [r["accepted_per_class"] for r in plain.rounds]
    no_labels = {**task, "labeled": task["labeled"].subset(np.zeros(0, int))}
    a, b = run(no_labels, config), run(no_labels, config.replace(propagation=1.0))
    np.testing.assert_array_equal(predict_proba(a, task["test"]), predict_proba(b, task["test"]))
    with pytest.raises(ValueError, match="propagation"):
        config.replace(propagation=1.5)


def test_auto_language_balancing_runs_per_language_until_ten_labels_per_class():
    config = quick_config(
        policy="hard", normalization="none", epochs=8, window=4, projection_dim=0, layer_combination="concat"
    )
    test = shifted_task()["test"]
    for n_labeled, same_as in ((0, "per-language"), (3, "per-language"), (10, "none")):
        task = shifted_task(n_labeled=n_labeled)
        auto = run(task, config.replace(pseudo_balance="auto-language"))
        other = run(task, config.replace(pseudo_balance=same_as))
        np.testing.assert_array_equal(predict_proba(auto, test), predict_proba(other, test))
    # balancing changes this task's pseudo-labels, so the equalities above mean something
    task = shifted_task(n_labeled=10)
    balanced = run(task, config.replace(pseudo_balance="per-language"))
    plain = run(task, config.replace(pseudo_balance="none"))
    assert balanced.rounds[0]["accepted_per_class"] != plain.rounds[0]["accepted_per_class"]


def test_auto_language_balancing_counts_labeled_clips_not_their_augmented_copies():
    config = quick_config(
        policy="hard", normalization="none", epochs=8, window=4, projection_dim=0, layer_combination="concat"
    )
    task = shifted_task(n_labeled=3)  # 6 labeled clips: fewer than 10 per class, so balancing runs
    labeled = task["labeled"]
    copies = [  # 3 training copies per clip, as serdemo.learn.augment names them: 24 rows, 12 per class
        ClipSet([f"{i}#aug{k}" for i in labeled.ids], labeled.labels, labeled.languages, labeled.speakers,
                features=labeled.features + 0.01 * k)
        for k in range(3)
    ]  # fmt: skip
    task = {**task, "labeled": ClipSet.concat([labeled, *copies])}
    auto = run(task, config.replace(pseudo_balance="auto-language"))
    balanced = run(task, config.replace(pseudo_balance="per-language"))
    plain = run(task, config.replace(pseudo_balance="none"))
    test = task["test"]
    np.testing.assert_array_equal(predict_proba(auto, test), predict_proba(balanced, test))
    assert balanced.rounds[0]["accepted_per_class"] != plain.rounds[0]["accepted_per_class"]


def test_hard_mixup_mixes_every_mini_batch_and_the_paper_setting_none(monkeypatch: pytest.MonkeyPatch):
    import importlib

    module = importlib.import_module("serdemo.learn.adapt")  # serdemo.learn.adapt is also the function
    calls = []

    def counting_mixup(*args):
        calls.append(len(args[0]))
        return mixup(*args)

    monkeypatch.setattr(module, "mixup", counting_mixup)
    task = make_task(n_labeled=3)
    config = quick_config(policy="hard", epochs=4, window=2)
    mixed = run(task, config.replace(hard_mixup=True))
    batches = len(calls)
    assert batches >= 4  # at least one mixed mini-batch per epoch
    calls.clear()
    plain = run(task, config.replace(hard_mixup=False))
    assert not calls
    assert mixed.rounds and plain.rounds
    assert not np.array_equal(predict_proba(mixed, task["test"]), predict_proba(plain, task["test"]))


def one_mood_task(seed=5):
    """Source: two classes along feature 0. The target language adds a marker (+4 on feature 2) and its
    labeled pool holds only class 1: a head can learn "marker -> class 1" and still fit every row."""
    rng = np.random.default_rng(seed)

    def clips(labels, language, prefix):
        labels = np.asarray(labels)
        x = 0.5 * rng.normal(size=(len(labels), 4))
        x[:, 0] += 2.0 * np.where(labels == 0, 1.0, -1.0)
        x[:, 2] += 4.0 if language == "de" else 0.0
        ids = [f"{prefix}{i}" for i in range(len(labels))]
        return ClipSet(ids, labels, [language] * len(labels), [f"{language}/0"] * len(labels), features=x)

    return {
        "source": clips(np.repeat([0, 1], 100), "en", "s"),
        "labeled": clips(np.ones(20, int), "de", "k"),
        "unlabeled": clips(np.zeros(0, int), "de", "u"),
        "validation": {"en": clips(np.repeat([0, 1], 40), "en", "vs")},
        "test": clips(np.repeat([0, 1], 100), "de", "t"),
    }


def test_transplants_keep_a_pool_labeled_in_one_mood_from_teaching_its_language_as_the_emotion():
    task = one_mood_task()
    # global statistics keep the language's marker, as language_prior does for a small pool; trained on
    # the labels of one emotion, which the default would set aside (few_emotion_labels)
    config = AdaptConfig(
        classes=CLASSES,
        policy="none",
        epochs=30,
        patience=0,
        normalization="global",
        lr=1e-2,
        few_emotion_labels=0,
    )
    shortcut = run(task, config)
    transplanted = run(task, config.replace(transplant_copies=4))
    answers = predict_proba(shortcut, task["test"]).argmax(1)
    assert (answers == 1).mean() > 0.9  # the marker alone says "sadness"
    assert target_ua(shortcut, task) < 0.6
    assert target_ua(transplanted, task) > 0.85
    # the transplants are the source's clips in the target language: reported as their own rows
    assert set(transplanted.history[-1]["train_ua"]) == {"en", "de", "de transplant"}


def test_transplants_need_frozen_mode_and_a_count_of_zero_or_more():
    from serdemo.config import ConfigError

    with pytest.raises(ConfigError, match="transplant_copies"):
        AdaptConfig(transplant_copies=-1)
    with pytest.raises(ConfigError, match="frozen"):
        AdaptConfig(transplant_copies=2, mode="finetune")


# --- a target too small to learn from (serdemo.learn.small_pool) ---------------------------------------


def test_a_small_target_pool_is_not_learned_from_until_it_has_clips_or_labels_enough(tmp_path: Path):
    config = quick_config(policy="hard")
    small_task = make_task(n_labeled=0, n_unlabeled=10)  # 20 unlabeled clips of the new language
    small = run(small_task, config)
    assert small.small_pool and small.rounds == []  # no pseudo-labels
    assert (small.config.policy, small.config.language_prior) == ("none", SMALL_POOL_PRIOR)
    assert small.normalizer.language_prior == SMALL_POOL_PRIOR  # statistics near the global ones
    loaded = load_model(save_model(small, tmp_path / "small"))
    assert loaded.small_pool and loaded.config == small.config  # the saved config is the one it ran with
    # the same pool learned from: the switch off, 40 clips, or 10 labels
    off_config = config.replace(small_pool_clips=0)
    off = run(small_task, off_config)
    assert not off.small_pool and off.rounds and off.config == off_config
    assert not run(make_task(n_labeled=0, n_unlabeled=20), config).small_pool
    labeled = run(make_task(n_labeled=5, n_unlabeled=10), config)  # 10 labels beside 20 clips
    assert not labeled.small_pool and labeled.rounds
    assert not run(make_task(n_labeled=2, n_unlabeled=10), config.replace(small_pool_labels=3)).small_pool
    # fewer labels are set aside as pool clips: the run is the one without them; a label's augmented
    # training copies are rows, not labels (4 labels in 16 rows stay few), and are dropped with it
    task = make_task(n_labeled=2, n_unlabeled=10)
    given = task["labeled"]
    copies = ClipSet(
        [f"{i}#aug0" for i in given.ids], given.labels, given.languages, given.speakers,
        features=given.features + 0.01,
    )  # fmt: skip
    with_labels = run({**task, "labeled": ClipSet.concat([given, copies, copies, copies])}, config)
    as_pool = {
        **task,
        "labeled": given.subset([]),
        "unlabeled": ClipSet.concat([given.without_labels(), task["unlabeled"]]),
    }
    assert with_labels.small_pool and with_labels.rounds == []
    test = task["test"]
    np.testing.assert_array_equal(predict_proba(with_labels, test), predict_proba(run(as_pool, config), test))
    trained_on_labels = run(task, config.replace(small_pool_clips=0, policy="none", language_prior=1000))
    assert not np.array_equal(predict_proba(with_labels, test), predict_proba(trained_on_labels, test))


def test_small_pool_settings_are_checked():
    with pytest.raises(ConfigError, match="small_pool_clips must be >= 0"):
        AdaptConfig(small_pool_clips=-1)
    with pytest.raises(ConfigError, match="small_pool_labels must be >= 0"):
        AdaptConfig(small_pool_labels=-2)
    with pytest.raises(ConfigError, match="few_emotion_labels must be >= 0"):
        AdaptConfig(few_emotion_labels=-1)


def test_labels_of_few_emotions_are_set_aside_and_the_pool_is_not_learned_from(tmp_path: Path):
    config = quick_config(policy="hard")
    task = make_task(n_labeled=6, n_unlabeled=100)  # a pool of 200 clips: not small
    angry = task["labeled"].subset(np.flatnonzero(task["labeled"].labels == 0))  # 6 labels, all anger
    one_emotion = run({**task, "labeled": angry}, config)
    assert one_emotion.labels_of_few_emotions and not one_emotion.small_pool
    assert one_emotion.rounds == [] and one_emotion.config.policy == "none"  # nothing learned from the pool
    assert one_emotion.normalizer.language_prior == SMALL_POOL_PRIOR
    loaded = load_model(save_model(one_emotion, tmp_path / "one"))
    assert loaded.labels_of_few_emotions and loaded.config == one_emotion.config
    # the same run as one with the labels given back to the pool as unlabeled clips, learning nothing
    as_pool = {
        **task,
        "labeled": angry.subset([]),
        "unlabeled": ClipSet.concat([angry.without_labels(), task["unlabeled"]]),
    }
    nothing = run(as_pool, config.replace(small_pool_clips=10_000))
    assert nothing.small_pool
    test = task["test"]
    np.testing.assert_array_equal(predict_proba(one_emotion, test), predict_proba(nothing, test))
    # learned from: labels of two emotions, fewer labels than the threshold, or the switch off
    assert not run(task, config).labels_of_few_emotions
    fewer = run({**task, "labeled": angry.subset(np.arange(4))}, config)
    assert not fewer.labels_of_few_emotions and fewer.rounds
    off = run({**task, "labeled": angry}, config.replace(few_emotion_labels=0))
    assert not off.labels_of_few_emotions and off.rounds and off.config.policy == "hard"


def test_labels_of_one_or_two_of_five_emotions_are_few_and_a_third_emotion_lifts_it():
    config = AdaptConfig()  # 5 emotions; from 5 labels of at most 2 of them

    def labeled(labels):
        n = len(labels)
        ids, features = [f"c{i}" for i in range(n)], np.zeros((n, 1, 2), np.float32)
        return ClipSet(ids, np.array(labels), ["xx"] * n, ["s"] * n, features=features)

    assert labels_of_few_emotions(config, labeled([0, 0, 0, 0, 0]))
    assert labels_of_few_emotions(config, labeled([0, 3, 0, 3, 3, 0, 0, 3, 3, 0]))  # angry and calm calls
    assert not labels_of_few_emotions(config, labeled([0, 3, 0, 3, 1]))  # a third emotion
    assert not labels_of_few_emotions(config, labeled([0, 3, 0, 3]))  # 4 labels: an early session
    assert not labels_of_few_emotions(config.replace(few_emotions=1), labeled([0, 3, 0, 3, 3]))
    assert counts_of_few_emotions(config, [3, 0, 0, 3, 0]) and emotions_wanted(config, [3, 0, 0, 3, 0]) == 1
    assert emotions_wanted(config, [6, 0, 0, 0, 0]) == 2
    # a pool of 12 clips, 6 labels of one emotion: 2 more emotions' labels make 8, still 2 short of 10
    assert labels_wanted_beside_other_emotions(config, 12, [6, 0, 0, 0, 0]) == 2
    assert labels_wanted_beside_other_emotions(config, 200, [6, 0, 0, 0, 0]) is None  # not a small pool
    with pytest.raises(ConfigError, match="few_emotions must be >= 1"):
        AdaptConfig(few_emotions=0)


def test_a_config_saved_before_two_emotions_counted_as_few_keeps_its_meaning():
    old = {**AdaptConfig().to_dict(), "one_emotion_labels": 7}
    del old["few_emotion_labels"], old["few_emotions"]
    config = AdaptConfig.from_dict(old)
    assert config.few_emotion_labels == 7 and config.few_emotions == 1
