"""confedit/__init__.py: the public names, loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import confedit


def test_public_names_stay_what_they_are_after_first_use():
    """Found by the README's example: `confedit.audit` once became the module of the same name
    when that was imported. The module is now confedit.auditing, whatever is imported first."""
    code = (
        "import confedit\n"
        "from confedit.auditing import render_table\n"
        "import confedit.engine\n"
        "first = confedit.audit\n"
        "assert confedit.audit is first and callable(first), confedit.audit\n"
        "assert callable(confedit.offload) and confedit.offload is confedit.offload\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_dir_lists_the_public_names_before_their_first_use():
    """Tab completion and help() read dir(): it listed `Any` and `importlib`, not `offload`."""
    code = "import confedit\nprint(' '.join(name for name in dir(confedit) if name[0] != '_'))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == sorted(confedit.__all__)
