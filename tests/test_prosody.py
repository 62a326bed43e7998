import numpy as np
import pytest

from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.research.prosody import MIN_SAMPLES, PROSODY_NAMES, prosody_batch, prosody_features, track_pitch


def tone(freq, seconds=1.0, amplitude=0.3):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    # a harmonic next to the fundamental, like a voice: YIN must not jump an octave
    return (amplitude * np.sin(2 * np.pi * freq * t) + 0.5 * amplitude * np.sin(4 * np.pi * freq * t)).astype(
        np.float32
    )


def feature(features, name):
    return float(features[PROSODY_NAMES.index(name)])


@pytest.mark.parametrize("freq", [75.0, 110.0, 220.0, 440.0])
def test_pitch_of_a_tone_is_found_within_one_percent(freq):
    f0, voiced, _ = track_pitch(tone(freq))
    assert voiced.mean() > 0.95
    assert np.nanmedian(f0) == pytest.approx(freq, rel=0.01)


def test_noise_and_silence_are_not_voiced():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    assert track_pitch(noise)[1].mean() < 0.1
    silence_then_tone = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), tone(150.0, 0.5)])
    _, voiced, _ = track_pitch(silence_then_tone)
    assert voiced[: len(voiced) // 3].mean() < 0.05


def test_rising_glide_has_positive_slope_and_a_wide_range():
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    freq = 100.0 * 2 ** (t / 2)  # one octave (12 semitones) up over 2 s: 6 st/s
    wave = (0.3 * np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)).astype(np.float32)
    features = prosody_features(wave)
    assert feature(features, "f0_slope_st_per_s") == pytest.approx(6.0, rel=0.1)
    assert feature(features, "f0_range_st") == pytest.approx(0.8 * 12, rel=0.1)
    assert feature(prosody_features(tone(150.0)), "f0_range_st") < 0.5


def test_louder_and_faster_speech_like_signals_move_the_right_features():
    base = tone(200.0)
    assert feature(prosody_features(2 * base), "energy_mean_db") == pytest.approx(
        feature(prosody_features(base), "energy_mean_db") + 20 * np.log10(2), abs=0.2
    )

    # syllable-like bursts: 4 and 8 voiced stretches per second
    def bursts(rate):
        t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
        gate = (np.sin(2 * np.pi * rate * t) > 0).astype(np.float32)
        return tone(200.0, 2.0) * gate

    slow, fast = prosody_features(bursts(4)), prosody_features(bursts(8))
    assert feature(slow, "voiced_onsets_per_s") == pytest.approx(4, abs=0.6)
    assert feature(fast, "voiced_onsets_per_s") == pytest.approx(8, abs=1.0)
    # half the time is silent, but a 25 ms window touching a burst still counts as speech: 125 of 250 ms
    # silences lose 25 ms, so 40 % of frames are pauses
    assert feature(slow, "pause_ratio") == pytest.approx(0.4, abs=0.05)


def test_unvoiced_clip_gives_finite_zero_pitch_statistics():
    rng = np.random.default_rng(1)
    features = prosody_features((0.05 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32))
    assert np.isfinite(features).all()
    assert feature(features, "f0_mean_st") == 0.0


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="too short"):
        prosody_features(np.zeros(MIN_SAMPLES - 1, np.float32))
    with pytest.raises(ValueError, match="resample"):
        prosody_features(tone(200.0), sample_rate=8000)
    with pytest.raises(ValueError, match="1-D"):
        prosody_features(np.zeros((2, SAMPLE_RATE), np.float32))


def test_batch_matches_single_clips():
    waves = [tone(120.0), tone(300.0, 0.5)]
    batch = prosody_batch(waves)
    assert batch.shape == (2, len(PROSODY_NAMES))
    np.testing.assert_allclose(batch[1], prosody_features(waves[1]))


@pytest.mark.corpora
def test_emodb_female_speaker_is_higher_than_male(emodb_root):
    # EMO-DB speaker 03 is male, 08 is female (corpus documentation)
    male = prosody_features(load_audio(emodb_root / "03a01Nc.flac"))
    female = prosody_features(load_audio(emodb_root / "08a01Na.flac"))
    assert feature(female, "f0_median_st") > feature(male, "f0_median_st") + 5
    assert 0.2 < feature(male, "voiced_ratio") < 0.9
