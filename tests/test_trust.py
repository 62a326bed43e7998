"""Issue 11 at the service and store level: each hole found by the probe, reproduced, then closed.

The same holes through the HTTP API of a running ``app.py`` are in ``test_trust_http.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_service import SR, make_service, tiny_encoder, tone

from serdemo.app import Service, ServiceError
from serdemo.audio import AudioError, decode_bytes, load_audio
from serdemo.learn import load_model
from serdemo.safezip import ArchiveError, ZipLimits, unpack
from serdemo.store import AnnotationStore
from serdemo.store.bundle import export_bundle, import_bundle

ROOT = Path(__file__).resolve().parents[1]


def wav(path: Path, samples: np.ndarray, rate: int = SR, subtype: str | None = None) -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


def nan_wav(path: Path) -> Path:
    samples = tone(300.0, 1.0, 0)
    samples[100:200] = np.nan
    return wav(path, samples, subtype="FLOAT")


# -- 1. audio is checked in full before it is committed ----------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (nan_wav, "NaN"),
        (lambda p: wav(p, tone(300.0, 0.01, 0)), "shorter than"),  # 10 ms
        (lambda p: wav(p, tone(300.0, 61.0, 0)), "over the 60 s limit"),
    ],
    ids=["nan", "10ms", "61s"],
)
def test_a_bad_clip_never_reaches_the_store_by_any_door(tmp_path, make, message):
    store = AnnotationStore(tmp_path / "store")
    bad = make(tmp_path / "bad.wav")
    with pytest.raises(AudioError, match=message):
        store.add_clip(bad, language="it", source="upload")
    with pytest.raises(AudioError, match=message):
        store.add_clip(bad.read_bytes(), language="it", source="upload")
    # the import door: a bundle made by hand around the bad clip, with a forged duration
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    bundle = _hand_made_bundle(tmp_path / "b.zip", {f"audio/{sha[:2]}/{sha}.wav": bad.read_bytes()}, sha)
    report = import_bundle(store, bundle)
    assert (report.new_clips, report.new_labels) == (0, 0)
    assert any(message in note for note in report.notes), report.notes
    assert store.clips() == [] and list((store.root / "audio").rglob("*.wav")) == []


def test_durations_come_from_the_audio_not_the_import(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    clip = wav(tmp_path / "ok.wav", tone(300.0, 1.5, 0))
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    bundle = _hand_made_bundle(tmp_path / "b.zip", {f"audio/{sha[:2]}/{sha}.wav": clip.read_bytes()}, sha)
    assert import_bundle(store, bundle).new_clips == 1
    assert store.clips()[0].duration == pytest.approx(1.5, abs=1e-3)  # the record said 2.0


def _hand_made_bundle(path: Path, files: dict[str, bytes], sha: str, **record) -> Path:
    """A bundle whose label file names one clip (``sha``) at the first file's path, duration forged to 2 s."""
    name = next(iter(files))
    line = {
        "sha256": sha,
        "path": name,
        "language": "it",
        "source": "upload",
        "duration": 2.0,
        "added_at": "2026-11-30T10:00:00+00:00",
        "label_uid": "u1",
        "emotion": "anger",
        "kind": "human",
        "annotator": "ada",
        "created_at": "2026-11-30T10:00:00+00:00",
        **record,
    }
    labels = (json.dumps(line) + "\n").encode()
    manifest = {"format": "serdemo-bundle", "version": 1, "labels": "labels.jsonl", "files": {}}
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in {**files, "labels.jsonl": labels}.items():
            archive.writestr(member, data)
            manifest["files"][member] = hashlib.sha256(data).hexdigest()
        archive.writestr("manifest.json", json.dumps(manifest))
    return path


def test_start_up_sets_a_bad_legacy_clip_aside_instead_of_failing(tmp_path):
    service = make_service(tmp_path, target=False)
    good = service.add_to_pool(wav(tmp_path / "good.wav", tone(300.0, 1.0, 1)), "it")
    assert "Added clip" in good
    # an older serdemo let a NaN clip in: put one into the store behind its back
    bad = nan_wav(tmp_path / "legacy.wav")
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    stored = service.store.root / "audio" / sha[:2] / f"{sha}.wav"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(bad.read_bytes())
    with sqlite3.connect(service.store.db_path) as conn:
        conn.execute(
            "INSERT INTO clips (sha256, path, language, source, duration, added_at) VALUES (?, ?, 'it', "
            "'upload', 2.0, '2026-11-30T10:00:00+00:00')",
            (sha, str(stored)),
        )
    logs: list[str] = []
    again = Service(service.config, encoder=tiny_encoder(), log=logs.append).start(background=False)
    assert again.status().startswith("Model") and "pool it: 1 clips" in again.status()
    assert [c.original_name for c in again.store.clips("it")] == ["good.wav"]
    ((aside, reason),) = again.store.unusable_clips()
    assert aside.sha256 == sha and "NaN" in reason
    assert any("set aside" in line for line in logs)
    assert again.predict(tmp_path / "good.wav").top  # the app serves


