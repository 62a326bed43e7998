"""Load any audio file as mono float32 at 16 kHz; crops for training; clear errors for bad input."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000  # the method resamples everything to 16 kHz (Agarla et al., 2023, Sec. 4)

SILENCE_DBFS = -60.0  # a clip whose loudest 25 ms frame is quieter than this holds no usable speech
_FRAME_S = 0.025  # analysis frame for loudness and voice activity: one typical speech-analysis window
_HOP_S = 0.010
_CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (integer PCM tops out just below 1.0)
_CLIPPED_FRACTION = 0.001  # more than 0.1 % clipped samples is audible distortion, not a lone peak
_CONVERT_HINT = "convert it first, e.g. `ffmpeg -i input.m4a -ac 1 -ar 16000 output.wav`"
# Limits read from the header before anything is decoded: a tiny compressed file can claim many
# channels at a huge rate (a 337 KB FLAC of 8 channels at 655 kHz decoded to 3.5 GB of float32).
MAX_SAMPLE_RATE = 192_000  # studio recorders stop here; speech needs 16 kHz
MAX_CHANNELS = 8  # 7.1 audio; speech is mono or stereo


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and what to do."""


class AudioTooLongError(AudioError):
    """Audio over the length limit of where it was given (a pool may still take what predict refuses)."""


@dataclass(frozen=True)
class AudioInfo:
    """What loading found out about a clip, for the app to show beside it.

    ``silent`` and ``clipped`` are warnings, not errors: the clip still loads and can be embedded.
    """

    name: str  # file path or upload name, as given
    format: str  # container as libsndfile names it, e.g. "WAV", "FLAC", "MP3"
    source_sample_rate: int  # before resampling to SAMPLE_RATE
    channels: int  # before mixing down to mono
    duration_s: float
    peak_dbfs: float  # loudest sample, dB relative to full scale
    rms_dbfs: float  # whole-clip RMS; a full-scale sine is -3 dBFS
    silent: bool  # see is_silent
    clipped: bool  # more than 0.1 % of the source samples sit at full scale


def supported_formats() -> list[str]:
    """List the common containers this machine's libsndfile decodes, e.g. ``["WAV", "FLAC", "MP3"]``."""
    available = sf.available_formats()
    return [fmt for fmt in ("WAV", "FLAC", "OGG", "AIFF", "MP3", "CAF", "W64", "RF64") if fmt in available]


def load_audio(
    path: str | os.PathLike, max_seconds: float | None = None, min_seconds: float = 0.05
) -> np.ndarray:
    """Read an audio file as a mono float32 waveform at :data:`SAMPLE_RATE`.

    Channels are averaged; other sample rates are resampled with soxr (high quality).
    Integer PCM comes back scaled to [-1, 1].

    Args:
        path: any file libsndfile reads (see :func:`supported_formats`).
        max_seconds: refuse clips longer than this (checked before decoding where the header
            tells the length); ``None`` accepts any length.
        min_seconds: refuse clips shorter than this; encoders need a few frames of audio.

    Returns:
        1-D float32 array.

    Raises:
        AudioError: missing, empty, unreadable, too short or too long file, or NaN/inf samples.

    Example:
        >>> import tempfile, soundfile
        >>> path = tempfile.mkdtemp() + "/one_second.wav"
        >>> soundfile.write(path, np.zeros((44_100, 2)), 44_100)  # 1 s of 44.1 kHz stereo
        >>> load_audio(path).shape
        (16000,)

    """
    return load_audio_checked(path, max_seconds=max_seconds, min_seconds=min_seconds)[0]


def load_audio_checked(
    path: str | os.PathLike, max_seconds: float | None = None, min_seconds: float = 0.05
) -> tuple[np.ndarray, AudioInfo]:
    """Like :func:`load_audio`, and also return an :class:`AudioInfo` with silence and clipping flags."""
    path = Path(path)
    _check_file(path)
    return _decode(str(path), str(path), max_seconds, min_seconds)


