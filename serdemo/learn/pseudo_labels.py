"""Pseudo-label policies (none / hard / soft) behind one protocol, and the soft policy's regularisers.

Every policy turns the current model's probabilities on unlabeled target clips into ``targets``
(N, C) and ``weights`` (N,) with :meth:`select`, and scores a batch of them with
:meth:`unlabeled_loss`, which always has the form ``(per_item_loss * weights).mean()`` (plus
regularisers for the soft policy), as in Microsoft's USB (``semilearn/algorithms/hooks``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from serdemo.config import AdaptConfig, Balance, Policy, Prior
from serdemo.learn.clips import is_copy

BALANCE_CLIPS_PER_CLASS = 4  # smallest group pseudo_balance rescales: this many clips per class
BALANCE_UNTIL_LABELS_PER_CLASS = 10  # "auto-language" balances while fewer target labels per class


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-item cross-entropy with probability targets, (N, C) x (N, C) -> (N,).

    Equals :func:`torch.nn.functional.cross_entropy` for one-hot targets.
    """
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1)


def prior_matching(probs: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """R_A = sum_j p_j log(p_j / mean_i h_j(x_i)), the KL divergence from the mean prediction to ``prior``.

    Tanaka et al. (2018, "Joint optimization framework for learning with noisy labels", eq. 6), used
    by Arazo et al. (2020) and Agarla et al. (2023) for soft pseudo-labels: it is zero when the mean
    prediction over the batch equals the prior and grows when the model collapses onto few classes.

    Args:
        probs: (N, C) predicted probabilities h(x_i) of the unlabeled items of a batch.
        prior: (C,) class prior p (uniform in the papers).

    Example:
        >>> round(float(prior_matching(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0.5, 0.5]))), 6)
        0.0

    """
    mean = probs.mean(dim=0).clamp_min(1e-12)
    prior = prior.to(probs)
    return (torch.special.xlogy(prior, prior) - prior * mean.log()).sum()


def entropy_term(probs: torch.Tensor) -> torch.Tensor:
    """R_H = -(1/N) sum_i sum_j h_j(x_i) log h_j(x_i), the mean prediction entropy.

    Tanaka et al. (2018, eq. 7), as used by Arazo et al. (2020) and Agarla et al. (2023).

    Zero for one-hot predictions, log C for uniform ones; minimising it makes predictions confident.
    """
    return -torch.special.xlogy(probs, probs).sum(dim=-1).mean()


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """Mix every item with a random partner: x' = lam x + (1 - lam) x[perm], same for targets y.

    Zhang et al. (2018); lam ~ Beta(alpha, alpha) then ``lam = max(lam, 1 - lam)`` (as in DivideMix,
    Li et al., 2020) so each mixed row is dominated by its own item and keeps that item's role
    (labeled or pseudo-labeled) in the loss.

    Returns:
        ``(x_mixed, y_mixed, lam, perm)``; ``perm`` (N,) lets callers mix other per-item values.

    """
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm], lam, perm


