"""Augmented training copies: what a copy holds, that it is reproducible, and that the cache pays once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from serdemo.audio import SAMPLE_RATE
from serdemo.cache import EmbeddingCache
from serdemo.config import AdaptConfig, ConfigError
from serdemo.encoders.whisper import WhisperEncoder, base_config
from serdemo.learn import ClipSet
from serdemo.learn.augment import (
    GAIN_DB,
    MIN_SNR_DB,
    PAD_AFTER_S,
    PAD_BEFORE_S,
    microphone_copy,
    with_augmented_copies,
)


class CountingEncoder(WhisperEncoder):
    """The tiny encoder, counting the clips that reach its forward pass (cache hits never do)."""

    embedded: int = 0

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        self.embedded += len(waveforms)
        return super().forward(waveforms, lengths)


def tiny_encoder() -> CountingEncoder:
    config = base_config(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32)
    return CountingEncoder(WhisperEncoder.random(config, seed=0).encoder, "random-init-seed0")


def tone(seconds: float, amplitude: float, pitch: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * pitch * t)).astype(np.float32)


def rms_db(wave: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))


def test_a_copy_is_padded_regained_and_never_clipped_or_drowned():
    wave = tone(1.0, 0.5)
    for k in range(20):
        copy = microphone_copy(wave, k)
        extra = (len(copy) - len(wave)) / SAMPLE_RATE
        assert PAD_BEFORE_S[0] + PAD_AFTER_S[0] <= extra <= PAD_BEFORE_S[1] + PAD_AFTER_S[1]
        assert np.abs(copy).max() <= 1.0
        start = np.flatnonzero(np.abs(copy) > 0.05)[0]  # the tone (>= 0.16 peak), not noise (<= 0.03)
        speech = copy[start : start + len(wave)]
        gain_db = rms_db(speech) - rms_db(wave)
        assert GAIN_DB[0] - 0.5 <= gain_db <= GAIN_DB[1] + 0.5
        background = copy[: max(start - 1, 1)]
        if background.any():  # noise copies: at least MIN_SNR_DB below the speech
            assert rms_db(speech) - rms_db(background) >= MIN_SNR_DB - 1
    # a loud clip is lowered to the peak limit instead of clipping
    assert np.abs(microphone_copy(tone(0.5, 0.99), 3)).max() <= 0.99 + 1e-3


def test_copies_are_reproducible_and_differ_by_index_and_seed():
    wave = tone(0.8, 0.2)
    assert np.array_equal(microphone_copy(wave, 1), microphone_copy(wave, 1))
    assert not np.array_equal(microphone_copy(wave, 0), microphone_copy(wave, 1))
    assert not np.array_equal(microphone_copy(wave, 0, seed=0), microphone_copy(wave, 0, seed=1))
    kinds = {bool(microphone_copy(wave, k)[:100].any()) for k in range(12)}
    assert kinds == {True, False}  # both digital silence and room noise occur


def test_augmented_rows_keep_label_speaker_and_language_and_the_cache_pays_once(tmp_path: Path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], tone(0.6, 0.1 * (i + 1), 200 + 50 * i), SAMPLE_RATE)
    encoder = tiny_encoder()
    cache = EmbeddingCache(tmp_path / "cache")
    features = encoder.embed([tone(0.6, 0.1 * (i + 1), 200 + 50 * i) for i in range(3)])
    clips = ClipSet(
        ids=["a", "b", "c"],
        labels=np.array([0, 1, 2]),
        languages=["en"] * 3,
        speakers=["s1", "s2", "s1"],
        features=features,
    )
    encoder.embedded = 0
    augmented = with_augmented_copies(clips, paths, encoder, cache, copies=2)
    assert len(augmented) == 9 and encoder.embedded == 6
    assert augmented.ids[3:] == ["a#aug0", "b#aug0", "c#aug0", "a#aug1", "b#aug1", "c#aug1"]
    assert augmented.labels.tolist() == [0, 1, 2] * 3
    assert list(augmented.speakers) == ["s1", "s2", "s1"] * 3 and set(augmented.languages) == {"en"}
    assert np.array_equal(augmented.features[:3], features)
    assert not np.allclose(augmented.features[3:6], features)  # the copies are other audio
    again = with_augmented_copies(clips, paths, encoder, cache, copies=2)
    assert encoder.embedded == 6 and np.array_equal(again.features, augmented.features)
    assert with_augmented_copies(clips, paths, encoder, cache, copies=0) is clips


def test_bad_settings_say_what_to_do(tmp_path: Path):
    with pytest.raises(ConfigError, match="augment_copies must be >= 0"):
        AdaptConfig(augment_copies=-1)
    clips = ClipSet(
        ids=["a"], labels=np.array([0]), languages=["en"], speakers=["s"], features=np.zeros((1, 2, 4))
    )
    with pytest.raises(ValueError, match="one path per clip"):
        with_augmented_copies(clips, [], tiny_encoder(), None, copies=1)


def test_the_app_trains_its_first_model_on_the_augmented_source(tmp_path: Path):
    from serdemo.app import Service, ServiceConfig

    folder = tmp_path / "src"
    folder.mkdir()
    rows = ["path,emotion,speaker,language"]
    for e, emotion in enumerate(AdaptConfig().classes):
        for i in range(4):
            sf.write(folder / f"{emotion}{i}.wav", tone(0.6, 0.3, 220 + 110 * e + 3 * i), SAMPLE_RATE)
            rows.append(f"{emotion}{i}.wav,{emotion},s{i},en")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")

    logs: list[str] = []

    def start(copies: int, shipped: Path | None = None) -> Service:
        config = ServiceConfig(
            data_dir=tmp_path / f"data{copies}{shipped is not None}",
            source_corpora=() if shipped else (("folder", folder / "labels.csv"),),
            cache_dir=tmp_path / "cache",
            examples_dir=tmp_path / "no-examples",
            default_model_dir=tmp_path / "no-default-model",
            shipped_source_set=shipped or tmp_path / "no-source-set.npz",
            first_epochs=3,
            augment_copies=copies,
        )
        return Service(config, encoder=tiny_encoder(), log=logs.append).start(background=False)

    without = start(0)
    plain, augmented = without.status(), start(2).status()
    # a shipped set (vectors, no audio) built without copies: the app says how to get them
    shipped = without.export_source_set(tmp_path / "set.npz")
    assert not any("augmented" in line for line in logs)
    start(2, shipped)
    assert any("no augmented training copies" in line and "build_source_set.py" in line for line in logs)
    trained = int(plain.split("en: ")[1].split(" training clips")[0])
    assert (
        "augmented" not in plain
        and f"en: {trained} training clips (+{2 * trained} augmented copies)" in augmented
    )


def test_an_adaptation_round_trains_on_copies_of_the_human_labels_embedded_once(tmp_path: Path):
    from serdemo.app import AdaptRequest, Service, ServiceConfig

    rows = {"src": ["path,emotion,speaker,language"], "tgt": ["path,emotion,speaker,language"]}
    for part, language, pitch in (("src", "en", 220), ("tgt", "de", 250)):
        (tmp_path / part).mkdir()
        for e, emotion in enumerate(AdaptConfig().classes):
            for i in range(3):
                sf.write(
                    tmp_path / part / f"{emotion}{i}.wav", tone(0.6, 0.3, pitch + 90 * e + 4 * i), SAMPLE_RATE
                )
                label = emotion if part == "src" else ""  # the target pool has no corpus labels: CV judges
                rows[part].append(f"{emotion}{i}.wav,{label},s{i},{language}")
        (tmp_path / part / "labels.csv").write_text("\n".join(rows[part]) + "\n")
    encoder = tiny_encoder()
    config = ServiceConfig(
        data_dir=tmp_path / "data",
        source_corpora=(("folder", tmp_path / "src" / "labels.csv"),),
        target_corpora=(("folder", tmp_path / "tgt" / "labels.csv"),),
        cache_dir=tmp_path / "cache",
        examples_dir=tmp_path / "no-examples",
        default_model_dir=tmp_path / "no-default-model",
        shipped_source_set=tmp_path / "no-source-set.npz",
        first_epochs=3,
        frontend="energy-trim0.1-weighted",  # tones are not speech to Silero
        augment_copies=2,
        warm_up_umap=False,
    )
    service = Service(config, encoder=encoder, log=lambda text: None).start(background=False)
    clips = service.store.clips("de")
    for clip, emotion in zip(clips[:10], list(AdaptConfig().classes) * 2, strict=True):
        service.label(clip.id, emotion, "ada")
    before = encoder.embedded
    report = service.adapt(AdaptRequest(language="de", policy="hard", epochs=2, window=1))
    assert report.labeled == 10 and report.target_metrics is not None  # judged by cross-validation
    # the copies of the 10 labeled clips, once: each cross-validation fold reuses them from the cache
    assert encoder.embedded - before == 2 * 10
