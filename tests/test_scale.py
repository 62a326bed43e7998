"""Large-pool jobs: Parquet pool store, local vs Ray Data engines bit for bit, resume, prediction queue."""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("pyarrow", reason="pool stores need pyarrow: pip install -r requirements-scale.txt")

from serdemo import cli, scale  # noqa: E402
from serdemo.active import rank_for_labeling  # noqa: E402
from serdemo.audio import SAMPLE_RATE, file_sha256  # noqa: E402
from serdemo.cache import CacheKey, EmbeddingCache, embed_files  # noqa: E402
from serdemo.config import AdaptConfig  # noqa: E402
from serdemo.corpora import load_corpus  # noqa: E402
from serdemo.encoders.whisper import WhisperEncoder, base_config  # noqa: E402
from serdemo.learn import AdaptResult, ClipSet, predict_proba, save_model  # noqa: E402
from serdemo.learn.model import make_head  # noqa: E402
from serdemo.learn.normalize import FeatureNormalizer  # noqa: E402
from serdemo.scale.pool_store import PoolStore, PoolStoreError  # noqa: E402
from serdemo.speech import with_frontend  # noqa: E402

TINY = base_config(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32)


def tiny_encoder() -> WhisperEncoder:
    return WhisperEncoder.random(TINY, seed=0)


class CrashOnceEncoder(WhisperEncoder):
    """The tiny encoder, except that the first process to embed kills itself (a worker dying mid-batch)."""

    marker: str = ""

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # only the first caller wins
        except FileExistsError:
            return super().forward(waveforms, lengths)
        os.close(fd)
        os._exit(1)


def crash_once_encoder(marker: str) -> WhisperEncoder:
    encoder = CrashOnceEncoder(tiny_encoder().encoder, "random-init-seed0")
    encoder.marker = marker
    return encoder


class FailingEncoder(WhisperEncoder):
    """Proves a lookup was a cache hit: embedding anything is an error."""

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        raise AssertionError("the cache should have answered")


