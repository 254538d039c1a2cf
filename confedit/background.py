"""Work done in a thread while the main thread goes on.

Only for work that runs outside Python's lock, as libxml2's parsing and reading a file do:
Python code in two threads takes turns, it does not run at once. On a 100 MB file each such
pass takes tenths of a second, which the second of two CPUs can take off the wall time.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Final, Generic, TypeVar

T = TypeVar("T")

# The signals the main thread takes: Ctrl-C, SIGTERM and SIGHUP (see cli.py; Windows has no
# SIGHUP), which it may hold.
MAIN_THREAD_SIGNALS: Final = frozenset(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Background(Generic[T]):
    """`work()` started in a thread at once; result() waits for it and returns its value, or
    raises its exception (in the calling thread, where it can be handled)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._value: T | None = None
        self._failure: BaseException | None = None
        # A daemon: an interrupted main thread does not wait for it at the interpreter's exit.
        self._thread = threading.Thread(target=self._run, name="confedit-background", daemon=True)
        _start_without_signals(self._thread)

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as failure:  # raised again by result(), in the calling thread
            self._failure = failure

    def wait(self) -> None:
        """Wait for the work to end, whether it failed or not."""
        self._thread.join()

    def result(self) -> T:
        self.wait()
        if self._failure is not None:
            raise self._failure
        return self._value  # type: ignore[return-value]  # set: the work ended without failing


def _start_without_signals(thread: threading.Thread) -> None:
    """Start `thread` with MAIN_THREAD_SIGNALS blocked, which it keeps (a thread starts with its
    creator's mask). The kernel gives a process's signal to any thread that does not block it:
    while the main thread held them (files.signals_held), this one took them, and Python ran
    the handler in the main thread all the same, inside the held block (an interrupt between
    creating a temporary file and naming it left the file behind)."""
    if not hasattr(signal, "pthread_sigmask"):  # not on Windows
        thread.start()
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
