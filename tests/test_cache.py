"""The embedding cache: hits, misses, crash safety and concurrent writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import serdemo.cache as cache_module
from serdemo.audio import SAMPLE_RATE, AudioError, file_sha256, load_audio
from serdemo.cache import (
    WHOLE,
    CacheKey,
    EmbeddingCache,
    default_cache_dir,
    embed_files,
    embed_waveforms,
)
from serdemo.encoders.base import UtteranceEncoder


class CountingEncoder(UtteranceEncoder):
    """Two layers of 3 cheap frame features; remembers how many utterances it embedded."""

    num_layers = 2
    hidden_size = 3

    def __init__(self, version: str = "v1") -> None:
        super().__init__()
        self.name = "counting"
        self.version = version
        self.utterances = 0

    @property
    def identity(self) -> str:
        return f"{self.name}@{self.version}"

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.utterances += len(waveforms)
        frames = waveforms[:, : waveforms.shape[1] // 160 * 160].reshape(len(waveforms), -1, 160)
        features = torch.stack([frames.mean(-1), frames.abs().mean(-1), frames.std(-1)], dim=-1)
        hidden = torch.stack([features, 2 * features], dim=1)  # (B, L=2, T, D=3)
        return hidden, lengths // 160


def write_clips(folder: Path, count: int, seconds: float = 0.5) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"clip{i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(round(seconds * SAMPLE_RATE)), SAMPLE_RATE)
        paths.append(path)
    return paths


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    return write_clips(tmp_path, 5)


def test_second_call_embeds_nothing(tmp_path: Path, clips: list[Path], monkeypatch) -> None:
    encoder, cache = CountingEncoder(), EmbeddingCache(tmp_path / "cache")
    first = embed_files(encoder, clips, cache, batch_size=2)
    assert encoder.utterances == 5 and first.shape == (5, 2, 6) and first.dtype == np.float32

    loads: list[Path] = []
    monkeypatch.setattr(cache_module, "load_audio", lambda p: loads.append(p) or load_audio(p))
    again = embed_files(encoder, clips[::-1], cache)

    assert encoder.utterances == 5 and loads == []  # hits are neither decoded nor embedded
    np.testing.assert_array_equal(again, first[::-1])  # results follow the input order
    expected = CountingEncoder().embed([load_audio(p) for p in clips])
    np.testing.assert_allclose(first, expected, rtol=1e-6)


def test_other_encoder_identity_misses(tmp_path: Path, clips: list[Path]) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    embed_files(CountingEncoder("v1"), clips, cache)

    retrained = CountingEncoder("v2")
    embed_files(retrained, clips, cache)
    assert retrained.utterances == 5


def test_same_bytes_are_embedded_once(tmp_path: Path, clips: list[Path]) -> None:
    copy = tmp_path / "copy.wav"
    copy.write_bytes(clips[0].read_bytes())
    encoder = CountingEncoder()
    vectors = embed_files(encoder, [clips[0], copy, clips[1], clips[0]], EmbeddingCache(tmp_path / "c"))
    assert encoder.utterances == 2
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_array_equal(vectors[0], vectors[3])


def test_progress_counts_hits_then_batches(tmp_path: Path, clips: list[Path]) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    embed_files(CountingEncoder(), clips[:2], cache)
    calls: list[tuple[int, int]] = []
    embed_files(CountingEncoder(), clips, cache, batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_truncated_entry_is_recomputed(tmp_path: Path, clips: list[Path]) -> None:
    encoder, cache = CountingEncoder(), EmbeddingCache(tmp_path / "cache")
    good = embed_files(encoder, clips, cache)
    key = CacheKey(encoder.identity, file_sha256(clips[2]), WHOLE)
    entry = cache.path(key)
    entry.write_bytes(entry.read_bytes()[:-7])  # as if the disk filled up mid-write
    assert cache.get(key) is None and key not in cache

    again = embed_files(encoder, clips, cache)

    assert encoder.utterances == 6  # only the damaged one
    np.testing.assert_array_equal(again, good)
    np.testing.assert_array_equal(cache.get(key), good[2])


def test_entry_of_the_wrong_shape_is_a_miss(tmp_path: Path, clips: list[Path]) -> None:
    encoder, cache = CountingEncoder(), EmbeddingCache(tmp_path / "cache")
    cache.put(CacheKey(encoder.identity, file_sha256(clips[0]), "whole"), np.zeros((1, 4), np.float32))
    vectors = embed_files(encoder, clips[:1], cache)
    assert encoder.utterances == 1 and vectors.shape == (1, 2, 6) and vectors.any()


def test_put_get_round_trip_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = CacheKey("whisper-base/ct2 int8", "ab" * 32, "whole")
    cache.put(key, np.arange(12, dtype=np.float64).reshape(3, 4))
    stored = cache.get(key)
    assert stored.dtype == np.float32 and stored.shape == (3, 4) and stored[2, 3] == 11
    assert key in cache and CacheKey("other", "ab" * 32, "whole") not in cache
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [cache.path(key)] and files[0].parent.parent.name.startswith("whisper-base_ct2_int8-")


def test_missing_file_names_it(tmp_path: Path, clips: list[Path]) -> None:
    with pytest.raises(AudioError, match=r"gone\.wav: file not found"):
        embed_files(CountingEncoder(), [clips[0], tmp_path / "gone.wav"], EmbeddingCache(tmp_path / "c"))


def test_embed_waveforms_caches_recordings(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (8000, 12000)]
    encoder, cache = CountingEncoder(), EmbeddingCache(tmp_path)
    first = embed_waveforms(encoder, waves, cache)
    second = embed_waveforms(encoder, waves, cache)
    assert encoder.utterances == 2
    np.testing.assert_array_equal(first, second)

    changed = [waves[0], waves[1] * 0.5]
    embed_waveforms(encoder, changed, cache)
    assert encoder.utterances == 3  # a different recording is a different key


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SERDEMO_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SERDEMO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "serdemo" / "embeddings"


# --- several processes at once -----------------------------------------------------------------------------

_ROUNDS = 40
_SIZE = (12, 1024)  # about 48 kB, like a 12-layer encoder's mean+std vector, so writes are not instant


def _value(name: str) -> np.ndarray:
    seed = int.from_bytes(name.encode(), "little")
    return np.random.default_rng(seed).standard_normal(_SIZE).astype(np.float32)


def _writer(root: str, worker: int, errors: multiprocessing.Queue) -> None:
    cache = EmbeddingCache(root)
    try:
        for round_ in range(_ROUNDS):
            for name in ["shared-a", "shared-b", f"own-{worker}-{round_ % 5}"]:
                cache.put(CacheKey("enc", name, "whole"), _value(name))
    except Exception as err:  # report to the parent, which asserts
        errors.put(repr(err))


def _reader(root: str, errors: multiprocessing.Queue) -> None:
    cache = EmbeddingCache(root)
    expected = _value("shared-a")
    try:
        for _ in range(_ROUNDS * 20):
            # the entry exists before the writers start, so an atomic overwrite never hides it
            got = cache.get(CacheKey("enc", "shared-a", "whole"))
            if got is None or not np.array_equal(got, expected):
                errors.put("reader saw a partial or missing entry while it was being rewritten")
                return
    except Exception as err:
        errors.put(repr(err))


def test_concurrent_writers_and_readers_leave_every_entry_correct(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    EmbeddingCache(tmp_path).put(CacheKey("enc", "shared-a", "whole"), _value("shared-a"))
    workers = [context.Process(target=_writer, args=(str(tmp_path), w, errors)) for w in range(3)]
    workers.append(context.Process(target=_reader, args=(str(tmp_path), errors)))
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    assert errors.empty(), errors.get()

    cache = EmbeddingCache(tmp_path)
    names = ["shared-a", "shared-b"] + [f"own-{w}-{k}" for w in range(3) for k in range(5)]
    for name in names:
        np.testing.assert_array_equal(cache.get(CacheKey("enc", name, "whole")), _value(name))
    assert not list(tmp_path.rglob(".tmp-*")), "temporary files were left behind"