def decode_bytes(
    data: bytes, name: str, max_seconds: float | None = None, min_seconds: float = 0.05
) -> tuple[np.ndarray, AudioInfo]:
    """Decode an uploaded file held in memory; ``name`` (e.g. the upload's file name) goes into errors.

    Same checks and output as :func:`load_audio_checked`.
    """
    if not data:
        raise AudioError(f"{name}: the file is empty (0 bytes); upload or record the clip again")
    return _decode(io.BytesIO(data), name, max_seconds, min_seconds)


def prepare_waveform(
    samples: np.ndarray,
    sample_rate: int,
    name: str = "recording",
    max_seconds: float | None = None,
    min_seconds: float = 0.05,
) -> tuple[np.ndarray, AudioInfo]:
    """Turn an in-memory recording (e.g. a microphone's ``(rate, int16 array)``) into a checked 16 kHz wave.

    Args:
        samples: (S,) or (S, C) samples; integer PCM is scaled to [-1, 1] by its dtype's range.
        sample_rate: rate of ``samples`` in Hz.
        name: what errors call the clip.
        max_seconds: as in :func:`load_audio`.
        min_seconds: as in :func:`load_audio`.

    """
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2):
        raise AudioError(f"{name}: expected samples shaped (S,) or (S, channels), got {samples.shape}")
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        # unsigned PCM (8-bit WAV) is centred on the middle of its range
        offset = (int(info.max) + int(info.min) + 1) / 2
        samples = (samples.astype(np.float64) - offset) / (int(info.max) - offset + 1)
    elif not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"{name}: samples must be integer PCM or floats, got dtype {samples.dtype}")
    if sample_rate <= 0:
        raise AudioError(f"{name}: sample rate must be positive, got {sample_rate}")
    samples = samples.astype(np.float32)
    samples = samples[:, None] if samples.ndim == 1 else samples
    return _finish(samples, int(sample_rate), "array", name, max_seconds, min_seconds)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found; check the path (relative paths start at {Path.cwd()})")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file; pass the path of one file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes); it was probably not copied or recorded fully")


def _decode(
    source: str | io.BytesIO, name: str, max_seconds: float | None, min_seconds: float
) -> tuple[np.ndarray, AudioInfo]:
    try:
        with sf.SoundFile(source) as handle:
            rate, fmt = handle.samplerate, handle.format
            # Refuse long files from the header, before spending memory on decoding them; headers of
            # some streams lie, so reading stops one frame past the limit and is checked again below.
            if max_seconds is not None and 0 < handle.frames and handle.frames / rate > max_seconds:
                raise _too_long(name, handle.frames / rate, max_seconds)
            if not 0 < rate <= MAX_SAMPLE_RATE or not 0 < handle.channels <= MAX_CHANNELS:
                raise AudioError(
                    f"{name}: {handle.channels} channels at {rate} Hz is outside what speech needs "
                    f"(at most {MAX_CHANNELS} channels, {MAX_SAMPLE_RATE} Hz); {_CONVERT_HINT}"
                )
            limit = -1 if max_seconds is None else int(max_seconds * rate) + 1
            samples = handle.read(frames=limit, dtype="float32", always_2d=True)
    except sf.SoundFileError as err:
        reason = getattr(err, "error_string", None) or str(err)
        raise AudioError(
            f"{name}: not a readable audio file ({reason}); use one of "
            f"{', '.join(supported_formats())}, or {_CONVERT_HINT}"
        ) from None
    return _finish(samples, rate, fmt, name, max_seconds, min_seconds)


