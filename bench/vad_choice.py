"""Which voice activity detector makes padding invisible? Silero vs webrtcvad vs an energy threshold.

For held-out clips of each corpus (as in ``bench/padding.py``), each detector finds the speech span of
the clip as it is and of the clip padded with 0.5 s before and 1 s after of digital silence or of
Gaussian room noise (-50 dBFS, and a louder -40 dBFS). Trimming hides the padding when the padded
clip's span, shifted back by 0.5 s, is the plain clip's span: the table gives the share of clips
whose two boundaries both land within 50 ms, the median boundary error, the share of padding frames
taken for speech, and the detector's time per clip.

Usage::

    python bench/vad_choice.py ravdess=../shared/corpora/ravdess emodb=../shared/corpora/emodb
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from padding import AFTER_S, BEFORE_S, held_out

from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.cli_options import corpus_arg
from serdemo.speech import DETECTORS, speech_activity

TOLERANCE_S = 0.05


def pad(wave: np.ndarray, dbfs: float | None, rng: np.random.Generator) -> np.ndarray:
    """Pad with silence (``dbfs=None``) or Gaussian noise of that RMS level."""
    before, after = round(BEFORE_S * SAMPLE_RATE), round(AFTER_S * SAMPLE_RATE)
    scale = 0.0 if dbfs is None else 10 ** (dbfs / 20)
    noise = (rng.standard_normal(before + after) * scale).astype(np.float32)
    return np.concatenate([noise[:before], wave, noise[before:]])


def main() -> None:
    """Print one row per detector and padding."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=corpus_arg, nargs="+", metavar="NAME=PATH")
    parser.add_argument("--clips", type=int, default=100, help="held-out clips per corpus (default 100)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    waves = [load_audio(u.path) for name, root in args.corpora for u in held_out(name, root, args.clips)]
    print(f"{len(waves)} clips; boundaries within {TOLERANCE_S * 1000:.0f} ms of the unpadded clip's\n")
    print(
        "| detector | padding | both boundaries kept | median boundary error | padding taken for speech "
        "| ms per clip |"
    )
    print("|---|---|---|---|---|---|")
    for detector in DETECTORS:
        plain = [speech_activity(w, detector).span() for w in waves]
        for label, dbfs in [("silence", None), ("noise -50 dBFS", -50.0), ("noise -40 dBFS", -40.0)]:
            rng = np.random.default_rng(0)
            kept, errors, false_alarm, seconds = 0, [], [], 0.0
            for wave, reference in zip(waves, plain, strict=True):
                padded = pad(wave, dbfs, rng)
                tick = time.perf_counter()
                activity = speech_activity(padded, detector)
                seconds += time.perf_counter() - tick
                span = activity.span()
                pad_frames = np.r_[
                    activity.probs[: int(BEFORE_S / activity.hop_s) - 1],
                    activity.probs[int(np.ceil((BEFORE_S + len(wave) / SAMPLE_RATE) / activity.hop_s)) + 1 :],
                ]
                false_alarm.append(float(np.mean(pad_frames >= 0.5)) if len(pad_frames) else 0.0)
                if span is None or reference is None:
                    errors.append(np.inf if (span is None) != (reference is None) else 0.0)
                    kept += (span is None) == (reference is None)
                    continue
                error = max(abs(span[0] - BEFORE_S - reference[0]), abs(span[1] - BEFORE_S - reference[1]))
                errors.append(error)
                kept += error <= TOLERANCE_S
            print(
                f"| {detector} | {label} | {100 * kept / len(waves):.0f} % "
                f"| {1000 * np.median(errors):.0f} ms "
                f"| {100 * np.mean(false_alarm):.1f} % | {1000 * seconds / len(waves):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
