"""One long-lived thread that runs the model work of the app's interactive calls.

Why a thread of its own: torch's CPU operators run on OpenMP, and libgomp keeps a team of worker threads
for every thread that has called into it, for as long as that thread lives. Gradio and the HTTP route
call the service from a pool of long-lived worker threads. Once two of them had run the encoder, there
were more OpenMP threads than the 2 cores, libgomp stopped spinning between parallel regions (it
throttles when it has more threads than CPUs), and every prediction took ~90 ms instead of ~56 ms, on
any thread, until those threads ended (``python bench/thread_teams.py``). Running predictions, pool
embedding and the head's scoring here keeps one team. It also serialises them: one forward pass at a
time, which is what 2 cores allow anyway.

Adaptation rounds train for seconds to minutes, so they do not queue here: the service runs each in a
thread that ends with the round (:func:`in_passing_thread`), and its team with it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class ModelThread:
    """Runs callables on one worker thread, in the order they arrive; re-entrant from that thread.

    Example:
        >>> worker = ModelThread()
        >>> worker.run(lambda: threading.current_thread().name).startswith("serdemo-model")
        True
        >>> worker.run(lambda: worker.run(lambda: 2 + 2))  # a call from the thread itself runs inline
        4

    """

    def __init__(self, name: str = "serdemo-model") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._ident: int | None = None

    def run(self, work: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``work(*args, **kwargs)`` on the model thread; its result, or its exception re-raised here."""
        if threading.get_ident() == self._ident:
            return work(*args, **kwargs)  # already on it: queueing behind ourselves would deadlock
        context = contextvars.copy_context()  # e.g. Gradio's progress tracking lives in context vars
        return self._executor.submit(context.run, self._marked, work, *args, **kwargs).result()

    def _marked(self, work: Callable[..., T], *args: object, **kwargs: object) -> T:
        self._ident = threading.get_ident()
        return work(*args, **kwargs)


def in_passing_thread(
    work: Callable[..., T], *args: object, name: str = "serdemo-round", **kwargs: object
) -> T:
    """``work(*args, **kwargs)`` in a new thread that ends when it returns; its result or exception.

    For long model work (training): its OpenMP team ends with the thread instead of staying beside the
    model thread's for the life of the process. Context variables (Gradio's progress) go with it.
    """
    context = contextvars.copy_context()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = context.run(work, *args, **kwargs)
        except BaseException as error:  # noqa: BLE001  (re-raised in the caller's thread below)
            outcome["error"] = error

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
