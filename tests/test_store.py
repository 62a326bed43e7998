"""The annotation store: clips, append-only labels, model versions, export/import, concurrency, crashes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serdemo.audio import AudioError
from serdemo.store import AnnotationStore, Clip, LabelKind

ROOT = Path(__file__).resolve().parents[1]


def make_wav(folder: Path, seed: int, seconds: float = 0.25, name: str | None = None) -> Path:
    """A short noise clip; a different seed gives different bytes, hence a different clip."""
    path = folder / (name or f"clip{seed}.wav")
    audio = np.random.default_rng(seed).uniform(-0.1, 0.1, int(16000 * seconds)).astype("float32")
    sf.write(path, audio, 16000)
    return path


@pytest.fixture
def store(tmp_path: Path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "store")


@pytest.fixture
def clip(store: AnnotationStore, tmp_path: Path) -> Clip:
    return store.add_clip(make_wav(tmp_path, 0), language="it", source="upload")


# -- clips -----------------------------------------------------------------------------------


def test_add_clip_copies_audio_into_the_store(store: AnnotationStore, tmp_path: Path) -> None:
    source = make_wav(tmp_path, 1, seconds=0.5, name="rabbia.wav")
    clip = store.add_clip(source, language="it", source="upload", speaker="s1", session="a")

    assert clip.path == store.root / "audio" / clip.sha256[:2] / f"{clip.sha256}.wav"
    assert clip.path.read_bytes() == source.read_bytes()
    source.unlink()  # the store owns its copy
    assert clip.path.is_file()
    assert clip.duration == pytest.approx(0.5)
    assert (clip.original_name, clip.language, clip.source, clip.speaker, clip.session) == (
        "rabbia.wav",
        "it",
        "upload",
        "s1",
        "a",
    )
    assert store.clip(clip.id) == clip


def test_same_audio_twice_is_one_clip(store: AnnotationStore, tmp_path: Path) -> None:
    path = make_wav(tmp_path, 2)
    first = store.add_clip(path, language="it", source="upload")
    again = store.add_clip(path.read_bytes(), language="it", source="bulk", original_name="copy.wav")
    other = store.add_clip(make_wav(tmp_path, 3), language="it", source="upload")

    assert again == first  # the first record wins; metadata of the duplicate is ignored
    assert other.id != first.id
    assert [c.id for c in store.clips()] == [first.id, other.id]


@pytest.mark.parametrize(
    ("audio", "language", "source", "error", "message"),
    [
        (b"not audio at all", "it", "upload", AudioError, "not a readable audio file"),
        (None, "Italian", "upload", ValueError, "ISO 639-1"),
        (None, "it", "youtube", ValueError, "corpus:<name>"),
    ],
)
def test_bad_clip_raises_and_writes_nothing(
    store: AnnotationStore, tmp_path: Path, audio, language, source, error, message
) -> None:
    audio = audio if audio is not None else make_wav(tmp_path, 4)
    with pytest.raises(error, match=message):
        store.add_clip(audio, language=language, source=source)
    assert store.clips() == []


def test_empty_recording_is_rejected(store: AnnotationStore, tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(0, dtype="float32"), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        store.add_clip(path, language="it", source="upload")


def test_corpus_source_and_filters(store: AnnotationStore, tmp_path: Path) -> None:
    italian = store.add_clip(make_wav(tmp_path, 5), language="it", source="corpus:emovo")
    german = store.add_clip(make_wav(tmp_path, 6), language="de", source="corpus:emodb")
    store.add_label(german.id, "sadness", annotator="emodb", kind="gold")
    store.add_label(italian.id, "fear", annotator="v1", kind="machine", confidence=0.6)

    assert store.clips(language="it") == [italian]
    assert store.clips(labeled=True) == [german]
    assert store.clips(labeled=False) == [italian]  # a pseudo-label does not make a clip labeled
    assert store.clips(language="de", labeled=False) == []


# -- labels ----------------------------------------------------------------------------------


def test_latest_human_label_wins(store: AnnotationStore, clip: Clip) -> None:
    store.add_label(clip.id, "neutral", annotator="corpus", kind="gold")
    assert store.current_label(clip.id).emotion == "neutral"

    store.add_label(clip.id, "anger", annotator="ada")
    store.add_label(clip.id, "fear", annotator="bob")
    current = store.current_label(clip.id)
    assert (current.emotion, current.annotator, current.kind) == ("fear", "bob", "human")
    # A later gold label does not override a person's correction either.
    store.add_label(clip.id, "sadness", annotator="corpus", kind="gold")
    assert store.current_label(clip.id).emotion == "fear"


def test_machine_labels_never_shadow_human_ones(store: AnnotationStore, clip: Clip) -> None:
    version = store.add_model_version({"lr": 1e-3})
    store.add_label(clip.id, "happiness", annotator="ada")
    store.add_label(
        clip.id,
        "anger",
        annotator=version.id,
        kind=LabelKind.MACHINE,
        confidence=0.99,
        model_version=version.id,
    )

    assert store.current_label(clip.id).emotion == "happiness"
    machine = store.machine_label(clip.id)
    assert (machine.emotion, machine.confidence, machine.model_version) == ("anger", 0.99, version.id)
    assert store.label_counts("it") == {"anger": 0, "fear": 0, "happiness": 1, "neutral": 0, "sadness": 0}


def test_machine_label_alone_is_not_a_current_label(store: AnnotationStore, clip: Clip) -> None:
    store.add_label(clip.id, "anger", annotator="model", kind="machine", confidence=0.7)
    assert store.current_label(clip.id) is None
    assert store.machine_label(clip.id).emotion == "anger"


def test_undo_retracts_the_annotators_latest_label(
    store: AnnotationStore, clip: Clip, tmp_path: Path
) -> None:
    other = store.add_clip(make_wav(tmp_path, 7), language="it", source="upload")
    store.add_label(clip.id, "neutral", annotator="corpus", kind="gold")
    first = store.add_label(clip.id, "anger", annotator="ada")
    second = store.add_label(other.id, "fear", annotator="ada")
    store.add_label(other.id, "sadness", annotator="bob")

    assert store.undo_last_label("ada") == second
    assert store.current_label(other.id).emotion == "sadness"  # bob's label is untouched
    assert store.undo_last_label("ada") == first
    assert store.current_label(clip.id).emotion == "neutral"  # back to the corpus label
    assert store.undo_last_label("ada") is None
    assert store.undo_last_label("nobody") is None
    # The log keeps everything: gold, anger, and the retraction of anger.
    history = store.label_history(clip.id)
    assert [(h.emotion, h.retracts) for h in history] == [
        ("neutral", None),
        ("anger", None),
        (None, first.uid),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emotion": "boredom"}, "unknown emotion 'boredom'"),
        ({"clip_id": 999}, "unknown clip id 999"),
        ({"model_version": "v9-abcdef"}, "unknown model version"),
        ({"kind": "crowd"}, "label kind 'crowd'"),
        ({"confidence": 1.5}, r"\[0, 1\]"),
        ({"annotator": "  "}, "annotator"),
    ],
)
def test_bad_label_raises_and_writes_nothing(store: AnnotationStore, clip: Clip, kwargs, message) -> None:
    args = {"clip_id": clip.id, "emotion": "anger", "annotator": "ada", **kwargs}
    with pytest.raises(ValueError, match=message):
        store.add_label(**args)
    assert store.label_history(clip.id) == []


def test_label_counts_per_language(store: AnnotationStore, tmp_path: Path) -> None:
    clips = [store.add_clip(make_wav(tmp_path, 10 + i), language="it", source="bulk") for i in range(3)]
    german = store.add_clip(make_wav(tmp_path, 20), language="de", source="bulk")
    store.add_label(clips[0].id, "anger", annotator="ada")
    store.add_label(clips[0].id, "fear", annotator="ada")  # relabel: counts once, as fear
    store.add_label(clips[1].id, "fear", annotator="ada")
    store.add_label(german.id, "anger", annotator="ada")

    assert store.label_counts("it") == {"anger": 0, "fear": 2, "happiness": 0, "neutral": 0, "sadness": 0}
    assert store.label_counts("de")["anger"] == 1


# -- model versions --------------------------------------------------------------------------


def test_model_versions_rollback(store: AnnotationStore) -> None:
    assert store.active_version() is None
    v1 = store.add_model_version({"seed": 0}, {"uar": 0.41}, weights_path="/w/1", activate=False)
    assert v1.active  # the first version is active even when not asked
    v2 = store.add_model_version({"seed": 1}, {"uar": 0.55}, weights_path="/w/2", parent=v1.id)
    assert store.active_version().id == v2.id
    store.add_model_version({"seed": 2}, parent=v2.id, activate=False)
    assert store.active_version().id == v2.id

    store.activate(v1.id)  # rollback
    versions = store.model_versions()
    assert [v.active for v in versions] == [True, False, False]
    assert (versions[1].parent, versions[1].config, versions[1].metrics) == (
        v1.id,
        {"seed": 1},
        {"uar": 0.55},
    )
    assert versions[0].weights_path == "/w/1"


def test_unknown_versions_are_refused(store: AnnotationStore) -> None:
    v1 = store.add_model_version({})
    with pytest.raises(ValueError, match="unknown model version 'v7'"):
        store.activate("v7")
    with pytest.raises(ValueError, match="unknown parent"):
        store.add_model_version({}, parent="v7")
    with pytest.raises(ValueError, match="not JSON-serializable"):
        store.add_model_version({"weights": object()})
    assert [v.id for v in store.model_versions()] == [v1.id]
    assert store.active_version().id == v1.id


# -- export / import -------------------------------------------------------------------------


def _populate(store: AnnotationStore, folder: Path) -> None:
    version = store.add_model_version({"rule": "hard"})
    a = store.add_clip(make_wav(folder, 30), language="it", source="upload", speaker="s1")
    b = store.add_clip(make_wav(folder, 31, name="tristezza, 1.wav"), language="it", source="upload")
    store.add_clip(make_wav(folder, 32), language="de", source="corpus:emodb", session="x")  # no labels
    store.add_label(a.id, "neutral", annotator="emodb", kind="gold")
    store.add_label(a.id, "anger", annotator="ada")
    store.add_label(b.id, "sadness", annotator="ada")
    store.add_label(
        b.id, "fear", annotator=version.id, kind="machine", confidence=0.8125, model_version=version.id
    )
    store.undo_last_label("ada")  # a retraction row must survive the trip too


def _snapshot(store: AnnotationStore) -> tuple:
    clips = store.clips()
    by_id = {c.id: c.sha256 for c in clips}
    clip_rows = sorted(
        (c.sha256, c.language, c.source, c.duration, c.added_at, c.original_name, c.speaker, c.session)
        for c in clips
    )
    label_rows = [
        (by_id[lab.clip_id], lab.uid, lab.emotion, lab.kind, lab.annotator, lab.confidence)
        + (lab.model_version, lab.created_at, lab.retracts)
        for c in clips
        for lab in store.label_history(c.id)
    ]
    current = {
        c.sha256: (store.current_label(c.id) or None) and store.current_label(c.id).emotion for c in clips
    }
    return clip_rows, sorted(label_rows, key=str), current


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_import_round_trip(tmp_path: Path, fmt: str) -> None:
    source = AnnotationStore(tmp_path / "source")
    _populate(source, tmp_path)
    export = tmp_path / f"export.{fmt}"
    getattr(source, f"export_{fmt}")(export)

    target = AnnotationStore(tmp_path / "target")
    report = target.import_file(export, audio_root=source.root)
    assert (report.new_clips, report.new_labels, report.notes) == (3, 5, ())
    assert _snapshot(target) == _snapshot(source)
    assert _snapshot(target)[2] == {
        source.clips()[0].sha256: "anger",
        source.clips()[1].sha256: None,  # ada's sadness was undone; the machine label does not count
        source.clips()[2].sha256: None,
    }
    for clip in target.clips():
        assert clip.path.is_relative_to(target.root)
        assert clip.path.read_bytes() == source.clip_by_sha256(clip.sha256).path.read_bytes()

    again = target.import_file(export, audio_root=source.root)
    assert (again.new_clips, again.new_labels) == (0, 0)  # importing twice adds nothing
    assert _snapshot(target) == _snapshot(source)


def test_import_finds_audio_in_a_moved_store_folder(tmp_path: Path) -> None:
    source = AnnotationStore(tmp_path / "source")
    _populate(source, tmp_path)
    source.export_jsonl(source.root / "export.jsonl")
    moved = tmp_path / "moved"
    (tmp_path / "source").rename(moved)  # paths in exports are relative to the store folder

    target = AnnotationStore(tmp_path / "target")
    report = target.import_file(moved / "export.jsonl", audio_root=moved)
    assert (report.new_clips, report.new_labels) == (3, 5)
    assert all(clip.path.is_file() for clip in target.clips())


def test_a_label_only_import_skips_clips_without_audio_and_says_so(tmp_path: Path) -> None:
    source = AnnotationStore(tmp_path / "source")
    _populate(source, tmp_path)
    source.export_csv(tmp_path / "export.csv")
    target = AnnotationStore(tmp_path / "target")
    report = target.import_file(tmp_path / "export.csv")  # no audio_root: no file is read but this one
    assert (report.new_clips, report.new_labels) == (0, 0)
    assert "3 clips skipped" in report.notes[0] and "bundle" in report.notes[0]
    # once the clips are here (same audio), the same file brings their labels
    for clip in source.clips():
        target.add_clip(clip.path, language=clip.language, source=clip.source)
    report = target.import_file(tmp_path / "export.csv")
    assert (report.new_clips, report.new_labels) == (0, 5)


def test_bad_import_names_the_line_and_writes_nothing(tmp_path: Path) -> None:
    source = AnnotationStore(tmp_path / "source")
    _populate(source, tmp_path)
    export = tmp_path / "export.csv"
    source.export_csv(export)
    lines = export.read_text().splitlines()
    lines[3] = lines[3].replace(",sadness,", ",boredom,")
    assert lines[3] != export.read_text().splitlines()[3]
    export.write_text("\n".join(lines) + "\n")

    target = AnnotationStore(tmp_path / "target")
    with pytest.raises(ValueError, match=r"export\.csv:4: unknown emotion 'boredom'"):
        target.import_file(export)
    assert target.clips() == []
    with pytest.raises(ValueError, match="unknown export format"):
        target.import_file(tmp_path / "source" / "store.sqlite")


def test_backup_is_a_consistent_copy(store: AnnotationStore, clip: Clip, tmp_path: Path) -> None:
    store.add_label(clip.id, "anger", annotator="ada")
    copy = store.backup(tmp_path / "backup.sqlite")
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT emotion FROM labels").fetchall() == [("anger",)]
    with pytest.raises(ValueError, match="own database"):
        store.backup(store.db_path)


# -- schema ----------------------------------------------------------------------------------


def test_schema_version_is_recorded_and_a_newer_one_refused(store: AnnotationStore, clip: Clip) -> None:
    assert store.schema_version() == 2
    assert AnnotationStore(store.root).clips() == [clip]  # reopening keeps the data
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="upgrade serdemo"):
        AnnotationStore(store.root)


# -- concurrency and crashes -----------------------------------------------------------------


def _label_many(root: str, clip_id: int, annotator: str, count: int, start, times) -> None:
    store = AnnotationStore(root)
    start.wait()  # both processes are up and have opened the store: go
    began = time.time()
    for i in range(count):
        store.add_label(clip_id, ("anger", "fear", "sadness")[i % 3], annotator=annotator)
    times.put((began, time.time()))


def test_two_processes_writing_at_once_both_succeed(store: AnnotationStore, clip: Clip) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, like a second app process
    start, times = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_label_many, args=(str(store.root), clip.id, name, 200, start, times))
        for name in ("ada", "bob")
    ]
    for worker in workers:
        worker.start()
    spans = [times.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    history = store.label_history(clip.id)
    assert len(history) == 400
    assert sum(h.annotator == "ada" for h in history) == sum(h.annotator == "bob" for h in history) == 200
    # Both really wrote at once. (SQLite's lock is not fair: one writer may wait out most of the other's
    # run, so the rows need not interleave; the waiting writer must simply not fail.)
    (began_a, ended_a), (began_b, ended_b) = spans
    assert began_a < ended_b and began_b < ended_a


def test_threads_share_one_store(store: AnnotationStore, clip: Clip) -> None:
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for _ in range(25):
                store.add_label(clip.id, "neutral", annotator=name)
                store.current_label(clip.id)
        except BaseException as error:  # surfaced below; a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"user{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.label_history(clip.id)) == 100


_WRITER = textwrap.dedent(
    """
    import sys
    from serdemo.store import AnnotationStore
    store = AnnotationStore(sys.argv[1])
    clip_id = int(sys.argv[2])
    i = 0
    while True:
        label = store.add_label(clip_id, ("anger", "happiness")[i % 2], annotator="writer")
        print(label.uid, flush=True)  # printed only after the commit returned
        i += 1
    """
)


def test_killed_writer_loses_no_committed_label(store: AnnotationStore, clip: Clip) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(store.root), str(clip.id)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    committed = []
    deadline = time.monotonic() + 60
    try:
        while len(committed) < 100 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            committed.append(line.strip())
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-write: it is in the middle of its next transaction
        writer.wait()
        writer.stdout.close()
    assert len(committed) == 100, "the writer did not start"

    reopened = AnnotationStore(store.root)
    with sqlite3.connect(reopened.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {label.uid for label in reopened.label_history(clip.id)}
    assert set(committed) <= stored  # the writer may have committed more that we never read
    reopened.add_label(clip.id, "fear", annotator="after")  # and it still takes writes


def _label_once(store: AnnotationStore, clip_id: int) -> None:
    store.add_label(clip_id, "happiness", annotator="child")


def test_forked_child_opens_its_own_connection(store: AnnotationStore, clip: Clip) -> None:
    store.add_label(clip.id, "anger", annotator="parent")  # the parent's connection exists before the fork
    child = multiprocessing.get_context("fork").Process(target=_label_once, args=(store, clip.id))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    store.add_label(clip.id, "fear", annotator="parent")  # the parent's connection still works
    assert [h.annotator for h in store.label_history(clip.id)] == ["parent", "child", "parent"]
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_add_labels_writes_a_round_of_pseudo_labels_at_once_or_nothing(
    store: AnnotationStore, tmp_path: Path
) -> None:
    clips = [store.add_clip(make_wav(tmp_path, seed), "de", "upload") for seed in (1, 2, 3)]
    version = store.add_model_version({"policy": "hard"})
    labels = store.add_labels(
        [(c.id, "anger", 0.9) for c in clips], annotator=version.id, kind="machine", model_version=version.id
    )
    assert [lab.clip_id for lab in labels] == [c.id for c in clips]
    assert all(store.machine_label(c.id).emotion == "anger" for c in clips)
    assert all(store.current_label(c.id) is None for c in clips)  # machine labels never count as labels
    with pytest.raises(ValueError):
        store.add_labels([(clips[0].id, "sadness", 0.5), (clips[1].id, "boredom", 0.5)], annotator="ann")
    assert store.current_label(clips[0].id) is None  # the bad second item wrote nothing
