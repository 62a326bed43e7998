"""Every corpus loader on tiny synthetic files named as in the real corpora."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serdemo.corpora import CorpusError, corpus_names, load_corpus
from serdemo.labels import EMOTIONS


def write_audio(path: Path) -> Path:
    """A 5 ms silent clip; the format (WAV or FLAC) follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(80, dtype=np.float32), 16_000)
    return path


# corpus -> (accepted: relative path -> (id, speaker, gender, emotion, original_label), rejected paths)
CASES = {
    "ravdess": (
        {
            "Actor_01/03-01-05-01-02-01-01.wav": (
                "ravdess/03-01-05-01-02-01-01",
                "ravdess/01",
                "male",
                "anger",
                "angry",
            ),
            "Actor_12/03-01-06-02-01-02-12.wav": (
                "ravdess/03-01-06-02-01-02-12",
                "ravdess/12",
                "female",
                "fear",
                "fearful",
            ),
            "Actor_12/03-01-02-01-01-01-12.wav": (
                "ravdess/03-01-02-01-01-01-12",
                "ravdess/12",
                "female",
                None,
                "calm",
            ),
            "Actor_24/03-01-01-01-01-01-24.wav": (
                "ravdess/03-01-01-01-01-01-24",
                "ravdess/24",
                "female",
                "neutral",
                "neutral",
            ),
        },
        [
            "Actor_01/03-02-05-01-02-01-01.wav",  # song
            "Actor_01/01-01-05-01-02-01-01.wav",  # audio-visual
            "Actor_01/03-01-09-01-02-01-01.wav",  # no emotion 09
            "Actor_25/03-01-05-01-02-01-25.wav",  # no actor 25
            "Actor_01/03-01-05-03-02-01-01.wav",  # no intensity 03
            "Actor_01/03-01-05-01-02-01.wav",  # six fields
            "Actor_01/03-01-05-01-02-01-01.mp4",  # not audio
        ],
    ),
    "emodb": (
        {
            "wav/03a01Fa.wav": ("emodb/03a01Fa", "emodb/03", "male", "happiness", "happiness"),
            "wav/08b10Wa.wav": ("emodb/08b10Wa", "emodb/08", "female", "anger", "anger"),
            "wav/16a07Td.wav": ("emodb/16a07Td", "emodb/16", "female", "sadness", "sadness"),
            "wav/10b02Lb.wav": ("emodb/10b02Lb", "emodb/10", "male", None, "boredom"),
            "wav/13a05Ea.wav": ("emodb/13a05Ea", "emodb/13", "female", None, "disgust"),
        },
        ["wav/02a01Fa.wav", "wav/03a01Xa.wav", "wav/03c01Fa.wav", "wav/03a01Fa_copy.wav", "wav/03a01fa.wav"],
    ),
    "savee": (
        {
            "AudioData/DC/a01.wav": ("savee/DC_a01", "savee/DC", "male", "anger", "anger"),
            "AudioData/KL/sa15.wav": ("savee/KL_sa15", "savee/KL", "male", "sadness", "sadness"),
            "AudioData/JE/su03.wav": ("savee/JE_su03", "savee/JE", "male", None, "surprise"),
            "flat/JK_n30.wav": ("savee/JK_n30", "savee/JK", "male", "neutral", "neutral"),
            "flat/DC_f07.wav": ("savee/DC_f07", "savee/DC", "male", "fear", "fear"),
        },
        [
            "AudioData/XX/a01.wav",
            "flat/AB_a01.wav",
            "flat/DC_x01.wav",
            "flat/DC_a1.wav",
            "AudioData/DC/sad01.wav",
        ],
    ),
    "tess": (
        {
            "OAF_angry/OAF_back_angry.wav": ("tess/OAF_back_angry", "tess/OAF", "female", "anger", "angry"),
            "OAF_Sad/OAF_bite_Sad.wav": ("tess/OAF_bite_sad", "tess/OAF", "female", "sadness", "sad"),
            "OAF_Pleasant_surprise/OAF_cab_ps.wav": (
                "tess/OAF_cab_pleasant_surprise",
                "tess/OAF",
                "female",
                None,
                "pleasant_surprise",
            ),
            "YAF_pleasant_surprised/YAF_dab_pleasant_surprised.wav": (
                "tess/YAF_dab_pleasant_surprise",
                "tess/YAF",
                "female",
                None,
                "pleasant_surprise",
            ),
            "YAF_fear/YAF_germ_fear.wav": ("tess/YAF_germ_fear", "tess/YAF", "female", "fear", "fear"),
            "YAF_happy/YAF_void_happy.wav": (
                "tess/YAF_void_happy",
                "tess/YAF",
                "female",
                "happiness",
                "happy",
            ),
        },
        [
            "OAF_angry/MAF_back_angry.wav",
            "OAF_angry/OAF_back_furious.wav",
            "OAF_angry/OAF_angry.wav",
            "OAF_angry/OAF_back_angry_2.wav",
        ],
    ),
    "cafe": (
        {
            "CaFE_48k/Colère/Faible/01-C-1-1.wav": ("cafe/01-C-1-1", "cafe/01", "male", "anger", "colère"),
            "CaFE_48k/Joie/Fort/12-J-2-6.wav": ("cafe/12-J-2-6", "cafe/12", "female", "happiness", "joie"),
            "CaFE_48k/Neutre/06-N-1-4.wav": ("cafe/06-N-1-4", "cafe/06", "female", "neutral", "neutre"),
            "CaFE_48k/D‚go–t/Fort/05-D-2-1.wav": ("cafe/05-D-2-1", "cafe/05", "male", None, "dégoût"),
            "CaFE_48k/Peur/Fort/07-P-2-3.wav": ("cafe/07-P-2-3", "cafe/07", "male", "fear", "peur"),
        },
        [
            "CaFE_48k/Peur/Fort/13-P-2-3.wav",
            "CaFE_48k/Peur/Fort/01-X-2-3.wav",
            "CaFE_48k/Peur/Fort/01-P-3-3.wav",
            "CaFE_48k/Peur/Fort/01-P-2-7.wav",
            "CaFE_48k/Peur/Fort/1-P-2-3.wav",
        ],
    ),
    "emovo": (
        {
            "EMOVO/f1/rab-f1-b1.wav": ("emovo/rab-f1-b1", "emovo/f1", "female", "anger", "rabbia"),
            "EMOVO/m3/gio-m3-n5.wav": ("emovo/gio-m3-n5", "emovo/m3", "male", "happiness", "gioia"),
            "EMOVO/m1/pau-m1-l4.wav": ("emovo/pau-m1-l4", "emovo/m1", "male", "fear", "paura"),
            "EMOVO/f2/sor-f2-d2.wav": ("emovo/sor-f2-d2", "emovo/f2", "female", None, "sorpresa"),
        },
        [
            "EMOVO/f4/rab-f4-b1.wav",
            "EMOVO/f1/xxx-f1-b1.wav",
            "EMOVO/f1/rab-f1-b4.wav",
            "EMOVO/f1/rab_f1_b1.wav",
        ],
    ),
    "shemo": (
        {
            "female/F01A01.wav": ("shemo/F01A01", "shemo/F01", "female", "anger", "anger"),
            "male/M56S12.wav": ("shemo/M56S12", "shemo/M56", "male", "sadness", "sadness"),
            "male/M02F03.wav": ("shemo/M02F03", "shemo/M02", "male", "fear", "fear"),
            "female/F10W05.wav": ("shemo/F10W05", "shemo/F10", "female", None, "surprise"),
        },
        ["female/X01A01.wav", "female/F01Q01.wav", "female/F1A01.wav", "female/F01A01x.wav"],
    ),
    "urdu": (
        {
            "Angry/SM1_F10_A01.wav": ("urdu/SM1_F10_A01", "urdu/SM1", "male", "anger", "angry"),
            "Neutral/SM20_F8_N012.wav": ("urdu/SM20_F8_N012", "urdu/SM20", "male", "neutral", "neutral"),
            "Happy/SF9_F1_H01.wav": ("urdu/SF9_F1_H01", "urdu/SF9", "female", "happiness", "happy"),
            "Sad/SM5_F72_S0100.wav": ("urdu/SM5_F72_S0100", "urdu/SM5", "male", "sadness", "sad"),
        },
        ["Angry/SX1_F10_A01.wav", "Angry/SM1_F10_D01.wav", "Angry/SM1-F10-A01.wav", "Angry/M1_F10_A01.wav"],
    ),
}
UNRELATED = ["README.txt", "notes/.DS_Store", "._hidden.wav", "docs/readme.pdf"]


