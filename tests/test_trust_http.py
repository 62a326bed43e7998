"""Issue 11 through the HTTP API of a running ``python app.py`` (login on), as a stranger would try it.

One app instance (fresh data folder, the shipped source set, whisper-base) serves every test here.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser import ROOT, running_app

pytestmark = [pytest.mark.slow]

EXAMPLE = ROOT / "assets" / "examples" / "en_angry_kids.flac"
SR = 16_000


def tone(seconds: float, freq: float = 300.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    tmp = tmp_path_factory.mktemp("trust")
    data = tmp / "data"
    env = {"SERDEMO_AUTH": "ada:ada-secret,bob:bob-secret", "OMP_NUM_THREADS": "1"}
    with running_app(["--data-dir", str(data), "--max-upload-mb", "2"], tmp / "app.log", env=env) as url:
        client = Client(url, verbose=False)
        deadline = time.monotonic() + 600
        while True:  # start-up (encoder, first model) runs behind the page
            try:
                client.predict(handle_file(str(EXAMPLE)), "en", api_name="/predict")
                break
            except AppError as error:
                if "starting" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(2)
        yield {"url": url, "data": data, "tmp": tmp, "log": tmp / "app.log"}


def client_for(app, user: str | None = None):
    from gradio_client import Client

    client = Client(app["url"], verbose=False)
    if user:
        client.predict(user, f"{user}-secret", api_name="/login")
    return client


def refused(call) -> str:
    """The message of a refused API call; fails if it went through or leaked server internals."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        call()
    message = str(caught.value)
    assert "Traceback" not in message and 'File "' not in message, message
    assert "/tmp/" not in message and str(ROOT) not in message, message
    return message


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_store_weights_and_source_are_never_served(app):
    data = app["data"].resolve()
    weights = next(data.glob("models/*/model.safetensors"))
    for target in (data / "store.sqlite", data / "store.sqlite-wal", weights, ROOT / "app.py"):
        assert target.exists(), target
        assert get_status(f"{app['url']}gradio_api/file={target}") in (403, 404), target
    # what a page needs still plays: an example clip
    assert get_status(f"{app['url']}gradio_api/file={EXAMPLE}") == 200


def test_predict_is_public_and_everything_else_needs_a_login(app, tmp_path):
    from gradio_client import handle_file

    stranger = client_for(app)
    probs, *_ = stranger.predict(handle_file(str(EXAMPLE)), "en", api_name="/predict")
    assert probs["label"]
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1.0), SR)
    assert "log in to add clips" in refused(
        lambda: stranger.predict(handle_file(str(clip)), "it", api_name="/add_to_pool")
    )
    assert "log in to label" in refused(lambda: stranger.predict(1, "anger", "ada", api_name="/label"))
    assert "log in to export" in refused(lambda: stranger.predict("csv", api_name="/export"))
    rows = tmp_path / "rows.csv"
    rows.write_text("sha256,path\n")
    assert "log in to import" in refused(lambda: stranger.predict(handle_file(str(rows)), api_name="/import"))
    assert "wrong user name or password" in refused(
        lambda: stranger.predict("ada", "guess", api_name="/login")
    )


def test_labels_are_saved_under_the_login_whatever_name_is_typed(app, tmp_path):
    from gradio_client import handle_file

    ada, bob = client_for(app, "ada"), client_for(app, "bob")
    clip = tmp_path / "mine.wav"
    sf.write(clip, tone(1.2, 410.0), SR)
    added = ada.predict(handle_file(str(clip)), "it", api_name="/add_to_pool")
    clip_id = int(re.search(r"clip (\d+)", added).group(1))
    exported = Path(ada.predict("jsonl", api_name="/export"))
    records = [json.loads(line) for line in exported.read_text().splitlines()]
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    assert not any(r["path"].startswith("/") for r in records)  # no server paths in exports
    result = bob.predict(clip_id, "fear", "ada", api_name="/label")  # bob types ada's name
    assert result["language"] == "it"
    exported = Path(ada.predict("jsonl", api_name="/export"))
    labels = [json.loads(line) for line in exported.read_text().splitlines() if json.loads(line)["label_uid"]]
    mine = [r for r in labels if r["sha256"] == sha]
    assert [(r["emotion"], r["annotator"]) for r in mine] == [("fear", "bob")]
    # ada cannot retract bob's label with an import of a retraction row in her name
    row = {
        **mine[0],
        "label_uid": "ada-undo-1",
        "emotion": None,
        "retracts": mine[0]["label_uid"],
        "annotator": "ada",
    }
    forged = tmp_path / "retract.jsonl"
    forged.write_text(json.dumps(row) + "\n")
    message = ada.predict(handle_file(str(forged)), api_name="/import")
    assert "'ada' cannot retract a label of 'bob'" in message and "0 new labels" in message