def _finish(
    samples: np.ndarray, rate: int, fmt: str, name: str, max_seconds: float | None, min_seconds: float
) -> tuple[np.ndarray, AudioInfo]:
    frames, channels = samples.shape
    if frames == 0:
        raise AudioError(f"{name}: contains no audio samples (0 s long); record or choose another clip")
    duration = frames / rate
    if max_seconds is not None and duration > max_seconds:
        raise _too_long(name, duration, max_seconds)
    if duration < min_seconds:
        raise AudioError(
            f"{name}: is {duration * 1000:.0f} ms long, shorter than the "
            f"{min_seconds * 1000:.0f} ms minimum; use a longer clip"
        )
    if not np.isfinite(samples).all():
        raise AudioError(
            f"{name}: contains NaN or infinite samples (a broken float WAV?); re-export it as 16-bit PCM"
        )
    clipped = float(np.mean(np.abs(samples) >= _CLIP_LEVEL)) > _CLIPPED_FRACTION
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        mono = samples.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    wave = np.ascontiguousarray(mono, dtype=np.float32)
    if not np.isfinite(wave).all():  # finite float samples near 3e38 overflow when mixed or resampled
        raise AudioError(
            f"{name}: samples far outside [-1, 1] (a broken float file?); re-export it as 16-bit PCM"
        )
    info = AudioInfo(
        name=name,
        format=fmt,
        source_sample_rate=rate,
        channels=channels,
        duration_s=len(wave) / SAMPLE_RATE,
        peak_dbfs=_db(float(np.max(np.abs(wave)))),
        rms_dbfs=_db(float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))),
        silent=is_silent(wave),
        clipped=clipped,
    )
    return wave, info


def _too_long(name: str, duration: float, max_seconds: float) -> AudioTooLongError:
    return AudioTooLongError(
        f"{name}: is {duration:.1f} s long, over the {max_seconds:g} s limit; trim it first, e.g. "
        f"`ffmpeg -i input.wav -t {max_seconds:g} output.wav` "
        f"or `sox input.wav output.wav trim 0 {max_seconds:g}`"
    )


def _db(amplitude: float | np.ndarray) -> float | np.ndarray:
    # floor at -200 dB so digital silence gives a finite number that still compares as "very quiet"
    return 20.0 * np.log10(np.maximum(amplitude, 1e-10))


def frame_dbfs(wave: np.ndarray, frame_s: float = _FRAME_S, hop_s: float = _HOP_S) -> np.ndarray:
    """RMS level in dBFS of each ``frame_s`` frame, one every ``hop_s``.

    A clip shorter than one frame is zero-padded to one frame.
    """
    frame, hop = round(frame_s * SAMPLE_RATE), round(hop_s * SAMPLE_RATE)
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < frame:
        wave = np.pad(wave, (0, frame - len(wave)))
    # running sum of squares: one pass and 8 bytes per sample, where stacking frames would copy each
    # sample frame/hop times (gigabytes for an hour-long recording)
    energy = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])
    starts = np.arange(0, len(wave) - frame + 1, hop)
    mean_square = np.maximum(energy[starts + frame] - energy[starts], 0.0) / frame
    return _db(np.sqrt(mean_square))


