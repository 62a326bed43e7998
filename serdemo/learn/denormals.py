"""Training with subnormal floats flushed to zero on the CPU, as TensorFlow's thread pools train by default.

A float32 below 1.2e-38 is subnormal, and x86 cores multiply subnormals one to two orders of magnitude
slower than normal numbers. With weight decay the weights of features a head does not use shrink
steadily; in ``bench/adapt_round.py``'s 10,000-clip round the folded classifier weight (classifier x
LayerNorm scale) held thousands of subnormals from about epoch 70, and each forward matrix product then
took 2.2-3.2 ms instead of 0.25 ms. Flushed, such weights are zero; rounds that never reach them train
exactly as before, and the rounds measured (docs/performance.md) chose the same epochs with the same scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

SUBNORMAL = 1e-40  # below float32's smallest normal number (1.18e-38): zero when flushing is on


def denormals_flushed() -> bool:
    """True where this thread's CPU flushes subnormal float32 values to zero (torch has no getter)."""
    return torch.tensor([SUBNORMAL], dtype=torch.float32).mul(1.0).item() == 0.0


@contextmanager
def flushing_denormals() -> Iterator[None]:
    """Flush subnormals to zero in this thread for the block, then restore what the caller had.

    ``torch.set_flush_denormal`` sets the calling thread's flag (x86 with SSE3, AArch64; elsewhere it
    returns False and nothing changes). Worker threads torch starts inside the block inherit it; a pool
    started earlier keeps its own flag, so part of a parallel element-wise op may still meet subnormals. The
    forward matrix product that carried the cost ran flushed either way (``bench/adapt_round.py``,
    docs/performance.md).
    """
    before = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
