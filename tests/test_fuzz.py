"""Seeded mutation fuzzing of the audio loader and of import (issue 11): only documented errors.

Every case must either succeed (finite audio / an import report) or raise the documented error
(:class:`AudioError` / ``ValueError``); anything else, or a case slower than a few seconds, fails.
``SERDEMO_FUZZ_CASES`` scales the case counts (default 1: about 4,000 cases in well under a minute).
"""

from __future__ import annotations

import io
import json
import os
import random
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serdemo.audio import AudioError, decode_bytes
from serdemo.store import AnnotationStore
from serdemo.store.bundle import export_bundle, import_bundle

SCALE = float(os.environ.get("SERDEMO_FUZZ_CASES", "1"))
SLOW_CASE_S = 5.0
SR = 16_000


def _seed_audio() -> list[bytes]:
    t = np.arange(int(0.3 * SR)) / SR
    wave = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    seeds = []
    for fmt, subtype in (("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")):
        if fmt not in sf.available_formats():
            continue
        buffer = io.BytesIO()
        sf.write(buffer, np.stack([wave, wave], axis=1), SR, format=fmt, subtype=subtype)
        seeds.append(buffer.getvalue())
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four of: flip bytes, overwrite with extreme integers, truncate, insert, duplicate a block."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        kind = rng.randrange(5)
        at = rng.randrange(len(out))
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == 1:  # header fields: sizes, rates, channel counts
            at = rng.randrange(min(len(out), 96))
            value = rng.choice([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 655_350, 8, 64])
            out[at : at + 4] = value.to_bytes(4, "little")
        elif kind == 2:
            del out[at:]
        elif kind == 3:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        else:
            size = rng.randint(1, 256)
            out[at:at] = out[at : at + size] * rng.randint(1, 4)
    return bytes(out)


def test_the_audio_loader_raises_only_audio_errors():
    seeds, rng = _seed_audio(), random.Random(11)
    outcomes = {"decoded": 0, "refused": 0}
    slowest = 0.0
    for case in range(int(3000 * SCALE)):
        data = mutate(rng.choice(seeds), rng)
        start = time.perf_counter()
        try:
            wave, info = decode_bytes(data, f"case{case}", max_seconds=60.0)
        except AudioError:
            outcomes["refused"] += 1
        except Exception as error:  # noqa: BLE001 - the point: nothing undocumented escapes
            pytest.fail(f"case {case}: {type(error).__name__}: {error} (seed 11; data {data[:64]!r})")
        else:
            assert np.isfinite(wave).all() and len(wave) > 0 and info.duration_s <= 60.0, case
            outcomes["decoded"] += 1
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < SLOW_CASE_S, f"slowest case took {slowest:.1f} s"
    assert outcomes["decoded"] > 0 and outcomes["refused"] > 0, outcomes  # both paths were exercised


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, bytes | Path]:
    tmp = tmp_path_factory.mktemp("fuzz")
    store = AnnotationStore(tmp / "source")
    rng = np.random.default_rng(0)
    for i in range(4):
        path = tmp / f"c{i}.wav"
        sf.write(path, rng.uniform(-0.2, 0.2, SR // 2).astype(np.float32), SR)
        clip = store.add_clip(path, language="it", source="upload", speaker=f"s{i}")
        store.add_label(clip.id, ["anger", "fear", "sadness", "neutral"][i], annotator="ada")
    store.undo_last_label("ada")
    store.export_csv(tmp / "e.csv")
    store.export_jsonl(tmp / "e.jsonl")
    export_bundle(store, tmp / "e.zip")
    return {
        "root": store.root,
        "csv": (tmp / "e.csv").read_bytes(),
        "jsonl": (tmp / "e.jsonl").read_bytes(),
        "zip": (tmp / "e.zip").read_bytes(),
    }


_ODD_VALUES = [
    None,
    [],
    {},
    [1, 2, 3],
    "",
    "NaN",
    "-1e308",
    1e308,
    -1,
    2**64,
    "../../etc/passwd",
    "/etc/hostname",
    "=cmd()",
    "x" * 5000,
    True,
]


def mutate_jsonl(text: bytes, rng: random.Random) -> bytes:
    lines = text.decode().splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        kind = rng.randrange(4)
        if kind == 0:
            try:
                record = json.loads(lines[i])
            except ValueError:  # a line an earlier mutation broke
                continue
            if isinstance(record, dict) and record:
                record[rng.choice(list(record))] = rng.choice(_ODD_VALUES)
                lines[i] = json.dumps(record)
        elif kind == 1:
            lines.insert(rng.randrange(len(lines) + 1), lines[i])  # duplicate uid
        elif kind == 2:
            lines[i] = json.dumps(rng.choice(_ODD_VALUES))
        else:
            lines[i] = mutate(lines[i].encode(), rng).decode("utf-8", "replace")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_import_of_mutated_label_files_raises_only_value_errors(tmp_path, exports, fmt):
    rng = random.Random(23)
    target = AnnotationStore(tmp_path / "target")
    slowest, outcomes = 0.0, {"imported": 0, "refused": 0}
    for case in range(int(600 * SCALE)):
        seed = exports[fmt]
        data = mutate_jsonl(seed, rng) if fmt == "jsonl" and rng.random() < 0.7 else mutate(seed, rng)
        path = tmp_path / f"case.{fmt}"
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            target.import_file(path, audio_root=exports["root"] if rng.random() < 0.5 else None)
        except ValueError:
            outcomes["refused"] += 1
        except Exception as error:  # noqa: BLE001
            pytest.fail(f"{fmt} case {case}: {type(error).__name__}: {error}\n{data[:300]!r}")
        else:
            outcomes["imported"] += 1
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < SLOW_CASE_S and outcomes["imported"] and outcomes["refused"], (slowest, outcomes)
    for clip in target.clips():  # whatever got in is usable audio inside the store
        assert clip.path.is_relative_to(target.root) and 0 < clip.duration <= 60


def test_import_of_mutated_bundles_raises_only_value_errors(tmp_path, exports):
    rng = random.Random(37)
    target = AnnotationStore(tmp_path / "target")
    outcomes = {"imported": 0, "refused": 0}
    for case in range(int(400 * SCALE)):
        path = tmp_path / "case.zip"
        path.write_bytes(mutate(exports["zip"], rng))
        try:
            import_bundle(target, path)
        except ValueError:
            outcomes["refused"] += 1
        except Exception as error:  # noqa: BLE001
            pytest.fail(f"bundle case {case}: {type(error).__name__}: {error}")
        else:
            outcomes["imported"] += 1
    assert outcomes["refused"], outcomes
    assert not list((target.root / "tmp").iterdir())  # every unpacked bundle was removed
    with zipfile.ZipFile(io.BytesIO(exports["zip"])) as archive:  # the seed itself imports
        assert "manifest.json" in archive.namelist()
