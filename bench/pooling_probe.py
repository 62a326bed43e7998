"""Pooling probe (serdemo issue 5): does anything beat mean+std pooling of whisper-base frames?

The app caches one mean+std vector per layer and clip. This probe keeps every frame of every layer
(RAVDESS + EMO-DB, ~1.6 GB as float16 in ``--frames-dir``) and compares, RAVDESS -> EMO-DB, 3 seeds:

- fixed statistics, scored with a converged logistic regression on per-speaker standardised vectors:
  mean+std (what the app uses) against mean+std+10th+90th percentiles;
- trained pooling (Okabe et al., 2018, attentive statistics pooling: a per-layer attention over frames
  gives a weighted mean and std) against the same network with uniform weights (plain mean+std),
  both trained on English train + every German train clip with Adam (lr 1e-3, weight decay 1e-2,
  batch 100), German oversampled to the English count, the epoch chosen on both validation sets.

Run (~17 min on 2 cores: frames ~2 min, logistic regressions ~3 min, trained variants ~4 and ~9 min)::

    python bench/pooling_probe.py
    python bench/pooling_probe.py --skip-trained      # only the fixed statistics
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from serdemo.audio import load_audio
from serdemo.corpora import load_corpus
from serdemo.labels import EMOTIONS
from serdemo.learn.normalize import FeatureNormalizer
from serdemo.metrics import unweighted_accuracy
from serdemo.splits import speaker_split

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"


class Frames:
    """Every clip's (T, layers, 512) float16 frames of one corpus, stored as one array plus offsets."""

    def __init__(self, name: str, folder: Path, encoder) -> None:
        self.utterances = [u for u in load_corpus(name, CORPORA / name) if u.emotion in EMOTIONS]
        stem = f"{name}-{encoder.identity.replace('/', '_')}"
        data, offsets = folder / f"{stem}.frames.npy", folder / f"{stem}.offsets.npy"
        if not data.exists():
            data.parent.mkdir(parents=True, exist_ok=True)
            np.save(offsets, self._extract(encoder, data))
        self.data, self.offsets = np.load(data, mmap_mode="r"), np.load(offsets)
        self.index = {u.id: i for i, u in enumerate(self.utterances)}

    def _extract(self, encoder, data: Path) -> np.ndarray:
        chunks, offsets, tick = [], [0], time.perf_counter()
        with torch.inference_mode():
            for utterance in self.utterances:
                wave = torch.from_numpy(load_audio(utterance.path))[None]
                hidden, frames = encoder(wave, torch.tensor([wave.shape[1]]))
                chunks.append(hidden[0, :, : int(frames[0])].permute(1, 0, 2).numpy().astype(np.float16))
                offsets.append(offsets[-1] + len(chunks[-1]))
        np.save(data, np.concatenate(chunks))
        print(f"extracted {len(chunks)} clips in {time.perf_counter() - tick:.0f} s", flush=True)
        return np.array(offsets)

    def clip(self, row: int) -> np.ndarray:
        return np.asarray(self.data[self.offsets[row] : self.offsets[row + 1]], dtype=np.float32)

    def rows(self, utterances: list) -> list[int]:
        return [self.index[u.id] for u in utterances]


def ua(labels, predicted) -> float:
    return 100 * unweighted_accuracy(np.asarray(labels), np.asarray(predicted))


def labels_of(utterances: list) -> np.ndarray:
    return np.array([EMOTIONS.index(u.emotion) for u in utterances])


# ----------------------------------------------------------------------------------------------
# fixed statistics + logistic regression


def mean_std(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x.mean(0), x.std(0)], axis=1)


def mean_std_percentiles(x: np.ndarray) -> np.ndarray:
    low, high = np.percentile(x, [10, 90], axis=0)
    return np.concatenate([x.mean(0), x.std(0), low, high], axis=1)


