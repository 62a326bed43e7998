import threading

import numpy as np
import pytest

from serdemo import warmup


def test_warm_up_waits_for_start_up_then_compiles_and_logs(monkeypatch):
    order = []
    monkeypatch.setattr(warmup, "warm_projection", lambda: order.append("warm") or 1.5)
    ready = threading.Event()
    lines = []
    thread = warmup.warm_in_background(wait=lambda: order.append("wait") or ready.wait(5), log=lines.append)
    assert thread.daemon
    ready.set()
    thread.join(5)
    assert order == ["wait", "warm"]
    assert lines == ["UMAP compiled in the background in 1.5 s"]


def test_a_failed_warm_up_is_logged_and_harmless(monkeypatch):
    def broken():
        raise RuntimeError("no numba here")

    monkeypatch.setattr(warmup, "warm_projection", broken)
    lines = []
    warmup.warm_in_background(log=lines.append).join(5)
    assert lines and "no numba here" in lines[0] and "first UMAP will compile" in lines[0]


@pytest.mark.slow  # compiles numba: tens of seconds
def test_warm_projection_runs_a_real_umap(monkeypatch):
    calls = []
    from serdemo import projection

    real = projection.project
    monkeypatch.setattr(projection, "project", lambda *a, **k: calls.append(k.get("dims")) or real(*a, **k))
    monkeypatch.setattr(warmup, "WARMUP_POINTS", 12)
    assert warmup.warm_projection() > 0
    assert calls == [2, 3]
    assert np.isfinite(real(np.eye(12, 16), "umap")).all()