def balance_to_prior(probs: np.ndarray, prior: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Rescale per-class columns, then renormalise rows, until the mean prediction equals ``prior``.

    Sinkhorn-Knopp balancing, as in the balanced pseudo-labels of self-labelling (Asano et al., 2020)
    and SwAV (Caron et al., 2020); ReMixMatch's distribution alignment (Berthelot et al., 2020) is its
    first step. It is the hard-label counterpart of the soft policy's R_A: a source model that rarely
    says "neutral" in a new language is made to say it for the clips with the highest neutral log-odds.
    The result is the model's logits plus one constant per class (logit adjustment), renormalised:
    rows stay distributions, and the model's ranking of clips within a class's log-odds is kept.

    Example:
        >>> biased = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.7, 0.3]])
        >>> balance_to_prior(biased, np.array([0.5, 0.5])).argmax(1).tolist()
        [0, 1, 0, 1]

    """
    balanced = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None)
    prior = np.asarray(prior, dtype=np.float64)
    for _ in range(iterations):
        balanced = balanced * (prior / balanced.mean(axis=0))
        balanced = balanced / balanced.sum(axis=1, keepdims=True)
    return balanced.astype(np.asarray(probs).dtype)


def balance_by_group(
    probs: np.ndarray, groups: np.ndarray, fallback: np.ndarray, prior: np.ndarray, min_size: int
) -> np.ndarray:
    """:func:`balance_to_prior` within each group of rows (one speaker, say) of at least ``min_size``.

    Rows of smaller groups are balanced together per ``fallback`` value (their language); what is still
    smaller than ``min_size`` is left as it is: forcing the prior on a handful of clips would invent labels.
    """
    groups, fallback = np.asarray(groups, dtype=str), np.asarray(fallback, dtype=str)
    names, counts = np.unique(groups, return_counts=True)
    large = set(names[counts >= min_size].tolist())
    keys = np.array([g if g in large else f"{f}\0small" for g, f in zip(groups, fallback, strict=True)])
    out = np.array(probs, copy=True)
    for key in np.unique(keys):
        rows = keys == key
        if rows.sum() >= min_size:
            out[rows] = balance_to_prior(out[rows], prior)
    return out


class PseudoLabelPolicy(Protocol):
    """What the training loop needs from a policy."""

    name: str
    uses_unlabeled: bool  # False: the loop never pseudo-labels (supervised baseline)
    uses_mixup: bool  # True: mini-batches are mixed before the loss

    def select(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(targets (N, C), weights (N,))`` from probabilities (N, C) on unlabeled clips."""
        ...

    def unlabeled_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Loss of a batch of pseudo-labeled items (scalar)."""
        ...


class NoPseudoLabels:
    """Supervised only: unlabeled clips never enter training."""

    name = Policy.NONE.value
    uses_unlabeled = False
    uses_mixup = False

    def select(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Accept nothing: zero targets and zero weights."""
        return torch.zeros_like(probs), torch.zeros(len(probs), dtype=probs.dtype, device=probs.device)

    def unlabeled_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Weighted cross-entropy; zero in practice, as nothing is accepted."""
        return (soft_cross_entropy(logits, targets) * weights).mean() if len(logits) else logits.sum()


class HardPseudoLabels:
    """Hard pseudo-labels: the argmax class, kept only where the top probability reaches ``tau``.

    Agarla et al. (2023), hard approach (tau = 0.5); the 0/1 mask is the confidence masking of
    FixMatch / USB's ``FixedThresholdingHook``.
    """

    name = Policy.HARD.value
    uses_unlabeled = True

    def __init__(self, tau: float, mixup: bool = AdaptConfig.hard_mixup) -> None:
        self.tau = tau  # default: AdaptConfig.tau
        self.uses_mixup = mixup  # the paper's hard policy does not mix; AdaptConfig.hard_mixup

    def select(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-hot argmax targets; weight 1 where max probability >= tau, else 0."""
        confidence, label = probs.max(dim=-1)
        weights = (confidence >= self.tau).to(probs.dtype)
        return F.one_hot(label, probs.shape[-1]).to(probs.dtype), weights

    def unlabeled_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Compute ``(cross_entropy * weights).mean()`` over the batch."""
        if not len(logits):
            return logits.sum()
        return (soft_cross_entropy(logits, targets) * weights).mean()


class SoftPseudoLabels:
    """Soft pseudo-labels: the predicted distribution itself, every item with weight 1.

    Agarla et al. (2023), soft approach (their eq. 3-7), following Arazo et al. (2020,
    "Pseudo-labeling and confirmation bias in deep semi-supervised learning"): cross-entropy to the
    soft targets on mixup-ed batches, plus ``lambda_a * R_A + lambda_h * R_H`` (Tanaka et al., 2018),
    which keep predictions from collapsing onto one class (R_A) yet confident (R_H). We compute
    R_A and R_H over the batch's pseudo-labeled rows, the target clips whose labels are guessed.
    """

    name = Policy.SOFT.value
    uses_unlabeled = True
    uses_mixup = True

    def __init__(self, lambda_a: float, lambda_h: float, prior: torch.Tensor | None = None) -> None:
        self.lambda_a = lambda_a  # defaults: AdaptConfig.lambda_a / lambda_h
        self.lambda_h = lambda_h
        self.prior = prior  # None: uniform, set from the number of classes at first use

    def select(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Use the probabilities themselves as targets, weight 1 each."""
        return probs.detach().clone(), torch.ones(len(probs), dtype=probs.dtype, device=probs.device)

    def unlabeled_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Compute ``(soft_ce * weights).mean() + lambda_a * R_A + lambda_h * R_H``."""
        if not len(logits):
            return logits.sum()
        probs = F.softmax(logits, dim=-1)
        prior = (
            self.prior if self.prior is not None else torch.full((probs.shape[-1],), 1.0 / probs.shape[-1])
        )
        r_a, r_h = prior_matching(probs, prior), entropy_term(probs)
        ce = (soft_cross_entropy(logits, targets) * weights).mean()
        return ce + self.lambda_a * r_a + self.lambda_h * r_h


# Policy name -> builder from the config's hyper-parameters and the class prior; one entry per Policy member.
POLICIES: dict[str, Callable[[AdaptConfig, torch.Tensor | None], PseudoLabelPolicy]] = {
    Policy.NONE.value: lambda config, prior: NoPseudoLabels(),
    Policy.HARD.value: lambda config, prior: HardPseudoLabels(config.tau, config.hard_mixup),
    Policy.SOFT.value: lambda config, prior: SoftPseudoLabels(config.lambda_a, config.lambda_h, prior),
}


def make_policy(config: AdaptConfig, prior: torch.Tensor | None = None) -> PseudoLabelPolicy:
    """Build the policy ``config.policy`` names, with the config's hyper-parameters."""
    return POLICIES[config.policy](config, prior)


