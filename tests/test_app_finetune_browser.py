"""The Adapt tab's fine-tune option and Cancel button in headless Chromium (a tiny Whisper, CPU opt-in)."""

from __future__ import annotations

import importlib
import re
import time

import pytest
import torch
from browser import browser_page, wait_for_text

from serdemo.app.local_server import served
from serdemo.learn.finetune import ALLOW_CPU_ENV
from tests.test_service import make_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_finetune_round_started_in_the_browser_can_be_cancelled(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    service = make_service(tmp_path, allow_cpu_finetune=True)
    first = service.store.active_version().id
    adapt_module = importlib.import_module("serdemo.learn.adapt")  # the module: the package exports adapt()
    train_epoch = adapt_module._train_epoch

    def slow_epoch(*args, **kwargs):
        # The tiny encoder trains an epoch in ~2 ms, so the round could end before Cancel arrives. Its
        # pool is small (no pseudo-labels), so early stopping may end it after ~30 epochs: at 0.3 s an
        # epoch that is ~10 s, long enough for the click to land mid-round on a slow machine too.
        time.sleep(0.3)
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(adapt_module, "_train_epoch", slow_epoch)
    with served(service) as url, browser_page() as page:
        page.goto(url)
        wait_for_text(page, "#status", "active", timeout=120)
        page.get_by_role("tab", name="Adapt").click()
        option = page.locator("#adapt-finetune")
        assert "takes hours" in option.inner_text()  # the opt-in says what it costs on this CPU
        option.locator("input").check()
        # long enough to still run when Cancel arrives: early stopping waits for the first pseudo-labels
        page.get_by_label("Epochs E").fill("400")
        page.get_by_label("Re-label every W epochs").fill("150")
        page.locator("#adapt-start").click()
        wait_for_text(page, "#status", "fine-tuning the encoder, epoch", timeout=120)  # it trains the encoder
        # the round trains in a thread of its own (serdemo/app/model_thread.py): its progress still reaches
        # this page's progress bar, over the round's result
        wait_for_text(page, "#adapt-result", "fine-tuning the encoder, epoch", timeout=30)
        page.locator("#adapt-cancel").click()
        wait_for_text(page, "#adapt-cancel-message", "Cancelling the round", timeout=60)
        result = wait_for_text(page, "#adapt-result", "Round cancelled", timeout=120)
        assert f"model {first} stays active" in result
        assert not re.search(r"^Error$", page.locator("#adapt-result").inner_text(), re.M)
    assert service.store.active_version().id == first and len(service.store.model_versions()) == 1
