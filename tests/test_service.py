"""Service-level tests on a tiny random Whisper encoder and synthetic tone corpora (no downloads, seconds)."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serdemo.app import (
    AdaptRequest,
    BusyError,
    LabelState,
    Service,
    ServiceConfig,
    ServiceError,
    rounds,
)
from serdemo.app.local_server import served
from serdemo.app.ui.figures import prediction_markdown, timeline_figure
from serdemo.app.views import spectrogram
from serdemo.config import AdaptConfig
from serdemo.encoders.whisper import WhisperEncoder, base_config
from serdemo.labels import EMOTIONS
from serdemo.learn import predict_proba
from serdemo.metrics import unweighted_accuracy

SR = 16_000
# Each emotion is a tone of its own pitch (plus a language-specific shift), so even a random encoder's
# features separate the classes and a head can learn them.
PITCH = {"anger": 220.0, "fear": 330.0, "happiness": 440.0, "neutral": 550.0, "sadness": 660.0}


def tone(freq: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2 * freq * t)
    return (wave + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_corpus(root: Path, language: str, shift: float, per_class: int, speakers: int) -> Path:
    """A bring-your-own ``folder`` corpus: labels.csv with path, emotion, speaker, language."""
    root.mkdir(parents=True)
    rows = []
    for e, emotion in enumerate(EMOTIONS):
        for i in range(per_class):
            path = root / f"{emotion}_{i}.wav"
            freq = PITCH[emotion] * shift * (1 + 0.01 * i)
            sf.write(path, tone(freq, 0.6 + 0.1 * (i % 3), seed=100 * e + i), SR)
            rows.append(
                {"path": path.name, "emotion": emotion, "speaker": f"s{i % speakers}", "language": language}
            )
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "emotion", "speaker", "language"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "labels.csv"


def tiny_encoder() -> WhisperEncoder:
    config = base_config(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32)
    return WhisperEncoder.random(config, seed=0)


def make_service(tmp: Path, source: bool = True, target: bool = True, **overrides) -> Service:
    config = ServiceConfig(
        data_dir=tmp / "data",
        source_corpora=(("folder", write_corpus(tmp / "src", "en", 1.0, 6, 3)),) if source else (),
        target_corpora=(("folder", write_corpus(tmp / "tgt", "de", 1.12, 5, 3)),) if target else (),
        cache_dir=tmp / "cache",
        examples_dir=tmp / "no-examples",
        default_model_dir=tmp / "no-default-model",
        first_epochs=overrides.pop("first_epochs", 20),
        # tones are not speech to Silero; the energy detector keeps them, as the tests need
        frontend="energy-trim0.1-weighted",
        **{"shipped_source_set": tmp / "no-source-set.npz", "warm_up_umap": False, **overrides},
    )
    service = Service(config, encoder=tiny_encoder(), log=lambda text: None)
    return service.start(background=False)


@pytest.fixture(scope="module")
def started(tmp_path_factory) -> Path:
    """A folder where a service started once: its store, first model and embedding cache (never changed)."""
    folder = tmp_path_factory.mktemp("service")
    make_service(folder)
    return folder


@pytest.fixture
def service(started, tmp_path) -> Service:
    """A service of its own per test, started on a copy of ``started``'s data: no training, cached features.

    Tests label, adapt and activate versions; a shared service made each test's outcome depend on the
    tests before it.
    """
    shutil.copytree(started / "data", tmp_path / "data")
    shutil.copytree(started / "cache", tmp_path / "cache")
    return make_service(tmp_path)


@pytest.fixture
def clip_file(tmp_path) -> Path:
    path = tmp_path / "clip.wav"
    sf.write(path, tone(PITCH["sadness"], 1.5, seed=7), SR)
    return path


def test_startup_trains_a_first_model_and_seeds_the_pool(service):
    assert service.ready
    versions = service.store.model_versions()
    assert len(versions) >= 1 and versions[0].config["policy"] == "none"
    assert service.languages() == ["de"]
    assert len(service.store.clips("de")) == 25
    # the target corpus's labels are not labels in the store: the whole pool is still unlabeled at start
    assert (
        len(service.store.clips("de", labeled=False)) + sum(service.store.label_counts("de").values()) == 25
    )
    status = service.status()
    assert versions[0].id in status and "pool de: 25 clips" in status


def test_predict_returns_a_distribution_and_the_answering_version(service, clip_file):
    prediction = service.predict(clip_file, language="en")
    assert set(prediction.probs) == set(EMOTIONS)
    assert abs(sum(prediction.probs.values()) - 1) < 1e-4
    assert prediction.top == max(prediction.probs, key=prediction.probs.get)
    assert prediction.confidence == pytest.approx(prediction.probs[prediction.top])
    assert prediction.model_version == service.store.active_version().id
    assert prediction.segments == []  # 1.5 s is short: no timeline
    # the /predict API returns it as JSON: every field survives the round trip
    assert json.loads(json.dumps(prediction.to_dict())) == prediction.to_dict()


def test_silent_clip_is_predicted_with_a_warning(service, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR, np.float32), SR)
    assert any("silent" in warning for warning in service.predict(path).warnings)


def test_long_clip_gets_a_timeline_covering_it(service, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([tone(PITCH["anger"], 3.0, 1), tone(PITCH["sadness"], 3.5, 2)]), SR)
    prediction = service.predict(path)
    assert len(prediction.segments) >= 5
    assert prediction.segments[0].start == 0.0
    assert prediction.segments[-1].end == pytest.approx(6.5, abs=0.01)
    assert all(abs(sum(s.probs.values()) - 1) < 1e-4 for s in prediction.segments)


def recording(path: Path, emotions: list[str], seed: int, gap_s: float = 3.0) -> Path:
    """A long take: a 2 s tone per emotion, ``gap_s`` of quiet room noise between and around them."""
    rng = np.random.default_rng(seed)
    noise = lambda: (0.001 * rng.standard_normal(int(gap_s * SR))).astype(np.float32)  # noqa: E731
    parts = [noise()]
    for i, emotion in enumerate(emotions):
        parts += [tone(PITCH[emotion], 2.0, seed=seed + i), noise()]
    sf.write(path, np.concatenate(parts), SR)
    return path


def dominant_hz(path: Path) -> float:
    wave, rate = sf.read(path)
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[np.argmax(np.abs(np.fft.rfft(wave)))])


def test_a_long_recording_joins_the_pool_as_its_utterances(service, tmp_path):
    # a call or a long take holds many utterances, often in different emotions: each is labeled on its own
    path = recording(tmp_path / "call.wav", list(EMOTIONS), seed=40)  # 28 s
    prediction = service.predict(path)  # Predict shows what adding it will make, before it is added
    assert len(prediction.utterances) == 5 and "it becomes 5 clips" in prediction_markdown(prediction)
    assert "utterance (a pool clip)" in [trace.name for trace in timeline_figure(prediction).data]
    short = tmp_path / "short.wav"
    sf.write(short, tone(PITCH["fear"], 1.5, seed=9), SR)
    assert service.predict(short).utterances == []  # a clip joins whole
    message = service.add_to_pool(path, "pt")
    assert "Cut call.wav (28 s) at its pauses into 5 utterances and added 5" in message, message
    clips = service.store.clips("pt")
    assert len(clips) == 5 and len({c.session for c in clips}) == 1 and "call.wav" in clips[0].session
    for clip, emotion, (start, end) in zip(clips, EMOTIONS, prediction.utterances, strict=True):
        # in time order, each around its own tone, where Predict said it would be
        assert clip.original_name.startswith("call.wav 0:") and 2.0 <= clip.duration <= 2.6
        assert clip.duration == pytest.approx(end - start, abs=0.01)
        assert dominant_hz(clip.path) == pytest.approx(PITCH[emotion], abs=5)
    again = service.add_to_pool(path, "pt")
    assert "added 0" in again and "(5 already were)" in again, again
    service.label(clips[2].id, "happiness", "ada")
    assert [label.emotion for label in service.store.label_history(clips[2].id)] == ["happiness"]
    # bulk add cuts it too, and says so; a short clip beside it stays whole
    other = recording(tmp_path / "other.wav", ["sadness", "anger", "fear"], seed=50)  # 15 s
    summary = service.add_files([str(other), str(short)], "pt")
    assert "Added 4 clips" in summary and "other.wav: 3 utterances" in summary, summary
    assert "1 long recording was cut at its pauses" in summary, summary
    assert len(service.store.clips("pt")) == 9
    # a long recording with one utterance in it: the clip is that utterance, and the message says so
    lone = recording(tmp_path / "lone.wav", ["anger"], seed=80, gap_s=6.5)  # 15 s, 2 s of it speech
    assert "Cut lone.wav (15 s) at its pauses into 1 utterance and added 1" in service.add_to_pool(lone, "pt")
    assert service.store.clips("pt")[-1].duration < 3.0


def test_a_long_recording_without_speech_or_over_the_limit_adds_nothing(tmp_path):
    service = make_service(tmp_path, target=False, max_clip_seconds=30.0, max_recording_seconds=40.0)
    hum = tmp_path / "hum.wav"
    sf.write(hum, (0.001 * np.random.default_rng(0).standard_normal(20 * SR)).astype(np.float32), SR)
    with pytest.raises(Exception, match="no speech found in its 20 s, so nothing was added"):
        service.add_to_pool(hum, "pt")
    too_long = recording(tmp_path / "long.wav", list(EMOTIONS) * 2, seed=60)  # 53 s
    with pytest.raises(Exception, match="over the 40 s limit"):
        service.add_to_pool(too_long, "pt")
    # predict's own limit is lower (a timeline): its refusal says where a longer recording can go
    with pytest.raises(Exception, match="over the 30 s limit.*bulk-add it in the Label tab"):
        service.predict(too_long)
    summary = service.add_files([str(hum), str(too_long)], "pt")
    assert "Added 0 clips" in summary and "hum.wav: no speech found" in summary, summary
    assert service.store.clips("pt") == []


def test_cross_validation_keeps_a_recordings_utterances_on_one_side_or_says_it_could_not(tmp_path):
    service = make_service(tmp_path, target=False)
    for i in range(2):  # two recordings of five utterances, one per emotion, all labeled
        service.add_to_pool(recording(tmp_path / f"take{i}.wav", list(EMOTIONS), seed=70 + 10 * i), "pt")
    for clip, emotion in zip(service.store.clips("pt"), list(EMOTIONS) * 2, strict=True):
        service.label(clip.id, emotion, "ada")
    report = service.adapt(AdaptRequest(language="pt", policy="none", epochs=4, window=2))
    assert "5-fold cross-validation" in report.target_note
    note = report.target_note
    assert "Utterances of 2 recordings fall on both sides of the folds" in note and "optimistic" in note, note


def test_predict_rejects_a_broken_file_with_a_clear_message(service, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="not a readable audio file"):
        service.predict(bad)


def test_label_queue_shows_the_most_uncertain_clip_and_saves_labels(service):
    view = service.label_view(LabelState(language="de", rule="least_confidence"))
    assert view.item is not None and view.state.current == view.item.clip_id
    unlabeled = service.store.clips("de", labeled=False)
    version = service.store.active_version().id
    probs = service.ws.probabilities(version, unlabeled)
    assert view.item.confidence == pytest.approx(probs.max(1).min(), abs=1e-6)  # least confidence first
    assert (
        view.item.spectrogram.ndim == 2 and len(view.item.spectrogram_times) == view.item.spectrogram.shape[1]
    )

    before = sum(view.counts.values())
    after = service.label_current(view.state, "anger", annotator="ada")
    assert service.store.current_label(view.item.clip_id).emotion == "anger"
    assert sum(after.counts.values()) == before + 1
    assert after.item.clip_id != view.item.clip_id and after.unlabeled == view.unlabeled - 1

    undone = service.undo(after.state, annotator="ada")
    assert undone.item.clip_id == view.item.clip_id  # the undone clip is back on screen
    assert service.store.current_label(view.item.clip_id) is None
    assert sum(undone.counts.values()) == before


def test_skip_moves_on_and_keeps_the_skipped_clip_for_later(service):
    view = service.label_view(LabelState(language="de"))
    skipped = service.skip(view.state)
    assert skipped.item.clip_id != view.item.clip_id
    assert view.item.clip_id in skipped.state.skipped
    assert service.store.current_label(view.item.clip_id) is None


def test_rules_and_languages_are_checked(service):
    with pytest.raises(ServiceError, match="least_confidence"):
        service.label_view(LabelState(language="de", rule="random"))
    with pytest.raises(ServiceError, match="language"):
        service.add_files([], "")
    with pytest.raises(ValueError, match="unknown emotion"):
        service.label(1, "boredom", "ada")


def test_adaptation_round_adds_an_active_version_with_scores(service):
    first = service.store.active_version().id
    view = service.label_view(LabelState(language="de"))
    for _ in range(10):  # 10 labels: a 25-clip pool is learned from (serdemo.learn.small_pool)
        view = service.label_current(view.state, EMOTIONS[view.item.clip_id % 5], annotator="ada")
    seen = []
    report = service.adapt(
        AdaptRequest(language="de", policy="hard", tau=0.3, epochs=6, window=2),
        progress=lambda fraction, text: seen.append((fraction, text)),
    )
    assert report.parent == first and report.version_id == service.store.active_version().id
    labeled = sum(service.store.label_counts("de").values())
    assert labeled >= 10 and report.labeled == labeled and report.unlabeled == 25 - labeled
    # the reported source UA is the saved version's own, on the held-out source speakers
    source_test = service.ws.source.test
    saved = predict_proba(service.ws.model(report.version_id), source_test).argmax(1)
    assert report.source_metrics["ua"] == pytest.approx(unweighted_accuracy(source_test.labels, saved))
    assert service.store.active_version().metrics["source_ua"] == report.source_metrics["ua"]
    assert report.target_metrics["n"] == 25 - labeled  # corpus labels of the clips nobody labeled
    assert set(report.pseudo_per_class) == set(EMOTIONS)
    assert seen[-1][0] == pytest.approx(1.0) and "epoch 6/6" in seen[-1][1] and "pseudo-labels" in seen[-1][1]
    summary = report.markdown()
    assert report.version_id in summary and f"{report.source_metrics['ua']:.1%}" in summary
    table = service.versions()
    assert list(table["version"])[:2] == [report.version_id, first] and table["active"].tolist()[0] == "✓"
    # the round's pseudo-labels are kept as machine labels of the new version, never as human labels
    unlabeled = [c for c in service.store.clips("de") if service.store.current_label(c.id) is None]
    machine = [service.store.machine_label(c.id) for c in unlabeled]
    accepted = [m for m in machine if m is not None and m.model_version == report.version_id]
    assert accepted and all(m.kind == "machine" and m.confidence >= 0.3 for m in accepted)

    # rollback: the first model answers again
    service.activate(first)
    assert service.predict(service.store.clips("de")[0].path).model_version == first


def test_only_one_round_at_a_time(service):
    assert service.ws.round_lock.acquire()
    try:
        service.ws.round_status = "epoch 3/100"
        with pytest.raises(ServiceError, match="round is running"):
            service.adapt(AdaptRequest(language="de", epochs=2, window=1))
        assert "adaptation round running:** epoch 3/100" in service.status()
    finally:
        service.ws.round_lock.release()


def test_bad_adapt_settings_name_the_field(service):
    with pytest.raises(ValueError, match="tau"):
        service.adapt(AdaptRequest(language="de", tau=1.5))
    with pytest.raises(ValueError, match="pseudo_balance"):
        service.adapt(AdaptRequest(language="de", pseudo_balance="always"))


def test_the_balance_setting_reaches_the_round_and_is_saved_with_its_version(service):
    before = service.store.active_version().id
    try:
        report = service.adapt(AdaptRequest(language="de", epochs=2, window=1, pseudo_balance="per-language"))
        saved = {v.id: v for v in service.store.model_versions()}[report.version_id]
        assert saved.config["pseudo_balance"] == "per-language"
        # the app's default is the library's
        assert AdaptRequest(language="de").pseudo_balance == AdaptConfig().pseudo_balance
    finally:
        service.activate(before)  # later tests of this module's service expect the version they know


def test_projection_has_before_and_after_with_silhouettes(service):
    view = service.project("de", method="pca", dims=2, color_by="emotion")
    for figure in (view.before, view.after):
        assert "silhouette" in figure.layout.title.text and "emotion" in figure.layout.title.text
        assert sum(len(trace.x) for trace in figure.data) == len(view.clip_choices)
    assert view.before.layout.title.text.startswith("Before: encoder features")
    key = next(k for _, k in view.clip_choices if k.startswith("t:"))
    assert Path(service.clip_path(key)).is_file()
    three = service.project("de", method="pca", dims=3, color_by="confidence")
    assert three.after.data[0].type == "scatter3d"


def test_bulk_add_takes_files_and_zips_and_reports_bad_ones(service, tmp_path):
    good = tmp_path / "a.wav"
    sf.write(good, tone(300.0, 1.0, 11), SR)
    inner = tmp_path / "b.wav"
    sf.write(inner, tone(310.0, 1.0, 12), SR)
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(inner, "clips/b.wav")
        handle.writestr("clips/broken.wav", b"nope")
        handle.writestr("../evil.wav", b"nope")
    message = service.add_files([str(good), str(archive)], "it")
    assert "Added 2 clips" in message and "broken.wav" in message
    # the traversal entry is reported as skipped (issue 11: nothing dropped silently), never written
    assert "../evil.wav: a path outside the archive's folder" in message
    assert not (tmp_path.parent / "evil.wav").exists()
    assert len(service.store.clips("it")) == 2
    assert "Added 0 clips" in service.add_files([str(good)], "it")  # same audio again: nothing new


def test_add_to_pool_and_export(service, clip_file):
    assert "Added clip" in service.add_to_pool(clip_file, "fr")
    assert "already" in service.add_to_pool(clip_file, "fr")
    clip = service.store.clips("fr")[0]
    service.label(clip.id, "sadness", "bob")
    path = service.export("csv")
    rows = list(csv.DictReader(path.open()))
    assert any(r["annotator"] == "bob" and r["emotion"] == "sadness" for r in rows)
    with pytest.raises(ServiceError, match="csv, jsonl, bundle"):
        service.export("xlsx")


def test_without_source_or_shipped_model_the_app_says_what_to_pass(tmp_path, clip_file):
    service = make_service(tmp_path, source=False, target=False)
    assert "--source-corpus" in service.status()
    with pytest.raises(ServiceError, match="--source-corpus"):
        service.predict(clip_file)


def test_spectrogram_shape_and_range():
    spec, times, freqs = spectrogram(tone(440.0, 2.0, 0), bands=40)
    assert spec.shape == (40, len(times)) == (len(freqs), len(times))
    assert times[-1] == pytest.approx(2.0, abs=0.05) and freqs[-1] == pytest.approx(7900, abs=150)
    assert spec.max() - spec.min() <= 80.0 + 1e-3  # clipped to an 80 dB display range
    assert abs(freqs[np.argmax(spec.mean(axis=1))] - 440) < 200  # the tone's band is the loudest


# -- the named API endpoints, through gradio_client -----------------------------------------------


@pytest.mark.slow
def test_api_endpoints_work_with_gradio_client(tmp_path, clip_file):
    from gradio_client import Client, handle_file

    service = make_service(tmp_path)
    with served(service) as url:
        client = Client(url, verbose=False)
        probs, summary, _timeline, details = client.predict(handle_file(str(clip_file)), api_name="/predict")
        assert details["top"] == probs["label"] and details["model_version"] in summary

        clip = service.store.clips("de", labeled=False)[0]
        result = client.predict(clip.id, "fear", "api-test", api_name="/label")
        assert result["counts"]["fear"] >= 1
        assert service.store.current_label(clip.id).emotion == "fear"

        exported = client.predict("jsonl", api_name="/export")
        assert any(
            json.loads(line)["annotator"] == "api-test" for line in Path(exported).read_text().splitlines()
        )

        message, before, after, _clips = client.predict("de", "pca", 2, "emotion", api_name="/project")
        assert "clips" in message and before is not None and after is not None

        before_versions = len(service.store.model_versions())
        outputs = client.predict("de", "soft", 0.5, 4, 2, True, "per-language", api_name="/adapt")
        assert "is active" in outputs[0]
        assert len(service.store.model_versions()) == before_versions + 1


def test_a_shipped_source_set_lets_a_fresh_install_predict_and_adapt(service, tmp_path, clip_file):
    shipped = service.export_source_set(tmp_path / "source_set.npz")
    fresh = make_service(tmp_path / "fresh", source=False, shipped_source_set=shipped)
    assert fresh.store.active_version().config["policy"] == "none"  # first model trained from the set
    assert fresh.predict(clip_file).top in EMOTIONS
    report = fresh.adapt(AdaptRequest(language="de", policy="hard", tau=0.3, epochs=4, window=2))
    assert report.version_id == fresh.store.active_version().id and report.source_metrics["n"] > 0
    with pytest.raises(ServiceError, match="no audio for source clip"):
        fresh.clip_path("s:" + fresh.ws.source.train.ids[0])


def test_a_source_set_from_another_encoder_is_refused(service, tmp_path):
    shipped = service.export_source_set(tmp_path / "source_set.npz")
    other = WhisperEncoder.random(
        base_config(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32), seed=1
    )
    config = ServiceConfig(
        data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", shipped_source_set=shipped
    )
    with pytest.raises(ServiceError, match="embedded by"):
        Service(config, encoder=other, log=lambda text: None).start(background=False)


def test_the_app_uses_the_shared_default_with_and_without_speaker_ids(tmp_path, clip_file):
    defaults = AdaptConfig()
    service = make_service(tmp_path)
    first = service.store.active_version().config  # the source-only model of start-up
    assert (first["normalization"], first["nap_dim"]) == (defaults.normalization, defaults.nap_dim)
    request = AdaptRequest(language="de", policy="none", epochs=2, window=1)
    assert (request.pseudo_balance, request.tau) == (defaults.pseudo_balance, defaults.tau)
    service.adapt(request)  # corpus clips carry speaker ids
    assert service.store.active_version().config["normalization"] == defaults.normalization
    service.add_to_pool(clip_file, "de")  # a recording: no speaker id, so the "de/unknown" group
    report = service.adapt(request)
    assert report.version_id == service.store.active_version().id
    config = service.store.active_version().config
    assert (config["normalization"], config["selection"]) == (defaults.normalization, defaults.selection)


def test_an_export_bundle_imports_into_a_fresh_store_with_its_audio_and_labels(tmp_path):
    service = make_service(tmp_path / "a")
    clip = service.store.clips("de")[0]
    service.label(clip.id, "fear", "ada")
    bundle = service.export("bundle")
    assert not bundle.is_relative_to(service.config.data_dir)  # pages never fetch from the data folder
    fresh = make_service(tmp_path / "b", target=False)
    message = fresh.import_labels(bundle)
    assert message.startswith("Imported 25 new clips"), message
    copied = fresh.store.clip_by_sha256(clip.sha256)
    assert fresh.store.current_label(copied.id).emotion == "fear"
    assert copied.path.read_bytes() == clip.path.read_bytes()
    assert fresh.import_labels(bundle).startswith("Imported 0 new clips and 0 new labels")
    # the plain JSONL carries labels only: it adds nothing new here, and reads no audio
    assert fresh.import_labels(service.export("jsonl")).startswith("Imported 0 new clips and 0 new labels")


# -- issue 10: the annotator's loop ----------------------------------------------------------------


def test_target_ua_is_cross_validated_on_human_labels_beside_the_previous_version(tmp_path):
    service = make_service(tmp_path, target=False)  # no corpus labels: only what a person labels
    clips = labeled_it_pool(service, tmp_path / "it", 10)
    first = service.store.active_version().id
    report = service.adapt(AdaptRequest(language="it", policy="none", epochs=4, window=2))
    estimate = report.target_metrics["estimate"]
    assert report.target_metrics["n"] == estimate["n"] == 10  # every labeled clip, none held back
    assert report.labeled == 10 and "5-fold cross-validation" in report.target_note
    assert estimate["low"] <= estimate["ua"] <= estimate["high"]
    assert report.comparison is not None and report.comparison.old.n == 10  # v1 never saw these clips
    text = report.markdown()
    assert f"previous version {first}, same clips" in text and "Too few clips to judge (10" in text
    saved = {v.id: v for v in service.store.model_versions()}[report.version_id]
    assert sorted(saved.metrics["trained_clip_ids"]) == sorted(c.id for c in clips[:10])
    assert "[" in service.versions()["target UA"].iloc[0]  # the table shows the interval too

    # the next round: the previous version trained on those 10, so only new labels compare fairly
    for clip in clips[10:14]:
        service.label(clip.id, clip.original_name.split("-")[0], "ada")
    again = service.adapt(AdaptRequest(language="it", policy="none", epochs=4, window=2))
    assert again.target_metrics["n"] == 14 and again.comparison.old.n == 4
    assert "10 clips it trained on left out" in again.previous_note


def labeled_it_pool(service: Service, folder: Path, labeled: int) -> list:
    """A pool `it` of 20 tone clips (4 per emotion), the first ``labeled`` labeled by "ada"."""
    folder.mkdir()
    paths = []
    for i in range(4):
        for emotion in EMOTIONS:
            paths.append(folder / f"{emotion}-{i}.wav")
            sf.write(paths[-1], tone(PITCH[emotion] * 1.2 * (1 + 0.01 * i), 1.0, seed=900 + i), SR)
    service.add_files([str(p) for p in paths], "it")
    clips = service.store.clips("it")
    for clip in clips[:labeled]:
        service.label(clip.id, clip.original_name.split("-")[0], "ada")
    return clips


def test_a_round_is_active_while_cross_validation_judges_it(tmp_path, clip_file):
    # judging by cross-validation trains 5 more models: the person can use the new one meanwhile
    service = make_service(tmp_path, target=False)
    labeled_it_pool(service, tmp_path / "it", 10)
    first = service.store.active_version().id
    seen = []

    def during_the_folds(fraction: float, text: str) -> None:
        if "cross-validation fold 1/5" in text and not seen:
            active = service.store.active_version().id
            with pytest.raises(BusyError) as busy:  # a second round waits, and hears how not to
                service.adapt(AdaptRequest(language="it", policy="none", epochs=2, window=1))
            predicted = service.predict(clip_file).model_version
            seen.append((active, text, predicted, service.versions(), str(busy.value)))

    report = service.adapt(
        AdaptRequest(language="it", policy="none", epochs=4, window=2), progress=during_the_folds
    )
    busy = seen[0][4]
    assert "wait for it to finish, or Cancel round to stop judging it" in busy, busy
    active, text, answered_by, table, _ = seen[0]
    assert active == answered_by == report.version_id != first
    assert text.startswith(f"{report.version_id} is active; judging it")
    assert table["target UA"].iloc[0] == ""  # not judged yet: no figure rather than a stale one
    saved = {v.id: v for v in service.store.model_versions()}[report.version_id]
    assert saved.metrics["target_ua"] == report.target_metrics["ua"]  # recorded once judged
    assert saved.metrics["previous"]["version"] == first
    assert "[" in service.versions()["target UA"].iloc[0]


def test_a_cancel_while_judging_keeps_the_new_version_active_and_unjudged(tmp_path):
    service = make_service(tmp_path, target=False)
    labeled_it_pool(service, tmp_path / "it", 10)
    answers = []

    def cancel_in_the_first_fold(fraction: float, text: str) -> None:
        if "cross-validation fold 1/5" in text and not answers:
            answers.append(service.cancel_round())

    report = service.adapt(
        AdaptRequest(language="it", policy="none", epochs=4, window=2), progress=cancel_in_the_first_fold
    )
    expected = f"Cancelling the judging of {report.version_id}: it stays active, without a target UA."
    assert answers == [expected]
    assert report.target_metrics is None and report.target_note.startswith("Judging cancelled")
    assert service.store.active_version().id == report.version_id
    saved = {v.id: v for v in service.store.model_versions()}[report.version_id]
    assert saved.metrics["target_ua"] is None and saved.metrics["target_note"].startswith("Judging cancelled")
    assert not service.ws.round_lock.locked() and service.ws.judging is None
    # the cancel does not carry over: the next round is judged to its end
    assert service.adapt(AdaptRequest(language="it", policy="none", epochs=4, window=2)).target_metrics


def test_few_labels_give_no_target_figure_and_say_how_many_are_needed(tmp_path, clip_file):
    service = make_service(tmp_path, target=False)
    service.add_to_pool(clip_file, "it")
    service.label(service.store.clips("it")[0].id, "sadness", "ada")
    report = service.adapt(AdaptRequest(language="it", policy="none", epochs=2, window=1))
    assert report.target_metrics is None and "label at least 5 clips" in report.target_note


def test_a_round_on_a_fully_labeled_pool_trains_on_the_labels_and_says_so(tmp_path):
    # a person records a handful of clips, labels them all, presses Start with the default policy
    service = make_service(tmp_path, target=False)
    with pytest.raises(ServiceError, match="`it` pool has no clips yet: add some first"):
        service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    paths = []
    for i, emotion in enumerate(EMOTIONS[:3] * 4):
        paths.append(tmp_path / f"{emotion}-{i}.wav")
        sf.write(paths[-1], tone(PITCH[emotion] * 1.2 * (1 + 0.01 * i), 1.0, seed=31 + i), SR)
    service.add_files([str(p) for p in paths[:3]], "it")
    for clip in service.store.clips("it"):
        service.label(clip.id, clip.original_name.split("-")[0], "ada")
    # three clips: too small a pool, its labels set aside (serdemo.learn.small_pool), and the report says so
    small = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert (small.policy, small.labeled, small.unlabeled) == ("none", 3, 0)
    assert small.pool_note.startswith("**The `it` pool is small: 3 clips, 3 labeled.**"), small.pool_note
    assert "set your 3 labels aside as pool clips" in small.pool_note
    assert "once it holds 40 clips or 7 more of them are labeled" in small.pool_note
    assert "trained on your labels alone" not in small.markdown()  # it did not
    # twelve labeled clips: trained on, and said so
    service.add_files([str(p) for p in paths[3:]], "it")
    for clip in service.store.clips("it")[3:]:
        service.label(clip.id, clip.original_name.split("-")[0], "ada")
    report = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert (report.policy, report.labeled, report.unlabeled) == ("none", 12, 0)
    assert "trained on your labels alone (policy 'none' instead of 'hard')" in report.markdown()
    saved = {v.id: v for v in service.store.model_versions()}[report.version_id]
    assert saved.config["policy"] == "none" and service.store.active_version().id == report.version_id
    assert report.pool_note == ""  # three emotions: no one-mood warning; 12 labels: learned from


def test_the_adapt_tab_says_before_a_round_whether_it_would_learn_from_the_pool(tmp_path):
    service = make_service(tmp_path, target=False)
    assert service.pool_outlook("") == ""
    assert service.pool_outlook("it").startswith("No `it` pool yet: add clips first")
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"clip-{i}.wav")
        sf.write(paths[-1], tone(PITCH[EMOTIONS[i]] * 1.2, 1.0, seed=60 + i), SR)
    service.add_files([str(p) for p in paths], "it")
    service.label(service.store.clips("it")[0].id, EMOTIONS[0], "ada")
    outlook = service.pool_outlook(" IT ")  # as typed
    assert outlook.startswith("`it` pool: 4 clips, 1 labeled. **Too small to learn from yet:**"), outlook
    assert "until it holds 40 clips or 9 more are labeled" in outlook
    # and the round agrees: it does not learn from the pool
    report = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert report.policy == "none" and "pool is small: 4 clips, 1 labeled" in report.pool_note
    for clip in service.store.clips("it")[1:]:
        service.label(clip.id, EMOTIONS[1], "ada")
    assert "Too small" in service.pool_outlook("it")  # 4 labels: still few
    assert service.pool_outlook("de").startswith("No `de` pool yet")


def test_a_round_on_labels_of_few_emotions_learns_nothing_from_the_pool_and_says_so(tmp_path):
    # a person records themselves sad and labels it: a round would make sadness the language's baseline
    service = make_service(tmp_path, target=False)
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"me-{i}.wav")
        sf.write(paths[-1], tone(PITCH["sadness"] * 1.2 * (1 + 0.02 * i), 1.0, seed=40 + i), SR)
    service.add_files([str(p) for p in paths], "it")
    for clip in service.store.clips("it")[:4]:
        service.label(clip.id, "sadness", "ada")
    few = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert "are sadness" not in few.pool_note  # four labels: an early labeling session, not yet a mood
    # ... and 6 clips are too few to learn from (docs/results.md: "A round on a small pool")
    assert few.pool_note.startswith("**The `it` pool is small: 6 clips, 4 labeled.** Too few")
    assert few.policy == "none" and few.pseudo_per_class == dict.fromkeys(EMOTIONS, 0)
    for clip in service.store.clips("it")[4:]:
        service.label(clip.id, "sadness", "ada")
    outlook = service.pool_outlook("it")
    assert outlook == (
        "`it` pool: 6 clips, 6 labeled. **All labels are sadness:** a round does not learn from this pool "
        "until clips of 2 other emotions are labeled, and it holds 40 clips or 2 more are labeled "
        '(docs/results.md, "Labels of one emotion").'
    )
    report = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert report.pool_note.startswith("**All 6 of your labels in `it` are sadness.**"), report.pool_note
    assert "set them aside as pool clips and learned nothing from the `it` pool" in report.pool_note
    # labels of two more emotions are not enough for 6 clips: the pool stays small until 40 clips or 10 labels
    assert "once it has labels of 2 other emotions and 40 clips or 2 more labels" in report.pool_note
    assert "pool is small" not in report.pool_note  # one note, not two
    assert report.policy == "none" and "trained on your labels alone" not in report.markdown()
    saved = {v.id: v for v in service.store.model_versions()}[report.version_id]
    assert saved.config["policy"] == "none"  # the version records the settings the round ran with
    assert report.target_metrics is None and "your labels are all sadness" in report.target_note
    # a second mood (sad and angry takes) is still few: the outlook names both and asks for a third
    service.label(service.store.clips("it")[0].id, "anger", "ada")
    assert "**All labels are anger or sadness:** a round does not learn from this pool until a clip of " in (
        service.pool_outlook("it")
    )
    report = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert report.pool_note.startswith("**All 6 of your labels in `it` are anger or sadness.**")
    assert "once it has a label of another emotion and 40 clips or 3 more labels" in report.pool_note


def test_a_round_on_an_unlabeled_pool_in_one_mood_learns_nothing_from_it_and_says_so(tmp_path, monkeypatch):
    # a person uploads 40 takes of themselves sad, labels none. The tiny random encoder's first model
    # cannot hear moods (chance on the source), so the judge's measure is stubbed; that it separates
    # moods is tests/test_pool_moods.py's, and bench/pool_moods.py's on real speech
    service = make_service(tmp_path, target=False)
    judged = []

    def spread(judge, pool, reference):
        judged.append((judge, len(pool), len(reference)))
        return 0.1 if len(pool) == 40 else 0.5

    monkeypatch.setattr(sys.modules["serdemo.learn.adapt"], "relative_spread", spread)
    monkeypatch.setattr(
        rounds, "relative_spread", lambda judge, pool, reference: spread(judge, pool, reference)
    )
    sad = []
    for i in range(40):
        sad.append(tmp_path / f"sad-{i}.wav")
        sf.write(sad[-1], tone(PITCH["sadness"] * 1.1 * (1 + 0.002 * i), 1.0, seed=300 + i), SR)
    service.add_files([str(p) for p in sad], "it")
    active = service.ws.model(service.store.active_version().id)
    # the Adapt tab says so before Start, from the same judge
    assert service.pool_outlook("it") == (
        "`it` pool: 40 clips, 0 labeled. **Sounds like one mood:** the current model's answers over its "
        "unlabeled clips vary 0.10 times as much as over the source language's clips of every emotion (under "
        "0.2), so a round does not learn from this pool until 5 or more clips are labeled, of at least 3 "
        'emotions, or clips of other moods are added (docs/results.md, "An unlabeled pool in one mood").'
    )
    report = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    # judged by the active version, against the source's validation clips
    assert judged[-1] == (active, 40, len(service.ws.source.validation))
    assert report.pool_note.startswith(
        "**The `it` pool sounds like one mood.** Over its 40 unlabeled clips"
    ), report.pool_note
    assert "vary 0.10 times as much as over the source language's clips" in report.pool_note
    assert (
        "this round learned nothing from it" in report.pool_note
        and "Label 5 clips or more" in report.pool_note
    )
    assert report.policy == "none" and report.pseudo_per_class == dict.fromkeys(EMOTIONS, 0)
    version = service.ws.model(report.version_id)
    assert version.pool_in_one_mood and version.pool_spread == 0.1
    # a larger pool spreads the answers further: learned from
    for i in range(20):
        path = tmp_path / f"calm-{i}.wav"
        sf.write(path, tone(PITCH["neutral"] * 1.1 * (1 + 0.002 * i), 1.0, seed=400 + i), SR)
        service.add_files([str(path)], "it")
    assert service.pool_outlook("it") == "`it` pool: 60 clips, 0 labeled."
    learned = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert (
        judged[-1][1] == 60 and "sounds like one mood" not in learned.pool_note and learned.policy == "hard"
    )
    assert not service.ws.model(learned.version_id).pool_in_one_mood
    # five labels of three emotions say what the pool holds: the round is not judged (its cross-validation
    # folds, trained on four, are)
    for clip, emotion in zip(service.store.clips("it"), ["sadness"] * 3 + ["neutral", "anger"], strict=False):
        service.label(clip.id, emotion, "ada")
    labeled = service.adapt(AdaptRequest(language="it", policy="hard", epochs=2, window=1))
    assert service.ws.model(labeled.version_id).pool_spread is None and labeled.policy == "hard"


def test_a_pool_made_of_one_recording_gets_a_caution_in_the_report(tmp_path):
    # one long take is one voice, often one mood: its pool cannot show a mood, where it came from can
    service = make_service(tmp_path, target=False)
    service.add_to_pool(recording(tmp_path / "take.wav", list(EMOTIONS) * 2, seed=90, gap_s=1.0), "pt")
    report = service.adapt(AdaptRequest(language="pt", policy="hard", epochs=2, window=1))
    first = "**10 of the 10 `pt` clips are utterances of one recording, take.wav.**"
    assert report.pool_note.startswith(first), report.pool_note
    assert report.pool_note in report.markdown() and "roll back" in report.pool_note
    # clips of other recordings beside it: no longer mostly one recording
    others = []
    for i in range(3):
        others.append(tmp_path / f"other-{i}.wav")
        sf.write(others[-1], tone(PITCH[EMOTIONS[i]] * 1.1, 1.0, seed=95 + i), SR)
    service.add_files([str(p) for p in others], "pt")
    mixed = service.adapt(AdaptRequest(language="pt", policy="hard", epochs=2, window=1))
    assert "one recording" not in mixed.pool_note  # 10 of 13: under 80 %
    small = "**The `pt` pool is small: 13 clips, 0 labeled.**"
    assert small in mixed.pool_note and mixed.policy == "none"  # still too small to learn from
    assert "once it holds 40 clips or 10 more of them are labeled" in mixed.pool_note
    saved = {v.id: v for v in service.store.model_versions()}[mixed.version_id]
    assert (saved.config["policy"], saved.config["language_prior"]) == ("none", 1000)  # as it ran
    assert not any(service.store.machine_label(c.id) for c in service.store.clips("pt"))  # no pseudo-labels
    plain = service.adapt(AdaptRequest(language="pt", policy="none", epochs=2, window=1))
    assert plain.pool_note.startswith(small)  # policy none, but the statistics are kept near the others
    for i, clip in enumerate(service.store.clips("pt")[:10]):  # 10 labels: the small pool is learned from
        service.label(clip.id, EMOTIONS[i % len(EMOTIONS)], "ada")
    labeled = service.adapt(AdaptRequest(language="pt", policy="hard", epochs=2, window=1))
    assert labeled.pool_note == "", labeled.pool_note  # 10 labels, 3 unlabeled
    assert labeled.policy == "hard"


def test_pickers_fingerprint_moves_with_pools_and_versions(tmp_path, clip_file):
    service = make_service(tmp_path, target=False)
    before = service.choices_signature()
    service.add_to_pool(clip_file, "it")
    after_pool = service.choices_signature()
    assert after_pool != before and "it" in after_pool
    assert service.choices_signature() == after_pool  # nothing changed: the pages do nothing


def test_a_blank_language_keeps_the_clip_on_screen():
    state = LabelState(language="it", current=7, skipped=(3,))
    assert state.with_settings("", None) == state
    assert state.with_settings("de", None).current is None  # another language: a fresh queue


def test_undo_says_what_it_undid(service):
    view = service.label_view(LabelState(language="de"))
    labeled = service.label_current(view.state, "fear", annotator="undo-test")
    undone = service.undo(labeled.state, annotator="undo-test")
    assert f"Undid your label **fear** on clip {view.item.clip_id} (" in undone.message  # with the file name
    relabeled = service.label_current(undone.state, "anger", "undo-test")
    hidden = service.undo(dataclasses.replace(relabeled.state, hide_names=True), "undo-test")
    assert "label **anger** on clip" in hidden.message and ".wav" not in hidden.message


def test_activate_names_what_exists_and_waits_for_a_round(service):
    with pytest.raises(ServiceError, match="no model version 'v9-nope'"):
        service.activate("v9-nope")
    assert service.ws.round_lock.acquire()
    try:
        with pytest.raises(BusyError, match="round is running"):
            service.activate(service.version_ids()[0])
    finally:
        service.ws.round_lock.release()


def test_very_short_clips_are_warned_in_predict_and_kept_out_of_pools(service, tmp_path):
    short = tmp_path / "blip.wav"
    sf.write(short, tone(440.0, 0.1, 3), SR)
    assert any("only 0.10 s" in w for w in service.predict(short).warnings)
    with pytest.raises(ValueError, match="blip.wav: only 0.10 s long"):
        service.add_to_pool(short, "de")
    assert "blip.wav: only 0.10 s" in service.add_files([str(short)], "de")


def test_explore_compares_a_chosen_baseline_and_lists_only_playable_clips(service):
    versions = service.version_ids()
    assert service.baseline_version_id() == versions[-1]  # the first, source-only model
    if len(versions) >= 2:
        view = service.project("de", before=versions[-1], after=versions[0])
        assert view.before.layout.title.text.startswith(f"Before: model {versions[-1]}")
        assert view.after.layout.title.text.startswith(f"After: model {versions[0]}")
    with pytest.raises(ServiceError, match="baseline"):
        service.project("de", before="v9-nope")


def test_a_new_languages_clips_get_in_the_queue_the_answer_each_gets_alone(service, tmp_path):
    # a user records themselves in one mood in a language the model has no statistics for and uploads
    # a dozen clips: scored together (the queue, Explore) they must get what Predict gives each alone,
    # not their batch's own standardisation, which would take the shared mood out
    paths = []
    for i in range(12):
        path = tmp_path / f"angry_{i}.wav"
        sf.write(path, tone(PITCH["anger"] * (1 + 0.01 * i), 0.8, seed=500 + i), SR)
        paths.append(path)
    service.add_files(paths, "fr")
    clips = service.store.clips("fr")
    assert len(clips) == 12
    together = service.ws.probabilities(service.store.active_version().id, clips)
    classes = list(AdaptConfig().classes)
    alone = [[service.predict(clip.path, "fr").probs[c] for c in classes] for clip in clips]
    np.testing.assert_allclose(together, alone, atol=1e-4)
