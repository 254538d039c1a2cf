"""The code stays as strict as pyproject.toml says: ruff and mypy run with the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import REPO


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff")
    assert ruff, "ruff comes with the test extra"
    proc = subprocess.run(
        [ruff, "check", "confedit", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_finds_nothing():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