def fixed_statistics(source: Frames, target: Frames, pool, seeds: list[int]) -> list[list[float]]:
    """Per seed: German UA all labeled, German UA with 20 labels per class, zero-shot German UA."""
    vectors = {id(c): np.stack([pool(c.clip(i)) for i in range(len(c.utterances))]) for c in (source, target)}
    scores = []
    for seed in seeds:
        en, de = speaker_split(source.utterances, seed=seed), speaker_split(target.utterances, seed=seed)
        parts = {"en": (source, en.train), "de": (target, de.train), "test": (target, de.test)}
        everything = [u for _, us in parts.values() for u in us]
        x = {k: vectors[id(c)][c.rows(us)] for k, (c, us) in parts.items()}
        norm = FeatureNormalizer("per-speaker").fit(
            np.concatenate(list(x.values())),
            [u.language for u in everything],
            [u.speaker for u in everything],
        )
        x = {
            k: norm.transform(x[k], [u.language for u in us], [u.speaker for u in us]).reshape(len(us), -1)
            for k, (_, us) in parts.items()
        }
        y = {k: labels_of(us) for k, (_, us) in parts.items()}
        rng = np.random.default_rng(seed)
        few = np.concatenate([rng.permutation(np.flatnonzero(y["de"] == k))[:20] for k in range(5)])

        def fit(features, labels, test=x["test"]):
            return LogisticRegression(C=0.01, max_iter=3000).fit(features, labels).predict(test)

        scores.append(
            [
                ua(y["test"], fit(np.concatenate([x["en"], x["de"]]), np.concatenate([y["en"], y["de"]]))),
                ua(
                    y["test"],
                    fit(np.concatenate([x["en"], x["de"][few]]), np.concatenate([y["en"], y["de"][few]])),
                ),
                ua(y["test"], fit(x["en"], y["en"])),
            ]
        )
    return scores


# ----------------------------------------------------------------------------------------------
# trained pooling


class PoolingHead(nn.Module):
    """Per-layer (attentive) statistics pooling, LayerNorm, one linear layer to the 5 emotions."""

    def __init__(self, attentive: bool, layers: int = 7, dim: int = 512, hidden: int = 64) -> None:
        super().__init__()
        self.attentive = attentive
        self.score = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1)) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(layers * 2 * dim)
        self.out = nn.Linear(layers * 2 * dim, len(EMOTIONS))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = []
        for layer in range(x.shape[2]):
            h = x[:, :, layer]
            if self.attentive:
                weights = torch.softmax(self.score[layer](h).squeeze(-1).masked_fill(~mask, -1e4), dim=1)
            else:
                weights = mask.float() / mask.sum(1, keepdim=True)
            mean = (weights.unsqueeze(-1) * h).sum(1)
            var = (weights.unsqueeze(-1) * h * h).sum(1) - mean * mean
            pooled += [mean, var.clamp_min(1e-6).sqrt()]
        return self.out(self.norm(torch.cat(pooled, dim=1)))


def speaker_normalised_clips(corpus: Frames) -> list[torch.Tensor]:
    """Frames standardised with their speaker's frame statistics (the frame-level per-speaker step)."""
    speakers = np.array([u.speaker for u in corpus.utterances])
    clips: list[torch.Tensor] = [torch.empty(0)] * len(speakers)
    for speaker in np.unique(speakers):
        rows = np.flatnonzero(speakers == speaker)
        frames = [corpus.clip(i) for i in rows]
        stacked = np.concatenate(frames)
        mean, std = stacked.mean(0), stacked.std(0) + 1e-5
        for row, x in zip(rows, frames, strict=True):
            clips[row] = torch.from_numpy(((x - mean) / std).astype(np.float16))
    return clips


def _batch(clips: list[torch.Tensor], rows) -> tuple[torch.Tensor, torch.Tensor]:
    steps = max(clips[i].shape[0] for i in rows)
    x = torch.zeros(len(rows), steps, *clips[rows[0]].shape[1:])
    mask = torch.zeros(len(rows), steps, dtype=torch.bool)
    for j, i in enumerate(rows):
        x[j, : len(clips[i])], mask[j, : len(clips[i])] = clips[i].float(), True
    return x, mask


