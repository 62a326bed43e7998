"""Fine-tune rounds in the app (issue 15), on a tiny random Whisper and synthetic tone corpora, on a CPU.

The app offers them only with a GPU or an explicit CPU opt-in; these tests opt in. A fine-tuned version
carries its own encoder: predictions, the labeling queue and the Explore maps must read that encoder's
vectors, a rollback must bring the previous encoder back, and a cancelled round must leave the active
version as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from serdemo.app import (
    AdaptRequest,
    LabelState,
    RoundCancelledError,
    Service,
    ServiceConfig,
    ServiceError,
    explore,
    rounds,
    tuned,
)
from serdemo.audio import load_audio
from serdemo.config import AdaptConfig
from serdemo.learn import embed, load_model
from serdemo.learn.finetune import ALLOW_CPU_ENV, finetune_availability
from serdemo.speech import with_frontend
from tests.test_service import make_service, started, tiny_encoder  # noqa: F401  (started: a fixture)


@dataclasses.dataclass(frozen=True)
class FastFinetune(AdaptConfig):
    """The app's round settings with a large encoder rate: at the default 1e-5 a few steps barely move a
    tiny encoder, and a test could not tell its vectors from the base encoder's."""

    encoder_lr: float = 1e-3


@pytest.fixture
def service(started, tmp_path, monkeypatch) -> Service:  # noqa: F811  (the imported fixture)
    """A service on a copy of ``started``'s data that offers fine-tune rounds on this CPU (the opt-in)."""
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(rounds, "AdaptConfig", FastFinetune)
    shutil.copytree(started / "data", tmp_path / "data")
    shutil.copytree(started / "cache", tmp_path / "cache")
    return make_service(tmp_path, allow_cpu_finetune=True)


def finetune_round(service: Service, **changes) -> rounds.AdaptReport:
    request = AdaptRequest(language="de", policy="hard", tau=0.3, epochs=4, window=2, finetune=True)
    return service.adapt(dataclasses.replace(request, **changes))


def expected_probs(service: Service, version_id: str, path: Path) -> np.ndarray:
    """What the saved version says about ``path``, computed apart from the app: load its files into a new
    tiny encoder, embed through the app's front end, apply its head."""
    folder = next(v.weights_path for v in service.store.model_versions() if v.id == version_id)
    loaded = load_model(folder, encoder=tiny_encoder())
    vectors = with_frontend(loaded.model.encoder, service.frontend).embed([load_audio(path)])
    with torch.no_grad():
        return torch.softmax(loaded.head(torch.from_numpy(vectors)), -1).numpy()[0]


def probs_of(prediction) -> np.ndarray:
    return np.array(list(prediction.probs.values()))


def test_a_finetune_round_trains_a_copy_of_the_encoder_and_predictions_use_it(service):
    first = service.store.active_version().id
    clip = service.store.clips("de")[0].path
    base = tuned.base_encoder(service.ws.encoder)
    base_weights = copy.deepcopy(base.state_dict())
    seen = []
    report = service.adapt(
        AdaptRequest(language="de", policy="hard", tau=0.3, epochs=4, window=2, finetune=True),
        progress=lambda fraction, text: seen.append((fraction, text)),
    )
    assert report.mode == "finetune" and report.parent == first
    assert service.store.active_version().id == report.version_id
    assert service.store.active_version().config["mode"] == "finetune"
    assert seen[-1][0] == pytest.approx(1.0) and seen[-1][1].startswith("fine-tuning the encoder, epoch 4/4")
    assert "fine-tuned" in report.markdown() and "fine-tuned encoder" in service.status()
    assert service.versions()["encoder"].tolist()[:2] == ["fine-tuned", "frozen"]
    # the version's encoder moved; the app's base encoder (what frozen versions read) did not
    encoder = service.ws.encoder_for(report.version_id)
    inner = tuned.base_encoder(encoder).inner.state_dict()
    moved = [name for name, value in base_weights.items() if not torch.equal(value, inner[name])]
    assert len(moved) > 10
    assert all(torch.equal(value, base.state_dict()[name]) for name, value in base_weights.items())
    assert encoder.identity != service.ws.encoder.identity and "+finetuned-" in encoder.identity
    # a prediction is the saved fine-tuned model's, computed apart from the app ...
    prediction = service.predict(clip)
    assert prediction.model_version == report.version_id
    expected = expected_probs(service, report.version_id, clip)
    np.testing.assert_allclose(probs_of(prediction), expected, atol=1e-5)
    # ... and not its head on the base encoder's (stale) vectors
    head = service.ws.model(report.version_id).model
    with torch.no_grad():
        stale_vectors = torch.from_numpy(service.ws.encoder.embed([load_audio(clip)]))
        stale = torch.softmax(head(stale_vectors), -1).numpy()[0]
    assert np.abs(stale - expected).max() > 1e-3