def test_bad_audio_is_refused_at_every_door_and_the_app_keeps_serving(app, tmp_path):
    from gradio_client import handle_file

    ada = client_for(app, "ada")
    nan = tone(1.0)
    nan[10:20] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", tone(0.01), SR)
    assert "NaN" in refused(
        lambda: ada.predict(handle_file(str(tmp_path / "nan.wav")), "it", api_name="/add_to_pool")
    )
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(tmp_path / "nan.wav", "nan.wav")
        handle.write(tmp_path / "short.wav", "short.wav")
    message = ada.predict([handle_file(str(archive))], "it", api_name="/bulk_add")
    assert "Added 0 clips" in message and "NaN" in message and "shorter than" in message
    # the probe's route: a label file pointing at an uploaded NaN file by its server path and hash
    sha = hashlib.sha256((tmp_path / "nan.wav").read_bytes()).hexdigest()
    row = {
        "sha256": sha,
        "path": "/tmp/gradio/x/nan.wav",
        "language": "it",
        "source": "upload",
        "duration": 2.0,
        "added_at": "2026-11-30T10:00:00+00:00",
    }
    (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n")
    message = ada.predict(handle_file(str(tmp_path / "rows.jsonl")), api_name="/import")
    assert "Imported 0 new clips" in message and "bundle" in message
    exported = Path(ada.predict("jsonl", api_name="/export"))
    assert sha not in exported.read_text()
    probs, *_ = client_for(app).predict(handle_file(str(EXAMPLE)), "en", api_name="/predict")
    assert probs["label"]


def test_import_reads_no_server_file_and_answers_alike_for_present_and_missing(app, tmp_path):
    from gradio_client import handle_file

    ada = client_for(app, "ada")
    answers = []
    for target in ("/etc/hostname", "/etc/no-such-file-here"):
        real = Path(target)
        sha = hashlib.sha256(real.read_bytes()).hexdigest() if real.exists() else "0" * 64
        row = {
            "sha256": sha,
            "path": target,
            "language": "it",
            "source": "upload",
            "added_at": "2026-11-30T10:00:00+00:00",
        }
        (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n")
        answers.append(ada.predict(handle_file(str(tmp_path / "rows.jsonl")), api_name="/import"))
    assert answers[0] == answers[1] and "Imported 0 new clips" in answers[0]
    assert "/etc" not in answers[0]


@pytest.mark.parametrize(
    ("content", "suffix"),
    [("[1,2,3]\n", ".jsonl"), ("null\n", ".jsonl"), ("sha256,path\n" + "x" * 200_000 + "\n", ".csv")],
    ids=["list", "null", "huge-field"],
)
def test_malformed_imports_answer_with_a_message(app, tmp_path, content, suffix):
    from gradio_client import handle_file

    ada = client_for(app, "ada")
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    refused(lambda: ada.predict(handle_file(str(path)), api_name="/import"))


def test_absurd_clip_ids_answer_with_a_message(app):
    ada = client_for(app, "ada")
    assert "clip id" in refused(lambda: ada.predict(2**64, "anger", "ada", api_name="/label"))


def test_uploads_over_the_cap_are_refused(app, tmp_path):
    import httpx

    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(SR * 60 * 2, dtype="float32"), SR, subtype="FLOAT")  # 7.7 MB > 2 MB cap
    with big.open("rb") as handle:
        response = httpx.post(f"{app['url']}gradio_api/upload", files={"files": handle}, timeout=60)
    assert response.status_code == 413, response.text[:200]


@pytest.mark.browser
def test_a_browser_tab_logs_in_and_then_may_export(app):
    from browser import browser_page, wait_for_text

    with browser_page() as page:
        page.goto(app["url"])
        page.get_by_role("tab", name="Export").click()
        page.locator("#export-button").click()
        wait_for_text(page, "body", "log in to export", timeout=30)
        assert page.locator("#export-file a").count() == 0
        page.locator("#login-user input, #login-user textarea").first.fill("ada")
        page.locator("#login-password input").fill("ada-secret")
        page.locator("#login-button").click()
        wait_for_text(page, "#login-message", "Logged in as ada", timeout=30)
        page.locator("#export-button").click()
        page.wait_for_selector("#export-file a", timeout=60_000)
        assert re.search(r"serdemo-bundle-\d+T\d+\s*\.zip", page.locator("#export-file").inner_text())


def test_audio_and_zip_bombs_are_refused_quickly(app, tmp_path):
    from gradio_client import handle_file

    bomb = tmp_path / "bomb.flac"  # the probe's shape: 8 channels at 655 kHz, here 0.1 s of it
    sf.write(bomb, np.zeros((65_535, 8), dtype="int16"), 655_350, format="FLAC")
    start = time.perf_counter()
    assert "8 channels at 655350 Hz" in refused(
        lambda: client_for(app).predict(handle_file(str(bomb)), "en", api_name="/predict")
    )
    assert time.perf_counter() - start < 30
    archive = tmp_path / "zipbomb.zip"  # 70 MB of zeros in a 70 KB zip, under the 2 MB upload cap
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("big.wav", b"\0" * (70 << 20))
    message = refused(
        lambda: client_for(app, "ada").predict([handle_file(str(archive))], "it", api_name="/bulk_add")
    )
    assert "over 64 MB, the limit for one file" in message
    assert not list((app["data"] / "tmp").iterdir())  # nothing left unpacked
