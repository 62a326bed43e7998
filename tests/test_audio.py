"""Audio loading, validation, crops and segmentation."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serdemo.audio import (
    SAMPLE_RATE,
    AudioError,
    decode_bytes,
    file_sha256,
    is_silent,
    load_audio,
    load_audio_checked,
    pad_to_min,
    prepare_waveform,
    random_crop,
    segment,
    speech_segments,
    supported_formats,
)


def sine(freq: float, seconds: float, rate: int = SAMPLE_RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(wave: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[np.argmax(spectrum)])


def speechlike(seconds: float, rng: np.random.Generator, level: float = 0.3) -> np.ndarray:
    """A voiced burst: harmonics of a wobbling pitch, amplitude-modulated at a syllable rate (4 Hz)."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140 + 20 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 2 * np.pi))
    wave = voiced * syllables + 0.05 * rng.standard_normal(len(t))
    return (level * wave / np.abs(wave).max()).astype(np.float32)


# --- loading and resampling -------------------------------------------------------------------------


def test_44k_stereo_sine_comes_back_16k_mono_at_the_same_pitch(tmp_path: Path) -> None:
    left = sine(440, 1.5, rate=44_100)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, left], axis=1), 44_100, subtype="PCM_16")

    wave, info = load_audio_checked(path)

    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 24_000  # 1.5 s at 16 kHz
    assert peak_frequency(wave) == pytest.approx(440, abs=1.0)
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.01)  # averaging equal channels keeps the level
    assert (info.source_sample_rate, info.channels, info.format) == (44_100, 2, "WAV")
    assert info.duration_s == pytest.approx(1.5)
    assert not info.silent and not info.clipped


def test_channels_are_averaged(tmp_path: Path) -> None:
    tone = sine(300, 0.5)
    path = tmp_path / "one_side.flac"
    sf.write(path, np.stack([tone, np.zeros_like(tone)], axis=1), SAMPLE_RATE)
    wave = load_audio(path)
    np.testing.assert_allclose(wave, tone / 2, atol=1e-4)


def test_integer_pcm_is_scaled_to_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    square = np.where(sine(100, 0.5) >= 0, 32767, -32768).astype(np.int16)
    sf.write(path, square, SAMPLE_RATE, subtype="PCM_16")
    wave, info = load_audio_checked(path)
    assert wave.max() == pytest.approx(1.0, abs=1e-3) and wave.min() == pytest.approx(-1.0)
    assert info.clipped


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "AIFF", "MP3"])
def test_every_common_format_loads(tmp_path: Path, fmt: str) -> None:
    if fmt not in supported_formats():
        pytest.skip(f"this libsndfile cannot decode {fmt}")
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, sine(500, 1.0, rate=22_050), 22_050, format=fmt)
    wave = load_audio(path)
    # lossy codecs add a few ms of encoder delay and padding
    assert len(wave) == pytest.approx(SAMPLE_RATE, abs=0.06 * SAMPLE_RATE)
    assert peak_frequency(wave) == pytest.approx(500, abs=2.0)


# --- errors a user can cause -------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nope\.wav: file not found; check the path"):
        load_audio(tmp_path / "nope.wav")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioError, match=r"empty\.wav: the file is empty \(0 bytes\)"):
        load_audio(path)


def test_not_audio_lists_the_formats_that_work(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio " * 20)
    with pytest.raises(AudioError, match="not a readable audio file") as err:
        load_audio(path)
    message = str(err.value)
    assert str(path) in message and "WAV, FLAC" in message and "ffmpeg" in message


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="contains no audio samples"):
        load_audio(path)


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "blip.wav"
    sf.write(path, sine(300, 0.02), SAMPLE_RATE)
    with pytest.raises(AudioError, match="is 20 ms long, shorter than the 50 ms minimum"):
        load_audio(path)
    assert len(load_audio(path, min_seconds=0.01)) == 320


