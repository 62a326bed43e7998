"""Issue 10 item 7 / issue 11: a bundle exported in one app's page imports into another, empty app's page.

Two ``python app.py`` instances with their own fresh data folders (the shipped source set, no corpora),
driven by headless Chromium: export a bundle from the first, import it into the second, and the
second app has the clips, their audio and the labels.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser import ROOT, browser_page, running_app, wait_for_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXAMPLE = ROOT / "assets" / "examples" / "en_angry_kids.flac"
SR = 16_000


def wait_until_ready(url: str, timeout: float = 600) -> None:
    """Predict answers once start-up (encoder, first model) is done."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.predict(handle_file(str(EXAMPLE)), "en", api_name="/predict")
            return
        except AppError as error:
            if "starting" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def test_a_bundle_travels_from_one_app_to_an_empty_one_through_the_page(tmp_path):
    from gradio_client import Client, handle_file

    clips = []
    for i, freq in enumerate((220.0, 330.0, 440.0)):
        t = np.arange(int(1.0 * SR)) / SR
        clips.append(tmp_path / f"voce{i}.wav")
        sf.write(clips[-1], (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    env = {"OMP_NUM_THREADS": "1"}
    first_args = ["--data-dir", str(tmp_path / "first")]
    with running_app(first_args, tmp_path / "first.log", env=env) as first_url:
        wait_until_ready(first_url)
        first = Client(first_url, verbose=False)
        message = first.predict([handle_file(str(c)) for c in clips], "it", api_name="/bulk_add")
        assert "Added 3 clips" in message
        first.predict(1, "anger", "ada", api_name="/label")
        first.predict(2, "sadness", "ada", api_name="/label")
        with browser_page() as page:
            page.goto(first_url)
            page.get_by_role("tab", name="Export").click()
            page.locator("#export-format").get_by_label("bundle").check()
            page.locator("#export-button").click()
            link = page.wait_for_selector("#export-file a", timeout=60_000)
            assert re.search(r"serdemo-bundle-\d+T\d+\s*\.zip", page.locator("#export-file").inner_text())
            with page.expect_download() as download:
                link.click()
            bundle = tmp_path / "bundle.zip"
            download.value.save_as(bundle)
    assert bundle.stat().st_size > sum(c.stat().st_size for c in clips)  # the audio travels

    with running_app(
        ["--data-dir", str(tmp_path / "second")], tmp_path / "second.log", env=env
    ) as second_url:
        wait_until_ready(second_url)
        with browser_page() as page:
            page.goto(second_url)
            page.get_by_role("tab", name="Export").click()
            page.locator("#import-file input[type=file]").set_input_files(str(bundle))
            page.wait_for_selector("#import-file a", timeout=60_000)  # upload finished
            page.locator("#import-button").click()
            text = wait_for_text(page, "#import-message", "Imported", timeout=120)
            assert "Imported 3 new clips and 2 new labels" in text, text
        exported = Path(Client(second_url, verbose=False).predict("jsonl", api_name="/export"))
        records = [json.loads(line) for line in exported.read_text().splitlines()]
        labels = sorted((r["original_name"], r["emotion"], r["annotator"]) for r in records if r["label_uid"])
        assert labels == [("voce0.wav", "anger", "ada"), ("voce1.wav", "sadness", "ada")]
        assert all(r["duration"] == pytest.approx(1.0) for r in records)
