"""Does the first model's answer for a clip depend on the clips scored beside it? (a new language, one mood)

The app's first model knows only the source language. When a user adds clips of their own language to
the pool, the labeling queue and the Explore maps score them together, while the Predict tab scores a
clip alone. This bench takes held-out clips of each corpus (as ``bench/padding.py``: the test speakers,
at most ``--clips``, balanced over the emotions), embeds them with the app's front end, and scores them
with the first model under a language it has no statistics for: each clip alone, all together, and the
clips of one emotion together (what a user recording themselves in one mood uploads). It prints UA, the
clips whose top emotion is the same alone and together, and per emotion the recall both ways.

Usage::

    python bench/one_mood_batches.py ravdess=../shared/corpora/ravdess emodb=../shared/corpora/emodb
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/padding.py's held-out clips

from padding import held_out  # noqa: E402

from serdemo.app import Service, ServiceConfig  # noqa: E402
from serdemo.audio import load_audio  # noqa: E402
from serdemo.cache import embed_waveforms  # noqa: E402
from serdemo.cli_options import corpus_arg  # noqa: E402
from serdemo.experiment import machine_info  # noqa: E402
from serdemo.labels import EMOTIONS  # noqa: E402
from serdemo.learn import build_clipset, predict_proba  # noqa: E402
from serdemo.metrics import unweighted_accuracy  # noqa: E402

NEW_LANGUAGE = "xx"  # a language code the first model has no statistics for
MIN_BATCH = 10  # the normaliser's min_group_size: smaller batches never had statistics of their own


def score(result, clips: list, features: np.ndarray, rows: list[int]) -> np.ndarray:
    """The model's probabilities for ``clips[rows]`` scored together, as clips of a language it never saw."""
    part = build_clipset(
        ids=[clips[i].id for i in rows],
        languages=[NEW_LANGUAGE] * len(rows),
        speakers=[f"{NEW_LANGUAGE}/unknown"] * len(rows),
        features=features[rows],
    )
    return predict_proba(result, part)


def main() -> None:
    """Score every corpus's held-out clips alone, together and one emotion at a time; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=corpus_arg, nargs="+", metavar="NAME=PATH", help="corpora to test on")
    parser.add_argument("--clips", type=int, default=100, help="held-out clips per corpus (default 100)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as scratch:
        service = Service(ServiceConfig(data_dir=Path(scratch) / "data"), log=lambda text: None)
        service.start(background=False)
        ws = service.ws
        version = service.store.active_version().id
        result = ws.model(version)
        print(f"first model {version}, front end {ws.frontend}, {machine_info()['cpu']}\n")
        print("| corpus | clips | UA alone | UA together | same top | recall alone / one emotion together |")
        print("|---|---|---|---|---|---|")
        for name, root in args.corpora:
            clips = held_out(name, root, args.clips)
            features = embed_waveforms(ws.encoder, [load_audio(u.path) for u in clips], ws.cache)
            truth = np.array([EMOTIONS.index(u.emotion) for u in clips])
            alone = np.concatenate([score(result, clips, features, [i]) for i in range(len(clips))])
            together = score(result, clips, features, list(range(len(clips))))
            recalls = []
            for emotion, label in enumerate(EMOTIONS):
                rows = [i for i in range(len(clips)) if truth[i] == emotion]
                if len(rows) >= MIN_BATCH:
                    by_itself = 100 * (alone[rows].argmax(1) == emotion).mean()
                    one_mood = 100 * (score(result, clips, features, rows).argmax(1) == emotion).mean()
                    recalls.append(f"{label} {by_itself:.0f} / {one_mood:.0f} %")
            same = int((alone.argmax(1) == together.argmax(1)).sum())
            ua_alone = 100 * unweighted_accuracy(truth, alone.argmax(1))
            ua_together = 100 * unweighted_accuracy(truth, together.argmax(1))
            print(
                f"| {name} | {len(clips)} | {ua_alone:.1f} | {ua_together:.1f} | {same} / {len(clips)} | "
                f"{'; '.join(recalls)} |"
            )


if __name__ == "__main__":
    main()
