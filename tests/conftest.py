"""Shared fixtures: where the real corpora are, and tiny synthetic audio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real corpora sit beside the project (../shared/corpora); SERDEMO_CORPORA overrides that.
BESIDE_PROJECT = Path(__file__).resolve().parents[2] / "shared" / "corpora"
CORPORA_ROOT = Path(os.environ.get("SERDEMO_CORPORA", BESIDE_PROJECT))


def corpus_dir(name: str) -> Path:
    """The real corpus folder ``name``, or skip the test where it is absent."""
    path = CORPORA_ROOT / name
    if not path.is_dir():
        pytest.skip(f"real corpus {name!r} not found at {path}")
    return path


@pytest.fixture
def ravdess_root() -> Path:
    return corpus_dir("ravdess")


@pytest.fixture
def emodb_root() -> Path:
    return corpus_dir("emodb")