def write_pool(folder: Path, count: int = 14) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        speaker = f"s{i % 2}"
        (folder / "unlabeled" / speaker).mkdir(parents=True, exist_ok=True)
        samples = int(SAMPLE_RATE * rng.uniform(0.3, 1.2))
        wave = 0.1 * rng.standard_normal(samples) * np.sin(np.linspace(0, 3 + i, samples)) ** 2
        sf.write(folder / "unlabeled" / speaker / f"clip{i:02d}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return folder


def clips_of(folder: Path, language: str = "xx") -> list[dict]:
    rows = scale.list_pool("folder", folder)
    for row in rows:  # the folder loader cannot know speakers from unlabeled/<speaker>/ nor the language
        row["speaker"] = Path(row["path"]).parent.name
        row["language"] = language
    return rows


def store_arrays(root: Path) -> dict[str, np.ndarray]:
    store = PoolStore.open(root)
    out = {}
    for _, table, vectors, valid in store.iter_shards():
        for clip_id, vector, ok in zip(table.column("id").to_pylist(), vectors, valid, strict=True):
            out[clip_id] = vector if ok else None
    return out


def same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(
        (a[k] is None and b[k] is None)
        or (a[k] is not None and b[k] is not None and a[k].tobytes() == b[k].tobytes())
        for k in a
    )


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip(
        "ray", reason="the Ray engine needs ray[data]: pip install -r requirements-scale.txt"
    )
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    # the workers cannot import this test module: ship its encoder factories by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


def embed(clips, root, engine, cache_dir=None, factory=tiny_encoder, **kwargs):
    return scale.embed_pool(
        clips, root, factory, engine, cache_dir, batch_size=3, shard_size=4, threads=1, **kwargs
    )


# ----------------------------------------------------------------------------------------------
# the store and the local engine


def test_local_engine_fills_store_and_cache_with_the_same_vectors(tmp_path: Path) -> None:
    clips = clips_of(write_pool(tmp_path / "audio"))
    summary = embed(clips, tmp_path / "store", scale.Engine("local"), tmp_path / "cache")
    assert summary["embedded"] == len(clips) == 14 and summary["shards"] == 4 and summary["failed"] == 0

    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["rows"] == 14 and sum(s["rows"] for s in manifest["shards"]) == 14
    assert manifest["spec"]["layers"] == 3 and manifest["spec"]["dim"] == 32

    vectors = store_arrays(tmp_path / "store")
    # the app's speech front end is part of the identity: the app finds these vectors
    encoder = with_frontend(tiny_encoder(), AdaptConfig().frontend)
    cache = EmbeddingCache(tmp_path / "cache")
    for clip in clips:
        cached = cache.get(CacheKey(encoder.identity, file_sha256(clip["path"]), "whole"))
        assert cached.tobytes() == vectors[clip["id"]].tobytes()  # the app's cache holds the very same bits
    # and they are what the app's own call gives, up to float rounding of a different batch composition
    direct = embed_files(encoder, [c["path"] for c in clips], None, batch_size=8)
    np.testing.assert_allclose(np.stack([vectors[c["id"]] for c in clips]), direct, rtol=1e-4, atol=1e-5)


def test_a_store_refuses_vectors_of_another_encoder(tmp_path: Path) -> None:
    clips = clips_of(write_pool(tmp_path / "audio", 3))
    embed(clips, tmp_path / "store", scale.Engine("local"))
    other = partial(WhisperEncoder.random, TINY, 1)
    with pytest.raises(PoolStoreError, match="embed into another --out folder"):
        embed(clips, tmp_path / "store", scale.Engine("local"), factory=other)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(PoolStoreError, match="not a pool store"):
        embed(clips, tmp_path / "junk", scale.Engine("local"))


def test_an_unusable_clip_is_recorded_and_the_rest_embedded(tmp_path: Path) -> None:
    folder = write_pool(tmp_path / "audio", 5)
    sf.write(folder / "unlabeled" / "s0" / "clip99.wav", np.zeros(100, np.float32), SAMPLE_RATE)  # 6 ms
    clips = clips_of(folder)
    summary = embed(clips, tmp_path / "store", scale.Engine("local"))
    assert summary["embedded"] == 6 and summary["failed"] == 1
    vectors = store_arrays(tmp_path / "store")
    assert vectors["folder/unlabeled/s0/clip99"] is None
    assert sum(v is not None for v in vectors.values()) == 5
    store = PoolStore.open(tmp_path / "store")
    errors = [
        e for n in store.shard_names() for e in store.read_table(n, ["error"]).column(0).to_pylist() if e
    ]
    assert len(errors) == 1 and "clip99.wav" in errors[0] and "shorter than" in errors[0]
    # a rerun does not retry it forever: the failure is stored like a result
    assert embed(clips, tmp_path / "store", scale.Engine("local"))["embedded"] == 0


def test_an_interrupted_run_resumes_where_it_stopped_and_matches_a_clean_run(tmp_path: Path) -> None:
    clips = clips_of(write_pool(tmp_path / "audio"))
    embed(clips, tmp_path / "clean", scale.Engine("local"))

    # the job dies after two shards (here: the encoder raises on the third shard's first batch)
    calls = {"n": 0}

    def dies_on_third_shard() -> WhisperEncoder:
        encoder = tiny_encoder()
        original = encoder.forward  # what the speech front end calls once per batch

        def forward_or_die(waveforms, lengths):
            calls["n"] += 1
            if calls["n"] == 5:  # shards of 4 clips in batches of 3: calls 1-2, 3-4, then 5
                raise KeyboardInterrupt
            return original(waveforms, lengths)

        encoder.forward = forward_or_die
        return encoder

    with pytest.raises(KeyboardInterrupt):
        embed(clips, tmp_path / "resumed", scale.Engine("local"), factory=dies_on_third_shard)
    store = PoolStore(tmp_path / "resumed", PoolStore.open(tmp_path / "clean").spec)
    first = {name: store.shard_path(name).stat().st_mtime_ns for name in store.shard_names()}
    assert len(first) == 2 and not list((tmp_path / "resumed" / "vectors").glob(".tmp-*"))

    summary = embed(clips, tmp_path / "resumed", scale.Engine("local"))
    assert summary["skipped"] == 8 and summary["embedded"] == 6
    assert all(store.shard_path(n).stat().st_mtime_ns == t for n, t in first.items())  # untouched
    assert same_bits(store_arrays(tmp_path / "resumed"), store_arrays(tmp_path / "clean"))
    # the rerun's shards differ from the clean run's (other pending clips) but every vector is identical


def test_a_changed_file_is_embedded_again(tmp_path: Path) -> None:
    folder = write_pool(tmp_path / "audio", 4)
    embed(clips_of(folder), tmp_path / "store", scale.Engine("local"))
    path = folder / "unlabeled" / "s1" / "clip01.wav"
    sf.write(path, 0.2 * np.ones(8000, np.float32), SAMPLE_RATE)
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    summary = embed(clips_of(folder), tmp_path / "store", scale.Engine("local"))
    assert summary["embedded"] == 1 and summary["skipped"] == 3


# ----------------------------------------------------------------------------------------------
# Ray Data


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_bits(tmp_path: Path, ray_cluster) -> None:
    clips = clips_of(write_pool(tmp_path / "audio"))
    embed(clips, tmp_path / "local", scale.Engine("local"), tmp_path / "cache-local")
    summary = embed(clips, tmp_path / "ray", scale.Engine("ray", workers=2), tmp_path / "cache-ray")
    assert summary["embedded"] == 14 and summary["shards"] == 4
    assert same_bits(store_arrays(tmp_path / "ray"), store_arrays(tmp_path / "local"))
    local_files = sorted(p.name for p in (tmp_path / "cache-local").rglob("*.npy"))
    ray_files = sorted(p.name for p in (tmp_path / "cache-ray").rglob("*.npy"))
    assert local_files == ray_files and len(ray_files) == 14
    assert embed(clips, tmp_path / "ray", scale.Engine("ray", workers=2))["embedded"] == 0  # resumable


@pytest.mark.slow
def test_a_ray_worker_that_dies_loses_only_its_shard(tmp_path: Path, ray_cluster) -> None:
    clips = clips_of(write_pool(tmp_path / "audio"))
    embed(clips, tmp_path / "local", scale.Engine("local"))
    marker = tmp_path / "crashed"
    summary = embed(
        clips,
        tmp_path / "ray",
        scale.Engine("ray", workers=2),
        factory=partial(crash_once_encoder, str(marker)),
    )
    assert marker.exists()  # a worker process did die mid-shard
    assert summary["embedded"] == 14 and summary["failed"] == 0
    assert same_bits(store_arrays(tmp_path / "ray"), store_arrays(tmp_path / "local"))


def test_ray_engine_without_ray_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder = write_pool(tmp_path / "audio", 2)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    code = cli.main(["embed", "--pool", f"folder={folder}", "--out", str(tmp_path / "s"), "--engine", "ray"])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "pip install -r requirements-scale.txt" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # refused before doing anything


# ----------------------------------------------------------------------------------------------
# predict: pseudo-labels and the label queue


def saved_model(folder: Path, store: PoolStore, normalization: str = "per-speaker") -> Path:
    """A frozen head over the tiny encoder's features, its normaliser fitted on other speakers."""
    config = AdaptConfig(normalization=normalization)
    torch.manual_seed(0)
    head = make_head(config, store.spec.layers, store.spec.dim).eval()
    rng = np.random.default_rng(1)
    fit = rng.standard_normal((40, store.spec.layers, store.spec.dim)).astype(np.float32)
    normalizer = FeatureNormalizer(normalization).fit(fit, ["en"] * 40, ["en/a"] * 20 + ["en/b"] * 20)
    result = AdaptResult(config=config, model=head, normalizer=normalizer)
    return save_model(result, folder)


@pytest.fixture
def embedded_pool(tmp_path: Path) -> tuple[list[dict], Path]:
    clips = clips_of(write_pool(tmp_path / "audio", 24))
    embed(clips, tmp_path / "store", scale.Engine("local"), tmp_path / "cache")
    return clips, tmp_path / "store"


def test_predictions_do_not_depend_on_the_shard_a_clip_is_in(tmp_path: Path, embedded_pool) -> None:
    clips, root = embedded_pool
    store = PoolStore.open(root)
    model = saved_model(tmp_path / "model", store)
    summary = scale.predict_pool(root, model, tmp_path / "pred", scale.Engine("local"))
    assert summary["clips"] == 24 and summary["shards"] == 6
    probs = predictions(tmp_path / "pred")

    # the app's own inference over the whole pool at once (each 12-clip speaker gets its own statistics)
    from serdemo.learn import load_model

    result = load_model(model)
    vectors = store_arrays(root)
    ids = sorted(vectors)
    whole = ClipSet(
        ids=ids,
        labels=[-1] * len(ids),
        languages=["xx"] * len(ids),
        speakers=[Path(c["path"]).parent.name for c in sorted(clips, key=lambda c: c["id"])],
        features=np.stack([vectors[i] for i in ids]),
    )
    expected = predict_proba(result, whole)
    np.testing.assert_allclose(np.stack([probs[i] for i in ids]), expected, rtol=1e-4, atol=1e-5)
    # without pool statistics a 4-clip shard would fall back to the language's: visibly different
    naive = np.stack(
        [
            predict_proba(result, whole.subset(np.flatnonzero(np.isin(ids, chunk))))
            for chunk in np.array_split(np.array(ids), 6)
        ]
    )
    assert np.abs(naive.reshape(-1, 5) - expected).max() > 1e-3


def test_with_the_default_normaliser_an_unseen_language_is_scored_alike_in_any_shard(
    tmp_path: Path, embedded_pool
) -> None:
    # nap: the pool's language ("xx") was never fitted, so every clip gets the global statistics, in a
    # shard of 4 clips, the whole pool at once, or alone (the shard's own statistics used to differ)
    clips, root = embedded_pool
    store = PoolStore.open(root)
    model = saved_model(tmp_path / "model", store, normalization="nap")
    scale.predict_pool(root, model, tmp_path / "pred", scale.Engine("local"))
    probs = predictions(tmp_path / "pred")
    from serdemo.learn import load_model

    result = load_model(model)
    vectors = store_arrays(root)
    ids = sorted(vectors)
    whole = ClipSet(ids, [-1] * len(ids), ["xx"] * len(ids), ["xx/unknown"] * len(ids),
                    features=np.stack([vectors[i] for i in ids]))  # fmt: skip
    together = predict_proba(result, whole)
    alone = np.concatenate([predict_proba(result, whole.subset(np.array([i]))) for i in range(len(ids))])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.stack([probs[i] for i in ids]), together, rtol=1e-4, atol=1e-5)


