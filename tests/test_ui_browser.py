"""The app end to end in headless Chromium: predict, label, adapt, explore, roll back; screenshots."""

from __future__ import annotations

import functools
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
from browser import browser_page, running_app, wait_for_text

from serdemo.labels import EMOTIONS

pytestmark = [pytest.mark.browser, pytest.mark.corpora, pytest.mark.slow]


@functools.cache
def screenshot_dir() -> Path:
    """A temporary folder, so a test run leaves the tree clean; made on first use, not at import.

    Refresh the committed ones with
    SERDEMO_SCREENSHOTS=docs/screenshots python -m pytest tests/test_ui_browser.py
    """
    return Path(os.environ.get("SERDEMO_SCREENSHOTS") or tempfile.mkdtemp(prefix="serdemo-screenshots-"))


# Enough clips per corpus for a model that is better than chance, few enough for a first start in
# minutes (embeddings are cached in ~/.cache/serdemo afterwards).
CORPUS_LIMIT = "150"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, request):
    from conftest import corpus_dir

    ravdess, emodb = corpus_dir("ravdess"), corpus_dir("emodb")
    tmp = tmp_path_factory.mktemp("app")
    args = [
        "--data-dir",
        str(tmp / "data"),
        "--source-corpus",
        f"ravdess={ravdess}",
        "--target-corpus",
        f"emodb={emodb}",
        "--corpus-limit",
        CORPUS_LIMIT,
    ]
    log = tmp / "app.log"
    with running_app(args, log, timeout=240) as url:
        request.node.app_log = log
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    screenshot_dir().mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.goto(app_url)
        # start-up (encoder, corpora, first model) runs behind the page; the status line says when it is done
        wait_for_text(page, "#status", "pool de:", timeout=900)
        page.reload()  # the language pickers fill on page load
        wait_for_text(page, "#status", "active", timeout=60)
        yield page


def shot(page, name: str) -> None:
    time.sleep(0.8)  # let plotly finish its transitions
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{path} is not a page screenshot"


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def current_clip(page) -> str:
    text = wait_for_text(page, "#label-suggestion", "Clip ")
    return re.search(r"Clip (\d+)", text).group(1)


def labeled_count(page) -> int:
    return int(re.search(r"(\d+) labeled", page.locator("#label-progress").inner_text()).group(1))


def test_1_predict_an_example(page):
    open_tab(page, "Predict")
    # nothing uploaded yet: the Predict button cannot fire on a missing or half-uploaded file
    assert page.locator("#predict-button").is_disabled()
    page.get_by_role("button", name="en · happy news").click()
    summary = wait_for_text(page, "#predict-summary", "Model version", timeout=120)
    found = re.search(rf"({'|'.join(EMOTIONS)}) \((\d+)%\)", summary)
    assert found, summary
    top, confidence = found.group(1), int(found.group(2))
    assert 100 / len(EMOTIONS) <= confidence <= 100  # the top class has at least the uniform share
    # the probability chart names the same top emotion
    assert top in page.locator("#predict-label").inner_text()
    assert page.locator("#predict-button").is_enabled()  # a complete clip is loaded now
    shot(page, "predict")

    page.get_by_role("button", name="en · long story").click()
    wait_for_text(page, "#predict-summary", "segments", timeout=120)
    page.wait_for_selector("#predict-timeline .main-svg", timeout=30_000)
    assert "Emotion over time" in page.locator("#predict-timeline").inner_text()
    shot(page, "predict-timeline")


def test_2_label_three_clips_with_buttons_and_keys(page):
    open_tab(page, "Label")
    first = current_clip(page)
    start = labeled_count(page)

    page.locator("#label-anger").click()
    wait_for_text(page, "#label-progress", f"{start + 1} labeled")
    second = current_clip(page)
    assert second != first

    page.locator("body").click(position={"x": 5, "y": 5})  # focus off any field, as a user would
    page.keyboard.press("2")  # fear
    wait_for_text(page, "#label-progress", f"{start + 2} labeled")
    page.keyboard.press("u")  # undo brings the fear clip back
    wait_for_text(page, "#label-progress", f"{start + 1} labeled")
    assert current_clip(page) == second
    page.keyboard.press("2")
    wait_for_text(page, "#label-progress", f"{start + 2} labeled")

    page.locator("#label-sadness").click()
    wait_for_text(page, "#label-progress", f"{start + 3} labeled")
    assert labeled_count(page) == start + 3
    shot(page, "label")


def test_3_adaptation_round_runs_to_completion(page):
    open_tab(page, "Adapt")
    page.get_by_label("Epochs E").fill("20")
    page.get_by_label("Re-label every W epochs").fill("5")
    page.locator("#adapt-start").click()
    result = wait_for_text(page, "#adapt-result", "New model", timeout=600)
    assert "target de, this version" in result and "previous version v1-" in result, result
    assert re.search(r"source \(held-out speakers\)\s+\d+\.\d%", result), result
    assert re.search(r"this version\s+\d+\.\d% \(95% CI \d+\.\d%-\d+\.\d%, n=\d+\)", result), result
    version = re.search(r"New model (v2-\w+) is active", result).group(1)
    # the versions table lists the new version (active) above the first one
    table = wait_for_text(page, "#versions", version)
    assert re.findall(r"v\d+-\w{6}", table)[:2] == [version, re.search(r"v1-\w{6}", table).group(0)], table
    wait_for_text(page, "#status", f"Model {version} active")
    shot(page, "adapt")


def test_4_explore_shows_both_projections_with_silhouettes(page):
    open_tab(page, "Explore")
    page.locator("#explore-draw").click()
    wait_for_text(page, "#explore-message", "clips", timeout=180)
    for plot in ("#explore-before", "#explore-after"):
        page.wait_for_selector(f"{plot} .gtitle", timeout=30_000)
        title = page.locator(f"{plot} .gtitle").text_content()
        assert re.search(r"silhouette.*emotion -?\d\.\d\d.*language -?\d\.\d\d", title), title
    assert "Before: model v1" in page.locator("#explore-before .gtitle").text_content()
    # Gradio 6's gr.Plot has no click event: a point is played by picking its id next to the plot
    page.locator("#explore-clip input").click()
    page.get_by_role("option").first.click()
    wait_for_text(page, "#explore-audio", "0:0", timeout=30)
    shot(page, "explore")


def test_5_roll_back_to_the_first_version(page):
    open_tab(page, "Adapt")
    page.locator("#version-choice input").click()
    option = page.get_by_role("option", name=re.compile(r"^v1-"))
    first = option.inner_text().strip()
    option.click()
    page.locator("#version-activate").click()
    wait_for_text(page, "#activate-message", f"{first} is active now")
    wait_for_text(page, "#status", f"Model {first} active")
    shot(page, "rollback")

    open_tab(page, "Predict")
    page.get_by_role("button", name="de · angry tuer").click()
    wait_for_text(page, "#predict-summary", f"Model version {first}", timeout=120)


def test_6_export_tab(page):
    open_tab(page, "Export")
    page.locator("#export-format").get_by_label("csv").check()  # the default is a bundle (.zip)
    page.locator("#export-button").click()
    page.wait_for_selector("#export-file a", timeout=60_000)
    assert re.search(r"labels-\d+T\d+\s*\.csv", page.locator("#export-file").inner_text())
    shot(page, "export")