def build(root: Path, corpus: str, suffix: str) -> dict[str, tuple]:
    accepted, rejected = CASES[corpus]
    for rel in [*accepted, *rejected]:
        path = root / rel
        if path.suffix == ".wav":
            write_audio(path.with_suffix(suffix))
        else:  # e.g. the RAVDESS video files, which share the naming scheme
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not audio")
    for rel in UNRELATED:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"not audio")
    return accepted


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
@pytest.mark.parametrize("corpus", sorted(CASES))
def test_loader_parses_documented_names_and_skips_the_rest(tmp_path, corpus, suffix):
    accepted = build(tmp_path, corpus, suffix)
    utterances = load_corpus(corpus, tmp_path, keep_unmapped=True)
    got = {u.id: (u.id, u.speaker, u.gender, u.emotion, u.original_label) for u in utterances}
    assert got == {fields[0]: fields for fields in accepted.values()}
    for u in utterances:
        assert u.corpus == corpus and u.path.suffix == suffix and u.path.is_file()
        assert u.language == {"ravdess": "en", "savee": "en", "tess": "en", "emodb": "de", "cafe": "fr",
                              "emovo": "it", "shemo": "fa", "urdu": "ur"}[corpus]  # fmt: skip


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_unmapped_labels_are_dropped_by_default(tmp_path, corpus):
    accepted = build(tmp_path, corpus, ".wav")
    utterances = load_corpus(corpus, tmp_path)
    assert {u.id for u in utterances} == {f[0] for f in accepted.values() if f[3] is not None}
    assert all(u.emotion in EMOTIONS for u in utterances)