def is_silent(wave: np.ndarray, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """Whether the clip's loudest 0.1 s of frames stay below ``threshold_dbfs`` (default -60 dBFS).

    The level is that of the 10th-loudest 25 ms frame rather than the peak sample, so a click or
    pop a few milliseconds long does not make a silent recording count as sound.
    """
    if len(wave) == 0:
        return True
    return bool(_loud_level(frame_dbfs(wave)) < threshold_dbfs)


def _loud_level(levels: np.ndarray) -> float:
    # the 10th-loudest frame (0.1 s of 10 ms hops): the loudest sound that lasts, ignoring clicks
    return float(np.sort(levels)[-min(len(levels), round(0.1 / _HOP_S))])


def random_crop(wave: np.ndarray, seconds: float = 2.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Exactly ``seconds * SAMPLE_RATE`` samples from a random position, as the paper trains on 2 s crops.

    A shorter clip is zero-padded at a random offset instead, so the model cannot learn where
    the padding sits. Pass ``rng`` for reproducible crops; ``None`` draws fresh entropy.
    """
    rng = np.random.default_rng() if rng is None else rng
    size = round(seconds * SAMPLE_RATE)
    if size <= 0:
        raise ValueError(f"crop length must be positive, got {seconds} s")
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) >= size:
        start = int(rng.integers(0, len(wave) - size + 1))
        return wave[start : start + size].copy()
    out = np.zeros(size, dtype=np.float32)
    start = int(rng.integers(0, size - len(wave) + 1))
    out[start : start + len(wave)] = wave
    return out


def pad_to_min(wave: np.ndarray, seconds: float) -> np.ndarray:
    """Zero-pad the whole clip equally on both sides to at least ``seconds`` (test time).

    Longer clips come back unchanged, so only clips too short for an encoder's receptive field grow.
    """
    size = round(seconds * SAMPLE_RATE)
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) >= size:
        return wave
    left = (size - len(wave)) // 2
    return np.pad(wave, (left, size - len(wave) - left))


def segment(
    wave: np.ndarray, window_s: float = 2.0, hop_s: float = 1.0
) -> list[tuple[float, float, np.ndarray]]:
    """Cut a long clip into fixed windows ``(start_s, end_s, samples)`` for a timeline of predictions.

    Every window is ``window_s`` long; when the hops do not land on the end, one last window is
    aligned to the end so the tail is covered too. A clip shorter than one window is one segment.
    The samples are views into ``wave``.
    """
    if window_s <= 0 or hop_s <= 0:
        raise ValueError(f"window and hop must be positive, got window_s={window_s}, hop_s={hop_s}")
    window, hop = round(window_s * SAMPLE_RATE), round(hop_s * SAMPLE_RATE)
    if len(wave) <= window:
        return [(0.0, len(wave) / SAMPLE_RATE, wave)]
    starts = list(range(0, len(wave) - window + 1, hop))
    if starts[-1] + window < len(wave):
        starts.append(len(wave) - window)
    return [(s / SAMPLE_RATE, (s + window) / SAMPLE_RATE, wave[s : s + window]) for s in starts]


def speech_segments(
    wave: np.ndarray,
    relative_db: float = -30.0,
    snr_db: float = 6.0,
    floor_dbfs: float = -55.0,
    min_speech_s: float = 0.2,
    min_gap_s: float = 0.3,
    pad_s: float = 0.05,
) -> list[tuple[float, float]]:
    """Regions ``(start_s, end_s)`` where someone is speaking, by frame-energy thresholding.

    A 25 ms frame (10 ms hop) counts as speech when it is within ``relative_db`` of the clip's loudest
    0.1 s of frames, ``snr_db`` above its noise floor (the 10th-percentile frame) and above the absolute
    ``floor_dbfs``. Regions are widened by ``pad_s`` to keep soft onsets, regions separated by less than
    ``min_gap_s`` are merged (pauses inside a phrase) and regions shorter than ``min_speech_s`` dropped.

    Returns:
        Sorted, non-overlapping regions; ``[]`` for a silent clip.

    """
    if len(wave) == 0:
        return []
    levels = frame_dbfs(wave)
    loud = _loud_level(levels)
    noise = float(np.percentile(levels, 10))
    # min(...) keeps a clip with little dynamic range (speech throughout) from having no speech at all
    threshold = max(loud + relative_db, min(noise + snr_db, loud - 3.0), floor_dbfs)
    active = np.flatnonzero(levels > threshold)
    if len(active) == 0:
        return []
    duration = len(wave) / SAMPLE_RATE
    breaks = np.flatnonzero(np.diff(active) > 1)
    firsts = active[np.r_[0, breaks + 1]]
    lasts = active[np.r_[breaks, len(active) - 1]]
    regions: list[list[float]] = []
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        start = max(0.0, first * _HOP_S - pad_s)
        end = min(duration, last * _HOP_S + _FRAME_S + pad_s)
        if regions and start - regions[-1][1] < min_gap_s:
            regions[-1][1] = end
        else:
            regions.append([start, end])
    return [(round(s, 3), round(e, 3)) for s, e in regions if e - s >= min_speech_s]


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks so long recordings never sit in memory at once."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found; check the path (relative paths start at {Path.cwd()})")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def waveform_sha256(wave: np.ndarray) -> str:
    """Hex SHA-256 of a waveform's float32 samples: a cache key for recordings that have no file."""
    return hashlib.sha256(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()
