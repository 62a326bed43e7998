"""The annotator's loop as a new user lives it, in headless Chromium, from an empty data folder.

`python app.py --data-dir EMPTY` (the shipped source set, the default encoder) -> bulk-add a zip of clips
with the language `it` -> label them with keys and buttons in the same tab -> adapt -> read the target
accuracy with its interval beside the previous version's -> Explore with a chosen baseline, play a point.
A second browser tab acts while a round runs and sees messages, never component errors.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from browser import browser_page, running_app, wait_for_text

from serdemo.labels import EMOTIONS

pytestmark = [pytest.mark.browser, pytest.mark.corpora, pytest.mark.slow]

# EMO-DB's emotion letter -> our emotion (the file name is the gold label; see serdemo/corpora/emodb.py)
EMODB_LETTERS = {"W": "anger", "A": "fear", "F": "happiness", "N": "neutral", "T": "sadness"}
CLIPS_PER_EMOTION = 8  # 40 clips: a pool to label from and to pseudo-label, embedded in seconds (cache)
LANGUAGE = "it"  # a language the page did not know when it was built


def emodb_zip(root: Path, out: Path) -> Path:
    """A zip of a few EMO-DB clips per emotion, inside a folder, as a user would pack them."""
    picked: dict[str, list[Path]] = {e: [] for e in EMODB_LETTERS}
    for path in sorted(root.glob("*.flac")):
        letter = path.stem[5]
        if letter in picked and len(picked[letter]) < CLIPS_PER_EMOTION:
            picked[letter].append(path)
    with zipfile.ZipFile(out, "w") as archive:
        for paths in picked.values():
            for path in paths:
                archive.write(path, f"clips/{path.name}")
    return out


def gold(name: str) -> str:
    """The emotion an EMO-DB file name encodes (``03a01Fa.flac`` -> happiness)."""
    return EMODB_LETTERS[Path(name).stem[5]]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from conftest import corpus_dir

    emodb = corpus_dir("emodb")
    tmp = tmp_path_factory.mktemp("loop")
    data = tmp / "data"  # empty: nothing but what the user does in the browser
    log = tmp / "app.log"
    with running_app(["--data-dir", str(data)], log, timeout=240) as url:
        yield {"url": url, "zip": emodb_zip(emodb, tmp / "clips.zip"), "log": log}


@pytest.fixture(scope="module")
def page(app):
    with browser_page() as page:
        page.goto(app["url"])
        wait_for_text(page, "#status", "active", timeout=600)  # start-up trains the source-only model
        yield page


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def current_clip(page) -> tuple[str, str]:
    """(clip id, file name) of the clip on screen."""
    text = wait_for_text(page, "#label-suggestion", "Clip ")
    found = re.search(r"Clip (\d+): (\S+)", text)
    return found.group(1), found.group(2)


def labeled_count(page) -> int:
    return int(re.search(r"(\d+) labeled", page.locator("#label-progress").inner_text()).group(1))


def test_1_bulk_add_a_zip_in_a_new_language(page, app):
    open_tab(page, "Label")
    page.get_by_text("Bulk add clips to the target pool").click()
    page.locator("#bulk-files input[type=file]").set_input_files(str(app["zip"]))
    page.wait_for_selector("#bulk-files .file-preview", timeout=30_000)
    language = page.locator("#bulk-language input")
    language.fill(LANGUAGE)
    language.press("Enter")
    page.locator("#bulk-add").click()
    message = wait_for_text(page, "#bulk-message", "Added", timeout=240)
    assert f"Added {5 * CLIPS_PER_EMOTION} clips to the {LANGUAGE} pool" in message, message


def test_2_label_in_the_same_tab_with_keys_and_buttons(page):
    # the tab that created the pool shows the new language and a clip from it, and labels it
    wait_for_text(page, "#label-suggestion", "Clip ", timeout=60)
    assert page.locator("#label-language input").input_value() == LANGUAGE
    start = labeled_count(page)
    assert start == 0
    for i in range(12):  # enough labels for cross-validation; the file name tells the gold emotion
        clip, name = current_clip(page)
        emotion = gold(name)
        if i % 2:
            page.locator(f"#label-{emotion}").click()
        else:
            page.locator("body").click(position={"x": 5, "y": 5})  # focus off any field, as a user would
            page.keyboard.press(str(EMOTIONS.index(emotion) + 1))
        wait_for_text(page, "#label-progress", f"{start + i + 1} labeled", timeout=60)
        assert current_clip(page)[0] != clip
    assert "no clip on screen" not in page.content()
