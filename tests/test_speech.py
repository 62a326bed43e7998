"""The speech front end: detectors find speech, trimming hides padding, the cache keeps front ends apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from serdemo.app import NO_SPEECH_LABEL, Service, ServiceConfig
from serdemo.app.predict import recording_warnings
from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.cache import EmbeddingCache, embed_waveforms
from serdemo.config import AdaptConfig, ConfigError
from serdemo.encoders.base import mean_std_pool
from serdemo.encoders.whisper import WhisperEncoder, base_config
from serdemo.speech import (
    FrontEnd,
    SpeechActivity,
    SpeechEncoder,
    clip_activity,
    speech_activity,
    trim,
    utterance_spans,
    weighted_mean_std_pool,
    with_frontend,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """2.5 s of (synthetic, eSpeak) speech that starts and ends within a few ms of the file's ends."""
    return load_audio(EXAMPLES / "en_angry_kids.flac")


def tiny_encoder() -> WhisperEncoder:
    config = base_config(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32)
    return WhisperEncoder.random(config, seed=0)


def pad(wave: np.ndarray, before_s: float, after_s: float, dbfs: float | None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    before, after = round(before_s * SR), round(after_s * SR)
    scale = 0.0 if dbfs is None else 10 ** (dbfs / 20)
    noise = (rng.standard_normal(before + after) * scale).astype(np.float32)
    return np.concatenate([noise[:before], wave, noise[before:]])


def test_front_end_names_round_trip_and_bad_names_say_what_is_allowed():
    for text in [
        "silero-trim0.1-weighted",
        "silero-trim0.25-fill-weighted",
        "energy-trim0.25",
        "webrtc-trim0-fill",
        "none",
    ]:
        assert str(FrontEnd.parse(text)) == text
    with pytest.raises(ValueError, match="silero, webrtc, energy"):
        FrontEnd.parse("vad-trim0.1")
    with pytest.raises(ConfigError, match="frontend"):
        AdaptConfig(frontend="loud")
    assert FrontEnd.parse(AdaptConfig().frontend).detector == "silero"  # the default the app and CLI share


@pytest.mark.parametrize("dbfs", [None, -50.0])
def test_silero_finds_the_same_speech_with_silence_or_room_noise_around_it(speech, dbfs):
    plain = speech_activity(speech).span()
    padded = speech_activity(pad(speech, 0.5, 1.0, dbfs)).span()
    assert plain is not None and padded is not None
    assert padded[0] - 0.5 == pytest.approx(plain[0], abs=0.07)  # two 32 ms frames
    assert padded[1] - 0.5 == pytest.approx(plain[1], abs=0.07)


def test_no_speech_in_silence_or_noise():
    rng = np.random.default_rng(0)
    assert speech_activity(np.zeros(2 * SR, np.float32)).span() is None
    assert speech_activity((rng.standard_normal(2 * SR) * 0.003).astype(np.float32)).span() is None


def test_trim_keeps_the_margin_and_falls_back_to_the_whole_clip(speech):
    wave = pad(speech, 1.0, 1.0, None)
    start, end = trim(wave, speech_activity(wave), margin_s=0.1)
    assert 0.8 * SR <= start <= 1.0 * SR and (1.0 + 2.3) * SR <= end <= len(wave) - 0.8 * SR
    silence = np.zeros(SR, np.float32)
    assert trim(silence, speech_activity(silence), 0.1) == (0, SR)  # nothing to cut to: keep it all


def test_weighted_pool_with_equal_weights_is_the_plain_pool():
    hidden = torch.randn(2, 3, 7, 4)
    lengths = torch.tensor([7, 5])
    weights = (torch.arange(7)[None, :] < lengths[:, None]).float() * 0.3
    torch.testing.assert_close(weighted_mean_std_pool(hidden, weights), mean_std_pool(hidden, lengths))


def test_speech_encoder_makes_padding_nearly_invisible(speech):
    inner = tiny_encoder()
    waves = [speech, pad(speech, 0.5, 1.0, None), pad(speech, 0.5, 1.0, -50.0)]

    def distances(encoder) -> list[float]:
        vectors = encoder.embed(waves)
        return [float(np.linalg.norm(v - vectors[0]) / np.linalg.norm(vectors[0])) for v in vectors[1:]]

    before = distances(inner)
    tight = distances(SpeechEncoder(inner, FrontEnd("silero", 0.1)))
    default = distances(SpeechEncoder(inner, FrontEnd()))  # 0.25 s margin, filled where the clip has none
    assert max(tight) < 0.05
    assert all(a < b / 3 for a, b in zip(tight, before, strict=True)), (before, tight)
    assert all(a < b / 2 for a, b in zip(default, before, strict=True)), (before, default)


def test_fill_gives_a_tightly_cut_clip_the_silence_a_padded_recording_keeps(speech):
    """The clip's edge is treated like padding: its margin is filled with silence, as a padded clip's is."""
    encoder = SpeechEncoder(tiny_encoder(), FrontEnd("silero", 0.25, fill=True, level=False))
    plain, padded = encoder.prepare(speech)[0], encoder.prepare(pad(speech, 0.5, 1.0, None))[0]
    start, end = speech_activity(speech).span()
    assert start < 0.25 and len(speech) / SR - end < 0.25  # a tightly cut clip: its margin reaches past it
    assert len(plain) == pytest.approx((end - start + 0.5) * SR, abs=0.07 * SR)  # whole margin, both sides
    assert len(padded) == pytest.approx(len(plain), abs=0.07 * SR)  # two 32 ms frames
    assert not plain[: round(0.1 * SR)].any() and not plain[-round(0.1 * SR) :].any()  # the fill is silence
    silence = np.zeros(SR, np.float32)
    np.testing.assert_array_equal(encoder.prepare(silence)[0], silence)  # no speech: nothing to centre on

    waves = [speech, pad(speech, 0.5, 1.0, None), pad(speech, 0.5, 1.0, -50.0)]

    def distances(encoder) -> list[float]:
        vectors = encoder.embed(waves)
        return [float(np.linalg.norm(v - vectors[0]) / np.linalg.norm(vectors[0])) for v in vectors[1:]]

    edge_kept = distances(SpeechEncoder(encoder.inner, FrontEnd("silero", 0.25, fill=False, level=False)))
    filled = distances(encoder)
    assert all(a < b / 2 for a, b in zip(filled, edge_kept, strict=True)), (edge_kept, filled)


def test_clip_activity_reads_the_fill_analysis_so_predict_runs_one_detector_pass(speech, monkeypatch):
    """The clip's own activity, read off the filled clip's analysis, finds the speech a direct pass finds."""
    import serdemo.speech as speech_module

    frontend = FrontEnd("silero", 0.25, fill=True, level=True)
    direct = speech_activity(pad(speech, 0.0, 0.7, None))
    derived = clip_activity(pad(speech, 0.0, 0.7, None), frontend)
    assert derived.hop_s == direct.hop_s and len(derived.probs) == len(direct.probs)
    assert derived.span() == pytest.approx(direct.span(), abs=2 * direct.hop_s)
    assert np.mean(np.abs(derived.probs - direct.probs)) < 0.05
    no_detector = FrontEnd("none", 0.0, weighted=False, fill=False, level=False)
    assert clip_activity(speech, no_detector).hop_s == 0.01  # predict's warnings fall back to energy

    calls = []
    monkeypatch.setattr(speech_module, "_detect", lambda wave, detector: calls.append(len(wave)) or direct)
    wave = pad(speech, 0.3, 0.3, -60.0, seed=7)  # a clip no earlier test analysed
    clip_activity(wave, frontend)
    SpeechEncoder(tiny_encoder(), frontend).prepare(wave)
    assert calls == [len(wave) + 2 * round(0.25 * SR)]  # one pass, over the filled clip


def test_level_makes_the_microphone_gain_invisible(speech):
    """A clip 12 dB quieter or 6 dB louder reaches the encoder at the same level: speech at -25 dBFS RMS."""
    levelled = SpeechEncoder(tiny_encoder(), FrontEnd("silero", 0.25))  # the default: -level
    as_recorded = SpeechEncoder(levelled.inner, FrontEnd("silero", 0.25, level=False))

    def speech_level(cut: np.ndarray) -> float:
        frames = np.repeat(speech_activity(cut).probs >= 0.5, 512)[: len(cut)]
        return float(20 * np.log10(np.sqrt(np.mean(cut[: len(frames)][frames] ** 2))))

    reference = levelled.prepare(speech)[0]
    assert speech_level(reference) == pytest.approx(-25.0, abs=0.5)
    for gain_db in (-12.0, 6.0):
        cut = levelled.prepare(speech * 10 ** (gain_db / 20))[0]
        assert len(cut) == pytest.approx(len(reference), abs=2 * 512)  # the same speech, give or take a frame
        assert speech_level(cut) == pytest.approx(-25.0, abs=0.5)
        unscaled = as_recorded.prepare(speech * 10 ** (gain_db / 20))[0]
        assert speech_level(unscaled) == pytest.approx(speech_level(speech) + gain_db, abs=1.0)


def test_front_end_is_part_of_the_cache_key(tmp_path, speech):
    inner = tiny_encoder()
    cache = EmbeddingCache(tmp_path)
    wrapped = with_frontend(inner, "silero-trim0.1-weighted")
    assert wrapped.identity == inner.identity + "/silero-trim0.1-weighted"
    assert with_frontend(wrapped, "none") is inner  # "none" is today's encoder, today's cache entries
    waves = [pad(speech, 1.0, 1.0, None)]
    plain, trimmed = embed_waveforms(inner, waves, cache), embed_waveforms(wrapped, waves, cache)
    assert not np.allclose(plain, trimmed)  # two entries, never one handed back for the other
    np.testing.assert_array_equal(embed_waveforms(wrapped, waves, cache), trimmed)
    assert len(list(tmp_path.rglob("*.npy"))) == 2


def test_recording_warnings_name_silence_little_speech_quiet_and_clipping(speech):
    from serdemo.audio import prepare_waveform

    def warnings(wave: np.ndarray) -> str:
        wave, info = prepare_waveform(wave, SR)
        return " ".join(recording_warnings(wave, info, speech_activity(wave)))

    assert warnings(speech) == ""
    assert "silent" in warnings(np.zeros(SR, np.float32))
    assert "mostly silence" in warnings(pad(speech, 3.0, 3.0, -60.0))
    assert "very quiet" in warnings(speech * 10 ** (-30 / 20))
    assert "clipped" in warnings(np.clip(speech * 8, -1, 1))


def _two_emotion_service(tmp_path: Path) -> Service:
    """An app whose source corpus is two emotions, each a different example clip: it trains a first model."""
    root = tmp_path / "corpus"
    for emotion, name in [("anger", "en_angry_kids"), ("sadness", "en_sad_letter")]:
        (root / emotion).mkdir(parents=True)
        wave = load_audio(EXAMPLES / f"{name}.flac")
        for i in range(6):
            sf.write(root / emotion / f"{i}.wav", wave * (0.5 + 0.1 * i), SR)
    config = ServiceConfig(
        data_dir=tmp_path / "data",
        source_corpora=(("folder", root),),
        cache_dir=tmp_path / "cache",
        examples_dir=tmp_path / "none",
        default_model_dir=tmp_path / "none",
        shipped_source_set=tmp_path / "none.npz",
        first_epochs=5,
    )
    return Service(config, encoder=tiny_encoder(), log=lambda text: None).start(background=False)


def test_timeline_marks_windows_without_speech_and_classifies_the_rest(tmp_path, speech):
    service = _two_emotion_service(tmp_path)
    path = tmp_path / "long.wav"
    wave = pad(speech, 0.0, 4.0, -55.0)  # 2.5 s of speech, then 4 s of room noise
    sf.write(path, wave, SR)
    prediction = service.predict(path)
    spoken = [s for s in prediction.segments if s.speech]
    silent = [s for s in prediction.segments if not s.speech]
    assert spoken and silent and silent[-1].end == pytest.approx(len(wave) / SR)
    assert all(s.start >= 1.5 for s in silent)  # only windows after the speech are marked
    assert all(s.top == NO_SPEECH_LABEL and s.probs == {} for s in silent)
    assert all(abs(sum(s.probs.values()) - 1) < 1e-4 for s in spoken)
    assert any("mostly silence" in w for w in prediction.warnings)


def test_a_model_trained_on_another_front_end_is_flagged(tmp_path, speech):
    service = _two_emotion_service(tmp_path)
    path = tmp_path / "clip.wav"
    sf.write(path, speech, SR)
    assert not any("front end" in w for w in service.predict(path).warnings)
    service.ws.frontend = FrontEnd.parse("energy-trim0.1")  # as if the app's default changed after training
    assert any("front end 'silero-trim0.25-fill-level-weighted'" in w for w in service.predict(path).warnings)


@pytest.mark.parametrize("dbfs", [None, -45.0])
def test_the_batched_silero_gives_silero_vads_own_probabilities(speech, dbfs):
    import warnings

    from silero_vad import load_silero_vad

    from serdemo.silero_sequence import silero_probs

    wave = pad(speech, 0.4, 0.9, dbfs)
    wave = np.pad(wave, (0, -len(wave) % 512)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_silero_vad()
    expected = []
    for clip in (wave, wave[::-1].copy()):
        model.reset_states()  # silero-vad's own loop: one TorchScript call per 512-sample frame
        expected.append(model.audio_forward(torch.from_numpy(clip)[None], SR)[0].numpy())
    got = silero_probs([wave, wave[::-1].copy()])
    for want, have in zip(expected, got, strict=True):
        assert want.shape == have.shape and np.abs(want - have).max() < 1e-4
        assert want.max() > 0.9 and want.min() < 0.1  # speech and non-speech both present


def test_loading_silero_leaves_torchs_thread_count_as_it_was():
    # silero_vad's model.py calls torch.set_num_threads(1) on import: unguarded, every encoder call and
    # round after the app's first prediction ran on one thread (predict 93 ms p50 instead of 49-55 here)
    code = (
        "import torch; torch.set_num_threads(3); "
        "from serdemo.silero_sequence import silero_sequence; silero_sequence(); "
        "print(torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "3"


def test_silero_over_a_long_recording_runs_its_frames_in_chunks_with_the_same_answer(speech, monkeypatch):
    import serdemo.silero_sequence as silero

    wave = pad(speech, 0.4, 0.9, -45.0).astype(np.float32)
    whole = silero.silero_probs([wave, wave[::-1].copy()])
    monkeypatch.setattr(silero, "CHUNK", 7)  # as a 10-minute recording's ~37,000 frames are run
    chunked = silero.silero_probs([wave, wave[::-1].copy()])
    for a, b in zip(whole, chunked, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-6


def test_utterance_spans_keep_short_pauses_drop_blips_and_cut_long_speech():
    hop = 0.1
    frames = np.zeros(300, np.float32)  # 30 s
    frames[10:30] = 1  # 1.0-3.0 s ...
    frames[32:40] = 1  # ... a 0.2 s pause: the same utterance, to 4.0 s
    frames[60:62] = 1  # a 0.2 s blip: too little speech for an emotion
    frames[100:125] = 1  # 10.0-12.5 s
    frames[150:280] = 1  # 15.0-28.0 s: 13 s of speech, cut in two
    spans = utterance_spans(SpeechActivity(frames, hop), 30.0, max_s=10.0, margin_s=0.25)
    assert spans == [(0.75, 4.25), (9.75, 12.75), (14.75, 21.5), (21.5, 28.25)]
    # a margin never reaches more than halfway to the neighbour
    close = np.zeros(40, np.float32)
    close[0:10], close[14:24] = 1, 1  # 0.4 s apart
    assert utterance_spans(SpeechActivity(close, hop), 4.0, margin_s=0.5) == [(0.0, 1.2), (1.2, 2.9)]
    assert utterance_spans(SpeechActivity(np.zeros(50, np.float32), hop), 5.0) == []


def test_silero_cuts_a_recording_at_its_pauses(speech):
    rng = np.random.default_rng(3)
    gap = (10 ** (-50 / 20) * rng.standard_normal(int(1.5 * SR))).astype(np.float32)  # room noise
    others = [load_audio(EXAMPLES / name) for name in ("en_sad_letter.flac", "de_angry_tuer.flac")]
    parts, starts = [gap], []
    for clip in [speech, *others]:
        starts.append(sum(len(p) for p in parts) / SR)
        parts += [clip, gap]
    wave = np.concatenate(parts)
    spans = utterance_spans(clip_activity(wave, FrontEnd()), len(wave) / SR)
    clips = [(begin, begin + len(clip) / SR) for begin, clip in zip(starts, [speech, *others], strict=True)]

    def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
        return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))

    # no utterance holds two clips (one label each), and each clip is covered edge to edge, gaps left out
    assert all(sum(overlap(span, clip) > 0.1 for clip in clips) == 1 for span in spans), spans
    for begin, end in clips:
        mine = [span for span in spans if overlap(span, (begin, end)) > 0.1]
        assert begin - 0.3 <= mine[0][0] <= begin + 0.15 and end - 0.15 <= mine[-1][1] <= end + 0.3, spans