def predictions(folder: Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(folder / "predictions")
    columns = [f"p_{e}" for e in AdaptConfig().classes]
    probs = np.stack([table.column(c).to_numpy() for c in columns], axis=1)
    return dict(zip(table.column("id").to_pylist(), probs, strict=True))


@pytest.mark.slow
def test_ray_predict_gives_the_local_bits(tmp_path: Path, embedded_pool, ray_cluster) -> None:
    _, root = embedded_pool
    model = saved_model(tmp_path / "model", PoolStore.open(root))
    scale.predict_pool(root, model, tmp_path / "local", scale.Engine("local"))
    scale.predict_pool(root, model, tmp_path / "ray", scale.Engine("ray", workers=2))
    local, ray = predictions(tmp_path / "local"), predictions(tmp_path / "ray")
    assert local.keys() == ray.keys() and len(local) == 24
    assert all(local[k].tobytes() == ray[k].tobytes() for k in local)


def test_the_queue_feeds_the_app_the_least_sure_clips_from_the_cache(tmp_path: Path, embedded_pool) -> None:
    clips, root = embedded_pool
    model = saved_model(tmp_path / "model", PoolStore.open(root))
    code = cli.main(
        [
            "predict",
            "--pool",
            str(root),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "pred"),
            "--queue",
            "5",
        ]
        + ["--quiet"]
    )
    assert code == 0
    probs = predictions(tmp_path / "pred")
    ids = sorted(probs)
    ranking = rank_for_labeling(np.stack([probs[i] for i in ids]).astype(np.float64))
    expected = [ids[i] for i in ranking.order[:5]]
    queued = scale.most_uncertain(tmp_path / "pred", 5)
    assert [row["id"] for row in queued] == expected

    # the app reads the queue as a target corpus: these five clips, unlabeled, with speaker and language
    utterances = load_corpus("folder", tmp_path / "pred" / "queue.csv")
    by_path = {c["path"]: c for c in clips}
    assert sorted(str(u.path) for u in utterances) == sorted(by_path[r["path"]]["path"] for r in queued)
    assert all(u.emotion is None and u.original_label == "" and u.language == "xx" for u in utterances)
    # and embedding them, as the app does when it seeds its pool, is all cache hits
    silent = FailingEncoder(tiny_encoder().encoder, "random-init-seed0")
    silent = with_frontend(silent, AdaptConfig().frontend)
    vectors = embed_files(silent, [u.path for u in utterances], EmbeddingCache(tmp_path / "cache"))
    assert vectors.shape == (5, 3, 32)


