"""How far one fine-tuning step moves whisper-base's pooled features, per encoder learning rate (issue 15).

Issue 15 found that at the head's 1e-3 one Adam step moves whisper-base's pooled features by 78 % and
at 1e-5 by 2 %, which is why ``AdaptConfig.encoder_lr`` is 1e-5. This repeats that CPU check with the
project's own optimiser (serdemo.learn.finetune.make_optimizer): the real weights, ``--clips`` RAVDESS clips
cut to 2 s, a fresh head, one step of cross-entropy on their labels, and the relative change
||after - before|| / ||before|| of the per-layer mean+std vectors of the same clips.

Run::

    python bench/finetune_step.py --ravdess ../shared/corpora/ravdess --threads 1
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from serdemo.audio import load_audio
from serdemo.config import AdaptConfig
from serdemo.corpora import load_corpus
from serdemo.encoders.base import pad_batch
from serdemo.encoders.whisper import load_whisper_base
from serdemo.labels import EMOTIONS
from serdemo.learn.finetune import make_optimizer
from serdemo.learn.model import EmotionHead, SERModel


def main(argv: list[str] | None = None) -> None:
    """Print the relative feature change of one step at each learning rate."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ravdess", type=Path, default=Path("../shared/corpora/ravdess"))
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--rates", type=float, nargs="+", default=[1e-3, 1e-4, AdaptConfig().encoder_lr])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    utterances = [u for u in load_corpus("ravdess", args.ravdess) if u.emotion in EMOTIONS]
    picked = [utterances[i] for i in rng.choice(len(utterances), args.clips, replace=False)]
    waves = []
    for u in picked:  # the middle 2 s, where acted RAVDESS clips hold their sentence
        wave = load_audio(u.path)
        start = max(0, (len(wave) - 32_000) // 2)
        waves.append(wave[start : start + 32_000])
    batch, lengths = pad_batch(waves)
    labels = torch.tensor([EMOTIONS.index(u.emotion) for u in picked])
    encoder = load_whisper_base()
    start_model = SERModel(encoder, EmotionHead(encoder.num_layers, 2 * encoder.hidden_size, len(EMOTIONS)))
    with torch.no_grad():
        before = start_model.eval().features(batch, lengths)
    for rate in args.rates:
        model = copy.deepcopy(start_model).train()
        optimizer, _ = make_optimizer(model, model.head, AdaptConfig(mode="finetune", encoder_lr=rate))
        loss = torch.nn.functional.cross_entropy(model(batch, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            after = model.eval().features(batch, lengths)
        moved = float((after - before).norm() / before.norm())
        print(
            f"encoder lr {rate:g}: one step moves pooled features by {100 * moved:.1f} % ({args.clips} clips)"
        )


if __name__ == "__main__":
    main()
