"""Silero VAD over a whole clip in one pass: the same network and weights, without a call per 32 ms frame.

``silero-vad``'s own ``audio_forward`` calls its TorchScript model once per 512-sample frame: for a 3 s
clip that is ~100 calls per direction, and the per-call overhead, not the arithmetic, was most of the
~33 ms the speech front end added to a prediction (issue 16, ``bench/predict_latency.py``). Only the
network's LSTM cell depends on earlier frames; its STFT and convolutions see one frame plus the 64
samples before it. So here the convolutions run on all frames of both clips (forwards and reversed) as
one batch, and the cell's weights run as an ``nn.LSTM`` over the sequence. The STFT and the four
convolutions are written as matrix products over unfolded windows: each frame gives only 4 STFT columns
and 4, 2, 1, 1 convolution outputs, sizes at which ``conv1d``'s kernels spent twice the time of one
matrix product on the same numbers (``bench/predict_latency.py`` times the pass). The probabilities match
``audio_forward`` to float rounding (``tests/test_speech.py`` checks it on speech, silence and noise).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import torch
from torch import nn

FRAME = 512  # samples per decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame each frame also sees
CHUNK = 4096  # frames through the convolutions at a time (memory, not method: ~2 min of audio)


class SileroSequence(nn.Module):
    """Silero VAD v5 (16 kHz) as a sequence model, built from the weights of the wheel's TorchScript file."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        # the STFT's 258 filters (real and imaginary parts of 129 bins) of 256 taps, as a (256, 258) matrix
        self.register_buffer("basis", state["_model.stft.forward_basis_buffer"].squeeze(1).t().contiguous())
        # each convolution (kernel 3, padding 1) as a (channels_in * 3, channels_out) matrix and its bias
        self.strides = (1, 2, 2, 1)
        for i in range(len(self.strides)):
            weight = state[f"_model.encoder.{i}.reparam_conv.weight"]  # (out, in, 3)
            self.register_buffer(f"conv{i}_weight", weight.reshape(weight.shape[0], -1).t().contiguous())
            self.register_buffer(f"conv{i}_bias", state[f"_model.encoder.{i}.reparam_conv.bias"].clone())
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self.lstm, f"{name}_l0").data.copy_(state[f"_model.decoder.rnn.{name}"])
        self.out = nn.Conv1d(128, 1, 1)
        self.out.weight.data.copy_(state["_model.decoder.decoder.2.weight"])
        self.out.bias.data.copy_(state["_model.decoder.decoder.2.bias"])

    @torch.inference_mode()
    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        """Speech probability per 512-sample frame of equal-length clips: (B, S) -> (B, ceil(S / 512))."""
        batch = waves.shape[0]
        waves = nn.functional.pad(waves, (CONTEXT, -waves.shape[1] % FRAME))
        frames = waves.unfold(1, FRAME + CONTEXT, FRAME)  # (B, T, 576): each frame with its context
        steps = frames.shape[1]
        rows = frames.reshape(batch * steps, 1, FRAME + CONTEXT)
        # frames are independent up to the LSTM: a few thousand at a time hold ~17 MB of spectra and
        # activations, where a 10-minute recording's all at once raised the peak by ~190 MB
        x = torch.cat([self._frame_features(rows[i : i + CHUNK]) for i in range(0, len(rows), CHUNK)])
        hidden, _ = self.lstm(x.reshape(batch, steps, -1))
        probs = torch.sigmoid(self.out(torch.relu(hidden).reshape(batch * steps, -1, 1)))
        return probs.reshape(batch, steps)

    def _frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """STFT magnitude and the four convolutions of frames with context: (N, 1, 576) -> (N, 128)."""
        x = nn.functional.pad(x, (0, CONTEXT), mode="reflect").squeeze(1)  # (N, 640)
        window = self.basis.shape[0]
        columns = x.unfold(1, window, window // 2)  # (N, 4, 256): the STFT's windows, hop 128
        rows, steps = columns.shape[:2]
        spectrum = columns.reshape(rows * steps, window).mm(self.basis)
        half = spectrum.shape[1] // 2
        x = torch.sqrt(spectrum[:, :half] ** 2 + spectrum[:, half:] ** 2).view(rows, steps, half)
        for i, stride in enumerate(self.strides):  # (N, time, channels) throughout
            patches = nn.functional.pad(x, (0, 0, 1, 1)).unfold(1, 3, stride)  # (N, time', channels, 3)
            steps = patches.shape[1]
            weight, bias = getattr(self, f"conv{i}_weight"), getattr(self, f"conv{i}_bias")
            x = torch.relu(torch.addmm(bias, patches.reshape(rows * steps, -1), weight)).view(rows, steps, -1)
        return x.squeeze(1)


_LOCK = threading.Lock()
_MODEL: list[SileroSequence] = []


def silero_sequence() -> SileroSequence:
    """The model, built once per process from the ``silero-vad`` wheel's own file (no download)."""
    with _LOCK:
        if not _MODEL:
            # importing silero_vad runs torch.set_num_threads(1) (its model.py): without this the whole
            # process, every encoder call and round after the first prediction, ran on one thread
            threads = torch.get_num_threads()
            try:
                from silero_vad import load_silero_vad

                with warnings.catch_warnings():  # its loader uses APIs that torch and importlib deprecate
                    warnings.simplefilter("ignore", DeprecationWarning)
                    state = load_silero_vad().state_dict()
            finally:
                torch.set_num_threads(threads)
            _MODEL.append(SileroSequence(state).eval())
    return _MODEL[0]


def silero_probs(waves: list[np.ndarray]) -> list[np.ndarray]:
    """Per-frame speech probabilities of equal-length 16 kHz clips, each run from a fresh state."""
    stacked = torch.from_numpy(np.stack(waves).astype(np.float32, copy=False))
    return list(silero_sequence()(stacked).numpy())