# -- 2. pages get short-lived copies, never the data folder ----------------------------------------


def test_the_data_folder_is_blocked_and_pages_get_copies(tmp_path):
    service = make_service(tmp_path)
    data = service.config.data_dir.resolve()
    assert not any(Path(p).is_relative_to(data) or data.is_relative_to(p) for p in service.allowed_paths())
    assert str(data) in service.blocked_paths()
    assert not any(service.public_dir.is_relative_to(p) for p in service.blocked_paths())
    key = f"t:{service.store.clips('de')[0].id}"
    played = Path(service.clip_path(key))
    assert played.is_relative_to(service.public_dir) and not played.is_relative_to(data)
    exported = service.export("csv")
    assert exported.is_relative_to(service.public_dir)
    assert "/" not in next(csv.DictReader(exported.open()))["path"][:1]  # relative paths only
    os.utime(played.parent, (0, 0))  # an hour-old copy is gone at the next hand-out
    service.export("jsonl")
    assert not played.exists()


# -- 3. identity: labels ordered by arrival, nobody retracts another's label -------------------------


def test_an_imported_label_dated_in_the_future_does_not_outrank_later_labels(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    clip = store.add_clip(wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)), language="it", source="upload")
    export = tmp_path / "future.jsonl"
    record = {
        "sha256": clip.sha256,
        "path": "x.wav",
        "language": "it",
        "source": "upload",
        "added_at": clip.added_at,
        "label_uid": "future1",
        "emotion": "anger",
        "kind": "human",
        "annotator": "mallory",
        "created_at": "2999-01-01T00:00:00+00:00",
    }
    export.write_text(json.dumps(record) + "\n")
    report = store.import_file(export)
    assert report.new_labels == 1 and "future" in report.notes[-1]
    assert store.label_history(clip.id)[0].created_at < "2100"
    store.add_label(clip.id, "sadness", annotator="ada")
    assert store.current_label(clip.id).emotion == "sadness"  # the later label wins


def test_an_import_cannot_retract_another_annotators_label(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    clip = store.add_clip(wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)), language="it", source="upload")
    label = store.add_label(clip.id, "anger", annotator="ada")
    rows = [
        {"label_uid": "r1", "retracts": label.uid, "annotator": "mallory"},
        {"label_uid": "r2", "retracts": label.uid, "annotator": "ada"},  # ada's own undo travels
    ]
    export = tmp_path / "retract.jsonl"
    base = {"sha256": clip.sha256, "path": "x.wav", "language": "it", "source": "upload"}
    base |= {"added_at": clip.added_at, "kind": "human", "created_at": clip.added_at}
    export.write_text("".join(json.dumps(base | row) + "\n" for row in rows))
    report = store.import_file(export)
    assert report.new_labels == 1
    assert any("'mallory' cannot retract a label of 'ada'" in n for n in report.notes)
    assert store.current_label(clip.id) is None  # ada's own retraction applied


def test_login_sets_the_annotator_and_guards_the_actions(tmp_path):
    from serdemo.app.auth import Accounts

    service = make_service(tmp_path, target=True)
    service.sessions = Service(service.config, accounts=Accounts.parse("ada:pw1,bob:pw2")).sessions
    with pytest.raises(ServiceError, match="log in to label"):
        service.require_login("tab-1", "label")
    with pytest.raises(ServiceError, match="wrong user name or password"):
        service.login("tab-1", "ada", "pw2")
    assert "ada" in service.login("tab-1", "ada", "pw1")
    assert service.require_login("tab-1", "label") == "ada"
    with pytest.raises(ServiceError):
        service.require_login("tab-2", "export")  # another session is not logged in
    service.logout("tab-1")
    with pytest.raises(ServiceError):
        service.require_login("tab-1", "label")


# -- 4. import reads only inside the bundle ---------------------------------------------------------


