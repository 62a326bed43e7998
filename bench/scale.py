"""Throughput of `python -m serdemo embed` vs Ray workers, its linear cost, and a 10^6-clip projection.

    python bench/scale.py --corpus emodb=../shared/corpora/emodb --out docs/scale.json

1. the same real clips embedded with whisper-base by the local engine and by Ray Data with 1 and 2
   workers (one model per actor, one torch thread each, no embedding cache so every clip is computed);
2. Ray with 2 workers on 2 s synthetic clips at growing pool sizes: a least-squares line
   wall = a + b * N shows the cost is linear (fixed start-up a, per-clip b);
3. per-clip costs on one thread (decode, log-mel, encoder) and the encoder's FLOPs per clip, and the
   predict job's per-clip cost and the Parquet bytes per clip;
4. a projection to 10^6 clips for clusters of CPU nodes, from the measured per-clip CPU time and the
   measured 1 -> 2 worker efficiency, and a lower bound for one GPU from the FLOPs at an assumed rate.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from serdemo import scale
from serdemo.audio import SAMPLE_RATE, load_audio
from serdemo.experiment import CorpusRef
from serdemo.scale.pool_store import PoolStore

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="emodb=../shared/corpora/emodb", metavar="NAME=PATH")
    parser.add_argument("--clips", type=int, default=300, help="real clips per engine run (default 300)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400], help="synthetic pool sizes")
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="runs per engine in the sweep (median)")
    parser.add_argument("--encoder", default="whisper-base")
    parser.add_argument("--node-cores", type=int, default=16, help="cores per node of the projected cluster")
    parser.add_argument(
        "--gpu-tflops",
        type=float,
        default=20.0,
        help="ASSUMED effective fp32 TFLOP/s of one GPU on this encoder (not measured here; default 20)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)

    ray = scale.require_ray()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}},
    )
    factory = scale.encoder_factory(args.encoder)
    spec = scale.encoder_spec(factory)
    ref = CorpusRef.parse(args.corpus)
    clips = scale.list_pool(ref.name, ref.root, args.clips)
    results: dict = {"clips": len(clips), "corpus": str(ref), "encoder": spec.encoder}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def run(engine: scale.Engine, pool: list, name: str) -> dict:
            started = time.perf_counter()
            summary = scale.embed_pool(
                pool, tmp / name, factory, engine, None, shard_size=args.shard_size, threads=1, spec=spec
            )
            wall = time.perf_counter() - started
            assert summary["embedded"] == len(pool), summary
            return {
                "wall_s": wall,
                "clips_per_s": len(pool) / wall,
                "worker_s_per_clip": summary["worker_seconds"] / len(pool),
                "cpu_s_per_clip": summary["cpu_seconds"] / len(pool),
            }

        # 1) workers sweep on real clips, repeated in alternating order; medians per engine
        engines = {
            "local, 1 thread": scale.Engine("local"),
            "ray, 1 worker": scale.Engine("ray", workers=1),
            "ray, 2 workers": scale.Engine("ray", workers=2),
        }
        runs: dict[str, list[dict]] = {name: [] for name in engines}
        results["load_before"] = os.getloadavg()
        for repeat in range(args.repeats):
            order = list(engines) if repeat % 2 == 0 else list(reversed(engines))
            for name in order:
                runs[name].append(
                    run(engines[name], clips, f"{name}-{repeat}".replace(" ", "").replace(",", ""))
                )
        results["load_after_sweep"] = os.getloadavg()
        sweep = {
            name: {k: float(np.median([r[k] for r in rows])) for k in rows[0]} for name, rows in runs.items()
        }
        results["sweep"] = sweep
        results["sweep_runs"] = runs
        results["speedup_2_vs_1_workers"] = float(
            np.median(
                [
                    b["clips_per_s"] / a["clips_per_s"]
                    for a, b in zip(runs["ray, 1 worker"], runs["ray, 2 workers"], strict=True)
                ]
            )
        )
        results["ray_bits_equal_local"] = _same_bits(tmp / "local1thread-0", tmp / "ray2workers-0")

        # 2) linear cost: synthetic 2 s clips, growing pools, 2 workers; wall and summed CPU seconds
        synthetic = _synthetic_pool(tmp / "synthetic", max(args.sizes))
        linear = []
        for size in args.sizes:
            row = run(scale.Engine("ray", workers=2), synthetic[:size], f"linear{size}")
            linear.append({"clips": size, "wall_s": row["wall_s"], "cpu_s": row["cpu_s_per_clip"] * size})
        results["linear"] = {"runs": linear, "wall": _fit(linear, "wall_s"), "cpu": _fit(linear, "cpu_s")}
        results["load_after_linear"] = os.getloadavg()

        # 3) per-clip components on one thread, FLOPs, predict cost, storage
        results["components"] = _components(factory, [c["path"] for c in clips[:8]])
        results["predict"] = _predict_cost(tmp / "local1thread-0", tmp)  # includes loading the model once
        store_bytes = sum(p.stat().st_size for p in (tmp / "local1thread-0" / "vectors").glob("*.parquet"))
        results["parquet_bytes_per_clip"] = store_bytes / len(clips)
    ray.shutdown()

    results["projection"] = _project(results, args.node_cores, args.gpu_tflops)
    _print(results, args)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


def _fit(rows: list[dict], key: str) -> dict:
    n = np.array([r["clips"] for r in rows], float)
    y = np.array([r[key] for r in rows])
    slope, intercept = np.polyfit(n, y, 1)
    r2 = 1 - ((y - intercept - slope * n) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12)
    return {"per_clip_s": float(slope), "fixed_s": float(intercept), "r2": float(r2)}


def _synthetic_pool(folder: Path, count: int) -> list[dict]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    for i in range(count):
        pitch = rng.uniform(90, 250)
        wave = 0.2 * np.sin(2 * np.pi * pitch * t * (1 + 0.1 * np.sin(3 * t))) * np.abs(np.sin(2.5 * t))
        wave += 0.01 * rng.standard_normal(len(t))
        sf.write(folder / f"syn{i:06d}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return scale.list_pool("folder", folder)


def _same_bits(a: Path, b: Path) -> bool:
    def arrays(root: Path) -> dict[str, bytes]:
        out = {}
        for _, table, vectors, _ in PoolStore.open(root).iter_shards():
            out.update(zip(table.column("id").to_pylist(), (v.tobytes() for v in vectors), strict=True))
        return out

    return arrays(a) == arrays(b)


def _components(factory, paths: list[str]) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    encoder = factory().eval()
    started = time.perf_counter()
    waves = [load_audio(p) for p in paths]
    decode = (time.perf_counter() - started) / len(paths)
    seconds = float(np.mean([len(w) for w in waves])) / SAMPLE_RATE
    with torch.no_grad():
        batches = [(torch.from_numpy(w)[None], torch.tensor([len(w)])) for w in waves]
        started = time.perf_counter()
        mels = [encoder.log_mel(x, n) for x, n in batches]
        log_mel = (time.perf_counter() - started) / len(paths)
        started = time.perf_counter()
        for features, mel_lengths in mels:
            encoder.forward_features(features, mel_lengths)
        forward = (time.perf_counter() - started) / len(paths)
        counter = FlopCounterMode(display=False)
        with counter:
            encoder.forward_features(*mels[0])
    return {
        "clip_seconds": seconds,
        "decode_s": decode,
        "log_mel_s": log_mel,
        "encoder_s": forward,
        "encoder_gflop": counter.get_total_flops() / 1e9,
        "cpu_gflops_per_thread": counter.get_total_flops() / 1e9 / forward,
    }


def _predict_cost(store_root: Path, tmp: Path) -> dict:
    from serdemo.config import AdaptConfig
    from serdemo.learn import AdaptResult, save_model
    from serdemo.learn.model import make_head
    from serdemo.learn.normalize import FeatureNormalizer

    store = PoolStore.open(store_root)
    config = AdaptConfig()
    head = make_head(config, store.spec.layers, store.spec.dim).eval()
    fit = np.random.default_rng(0).standard_normal((20, store.spec.layers, store.spec.dim)).astype(np.float32)
    normalizer = FeatureNormalizer(config.normalization).fit(fit, ["en"] * 20, ["en/a"] * 20)
    model = save_model(AdaptResult(config=config, model=head, normalizer=normalizer), tmp / "model")
    started = time.perf_counter()
    summary = scale.predict_pool(store_root, model, tmp / "pred", scale.Engine("local"))
    wall = time.perf_counter() - started
    return {"clips": summary["clips"], "wall_s": wall, "per_clip_s": wall / summary["clips"]}


def _project(results: dict, node_cores: int, gpu_tflops: float) -> dict:
    clips = 1_000_000
    # CPU seconds per clip (summed over workers) do not count other jobs' time slices; the 2-worker
    # figure includes the two cores slowing each other down (memory bandwidth) and Ray's per-shard work
    per_worker_clip = results["sweep"]["ray, 2 workers"]["cpu_s_per_clip"]
    efficiency = results["sweep"]["ray, 1 worker"]["cpu_s_per_clip"] / per_worker_clip
    comp = results["components"]
    rows = {"this machine (2 cores, 2 workers, if otherwise idle)": clips * per_worker_clip / 2 / 3600}
    for nodes in (1, 8, 32):
        workers = nodes * node_cores
        rows[f"{nodes} x {node_cores}-core CPU nodes"] = clips * per_worker_clip / workers / 3600
    gpu_encoder_h = clips * comp["encoder_gflop"] / (gpu_tflops * 1e3) / 3600
    host_h = clips * (comp["decode_s"] + comp["log_mel_s"]) / node_cores / 3600
    rows["1 GPU (encoder only, assumed rate)"] = gpu_encoder_h
    rows[f"1 GPU host: decode + log-mel on {node_cores} cores"] = host_h
    return {
        "clips": clips,
        "hours": rows,
        "per_worker_clip_s": per_worker_clip,
        "efficiency": efficiency,
        "gpu_tflops_assumed": gpu_tflops,
        "predict_hours_one_core": clips * results["predict"]["per_clip_s"] / 3600,
        "parquet_gb": clips * results["parquet_bytes_per_clip"] / 1e9,
    }


def _print(results: dict, args: argparse.Namespace) -> None:
    print(
        f"{results['clips']} clips of {results['corpus']}, {results['encoder']}, shards of {args.shard_size}"
    )
    load = ", ".join(f"{x:.1f}" for x in results["load_before"])
    print(f"load average before: {load} (other jobs share the 2 cores); medians of {args.repeats} runs")
    print("| engine | wall s | clips/s | worker s per clip | CPU s per clip |\n|---|---|---|---|---|")
    for name, row in results["sweep"].items():
        print(
            f"| {name} | {row['wall_s']:.1f} | {row['clips_per_s']:.2f} | {row['worker_s_per_clip']:.3f} "
            f"| {row['cpu_s_per_clip']:.3f} |"
        )
    print(f"speed-up 2 vs 1 Ray workers: {results['speedup_2_vs_1_workers']:.2f}x")
    print(f"Ray vectors bit-identical to local: {results['ray_bits_equal_local']}")
    lin = results["linear"]
    runs = ", ".join(f"{r['clips']}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU s" for r in lin["runs"])
    print(f"linear cost (2 workers, 2 s synthetic clips) {runs}")
    for key in ("wall", "cpu"):
        fit = lin[key]
        print(f"  {key} = {fit['fixed_s']:.1f} s + {fit['per_clip_s']:.4f} s x N, R^2 = {fit['r2']:.4f}")
    comp = results["components"]
    print(
        f"per {comp['clip_seconds']:.1f} s clip, one thread: decode {comp['decode_s'] * 1e3:.1f} ms, log-mel "
        f"{comp['log_mel_s'] * 1e3:.1f} ms, encoder {comp['encoder_s'] * 1e3:.0f} ms "
        f"({comp['encoder_gflop']:.2f} GFLOP, {comp['cpu_gflops_per_thread']:.1f} GFLOP/s)"
    )
    print(
        f"predict: {results['predict']['per_clip_s'] * 1e3:.2f} ms per clip; Parquet "
        f"{results['parquet_bytes_per_clip'] / 1e3:.1f} kB per clip"
    )
    proj = results["projection"]
    print(
        f"projection to {proj['clips']:,} clips at {proj['per_worker_clip_s']:.3f} s per clip per worker "
        f"(CPU, 2 workers busy; {proj['efficiency']:.2f} of a lone worker's speed):"
    )
    for name, hours in proj["hours"].items():
        print(f"  {name}: {hours:.2f} h ({hours * 60:.0f} min)")
    print(
        f"  predict on one core: {proj['predict_hours_one_core']:.2f} h; "
        f"Parquet store: {proj['parquet_gb']:.0f} GB"
    )


if __name__ == "__main__":
    main()