def labels_given(ids: Sequence[str]) -> int:
    """How many clips a person labeled, among labeled rows that may hold augmented training copies.

    Copies repeat a label, they do not add one: 25 labels with 3 copies each are 100 rows, and
    counting rows switched "auto-language" balancing off at 25 labels (EN->DE 75.5 -> 69.2 UA).

    Example:
        >>> labels_given(["a", "b", "a#aug0", "b#aug0"])
        2

    """
    return sum(not is_copy(i) for i in ids)


def balance_pseudo_probs(
    config: AdaptConfig,
    probs: np.ndarray,
    languages: np.ndarray,
    speakers: np.ndarray,
    prior: torch.Tensor | None,
    target_labels: int,
) -> np.ndarray:
    """Match the pool's mean prediction to the class prior, per speaker group or per language.

    ``target_labels`` counts labeled target clips, not their augmented copies (:func:`labels_given`).
    """
    if (
        config.pseudo_balance == Balance.NONE.value
        or (config.pseudo_balance == Balance.AUTO.value and target_labels > 0)
        or (
            config.pseudo_balance == Balance.AUTO_LANGUAGE.value
            and target_labels >= BALANCE_UNTIL_LABELS_PER_CLASS * probs.shape[1]
        )
    ):
        return probs
    prior = np.full(probs.shape[1], 1.0 / probs.shape[1]) if prior is None else prior.numpy()
    # a group needs a few clips per class before "every class is equally likely" is a fair guess
    min_size = BALANCE_CLIPS_PER_CLASS * probs.shape[1]
    if config.pseudo_balance in (Balance.PER_LANGUAGE.value, Balance.AUTO_LANGUAGE.value):
        return balance_by_group(probs, languages, languages, prior, min_size)
    # "<language>/unknown" speakers (app uploads) form one group per language, as in normalisation
    return balance_by_group(probs, speakers, languages, prior, min_size)


def class_prior(config: AdaptConfig, labels: np.ndarray) -> torch.Tensor | None:
    """The class prior of R_A and of balancing: uniform (None), or the labeled target clips' frequencies."""
    if config.prior == Prior.LABELED.value and len(labels):
        counts = np.bincount(labels, minlength=len(config.classes)) + 1.0  # add-one smoothing
        return torch.tensor(counts / counts.sum(), dtype=torch.float32)
    return None  # uniform
