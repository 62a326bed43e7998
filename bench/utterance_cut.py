"""How well a pool cuts long recordings into utterances: one sentence per clip, at which pauses and noise?

Builds long takes from a corpus's clips: each clip cut to its speech (the detector on the clean clip), the
sentences of random speakers joined by pauses of a given length, room noise (Gaussian) at a given SNR below
the take's median speech level over all of it. Each take is cut the way a pool cuts a recording over
``ServiceConfig.split_above_seconds`` (:func:`serdemo.app.ingest.utterances_of`) and every sentence counted:

- **one clip**: the sentence lies in one utterance that holds no other sentence (what labeling needs);
- **merged**: the sentence shares its utterance with a neighbour (a pause too short to cut at);
- **split**: the sentence is spread over two or more utterances (a pause inside it, or a long sentence cut);
- **missed**: no utterance covers half of it.

Also the utterances whose sentences do not all carry one emotion (a clip a single label would get wrong).

``--non-speech`` instead cuts takes of room noise with clicks, noise bursts or hum: utterances found there
would be clips of no speech.

Run::

    python bench/utterance_cut.py emodb=../shared/corpora/emodb --pauses 0.2 0.3 0.5 1 2 --snr 40 30 20 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from serdemo.app.config import ServiceConfig
from serdemo.app.ingest import utterances_of
from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.cli_options import corpus_arg
from serdemo.config import AdaptConfig
from serdemo.corpora import load_corpus
from serdemo.speech import UTTERANCE_PAUSE_S, UTTERANCE_SPEECH_S, FrontEnd, clip_activity


def speech_only(wave: np.ndarray, frontend: FrontEnd) -> np.ndarray:
    """The clip from its first to its last speech frame (corpus clips keep up to ~1.5 s of silence)."""
    span = clip_activity(wave, frontend).span()
    return wave if span is None else wave[round(span[0] * SAMPLE_RATE) : round(span[1] * SAMPLE_RATE)]


def take(
    clips: list[tuple[np.ndarray, str]], pause_s: float, snr_db: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Sentences joined by ``pause_s`` (and that much before and after), in noise ``snr_db`` under the
    median sentence level: the wave and each sentence's (start, end, emotion)."""
    speech_dbfs = np.median([20 * np.log10(np.sqrt(np.mean(np.square(w))) + 1e-9) for w, _ in clips])
    noise_rms = 10 ** ((speech_dbfs - snr_db) / 20)
    gap = np.zeros(round(pause_s * SAMPLE_RATE), np.float32)
    parts, sentences, at = [gap], [], pause_s
    for wave, emotion in clips:
        parts += [wave, gap]
        sentences.append((at, at + len(wave) / SAMPLE_RATE, emotion))
        at += len(wave) / SAMPLE_RATE + pause_s
    wave = np.concatenate(parts)
    return (wave + noise_rms * rng.standard_normal(len(wave))).astype(np.float32), sentences


def score(sentences: list[tuple[float, float, str]], spans: list[tuple[float, float]]) -> dict[str, int]:
    """Counts of one-clip / merged / split / missed sentences, and utterances mixing emotions."""
    counts = {"one clip": 0, "merged": 0, "split": 0, "missed": 0, "mixed utterances": 0}

    def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
        return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))

    for on, off, _ in sentences:
        length = off - on
        holding = [s for s in spans if overlap(s, (on, off)) >= 0.1 * length]
        if sum(overlap(s, (on, off)) for s in holding) < 0.5 * length:
            counts["missed"] += 1
        elif len(holding) > 1:
            counts["split"] += 1
        elif any(overlap(holding[0], (o, f)) >= 0.3 for o, f, _ in sentences if (o, f) != (on, off)):
            counts["merged"] += 1
        else:
            counts["one clip"] += 1
    for span in spans:
        emotions = {e for o, f, e in sentences if overlap(span, (o, f)) >= 0.3}
        counts["mixed utterances"] += len(emotions) > 1
    return counts