@pytest.mark.parametrize("where", ["absolute", "dotdot", "missing"])
def test_import_never_reads_outside_the_bundle_and_is_no_existence_oracle(tmp_path, where):
    store = AnnotationStore(tmp_path / "store")
    secret = wav(tmp_path / "secret.wav", tone(300.0, 1.0, 0))  # a real, readable file outside
    sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    path = {"absolute": str(secret), "dotdot": "../../secret.wav", "missing": "audio/zz/nothing.wav"}[where]
    record = {"sha256": sha, "path": path, "language": "it", "source": "upload"}
    record |= {"added_at": "2026-11-30T10:00:00+00:00"}
    bundle_dir = tmp_path / "bundle" / "inner"
    bundle_dir.mkdir(parents=True)
    (bundle_dir / "labels.jsonl").write_text(json.dumps(record) + "\n")
    report = store.import_file(bundle_dir / "labels.jsonl", audio_root=bundle_dir)
    assert report.new_clips == 0
    name = Path(path).name
    assert report.notes == (f"clip {sha[:12]} skipped: its audio {name!r} is not in the bundle",)


def test_import_refuses_an_oversized_label_file_before_reading_it(tmp_path, monkeypatch):
    import serdemo.store.exchange as store_module

    monkeypatch.setattr(store_module, "MAX_IMPORT_BYTES", 1000)
    big = tmp_path / "big.jsonl"
    big.write_text("{}\n" * 1000)
    with pytest.raises(ValueError, match="over the 0 MB limit"):
        AnnotationStore(tmp_path / "store").import_file(big)


def test_a_bundle_whose_file_does_not_match_the_manifest_is_refused(tmp_path):
    source = AnnotationStore(tmp_path / "a")
    clip = source.add_clip(wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)), language="it", source="upload")
    source.add_label(clip.id, "anger", annotator="ada")
    bundle = export_bundle(source, tmp_path / "b.zip")
    tampered = tmp_path / "t.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data.replace(b"anger", b"fear!") if item.filename == "labels.jsonl" else data)
    target = AnnotationStore(tmp_path / "c")
    with pytest.raises(ArchiveError, match="does not match its SHA-256"):
        import_bundle(target, tampered)
    assert target.clips() == [] and list((target.root / "tmp").iterdir()) == []


# -- 5. resource limits -------------------------------------------------------------------------


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    # 8 channels at 655 kHz: the probe's 337 KB FLAC took 3.5 GB; a tenth of a second shows the rule
    bomb = tmp_path / "bomb.flac"
    sf.write(bomb, np.zeros((65_535, 8), dtype="int16"), 655_350, format="FLAC")
    start = time.perf_counter()
    with pytest.raises(AudioError, match="8 channels at 655350 Hz"):
        load_audio(bomb, max_seconds=60)
    assert time.perf_counter() - start < 2.0


