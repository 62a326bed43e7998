"""Settings of one adaptation run, with the paper's defaults (Agarla et al., 2023)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from serdemo.labels import EMOTIONS, emotion_index

# The experiment protocol's default number of labeled target clips (paper: 100), shared by
# serdemo.experiment.ExperimentSpec and the CLI; here, not there, so the CLI starts without torch.
LABELED_TARGET_CLIPS = 100
FROZEN_THREADS = 2  # AdaptConfig.threads = 0 in frozen mode: at most this many (docs/performance.md)


class Policy(str, Enum):
    """How unlabeled target clips enter training (Agarla et al., 2023, Algorithm 1)."""

    # in the order the Adapt tab and the CLI list them: the paper's two policies, then the baseline
    HARD = "hard"  # argmax pseudo-labels kept where the top probability reaches tau
    SOFT = "soft"  # probability pseudo-labels + mixup + R_A / R_H regularisers
    NONE = "none"  # supervised only: D = D_s + K_t


class Mode(str, Enum):
    """What is trained."""

    FROZEN = "frozen"  # cached encoder features, trainable head only
    FINETUNE = "finetune"  # encoder and head end to end on random crops


class Normalization(str, Enum):
    """Feature standardisation groups (frozen mode), see :mod:`serdemo.learn.normalize`."""

    NONE = "none"
    GLOBAL = "global"
    PER_LANGUAGE = "per-language"
    PER_SPEAKER = "per-speaker"
    # per-language standardisation, then the speaker subspace learned from labeled clips of known speakers
    # (nuisance attribute projection) projected out: needs no target speaker id, survives one-mood speakers
    NAP = "nap"


class LayerCombination(str, Enum):
    """How the head combines the per-layer utterance vectors (frozen and finetune mode)."""

    MIX = "mix"  # softmax-weighted sum over layers (SUPERB featurizer, Yang et al., 2021)
    CONCAT = "concat"  # per-layer LayerNorm, then concatenation: keeps what each layer carries


class Balance(str, Enum):
    """How pseudo-labeling probabilities are matched to the class prior before selection."""

    NONE = "none"  # use the model's probabilities as they are (the paper)
    PER_LANGUAGE = "per-language"  # one Sinkhorn balancing over each language's unlabeled clips
    PER_SPEAKER = "per-speaker"  # one per speaker group; small and unknown-speaker groups per language
    AUTO = "auto"  # per-speaker while no target clip is labeled, none once some are
    # per-language while the target has fewer than 10 labeled clips per class, none from then on: needs no
    # speaker id, does not force every emotion onto a speaker who shows one (per-speaker balancing does),
    # and keeps correcting the source's class bias through the first labels (+2.8 UA at 25 on EMO-DB)
    AUTO_LANGUAGE = "auto-language"


class Prior(str, Enum):
    """Class prior p of the R_A term."""

    UNIFORM = "uniform"  # Tanaka et al. (2018) / Arazo et al. (2020): p_j = 1 / C
    LABELED = "labeled"  # class frequencies of the labeled target clips K_t (smoothed)


class Selection(str, Enum):
    """Which epoch's weights a run keeps."""

    VALIDATION = "validation"  # best mean UA over every validation set, target-language ones included
    # no target label needed: best mean of the source-language validation UA(s) and the information
    # maximisation score of the unlabeled target pool (confident yet diverse predictions); target-language
    # validation sets are still scored, for the record, but do not choose
    LABEL_FREE = "label-free"


PRECISIONS = ("fp32", "bf16")  # finetune mode: float32, or bf16 autocast of forward passes


class ConfigError(ValueError):
    """A setting outside its allowed range; the message names the field and what is allowed."""


