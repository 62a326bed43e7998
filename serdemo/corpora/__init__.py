"""Corpus loaders behind one call: ``load_corpus(name, root)``.

Each module in this package parses one corpus's documented file naming and registers a
:class:`~serdemo.corpora.base.CorpusSpec` in :data:`~serdemo.corpora.base.CORPORA` on import.

Example:
    >>> from serdemo.corpora import corpus_names
    >>> corpus_names()
    ['cafe', 'emodb', 'emovo', 'folder', 'ravdess', 'savee', 'shemo', 'tess', 'urdu']

"""

from __future__ import annotations

from pathlib import Path

from serdemo.corpora import cafe, emodb, emovo, folder, ravdess, savee, shemo, tess, urdu  # noqa: F401
from serdemo.corpora.base import CORPORA, CorpusError, CorpusSpec, Utterance, is_unmapped

__all__ = ["CORPORA", "CorpusError", "CorpusSpec", "Utterance", "corpus_names", "is_unmapped", "load_corpus"]


def corpus_names() -> list[str]:
    """Registry names of every loadable corpus, sorted."""
    return sorted(CORPORA)


def load_corpus(name: str, root: str | Path, keep_unmapped: bool = False) -> list[Utterance]:
    """Load corpus ``name`` from its folder ``root``.

    Args:
        name: a registry name from :func:`corpus_names`, e.g. ``"ravdess"``.
        root: the corpus as downloaded (any nesting; ``.wav`` or ``.flac``).
        keep_unmapped: keep clips whose label has no place in the five classes (e.g. RAVDESS
            "calm"), with ``emotion=None``. Unlabeled clips are always kept.

    Returns:
        Utterances sorted by id, so the same folder always gives the same list.

    Raises:
        CorpusError: unknown ``name``, or a root that is missing, not a folder or holds no
            file of the corpus; the message says what to do.

    """
    key = name.strip().lower()
    if key not in CORPORA:
        raise CorpusError(f"unknown corpus {name!r}: use one of {', '.join(corpus_names())}")
    utterances = CORPORA[key].load(Path(root))
    if not keep_unmapped:
        utterances = [u for u in utterances if not is_unmapped(u)]
    return sorted(utterances, key=lambda u: u.id)
