"""How the `confedit` command ends: at once, leaving its memory to the operating system.

A normal interpreter exit frees every object and module one by one: about 30 ms after any run
(lxml's, click's and confedit's modules), and about 0.1 s more after a 100 MB file (its tree and
two copies of its bytes). The command's work is complete by then, so the console entry point
ends the process with os._exit, as mypy does. It takes the normal exit instead whenever the
quick one could lose something: a thread or child process still running, a standard stream that
does not flush, an exit status that is not a number. Exit handlers (atexit) run either way.

keep() is how a command leaves the objects it would otherwise free on its way out to the end of
the process. Outside the console entry point (the library, a test calling the click command in
its own process) nothing is kept.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

_kept: list[object] | None = None  # None: not ending quickly, keep() keeps nothing


def start() -> None:
    """From now on keep() keeps: the process will end through end()."""
    global _kept  # noqa: PLW0603 - one per process, like the process's end itself
    _kept = []


def keep(*objects: object) -> None:
    """Free `objects` only at the end of the process (then by not freeing them at all)."""
    if _kept is not None:
        _kept.extend(objects)


def end(status: object) -> NoReturn:
    """End the process with `status` (a SystemExit's code): quickly if nothing can be lost."""
    if (status is not None and type(status) is not int) or not _alone():
        raise SystemExit(status)  # printed, or waited for, as Python does
    run_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's; others end normally
    if run_handlers is None or not _flushed():
        raise SystemExit(status)  # Python reports the stream's error, as it would have
    run_handlers()  # they are then cleared: a normal exit after this one does not rerun them
    if not _flushed():  # what a handler printed
        raise SystemExit(status)
    os._exit(status or 0)


def _flushed() -> bool:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: the descriptor was closed when Python started
                stream.flush()
    except (OSError, ValueError):  # a full disk, a closed pipe; or a stream closed since
        return False
    return True


def _alone() -> bool:
    """Whether the main thread is all that runs: no other thread, no child process."""
    if threading.active_count() > 1:
        return False
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing is None or not multiprocessing.active_children()
