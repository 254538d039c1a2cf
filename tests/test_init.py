"""confedit/__init__.py: the public names, loaded on first use."""

from __future__ import annotations

import subprocess
import sys


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
