"""Utterance-level prosodic descriptors: pitch, energy and speaking-rate statistics of a 16 kHz clip.

Pitch is tracked with YIN (de Cheveigné & Kawahara, 2002) on 10 ms hops; energy is the frame RMS
level in dB; rate is approximated by voiced-segment (≈ syllable nucleus) onsets per second, after
de Jong & Wempe (2009). The statistics follow the pitch / loudness / temporal groups of eGeMAPS
(Eyben et al., 2016) in a small, dependency-free form. Pitch is in semitones re 100 Hz so that
per-speaker or per-language standardisation downstream removes the register of a voice.

Example:
    >>> t = np.arange(16000) / 16000
    >>> wave = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    >>> features = prosody_features(wave)
    >>> round(float(features[PROSODY_NAMES.index("f0_median_st")]), 1)  # 200 Hz = 12 semitones re 100 Hz
    12.0

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serdemo.audio import SAMPLE_RATE

F0_MIN = 60.0  # Hz: below the lowest male speaking voices
F0_MAX = 500.0  # Hz: above shouted female and child voices
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms integration window of the YIN difference function
YIN_THRESHOLD = 0.2  # a cumulative-mean-normalised dip below this counts as periodic
SILENCE_DB = 35.0  # frames this far below the clip's loud level are pauses
MIN_SAMPLES = WINDOW + int(SAMPLE_RATE / F0_MIN) + 1  # one complete analysis frame

PROSODY_NAMES: tuple[str, ...] = (
    "f0_mean_st",
    "f0_std_st",
    "f0_p10_st",
    "f0_median_st",
    "f0_p90_st",
    "f0_range_st",
    "f0_slope_st_per_s",
    "f0_delta_abs_st",
    "energy_mean_db",
    "energy_std_db",
    "energy_p10_db",
    "energy_p90_db",
    "energy_range_db",
    "energy_delta_abs_db",
    "voiced_ratio",
    "pause_ratio",
    "voiced_onsets_per_s",
    "voiced_segment_mean_s",
    "log_duration_s",
)


def track_pitch(
    wave: np.ndarray, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame-wise F0 (Hz, NaN where unvoiced), voicing and RMS level (dB) on 10 ms hops.

    Args:
        wave: 1-D float waveform at ``sample_rate`` (16 kHz everywhere in serdemo).
        sample_rate: only 16000 is supported; resample first with :func:`serdemo.audio.load_audio`.

    Returns:
        ``(f0_hz, voiced, level_db)``, each (T,).

    Raises:
        ValueError: not 16 kHz, not 1-D, or shorter than one analysis frame (about 42 ms).

    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"prosody needs {SAMPLE_RATE} Hz audio, got {sample_rate}: resample it first")
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {wave.shape}")
    if len(wave) < MIN_SAMPLES:
        raise ValueError(
            f"clip of {len(wave)} samples is too short for pitch tracking: need at least {MIN_SAMPLES} "
            f"({MIN_SAMPLES / SAMPLE_RATE * 1000:.0f} ms)"
        )
    tau_min, tau_max = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN)
    span = WINDOW + tau_max
    starts = np.arange(0, len(wave) - span + 1, HOP)
    frames = np.lib.stride_tricks.sliding_window_view(wave, span)[starts]  # (T, span)

    # YIN difference d(tau) = E(0) + E(tau) - 2 r(tau), correlations by FFT
    # lags up to tau_max of a WINDOW-long head against the span never wrap around once size >= span
    size = 1 << int(np.ceil(np.log2(span)))
    spectrum_full = np.fft.rfft(frames, size)
    spectrum_head = np.fft.rfft(frames[:, :WINDOW], size)
    corr = np.fft.irfft(np.conj(spectrum_head) * spectrum_full, size)[:, : tau_max + 1]
    cumulative = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(tau_max + 1)
    energy_lag = cumulative[:, lags + WINDOW] - cumulative[:, lags]
    diff = np.maximum(energy_lag[:, :1] + energy_lag - 2 * corr, 0.0)
    # cumulative mean normalised difference: removes YIN's bias towards tau = 0
    running = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, tau_max + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(running, 1e-12)

    search = cmnd[:, tau_min:]
    below = search < YIN_THRESHOLD
    # the first dip under the threshold (not the global minimum) avoids octave-down errors
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    rows = np.arange(len(search))
    while True:  # walk down to the bottom of that dip
        step = (first + 1 < search.shape[1]) & (
            search[rows, np.minimum(first + 1, search.shape[1] - 1)] < search[rows, first]
        )
        if not step.any():
            break
        first = first + step
    tau = (first + tau_min).astype(np.float64)
    # parabolic interpolation of the dip for sub-sample periods
    inner = (first > 0) & (first + 1 < search.shape[1])
    left = search[rows, np.maximum(first - 1, 0)]
    mid = search[rows, first]
    right = search[rows, np.minimum(first + 1, search.shape[1] - 1)]
    curvature = left - 2 * mid + right
    shift = np.where(inner & (curvature > 1e-12), 0.5 * (left - right) / np.maximum(curvature, 1e-12), 0.0)
    tau = tau + np.clip(shift, -0.5, 0.5)

    rms = np.sqrt(np.mean(frames[:, :WINDOW] ** 2, axis=1))
    level_db = 20 * np.log10(np.maximum(rms, 1e-8))
    loud = np.percentile(level_db, 95)
    voiced = (mid < YIN_THRESHOLD) & (level_db > loud - SILENCE_DB)
    f0 = np.where(voiced, SAMPLE_RATE / tau, np.nan)
    return f0, voiced, level_db


def prosody_features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The :data:`PROSODY_NAMES` statistics of one clip, float32 (len(PROSODY_NAMES),).

    Clips without any voiced frame get pitch statistics of 0 (the caller's standardisation then
    treats them as average), never NaN.
    """
    f0, voiced, level_db = track_pitch(wave, sample_rate)
    frame_s = HOP / SAMPLE_RATE
    seconds = len(wave) / SAMPLE_RATE
    speech = level_db > np.percentile(level_db, 95) - SILENCE_DB

    semitones = 12 * np.log2(f0[voiced] / 100.0)
    if len(semitones) >= 2:
        p10, p50, p90 = np.percentile(semitones, [10, 50, 90])
        times = np.flatnonzero(voiced) * frame_s
        slope = np.polyfit(times, semitones, 1)[0] if np.ptp(times) > 0 else 0.0
        # pitch movement only inside voiced stretches: jumps across pauses are not intonation
        steps = np.diff(12 * np.log2(np.where(voiced, f0, np.nan) / 100.0))
        delta = float(np.nanmean(np.abs(steps))) if np.isfinite(steps).any() else 0.0
        pitch = [semitones.mean(), semitones.std(), p10, p50, p90, p90 - p10, slope, delta]
    else:
        pitch = [0.0] * 8

    level = level_db[speech] if speech.any() else level_db
    e10, e90 = np.percentile(level, [10, 90])
    energy = [level.mean(), level.std(), e10, e90, e90 - e10, float(np.mean(np.abs(np.diff(level_db))))]

    onsets = np.flatnonzero(np.diff(voiced.astype(np.int8)) == 1).size + int(voiced[0])
    segment_mean = voiced.sum() * frame_s / onsets if onsets else 0.0
    timing = [
        voiced.mean(),
        1.0 - speech.mean(),
        onsets / seconds,
        segment_mean,
        np.log(seconds),
    ]
    return np.asarray(pitch + energy + timing, dtype=np.float32)


def prosody_batch(waveforms: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """:func:`prosody_features` of many clips, (N, len(PROSODY_NAMES)) float32."""
    out = np.zeros((len(waveforms), len(PROSODY_NAMES)), np.float32)
    for i, wave in enumerate(waveforms):
        out[i] = prosody_features(wave, sample_rate)
    return out