def _predict(model: nn.Module, clips: list[torch.Tensor], rows: list[int]) -> np.ndarray:
    model.eval()
    out = {}
    with torch.no_grad():
        ordered = sorted(rows, key=lambda i: len(clips[i]))  # similar lengths, little padding
        for k in range(0, len(ordered), 64):
            chunk = ordered[k : k + 64]
            for i, logits in zip(chunk, model(*_batch(clips, chunk)), strict=True):
                out[i] = int(logits.argmax())
    return np.array([out[i] for i in rows])


def trained_pooling(source: Frames, target: Frames, attentive: bool, seeds: list[int], epochs: int):
    """Per seed: German and English test UA with every German train clip labeled, and s per epoch."""
    clips = speaker_normalised_clips(source) + speaker_normalised_clips(target)
    shift = len(source.utterances)
    scores = []
    for seed in seeds:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        en, de = speaker_split(source.utterances, seed=seed), speaker_split(target.utterances, seed=seed)
        en_rows, de_rows = source.rows(en.train), [shift + r for r in target.rows(de.train)]
        repeats = -(-len(en_rows) // len(de_rows))
        rows = en_rows + (de_rows * repeats)[: len(en_rows)]  # German oversampled to the English count
        labels = np.concatenate([labels_of(en.train), np.tile(labels_of(de.train), repeats)[: len(en_rows)]])
        validation = [
            (source.rows(en.validation), labels_of(en.validation)),
            ([shift + r for r in target.rows(de.validation)], labels_of(de.validation)),
        ]
        model = PoolingHead(attentive)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)
        best, best_state, tick = -1.0, None, time.perf_counter()
        for _ in range(epochs):
            model.train()
            order = rng.permutation(len(rows))
            for k in range(0, len(order), 100):
                chunk = order[k : k + 100]
                loss = F.cross_entropy(
                    model(*_batch(clips, [rows[i] for i in chunk])), torch.from_numpy(labels[chunk])
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            score = np.mean([ua(y, _predict(model, clips, r)) for r, y in validation])
            if score > best:
                best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
        seconds = (time.perf_counter() - tick) / epochs
        model.load_state_dict(best_state)
        de_test, en_test = [shift + r for r in target.rows(de.test)], source.rows(en.test)
        scores.append(
            [
                ua(labels_of(de.test), _predict(model, clips, de_test)),
                ua(labels_of(en.test), _predict(model, clips, en_test)),
                seconds,
            ]
        )
    return scores


def report(name: str, columns: list[str], scores: list[list[float]]) -> None:
    values = np.array(scores)
    cells = [f"{m:.1f} ± {s:.1f}" for m, s in zip(values.mean(0), values.std(0), strict=True)]
    print(
        f"| {name} | " + " | ".join(f"{c}: {v}" for c, v in zip(columns, cells, strict=True)) + " |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=25, help="epochs of the trained pooling heads")
    parser.add_argument("--frames-dir", type=Path, default=Path("/tmp/serdemo-frames"))
    parser.add_argument("--skip-trained", action="store_true")
    args = parser.parse_args(argv)

    from serdemo.encoders.whisper import load_whisper_base

    encoder = load_whisper_base().eval()
    source, target = Frames("ravdess", args.frames_dir, encoder), Frames("emodb", args.frames_dir, encoder)
    print(f"frames: {source.data.nbytes / 2**20 + target.data.nbytes / 2**20:.0f} MiB float16", flush=True)
    columns = ["de all labeled", "de 20/class", "de zero-shot"]
    report("mean+std, LR", columns, fixed_statistics(source, target, mean_std, args.seeds))
    report(
        "mean+std+p10+p90, LR", columns, fixed_statistics(source, target, mean_std_percentiles, args.seeds)
    )
    if args.skip_trained:
        return
    columns = ["de all labeled", "en", "s/epoch"]
    for attentive in (False, True):
        name = "attentive statistics pooling" if attentive else "mean+std pooling, same network"
        report(name, columns, trained_pooling(source, target, attentive, args.seeds, args.epochs))


if __name__ == "__main__":
    main()