def test_zip_unpacking_is_streamed_capped_and_cleans_up(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        for i in range(3):
            handle.writestr(f"clip{i}.wav", b"\0" * (8 << 20))  # 8 MB of zeros deflate to ~8 KB
    assert archive.stat().st_size < 100_000
    target = tmp_path / "out"
    with pytest.raises(ArchiveError, match="over 20 MB"):
        unpack(archive, target, lambda name: None, ZipLimits(max_total_bytes=20 << 20))
    assert not target.exists()  # nothing left behind
    with pytest.raises(ArchiveError, match="over 4 MB"):
        unpack(archive, target, lambda name: None, ZipLimits(max_file_bytes=4 << 20))
    assert not target.exists()


def test_a_zip_with_too_many_entries_is_refused_from_its_end_record(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for i in range(30):
            handle.writestr(f"c{i}.wav", b"")
    with pytest.raises(ArchiveError, match="30 entries, over the 10 limit"):
        unpack(archive, tmp_path / "out", lambda name: None, ZipLimits(max_entries=10))
    assert not (tmp_path / "out").exists()


def test_bulk_add_reports_every_skipped_zip_entry(tmp_path):
    service = make_service(tmp_path, target=False)
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(wav(tmp_path / "ok.wav", tone(300.0, 1.0, 0)), "ok.wav")
        handle.writestr("notes.txt", b"hello")
        handle.writestr("inner.zip", b"PK")
        handle.writestr("/abs.wav", b"x")
        handle.write(nan_wav(tmp_path / "nan.wav"), "nan.wav")
        handle.write(wav(tmp_path / "quiet.wav", np.zeros(SR, dtype="float32")), "quiet.wav")
    message = service.add_files([str(archive)], "it")
    assert "Added 2 clips" in message
    for needle in (
        "notes.txt: not audio",
        "inner.zip: a zip inside the zip",
        "abs.wav: a path outside",
        "NaN",
    ):
        assert needle in message, needle
    assert "quiet.wav: silent" in message  # flagged when it joins the pool, not only on predict
    assert str(tmp_path) not in message and not list((service.config.data_dir / "tmp").iterdir())


def test_unpacked_uploads_a_killed_run_left_are_removed_at_start_up(tmp_path):
    service = make_service(tmp_path, target=False)
    leftover = service.config.data_dir / "tmp" / "bulk-killed"
    (leftover / "0").mkdir(parents=True)
    (leftover / "0" / "big.wav").write_bytes(b"\0" * 1000)
    logs: list[str] = []
    Service(service.config, encoder=tiny_encoder(), log=logs.append).start(background=False)
    assert not leftover.exists() and any("removed 1 unpacked" in line for line in logs)


class _SlowEncoder:
    """The tiny encoder, 0.2 s per forward pass: a stand-in for whisper-base on a busy CPU."""

    def __init__(self) -> None:
        self._inner = tiny_encoder()

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __call__(self, *args, **kwargs):
        time.sleep(0.2)
        return self._inner(*args, **kwargs)

    def embed(self, *args, **kwargs):
        time.sleep(0.2)
        return self._inner.embed(*args, **kwargs)


def test_predict_stays_responsive_during_a_bulk_add(tmp_path):
    service = make_service(tmp_path, target=False)
    files = [wav(tmp_path / f"c{i}.wav", tone(200.0 + 7 * i, 0.5, i)) for i in range(96)]
    probe = wav(tmp_path / "probe.wav", tone(900.0, 0.7, 999))
    service.predict(probe)  # warm: model loaded, probe embedded into the cache
    service.ws.encoder = _SlowEncoder()
    done = threading.Event()
    bulk = threading.Thread(target=lambda: (service.add_files([str(f) for f in files], "it"), done.set()))
    bulk.start()
    time.sleep(0.8)  # the bulk add is embedding now
    start = time.perf_counter()
    fresh = wav(tmp_path / "fresh.wav", tone(1234.0, 0.7, 5))  # not cached: needs the encoder
    service.predict(fresh)
    waited = time.perf_counter() - start
    assert not done.is_set(), "the bulk add ended before the predict: make it bigger"
    bulk.join()
    # one batch of the bulk add (2 forward passes of 8) at most, not the whole add (12 passes)
    assert waited < 1.5, f"predict waited {waited:.1f} s behind the bulk add"


# -- 6. crash-atomic adaptation -------------------------------------------------------------------


KILL_SAVER = textwrap.dedent(
    """
    import sys, itertools
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from serdemo.learn import load_model, save_model
    result = load_model({model!r})
    print("ready", flush=True)
    for i in itertools.count():
        save_model(result, Path({out!r}) / f"k{run}-m{{i}}")
    """
)


@pytest.mark.slow
def test_a_killed_save_leaves_complete_models_or_nothing(tmp_path):
    service = make_service(tmp_path / "svc")
    model = service.store.active_version().weights_path
    out = tmp_path / "models"
    out.mkdir()
    rng = np.random.default_rng(0)
    kills = 0
    for run in range(8):
        script = KILL_SAVER.format(root=str(ROOT), model=str(model), out=str(out), run=run)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.5))  # somewhere inside a save: each takes milliseconds
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        kills += 1
    finals = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert kills == 8 and finals  # saves completed between the kills
    for folder in finals:
        load_model(folder)  # every folder under its final name is a complete model


def test_a_version_and_its_pseudo_labels_are_one_transaction(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    clip = store.add_clip(wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)), language="it", source="upload")
    with pytest.raises(ValueError):
        store.add_model_version({}, machine_labels=[(clip.id, "anger", 0.9), (clip.id, "boredom", 0.9)])
    assert store.model_versions() == [] and store.label_history(clip.id) == []
    version = store.add_model_version({}, machine_labels=[(clip.id, "anger", 0.9)])
    assert store.machine_label(clip.id).annotator == version.id


def test_a_truncated_active_model_falls_back_to_the_last_good_version(tmp_path):
    from serdemo.app import AdaptRequest

    service = make_service(tmp_path)
    first = service.store.active_version()
    service.adapt(AdaptRequest(language="de", policy="none", epochs=2, window=1))
    active = service.store.active_version()
    weights = Path(active.weights_path) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    logs: list[str] = []
    again = Service(service.config, encoder=tiny_encoder(), log=logs.append).start(background=False)
    assert again.store.active_version().id == first.id
    assert any("fell back to" in line for line in logs)
    assert again.predict(wav(tmp_path / "p.wav", tone(300.0, 1.0, 3))).model_version == first.id
    with pytest.raises(ServiceError, match="cannot be loaded"):  # rolling forward to it says why not
        again.activate(active.id)


