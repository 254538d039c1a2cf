"""confedit/__init__.py: the public names, loaded on first use."""

from __future__ import annotations

import subprocess
import sys


def test_public_names_stay_what_they_are_after_first_use():
    """Found by the README's example: the second `confedit.audit` was the confedit.audit
    module (bound by its import), no longer the audit() function."""
    code = (
        "import confedit\n"
        "first = confedit.audit\n"
        "assert confedit.audit is first and callable(first), confedit.audit\n"
        "assert confedit.offload is confedit.offload\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
