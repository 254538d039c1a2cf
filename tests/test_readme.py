"""The README's examples run as written, as a user would run them: the Python ones pass
`mypy --strict`, and the CI job's steps gate a pull request and post its comment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXCHANGE, REPO, SAMPLE, run
from tests.helpers import git_env


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


def test_the_library_example_in_the_readme_prints_a_refusal_as_the_cli_does(tmp_path, confedit_exe):
    # The example's comment said "one line": a refusal for two reasons prints three, as the CLI.
    locked = SAMPLE.read_bytes().replace(
        b'<access sslFlags="Ssl, Ssl128" />',
        b'<access sslFlags="Ssl, Ssl128" lockAttributes="sslFlags" />',
        1,
    )
    protected = locked.replace(
        b'<windowsAuthentication enabled="false" />',
        b'<windowsAuthentication enabled="false"><extendedProtection tokenChecking="Require" />'
        b"</windowsAuthentication>",
        1,
    )
    (tmp_path / "applicationHost.config").write_bytes(protected)
    code = example("The Python library")
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    proc = run_python("example.py", cwd=tmp_path)
    cli = subprocess.run(
        [confedit_exe, "offload", "--service", "owa", "--service", "ecp", "applicationHost.config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, cli.returncode) == (3, 3)
    assert proc.stderr == cli.stderr
    assert proc.stderr.startswith("applicationHost.config: refused for 2 reasons:\n  - ")
    comment = next(line for line in code.splitlines() if "print(error" in line)
    assert "one line" not in comment or len(proc.stderr.splitlines()) == 1, comment


def test_the_readme_s_diff_section_shows_what_offload_prints_for_the_sample(confedit_exe):
    """The section "The diff" shows output: the parts of its diff excerpt (between `...`) are
    printed in that order (the sample's lines end in CRLF, shown as lines), and its stderr is
    the whole of it. The stderr block left out four of the seven target lines, a warning and
    the summary, with one `...` among them, below "one line per target, then warnings and a
    summary"."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## The diff\n", 1)[1]
    diff_excerpt = re.search(r"```diff\n(.*?)```", section, re.S).group(1)
    stderr_shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    proc = run(confedit_exe, "offload", "samples/exchange2013-cas.applicationHost.config")
    assert proc.returncode == 0
    assert proc.stderr.decode() == stderr_shown
    parts = diff_excerpt.split("...\n")
    assert len(parts) == 3
    diff, start = proc.stdout.decode().replace("\r\n", "\n"), 0
    for part in parts:
        start = diff.index(part, start) + len(part)  # ValueError: not printed, or not in order


def test_the_readme_s_audit_table_is_what_audit_prints_for_that_export(tmp_path, confedit_exe):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```text\n\$ confedit audit (\S+)\n(.*?)```", readme, re.S)
    name, table = block.group(1), block.group(2)
    shutil.copyfile(EXCHANGE / name, tmp_path / name)
    proc = run(confedit_exe, "audit", name, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert proc.stdout.decode() == table


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


def workflow_steps() -> dict[str, str]:
    """The `run` scripts of the README's GitHub Actions workflow, by step name."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"```yaml\n(# \.github/workflows/confedit\.yml\n.*?)^```$", readme, re.S | re.M
    )
    steps = yaml.safe_load(block.group(1))["jobs"]["ssl-offloading"]["steps"]
    return {step["name"]: step["run"] for step in steps if "name" in step}


def run_step(script: str, values: dict[str, str], cwd: Path, env: dict[str, str]) -> int:
    """One step as GitHub Actions runs it: its expressions filled in, then `bash -e`."""
    filled = re.sub(r"\$\{\{ *(.*?) *\}\}", lambda match: values[match.group(1)], script)
    return subprocess.run(["bash", "-e", "-c", filled], cwd=cwd, env=env, check=False).returncode


def pull_request(tmp_path: Path, server: str, config: bytes) -> Path:
    """A checkout of a pull request that writes `config` as exports/SERVER's file, based on a
    main branch that holds the unpatched sample as exports/cas01's."""
    env = git_env()
    origin = tmp_path / "origin"
    (origin / "exports" / "cas01").mkdir(parents=True)
    shutil.copyfile(SAMPLE, origin / "exports" / "cas01" / "applicationHost.config")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "exports"]):
        subprocess.run(["git", *args], cwd=origin, env=env, check=True)
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], env=env, check=True)
    (checkout / "exports" / server).mkdir(exist_ok=True)
    (checkout / "exports" / server / "applicationHost.config").write_bytes(config)
    for args in (["add", "."], ["commit", "-qm", "change"]):
        subprocess.run(["git", *args], cwd=checkout, env=env, check=True)
    return checkout


def run_workflow(
    tmp_path: Path, server: str, config: bytes, confedit_exe: str
) -> tuple[str, int, str]:
    """The README workflow's check and comment steps on a pull request: the gate's exit code,
    the comment step's, and the comment posted (`gh` records it)."""
    checkout = pull_request(tmp_path, server, config)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text('#!/bin/sh\ncp "$5" "$GH_RECORD"\n')
    (bin_dir / "gh").chmod(0o755)
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    path = os.pathsep.join([str(bin_dir), str(Path(confedit_exe).parent), os.environ["PATH"]])
    env = git_env(PATH=path, GITHUB_OUTPUT=str(outputs), GH_RECORD=str(tmp_path / "posted.md"))
    steps = workflow_steps()
    values = {"github.base_ref": "main", "github.event.pull_request.number": "7"}
    assert run_step(steps["Check the exports"], values, checkout, env) == 0
    code = outputs.read_text().removeprefix("code=").strip()
    values |= {"steps.check.outputs.code": code, "github.token": "token"}
    posted = run_step(steps["Post the diff"], values, checkout, env)
    comment = tmp_path / "posted.md"
    return code, posted, comment.read_bytes().decode() if comment.exists() else ""


def test_the_readme_s_ci_job_comments_the_diff_of_a_pull_request_with_work_to_do(
    tmp_path, confedit_exe
):
    code, posted, comment = run_workflow(tmp_path, "cas02", SAMPLE.read_bytes(), confedit_exe)
    assert (code, posted) == ("1", 0)
    assert comment.startswith("### confedit: exit code 1\n```text\n")
    diff = comment.split("```diff\n", 1)[1].rsplit("```", 1)[0]
    assert diff == (tmp_path / "checkout" / "offload.diff").read_bytes().decode()
    assert diff.startswith("--- a/exports/cas01/applicationHost.config\n")
    assert "+++ b/exports/cas02/applicationHost.config\n" in diff
    applies = subprocess.run(
        ["git", "apply", "--check"], cwd=tmp_path / "checkout", input=diff.encode(), check=False
    )
    assert applies.returncode == 0


def test_the_readme_s_ci_job_comments_a_refusal_that_leaves_no_diff(tmp_path, confedit_exe):
    # Every file refused: confedit writes no --diff file, and the comment must still be posted.
    back_end = b'<location path="Exchange Back End/PowerShell">'
    touched = SAMPLE.read_bytes().replace(back_end, back_end[:-1] + b' overrideMode="Allow">')
    code, posted, comment = run_workflow(tmp_path, "cas01", touched, confedit_exe)
    assert (code, posted) == ("3", 0)
    assert "the Exchange Back End changed since origin/main" in comment
    assert "```diff" not in comment
