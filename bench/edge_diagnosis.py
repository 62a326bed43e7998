"""Why padding moves a tightly cut clip's vector: where its speech sits, how far padding moves the vector.

For the held-out clips ``bench/padding.py`` uses, prints per corpus: how much audio the clip has before
and after the speech Silero finds (a tightly cut clip has less than the 0.25 s margin, so a padded copy
keeps audio the clip never had), and the distance between the vector of the clip and of the clip padded
with 0.5 s + 1 s of silence or -50 dBFS noise (``|padded - plain| / |plain|`` over all layers), for each
front end given. Then, over every five-class clip of each corpus, per emotion: the share of clips zero-padded
at their end, of clips whose speech runs to their end (< 0.1 s left), and the median speech level (dBFS
RMS of the frames Silero calls speech): how each corpus was cut and recorded, per emotion.

Usage::

    python bench/edge_diagnosis.py ravdess=../shared/corpora/ravdess emodb=../shared/corpora/emodb \\
        --frontends silero-trim0.25-weighted silero-trim0.25-fill-level-weighted
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from padding import held_out, padded  # noqa: E402  (the bench folder's own module)

from serdemo.app import ASSETS  # noqa: E402
from serdemo.audio import SAMPLE_RATE, load_audio  # noqa: E402
from serdemo.cli_options import corpus_arg
from serdemo.config import AdaptConfig  # noqa: E402
from serdemo.corpora import load_corpus  # noqa: E402
from serdemo.encoders import build_encoder  # noqa: E402
from serdemo.experiment import machine_info  # noqa: E402
from serdemo.labels import EMOTIONS  # noqa: E402
from serdemo.speech import SPEECH_THRESHOLD, SpeechEncoder, speech_activity  # noqa: E402


def speech_dbfs(wave: np.ndarray) -> float:
    """RMS level of the frames Silero calls speech (the whole clip if none)."""
    activity = speech_activity(wave)
    mask = np.repeat(activity.probs >= SPEECH_THRESHOLD, round(activity.hop_s * SAMPLE_RATE))[: len(wave)]
    part = wave[: len(mask)][mask] if mask.any() else wave
    return float(20 * np.log10(np.sqrt(np.mean(np.square(part, dtype=np.float64))) + 1e-9))


def main() -> None:
    """Print the edge table, the distance table and the per-emotion table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=corpus_arg, nargs="+", metavar="NAME=PATH")
    parser.add_argument("--frontends", nargs="+", default=[AdaptConfig().frontend], metavar="FRONTEND")
    parser.add_argument("--clips", type=int, default=100, help="held-out clips per corpus (default 100)")
    parser.add_argument("--no-vectors", action="store_true", help="skip the vector distances (the slow part)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    inner = None if args.no_vectors else build_encoder("whisper-base")
    print(f"machine: {machine_info()['cpu']}, torch {torch.__version__}, 1 thread\n")
    print("| corpus | clips | speech starts < 0.25 s in | ends < 0.25 s before the end | median lead s "
          "| median tail s |")  # fmt: skip
    print("|---|---|---|---|---|---|")  # fmt: skip
    waves: dict[str, list[np.ndarray]] = {}
    for name, root in args.corpora:
        waves[name] = [load_audio(u.path) for u in held_out(name, root, args.clips)]
        spans = [(speech_activity(w).span(), len(w) / SAMPLE_RATE) for w in waves[name]]
        lead = np.array([s[0] for s, _ in spans if s])
        tail = np.array([n - s[1] for s, n in spans if s])
        print(f"| {name} | {len(spans)} | {np.mean(lead < 0.25):.0%} | {np.mean(tail < 0.25):.0%} "
              f"| {np.median(lead):.2f} | {np.median(tail):.2f} |")  # fmt: skip
    print("\nmedian distance of the padded clip's vector from the clip's, |padded - plain| / |plain|:\n")
    print("| front end | corpus | silence | noise -50 dBFS |\n|---|---|---|---|")
    for frontend in [] if args.no_vectors else args.frontends:
        encoder = SpeechEncoder(inner, frontend)
        for name, clips in waves.items():
            rng = np.random.default_rng(0)
            distances = []
            for wave in clips:
                plain, silence, noise = encoder.embed(
                    [wave, padded(wave, "silence", rng), padded(wave, "noise", rng)]
                )
                distances.append(
                    [np.linalg.norm(v - plain) / np.linalg.norm(plain) for v in (silence, noise)]
                )
            med = np.median(distances, axis=0)
            print(f"| {frontend} | {name} | {med[0]:.3f} | {med[1]:.3f} |", flush=True)
    print("\nevery five-class clip, per emotion: zero-padded end / speech to the end (< 0.1 s) / "
          "median speech dBFS\n")  # fmt: skip
    print("| corpus | " + " | ".join(EMOTIONS) + " |\n|---|" + "---|" * len(EMOTIONS))
    for name, root in args.corpora:
        cells = []
        for emotion in EMOTIONS:
            rows = []
            for utterance in (u for u in load_corpus(name, root) if u.emotion == emotion):
                wave = load_audio(utterance.path)
                loud = np.flatnonzero(np.abs(wave) > 1e-4)
                span = speech_activity(wave).span()
                zero_end = (len(wave) - 1 - loud[-1]) / SAMPLE_RATE > 0.05 if len(loud) else True
                to_end = span is not None and len(wave) / SAMPLE_RATE - span[1] < 0.1
                rows.append((zero_end, to_end, speech_dbfs(wave)))
            a = np.array(rows, float)
            cells.append(f"{a[:, 0].mean():.0%} / {a[:, 1].mean():.0%} / {np.median(a[:, 2]):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print("\nthe shipped examples' speech level, dBFS RMS:\n")
    for path in sorted((ASSETS / "examples").glob("*.flac")):
        print(f"- {path.stem}: {speech_dbfs(load_audio(path)):.1f}")


if __name__ == "__main__":
    main()
