"""Training copies of labeled clips as a microphone gives them: silence or room noise around, another gain.

The corpora are tightly cut acted clips at one studio level; a user's recording has silence or room
noise before and after the speech, noise under it, and any level. In frozen-feature mode the head only
ever sees one vector per clip, so it can learn shortcuts from what the corpora never vary ("little
padding", "this loudness"). :func:`with_augmented_copies` adds ``copies`` extra rows per training clip,
each the embedding of the clip with a random gain (-10 to +6 dB, never clipping), 0.2-1.0 s before and
0.3-1.5 s after, and either digital silence or Gaussian noise at -65 to -45 dBFS (at least 25 dB below
the speech) over the whole clip.

Each copy is drawn from ``(seed, k, the clip's audio)``, so it is the same in every run, and it is
embedded through :func:`serdemo.cache.embed_waveforms`, whose cache key is the hash of the copy's
samples: the cost is paid once per clip and copy, about as much as embedding the clip itself
(0.25 s per clip with Whisper base and the Silero front end on the 2-core VM), then nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.cache import EmbeddingCache, embed_waveforms
from serdemo.encoders.base import UtteranceEncoder
from serdemo.learn.clips import ClipSet, build_clipset, copy_id

GAIN_DB = (-10.0, 6.0)
PAD_BEFORE_S = (0.2, 1.0)
PAD_AFTER_S = (0.3, 1.5)
NOISE_DBFS = (-65.0, -45.0)  # RMS of the background noise; half of the copies get digital silence
MIN_SNR_DB = 25.0  # and never louder than this below the speech: -18 dB gain with -40 dBFS noise drowned it
PEAK = 0.99  # a louder gain is lowered to this peak rather than clipped


def microphone_copy(wave: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The ``k``-th augmented copy of a 16 kHz clip (deterministic in ``seed``, ``k`` and the samples).

    Example:
        >>> wave = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.1
        >>> copy = microphone_copy(wave, 0)
        >>> len(copy) > len(wave) and np.array_equal(copy, microphone_copy(wave, 0))
        True

    """
    wave = np.asarray(wave, dtype=np.float32)
    digest = hashlib.sha256(wave.tobytes()).digest()
    rng = np.random.default_rng([seed, k, int.from_bytes(digest[:8], "little")])
    gain = 10 ** (rng.uniform(*GAIN_DB) / 20)
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak * gain > PEAK:
        gain = PEAK / peak
    before = int(rng.uniform(*PAD_BEFORE_S) * SAMPLE_RATE)
    after = int(rng.uniform(*PAD_AFTER_S) * SAMPLE_RATE)
    out = np.concatenate([np.zeros(before, np.float32), wave * gain, np.zeros(after, np.float32)])
    if rng.random() < 0.5:  # room noise over the whole recording, speech included
        speech_dbfs = 20 * np.log10(max(float(np.sqrt(np.mean((wave * gain) ** 2))), 1e-6))
        rms = 10 ** (min(rng.uniform(*NOISE_DBFS), speech_dbfs - MIN_SNR_DB) / 20)
        out = out + rng.normal(0.0, rms, len(out)).astype(np.float32)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def with_augmented_copies(
    clips: ClipSet,
    paths: Sequence[str | os.PathLike],
    encoder: UtteranceEncoder,
    cache: EmbeddingCache | None,
    copies: int,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> ClipSet:
    """``clips`` followed by ``copies`` augmented rows per clip (same label, language and speaker).

    Args:
        clips: frozen-mode clips (``features`` set), one per entry of ``paths``.
        paths: the audio file of each clip.
        encoder: the encoder (with its speech front end) that made ``clips.features``.
        cache: the embedding cache; ``None`` embeds every copy every time.
        copies: augmented rows per clip; 0 returns ``clips`` unchanged.
        seed: which copies (the same seed gives the same copies).
        log: told how many copies are embedded.

    Returns:
        A ClipSet of ``len(clips) * (1 + copies)`` rows; copies' ids are ``"<id>#aug<k>"``.

    """
    if copies <= 0 or len(clips) == 0:
        return clips
    if clips.features is None:
        raise ValueError("augmented copies are embedded vectors: use them in frozen mode")
    if len(paths) != len(clips):
        raise ValueError(f"got {len(paths)} paths for {len(clips)} clips; give one path per clip")
    waves = [microphone_copy(load_audio(Path(p)), k, seed) for k in range(copies) for p in paths]
    if log is not None:
        log(f"embedding {len(waves)} augmented training copies ({copies} per clip; cached once embedded)")
    features = embed_waveforms(encoder, waves, cache)
    extra = build_clipset(
        ids=[copy_id(i, k) for k in range(copies) for i in clips.ids],
        languages=np.tile(np.asarray(clips.languages), copies).tolist(),
        speakers=np.tile(np.asarray(clips.speakers), copies).tolist(),
        labels=np.tile(clips.labels, copies),
        features=features.reshape(len(waves), *clips.features.shape[1:]),
    )
    return ClipSet.concat([clips, extra])