@dataclass(frozen=True)
class AdaptConfig:
    """Everything that decides one run of Algorithm 1; saved as JSON beside the trained weights.

    Example:
        >>> config = AdaptConfig(policy="soft", classes=("anger", "happiness", "neutral", "sadness"))
        >>> AdaptConfig.from_dict(config.to_dict()) == config
        True

    """

    # --- task ---
    classes: tuple[str, ...] = EMOTIONS  # the 5 emotions of the paper; any >= 2 subset, in EMOTIONS order
    encoder: str = "whisper-base"  # registry name of the encoder whose features/weights the head sits on
    mode: str = Mode.FROZEN.value  # frozen features + head, or end-to-end fine-tuning as in the paper
    # speech front end before embedding (serdemo.speech): trim to the speech Silero VAD finds plus 0.25 s,
    # filled with silence where a tightly cut clip has none ("-fill": padded and unpadded clips then look
    # alike), speech scaled to one RMS level ("-level": loudness is the microphone's, and RAVDESS's differs
    # by emotion), frames pooled by speech probability; "none" embeds whole clips as before. Without -fill
    # EMO-DB missed the padding targets; with both, RAVDESS -> EMO-DB UA is 1.6 lower over 9 seeds (issue 16)
    frontend: str = "silero-trim0.25-fill-level-weighted"
    # frozen mode: extra training rows per labeled clip, each the clip with random silence/noise padding and
    # gain (serdemo.learn.augment); 0 = none. Costs one embedding per clip and copy, cached. 3 copies: RAVDESS
    # -> EMO-DB 81.6 -> 88.5 UA (whole clips 86.1), EMO-DB -> RAVDESS 62.0 -> 62.6 (62.9); docs, issue 16
    augment_copies: int = 3
    device: str = "cpu"  # torch device for training and inference
    # torch CPU threads for a run; 0 = automatic: in frozen mode at most FROZEN_THREADS (a step gathers and
    # multiplies a 100 x 7,168 batch: 2 threads make a round 1.15-1.2x faster; more is unmeasured), else
    # torch's
    threads: int = 0
    # --- Algorithm 1 ---
    policy: str = Policy.HARD.value  # pseudo-label policy; the paper compares hard and soft
    epochs: int = 100  # E, training epochs (paper: 100)
    window: int = 30  # W, pseudo-label U_t every W epochs (paper: 30)
    tau: float = 0.5  # hard policy: keep a pseudo-label when max probability >= tau (paper: 0.5)
    rebalance: bool = True  # oversample target clips to the source count (paper: utterance rebalancing)
    # hard policy: mix every mini-batch as the soft policy does (mixup, Zhang et al., 2018; each row keeps
    # its own role). Off, as in the paper: at 25 labels it lifted RAVDESS -> EMO-DB by 3.7 UA (6 seeds) but
    # cost 9.8 with one emotion per speaker (--speaker-emotions 1, 6 seeds; issue 9 note)
    hard_mixup: bool = False
    max_repeats: int = 0  # rebalancing repeats a target clip at most this many times on average; 0 = no limit
    # --- soft policy (paper eq. 3-7, after Tanaka et al., 2018 and Arazo et al., 2020) ---
    lambda_a: float = 0.8  # weight of R_A, prior matching (paper: 0.8)
    lambda_h: float = 0.4  # weight of R_H, entropy (paper: 0.4)
    mixup_alpha: float = 1.0  # Beta(alpha, alpha) of mixup; our choice, Arazo et al. (2020) use 1 (uniform)
    prior: str = Prior.UNIFORM.value  # p of R_A; uniform as in Tanaka et al. (2018)
    # --- pseudo-label prior matching (ours; docs/representation.md): before hard or soft selection, rescale
    # the pool's probabilities so each speaker's mean prediction equals the prior (Sinkhorn balancing). With
    # no target label a source model's class bias otherwise survives every round (+5 UA at 0 labels); with
    # labels the model knows the target better than a uniform prior does (-6 UA at 100), so "auto" stops.
    # issue 9: per-speaker balancing forces every emotion onto a speaker who shows one (0-label UA 30 on
    # EMO-DB with one emotion per speaker); per-language balancing needs no speaker id (docs/results.md)
    pseudo_balance: str = Balance.AUTO_LANGUAGE.value
    # weight of label propagation over the target pool's kNN graph in the pseudo-labeling probabilities
    # (serdemo.learn.propagation), used while some target clips are labeled (frozen mode); 0 = model alone
    propagation: float = 0.0
    # --- optimisation ---
    lr: float = 1e-3  # Adam learning rate of the head (paper: 1e-3, for encoder and head alike)
    # finetune mode: Adam learning rate of the encoder. At 1e-3 one step moves whisper-base's pooled
    # features by 78 % and RAVDESS UA fell to 43.5; at 1e-5 EMO-DB UA was 88.7 at 100 labels (issue 15, H200)
    encoder_lr: float = 1e-5
    freeze_blocks: int = 0  # finetune mode: front end + this many lower encoder blocks fixed (unmeasured)
    encoder_warmup_epochs: int = 0  # finetune mode: encoder lr rises linearly over these epochs (unmeasured)
    precision: str = "fp32"  # finetune mode: "bf16" autocasts forward passes (unmeasured on accuracy)
    lr_decay: float = 0.95  # multiply the learning rate by this ... (paper: 0.95)
    lr_decay_every: int = 10  # ... every this many epochs (paper: 10)
    # Adam L2 penalty on the head (never the encoder); the paper reports none, the linear head needs it
    weight_decay: float = 1e-2
    batch_size: int = 100  # clips per mini-batch (paper: 100)
    crop_seconds: float = 2.0  # finetune mode: random training crops of this length (paper: 2 s)
    eval_batch_size: int = 64  # finetune mode: whole utterances per inference batch (memory, not method)
    # --- early stopping (paper: model selection on the validation sets of both languages) ---
    patience: int = 30  # stop after this many epochs without a better mean validation UA; 0 = never stop
    selection: str = Selection.VALIDATION.value  # what picks the epoch; see Selection
    # with pseudo-labels and an unlabeled pool, only epochs trained on the first round's labels are kept:
    # otherwise selection often keeps an epoch before round one (W = 30) and pseudo-labels change nothing
    select_after_first_round: bool = True
    # --- model ---
    # hidden ReLU projection before the classifier; 0 = linear head over the concatenated layers, measured
    # best with per-speaker statistics (docs/representation.md); 256 + "mix" + dropout 0.1 was the old head
    projection_dim: int = 0
    # frozen mode, linear head: train it on this many leading principal components of its normalised input
    # rows (fitted once per round; serdemo.learn.components), folded back to full width; 0 = full width.
    # Rounds 2.1-2.5x faster at 256, but RAVDESS -> EMO-DB loses 3.3-7.8 UA (3.2 at 100 labels even with
    # 512): off (docs/performance.md, "Training the head on principal components")
    input_components: int = 0
    layers: str | tuple[int, ...] = "all"  # encoder layers the head may weight: "all" or layer indices
    dropout: float = 0.0  # dropout on the head's input; costs ~2x a linear head's step for no measured gain
    layer_combination: str = LayerCombination.CONCAT.value  # "concat" or "mix"; see docs/representation.md
    # frozen-mode feature standardisation. "nap": per language, then the speaker subspace learned from labeled
    # clips of known speakers (the source corpus) projected out; needs no target speaker id, which app
    # recordings lack. Per-speaker statistics scored best on acted corpora (docs/representation.md) but
    # subtract the emotion when a speaker shows one (EMO-DB, one emotion per speaker: 37 UA at 0 labels, nap
    # and per-language 54). On 9 seeds, seed by seed, per-language alone stayed within 1.5 UA of nap on the
    # full corpora and EMO-DB -> RAVDESS and led it by 1.2-3.5 where EMO-DB speakers show one or two emotions
    # (docs/results.md, issue 9); but where a language has no statistics yet (the app's first model on a new
    # language's recording) nap's projection keeps EMO-DB at 68.7 UA and per-language falls to 57.0
    # (bench/padding.py, docs/results.md issue 16 section). "per-language", "per-speaker", "global" selectable
    normalization: str = Normalization.NAP.value
    # 5, not 10: 5 directions keep nap's 68.7 on a language without statistics (bench/padding.py) and, on
    # the same 9 seeds as above, close most of per-language's lead where speakers show one or two emotions
    # (RAVDESS -> EMO-DB, K = 1, 25 labels: +3.0 over 10 directions, +0.0 against per-language); full corpora
    # within 1.3 UA of 10 (docs/results.md, issue 9: "The default (nap, 5 speaker directions) against ...")
    nap_dim: int = 5  # "nap" normalisation: speaker directions projected out (serdemo.learn.normalize)
    # per-language statistics shrunk toward the global ones as if this many clips of them joined the
    # language's own; 0 = the language's own. A pool recorded in one mood otherwise becomes the reference
    # of its language: after a round on 20 sad EMO-DB clips, 84 % of held-out clips were heard as happiness
    # (bench/one_mood_pool.py; docs/results.md "A round on a pool recorded in one mood"). Not the default
    language_prior: int = 0
    # a language's statistics from its labeled clips measured class by class against the better-labeled
    # languages (serdemo.learn.normalize), so a pool labeled in one mood is not standardised to "no mood".
    # Not the default: on 20 labeled one-emotion EMO-DB pools it lost to it (51.8 vs 60.7 UA), the round
    # then learns the language as the emotion (docs/results.md, "A labeled pool in one mood")
    language_anchoring: bool = False
    # frozen mode: per labeled target clip, this many extra target-language rows, each a source clip of
    # any emotion plus the target clip's residue (its features minus the source's mean of its class;
    # serdemo.learn.transplant), so a pool labeled in one mood cannot teach "this language = that emotion".
    # 0 = none. Not the default: at 25 labels +2.0 / +3.5 UA with 16 copies (6 seeds, en-de / de-en), but
    # -10.0 where each EMO-DB speaker shows one emotion; on 20 labeled one-emotion EMO-DB pools 62.1 UA,
    # default 60.7 (docs/results.md "Transplants")
    transplant_copies: int = 0
    # a target language of fewer clips than this, at most small_pool_labels of them labeled, is too small to
    # learn the language from: the run trains without pseudo-labels and with the languages' statistics shrunk
    # near the global ones (serdemo.learn.small_pool). Unlabeled EMO-DB pools of 20 / 30 clips otherwise took
    # held-out clips of the language from 67.5 UA to 62.7 / 67.6, against 71.4 / 72.3 learning nothing from
    # them (40 clips: 72.8 against 69.7; docs/results.md, "A round on a small pool"). 0 = off
    small_pool_clips: int = 40
    # a small pool's few labels are set aside as pool clips: with shrunk statistics, 8 labeled clips of one
    # emotion taught "this language = that emotion" (23.8 UA; set aside: 68.6; learning from the pool:
    # 59.5). 5 labels of every emotion beside 20 clips: set aside +0.6 / +4.0 over learning from the pool;
    # with 10 learning from it splits even with learning nothing (-1.9 / +3.4), so the switch stops there
    small_pool_labels: int = 9
    # from this many labels in the target language, all of at most few_emotions emotions, the run learns
    # nothing from the language either (as for a small pool; serdemo.learn.small_pool): such labels teach
    # "this language = those emotions", and a pool they come from is likely in those moods. EMO-DB pools of
    # 40 clips of one emotion, 10 labeled: 71.4 UA against 53.8 training on them; of two emotions (5 + 5
    # labeled): 71.2 against 58.0 (docs/results.md, "Labels of one emotion", "... of two emotions"). 0 = off
    few_emotion_labels: int = 5
    # 2, not 1: on pools of every emotion with 10 labels of two, training on them beat learning nothing by
    # 2.0 UA (71.2 against 69.2, two draws), where pools in those two moods lost 13.2 (docs/results.md,
    # "Labels of two emotions"). Capped at the classes less one
    few_emotions: int = 2
    # an unlabeled pool (fewer than few_emotion_labels labels, small_pool_clips clips or more) over which a
    # model trained without it (the app's active version, an experiment's source-only model) spreads its
    # answers less than this fraction of their spread over the source's validation clips sounds like one
    # mood: the run learns nothing from the language (serdemo.learn.pool_moods). Pools of 40 clips, 6 seeds,
    # both directions: one emotion 0.09-0.31 (27 of 60 under 0.2), every emotion 0.24 or more, one speaker's
    # clips of every emotion 0.20-0.52 (bench/pool_moods.py). The app's rounds on EMO-DB pools of one emotion
    # left held-out clips at 69.0 UA with it, 59.0 without (docs/results.md, "An unlabeled pool in one
    # mood"). 0 = off
    one_mood_spread: float = 0.2
    # --- reproducibility ---
    seed: int = 0  # seed of this run: same seed, same inputs -> same result
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds an experiment repeats the run with (paper: 3 runs)

    def __post_init__(self) -> None:
        # JSON gives lists; store tuples so configs stay hashable and compare equal after a round trip.
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        for field in (
            "mode",
            "policy",
            "normalization",
            "prior",
            "layer_combination",
            "pseudo_balance",
            "selection",
        ):
            value = getattr(self, field)
            if isinstance(value, Enum):  # accept Policy.SOFT as well as "soft"
                object.__setattr__(self, field, value.value)
        if not isinstance(self.layers, str):
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        self._check()

    def _check(self) -> None:
        _choice("mode", self.mode, Mode)
        _choice("policy", self.policy, Policy)
        _choice("normalization", self.normalization, Normalization)
        _choice("prior", self.prior, Prior)
        _choice("pseudo_balance", self.pseudo_balance, Balance)
        _choice("layer_combination", self.layer_combination, LayerCombination)
        _choice("selection", self.selection, Selection)
        if self.max_repeats < 0:
            raise ConfigError(f"max_repeats must be >= 0 (0 = no limit), got {self.max_repeats}")
        if self.augment_copies < 0:
            raise ConfigError(f"augment_copies must be >= 0 (0 = none), got {self.augment_copies}")
        if self.input_components < 0:
            raise ConfigError(f"input_components must be >= 0 (0 = full width), got {self.input_components}")
        if self.nap_dim < 0:
            raise ConfigError(f"nap_dim must be >= 0 speaker directions, got {self.nap_dim}")
        from serdemo.speech import FrontEnd  # here, not at the top: config stays importable without torch

        try:
            FrontEnd.parse(self.frontend)
        except ValueError as error:
            raise ConfigError(f"frontend: {error}") from None
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"classes: give at least two distinct emotions, got {self.classes}")
        for name in self.classes:
            emotion_index(name)
        if tuple(c for c in EMOTIONS if c in self.classes) != self.classes:
            raise ConfigError(f"classes: keep the order of {EMOTIONS} (use serdemo.labels.parse_classes)")
        for field, low in [("epochs", 1), ("window", 1), ("batch_size", 2), ("lr_decay_every", 1)]:
            if int(getattr(self, field)) < low:
                raise ConfigError(f"{field} must be >= {low}, got {getattr(self, field)}")
        if self.language_prior < 0:
            raise ConfigError(f"language_prior must be >= 0 clips (0 = none), got {self.language_prior}")
        for field in ("small_pool_clips", "small_pool_labels", "few_emotion_labels"):
            if int(getattr(self, field)) < 0:
                raise ConfigError(f"{field} must be >= 0 (0 = off), got {getattr(self, field)}")
        if not 0 <= self.one_mood_spread < 1:
            raise ConfigError(f"one_mood_spread must be in [0, 1) (0 = off), got {self.one_mood_spread}")
        if self.few_emotions < 1:
            raise ConfigError(f"few_emotions must be >= 1, got {self.few_emotions}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0 (0 = automatic), got {self.threads}")
        if self.transplant_copies < 0 or (self.transplant_copies and self.mode != Mode.FROZEN.value):
            raise ConfigError(
                f"transplant_copies must be >= 0, and 0 outside frozen mode, got {self.transplant_copies}"
            )
        if self.eval_batch_size < 1 or self.patience < 0 or self.projection_dim < 0:
            raise ConfigError(
                "need eval_batch_size >= 1, patience >= 0 and projection_dim >= 0 (0 = linear head)"
            )
        if not 0.0 <= self.propagation <= 1.0:
            raise ConfigError(f"propagation must be in [0, 1], got {self.propagation}")
        if not 0.0 <= self.tau <= 1.0:
            raise ConfigError(f"tau must be in [0, 1], got {self.tau}")
        if self.encoder_lr <= 0 or self.freeze_blocks < 0 or self.encoder_warmup_epochs < 0:
            raise ConfigError("need encoder_lr > 0, freeze_blocks >= 0 and encoder_warmup_epochs >= 0")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.lr <= 0 or not 0 < self.lr_decay <= 1:
            raise ConfigError(f"need lr > 0 and 0 < lr_decay <= 1, got {self.lr}, {self.lr_decay}")
        if self.mixup_alpha <= 0 or self.lambda_a < 0 or self.lambda_h < 0:
            raise ConfigError("need mixup_alpha > 0, lambda_a >= 0 and lambda_h >= 0")
        if self.crop_seconds <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError("need crop_seconds > 0 and 0 <= dropout < 1")
        if isinstance(self.layers, str) and self.layers != "all":
            raise ConfigError(f"layers must be 'all' or a list of layer indices, got {self.layers!r}")
        if not isinstance(self.layers, str) and not self.layers:
            raise ConfigError("layers: give at least one layer index, or 'all'")

    def replace(self, **changes: Any) -> AdaptConfig:
        """Return a copy with some fields changed (validated like a new config)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        if "one_emotion_labels" in data:  # saved before the rule covered two emotions: it meant one
            data = {**data, "few_emotion_labels": data["one_emotion_labels"], "few_emotions": 1}
            del data["one_emotion_labels"]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)


def _choice(field: str, value: str, choices: type[Enum]) -> None:
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise ConfigError(f"{field} must be one of {allowed}, got {value!r}")
