"""Optimiser, schedule, freezing, precision and batch transfer of end-to-end fine-tuning.

One Adam learning rate for a pretrained encoder and a fresh head destroys the encoder: at the head's
1e-3 one step moves whisper-base's pooled features by 78 % and RAVDESS UA fell from 76.5 to 43.5
(issue 15, measured on an H200). Here the encoder gets its own, much smaller rate (``encoder_lr``),
an optional linear warm-up, and its lower blocks can be kept fixed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from serdemo.config import AdaptConfig, Mode


class FinetuneError(ValueError):
    """A fine-tuning setting that this encoder cannot honour; the message says what to change."""


def transformer_blocks(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's stack of transformer blocks: its longest ``nn.ModuleList``.

    Whisper's ``encoder.layers`` and HuBERT's ``encoder.layers`` are both found this way, without the
    encoders having to name them.

    Raises:
        FinetuneError: the encoder has no block list (a CNN encoder), so blocks cannot be frozen.

    """
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        raise FinetuneError(
            f"encoder {getattr(encoder, 'name', type(encoder).__name__)!r} has no transformer blocks "
            "to freeze: use freeze_blocks=0 (--freeze-blocks 0)"
        )
    return max(lists, key=len)


def freeze_lower_blocks(encoder: nn.Module, count: int) -> list[nn.Parameter]:
    """Stop gradients into the front end and the lower ``count`` transformer blocks; return the frozen.

    The front end is every parameter registered before the first block (convolutions, positions):
    it sits below block 1, so training it while block 1 is fixed would defeat the freeze.
    """
    if count <= 0:
        return []
    blocks = transformer_blocks(encoder)
    if count > len(blocks):
        raise FinetuneError(f"freeze_blocks={count}, but the encoder has only {len(blocks)} blocks")
    in_blocks = {id(p): i for i, block in enumerate(blocks) for p in block.parameters()}
    frozen, seen_block = [], False
    for parameter in encoder.parameters():
        index = in_blocks.get(id(parameter))
        seen_block = seen_block or index is not None
        if (index is None and not seen_block) or (index is not None and index < count):
            parameter.requires_grad_(False)
            frozen.append(parameter)
    return frozen


def make_optimizer(
    model: nn.Module, head: nn.Module, config: AdaptConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Adam over a head group (``lr``, weight decay) and, for a fine-tuned model, an encoder group.

    The encoder group has ``encoder_lr``, no weight decay (pulling pretrained weights to zero undoes
    them) and only the parameters that :func:`freeze_lower_blocks` left trainable. Both groups decay by
    ``lr_decay`` every ``lr_decay_every`` epochs; the encoder's rate also rises linearly over the first
    ``encoder_warmup_epochs`` epochs. Call ``scheduler.step()`` once per epoch.
    """
    groups = [{"params": list(head.parameters()), "weight_decay": config.weight_decay, "lr": config.lr}]
    if head is not model:
        freeze_lower_blocks(model.encoder, config.freeze_blocks)
        trainable = [p for p in model.encoder.parameters() if p.requires_grad]
        groups.append({"params": trainable, "weight_decay": 0.0, "lr": config.encoder_lr})
    # one fused kernel per step instead of ~12 foreach calls, which weigh on a frozen round's small steps
    # (docs/performance.md, third pass); it changes the weights' last bits, not the paper protocol's scores
    fused = all(p.device.type in ("cpu", "cuda") for group in groups for p in group["params"])
    optimizer = torch.optim.Adam(groups, lr=config.lr, fused=fused, foreach=None if fused else True)
    lambdas = [lambda epoch: decay_factor(config, epoch)]
    if len(groups) > 1:
        lambdas.append(lambda epoch: decay_factor(config, epoch) * warmup_factor(config, epoch))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def decay_factor(config: AdaptConfig, epoch: int) -> float:
    """Step decay of the paper: ``lr_decay`` every ``lr_decay_every`` epochs (epoch counted from 0)."""
    return config.lr_decay ** (epoch // config.lr_decay_every)


def warmup_factor(config: AdaptConfig, epoch: int) -> float:
    """Linear warm-up of the encoder rate: epoch e < K trains at (e + 1) / (K + 1) of it, then 1."""
    warmup = config.encoder_warmup_epochs
    return 1.0 if epoch >= warmup else (epoch + 1) / (warmup + 1)


def autocast(config: AdaptConfig | None, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast in finetune mode with ``precision="bf16"``, else nothing (float32 everywhere)."""
    if config is not None and config.mode == Mode.FINETUNE.value and config.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host batch to ``device``; on CUDA from pinned memory and without waiting for the copy."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def module_device(module: nn.Module) -> torch.device:
    """Device of a module's first parameter or buffer (CPU for a module with neither)."""
    tensors: Iterator[torch.Tensor] = iter([*module.parameters(), *module.buffers()])
    first = next(tensors, None)
    return first.device if first is not None else torch.device("cpu")


ALLOW_CPU_ENV = "SERDEMO_ALLOW_CPU_FINETUNE"  # "1": offer fine-tune rounds without a GPU (slow)


@dataclass(frozen=True)
class FinetuneAvailability:
    """Whether fine-tuning rounds are offered on this machine, where they run, and what to tell the user."""

    offered: bool
    device: str  # torch device the rounds train on: "cuda" or "cpu"
    reason: str  # why the option is off, or what choosing it costs


def finetune_availability(allow_cpu: bool = False) -> FinetuneAvailability:
    """The one rule for offering fine-tune rounds: a CUDA GPU, or an explicit CPU opt-in.

    Args:
        allow_cpu: offer them without a GPU (``app.py --allow-cpu-finetune``); the environment
            variable ``SERDEMO_ALLOW_CPU_FINETUNE=1`` does the same (tests, Spaces settings).

    """
    if torch.cuda.is_available():
        return FinetuneAvailability(
            True,
            "cuda",
            f"Trains the encoder too, on the GPU ({torch.cuda.get_device_name(0)}): minutes per round, "
            "and predictions then use the fine-tuned encoder's own vectors.",
        )
    if allow_cpu or os.environ.get(ALLOW_CPU_ENV, "").strip().lower() in ("1", "true", "yes"):
        return FinetuneAvailability(
            True,
            "cpu",
            "No GPU: fine-tuning runs on the CPU because it was allowed (--allow-cpu-finetune or "
            f"{ALLOW_CPU_ENV}=1); with whisper-base one round takes hours.",
        )
    return FinetuneAvailability(
        False,
        "cpu",
        "Off: fine-tuning the encoder needs a GPU (CUDA); on this CPU one round would take hours. "
        "Frozen rounds train the head on cached features in seconds. "
        f"To run it here anyway, start with --allow-cpu-finetune (or {ALLOW_CPU_ENV}=1).",
    )