# -- 7. the smaller holes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("[1,2,3]\n", ".jsonl", ":1: not a record"),
        ("null\n", ".jsonl", ":1: not a record"),
        ("[" * 100_000 + "\n", ".jsonl", ":1: not JSON"),
        (
            "sha256,path,language,source,duration,added_at,original_name,speaker,session\n"
            + "a" * 200_000
            + "\n",
            ".csv",
            "not a readable CSV",
        ),
        (b"\xff\xfe\x00".decode("latin-1"), ".csv", "not UTF-8"),
    ],
    ids=["list", "null", "deep", "huge-field", "not-utf8"],
)
def test_malformed_label_files_get_a_message_not_a_traceback(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    with pytest.raises(ValueError, match=message):
        AnnotationStore(tmp_path / "store").import_file(path)


def test_duplicate_label_uids_are_reported(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    clip = store.add_clip(wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)), language="it", source="upload")
    base = {"sha256": clip.sha256, "path": "x.wav", "language": "it", "source": "upload"}
    base |= {"added_at": clip.added_at, "kind": "human", "annotator": "ada", "created_at": clip.added_at}
    export = tmp_path / "dup.jsonl"
    export.write_text(
        "".join(json.dumps(base | {"label_uid": "u1", "emotion": e}) + "\n" for e in ("anger", "fear"))
    )
    report = store.import_file(export)
    assert report.new_labels == 1 and report.notes == ("line 2: label uid u1 repeats line 1; kept the first",)


@pytest.mark.parametrize("clip_id", [2**64, -1, 0, "x"])
def test_absurd_clip_ids_are_refused_cleanly(tmp_path, clip_id):
    store = AnnotationStore(tmp_path / "store")
    with pytest.raises(ValueError, match="unknown clip id|invalid literal"):
        store.add_label(clip_id, "anger", annotator="ada")


def test_annotator_names_and_durations_are_bounded(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    clip = store.add_clip(wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)), language="it", source="upload")
    with pytest.raises(ValueError, match="at most 64"):
        store.add_label(clip.id, "anger", annotator="x" * (20 << 20))
    assert clip.duration == pytest.approx(1.0)  # measured; an import's -1e308 is never read


def test_csv_export_defuses_formulas_and_round_trips(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    name = '=HYPERLINK("http://x","y").wav'
    clip = store.add_clip(
        wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)),
        language="it",
        source="upload",
        original_name=name,
        speaker="@boss",
        session="-1+2",
    )
    store.add_label(clip.id, "anger", annotator="+ada")
    export = tmp_path / "out.csv"
    store.export_csv(export)
    row = next(csv.DictReader(export.open()))
    assert (
        row["original_name"].startswith("'=") and row["speaker"] == "'@boss" and row["annotator"] == "'+ada"
    )
    target = AnnotationStore(tmp_path / "target")
    target.add_clip(clip.path, language="it", source="upload")
    assert target.import_file(export).new_labels == 1
    assert target.label_history(target.clips()[0].id)[0].annotator == "+ada"


def test_a_v1_store_is_migrated_with_its_labels(tmp_path):
    store = AnnotationStore(tmp_path / "store")
    clip = store.add_clip(wav(tmp_path / "a.wav", tone(300.0, 1.0, 0)), language="it", source="upload")
    store.add_label(clip.id, "anger", annotator="ada")
    with sqlite3.connect(store.db_path) as conn:  # back to what a v1 store looked like
        conn.execute("DROP VIEW current_labels")
        conn.execute(
            "CREATE VIEW current_labels AS SELECT * FROM (SELECT l.*, ROW_NUMBER() OVER (PARTITION BY "
            "l.clip_id ORDER BY l.created_at DESC) AS rank FROM live_labels l WHERE l.kind IN ('human', "
            "'gold')) WHERE rank = 1"
        )
        conn.execute("ALTER TABLE labels DROP COLUMN received_by")
        conn.execute("ALTER TABLE clips DROP COLUMN unusable")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store.close()
    again = AnnotationStore(store.root)
    assert again.schema_version() == 2 and again.current_label(clip.id).emotion == "anger"


def test_decode_errors_name_the_file_only(tmp_path):
    with pytest.raises(AudioError) as caught:
        decode_bytes(b"RIFF0000WAVEjunk", "clip.wav")
    assert str(caught.value).startswith("clip.wav: not a readable audio file")
