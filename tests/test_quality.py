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


def test_every_mutation_of_the_mutation_check_still_applies():
    """tests/mutation_check.py breaks the engine by replacing exact lines; when the engine
    changes under one of them, the check stops at that mutation. This keeps it usable."""
    from tests.mutation_check import MUTATIONS

    for name, changes in MUTATIONS.items():
        for path, old, _ in changes:
            text = (REPO / path).read_text(encoding="utf-8")
            assert text.count(old) == 1, f"mutation {name!r}: {old!r} is not once in {path}"