def test_queue_scores_and_explore_read_the_finetuned_vectors(service, monkeypatch):
    report = finetune_round(service)
    encoder = service.ws.encoder_for(report.version_id)
    clips = service.store.clips("de", labeled=False)
    view = service.label_view(LabelState(language="de"))
    assert view.item is not None
    # the queue's probabilities are the fine-tuned model's on every pool clip
    probs = service.ws.probabilities(report.version_id, clips[:3])
    for clip, row in zip(clips[:3], probs, strict=True):
        np.testing.assert_allclose(row, expected_probs(service, report.version_id, clip.path), atol=1e-5)
    assert set(service.ws.tuned_features[encoder.identity]) >= {c.id for c in clips}
    # the maps: before = the frozen first model on base vectors, after = the fine-tuned one on its own
    drawn = []
    monkeypatch.setattr(explore, "embed", lambda model, clips: drawn.append(clips) or embed(model, clips))
    first = service.baseline_version_id()
    view = service.project("de", before=first, after=report.version_id)
    assert "left out" not in view.message and "held-out source" in view.message
    before, after = drawn
    target = [i for i, key in enumerate(view_keys(before)) if key.isdigit()]
    tuned_vectors = service.ws.tuned_features[encoder.identity]
    for i in target:
        clip_id = int(after.ids[i])
        np.testing.assert_array_equal(before.features[i], service.ws.features[clip_id])
        np.testing.assert_array_equal(after.features[i], tuned_vectors[clip_id])
    assert target and not np.allclose(before.features[target], after.features[target], atol=1e-4)
    # held-out source clips too: embedded from their audio by the fine-tuned encoder
    source = [i for i in range(len(after)) if i not in target]
    assert source and not np.allclose(before.features[source], after.features[source], atol=1e-4)


def view_keys(clips) -> list[str]:
    """Pool clips have numeric ids, source clips the corpus's utterance ids."""
    return [str(i) for i in clips.ids]


def test_rollback_restores_the_previous_encoder_and_a_restart_the_finetuned_one(service, tmp_path):
    first = service.store.active_version().id
    clip = service.store.clips("de")[1].path
    before = probs_of(service.predict(clip))
    report = finetune_round(service)
    after = probs_of(service.predict(clip))
    assert np.abs(after - before).max() > 1e-3
    service.activate(first)
    assert service.ws.encoder_for(first) is service.ws.encoder
    np.testing.assert_allclose(probs_of(service.predict(clip)), before, atol=1e-6)
    service.activate(report.version_id)
    np.testing.assert_allclose(probs_of(service.predict(clip)), after, atol=1e-6)
    # the encoder weights live in the version's files: a restarted app serves the same fine-tuned model
    restarted = Service(service.config, encoder=tiny_encoder(), log=lambda text: None).start(background=False)
    assert restarted.store.active_version().id == report.version_id
    np.testing.assert_allclose(probs_of(restarted.predict(clip)), after, atol=1e-5)