def test_nan_samples(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    wave = sine(300, 0.5)
    wave[100] = np.nan
    sf.write(path, wave, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite samples"):
        load_audio(path)


def test_too_long_says_the_limit_and_how_to_trim(tmp_path: Path) -> None:
    path = tmp_path / "lecture.flac"
    sf.write(path, np.zeros(61 * 8_000, np.float32), 8_000)
    with pytest.raises(AudioError, match=r"is 61\.0 s long, over the 60 s limit; trim it first") as err:
        load_audio(path, max_seconds=60)
    assert "-t 60" in str(err.value)
    assert len(load_audio(path)) == 61 * SAMPLE_RATE  # no limit by default


def test_audio_error_is_a_value_error() -> None:
    assert issubclass(AudioError, ValueError)


# --- uploads and recordings from memory --------------------------------------------------------------


def test_decode_bytes_matches_file_loading(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, sine(440, 1.0, rate=48_000), 48_000, format="FLAC")
    wave, info = decode_bytes(buffer.getvalue(), "upload.flac")
    assert len(wave) == SAMPLE_RATE and info.format == "FLAC" and info.name == "upload.flac"
    with pytest.raises(AudioError, match=r"upload\.flac: the file is empty"):
        decode_bytes(b"", "upload.flac")
    with pytest.raises(AudioError, match=r"upload\.mp4: not a readable audio file"):
        decode_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200), "upload.mp4")
    with pytest.raises(AudioError, match="over the 0.5 s limit"):
        decode_bytes(buffer.getvalue(), "upload.flac", max_seconds=0.5)


def test_prepare_microphone_recording() -> None:
    stereo = (np.stack([sine(440, 1.0, rate=48_000)] * 2, axis=1) * 32767).astype(np.int16)
    wave, info = prepare_waveform(stereo, 48_000)
    assert wave.dtype == np.float32 and len(wave) == SAMPLE_RATE
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.01)
    assert info.channels == 2 and info.source_sample_rate == 48_000

    unsigned = np.full(1600, 128, dtype=np.uint8)  # 8-bit PCM silence sits at mid-range
    wave, info = prepare_waveform(unsigned, SAMPLE_RATE)
    assert np.abs(wave).max() == 0.0 and info.silent

    with pytest.raises(AudioError, match="recording: contains no audio samples"):
        prepare_waveform(np.zeros((0, 2), np.int16), 48_000)


# --- silence flag --------------------------------------------------------------------------------------


def test_silence_is_a_flag_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "muted.wav"
    hiss = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 1e-4  # -80 dBFS
    hiss[8000] = 0.5  # one click must not make it count as sound
    sf.write(path, hiss, SAMPLE_RATE, subtype="FLOAT")
    wave, info = load_audio_checked(path)
    assert info.silent and is_silent(wave)
    assert info.peak_dbfs == pytest.approx(-6.0, abs=0.1)


def test_quiet_speech_is_not_silent() -> None:
    assert not is_silent(speechlike(1.0, np.random.default_rng(0), level=0.003))  # peak about -50 dBFS
    assert is_silent(np.zeros(16_000, np.float32))
    assert is_silent(np.zeros(0, np.float32))


# --- crops and padding ----------------------------------------------------------------------------------


def test_random_crop_of_a_long_clip_is_an_exact_2s_slice() -> None:
    wave = np.arange(5 * SAMPLE_RATE, dtype=np.float32)
    crops = [random_crop(wave, 2.0, np.random.default_rng(seed)) for seed in range(5)]
    for crop in crops:
        assert len(crop) == 2 * SAMPLE_RATE
        start = int(crop[0])
        np.testing.assert_array_equal(crop, wave[start : start + 2 * SAMPLE_RATE])
    assert len({int(c[0]) for c in crops}) > 1  # crops move
    np.testing.assert_array_equal(crops[3], random_crop(wave, 2.0, np.random.default_rng(3)))


