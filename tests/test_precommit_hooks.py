"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit in a temporary repository.

The hooks are `language: system` (they call the installed confedit), so pre-commit builds no
environment and needs no network: `try-repo` clones a local repository holding the hooks file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES
from tests.helpers import git_env

SAMPLE = SAMPLES / "exchange2013-cas.applicationHost.config"
PATCHED = SAMPLES / "exchange2013-cas.applicationHost.patched.config"
CONFIG = "servers/cas1/applicationHost.config"
BACK_END = b'<location path="Exchange Back End/PowerShell">'


@pytest.fixture
def env(tmp_path: Path, confedit_exe: str) -> dict[str, str]:
    return git_env(
        PATH=os.pathsep.join([str(Path(confedit_exe).parent), os.environ.get("PATH", "")]),
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
    )


def git(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)


@pytest.fixture
def hooks(tmp_path: Path, env: dict[str, str]) -> Path:
    """A repository holding this project's .pre-commit-hooks.yaml, as pre-commit clones it."""
    repo = tmp_path / "hooks"
    repo.mkdir()
    shutil.copyfile(REPO / ".pre-commit-hooks.yaml", repo / ".pre-commit-hooks.yaml")
    git(repo, env, "init", "-q")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-qm", "hooks")
    return repo


@pytest.fixture
def exports(tmp_path: Path, env: dict[str, str]) -> Path:
    """A repository of exported configs: one server's file, committed as exported."""
    repo = tmp_path / "exports"
    (repo / "servers" / "cas1").mkdir(parents=True)
    shutil.copyfile(SAMPLE, repo / CONFIG)
    (repo / "notes.txt").write_text("not a config\n")
    git(repo, env, "init", "-q")
    git(repo, env, "add", ".")
    git(repo, env, "commit", "-qm", "exports")
    return repo


def try_repo(
    hooks: Path, exports: Path, env: dict[str, str], hook: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), hook, *extra],
        cwd=exports,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_fails_on_a_staged_config_that_is_not_offloaded(hooks, exports, env):
    (exports / CONFIG).write_bytes(SAMPLE.read_bytes().replace(b"<!--", b"<!-- reviewed", 1))
    shutil.copyfile(SAMPLE, exports / "CAS2.applicationHost.config")  # the flat naming
    shutil.copyfile(SAMPLE, exports / "applicationHost.config.bak")  # not a config
    git(exports, env, "add", ".")
    proc = try_repo(hooks, exports, env, "confedit-check")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "confedit check" in proc.stdout and "Failed" in proc.stdout
    assert f"{CONFIG}: 7 of 7 targets to change" in proc.stdout
    assert "CAS2.applicationHost.config: 7 of 7 targets to change" in proc.stdout
    assert ".bak" not in proc.stdout
    assert "2 files: 2 need work, 0 unchanged, 0 refused, 0 invalid" in proc.stdout


def test_offload_fixes_the_file_then_check_passes(hooks, exports, env):
    proc = try_repo(hooks, exports, env, "confedit-offload", "--all-files")
    assert proc.returncode == 1  # pre-commit fails a hook that changed files, so they get staged
    assert "files were modified by this hook" in proc.stdout
    assert (exports / CONFIG).read_bytes() == PATCHED.read_bytes()
    git(exports, env, "add", CONFIG)
    proc = try_repo(hooks, exports, env, "confedit-check")
    assert proc.returncode == 0, proc.stdout
    assert "Passed" in proc.stdout
    proc = try_repo(hooks, exports, env, "confedit-offload")
    assert proc.returncode == 0, proc.stdout  # nothing left to do: the file is not touched


def test_check_fails_when_a_change_touches_the_back_end(hooks, exports, env):
    data = PATCHED.read_bytes()
    assert data.count(BACK_END) == 1
    touched = data.replace(
        BACK_END, b'<location path="Exchange Back End/PowerShell" overrideMode="Allow">'
    )
    (exports / CONFIG).write_bytes(touched)
    git(exports, env, "add", CONFIG)
    proc = try_repo(hooks, exports, env, "confedit-check")
    assert proc.returncode == 1
    assert "- exit code: 3" in proc.stdout
    assert (
        "the Exchange Back End changed since HEAD: "
        "<location path='Exchange Back End/PowerShell'> was changed"
    ) in proc.stdout


def test_installed_hooks_guard_a_real_commit(hooks, exports, env):
    sha = git(hooks, env, "rev-parse", "HEAD").stdout.decode().strip()
    (exports / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hooks}\n  rev: {sha}\n  hooks:\n  - id: confedit-check\n"
    )
    git(exports, env, "add", ".pre-commit-config.yaml")
    subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=exports,
        env=env,
        check=True,
        capture_output=True,
    )
    touched = PATCHED.read_bytes().replace(
        BACK_END, BACK_END.replace(b'">', b'" overrideMode="Allow">')
    )
    (exports / CONFIG).write_bytes(touched)
    git(exports, env, "add", CONFIG)
    refused = subprocess.run(
        ["git", "commit", "-qm", "offload and more"],
        cwd=exports,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "Exchange Back End changed since HEAD" in refused.stdout + refused.stderr
    (exports / CONFIG).write_bytes(PATCHED.read_bytes())
    git(exports, env, "add", CONFIG)
    done = subprocess.run(
        ["git", "commit", "-qm", "offload"],
        cwd=exports,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(exports, env, "show", f"HEAD:{CONFIG}").stdout == PATCHED.read_bytes()
