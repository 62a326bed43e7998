"""Train the linear head on the leading principal components of its input, then fold it back to full width.

A frozen round's linear head reads 7,168 values per clip (whisper-base: 7 layers x mean and std of 512),
and most of a round's time is reading them: every optimiser step gathers a batch of 100 x 7,168 floats
and multiplies it twice by a 5-row matrix (docs/performance.md). The rows of one round span far fewer
useful directions than that. :func:`fit_components` finds the ``k`` leading principal directions of
the round's training rows once (a randomised SVD of a sample of them) and a random orthonormal basis of
them (Adam needs one whose coordinates mix the directions: see there); the rows are projected once, and
a :class:`ComponentHead` (``k`` -> classes) trains on the projections with Algorithm 1 unchanged.

A linear map of a linear projection is linear: :meth:`ComponentHead.fold_into` writes the trained head back
into the :class:`~serdemo.learn.model.EmotionHead` it came from (classifier weight ``V @ P``, LayerNorm
affine set to identity), so what is saved, served and plotted is the usual head on the usual features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from serdemo.learn.model import EmotionHead
from serdemo.learn.reduced_head import ReducedHead, fold_affine

FIT_ROWS = 2048  # rows the directions are fitted on (an equal share per group): enough for 256 directions
CHUNK_ROWS = 4096  # rows projected at a time: bounds the temporaries


@dataclass(frozen=True)
class Components:
    """A basis of the leading principal subspace of a set of rows: ``(x - mean) @ basis.T`` projects."""

    mean: torch.Tensor  # (D,)
    basis: torch.Tensor  # (k, D), orthonormal rows spanning the k leading principal directions

    def project(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, ...) rows flattened to (N, D), projected: (N, k)."""
        flat = rows.reshape(len(rows), -1)
        out = torch.empty((len(rows), len(self.basis)), dtype=self.basis.dtype, device=self.basis.device)
        for start in range(0, len(rows), CHUNK_ROWS):
            out[start : start + CHUNK_ROWS] = (flat[start : start + CHUNK_ROWS] - self.mean) @ self.basis.t()
        return out


def fit_components(
    rows: torch.Tensor, k: int, seed: int, groups: np.ndarray | None = None, max_rows: int = FIT_ROWS
) -> Components:
    """An orthonormal basis, randomly rotated, of the ``k`` leading principal directions of ``rows`` (N, ...).

    The directions come from at most ``max_rows`` of the rows.

    Args:
        rows: the training rows, flattened per row.
        k: directions to keep; at most the sample's rank is meaningful, and more than ``min(N, D)`` is
            cut to that.
        seed: seeds the sample and the randomised SVD (torch's global random state is left as it was).
        groups: (N,) a group per row (e.g. source / target): the sample takes an equal share of each
            group, so a large target pool does not leave the source's directions out.
        max_rows: sample size.

    """
    flat = rows.reshape(len(rows), -1)
    sample = _balanced_sample(len(flat), groups, max_rows, np.random.default_rng(seed))
    fit = flat[torch.from_numpy(sample).to(flat.device)] if len(sample) < len(flat) else flat
    k = max(1, min(k, *fit.shape))
    mean = fit.mean(0)
    with torch.random.fork_rng(devices=[] if fit.device.type == "cpu" else [fit.device]):
        torch.manual_seed(seed)
        # randomised SVD (Halko et al., 2011) with one power iteration
        _, _, v = torch.svd_lowrank(fit - mean, q=min(k + 10, *fit.shape), niter=1)
    # Adam scales each coordinate's step by its own gradient history. On the principal axes themselves it
    # would step as far along the faintest direction as along the strongest, as if the rows were whitened:
    # RAVDESS from EMO-DB with no labels fell from 55.7 to 39.4 UA. A random rotation of the same subspace
    # mixes every direction into every coordinate, as the original features do (56.5; docs/performance.md)
    rotation = torch.linalg.qr(torch.randn(k, k, generator=torch.Generator().manual_seed(seed)))[0]
    return Components(mean, (rotation.to(v) @ v[:, :k].t().contiguous()).contiguous())


def _balanced_sample(
    n: int, groups: np.ndarray | None, max_rows: int, rng: np.random.Generator
) -> np.ndarray:
    """Sorted row indices: all ``n`` if they fit, else an equal share per group, topped up from the rest."""
    if n <= max_rows:
        return np.arange(n)
    groups = np.zeros(n, int) if groups is None else np.asarray(groups)
    names = np.unique(groups)
    share = max_rows // len(names)
    chosen = [rng.permutation(np.flatnonzero(groups == g))[:share] for g in names]
    taken = np.concatenate(chosen)
    rest = rng.permutation(np.setdiff1d(np.arange(n), taken))[: max_rows - len(taken)]
    return np.sort(np.concatenate([taken, rest]))


def can_use_components(net: nn.Module) -> bool:
    """True for a reduced linear head (no projection, no dropout): what a component head can stand for."""
    if not isinstance(net, ReducedHead):
        return False
    head = net.head
    return head.projection is None and head.dropout.p == 0


class ComponentHead(nn.Module):
    """A linear head over :class:`Components` projections standing for a linear EmotionHead.

    It starts as the head's own (random) weights seen in the components; :meth:`fold_into` writes it back.
    The EmotionHead is not a submodule: its parameters are not this head's, and are not trained.

    Example:
        >>> head = EmotionHead(3, 8, 5, projection_dim=0, combination="concat")
        >>> reduced = torch.randn(40, 3, 8)
        >>> components = fit_components(reduced, 24, seed=0)  # every direction: nothing is lost
        >>> net = ComponentHead(head, components)
        >>> with torch.no_grad():
        ...     _ = net.linear.weight.add_(1.0)  # "training"
        >>> net.fold_into(head)
        >>> torch.allclose(ReducedHead(head)(reduced), net(components.project(reduced)), atol=1e-4)
        True

    """

    def __init__(self, head: EmotionHead, components: Components) -> None:
        super().__init__()
        if not can_use_components(ReducedHead(head)):
            raise ValueError("only a linear head without dropout can train on principal components")
        self.components = components
        with torch.no_grad():
            _, weight, bias = fold_affine(head.classifier, head)  # the head's logits on reduced inputs
            self.linear = nn.Linear(len(components.basis), weight.shape[0]).to(weight.device)
            self.linear.weight.copy_(weight @ components.basis.t())
            self.linear.bias.copy_(bias + weight @ components.mean)

    def forward(self, projected: torch.Tensor) -> torch.Tensor:
        """Logits (N, C) of projected inputs (N, k)."""
        return self.linear(projected)

    @torch.no_grad()
    def fold_into(self, head: EmotionHead) -> None:
        """Write this head into ``head`` (the one it was made from): its logits, on full-width inputs."""
        basis, mean = self.components.basis, self.components.mean
        full = self.linear.weight @ basis  # (C, L'F)
        head.norm.weight.fill_(1.0)
        head.norm.bias.zero_()
        head.classifier.weight.copy_(full.view_as(head.classifier.weight))
        head.classifier.bias.copy_(self.linear.bias - full @ mean)
