"""Fine-tuning on tiny random encoders: learning-rate groups, freezing, warm-up, batched log-mel, devices."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
from torch import nn

from serdemo.config import AdaptConfig, ConfigError
from serdemo.encoders.base import UtteranceEncoder, pad_batch
from serdemo.learn import ClipSet, adapt, finetune, predict_proba
from serdemo.learn.finetune import FinetuneError, freeze_lower_blocks, make_optimizer
from serdemo.learn.model import EmotionHead, SERModel
from tests.test_encoders import _speechlike, _tiny_whisper
from tests.test_model import TinyEncoder

CLASSES = ("anger", "sadness")


def _model(encoder: UtteranceEncoder | None = None) -> SERModel:
    encoder = encoder or _tiny_whisper()
    return SERModel(encoder, EmotionHead(encoder.num_layers, 2 * encoder.hidden_size, len(CLASSES)))


def _config(**changes) -> AdaptConfig:
    return AdaptConfig(classes=CLASSES, mode="finetune", **changes)


def _batch(n: int = 4, seconds: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_batch([_speechlike(seconds * (1 - 0.1 * i), seed=i) for i in range(n)])


def _step(model: SERModel, config: AdaptConfig) -> None:
    optimizer, _ = make_optimizer(model, model.head, config)
    waves, lengths = _batch()
    loss = nn.functional.cross_entropy(model(waves, lengths), torch.tensor([0, 1, 0, 1]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


# --- learning-rate groups, freezing, warm-up ---------------------------------------------------------


def test_encoder_and_head_get_their_own_learning_rate_and_weight_decay():
    model = _model()
    config = _config(lr=1e-3, encoder_lr=3e-5, weight_decay=0.01)
    optimizer, _ = make_optimizer(model, model.head, config)
    head, encoder = optimizer.param_groups
    assert (head["lr"], head["weight_decay"]) == (1e-3, 0.01)
    assert (encoder["lr"], encoder["weight_decay"]) == (3e-5, 0.0)
    assert {id(p) for p in head["params"]} == {id(p) for p in model.head.parameters()}
    # every trainable encoder parameter (Whisper's sinusoidal positions are fixed by transformers)
    trainable = {id(p) for p in model.encoder.parameters() if p.requires_grad}
    assert {id(p) for p in encoder["params"]} == trainable and len(trainable) > 20
    only_head = EmotionHead(3, 32, 2)
    (group,) = make_optimizer(only_head, only_head, config)[0].param_groups
    assert group["lr"] == 1e-3


def test_the_default_encoder_rate_is_the_measured_one_and_far_below_the_heads():
    defaults = AdaptConfig()
    assert defaults.encoder_lr == 1e-5 and defaults.lr == 1e-3


def test_frozen_blocks_and_front_end_get_no_update_the_rest_does():
    model = _model(_tiny_whisper(encoder_layers=3))
    before = copy.deepcopy(model.encoder.state_dict())
    _step(model, _config(freeze_blocks=2, encoder_lr=1e-3))
    after = model.encoder.state_dict()
    frozen = ("conv1", "conv2", "embed_positions", "layers.0.", "layers.1.")
    for name, value in before.items():
        if name.startswith("encoder.") and "mel_filters" not in name:
            moved = not torch.equal(value, after[name])
            should_move = not name.removeprefix("encoder.").startswith(frozen)
            assert moved == should_move, name
    assert any(n.startswith("encoder.layers.2.") for n in before)


def test_freezing_more_blocks_than_exist_or_an_encoder_without_blocks_is_a_clear_error():
    with pytest.raises(FinetuneError, match="only 2 blocks"):
        freeze_lower_blocks(_tiny_whisper(), 3)
    with pytest.raises(FinetuneError, match="--freeze-blocks 0"):
        freeze_lower_blocks(TinyEncoder(), 1)
    assert freeze_lower_blocks(TinyEncoder(), 0) == []
    with pytest.raises(ConfigError):
        _config(freeze_blocks=-1)
    with pytest.raises(ConfigError, match="precision"):
        _config(precision="fp16")


def test_encoder_rate_warms_up_linearly_then_decays_with_the_head():
    model = _model()
    config = _config(lr=1.0, encoder_lr=1.0, encoder_warmup_epochs=3, lr_decay=0.5, lr_decay_every=2)
    optimizer, scheduler = make_optimizer(model, model.head, config)
    head, encoder = [], []
    for _ in range(6):
        head.append(optimizer.param_groups[0]["lr"])
        encoder.append(optimizer.param_groups[1]["lr"])
        optimizer.step()
        scheduler.step()
    assert head == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])
    assert encoder == pytest.approx([0.25, 0.5, 0.375, 0.5, 0.25, 0.25])


def test_head_only_schedule_is_the_papers_step_decay():
    head = EmotionHead(3, 32, 2)
    config = AdaptConfig(lr=1e-3, lr_decay=0.95, lr_decay_every=10)
    ours, scheduler = make_optimizer(head, head, config)
    reference = torch.optim.Adam(head.parameters(), lr=1e-3)
    step_decay = torch.optim.lr_scheduler.StepLR(reference, step_size=10, gamma=0.95)
    seen = []
    for _ in range(35):
        seen.append(ours.param_groups[0]["lr"])
        assert seen[-1] == pytest.approx(reference.param_groups[0]["lr"])
        ours.step()
        reference.step()
        scheduler.step()
        step_decay.step()
    assert seen[-1] == pytest.approx(1e-3 * 0.95**3)


def test_one_step_at_the_default_encoder_rate_barely_moves_pooled_features():
    # issue 15: at 1e-3 one step moved whisper-base's pooled features by 78 %, at 1e-5 by 2 %
    waves, lengths = _batch()
    torch.manual_seed(0)
    start = _model(_tiny_whisper(d_model=32, encoder_ffn_dim=64))
    with torch.no_grad():
        before = start.features(waves, lengths)

    def moved(encoder_lr: float) -> float:
        model = copy.deepcopy(start)
        _step(model, _config(encoder_lr=encoder_lr))
        with torch.no_grad():
            after = model.features(waves, lengths)
        return float((after - before).norm() / before.norm())

    slow, fast = moved(AdaptConfig().encoder_lr), moved(1e-3)
    assert slow > 0  # the encoder is trained, only slowly
    assert slow < 0.05 * fast, (slow, fast)


# --- adapt() in finetune mode ------------------------------------------------------------------------


def _clips(n: int, language: str, prefix: str, seed: int = 0) -> ClipSet:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    t = np.arange(16_000) / 16_000
    waves = [
        (0.5 * np.sin(2 * np.pi * (200 if y == 0 else 900) * t[: rng.integers(6_000, 16_000)])).astype(
            np.float32
        )
        for y in labels
    ]
    ids = [f"{prefix}{i}" for i in range(n)]
    return ClipSet(ids, labels, [language] * n, [f"{language}/0"] * n, waveforms=waves)


def _adapt(config: AdaptConfig, encoder: UtteranceEncoder, **kwargs):
    return adapt(
        _clips(8, "en", "s"), _clips(2, "de", "k"), _clips(4, "de", "u"), {"de": _clips(4, "de", "v")},
        config, encoder=encoder, **kwargs,
    )  # fmt: skip


def _quick(**changes) -> AdaptConfig:
    base = dict(epochs=2, window=1, crop_seconds=0.5, batch_size=4, eval_batch_size=4, patience=0)
    return _config(**(base | changes))


def test_adapt_finetune_leaves_frozen_blocks_untouched_and_trains_the_rest():
    encoder = _tiny_whisper()
    before = copy.deepcopy(encoder.state_dict())
    result = _adapt(_quick(freeze_blocks=1, encoder_lr=1e-3), encoder)
    assert result.epochs_run == 2
    after = encoder.state_dict()
    assert torch.equal(before["encoder.layers.0.fc1.weight"], after["encoder.layers.0.fc1.weight"])
    assert torch.equal(before["encoder.conv1.weight"], after["encoder.conv1.weight"])
    assert not torch.equal(before["encoder.layers.1.fc1.weight"], after["encoder.layers.1.fc1.weight"])


def test_history_records_the_encoder_rate_through_its_warm_up():
    result = _adapt(_quick(epochs=3, encoder_lr=4e-4, encoder_warmup_epochs=3, lr_decay=1.0), _tiny_whisper())
    assert [row["encoder_lr"] for row in result.history] == pytest.approx([1e-4, 2e-4, 3e-4])
    assert [row["lr"] for row in result.history] == pytest.approx([1e-3] * 3)


def test_bf16_autocast_trains_and_predicts_finite_probabilities():
    result = _adapt(_quick(precision="bf16", epochs=1), _tiny_whisper())
    probs = predict_proba(result, _clips(3, "de", "t", seed=1))
    assert probs.dtype == np.float32 and np.isfinite(probs).all() and np.allclose(probs.sum(1), 1, atol=1e-3)


def test_cancel_during_a_finetune_round_stops_before_the_epoch_ends():
    polls = []

    def stop() -> bool:  # let the first mini-batch through, then cancel
        polls.append(1)
        return len(polls) > 1

    encoder = _tiny_whisper()
    result = _adapt(_quick(epochs=5), encoder, should_stop=stop)
    assert result.stopped == "cancelled" and result.epochs_run == 0
    stopped_by_event = threading.Event()
    stopped_by_event.set()
    assert _adapt(_quick(), _tiny_whisper(), should_stop=stopped_by_event).stopped == "cancelled"


# --- batched log-mel and device placement ------------------------------------------------------------


def _per_clip_log_mel(encoder, waveforms, lengths):
    """The per-clip loop serdemo used before issue 15 (one STFT per row)."""
    from serdemo.encoders.whisper import HOP_LENGTH, N_FFT

    features = waveforms.new_zeros(len(waveforms), encoder.mel_filters.shape[0], int((lengths // 160).max()))
    for row, (wave, length) in enumerate(zip(waveforms, lengths.tolist(), strict=True)):
        stft = torch.stft(wave[:length], N_FFT, HOP_LENGTH, window=encoder.window, return_complex=True)
        log_spec = (encoder.mel_filters @ (stft[:, :-1].abs() ** 2)).clamp_min(1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        features[row, :, : log_spec.shape[1]] = (log_spec + 4.0) / 4.0
    return features


def test_batched_log_mel_equals_the_per_clip_stft():
    encoder = _tiny_whisper()
    # lengths on and off the 160-sample hop, the shortest allowed, and loud next to quiet clips
    waves = [
        _speechlike(s, seed=i) * g
        for i, (s, g) in enumerate([(1.0, 1), (0.4003, 20), (0.025, 1), (0.77, 1e-3)])
    ]
    batch, lengths = pad_batch(waves)
    features, mel_lengths = encoder.log_mel(batch, lengths)
    reference = _per_clip_log_mel(encoder, batch, lengths)
    assert mel_lengths.tolist() == (lengths // 160).tolist()
    assert features.shape == reference.shape
    assert torch.allclose(features, reference, atol=1e-4), (features - reference).abs().max()
    for row, (wave, n) in enumerate(zip(waves, mel_lengths.tolist(), strict=True)):  # batch-independent
        alone, _ = encoder.log_mel(*pad_batch([wave]))
        assert torch.allclose(features[row, :, :n], alone[0], atol=1e-4)


def test_whisper_creates_its_tensors_on_the_input_device_also_over_30_seconds():
    # Tensors created without a device land on the default device; make that "meta" so any
    # CPU-only construction (e.g. chunk lengths of a clip over 30 s) would fail to mix with the inputs.
    encoder = _tiny_whisper(max_source_positions=50)  # 100 mel frames = 1 s per chunk
    batch, lengths = pad_batch([_speechlike(2.5), _speechlike(0.6, seed=1)])
    expected, expected_lengths = encoder(batch, lengths)
    with torch.device("meta"):
        hidden, frame_lengths = encoder(batch, lengths)
    assert hidden.device.type == "cpu" and frame_lengths.device.type == "cpu"
    assert torch.equal(frame_lengths, expected_lengths) and torch.allclose(hidden, expected)


class _DeviceSpy(UtteranceEncoder):
    """Records the device of its inputs; its one parameter is on the meta device."""

    num_layers, hidden_size = 1, 2

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, device="meta"))
        self.seen: list[torch.device] = []

    def forward(self, waveforms, lengths):
        self.seen += [waveforms.device, lengths.device]
        return torch.ones(len(waveforms), 1, 3, 2), torch.full((len(waveforms),), 3)


def test_embedding_runs_on_the_encoders_device():
    spy = _DeviceSpy()
    spy.embed([np.zeros(800, np.float32)] * 3, batch_size=2)
    assert spy.seen and all(d.type == "meta" for d in spy.seen)


def test_to_device_copies_and_module_device_reads_parameters():
    x = torch.arange(4.0)
    assert torch.equal(finetune.to_device(x, torch.device("cpu")), x)
    assert finetune.module_device(_DeviceSpy()).type == "meta"
    assert finetune.module_device(nn.Identity()).type == "cpu"


def test_the_app_says_why_fine_tune_rounds_are_off(monkeypatch):
    monkeypatch.delenv(finetune.ALLOW_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    off = finetune.finetune_availability()
    assert not off.offered and "needs a GPU" in off.reason
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "Test GPU")
    on = finetune.finetune_availability()
    assert on.offered and on.device == "cuda" and "Test GPU" in on.reason
