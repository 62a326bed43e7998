"""Batched Whisper log-mel (serdemo.encoders.logmel) against the per-clip STFT loop it replaced (issue 15).

The loop ran one STFT and ~10 small operations per clip; on a GPU each is a kernel launch the device
waits for. The batched version is one gather and one STFT per batch. This times both on one batch of
``--clips`` clips of 1-5 s and counts the operators each dispatches (torch profiler), which is what
decides GPU time; on a CPU the time ratio is close to 1 and is printed for the record.

Run::

    python bench/logmel_batch.py --clips 100 --threads 1 [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from serdemo.encoders.base import pad_batch
from serdemo.encoders.logmel import batched_log_mel
from serdemo.encoders.whisper import HOP_LENGTH, N_FFT


def per_clip_log_mel(waveforms, lengths, window, mel_filters):  # noqa: ANN001, ANN201
    """The loop serdemo ran before issue 15 (WhisperEncoder.log_mel at db9d5e0)."""
    features = waveforms.new_zeros(len(waveforms), mel_filters.shape[0], int((lengths // HOP_LENGTH).max()))
    for row, (wave, length) in enumerate(zip(waveforms, lengths.tolist(), strict=True)):
        stft = torch.stft(wave[:length], N_FFT, HOP_LENGTH, window=window, return_complex=True)
        log_spec = (mel_filters @ (stft[:, :-1].abs() ** 2)).clamp_min(1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        features[row, :, : log_spec.shape[1]] = (log_spec + 4.0) / 4.0
    return features


def main(argv: list[str] | None = None) -> None:
    """Time both versions and count their operators."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers import WhisperFeatureExtractor

    device = torch.device(args.device)
    mel_filters = torch.from_numpy(WhisperFeatureExtractor().mel_filters.T.astype(np.float32)).to(device)
    window = torch.hann_window(N_FFT, device=device)
    rng = np.random.default_rng(0)
    clips = sorted(rng.uniform(1, 5, args.clips))  # sorted by length, batched as embed() batches them
    scenarios = {
        f"train: one batch of {args.clips} 2 s crops": [[2.0] * args.clips],
        f"embed: {args.clips} clips of 1-5 s, batches of 8": [
            clips[i : i + 8] for i in range(0, len(clips), 8)
        ],
    }
    for scenario, batches in scenarios.items():
        inputs = []
        for seconds in batches:
            batch, lengths = pad_batch(
                [rng.standard_normal(int(x * 16_000)).astype(np.float32) * 0.1 for x in seconds]
            )
            inputs.append((batch.to(device), lengths.to(device)))
        versions = {
            "per-clip loop": lambda inputs=inputs: [
                per_clip_log_mel(b, n, window, mel_filters) for b, n in inputs
            ],
            "batched": lambda inputs=inputs: [
                batched_log_mel(b, n, window, mel_filters, HOP_LENGTH)[0] for b, n in inputs
            ],
        }
        for new, old in zip(versions["batched"](), versions["per-clip loop"](), strict=True):
            assert torch.allclose(new, old, atol=1e-4)
        medians, ops = {}, {}
        for name, run in versions.items():
            times = []
            for _ in range(args.repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                tick = time.perf_counter()
                run()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - tick)
            medians[name] = statistics.median(times)
            with torch.profiler.profile() as profile:
                run()
            ops[name] = sum(event.count for event in profile.key_averages())
        loop, batched = medians["per-clip loop"], medians["batched"]
        print(
            f"{scenario} on {device}: loop {medians['per-clip loop'] * 1000:.0f} ms / {ops['per-clip loop']} "
            f"operator calls, batched {medians['batched'] * 1000:.0f} ms / {ops['batched']}: time ratio "
            f"{loop / batched:.2f}, {ops['per-clip loop'] / ops['batched']:.0f}x "
            "fewer operator calls"
        )


if __name__ == "__main__":
    main()
