"""Whisper-base encoder time per clip: PyTorch fp32, PyTorch int8 (dynamic), CTranslate2 int8 / fp32.

All four runtimes encode the same log-mel features of the same clips with the same weights (the
pip-installed CTranslate2 model.bin that serdemo's whisper-base loads), one clip per call, in one
process, calls interleaved round-robin so load from other jobs falls on all alike. Reported: the
median per runtime after warm-up and each runtime's ratio to CTranslate2 int8 measured in this run.
The log-mel (shared by all) is timed on its own. CTranslate2 is a bench-only dependency
(requirements-dev.txt); without it the CTranslate2 rows are skipped.

Usage::

    python bench/encoder_speed.py                       # 3 s of the bundled example clip, 30 runs
    python bench/encoder_speed.py --seconds 5 --runs 50 --threads 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.encoders import whisper
from serdemo.encoders.int8 import quantize_linear_int8
from serdemo.experiment import machine_info

EXAMPLE = Path(__file__).resolve().parents[1] / "assets" / "examples" / "en_happy_news.flac"


def ct2_model_dir(folder: Path) -> Path:
    """A CTranslate2 model folder from the pip-installed halves (the same bytes serdemo loads)."""
    with open(folder / "model.bin", "wb") as out:
        for part in whisper.model_bin_parts():
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out)
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        if (whisper.package_data_dir() / name).is_file():
            shutil.copy(whisper.package_data_dir() / name, folder / name)
    return folder


def main() -> None:
    """Build every runtime, then time them round-robin on the same log-mel."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=EXAMPLE)
    parser.add_argument("--seconds", type=float, default=3.0, help="cut or zero-pad the clip to this length")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per runtime")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    samples = round(args.seconds * SAMPLE_RATE)
    wave = load_audio(args.clip)[:samples]
    wave = torch.from_numpy(np.pad(wave, (0, samples - len(wave))))[None]
    lengths = torch.tensor([samples])
    fp32 = whisper.load_whisper_base()
    int8 = quantize_linear_int8(whisper.load_whisper_base())
    with torch.no_grad():
        mel, mel_lengths = fp32.log_mel(wave, lengths)

    runtimes: dict[str, Callable[[], object]] = {}

    def torch_runtime(encoder: whisper.WhisperEncoder) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return encoder.forward_features(mel, mel_lengths)

        return run

    runtimes["pytorch fp32"] = torch_runtime(fp32)
    runtimes["pytorch int8 (dynamic, linear layers)"] = torch_runtime(int8)
    scratch = tempfile.TemporaryDirectory()
    try:
        import ctranslate2

        folder = ct2_model_dir(Path(scratch.name))
        mel_ct2 = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy()))
        for compute_type in ("int8", "float32"):
            model = ctranslate2.models.Whisper(
                str(folder), device="cpu", compute_type=compute_type, intra_threads=args.threads
            )
            runtimes[f"ctranslate2 {compute_type}"] = lambda model=model: model.encode(mel_ct2, to_cpu=True)
    except ImportError:
        print("ctranslate2 is not installed (pip install -r requirements-dev.txt): CTranslate2 rows skipped")

    def log_mel() -> object:
        with torch.no_grad():
            return fp32.log_mel(wave, lengths)

    runtimes["log-mel (shared by all)"] = log_mel
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    for call in range(args.warmup + args.runs):
        for name, run in runtimes.items():
            tick = time.perf_counter()
            run()
            if call >= args.warmup:
                times[name].append(time.perf_counter() - tick)
    scratch.cleanup()

    medians = {name: 1000 * statistics.median(t) for name, t in times.items()}
    reference = medians.get("ctranslate2 int8")
    print(
        f"\nwhisper-base encoder, one {args.seconds:g} s clip ({mel.shape[-1]} mel frames) per call, "
        f"median of {args.runs}:"
    )
    print("| runtime | ms per clip | ratio to CTranslate2 int8 |")
    print("|---|---:|---:|")
    for name, ms in medians.items():
        ratio = f"{ms / reference:.2f}x" if reference else "-"
        print(f"| {name} | {ms:.1f} | {ratio} |")
    machine = machine_info()
    print(
        f"machine: {machine['nproc']} cores, {machine['cpu']}, torch {machine['torch']}, "
        f"{args.threads} thread(s) per runtime, load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
