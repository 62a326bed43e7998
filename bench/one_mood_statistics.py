"""Can a pool of one emotion tell a new language's statistics? Where its held-out clips land under each.

For a pool of 20 labeled clips of one emotion (EMO-DB's training speakers, as a new language beside the
shipped source set), the held-out speakers' clips of every emotion are standardised with: the global
statistics (the first model's, the language unseen), the pool's own ("pooled", today's rounds), the
pool's own measured class by class against the source (``language_anchoring``), the same with the
source's std in place of the pool's scale, and, as an oracle no round can have, the held-out clips' own.
Each row prints, per held-out emotion, the RMS distance between that emotion's mean and the source's mean
of the same emotion (both standardised; smaller: the language looks like the source), and the UA of a
nearest-class-mean classifier on the source's class means.

Usage::

    python bench/one_mood_statistics.py emodb=../shared/corpora/emodb
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from one_mood_batches import NEW_LANGUAGE as NEW  # noqa: E402
from padding import held_out  # noqa: E402

from serdemo.app import Service, ServiceConfig  # noqa: E402
from serdemo.audio import load_audio  # noqa: E402
from serdemo.cache import embed_waveforms  # noqa: E402
from serdemo.cli_options import corpus_arg  # noqa: E402
from serdemo.corpora import load_corpus  # noqa: E402
from serdemo.experiment import machine_info  # noqa: E402
from serdemo.labels import EMOTIONS  # noqa: E402
from serdemo.learn.normalize import FeatureNormalizer  # noqa: E402
from serdemo.splits import speaker_split  # noqa: E402


def landing(norm: FeatureNormalizer, test: np.ndarray, truth: np.ndarray, positions: np.ndarray) -> str:
    """Per-emotion RMS distance to the source's class means, and nearest-class-mean UA."""
    z = norm.transform(test, [NEW] * len(test)).reshape(len(test), -1)
    means = np.stack([z[truth == c].mean(0) for c in range(len(EMOTIONS))])
    distance = np.sqrt(((means - positions) ** 2).mean(-1))
    nearest = np.stack([((z - p) ** 2).mean(-1) for p in positions], axis=1).argmin(1)
    ua = np.mean([(nearest[truth == c] == c).mean() for c in range(len(EMOTIONS))])
    return " / ".join(f"{d:.2f}" for d in distance) + f" | {100 * ua:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=corpus_arg, metavar="NAME=PATH", help="corpus of the clips")
    parser.add_argument("--pool", type=int, default=20, help="clips in the one-emotion pool (default 20)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    name, root = args.corpus
    train = speaker_split([u for u in load_corpus(name, Path(root)) if u.emotion in EMOTIONS], seed=0).train
    test = held_out(name, Path(root), 100)
    truth = np.array([EMOTIONS.index(u.emotion) for u in test])
    with tempfile.TemporaryDirectory() as scratch:
        service = Service(ServiceConfig(data_dir=Path(scratch) / "data"), log=lambda text: None)
        service.start(background=False)
        ws = service.ws
        source = ws.source.train
        if len(set(source.languages)) != 1:
            raise SystemExit("this bench compares against a source set of one language (the shipped one)")
        test_features = embed_waveforms(ws.encoder, [load_audio(u.path) for u in test], ws.cache)
        reference = FeatureNormalizer("per-language").fit(source.features, source.languages)
        z = reference.transform(source.features, source.languages).reshape(len(source.features), -1)
        positions = np.stack([z[source.labels == c].mean(0) for c in range(len(EMOTIONS))])
        source_std = reference.language_stats[source.languages[0]][1]
        oracle = FeatureNormalizer("per-language").fit(test_features, [NEW] * len(test))
        languages = sorted(map(str, set(source.languages)))
        print(
            f"{name}: {len(test)} held-out clips as `{NEW}`; source {languages}, {len(source.features)} rows"
        )
        print(f"machine: {machine_info()['cpu']}\n")
        print(
            "| pool's emotion | statistics | distance per held-out emotion (ang/fea/hap/neu/sad) | NCM UA |"
        )
        print("|---|---|---|---:|")
        for emotion in EMOTIONS:
            c = EMOTIONS.index(emotion)
            pool = [u for u in train if u.emotion == emotion][: args.pool]
            pool_features = embed_waveforms(ws.encoder, [load_audio(u.path) for u in pool], ws.cache)
            x = np.concatenate([source.features, pool_features]).astype(np.float32)
            languages = list(source.languages) + [NEW] * len(pool)
            labels = np.concatenate([source.labels, np.full(len(pool), c)])
            source_scale = FeatureNormalizer("per-language").fit(x, languages)
            mean = pool_features.astype(np.float64).mean(0) - source_std * positions[c].reshape(
                source_std.shape
            )
            source_scale.language_stats[NEW] = (mean.astype(np.float32), source_std)
            rows = {
                "global (the first model)": reference,
                "pooled (today's rounds)": FeatureNormalizer("per-language").fit(x, languages),
                "anchored (`language_anchoring`)": FeatureNormalizer(
                    "per-language", language_anchoring=True
                ).fit(x, languages, None, labels),
                "anchored, source's std": source_scale,
                "oracle: held-out clips' own": oracle,
            }
            for label, norm in rows.items():
                print(
                    f"| {emotion} | {label} | {landing(norm, test_features, truth, positions)} |", flush=True
                )


if __name__ == "__main__":
    main()
