"""quick_exit.py: the command ends at once, unless something could be lost by it.

Each case runs in a process of its own: os._exit would end the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

from confedit import quick_exit


def ended(script: str) -> subprocess.CompletedProcess[bytes]:
    """`script` run after quick_exit.start(), with stdout buffered as Python buffers a pipe."""
    code = "from confedit import quick_exit\nquick_exit.start()\n" + textwrap.dedent(script)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=False, timeout=60, env=env
    )


def test_the_status_and_what_is_buffered_on_stdout_come_out() -> None:
    proc = ended("""
        import sys
        sys.stdout.write("no line end")  # still in the buffer
        quick_exit.end(3)
    """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, b"no line end", b"")


def test_exit_handlers_run() -> None:
    proc = ended("""
        import atexit
        atexit.register(print, "handler ran")
        quick_exit.end(None)
    """)
    assert (proc.returncode, proc.stdout) == (0, b"handler ran\n")


def test_a_running_thread_is_waited_for_as_a_normal_exit_does() -> None:
    proc = ended("""
        import threading, time
        def late():
            time.sleep(0.3)
            print("thread done")
        threading.Thread(target=late).start()
        quick_exit.end(5)
    """)
    assert (proc.returncode, proc.stdout) == (5, b"thread done\n")


def test_a_running_child_process_is_waited_for_as_a_normal_exit_does(tmp_path: Path) -> None:
    mark = tmp_path / "child-done"
    proc = ended(f"""
        import multiprocessing, os, pathlib, time
        def late():
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the test waits for the parent only
            os.dup2(1, 2)
            time.sleep(0.3)
            pathlib.Path({str(mark)!r}).write_text("done")
        if __name__ == "__main__":
            multiprocessing.get_context("fork").Process(target=late).start()
            quick_exit.end(0)
    """)
    assert proc.returncode == 0, proc.stderr
    assert mark.read_text() == "done"


def test_a_status_that_is_not_a_number_is_printed_as_python_prints_it() -> None:
    proc = ended('quick_exit.end("cannot go on")')
    assert (proc.returncode, proc.stderr) == (1, b"cannot go on\n")


def test_stdout_that_cannot_be_flushed_ends_as_a_normal_exit_ends() -> None:
    """Data left in stdout's buffer that cannot be written (the reader is gone): Python says
    so and exits 120; a quick exit would drop the data and say 0."""
    proc = ended("""
        import os, sys
        read, write = os.pipe()
        os.dup2(write, 1)
        os.close(read)
        sys.stdout.write("lost")
        quick_exit.end(0)
    """)
    assert proc.returncode == 120
    assert b"BrokenPipeError" in proc.stderr


def test_nothing_is_kept_outside_the_command() -> None:
    """The library and in-process tests never start(): keep() must not hold their objects."""

    class Big:
        pass

    big = Big()
    gone = weakref.ref(big)
    quick_exit.keep(big)
    del big
    assert gone() is None


def test_what_is_kept_is_left_to_the_end_of_the_process() -> None:
    proc = ended("""
        class Noisy:
            def __del__(self):
                print("freed")
        quick_exit.keep(Noisy())
        quick_exit.end(0)
    """)
    assert (proc.returncode, proc.stdout) == (0, b"")


@pytest.mark.parametrize("args", [["--version"], ["offload", "--help"]])
def test_the_entry_point_ends_through_it(args: list[str]) -> None:
    """The entry point ends the process itself; an exit handler registered before it (as a
    sitecustomize module may) still runs."""
    code = (
        "import atexit, sys; atexit.register(print, 'handler ran', file=sys.stderr); "
        "from confedit.console import main; sys.argv[0] = 'confedit'; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, check=False, timeout=60
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith((b"confedit, version", b"Usage: confedit offload"))
    assert proc.stderr == b"handler ran\n"
