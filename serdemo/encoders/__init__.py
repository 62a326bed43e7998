"""The encoder registry: every encoder family registered by name, built on demand."""

from __future__ import annotations

from serdemo.encoders.base import (
    ENCODERS,
    EncoderSpec,
    EncoderUnavailableError,
    UtteranceEncoder,
    register_encoder,
)

__all__ = ["ENCODERS", "EncoderUnavailableError", "UtteranceEncoder", "build_encoder", "encoder_names"]


# Builders import their module only when called, so importing the registry loads no weights,
# no transformers and no scipy.
def _whisper_base(source: str | None = None) -> UtteranceEncoder:
    from serdemo.encoders.whisper import load_whisper_base

    return load_whisper_base(source)


def _whisper_base_int8(source: str | None = None) -> UtteranceEncoder:
    from serdemo.encoders.int8 import load_whisper_base_int8

    return load_whisper_base_int8(source)


def _hubert_base(source: str | None = None, normalize: bool | None = None) -> UtteranceEncoder:
    from serdemo.encoders.hubert import DEFAULT_SOURCE, load_hubert

    return load_hubert(source or DEFAULT_SOURCE, normalize)


def _byol_s(checkpoint: str | None = None, seed: int = 0, **config: object) -> UtteranceEncoder:
    from serdemo.encoders.byols import build_byols

    return build_byols(checkpoint, seed, **config)


def _emotion_cnn(seed: int = 0, **config: object) -> UtteranceEncoder:
    from serdemo.encoders.emotion_cnn import build_emotion_cnn

    return build_emotion_cnn(seed, **config)


register_encoder(
    EncoderSpec(
        "whisper-base",
        "Whisper base encoder, 7 layers x 512, from the pip-installed weights (default; source= for HF)",
        _whisper_base,
        offline=True,
    )
)
register_encoder(
    EncoderSpec(
        "whisper-base-int8",
        "Whisper base with int8 linear layers (dynamic quantisation): ~2x faster on CPU, frozen mode only",
        _whisper_base_int8,
        offline=True,
    )
)
register_encoder(
    EncoderSpec(
        "hubert-base",
        "HuBERT base (facebook/hubert-base-ls960), 13 layers x 768; needs the HF cache, the hub or source=",
        _hubert_base,
        offline=False,
    )
)
register_encoder(
    EncoderSpec(
        "byol-s",
        "BYOL-S (BYOL-A AudioNTT2020) 2048-d frames; checkpoint=<serab-byols .pth>, random init without",
        _byol_s,
        offline=False,
    )
)
register_encoder(
    EncoderSpec(
        "emotion-cnn",
        "EmotionCNN on 64-channel gammatone cochleagrams, 128-d frames, trained from scratch",
        _emotion_cnn,
        offline=True,
    )
)


def encoder_names() -> list[str]:
    """Names of the registered encoders, sorted.

    Example:
        >>> encoder_names()
        ['byol-s', 'emotion-cnn', 'hubert-base', 'whisper-base', 'whisper-base-int8']

    """
    return sorted(ENCODERS)


def build_encoder(name: str, **options: object) -> UtteranceEncoder:
    """Build the registered encoder ``name`` with encoder-specific ``options`` (e.g. ``source=``).

    Raises:
        ValueError: unknown name; the message lists the registered encoders and what each is.
        EncoderUnavailableError: the encoder's weights cannot be found; the message says how to get them.

    """
    if name not in ENCODERS:
        known = "\n".join(f"  {n}: {ENCODERS[n].description}" for n in encoder_names())
        raise ValueError(f"unknown encoder {name!r}; registered encoders:\n{known}")
    return ENCODERS[name].build(**options)