def test_random_crop_pads_a_short_clip_at_a_random_offset() -> None:
    wave = np.ones(SAMPLE_RATE // 2, np.float32)
    starts = set()
    for seed in range(5):
        crop = random_crop(wave, 2.0, np.random.default_rng(seed))
        assert len(crop) == 2 * SAMPLE_RATE and crop.sum() == len(wave)  # whole clip kept, rest zeros
        nonzero = np.flatnonzero(crop)
        assert nonzero[-1] - nonzero[0] + 1 == len(wave)
        starts.add(int(nonzero[0]))
    assert len(starts) > 1


def test_pad_to_min_only_grows_short_clips() -> None:
    short = np.ones(4_000, np.float32)
    padded = pad_to_min(short, 1.0)
    assert len(padded) == SAMPLE_RATE and padded.sum() == 4_000
    assert np.flatnonzero(padded)[0] == 6_000  # centred
    long = np.ones(20_000, np.float32)
    np.testing.assert_array_equal(pad_to_min(long, 1.0), long)


# --- segmentation ----------------------------------------------------------------------------------------


def test_fixed_windows_cover_the_whole_clip() -> None:
    wave = np.arange(round(5.5 * SAMPLE_RATE), dtype=np.float32)
    windows = segment(wave, window_s=2.0, hop_s=1.0)
    assert [(s, e) for s, e, _ in windows] == [(0, 2), (1, 3), (2, 4), (3, 5), (3.5, 5.5)]
    for start, _, chunk in windows:
        assert len(chunk) == 2 * SAMPLE_RATE and chunk[0] == start * SAMPLE_RATE
    (only,) = segment(wave[:8000])
    assert only[:2] == (0.0, 0.5) and len(only[2]) == 8000


@pytest.mark.parametrize("noise_dbfs", [-80.0, -40.0])
def test_speech_segments_find_bursts_between_silences(noise_dbfs: float) -> None:
    rng = np.random.default_rng(1)
    wave = (10 ** (noise_dbfs / 20)) * rng.standard_normal(7 * SAMPLE_RATE).astype(np.float32)
    bursts = [(0.5, 1.5), (1.65, 2.3), (3.5, 5.0)]  # the first two are one phrase with a 150 ms pause
    for start, end in bursts:
        a, b = round(start * SAMPLE_RATE), round(end * SAMPLE_RATE)
        wave[a:b] += speechlike(end - start, rng)
    wave[round(6.0 * SAMPLE_RATE) : round(6.05 * SAMPLE_RATE)] += 0.3  # a 50 ms knock is not speech

    regions = speech_segments(wave)

    assert len(regions) == 2
    (s1, e1), (s2, e2) = regions
    assert s1 == pytest.approx(0.5, abs=0.1) and e1 == pytest.approx(2.3, abs=0.1)
    assert s2 == pytest.approx(3.5, abs=0.1) and e2 == pytest.approx(5.0, abs=0.1)


def test_speech_segments_of_silence_and_of_continuous_speech() -> None:
    assert speech_segments(np.zeros(3 * SAMPLE_RATE, np.float32)) == []
    assert speech_segments(np.zeros(0, np.float32)) == []
    steady = sine(200, 3.0)
    assert speech_segments(steady) == [(0.0, 3.0)]


# --- hashing ---------------------------------------------------------------------------------------------


def test_file_sha256_streams_the_exact_bytes(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(0).bytes(3 * 1024 + 7)
    path.write_bytes(data)
    assert file_sha256(path, chunk_bytes=1024) == hashlib.sha256(data).hexdigest()
    with pytest.raises(AudioError, match="file not found"):
        file_sha256(tmp_path / "gone.wav")


# --- real corpora ----------------------------------------------------------------------------------------


@pytest.mark.corpora
def test_real_corpus_files_load(ravdess_root: Path, emodb_root: Path) -> None:
    ravdess = sorted(ravdess_root.glob("Actor_01/*.flac"))[0]
    emodb = sorted(emodb_root.glob("*.flac"))[0]
    for path, seconds in [(ravdess, 2.39), (emodb, 2.0)]:
        wave, info = load_audio_checked(path, max_seconds=60)
        assert info.format == "FLAC" and info.source_sample_rate == SAMPLE_RATE and info.channels == 1
        assert info.duration_s == pytest.approx(seconds, abs=0.02)
        assert not info.silent and speech_segments(wave)
        assert -1.0 <= wave.min() and wave.max() <= 1.0
