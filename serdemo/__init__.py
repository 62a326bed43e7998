"""serdemo: semi-supervised cross-lingual speech emotion recognition (Agarla et al., 2023)."""

__version__ = "0.1.0"
