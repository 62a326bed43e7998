"""Load any audio file as mono float32 at 16 kHz; crops for training; clear errors for bad input."""

from __future__ import annotations

SAMPLE_RATE = 16_000  # the method resamples everything to 16 kHz (Agarla et al., 2023, Sec. 4)


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and what to do."""