def test_predict_refuses_a_model_of_another_encoder(tmp_path: Path, embedded_pool) -> None:
    _, root = embedded_pool
    config = AdaptConfig()
    head = make_head(config, 7, 1024)
    save_model(AdaptResult(config=config, model=head, normalizer=None), tmp_path / "model")
    with pytest.raises(scale.ScaleError, match="use a model of that encoder"):
        scale.predict_pool(root, tmp_path / "model", tmp_path / "pred", scale.Engine("local"))


# ----------------------------------------------------------------------------------------------
# real clips


@pytest.mark.corpora
@pytest.mark.slow
def test_whisper_base_on_real_clips_same_bits_on_ray(tmp_path: Path, emodb_root: Path, ray_cluster) -> None:
    from serdemo.encoders import build_encoder

    clips = scale.list_pool("emodb", emodb_root, limit=6)
    factory = scale.encoder_factory("whisper-base")
    engines = {"local": scale.Engine("local"), "ray": scale.Engine("ray", workers=2)}
    for name, engine in engines.items():
        scale.embed_pool(
            clips, tmp_path / name, factory, engine, tmp_path / f"cache-{name}", shard_size=3, threads=1
        )
    local, ray = store_arrays(tmp_path / "local"), store_arrays(tmp_path / "ray")
    assert len(local) == 6 and same_bits(local, ray)
    # the vectors the app would compute for these clips, to float rounding of the batch composition
    app_encoder = with_frontend(build_encoder("whisper-base"), AdaptConfig().frontend)
    direct = embed_files(app_encoder, [c["path"] for c in clips], None)
    np.testing.assert_allclose(np.stack([local[c["id"]] for c in clips]), direct, rtol=1e-3, atol=1e-4)


