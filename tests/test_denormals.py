import threading

import pytest
import torch

from serdemo.learn.denormals import SUBNORMAL, denormals_flushed, flushing_denormals

# set_flush_denormal(False) says whether this CPU can flush (x86 with SSE3, AArch64) and leaves it off
CAN_FLUSH = torch.set_flush_denormal(False)
pytestmark = pytest.mark.skipif(not CAN_FLUSH, reason="this CPU cannot flush subnormals")


def test_flushing_zeroes_subnormals_in_the_block_only_and_keeps_normal_numbers():
    subnormal = torch.full((8,), SUBNORMAL)
    assert not denormals_flushed()
    assert bool((subnormal * 1.0 != 0).all())
    with flushing_denormals():
        assert denormals_flushed()
        assert bool((subnormal * 1.0 == 0).all())
        assert (torch.tensor([1e-37]) * 2.0).item() == torch.tensor([2e-37]).item()  # smallest normals stay
    assert not denormals_flushed()
    assert bool((subnormal * 1.0 != 0).all())


def test_a_round_thread_flushing_leaves_the_server_threads_arithmetic_alone():
    # the app runs a round in a worker thread while the server thread keeps predicting
    entered, release, inside = threading.Event(), threading.Event(), []

    def round_thread():
        with flushing_denormals():
            inside.append(denormals_flushed())
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=round_thread)
    worker.start()
    try:
        assert entered.wait(10)
        assert not denormals_flushed()
    finally:
        release.set()
        worker.join()
    assert inside == [True]
