"""The app's model thread: interactive model work on one thread, rounds in threads that end with them."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import soundfile as sf

from serdemo.app.model_thread import ModelThread, in_passing_thread
from serdemo.app.views import AdaptRequest
from tests.test_service import PITCH, SR, make_service, tone

REQUEST = contextvars.ContextVar("request", default=None)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return make_service(tmp_path_factory.mktemp("model-thread"))


def test_work_runs_on_one_thread_whoever_asks():
    worker = ModelThread()
    with ThreadPoolExecutor(4) as callers:
        names = set(callers.map(lambda _: worker.run(lambda: threading.current_thread().name), range(12)))
    assert len(names) == 1 and names.pop().startswith("serdemo-model")


def test_errors_reach_the_caller_and_the_thread_survives_them():
    worker = ModelThread()
    with pytest.raises(ZeroDivisionError):
        worker.run(lambda: 1 / 0)
    assert worker.run(lambda x, y=0: x + y, 2, y=3) == 5


def test_a_call_from_the_model_thread_runs_inline_instead_of_deadlocking():
    worker = ModelThread()
    assert worker.run(lambda: worker.run(lambda: threading.current_thread().name)).startswith("serdemo-model")


def test_context_variables_go_with_the_work():
    # Gradio keeps an event's progress tracking in context variables; a round reports through them.
    worker, token = ModelThread(), REQUEST.set("event-7")
    try:
        assert worker.run(REQUEST.get) == "event-7"
        assert in_passing_thread(REQUEST.get) == "event-7"
    finally:
        REQUEST.reset(token)


def test_a_passing_thread_returns_raises_and_ends():
    seen: list[threading.Thread] = []

    def work(x):
        seen.append(threading.current_thread())
        return x * 2

    assert in_passing_thread(work, 21, name="serdemo-test-round") == 42
    assert seen[0].name == "serdemo-test-round" and not seen[0].is_alive()
    with pytest.raises(KeyError, match="gone"):
        in_passing_thread(lambda: {}["gone"])


def test_predictions_from_any_thread_embed_on_the_model_thread(service, tmp_path, monkeypatch):
    """The point of it all: one OpenMP team, whichever Gradio or HTTP worker serves the request."""
    encoder, threads = service.ws.encoder, []
    embed = encoder.embed

    def recording_embed(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return embed(*args, **kwargs)

    monkeypatch.setattr(encoder, "embed", recording_embed)
    noisy = [tmp_path / f"clip-{i}.wav" for i in range(3)]
    for i, path in enumerate(noisy):  # new audio each time, so the embedding cache cannot answer
        sf.write(path, tone(PITCH["sadness"], 1.5, seed=i), SR)
    with ThreadPoolExecutor(3) as callers:
        tops = list(callers.map(lambda path: service.predict(path).top, noisy))
    assert len(tops) == 3 and len(threads) == 3
    assert all(name.startswith("serdemo-model") for name in threads), threads


def test_a_round_trains_in_a_thread_that_ends_with_it(service, monkeypatch):
    from serdemo.app import rounds

    ran_on: list[threading.Thread] = []
    real_adapt = rounds.adapt

    def recording_adapt(*args, **kwargs):
        ran_on.append(threading.current_thread())
        return real_adapt(*args, **kwargs)

    monkeypatch.setattr(rounds, "adapt", recording_adapt)
    report = service.adapt(AdaptRequest(language="de", policy="none", epochs=4, window=2))
    assert report.version_id
    assert ran_on[0] is not threading.current_thread() and ran_on[0].name == "serdemo-round"
    assert not ran_on[0].is_alive()