def test_result_is_sorted_and_deterministic(tmp_path):
    build(tmp_path, "ravdess", ".flac")
    first = load_corpus("ravdess", tmp_path, keep_unmapped=True)
    assert [u.id for u in first] == sorted(u.id for u in first)
    assert first == load_corpus("RAVDESS", str(tmp_path), keep_unmapped=True)


def test_wav_and_flac_copies_of_one_clip_count_once(tmp_path):
    write_audio(tmp_path / "03a01Fa.wav")
    write_audio(tmp_path / "copy" / "03a01Fa.flac")
    assert [u.id for u in load_corpus("emodb", tmp_path)] == ["emodb/03a01Fa"]


def test_text_ids_are_kept_for_text_independent_splits(tmp_path):
    write_audio(tmp_path / "OAF_back" / "OAF_back_angry.wav")
    write_audio(tmp_path / "Actor_02" / "03-01-05-02-02-01-02.wav")
    assert load_corpus("tess", tmp_path)[0].extra["text"] == "back"
    assert load_corpus("ravdess", tmp_path)[0].extra == {"code": "05", "intensity": "strong", "text": "02"}


# --- errors -----------------------------------------------------------------------------------------


def test_unknown_corpus_lists_the_known_ones(tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus 'iemocap'") as error:
        load_corpus("iemocap", tmp_path)
    for name in corpus_names():
        assert name in str(error.value)


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_missing_root_says_where_to_point(tmp_path, corpus):
    with pytest.raises(CorpusError, match=rf"does not exist; point --source {corpus}=PATH"):
        load_corpus(corpus, tmp_path / "nowhere")


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_root_that_is_a_file_is_refused(tmp_path, corpus):
    file = write_audio(tmp_path / "clip.wav")
    with pytest.raises(CorpusError, match="is not a folder"):
        load_corpus(corpus, file)


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_root_without_matching_audio_names_the_scheme(tmp_path, corpus):
    write_audio(tmp_path / "unrelated" / "hello.wav")
    with pytest.raises(CorpusError, match=rf"no .* files \(.*\) under {tmp_path}; point --source {corpus}="):
        load_corpus(corpus, tmp_path)


def test_ravdess_error_message_matches_the_documented_wording(tmp_path):
    with pytest.raises(CorpusError) as error:
        load_corpus("ravdess", tmp_path)
    assert str(error.value) == (
        f"no RAVDESS files (03-01-EE-II-SS-RR-AA.wav/.flac) under {tmp_path.resolve()}; "
        "point --source ravdess=PATH at the folder holding Actor_01..Actor_24"
    )


# --- the folder / CSV corpus ------------------------------------------------------------------------


def test_folder_tree_maps_emotion_folders_and_keeps_unlabeled(tmp_path):
    write_audio(tmp_path / "anger" / "a1.wav")
    write_audio(tmp_path / "Happy" / "spk1" / "h1.flac")
    write_audio(tmp_path / "unlabeled" / "u1.wav")
    write_audio(tmp_path / "loose.wav")
    write_audio(tmp_path / "disgust" / "d1.wav")
    got = {u.id: (u.emotion, u.original_label, u.speaker) for u in load_corpus("folder", tmp_path)}
    assert got == {
        "folder/anger/a1": ("anger", "anger", "folder/unknown"),
        "folder/Happy/spk1/h1": ("happiness", "Happy", "folder/spk1"),
        "folder/unlabeled/u1": (None, "", "folder/unknown"),
        "folder/loose": (None, "", "folder/unknown"),
    }
    assert "folder/disgust/d1" in {u.id for u in load_corpus("folder", tmp_path, keep_unmapped=True)}


def test_folder_csv_with_relative_paths_speakers_languages_and_unlabeled(tmp_path):
    write_audio(tmp_path / "clips" / "a.wav")
    write_audio(tmp_path / "clips" / "b.flac")
    write_audio(tmp_path / "clips" / "c.wav")
    (tmp_path / "labels.csv").write_text(
        "\ufeffpath,emotion,speaker,language\nclips/a.wav,Sad,s1,it\nclips/b.flac,,s2,it\nclips/c.wav,bored,s1,it\n",
        encoding="utf-8",
    )
    expected = {"folder/clips/a": ("sadness", "folder/s1", "it"), "folder/clips/b": (None, "folder/s2", "it")}
    for root in (tmp_path, tmp_path / "labels.csv"):  # a folder holding labels.csv, or the CSV itself
        got = {u.id: (u.emotion, u.speaker, u.language) for u in load_corpus("folder", root)}
        assert got == expected


def test_folder_csv_warns_about_labels_outside_the_scheme(tmp_path, caplog):
    write_audio(tmp_path / "a.wav")
    (tmp_path / "labels.csv").write_text("path,emotion\na.wav,angr\n")
    with caplog.at_level(logging.WARNING):
        assert load_corpus("folder", tmp_path) == []
    assert "'angr' x1" in caplog.text


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("file,label\na.wav,anger\n", "needs a header with columns path,emotion"),
        ("path,emotion\n", "has a header but no rows"),
        ("path,emotion\nmissing.wav,anger\n", r"1 listed files do not exist \(line 2: missing.wav\)"),
        ("path,emotion\na.mp3,anger\n", "line 2: a.mp3 is not a .wav or .flac file"),
        ("path,emotion\n,anger\n", "line 2: empty path"),
        ("path,emotion\na.wav,anger\na.wav,fear\n", r"listed twice \(lines 2 and 3\)"),
    ],
)
def test_folder_csv_errors_say_what_is_wrong(tmp_path, csv_text, message):
    write_audio(tmp_path / "a.wav")
    (tmp_path / "labels.csv").write_text(csv_text)
    with pytest.raises(CorpusError, match=message):
        load_corpus("folder", tmp_path)


def test_folder_refuses_empty_folder_and_non_csv_file(tmp_path):
    with pytest.raises(CorpusError, match="no .wav/.flac files and no labels.csv"):
        load_corpus("folder", tmp_path)
    (tmp_path / "labels.txt").write_text("x")
    with pytest.raises(CorpusError, match="is a file but not a .csv"):
        load_corpus("folder", tmp_path / "labels.txt")
