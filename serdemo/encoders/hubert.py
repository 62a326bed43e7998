"""HuBERT (transformers ``HubertModel``) as an utterance encoder returning all transformer layers."""

from __future__ import annotations

import os

import torch
from torch import nn

from serdemo.encoders.base import EncoderUnavailableError, UtteranceEncoder, weights_hash

DEFAULT_SOURCE = "facebook/hubert-base-ls960"


class HubertEncoder(UtteranceEncoder):
    """A transformers ``HubertModel``: hidden states of the CNN projection plus every transformer layer.

    Preprocessing follows ``Wav2Vec2FeatureExtractor``: models whose conv front end uses layer norm
    (``feat_extract_norm == "layer"``) get zero-mean unit-variance input and an attention mask;
    group-norm models such as hubert-base were trained on raw, unmasked input. Group norm
    normalises over time, so zero padding would change every frame of a short clip: those models
    encode each clip of a batch on its own.

    Example:
        >>> import numpy as np
        >>> from transformers import HubertConfig
        >>> enc = HubertEncoder.random(HubertConfig(hidden_size=16, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8), conv_stride=(5, 4),
        ...     conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2))
        >>> enc.embed([np.zeros(16000, np.float32)]).shape
        (1, 3, 32)

    """

    name = "hubert-base"

    def __init__(self, model: nn.Module, identity: str, normalize: bool | None = None) -> None:
        super().__init__()
        self.model = model  # a transformers HubertModel
        config = model.config
        self.num_layers = config.num_hidden_layers + 1
        self.hidden_size = config.hidden_size
        self.masked = config.feat_extract_norm == "layer"
        self.normalize = self.masked if normalize is None else normalize
        self._identity = identity

    @property
    def identity(self) -> str:
        """Weights hash (or random seed) plus the preprocessing: the embedding cache key."""
        return f"{self.name}/{self._identity}/norm{int(self.normalize)}-mask{int(self.masked)}"

    @classmethod
    def random(cls, config=None, seed: int = 0) -> HubertEncoder:
        """Build a randomly initialised HuBERT (tiny configs for tests)."""
        from transformers import HubertConfig, HubertModel

        torch.manual_seed(seed)
        return cls(HubertModel(config or HubertConfig()).eval(), f"random-init-seed{seed}")

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch into (B, L, T, D) hidden states, 20 ms frames for the base models."""
        valid = torch.arange(waveforms.shape[1])[None, :] < lengths[:, None]
        if self.normalize:
            waveforms = _zero_mean_unit_var(waveforms, valid, lengths)
        frame_lengths = self.model._get_feat_extract_output_lengths(lengths).long()
        if self.masked:
            out = self.model(waveforms, attention_mask=valid.long(), output_hidden_states=True)
            return torch.stack(out.hidden_states, dim=1), frame_lengths
        hidden = None
        for row, length in enumerate(lengths.tolist()):
            states = self.model(waveforms[row : row + 1, :length], output_hidden_states=True).hidden_states
            states = torch.stack(states, dim=1)[0]
            if hidden is None:
                hidden = states.new_zeros(
                    len(waveforms), self.num_layers, int(frame_lengths.max()), states.shape[-1]
                )
            hidden[row, :, : states.shape[1]] = states
        return hidden, frame_lengths


def load_hubert(
    source: str | os.PathLike[str] = DEFAULT_SOURCE, normalize: bool | None = None
) -> HubertEncoder:
    """Load a HuBERT checkpoint from the Hugging Face cache, the hub, or a local folder.

    Args:
        source: hub id (default ``facebook/hubert-base-ls960``) or a folder with config.json and weights.
        normalize: zero-mean unit-variance input; ``None`` follows the model (see :class:`HubertEncoder`).

    Raises:
        EncoderUnavailableError: the weights are neither cached nor downloadable; says how to provide them.

    """
    from transformers import HubertModel

    try:
        # The cache first, so an offline machine with the weights does not wait for network retries.
        model = HubertModel.from_pretrained(str(source), local_files_only=True)
    except (OSError, ValueError):
        try:
            model = HubertModel.from_pretrained(str(source))
        except (OSError, ValueError) as error:
            raise EncoderUnavailableError(
                f"cannot load HuBERT from {str(source)!r} ({error.__class__.__name__}). Go online once so "
                "transformers can download it, or set HF_HOME to a cache that holds it, or pass "
                "source=<local folder with config.json and model.safetensors>"
            ) from error
    return HubertEncoder(model.eval(), f"{os.path.basename(str(source))}-{weights_hash(model)}", normalize)


def _zero_mean_unit_var(waveforms: torch.Tensor, valid: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Normalise each row over its valid samples only, keeping the padding at zero (as the extractor does)."""
    count = lengths[:, None].to(waveforms.dtype)
    mean = (waveforms * valid).sum(1, keepdim=True) / count
    var = (((waveforms - mean) * valid) ** 2).sum(1, keepdim=True) / count
    return (waveforms - mean) / torch.sqrt(var + 1e-7) * valid