def non_speech_takes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """20 s of room noise (-50 dBFS) with what a recording holds besides speech: clicks, bursts, hum."""
    seconds = 20

    def room() -> np.ndarray:
        return 10 ** (-50 / 20) * rng.standard_normal(seconds * SAMPLE_RATE)

    clicks, bursts = room(), room()
    for start in rng.uniform(0, seconds - 0.1, 30):  # 5 ms clicks (a keyboard, a mouse) at -10 dBFS
        at = int(start * SAMPLE_RATE)
        clicks[at : at + 80] += 0.3 * rng.standard_normal(80)
    burst = int(0.3 * SAMPLE_RATE)
    for start in rng.uniform(0, seconds - 0.5, 8):  # 0.3 s broadband bursts (a cough, a door) at -14 dBFS
        at = int(start * SAMPLE_RATE)
        bursts[at : at + burst] += 0.2 * rng.standard_normal(burst) * np.hanning(burst)
    hum = room() + 0.05 * np.sin(2 * np.pi * 100 * np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE)
    takes = {"30 clicks": clicks, "8 noise bursts of 0.3 s": bursts, "100 Hz hum at -29 dBFS": hum}
    return {name: wave.astype(np.float32) for name, wave in takes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "corpus", type=corpus_arg, metavar="NAME=PATH", help="e.g. emodb=../shared/corpora/emodb"
    )
    parser.add_argument("--pauses", type=float, nargs="+", default=[0.2, 0.4, 0.8, 1.5], help="seconds")
    parser.add_argument("--snr", type=float, nargs="+", default=[40.0, 30.0, 20.0, 10.0], help="dB")
    parser.add_argument("--takes", type=int, default=6, help="recordings per cell")
    parser.add_argument("--sentences", type=int, default=10, help="sentences per recording")
    parser.add_argument("--min-pause", type=float, default=UTTERANCE_PAUSE_S, help="seconds (the app's)")
    parser.add_argument("--min-speech", type=float, default=UTTERANCE_SPEECH_S, help="seconds (the app's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--non-speech", action="store_true", help="takes without speech: clips made of them")
    args = parser.parse_args()
    if args.non_speech:
        frontend, rng = FrontEnd.parse(AdaptConfig().frontend), np.random.default_rng(args.seed)
        for name, wave in non_speech_takes(rng).items():
            spans = utterances_of(wave, frontend, ServiceConfig().split_above_seconds)
            print(f"20 s of room noise with {name}: {len(spans)} utterances {spans}")
        return

    name, root = args.corpus
    rng = np.random.default_rng(args.seed)
    frontend = FrontEnd.parse(AdaptConfig().frontend)
    max_s = ServiceConfig().split_above_seconds
    labeled = [u for u in load_corpus(name, root) if u.emotion in AdaptConfig().classes]
    picks = rng.choice(len(labeled), size=args.takes * args.sentences, replace=False)
    clips = [(speech_only(load_audio(labeled[i].path), frontend), labeled[i].emotion) for i in picks]
    print(
        f"{name}: {args.takes} takes x {args.sentences} sentences per cell, cut as a pool does ({frontend}, "
        f"pauses of {args.min_pause:g} s end an utterance, {args.min_speech:g} s of speech make one)\n"
    )
    print(
        "| pause | SNR | one clip | merged | split | missed | utterances of mixed emotion "
        "| detector s per minute |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for pause in args.pauses:
        for snr in args.snr:
            totals = dict.fromkeys(["one clip", "merged", "split", "missed", "mixed utterances"], 0)
            utterances, seconds, minutes = 0, 0.0, 0.0
            for t in range(args.takes):
                sentences_of_take = clips[t * args.sentences : (t + 1) * args.sentences]
                wave, sentences = take(sentences_of_take, pause, snr, rng)
                tick = time.perf_counter()
                spans = utterances_of(wave, frontend, max_s, args.min_pause, args.min_speech)
                seconds += time.perf_counter() - tick
                minutes += len(wave) / SAMPLE_RATE / 60
                utterances += len(spans)
                for key, value in score(sentences, spans).items():
                    totals[key] += value
            n = args.takes * args.sentences
            cells = [f"{100 * totals[k] / n:.0f} %" for k in ("one clip", "merged", "split", "missed")]
            mixed = f"{totals['mixed utterances']} of {utterances}"
            rate = seconds / minutes
            print(f"| {pause:g} s | {snr:g} dB | " + " | ".join(cells) + f" | {mixed} | {rate:.2f} |")


if __name__ == "__main__":
    main()
