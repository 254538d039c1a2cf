"""background.py: work in a thread, its value or its exception back in the caller's."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from confedit.background import Background
from confedit.files import signals_held


def test_the_value_comes_back_from_the_thread() -> None:
    ran_in: list[threading.Thread] = []

    def work() -> int:
        ran_in.append(threading.current_thread())
        return 42

    assert Background(work).result() == 42
    assert ran_in and ran_in[0] is not threading.current_thread()


def test_the_exception_is_raised_in_the_caller_and_wait_does_not_raise() -> None:
    def work() -> None:
        raise ValueError("malformed")

    background = Background(work)
    background.wait()  # the work ended; its failure is for result()
    with pytest.raises(ValueError, match="malformed"):
        background.result()


def test_the_work_runs_while_the_caller_goes_on() -> None:
    started, release = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        assert release.wait(10)
        return "done"

    background = Background(work)
    assert started.wait(10)  # running before anyone asked for its result
    release.set()
    assert background.result() == "done"


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_a_signal_held_by_the_main_thread_waits_for_it_while_the_work_runs() -> None:
    """Ctrl-C and SIGTERM are the main thread's to take. While it held them (files.
    signals_held, around creating a temporary file), a thread that does not block them took the
    signal, and Python ran the handler in the main thread inside the held block: an interrupt
    between creating a temporary file and naming it left the file behind (a large input is read
    again in a thread while its outputs are written)."""
    taken: list[tuple[int, bool]] = []  # each signal, and whether it came inside the block
    inside = False

    def handler(signum: int, frame: object) -> None:
        del frame
        taken.append((signum, inside))

    release = threading.Event()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        background = Background(lambda: release.wait(10))
        with signals_held():
            inside = True
            os.kill(os.getpid(), signal.SIGINT)
            release.set()
            assert background.result()
            inside = False
        # Python runs the handler at its next check: the call below, at the latest
        assert taken == [(signal.SIGINT, False)]
    finally:
        signal.signal(signal.SIGINT, previous)
