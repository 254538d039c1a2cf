"""The `confedit` command's entry point: loads the command line, then runs it.

Loading click and confedit takes a few tens of milliseconds. A Ctrl-C meanwhile would end in a
traceback of whatever was being imported (or, caught by an import, be lost and let the run go
on). Nothing has been read or written yet, so it ends the process at once, with the shell's
code for an interrupt (130), until the command line's own handling takes over.
"""

from __future__ import annotations

import os
import signal
import types


def _interrupted_while_loading(signum: int, frame: types.FrameType | None) -> None:
    del frame
    os._exit(128 + signum)


def main() -> None:
    previous = signal.signal(signal.SIGINT, _interrupted_while_loading)
    from confedit.cli import main as command_line  # noqa: PLC0415 - the point of this module

    signal.signal(signal.SIGINT, previous)
    command_line()
