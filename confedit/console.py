"""The `confedit` command's entry point: loads the command line, then runs it.

Loading click and confedit takes a few tens of milliseconds. A Ctrl-C meanwhile would end in a
traceback of whatever was being imported (or, caught by an import, be lost and let the run go
on). Nothing has been read or written yet, so it ends the process at once, with the shell's
code for an interrupt (130), until the command line's own handling takes over. (Python's own
start-up, before this module runs, is Python's: an interrupt there ends as Python ends it.)
A process started with Ctrl-C ignored (`cmd &` in a script) keeps ignoring it.

Once the command is done, the process ends at once (see quick_exit).
"""

from __future__ import annotations

import os
import signal
import types


def _interrupted_while_loading(signum: int, frame: types.FrameType | None) -> None:
    del frame
    os._exit(128 + signum)


def main() -> None:
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    previous = None if ignored else signal.signal(signal.SIGINT, _interrupted_while_loading)
    from confedit import quick_exit  # noqa: PLC0415 - the point of this module
    from confedit.cli import main as command_line  # noqa: PLC0415

    if previous is not None:
        signal.signal(signal.SIGINT, previous)
    quick_exit.start()
    try:
        command_line()
    except SystemExit as done:
        quick_exit.end(done.code)
    quick_exit.end(0)
