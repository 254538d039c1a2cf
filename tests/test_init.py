"""confedit/__init__.py: the public names, loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import confedit
from tests.conftest import SAMPLE


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


def test_every_type_a_result_or_an_error_hands_out_is_public():
    """A pipeline reads result.outcomes and result.findings, and maps errors to exit codes:
    their types are importable from `confedit` itself, and each public name resolves."""
    for name in ("Outcome", "Finding", "ExitCode", "AuditReport", "Result", "Request"):
        assert name in confedit.__all__
    for name in confedit.__all__:
        assert getattr(confedit, name) is not None
    result = confedit.offload(SAMPLE.read_bytes())
    assert all(isinstance(outcome, confedit.Outcome) for outcome in result.outcomes)
    assert all(isinstance(finding, confedit.Finding) for finding in result.findings)
    assert confedit.InvalidInput("x").exit_code is confedit.ExitCode.INVALID_INPUT
