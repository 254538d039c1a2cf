"""console.py: the command's entry point, while Python is still loading confedit."""

from __future__ import annotations

import signal
import subprocess
import sys
from importlib.metadata import entry_points

from tests.helpers import as_at_a_terminal

# Ctrl-C arrives while click is being imported (the moment is made certain by sending it from
# the import itself): the run must end with 130, not a traceback of the import, nor go on.
INTERRUPTED_WHILE_LOADING = """
import builtins, os, signal
real_import = builtins.__import__
def import_(name, *args, **kwargs):
    if name == "click":
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = import_
from confedit.console import main
main()
print("went on")
"""


def test_ctrl_c_while_loading_exits_130_without_a_traceback():
    proc = subprocess.run(
        as_at_a_terminal([sys.executable, "-c", INTERRUPTED_WHILE_LOADING, "--version"]),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == proc.stderr == b""


def test_the_installed_command_starts_here():
    (script,) = entry_points(group="console_scripts", name="confedit")
    assert script.value == "confedit.console:main"


def test_ctrl_c_ignored_by_the_parent_stays_ignored():
    """`confedit ... &` in a script starts it with SIGINT ignored: the terminal's Ctrl-C is
    not for it."""
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WHILE_LOADING, "--version"],
        capture_output=True,
        check=False,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"confedit, version 0.1.0\n"
