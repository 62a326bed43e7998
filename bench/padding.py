"""Does the app's answer survive what a real recording has around the speech? (issue 16)

Takes held-out clips of any corpus (the speaker-independent test part, seed 0, at most ``--clips``
balanced over the five emotions), predicts each with :meth:`serdemo.app.service.Service.predict` as it is
and padded with 0.5 s before and 1 s after of (a) digital silence and (b) low Gaussian room noise
(about -50 dBFS RMS), and prints in how many clips the top emotion stays the same, plus the UA of the
unpadded clips. The model is the one the app trains at its first start (the shipped source set, or
``--source`` corpora, whose test speakers are never trained on).

Usage::

    python bench/padding.py ravdess=../shared/corpora/ravdess emodb=../shared/corpora/emodb
    python bench/padding.py folder=/data/my_clips --clips 200 --frontend none   # today's embedding
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from serdemo.app import Service, ServiceConfig
from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.cli_options import corpus_arg
from serdemo.corpora import load_corpus
from serdemo.corpora.base import Utterance
from serdemo.experiment import machine_info
from serdemo.labels import EMOTIONS
from serdemo.metrics import unweighted_accuracy
from serdemo.splits import speaker_split

BEFORE_S, AFTER_S = 0.5, 1.0  # the padding of the table
NOISE_DBFS = -50.0  # RMS of the room noise: a quiet room through a laptop microphone


def held_out(name: str, root: Path, clips: int, seed: int = 0) -> list[Utterance]:
    """The test speakers' five-emotion clips, at most ``clips`` of them, as even over emotions as possible."""
    found = [u for u in load_corpus(name, root) if u.emotion in EMOTIONS]
    test = speaker_split(found, seed=seed).test
    rng = np.random.default_rng(seed)
    by_class = {e: [u for u in test if u.emotion == e] for e in EMOTIONS}
    for group in by_class.values():
        rng.shuffle(group)
    chosen: list[Utterance] = []
    while len(chosen) < clips and any(by_class.values()):  # round robin over the emotions
        for group in by_class.values():
            if group and len(chosen) < clips:
                chosen.append(group.pop())
    return sorted(chosen, key=lambda u: u.id)


def padded(wave: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``wave`` with BEFORE_S / AFTER_S of digital silence (``"silence"``) or room noise (``"noise"``)."""
    before, after = round(BEFORE_S * SAMPLE_RATE), round(AFTER_S * SAMPLE_RATE)
    if kind == "silence":
        return np.concatenate([np.zeros(before, np.float32), wave, np.zeros(after, np.float32)])
    scale = 10 ** (NOISE_DBFS / 20)
    noise = (rng.standard_normal(before + after) * scale).astype(np.float32)
    return np.concatenate([noise[:before], wave, noise[before:]])


def main() -> None:
    """Predict every clip plain and padded; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=corpus_arg, nargs="+", metavar="NAME=PATH", help="corpora to test on")
    parser.add_argument("--clips", type=int, default=100, help="held-out clips per corpus (default 100)")
    parser.add_argument("--source", type=corpus_arg, action="append", default=[], metavar="NAME=PATH",
                        help="train on these corpora (default: the shipped source set)")  # fmt: skip
    parser.add_argument("--frontend", default=None, help="speech front end (default: the app's)")
    parser.add_argument("--augment-copies", type=int, default=None,
                        help="augmented copies per source training clip (default: the app's)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        config = ServiceConfig(data_dir=scratch / "data", source_corpora=tuple(args.source))
        if args.frontend is not None:
            config = ServiceConfig(**{**config.__dict__, "frontend": args.frontend})
        if args.augment_copies is not None:
            config = ServiceConfig(**{**config.__dict__, "augment_copies": args.augment_copies})
        service = Service(config, log=lambda text: None).start(background=False)
        print(f"front end: {service.frontend}; model: {service.store.active_version().id}")
        print(f"machine: {machine_info()['cpu']}, torch {torch.__version__}, {args.threads} thread(s)\n")
        print("| corpus | clips | UA unpadded | top unchanged, silence pad | top unchanged, noise pad |")
        print("|---|---|---|---|---|")
        totals = np.zeros(3, int)
        notes: list[str] = []
        for name, root in args.corpora:
            clips = held_out(name, root, args.clips)
            rng = np.random.default_rng(0)
            tops: dict[str, list[str]] = {"plain": [], "silence": [], "noise": []}
            margins = []  # top-1 minus top-2 probability of each unpadded prediction
            for utterance in clips:
                plain = service.predict(utterance.path)
                tops["plain"].append(plain.top)
                margins.append(float(np.diff(sorted(plain.probs.values())[-2:])[0]))
                wave = load_audio(utterance.path)
                for kind in ("silence", "noise"):
                    path = scratch / f"{kind}.wav"
                    sf.write(path, padded(wave, kind, rng), SAMPLE_RATE, subtype="PCM_16")
                    tops[kind].append(service.predict(path).top)
            same = {
                k: sum(a == b for a, b in zip(tops["plain"], tops[k], strict=True))
                for k in ("silence", "noise")
            }
            truth = [EMOTIONS.index(u.emotion) for u in clips]
            ua = 100 * unweighted_accuracy(
                np.array(truth), np.array([EMOTIONS.index(t) for t in tops["plain"]])
            )
            n = len(clips)
            totals += (n, same["silence"], same["noise"])
            print(f"| {name} | {n} | {ua:.1f} | {same['silence']} / {n} ({100 * same['silence'] / n:.0f} %) "
                  f"| {same['noise']} / {n} ({100 * same['noise'] / n:.0f} %) |", flush=True)  # fmt: skip
            # which clips flip: few right answers and small margins point at an unsure model
            flipped = [i for i in range(n) if tops["silence"][i] != tops["plain"][i]]
            kept = [i for i in range(n) if i not in flipped]
            right = sum(tops["plain"][i] == clips[i].emotion for i in flipped)
            notes.append(
                f"{name}: {len(flipped)} clips change with silence, {right} of them right unpadded; median "
                f"top-2 margin {np.median([margins[i] for i in flipped]) if flipped else float('nan'):.2f} "
                f"flipped vs {np.median([margins[i] for i in kept]) if kept else float('nan'):.2f} kept"
            )
        if len(args.corpora) > 1:
            n, silence, noise = totals.tolist()
            print(
                f"| all | {n} | | {silence} / {n} ({100 * silence / n:.0f} %) "
                f"| {noise} / {n} ({100 * noise / n:.0f} %) |"
            )
        print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