@pytest.mark.corpora
def test_embed_command_resumes_on_real_clips(tmp_path: Path, emodb_root: Path, capsys) -> None:
    argv = ["embed", "--pool", f"emodb={emodb_root}", "--limit", "3", "--out", str(tmp_path / "pool")]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert cli.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert (
        first["embedded"] == 3 and first["rows"] == 3 and len(list((tmp_path / "cache").rglob("*.npy"))) == 3
    )
    assert cli.main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["skipped"] == 3 and again["embedded"] == 0 and again["rows"] == 3


class CountingEncoder(WhisperEncoder):
    """The tiny encoder, counting the clips it really embeds (cache hits never reach forward)."""

    embedded: int = 0

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        self.embedded += len(waveforms)
        return super().forward(waveforms, lengths)


def labeled_source(folder: Path) -> Path:
    """A small labeled English ``folder`` corpus of tones, enough for the app's first model."""
    folder.mkdir(parents=True)
    rows = ["path,emotion,speaker,language"]
    for e, emotion in enumerate(AdaptConfig().classes):
        for i in range(4):
            t = np.arange(int(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
            wave = 0.3 * np.sin(2 * np.pi * (220 + 110 * e) * (1 + 0.01 * i) * t)
            sf.write(folder / f"{emotion}{i}.wav", wave.astype(np.float32), SAMPLE_RATE)
            rows.append(f"{emotion}{i}.wav,{emotion},s{i % 2},en")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder / "labels.csv"


@pytest.mark.slow
def test_the_app_labels_the_queue_without_embedding_it_again(tmp_path: Path, embedded_pool) -> None:
    from serdemo.app import LabelState, Service, ServiceConfig

    clips, root = embedded_pool
    model = saved_model(tmp_path / "model", PoolStore.open(root))
    scale.predict_pool(root, model, tmp_path / "pred", scale.Engine("local"))
    queue = scale.write_queue_csv(scale.most_uncertain(tmp_path / "pred", 4), tmp_path / "queue.csv")

    encoder = CountingEncoder(tiny_encoder().encoder, "random-init-seed0")
    config = ServiceConfig(
        data_dir=tmp_path / "data",
        source_corpora=(("folder", labeled_source(tmp_path / "src")),),
        target_corpora=(("folder", queue),),
        cache_dir=tmp_path / "cache",  # the cache `embed` filled
        examples_dir=tmp_path / "no-examples",
        default_model_dir=tmp_path / "no-default-model",
        shipped_source_set=tmp_path / "no-source-set.npz",
        first_epochs=5,
        augment_copies=0,  # counted below: the source clips themselves, not their training copies
    )
    service = Service(config, encoder=encoder, log=lambda text: None).start(background=False)
    view = service.label_view(LabelState(language="xx"))
    queued = {file_sha256(r["path"]) for r in scale.most_uncertain(tmp_path / "pred", 4)}
    assert view.unlabeled == 4 and {c.sha256 for c in service.store.clips("xx")} == queued
    assert view.item is not None and service.store.clip(view.item.clip_id).sha256 in queued
    assert encoder.embedded == 20  # the 20 source clips; the 4 queued ones were cache hits


def test_a_model_of_another_speech_front_end_is_refused_with_what_to_do(tmp_path: Path) -> None:
    clips = clips_of(write_pool(tmp_path / "audio", 4))
    embed(clips, tmp_path / "store", scale.Engine("local"), frontend="none")
    assert scale.store_frontend(PoolStore.open(tmp_path / "store").spec) == "none"
    model = saved_model(tmp_path / "model", PoolStore.open(tmp_path / "store"))  # the default front end
    with pytest.raises(scale.ScaleError, match="--frontend silero-trim0.25-fill-level-weighted"):
        scale.predict_pool(tmp_path / "store", model, tmp_path / "pred", scale.Engine("local"))


def test_vectors_read_back_from_a_sliced_table() -> None:
    from serdemo.scale.pool_store import StoreSpec, table_vectors, vectors_table

    spec = StoreSpec("e", "whole", 2, 3)
    rows = [{"id": str(i), "path": str(i), "size": 1, "mtime_ns": 1} for i in range(4)]
    vectors = [np.full((2, 3), i, np.float32) for i in range(4)]
    vectors[2] = None
    table = vectors_table(spec, rows, vectors)
    got, valid = table_vectors(table.slice(1, 3), spec)
    assert valid.tolist() == [True, False, True]
    assert (
        got[0].tolist() == vectors[1].tolist() and got[2].tolist() == vectors[3].tolist() and not got[1].any()
    )


def test_ctrl_c_during_embed_says_the_work_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder = write_pool(tmp_path / "audio", 2)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scale, "embed_pool", interrupted)
    code = cli.main(["embed", "--pool", f"folder={folder}", "--out", str(tmp_path / "s"), "--no-cache"])
    assert code == cli.EXIT_INTERRUPTED
    assert "run the same command again to resume" in capsys.readouterr().err
