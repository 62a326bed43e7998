"""The experiment CLI end to end on tiny synthetic RAVDESS/EMO-DB look-alikes and a tiny encoder."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import serdemo.experiment.protocol as protocol
import serdemo.experiment.runner as runner_module
from serdemo.audio import SAMPLE_RATE
from serdemo.cli import main
from serdemo.config import AdaptConfig
from serdemo.corpora.base import Utterance
from serdemo.encoders.base import ENCODERS, EncoderSpec, UtteranceEncoder, register_encoder
from serdemo.experiment import CorpusRef, ExperimentRunner, ExperimentSpec, stratified_sample
from serdemo.labels import EMOTIONS

TONES = {"anger": 500.0, "fear": 1500.0, "happiness": 2500.0, "neutral": 3500.0, "sadness": 4500.0}
RAVDESS_CODES = {"neutral": "01", "happiness": "03", "sadness": "04", "anger": "05", "fear": "06"}
EMODB_LETTERS = {"anger": "W", "fear": "A", "happiness": "F", "neutral": "N", "sadness": "T"}
EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")


class TinyEncoder(UtteranceEncoder):
    """Log energies of eight 1 kHz bands (layer 0) and a fixed random mix of them (layer 1).

    Emotions of the synthetic corpora are tones in different bands, so a head on these features can
    learn them: a broken pipeline shows up as chance-level UA.
    """

    name = "tiny-test"
    num_layers = 2
    hidden_size = 8

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.mix = nn.Linear(8, 8)
        with torch.no_grad():
            self.mix.weight.copy_(torch.randn(8, 8, generator=generator) / 3)
            self.mix.bias.zero_()
        self.register_buffer("window", torch.hann_window(400), persistent=False)
        self.calls = 0

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += len(waveforms)
        frames = waveforms.unfold(1, 400, 160)  # 25 ms frames, 10 ms hop
        spectrum = torch.fft.rfft(frames * self.window).abs()[..., :200]  # 40 Hz bins up to 8 kHz
        bands = torch.log(spectrum.reshape(*spectrum.shape[:2], 8, 25).mean(-1) + 1e-4)
        hidden = torch.stack([bands, torch.tanh(self.mix(bands))], dim=1)  # (B, 2, T, 8)
        return hidden, ((lengths - 400) // 160 + 1).clamp_min(1)


@pytest.fixture(autouse=True)
def tiny_encoder_registered():
    """A test-only encoder the CLI builds by name; removed after so other tests see the real registry."""
    register_encoder(EncoderSpec("tiny-test", "test-only band energies", TinyEncoder, offline=True))
    yield
    del ENCODERS["tiny-test"]


def tone(emotion: str, shift: float, rng: np.random.Generator, seconds: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    freq = TONES[emotion] + shift + rng.uniform(-150, 150)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """6 RAVDESS actors (English) and 10 EMO-DB speakers (German, tones shifted by 300 Hz)."""
    root = tmp_path_factory.mktemp("corpora")
    rng = np.random.default_rng(0)
    ravdess = root / "ravdess"
    for actor in range(1, 7):
        folder = ravdess / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for emotion, code in RAVDESS_CODES.items():
            for statement in ("01", "02"):
                name = f"03-01-{code}-01-{statement}-01-{actor:02d}.wav"
                sf.write(folder / name, tone(emotion, 0.0, rng), SAMPLE_RATE)
        # "calm" has no place in the five classes: the loader must drop it
        sf.write(folder / f"03-01-02-01-01-01-{actor:02d}.wav", tone("neutral", 0.0, rng), SAMPLE_RATE)
    emodb = root / "emodb"
    emodb.mkdir()
    for speaker in EMODB_SPEAKERS:
        for emotion, letter in EMODB_LETTERS.items():
            for text in ("a01", "a02", "b01"):
                sf.write(emodb / f"{speaker}{text}{letter}a.wav", tone(emotion, 300.0, rng), SAMPLE_RATE)
    return {"ravdess": ravdess, "emodb": emodb}


def run_cli(corpora: dict[str, Path], tmp_path: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "results.json"
    argv = [
        "experiment",
        "--source", f"ravdess={corpora['ravdess']}",
        "--target", f"emodb={corpora['emodb']}",
        "--encoder", "tiny-test",
        "--epochs", "6", "--window", "2",
        # the previous small head: it learns the toy tones in 6 epochs, a 32-input linear head does not
        "--projection-dim", "256", "--layer-combination", "mix",
        "--cache-dir", str(tmp_path / "cache"),
        "--out", str(out),
        "--quiet",
        *extra,
    ]  # fmt: skip
    return main(argv), out


def test_cli_writes_every_contract_key(corpora: dict[str, Path], tmp_path: Path) -> None:
    code, out = run_cli(corpora, tmp_path, "--labeled", "10", "--policy", "hard", "--seeds", "0", "1")
    assert code == 0
    results = json.loads(out.read_text())
    assert {"source_ua", "target_ua", "per_seed", "config", "timings", "summary", "machine"} <= set(results)
    assert results["config"]["adapt"]["policy"] == "hard" and results["config"]["labeled"] == 10
    assert results["command"].startswith("python -m serdemo experiment --source ravdess=")
    assert [s["seed"] for s in results["per_seed"]] == [0, 1]
    assert results["target_ua"] == pytest.approx(np.mean([s["target"]["ua"] for s in results["per_seed"]]))
    # tones are easy: a pipeline that mixes up labels, features or splits would sit near 20 % (chance)
    assert results["source_ua"] > 60 and results["target_ua"] > 60
    assert results["timings"]["embedding"] >= 0 and len(results["timings"]["training_per_seed"]) == 2
    for seed in results["per_seed"]:
        assert sum(seed["target_labeled_per_class"].values()) == 10
        assert min(seed["target_labeled_per_class"].values()) >= 1  # stratified: every emotion drawn
        for role in ("source", "target"):
            scores = seed[role]
            assert {"ua", "wa", "macro_f1", "confusion"} <= set(scores)
            confusion = np.array(scores["confusion"])
            assert confusion.shape == (5, 5)
            # UA is the mean recall of the classes present, in percent, from the same confusion matrix
            present = confusion.sum(1) > 0
            recall = np.diag(confusion)[present] / confusion.sum(1)[present]
            assert scores["ua"] == pytest.approx(100 * recall.mean())
            assert np.sum(scores["confusion"]) == seed["sizes"][role]["test"]
        curves = seed["curves"]
        assert len(curves["epoch"]) == seed["epochs_run"]
        for kind in ("train_ua", "val_ua"):
            for role in ("source", "target"):
                assert len(curves[kind][role]) == seed["epochs_run"]
                assert all(v is not None and 0 <= v <= 100 for v in curves[kind][role])
        for when in ("before", "after"):
            assert set(seed["silhouette"][when]) == {"emotion_target", "emotion_both", "language"}
            assert all(-1 <= v <= 1 for v in seed["silhouette"][when].values())
        assert seed["pseudo_label_rounds"], "hard policy with W=2 < E=6 must pseudo-label"
    # the labeled clips come from target train only; together with the pool they are all of it
    first = results["per_seed"][0]["sizes"]["target"]
    assert first["labeled"] + first["unlabeled"] + first["validation"] + first["test"] == 10 * 5 * 3
    assert not list(tmp_path.glob(".results.json.*")), "temporary output left behind"


def test_lower_bound_trains_source_only(corpora: dict[str, Path], tmp_path: Path) -> None:
    code, out = run_cli(corpora, tmp_path, "--labeled", "0", "--policy", "none", "--seeds", "0")
    assert code == 0
    seed = json.loads(out.read_text())["per_seed"][0]
    assert seed["target_labeled_per_class"] == dict.fromkeys(EMOTIONS, 0)
    assert seed["pseudo_label_rounds"] == []
    assert seed["silhouette"]["before"] == seed["silhouette"]["after"]  # the run is the source-only model
    assert all(v is None for v in seed["curves"]["train_ua"]["target"])  # no target label was trained on


def test_classes_restrict_the_label_set(corpora: dict[str, Path], tmp_path: Path) -> None:
    code, out = run_cli(
        corpora, tmp_path, "--classes", "sadness,anger", "--labeled", "4", "--policy", "soft", "--seeds", "0"
    )
    assert code == 0
    results = json.loads(out.read_text())
    assert results["config"]["adapt"]["classes"] == ["anger", "sadness"]
    seed = results["per_seed"][0]
    assert np.array(seed["target"]["confusion"]).shape == (2, 2)
    assert set(seed["target_labeled_per_class"]) == {"anger", "sadness"}
    # 2 classes x 3 texts x 10 speakers in EMO-DB, the other emotions dropped
    sizes = seed["sizes"]["target"]
    assert sizes["labeled"] + sizes["unlabeled"] + sizes["validation"] + sizes["test"] == 60


def test_upper_bound_labels_all_target_train(corpora: dict[str, Path], tmp_path: Path) -> None:
    code, out = run_cli(corpora, tmp_path, "--target-all-labeled", "--seeds", "0")
    assert code == 0
    results = json.loads(out.read_text())
    assert results["config"]["setting"] == "upper-bound"
    sizes = results["per_seed"][0]["sizes"]["target"]
    assert sizes["unlabeled"] == 0 and sizes["labeled"] > 0


def test_embeddings_are_computed_once_across_seeds_and_runs(corpora: dict[str, Path], tmp_path: Path) -> None:
    encoder = TinyEncoder()
    spec = ExperimentSpec(
        sources=(CorpusRef("ravdess", corpora["ravdess"]),),
        target=CorpusRef("emodb", corpora["emodb"]),
        labeled=5,
        # counted below: the clips themselves; training copies (learn.augment) are tested in test_augment.py
        adapt=AdaptConfig(encoder="tiny-test", epochs=2, window=1, seeds=(0, 1), augment_copies=0),
    )
    ExperimentRunner(encoder, cache_dir=tmp_path).run(spec)
    assert encoder.calls == 6 * 5 * 2 + 10 * 5 * 3  # every clip once, although two seeds ran
    ExperimentRunner(encoder, cache_dir=tmp_path).run(
        dataclasses.replace(spec, adapt=spec.adapt.replace(policy="soft"))
    )
    assert encoder.calls == 6 * 5 * 2 + 10 * 5 * 3  # a new run reads the disk cache


def test_training_copies_are_embedded_once_per_clip_and_copy(corpora: dict[str, Path], tmp_path: Path):
    encoder = TinyEncoder()
    spec = ExperimentSpec(
        sources=(CorpusRef("ravdess", corpora["ravdess"]),),
        target=CorpusRef("emodb", corpora["emodb"]),
        labeled=5,
        adapt=AdaptConfig(encoder="tiny-test", epochs=2, window=1, seeds=(0,), augment_copies=2),
    )
    result = ExperimentRunner(encoder, cache_dir=tmp_path).run(spec)
    clips = 6 * 5 * 2 + 10 * 5 * 3
    trained = result["per_seed"][0]["sizes"]["source"]["train"] + 5  # source train + labeled target
    assert encoder.calls == clips + 2 * trained
    ExperimentRunner(encoder, cache_dir=tmp_path).run(spec)
    assert encoder.calls == clips + 2 * trained  # a rerun finds every copy in the cache


def test_finetune_mode_runs(corpora: dict[str, Path], tmp_path: Path) -> None:
    code, out = run_cli(
        corpora, tmp_path, "--mode", "finetune", "--labeled", "5", "--seeds", "0", "--epochs", "2"
    )
    assert code == 0
    assert json.loads(out.read_text())["config"]["adapt"]["mode"] == "finetune"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--source": "nosuch=/tmp"}, "unknown corpus 'nosuch'"),
        ({"--target": "emodb=/does/not/exist"}, "does not exist"),
        ({"--encoder": "nosuch-encoder"}, "unknown encoder 'nosuch-encoder'"),
        ({"--labeled": "5000"}, "use --labeled"),
        ({"--out": "/does/not/exist/results.json"}, "does not exist"),
        ({"--source": "=/data"}, "NAME=PATH"),
        ({"--source": "ravdess=/does/not/exist"}, "SERDEMO_CORPORA"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    corpora: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, message: str
) -> None:
    argv = {
        "--source": f"ravdess={corpora['ravdess']}",
        "--target": f"emodb={corpora['emodb']}",
        "--encoder": "tiny-test",
        "--epochs": "1",
        "--seeds": "0",
        "--cache-dir": str(tmp_path / "cache"),
        "--out": str(tmp_path / "results.json"),
    }
    argv.update(change)
    code = main(["experiment", "--quiet", *[x for pair in argv.items() for x in pair]])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results.json").exists()


def test_bad_classes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--source", "ravdess=x", "--target", "emodb=y", "--classes", "anger,joy",
              "--out", str(tmp_path / "r.json")])  # fmt: skip
    assert exit_info.value.code == 2
    assert "unknown emotion 'joy'" in capsys.readouterr().err


def test_interrupted_run_leaves_no_output(
    corpora: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_adapt, calls = runner_module.adapt, []

    def interrupted_adapt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # Ctrl-C in the middle of the run, after the first model trained
            raise KeyboardInterrupt
        return real_adapt(*args, **kwargs)

    monkeypatch.setattr(runner_module, "adapt", interrupted_adapt)
    code, out = run_cli(corpora, tmp_path, "--labeled", "5", "--seeds", "0", "1")
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "cache"]


def test_stratified_sample_keeps_class_shares() -> None:
    labels = ["anger"] * 60 + ["sadness"] * 30 + ["fear"] * 10
    picked = stratified_sample(labels, 10, np.random.default_rng(0))
    assert len(set(picked)) == 10
    assert sorted(labels[i] for i in picked).count("anger") == 6
    assert sorted(labels[i] for i in picked).count("fear") == 1
    # fewer clips than classes: no class is guaranteed, but the count is exact
    assert len(stratified_sample(labels, 2, np.random.default_rng(0))) == 2


def test_module_help_lists_subcommands() -> None:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "serdemo", "--help"], capture_output=True, text=True, cwd=root
    )
    assert done.returncode == 0
    assert all(name in done.stdout for name in ("experiment", "corpora", "encoders"))
    listing = subprocess.run(
        [sys.executable, "-m", "serdemo", "corpora"], capture_output=True, text=True, cwd=root
    )
    assert listing.returncode == 0 and any(
        line.split()[:2] == ["ravdess", "en"] for line in listing.stdout.splitlines()
    )


@pytest.mark.slow
@pytest.mark.corpora
def test_real_ravdess_to_emodb_one_seed(ravdess_root: Path, emodb_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    code = main([
        "experiment", "--source", f"ravdess={ravdess_root}", "--target", f"emodb={emodb_root}",
        "--encoder", "whisper-base", "--labeled", "100", "--policy", "hard", "--seeds", "0",
        "--epochs", "20", "--window", "5", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    seed = results["per_seed"][0]
    assert seed["sizes"]["target"]["test"] > 50 and seed["sizes"]["source"]["test"] > 100
    # frozen Whisper features separate acted emotions far above chance (20 %) in both languages
    assert results["source_ua"] > 50 and results["target_ua"] > 50


def test_the_old_representation_stays_selectable(corpora: dict[str, Path], tmp_path: Path) -> None:
    extra = ("--labeled", "10", "--policy", "none", "--seeds", "0")
    old = ("--normalization", "per-language", "--projection-dim", "256")
    code, out = run_cli(corpora, tmp_path, *extra, *old)
    assert code == 0
    adapt_config = json.loads(out.read_text())["config"]["adapt"]
    assert adapt_config["normalization"] == "per-language" and adapt_config["projection_dim"] == 256
    with pytest.raises(SystemExit) as bad:
        run_cli(corpora, tmp_path, *extra, "--normalization", "per-moon")
    assert bad.value.code == 2


@pytest.mark.parametrize("flag, mixes", [("--hard-mixup", True), ("--no-hard-mixup", False)])
def test_hard_mixup_is_selectable(corpora: dict[str, Path], tmp_path: Path, flag: str, mixes: bool) -> None:
    code, out = run_cli(corpora, tmp_path, "--labeled", "5", "--policy", "hard", "--seeds", "0", flag)
    assert code == 0
    assert json.loads(out.read_text())["config"]["adapt"]["hard_mixup"] is mixes


def confined(corpora: dict[str, Path], tmp_path: Path, k: int, seed: int):
    spec = ExperimentSpec(
        sources=(CorpusRef.parse(f"ravdess={corpora['ravdess']}"),),
        target=CorpusRef.parse(f"emodb={corpora['emodb']}"),
        labeled=5,
        speaker_emotions=k,
        adapt=AdaptConfig(encoder="tiny-test", seeds=(seed,)),
    )
    runner = ExperimentRunner(cache_dir=tmp_path / "cache")
    source = runner._corpus(spec.sources[0], EMOTIONS, keep_unlabeled=False)
    target = runner._corpus(spec.target, EMOTIONS, keep_unlabeled=True)
    return protocol.seed_data([source], target, spec, seed)


def emotions_by_speaker(utterances) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for u in utterances:
        out.setdefault(u.speaker, set()).add(u.emotion)
    return out


@pytest.mark.parametrize("k", [1, 2])
def test_speaker_emotions_confines_every_target_part_and_only_the_target(
    corpora: dict[str, Path], tmp_path: Path, k: int
) -> None:
    data = confined(corpora, tmp_path, k, seed=0)
    train = data.target_labeled + data.target_unlabeled
    for part in (train, data.target_validation, data.target_test):
        shown = emotions_by_speaker(part)
        assert shown and all(len(e) == k for e in shown.values())
        assert len({u.emotion for u in part}) == min(len(EMOTIONS), k * len(shown))
    assert {u.emotion for u in train} == set(EMOTIONS)  # 6 train speakers cover the five classes
    assert {u.emotion for u in data.target_labeled} == set(EMOTIONS)  # the draw still stratifies
    assert all(len(e) == len(EMOTIONS) for e in emotions_by_speaker(data.source_train).values())
    if k == 1:  # 2 test speakers cannot show five emotions: the notes say so
        assert any("cannot cover every class" in note for note in data.notes)
    # the test speakers' every clip is kept beside the confined test, to score the same model on it
    every = data.target_test_every_emotion
    assert {u.speaker for u in every} == {u.speaker for u in data.target_test}
    assert {u.id for u in data.target_test} < {u.id for u in every}
    assert all(len(e) == len(EMOTIONS) for e in emotions_by_speaker(every).values())
    same = confined(corpora, tmp_path, k, seed=0)
    assert [u.id for u in same.target_unlabeled] == [u.id for u in data.target_unlabeled]
    assert [u.id for u in same.target_test] == [u.id for u in data.target_test]


def test_cli_runs_both_directions_by_corpus_name_with_speaker_emotions(
    corpora: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERDEMO_CORPORA", str(corpora["ravdess"].parent))
    for source, target in (("ravdess", "emodb"), ("emodb", "ravdess")):
        out = tmp_path / f"{source}-{target}.json"
        code = main(
            ["experiment", "--source", source, "--target", target, "--encoder", "tiny-test",
             "--epochs", "4", "--window", "2", "--labeled", "5", "--speaker-emotions", "2",
             "--selection", "label-free", "--normalization", "nap", "--seeds", "0",
             "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--quiet"]
        )  # fmt: skip
        assert code == 0
        results = json.loads(out.read_text())
        assert results["config"]["speaker_emotions"] == 2
        assert results["config"]["setting"] == "hard-5-k2"
        assert results["config"]["target"]["name"] == target
        assert results["config"]["adapt"]["selection"] == "label-free"
        assert results["per_seed"][0]["sizes"]["target"]["labeled"] == 5
        every = results["per_seed"][0]["target_every_emotion"]  # the unconfined test, scored too
        assert every["clips"] > results["per_seed"][0]["sizes"]["target"]["test"]
        assert 0 <= every["ua"] <= 100 and 0 <= every["source_only_ua"] <= 100
        assert results["summary"]["target_every_emotion"]["ua"]["mean"] == every["ua"]


def test_least_certain_labels_the_smallest_margins_and_only_clips_with_a_label() -> None:
    def utterance(i: int, emotion: str | None) -> Utterance:
        return Utterance(f"c{i}", Path(f"c{i}.wav"), "emodb", "de", "emodb/1", None, emotion, emotion or "?")

    pool = [utterance(0, "anger"), utterance(1, None), utterance(2, "sadness"), utterance(3, "fear")]
    data = protocol.SeedData([], [], [], [], pool, [], [], [])
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.55, 0.45], [0.6, 0.4]])  # margins .8, 0, .1, .2
    picked = protocol.least_certain(data, probs, 2)
    assert [u.id for u in picked.target_labeled] == ["c2", "c3"]  # c1 is closer, but has no label to give
    assert [u.id for u in picked.target_unlabeled] == ["c0", "c1"]


def test_label_choice_margin_labels_the_asked_number_from_target_train(
    corpora: dict[str, Path], tmp_path: Path
) -> None:
    code, out = run_cli(corpora, tmp_path, "--labeled", "5", "--seeds", "0", "--label-choice", "margin")
    assert code == 0
    results = json.loads(out.read_text())
    assert results["config"]["label_choice"] == "margin" and results["config"]["setting"] == "hard-5-margin"
    seed = results["per_seed"][0]
    assert sum(seed["target_labeled_per_class"].values()) == 5
    (tmp_path / "s").mkdir()
    stratified = json.loads(run_cli(corpora, tmp_path / "s", "--labeled", "5", "--seeds", "0")[1].read_text())
    sizes = stratified["per_seed"][0]["sizes"]["target"]
    assert seed["sizes"]["target"] == sizes  # same split, same number of labels, other clips
    with pytest.raises(SystemExit):
        run_cli(corpora, tmp_path, "--labeled", "5", "--label-choice", "oracle")


def pooled(corpora: dict[str, Path], tmp_path: Path, pool: int, seed: int = 0, **changes):
    spec = ExperimentSpec(
        sources=(CorpusRef.parse(f"ravdess={corpora['ravdess']}"),),
        target=CorpusRef.parse(f"emodb={corpora['emodb']}"),
        labeled=5,
        unlabeled_pool=pool,
        adapt=AdaptConfig(encoder="tiny-test", seeds=(seed,), **changes),
    )
    runner = ExperimentRunner(cache_dir=tmp_path / "cache")
    source = runner._corpus(spec.sources[0], EMOTIONS, keep_unlabeled=False)
    target = runner._corpus(spec.target, EMOTIONS, keep_unlabeled=True)
    return protocol.seed_data([source], target, spec, seed), spec


def test_unlabeled_pool_keeps_one_random_draw_of_the_pool_per_seed(corpora: dict[str, Path], tmp_path: Path):
    full, full_spec = pooled(corpora, tmp_path, 0)
    small, spec = pooled(corpora, tmp_path, 20)
    ids = [u.id for u in small.target_unlabeled]
    assert len(ids) == 20 and set(ids) < {u.id for u in full.target_unlabeled}
    assert len({u.speaker for u in small.target_unlabeled}) > 1  # a random draw, not the first speaker's
    assert [u.id for u in small.target_labeled] == [u.id for u in full.target_labeled]  # labels as before
    assert [u.id for u in small.target_test] == [u.id for u in full.target_test]
    # every setting of a seed sees the same clips, another seed others
    other_setting, _ = pooled(corpora, tmp_path, 20, policy="none", normalization="per-language")
    assert [u.id for u in other_setting.target_unlabeled] == ids
    assert [u.id for u in pooled(corpora, tmp_path, 20, seed=1)[0].target_unlabeled] != ids
    assert len(pooled(corpora, tmp_path, 1000)[0].target_unlabeled) == len(full.target_unlabeled)
    assert (spec.setting, full_spec.setting) == ("hard-5-pool20", "hard-5")
    # the source-only model reads the pool's statistics: one per pool size
    assert protocol.baseline_key(spec, 0) != protocol.baseline_key(full_spec, 0)
    with pytest.raises(protocol.ExperimentError, match="unlabeled_pool must be >= 0"):
        dataclasses.replace(spec, unlabeled_pool=-1)


def test_cli_small_unlabeled_pool_is_not_learned_from_unless_asked(corpora: dict[str, Path], tmp_path: Path):
    pool = ("--labeled", "0", "--unlabeled-pool", "20", "--seeds", "0")
    code, out = run_cli(corpora, tmp_path, *pool)
    assert code == 0
    results = json.loads(out.read_text())
    seed = results["per_seed"][0]
    assert seed["sizes"]["target"]["unlabeled"] == 20 and results["config"]["unlabeled_pool"] == 20
    assert seed["pseudo_label_rounds"] == []  # 20 clips, no label: serdemo.learn.small_pool
    assert "--unlabeled-pool 20" in results["command"]
    code, out = run_cli(corpora, tmp_path, *pool, "--small-pool-clips", "0")
    assert code == 0
    assert json.loads(out.read_text())["per_seed"][0]["pseudo_label_rounds"]  # asked to learn from it