@pytest.mark.parametrize("finetune", [True, False])
def test_cancel_stops_the_round_and_leaves_the_previous_model_active(service, finetune):
    first = service.store.active_version().id
    versions = len(service.store.model_versions())
    folders = set((service.config.data_dir / "models").iterdir())
    assert service.cancel_round() == "No adaptation round is running."
    answers, epochs = [], []

    def cancel_at_first_epoch(fraction: float, text: str) -> None:
        if "epoch" not in text:  # reading the audio before fine-tuning
            return
        epochs.append(text)
        if not answers:
            answers.append(service.cancel_round())

    with pytest.raises(RoundCancelledError, match=f"nothing was saved, model {first} stays active"):
        service.adapt(
            AdaptRequest(language="de", epochs=6, window=2, finetune=finetune),
            progress=cancel_at_first_epoch,
        )
    assert answers == ["Cancelling the round: it stops after the current mini-batch and saves nothing."]
    assert len(epochs) == 1 and "epoch 1/6" in epochs[0]  # training stopped: no epoch after it
    assert service.store.active_version().id == first and len(service.store.model_versions()) == versions
    assert set((service.config.data_dir / "models").iterdir()) == folders
    assert not service.ws.round_lock.locked()
    # the cancel does not carry over: the next round runs to its end
    assert finetune_round(service, finetune=finetune, epochs=2, window=1).version_id != first


def test_without_a_gpu_the_option_is_off_and_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    off = finetune_availability()
    assert not off.offered and "needs a GPU" in off.reason and "--allow-cpu-finetune" in off.reason
    assert finetune_availability(allow_cpu=True).offered
    monkeypatch.setenv(ALLOW_CPU_ENV, "1")
    assert finetune_availability() == finetune_availability(allow_cpu=True)
    assert finetune_availability().device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "Test GPU")
    gpu = finetune_availability()
    assert gpu.offered and gpu.device == "cuda" and "Test GPU" in gpu.reason


def test_a_service_refuses_finetune_rounds_where_they_are_off(started, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    shutil.copytree(started / "data", tmp_path / "data")
    shutil.copytree(started / "cache", tmp_path / "cache")
    service = make_service(tmp_path)
    assert not service.finetune_offer().offered
    with pytest.raises(ServiceError, match="needs a GPU"):
        service.adapt(AdaptRequest(language="de", epochs=2, window=1, finetune=True))
    # with the opt-in, fine-tuning still needs the source audio and an encoder with trainable weights
    config = ServiceConfig(data_dir=tmp_path / "empty", allow_cpu_finetune=True)
    shipped = Service(config, encoder=tiny_encoder(), log=lambda text: None)
    assert not shipped.finetune_offer().offered and "--source-corpus" in shipped.finetune_offer().reason
    frozen = make_service(tmp_path / "int8", allow_cpu_finetune=True)
    tuned.base_encoder(frozen.ws.encoder).requires_grad_(False)
    assert "no trainable weights" in frozen.finetune_offer().reason


def test_the_app_round_bench_runs_end_to_end_on_a_cpu(tmp_path, monkeypatch):
    import importlib.util

    from tests.test_service import write_corpus

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = Path(__file__).resolve().parents[1] / "bench" / "app_finetune_round.py"
    spec = importlib.util.spec_from_file_location("app_finetune_round", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "out.json"
    code = bench.main(
        [
            "--source-corpus", f"folder={write_corpus(tmp_path / 'src', 'en', 1.0, 6, 3)}",
            "--target-corpus", f"folder={write_corpus(tmp_path / 'tgt', 'de', 1.12, 5, 3)}",
            "--labels", "5", "--epochs", "2", "--window", "1", "--predictions", "2", "--allow-cpu",
            "--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
        ],
        encoder=tiny_encoder(),
        frontend="energy-trim0.1-weighted",
        first_epochs=5,
        shipped_source_set=tmp_path / "none.npz",
        default_model_dir=tmp_path / "none",
    )  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    assert results["device"] == "cpu" and results["labeled"] == 5 and results["pool"] == 25
    rounds_ = results["rounds"]
    assert (
        set(rounds_) == {"frozen", "finetune"}
        and rounds_["frozen"]["version"] != rounds_["finetune"]["version"]
    )
    assert all(
        r["epochs_run"] == 2 and 0 <= r["source_ua"] <= 1 and r["target_n"] == 20 for r in rounds_.values()
    )
