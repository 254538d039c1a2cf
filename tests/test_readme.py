"""The README's Python examples run as written, as a user would run them, and pass
`mypy --strict`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE


def example(section: str) -> str:
    """The first Python block of the README's section of that title."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    text = readme.split(f"## {section}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_the_property_testing_example_in_the_readme_passes(tmp_path):
    code = example("Property-testing your own configs")
    assert 10 <= len(code.strip().splitlines()) <= 22
    (tmp_path / "test_policies.py").write_text(code, encoding="utf-8")
    proc = run_python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_policies.py", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_the_library_example_in_the_readme_writes_the_patched_file_and_its_diff(tmp_path):
    (tmp_path / "example.py").write_text(example("The Python library"), encoding="utf-8")
    shutil.copyfile(SAMPLE, tmp_path / "applicationHost.config")
    proc = run_python("example.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        "Default Web Site/owa inserted was: Ssl, Ssl128",
        "Default Web Site/ecp inserted was: Ssl, Ssl128",
    ]
    patched = (tmp_path / "patched.config").read_bytes()
    assert (
        patched.count(b'<access sslFlags="None" />')
        == SAMPLE.read_bytes().count(b'<access sslFlags="None" />') + 2
    )
    diff = (tmp_path / "offload.diff").read_bytes()
    assert diff.startswith(b"--- a/applicationHost.config\n+++ b/applicationHost.config\n")


def test_the_library_example_in_the_readme_stops_on_bad_input_as_the_cli_does(tmp_path):
    (tmp_path / "example.py").write_text(example("The Python library"), encoding="utf-8")
    (tmp_path / "applicationHost.config").write_bytes(b"<configuration>")
    proc = run_python("example.py", cwd=tmp_path)
    assert proc.returncode == 4
    [line] = proc.stderr.splitlines()
    assert line.startswith("applicationHost.config:1:")
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "applicationHost.config",
        "example.py",
    ]


@pytest.mark.parametrize("section", ["The Python library", "Property-testing your own configs"])
def test_the_readme_s_python_examples_pass_mypy_strict(tmp_path, section):
    (tmp_path / "example.py").write_text(example(section), encoding="utf-8")
    # confedit as its own source (the editable install hides it from mypy), with the repository's
    # settings: strict, and xmldiff without stubs. An installed wheel ships py.typed.
    env = {**os.environ, "MYPYPATH": str(REPO)}
    config = str(REPO / "pyproject.toml")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", config, "--strict", "example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
