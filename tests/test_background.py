"""background.py: work in a thread, its value or its exception back in the caller's."""

from __future__ import annotations

import threading

import pytest

from confedit.background import Background


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
