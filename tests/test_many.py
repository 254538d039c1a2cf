"""Several files at once, run as a user runs them: the installed `confedit` over a small fleet of
real configs (see helpers.make_fleet), from the folder that holds it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import CORPUS, EXCHANGE, SAMPLES
from tests.helpers import (
    access_values,
    back_end_blocks,
    git_env,
    make_fleet,
    run_in_pty,
    run_into_full_stdout,
    run_with_lost_stderr,
    strip_ansi,
)
from tests.test_schemas import validate

DEFAULT_TARGETS = {
    "owa",
    "ecp",
    "ews",
    "autodiscover",
    "microsoft-server-activesync",
    "oab",
    "mapi",
}
SAMPLE = SAMPLES / "exchange2013-cas.applicationHost.config"
PATCHED = SAMPLES / "exchange2013-cas.applicationHost.patched.config"
# sorted folder order: what the reports and the patch follow
ORDER = ["cas-2016", "cas-2019", "cas-broken", "cas-done", "cas-ep", "web"]


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Path]:
    """server -> its file, relative to tmp_path (the folder the commands run in)."""
    paths = make_fleet(tmp_path, CORPUS, SAMPLES)
    return {server: path.relative_to(tmp_path) for server, path in paths.items()}


def run(exe: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, check=False, env=env)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below root (but git's own), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def targets_offloaded(data: bytes) -> bool:
    values = {path.casefold(): flags for path, flags in access_values(data).items()}
    return all(values.get(f"default web site/{t}") == "None" for t in DEFAULT_TARGETS)


def test_check_over_a_folder_lists_each_file_in_order_and_exits_with_the_worst(
    confedit_exe, tmp_path, fleet
):
    before = snapshot(tmp_path)
    proc = run(confedit_exe, "offload", "--check", "fleet", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    headlines = [line for line in lines if line.startswith("fleet/")]
    assert [line.split("/")[1] for line in headlines] == ORDER
    assert headlines[0].startswith(
        "fleet/cas-2016/applicationHost.config: 7 of 7 targets to change"
    )
    assert headlines[1].startswith(
        "fleet/cas-2019/ApplicationHost.config: 7 of 7 targets to change"
    )
    assert headlines[2].startswith("fleet/cas-broken/applicationHost.config:128:22: ")
    assert headlines[3] == "fleet/cas-done/applicationHost.config: already offloaded, nothing to do"
    assert headlines[4].startswith(
        "fleet/cas-ep/applicationHost.config: refused: Extended Protection is on for"
    )
    assert "is this a Client Access server?" in headlines[5]
    assert lines[-1] == "6 files: 2 need work, 1 unchanged, 2 refused, 1 invalid"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        (["cas-2016", "cas-done"], 1),
        (["cas-done", "cas-done"], 0),
        (["cas-2016", "cas-broken"], 4),
        (["cas-broken", "cas-ep"], 3),
        (["web", "cas-done"], 3),
    ],
)
def test_the_run_exits_with_its_most_severe_file(confedit_exe, tmp_path, fleet, servers, expected):
    files = [str(fleet[server]) for server in servers]
    proc = run(confedit_exe, "offload", "--check", "--quiet", *files, cwd=tmp_path)
    assert proc.returncode == expected, proc.stderr


def test_quiet_shows_only_the_files_that_failed(confedit_exe, tmp_path, fleet):
    proc = run(confedit_exe, "offload", "--check", "-q", "fleet", cwd=tmp_path)
    lines = proc.stderr.decode().splitlines()
    assert [line.split("/")[1] for line in lines if line.startswith("fleet/")] == [
        "cas-broken",
        "cas-ep",
        "web",
    ]
    assert not any(line.startswith("6 files") for line in lines)


def test_one_patch_for_all_files_applies_with_git_and_reverses(confedit_exe, tmp_path, fleet):
    proc = run(confedit_exe, "offload", "fleet", "--diff", "fleet.diff", "-q", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr  # the refused files are in the fleet
    patch = (tmp_path / "fleet.diff").read_bytes()
    assert [line for line in patch.split(b"\n") if line.startswith(b"+++ ")] == [
        b"+++ b/fleet/cas-2016/applicationHost.config",
        b"+++ b/fleet/cas-2019/ApplicationHost.config",
    ]
    # a repository holding the same files, as a pipeline's checkout would
    repo = tmp_path / "repo"
    shutil.copytree(tmp_path / "fleet", repo / "fleet")
    originals = snapshot(repo)
    git = ["git", "-c", "core.autocrlf=false"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "apply", "--check", str(tmp_path / "fleet.diff")], cwd=repo, check=True)
    subprocess.run([*git, "apply", str(tmp_path / "fleet.diff")], cwd=repo, check=True)
    patched = snapshot(repo)
    changed = sorted(name for name in originals if originals[name] != patched[name])
    assert changed == [
        "fleet/cas-2016/applicationHost.config",
        "fleet/cas-2019/ApplicationHost.config",
    ]
    for name in changed:
        assert targets_offloaded(patched[name].removeprefix(b"\xef\xbb\xbf"))
        assert back_end_blocks(patched[name]) == back_end_blocks(originals[name])
    assert patched["fleet/cas-2019/ApplicationHost.config"].count(b"\n") == patched[
        "fleet/cas-2019/ApplicationHost.config"
    ].count(b"\r\n")
    # rollback, as the README says
    subprocess.run([*git, "apply", "-R", str(tmp_path / "fleet.diff")], cwd=repo, check=True)
    assert snapshot(repo) == originals
    subprocess.run(
        ["patch", "-p1", "--quiet", "--batch", "-i", str(tmp_path / "fleet.diff")],
        cwd=repo,
        check=True,
    )
    assert snapshot(repo) == patched
    subprocess.run(
        ["patch", "-R", "-p1", "--quiet", "--batch", "-i", str(tmp_path / "fleet.diff")],
        cwd=repo,
        check=True,
    )
    assert snapshot(repo) == originals


def test_the_preview_prints_the_combined_diff(confedit_exe, tmp_path, fleet):
    one = run(confedit_exe, "offload", str(fleet["cas-2016"]), cwd=tmp_path)
    two = run(confedit_exe, "offload", str(fleet["cas-2019"]), cwd=tmp_path)
    both = run(
        confedit_exe, "offload", str(fleet["cas-2016"]), str(fleet["cas-2019"]), cwd=tmp_path
    )
    assert both.returncode == 0, both.stderr
    assert both.stdout == one.stdout + two.stdout
    assert (
        both.stderr.decode().splitlines()[-1]
        == "2 files: 2 to change, 0 unchanged, 0 refused, 0 invalid"
    )


def test_output_dir_mirrors_the_paths_and_matches_single_file_runs(confedit_exe, tmp_path, fleet):
    before = snapshot(tmp_path / "fleet")
    proc = run(confedit_exe, "offload", "fleet", "--output-dir", "out", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert (
        proc.stderr.decode().splitlines()[-1]
        == "6 files: 2 changed, 1 unchanged, 2 refused, 1 invalid"
    )
    assert sorted(snapshot(tmp_path / "out")) == [
        "fleet/cas-2016/applicationHost.config",
        "fleet/cas-2019/ApplicationHost.config",
        "fleet/cas-done/applicationHost.config",  # written although unchanged, as -o does
    ]
    assert snapshot(tmp_path / "fleet") == before
    for server in ("cas-2016", "cas-2019", "cas-done"):
        single = tmp_path / f"{server}.single"
        done = run(confedit_exe, "offload", str(fleet[server]), "-o", str(single), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out" / fleet[server]).read_bytes() == single.read_bytes()


def test_a_folder_outside_the_current_directory_is_mirrored_under_its_own_name(
    confedit_exe, tmp_path, fleet
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = str(tmp_path / "fleet")
    proc = run(confedit_exe, "offload", folder, "--output-dir", "out", "-q", cwd=elsewhere)
    assert proc.returncode == 3, proc.stderr  # the fleet holds refused and invalid files
    assert sorted(snapshot(elsewhere / "out")) == [
        "fleet/cas-2016/applicationHost.config",
        "fleet/cas-2019/ApplicationHost.config",
        "fleet/cas-done/applicationHost.config",
    ]
    preview = run(confedit_exe, "offload", folder + "/cas-2016", cwd=elsewhere)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith(b"--- a/cas-2016/applicationHost.config\n")


def test_an_output_dir_inside_the_searched_folder_is_not_searched_again(
    confedit_exe, tmp_path, fleet
):
    for _ in range(2):
        proc = run(
            confedit_exe, "offload", "fleet", "--output-dir", "fleet/patched", "-q", cwd=tmp_path
        )
        assert proc.returncode == 3
    assert (tmp_path / "fleet/patched/fleet/cas-2016/applicationHost.config").exists()
    assert not (tmp_path / "fleet/patched/fleet/patched").exists()


def test_in_place_rewrites_each_file_that_needs_it_with_its_backup(confedit_exe, tmp_path, fleet):
    before = snapshot(tmp_path / "fleet")
    proc = run(confedit_exe, "offload", "fleet", "--in-place", "--backup", ".orig", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    after = snapshot(tmp_path / "fleet")
    assert sorted(set(after) - set(before)) == [
        "cas-2016/applicationHost.config.orig",
        "cas-2019/ApplicationHost.config.orig",
    ]
    for name in ("cas-2016/applicationHost.config", "cas-2019/ApplicationHost.config"):
        assert after[name + ".orig"] == before[name]
        assert after[name] != before[name]
    bom_crlf = after["cas-2019/ApplicationHost.config"]
    assert bom_crlf.startswith(b"\xef\xbb\xbf") and bom_crlf.count(b"\n") == bom_crlf.count(b"\r\n")
    assert targets_offloaded(bom_crlf[3:])
    for name in before:
        if "2016" not in name and "2019" not in name:
            assert after[name] == before[name], name
    again = run(confedit_exe, "offload", "fleet", "--check", "-q", cwd=tmp_path)
    assert b"cas-2016" not in again.stderr and b"cas-2019" not in again.stderr


def test_one_job_or_two_give_the_same_output(confedit_exe, tmp_path, fleet):
    runs = [
        run(confedit_exe, "offload", "fleet", "--jobs", jobs, "--format", "json", cwd=tmp_path)
        for jobs in ("1", "2")
    ]
    assert runs[0].returncode == runs[1].returncode == 3
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stderr == runs[1].stderr


@pytest.mark.parametrize("writes", [[], ["--output-dir", "out"]])
def test_each_file_in_the_json_report_has_its_own_diff(confedit_exe, tmp_path, fleet, writes):
    """Several files make no diff when none is shown, but the JSON report shows each file's."""
    proc = run(confedit_exe, "offload", "fleet", *writes, "--format", "json", cwd=tmp_path)
    files = {Path(report["file"]): report for report in json.loads(proc.stdout)["files"]}
    assert set(files) == set(fleet.values())
    for server, path in fleet.items():
        alone = run(confedit_exe, "offload", str(path), "--format", "json", cwd=tmp_path)
        diff = json.loads(alone.stdout).get("diff")
        assert files[path].get("diff") == diff, server
        if server in ("cas-2016", "cas-2019"):  # the two that change
            assert diff.startswith(f"--- a/{path.as_posix()}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fleet", "-o", "x.config"], b"use --output-dir DIR"),
        (["fleet", "--runbook", "x.ps1"], b"--runbook takes one CONFIG"),
        (["fleet", "--output-dir", "out", "--in-place"], b"either --output-dir or --in-place"),
        (["fleet", "--output-dir", "out", "--check"], b"--check writes nothing"),
        (["fleet", "--output-dir", "."], b"would overwrite the input"),
        (["fleet", "--jobs", "0"], b"--jobs"),
    ],
)
def test_usage_errors_over_several_files_exit_2_and_write_nothing(
    confedit_exe, tmp_path, fleet, args, message
):
    before = snapshot(tmp_path)
    proc = run(confedit_exe, "offload", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert snapshot(tmp_path) == before


def test_two_files_the_diff_would_name_alike_are_a_usage_error(confedit_exe, tmp_path, fleet):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run(
        confedit_exe,
        "offload",
        str(tmp_path / fleet["cas-2016"]),
        str(tmp_path / fleet["cas-done"]),
        cwd=elsewhere,
    )
    assert proc.returncode == 2
    assert b"would both be named 'applicationHost.config'" in proc.stderr


def test_a_single_file_keeps_its_detailed_report_and_no_summary(confedit_exe, tmp_path, fleet):
    proc = run(confedit_exe, "offload", "--check", str(fleet["cas-2016"]), cwd=tmp_path)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 1
    assert lines[0].startswith("owa ")  # one line per target, as before
    assert not any(line.startswith("1 file") for line in lines)


def test_a_folder_with_one_config_is_searched(confedit_exe, tmp_path, fleet):
    proc = run(confedit_exe, "offload", "--check", "fleet/cas-done", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stderr.decode().splitlines()[-1]
        == "1 file: 0 need work, 1 unchanged, 0 refused, 0 invalid"
    )


# --- progress and colour ------------------------------------------------------------------------


@pytest.fixture
def many_servers(tmp_path: Path) -> Path:
    for number in range(7):
        folder = tmp_path / "servers" / f"cas{number}"
        folder.mkdir(parents=True)
        shutil.copyfile(
            EXCHANGE / "e2013-cas.applicationHost.config", folder / "applicationHost.config"
        )
    return tmp_path


def test_a_progress_bar_on_a_terminal_only(confedit_exe, many_servers):
    code, shown, _ = run_in_pty(
        [confedit_exe, "offload", "--check", "servers"], tty="stderr", cwd=many_servers
    )
    assert code == 1
    assert b"offloading" in shown and b"100%" in shown
    assert b"7 files: 7 need work" in shown
    assert shown.rpartition(b"100%")[2].count(b"servers/cas") == 7  # every file after the bar
    code, shown, _ = run_in_pty(
        [confedit_exe, "offload", "--check", "-q", "servers"], tty="stderr", cwd=many_servers
    )
    assert code == 1 and shown == b""
    proc = run(confedit_exe, "offload", "--check", "servers", cwd=many_servers)
    assert b"offloading" not in proc.stderr and b"%" not in proc.stderr
    code, shown, _ = run_in_pty(
        [confedit_exe, "audit", "servers", "--offloaded"], tty="stderr", cwd=many_servers
    )
    assert code == 1 and b"auditing" in shown


def test_the_diff_is_coloured_on_a_terminal_unless_no_color(confedit_exe, tmp_path, fleet):
    config = str(fleet["cas-2016"])
    plain = run(confedit_exe, "offload", config, cwd=tmp_path).stdout
    assert b"\x1b[" not in plain
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm"}
    code, shown, _ = run_in_pty(
        [confedit_exe, "offload", config], tty="stdout", cwd=tmp_path, env=env
    )
    assert code == 0 and b"\x1b[32m+" in shown
    assert strip_ansi(shown) == plain.replace(b"\r\n", b"\n")
    for extra_env, args in (({"NO_COLOR": "1"}, []), ({}, ["--color", "never"])):
        code, shown, _ = run_in_pty(
            [confedit_exe, "offload", config, *args],
            tty="stdout",
            cwd=tmp_path,
            env=env | extra_env,
        )
        assert code == 0 and b"\x1b[" not in shown and shown == plain.replace(b"\r\n", b"\n")
    forced = run(confedit_exe, "offload", config, "--color", "always", cwd=tmp_path).stdout
    assert b"\x1b[31m-" in forced and strip_ansi(forced) == plain
    written = run(
        confedit_exe, "offload", config, "--color", "always", "--diff", "x.diff", cwd=tmp_path
    )
    assert written.returncode == 0 and (tmp_path / "x.diff").read_bytes() == plain


def test_tables_are_coloured_when_asked(confedit_exe, tmp_path, fleet):
    args = ["audit", "--offloaded", str(fleet["cas-2016"]), str(fleet["cas-done"])]
    plain = run(confedit_exe, *args, cwd=tmp_path)
    coloured = run(confedit_exe, *args, "--color", "always", cwd=tmp_path)
    assert plain.returncode == coloured.returncode == 1
    assert b"\x1b[" not in plain.stdout
    assert strip_ansi(coloured.stdout) == plain.stdout
    assert b"\x1b[32myes" in coloured.stdout and b"\x1b[31m\x1b[1mNO" in coloured.stdout


# --- audit --------------------------------------------------------------------------------------


def test_audit_of_several_files_prints_each_table_in_order(confedit_exe, tmp_path, fleet):
    proc = run(
        confedit_exe,
        "audit",
        "--offloaded",
        str(fleet["cas-done"]),
        str(fleet["cas-2016"]),
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    text = proc.stdout.decode()
    assert text.index("fleet/cas-done/") < text.index("fleet/cas-2016/")
    assert "all default targets are offloaded" in text and "NOT offloaded" in text
    assert proc.stderr.decode().strip() == "2 files: 1 offloaded, 1 not offloaded, 0 invalid"


def test_audit_over_the_fleet_reports_the_invalid_file_and_goes_on(confedit_exe, tmp_path, fleet):
    proc = run(confedit_exe, "audit", "fleet", cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stdout.count(b"(front-end)") == 5
    errors = proc.stderr.decode().splitlines()
    assert errors[0].startswith("fleet/cas-broken/applicationHost.config:128:22:")
    assert errors[-1] == "6 files: 1 offloaded, 4 not offloaded, 1 invalid"


@pytest.mark.parametrize("args", [[], ["--fleet"], ["--format", "json"]])
def test_audit_of_several_files_says_each_unlocked_access_section_on_stderr(
    confedit_exe, tmp_path, fleet, args
):
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    unlocked = tmp_path / fleet["cas-done"]
    unlocked.write_bytes(
        unlocked.read_bytes().replace(registration, registration.replace(b"Deny", b"Allow"))
    )
    servers = [str(fleet["cas-2016"]), str(fleet["cas-done"])]
    proc = run(confedit_exe, "audit", *args, *servers, cwd=tmp_path)
    assert b"warning" not in proc.stdout
    (warning,) = [line for line in proc.stderr.decode().splitlines() if "warning" in line]
    assert warning.startswith(
        "fleet/cas-done/applicationHost.config: warning: the access section is unlocked for "
    )
    quiet = run(confedit_exe, "audit", *args, "-q", *servers, cwd=tmp_path)
    assert b"warning" not in quiet.stderr


def test_the_fleet_matrix_and_its_exit_codes(confedit_exe, tmp_path, fleet):
    same = run(
        confedit_exe,
        "audit",
        "--fleet",
        str(fleet["cas-2016"]),
        str(fleet["cas-2019"]),
        cwd=tmp_path,
    )
    assert same.returncode == 0, same.stderr
    assert same.stdout.decode().splitlines()[-1] == "all 2 servers agree"
    gate = run(
        confedit_exe,
        "audit",
        "--fleet",
        "--offloaded",
        str(fleet["cas-2016"]),
        str(fleet["cas-2019"]),
        cwd=tmp_path,
    )
    assert gate.returncode == 1 and b"NOT offloaded everywhere" in gate.stdout

    differ = run(confedit_exe, "audit", "--fleet", "fleet/cas-2016", "fleet/cas-ep", cwd=tmp_path)
    assert differ.returncode == 1
    lines = differ.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["SERVER", "fleet/cas-2016", "fleet/cas-ep"]
    assert lines[3].split() == [
        "DIFFERS",
        "DIFFERS",
        "DIFFERS",
        "same",
        "DIFFERS",
        "DIFFERS",
        "DIFFERS",
    ]

    whole = run(confedit_exe, "audit", "--fleet", "fleet", cwd=tmp_path)
    assert whole.returncode == 4  # the malformed file; the others are still in the matrix
    rows = [line.split()[0] for line in whole.stdout.decode().splitlines()[1:6]]
    assert rows == [
        "fleet/cas-2016",
        "fleet/cas-2019",
        "fleet/cas-done",
        "fleet/cas-ep",
        "fleet/web",
    ]
    assert b"not compared (no Exchange front-end targets): fleet/web/" in whole.stdout
    assert whole.stderr.startswith(b"fleet/cas-broken/applicationHost.config:128:22:")


def test_a_fleet_where_nothing_is_compared_fails_and_a_misspelt_site_is_named(
    confedit_exe, tmp_path, fleet
):
    # A consistency gate that compared no server vouches for nothing: it passed (exit 0) with a
    # misspelt --site, every server then seeming to have no front end.
    servers = ("fleet/cas-2016", "fleet/cas-2019")
    misspelt = run(
        confedit_exe, "audit", "--fleet", "--site", "Defualt Web Site", *servers, cwd=tmp_path
    )
    assert misspelt.returncode == 1
    assert misspelt.stdout.decode().splitlines()[-1] == (
        "no Client Access server among the files: the site 'Defualt Web Site' is not in <sites>; "
        "name the front-end site with --site (the default is 'Default Web Site')"
    )
    as_json = run(
        confedit_exe, "audit", "--fleet", "--site", "X", *servers, "--format", "json", cwd=tmp_path
    )
    assert json.loads(as_json.stdout)["exit_code"] == as_json.returncode == 1
    plain = run(confedit_exe, "audit", "--fleet", "fleet/web", cwd=tmp_path)
    assert plain.returncode == 1
    assert plain.stdout.decode().splitlines()[-1] == "no Client Access server among the files"


def test_offloading_the_fleet_makes_it_agree(confedit_exe, tmp_path, fleet):
    servers = [str(fleet[s]) for s in ("cas-2016", "cas-2019", "cas-done")]
    assert run(confedit_exe, "audit", "--fleet", *servers, cwd=tmp_path).returncode == 1
    assert run(confedit_exe, "offload", "--in-place", "-q", *servers, cwd=tmp_path).returncode == 0
    proc = run(confedit_exe, "audit", "--fleet", "--offloaded", *servers, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.decode().splitlines()[1].split()[1:] == ["None"] * 7


# --- the Back End guard -------------------------------------------------------------------------


def test_since_refuses_only_the_file_whose_back_end_changed(confedit_exe, tmp_path, fleet):
    env = git_env()
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "exports"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, env=env)
    config = tmp_path / fleet["cas-2016"]
    data = config.read_bytes()
    marker = b'<location path="Exchange Back End/PowerShell">'
    assert data.count(marker) == 1
    config.write_bytes(
        data.replace(marker, b'<location path="Exchange Back End/PowerShell" overrideMode="Allow">')
    )
    servers = [str(fleet[s]) for s in ("cas-2016", "cas-2019", "cas-done")]
    proc = run(confedit_exe, "offload", "--check", "--since", "HEAD", *servers, cwd=tmp_path)
    assert proc.returncode == 3
    text = proc.stderr.decode()
    assert (
        "fleet/cas-2016/applicationHost.config: refused: the Exchange Back End changed since HEAD: "
        "<location path='Exchange Back End/PowerShell'> was changed; SSL offloading makes no change"
        in text
    )
    assert text.splitlines()[-1] == "3 files: 1 need work, 1 unchanged, 1 refused, 0 invalid"


def test_a_combined_diff_that_cannot_be_written_says_the_files_were(confedit_exe, tmp_path, fleet):
    """The combined diff is written when every file is done: if it then fails, the error must
    not say that nothing was changed."""
    (tmp_path / "blocked").write_bytes(b"a file, not a folder\n")
    args = ("offload", "fleet", "--output-dir", "out", "--diff", "blocked/x.diff", "-q")
    proc = run(confedit_exe, *args, cwd=tmp_path)
    assert proc.returncode == 3
    assert b"cannot write: Not a directory; the files were written, the diff was not" in proc.stderr
    assert (tmp_path / "out").is_dir()


def test_a_combined_diff_that_cannot_be_written_still_reports_every_file(
    confedit_exe, tmp_path, fleet
):
    """The files are written before the diff: the report of several files must still say which
    ones (a pipeline reads it to know what it deploys), with the diff's failure as the run's own
    error. It printed a one-file report naming no file, and no file's line or summary."""
    (tmp_path / "blocked").write_bytes(b"a file, not a folder\n")
    args = ("offload", "fleet", "--output-dir", "out", "--diff", "blocked/x.diff")
    proc = run(confedit_exe, *args, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 3
    error = (
        "blocked/x.diff: cannot write: Not a directory; the files were written, the diff was not"
    )
    assert proc.stderr.decode().splitlines()[-1] == error
    document = json.loads(proc.stdout)
    validate(document)
    assert document["exit_code"] == 3
    assert document["error"] == {"kind": "write-failed", "message": error}
    assert [f["status"] for f in document["files"]].count("changed") == 2
    assert len(document["files"]) == 6
    proc = run(confedit_exe, *args, cwd=tmp_path)
    assert proc.returncode == 3
    lines = proc.stderr.decode().splitlines()
    assert lines[-2:] == ["6 files: 2 changed, 1 unchanged, 2 refused, 1 invalid", error]


@pytest.mark.parametrize(
    ("to_group", "sig", "code"),
    [(True, signal.SIGINT, 130), (False, signal.SIGTERM, 143)],
    ids=["ctrl-c", "kill-pid"],
)
def test_an_interrupted_run_stops_its_workers_and_leaves_every_file_whole(
    confedit_exe, tmp_path, to_group, sig, code
):
    """Ctrl-C reaches the whole process group; `kill PID` (or a CI runner's timeout) only
    confedit itself, whose workers must stop with it instead of writing on, orphaned. Either
    way each file is its original or its patched version, with its backup, and no temporary
    file stays."""
    original, patched = SAMPLE.read_bytes(), PATCHED.read_bytes()
    for index in range(300):
        folder = tmp_path / "fleet" / f"cas{index:03d}"
        folder.mkdir(parents=True)
        (folder / "applicationHost.config").write_bytes(original)
    args = [confedit_exe, "offload", "fleet", "--in-place", "--backup", ".bak", "-q", "-j", "2"]
    proc = subprocess.Popen(
        args, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("fleet/*/*.bak")) and time.monotonic() < deadline:
        time.sleep(0.005)
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)  # EOF only once every worker has let go of the pipes
    assert proc.returncode == code, err
    assert b"interrupted" in err and b"Traceback" not in err
    configs = sorted(tmp_path.glob("fleet/*/applicationHost.config"))
    done = [path for path in configs if path.read_bytes() == patched]
    assert all(path.read_bytes() in (original, patched) for path in configs)
    assert 0 < len(done) < len(configs)
    assert sorted(tmp_path.glob("fleet/*/*.bak")) == [Path(f"{path}.bak") for path in done]
    assert not list(tmp_path.glob("fleet/*/.*confedit-tmp"))
    assert processes_in_session(proc.pid) == []


def test_workers_do_not_outlive_a_parent_killed_outright(confedit_exe, tmp_path):
    """`kill -9` of confedit (a CI runner's hard timeout) leaves no worker waiting for work
    forever: each sees its pipe end and exits."""
    for index in range(300):
        folder = tmp_path / "fleet" / f"cas{index:03d}"
        folder.mkdir(parents=True)
        shutil.copyfile(SAMPLE, folder / "applicationHost.config")
    args = [confedit_exe, "offload", "fleet", "--output-dir", "out", "-q", "-j", "2"]
    proc = subprocess.Popen(args, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob("out/fleet/*/*.config")) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while processes_in_session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_in_session(proc.pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def processes_in_session(session: int) -> list[int]:
    """The processes still in a session (from /proc: field 6 of stat, after the name)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rpartition(")")[2].split()
        except OSError:  # ended while being read
            continue
        if int(fields[3]) == session:
            found.append(int(stat_file.parent.name))
    return found


ODD_NAMES = ["srv 01", "tab\there", "new\nline", 'quote"d', "back\\slash", "sérveur"]


@pytest.mark.parametrize("tool", ["git", "patch"])
def test_the_combined_diff_applies_with_odd_folder_names(confedit_exe, tmp_path, tool):
    """Names are written as git writes them (quoted, or a TAB after a name with a space), so
    both tools apply the diff; a newline in a folder name cannot add lines to it."""
    for name in ODD_NAMES:
        (tmp_path / "ex" / name).mkdir(parents=True)
        shutil.copyfile(SAMPLE, tmp_path / "ex" / name / "applicationHost.config")
    proc = run(confedit_exe, "offload", "ex", "--diff", "all.diff", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    if tool == "git":
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
        args = ["git", "apply", "all.diff"]
    else:
        args = ["patch", "-p1", "--batch", "--quiet", "-i", "all.diff"]
    applied = subprocess.run(args, cwd=tmp_path, capture_output=True, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for name in ODD_NAMES:
        assert (
            tmp_path / "ex" / name / "applicationHost.config"
        ).read_bytes() == PATCHED.read_bytes()


def test_a_file_reached_through_a_symlink_is_named_by_its_own_path(confedit_exe, tmp_path):
    """git apply and patch refuse to patch a symlink: the diff names the file it points to,
    found once even when the folder search meets the link first."""
    (tmp_path / "ex" / "s1").mkdir(parents=True)
    shutil.copyfile(SAMPLE, tmp_path / "ex" / "s1" / "applicationHost.config")
    link = tmp_path / "ex" / "a-link.applicationHost.config"  # sorts before s1/
    link.symlink_to(Path("s1", "applicationHost.config"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for args in (["ex"], [str(link.relative_to(tmp_path))]):
        proc = run(confedit_exe, "offload", *args, "-q", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(b"--- a/ex/s1/applicationHost.config\n")
        assert proc.stdout.count(b"\n--- a/") == 0  # one file
        check = subprocess.run(
            ["git", "apply", "--check", "-"], input=proc.stdout, cwd=tmp_path, check=False
        )
        assert check.returncode == 0


def test_a_diff_over_a_file_the_run_writes_is_a_usage_error(confedit_exe, tmp_path, fleet):
    """--diff naming a file of --output-dir, or a backup, would replace it with the diff."""
    target = f"out/{fleet['cas-2019'].as_posix()}"
    proc = run(
        confedit_exe, "offload", "fleet", "--output-dir", "out", "--diff", target, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert b"--output-dir and --diff both write" in proc.stderr
    backup = f"{fleet['cas-2019']}.bak"
    args = ("fleet", "--in-place", "--backup", ".bak", "--diff", backup)
    proc = run(confedit_exe, "offload", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert b"--backup and --diff both write" in proc.stderr
    assert not (tmp_path / backup).exists()


STRACE = shutil.which("strace")
_SYNC_CALL = re.compile(r"\b(fsync|fdatasync|syncfs|sync)\(")


def sync_calls(exe: str, *args: str, cwd: Path) -> list[str]:
    """The fsync-like system calls the installed command makes (strace, workers included)."""
    assert STRACE is not None
    log = cwd / "syscalls.log"
    traced = ("-f", "-qq", "-e", "trace=fsync,fdatasync,syncfs,sync", "-o", str(log))
    proc = run(STRACE, *traced, exe, *args, cwd=cwd)
    assert proc.returncode in (0, 1, 3, 4), proc.stderr
    return [m.group(1) for line in log.read_text().splitlines() if (m := _SYNC_CALL.search(line))]


@pytest.mark.skipif(STRACE is None, reason="needs strace (.ci/run installs it)")
def test_an_output_dir_is_synced_once_and_inputs_in_place_file_by_file(
    confedit_exe, tmp_path, fleet
):
    """New files in an output folder are made durable by one syncfs at the end of the run;
    a file replaced in place, and its backup, each by their own fsyncs before the rename."""
    calls = sync_calls(confedit_exe, "offload", "fleet", "--output-dir", "out", "-q", cwd=tmp_path)
    assert calls == ["syncfs"]
    written = [server for server in ORDER if (tmp_path / "out" / fleet[server]).is_file()]
    assert written == ["cas-2016", "cas-2019", "cas-done"]  # not the refused, nor the malformed

    args = ("offload", "fleet", "--in-place", "--backup", ".bak", "-q")
    calls = sync_calls(confedit_exe, *args, cwd=tmp_path)
    # two changed files, each with its backup: a file and its folder per output
    assert calls == ["fsync"] * 8
    assert (tmp_path / fleet["cas-2016"]).with_name("applicationHost.config.bak").is_file()


# Imported by the installed command from PYTHONPATH: syncfs fails as on a failing disk.
FAILING_SYNCFS = """import errno
from confedit import files
def _failing():
    def syncfs(descriptor):
        raise OSError(errno.EIO, "Input/output error")
    return syncfs
files._syncfs_function = _failing
"""


def test_a_failed_flush_of_the_output_dir_is_a_write_failure(confedit_exe, tmp_path, fleet):
    """The kernel may report at the end that written data could not reach the disk (EIO): the
    run must not exit 0. Injected through sitecustomize, which the installed command imports."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FAILING_SYNCFS)
    env = {**os.environ, "PYTHONPATH": str(hooks)}
    args = ("offload", "fleet", "--output-dir", "out", "--diff", "all.diff", "--format", "json")
    proc = run(confedit_exe, *args, cwd=tmp_path, env=env)
    assert proc.returncode == 3
    lines = proc.stderr.decode().splitlines()
    assert lines[-2] == "6 files: 2 changed, 1 unchanged, 2 refused, 1 invalid"  # the report stays
    assert lines[-1] == (
        "out: the files were written, but flushing them to disk failed: "
        "Input/output error; run again"
    )
    document = json.loads(proc.stdout)
    validate(document)
    assert document["exit_code"] == 3
    assert document["error"] == {"kind": "write-failed", "message": lines[-1]}
    assert len(document["files"]) == 6
    assert (tmp_path / "all.diff").read_bytes().count(b"+++ b/") == 2


def test_an_output_that_leads_to_another_input_is_a_usage_error(confedit_exe, tmp_path, fleet):
    """An output folder holding a symlink, from an earlier run or a mistake, to another input:
    writing through it would replace that input (exit 0, its original lost)."""
    destination = tmp_path / "out" / fleet["cas-2016"]
    destination.parent.mkdir(parents=True)
    destination.symlink_to(tmp_path / fleet["cas-2019"])
    before = snapshot(tmp_path)
    proc = run(confedit_exe, "offload", "fleet", "--output-dir", "out", "-q", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        f"--output-dir would write out/{fleet['cas-2016']} over the input {fleet['cas-2019']}"
    ).encode() in proc.stderr
    assert snapshot(tmp_path) == before


def test_earlier_outputs_named_as_inputs_are_a_usage_error(confedit_exe, tmp_path, fleet):
    """`confedit offload */ --output-dir patched`, run twice: the second run's `*/` names the
    first run's outputs, whose outputs would go a folder deeper, and others' over them."""
    servers = ["cas-2016", "cas-2019"]
    folders = [str(fleet[server].parent) + "/" for server in servers]
    first = run(confedit_exe, "offload", *folders, "--output-dir", "patched", "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path)
    again = [*folders, "patched/"]  # what */ expands to now
    proc = run(confedit_exe, "offload", *again, "--output-dir", "patched", "-q", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        f"the input patched/{fleet['cas-2016']} is inside --output-dir patched (an earlier "
        f"run's output?) and would be overwritten by the output of {fleet['cas-2016']}"
    ).encode() in proc.stderr
    assert snapshot(tmp_path) == before


def test_a_config_hidden_by_the_unsearched_output_dir_is_named(confedit_exe, tmp_path, fleet):
    """An output folder inside the folder searched is skipped (it holds earlier outputs); a
    config there that is no output of this run is a server's own: say it is not offloaded."""
    output_dir = fleet["cas-2016"].parent  # fleet/cas-2016 holds a config of its own
    args = ("offload", "fleet", "--output-dir", str(output_dir), "-q")
    for _ in range(2):  # the second run finds its own outputs there too: no warning for them
        proc = run(confedit_exe, *args, cwd=tmp_path)
        warnings = [line for line in proc.stderr.decode().splitlines() if "warning:" in line]
        assert warnings == [
            f"warning: {fleet['cas-2016']} is not offloaded: it is inside --output-dir "
            f"{output_dir}, which is not searched"
        ]
    assert (tmp_path / output_dir / fleet["cas-2019"]).is_file()


def two_servers(root: Path, *names: str) -> None:
    for name in names or ("cas01", "cas02"):
        folder = Path(os.fsdecode(bytes(root) + b"/" + os.fsencode(name)))
        folder.mkdir(parents=True)
        shutil.copyfile(SAMPLE, folder / "applicationHost.config")


def close_stdout() -> None:
    os.close(1)


def test_several_files_without_a_stdout_they_do_not_need(confedit_exe, tmp_path):
    two_servers(tmp_path)
    check = subprocess.run(
        [confedit_exe, "offload", ".", "--check"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        preexec_fn=close_stdout,
        check=False,
    )
    assert check.returncode == 1, check.stderr
    assert b"2 files: 2 need work" in check.stderr
    written = subprocess.run(
        [confedit_exe, "offload", ".", "--in-place", "-q"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        preexec_fn=close_stdout,
        check=False,
    )
    assert (written.returncode, written.stderr) == (0, b"")
    assert {path.read_bytes() for path in tmp_path.rglob("*.config")} == {PATCHED.read_bytes()}
    # an audit's tables are what it was asked for, as the preview diff is an offload's
    audit = subprocess.run(
        [confedit_exe, "audit", "."],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        preexec_fn=close_stdout,
        check=False,
    )
    assert (audit.returncode, audit.stderr) == (3, b"cannot write to stdout: it is closed\n")


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "cas01/applicationHost.config", "--format", "json"],
        ["audit", ".", "--format", "json"],
        ["audit", "--fleet", "."],
        ["audit", "--fleet", ".", "--format", "json"],
        ["offload", "."],  # the preview, for comparison
    ],
)
def test_an_audit_without_its_stdout_ends_as_an_offload_does(confedit_exe, tmp_path, args):
    """Closed from the start (`>&-`): exit 3 before anything is read; a reader that goes away
    (`| head`, `| true`): 141, quietly."""
    two_servers(tmp_path)
    closed = subprocess.run(
        [confedit_exe, *args],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        preexec_fn=close_stdout,
        check=False,
    )
    assert (closed.returncode, closed.stderr) == (3, b"cannot write to stdout: it is closed\n")
    gone = subprocess.Popen(
        [confedit_exe, *args, "-q"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert gone.stdout is not None and gone.stderr is not None
    gone.stdout.close()  # before confedit writes anything, as `| true` does
    assert gone.wait(timeout=60) == 141
    assert gone.stderr.read() == b""


@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_several_files_with_a_stderr_that_cannot_be_written(tmp_path, stderr):
    two_servers(tmp_path)

    def confedit(*args: str) -> int:
        return run_with_lost_stderr(stderr, tmp_path, *args).returncode

    assert confedit("offload", ".", "--check") == 1
    assert confedit("offload", ".", "--in-place") == 0
    assert {path.read_bytes() for path in tmp_path.rglob("*.config")} == {PATCHED.read_bytes()}
    assert confedit("audit", ".", "--offloaded") == 0


def test_a_full_stdout_after_several_files_were_written_says_that_they_were(confedit_exe, tmp_path):
    two_servers(tmp_path)
    args = [confedit_exe, "offload", ".", "--in-place", "--format", "json", "-q"]
    proc = run_into_full_stdout(args, tmp_path)
    assert proc.returncode == 3
    assert proc.stderr == (
        b"cannot write to stdout: No space left on device; the files were written\n"
    )
    assert {path.read_bytes() for path in tmp_path.rglob("*.config")} == {PATCHED.read_bytes()}


def test_file_names_that_are_not_utf8_in_the_reports_of_several_files(confedit_exe, tmp_path):
    fleet = tmp_path / "fleet"
    two_servers(fleet, "cas01", "cas\udcff")  # the byte 0xFF, as os.fsdecode gives it
    name = b"cas\xff/applicationHost.config"
    proc = run(
        confedit_exe, "offload", ".", "--output-dir", "../out", "--format", "json", cwd=fleet
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout.decode("utf-8"))  # strict: valid UTF-8
    validate(document)
    assert os.fsencode(document["files"][1]["file"]) == name
    assert (tmp_path / "out" / os.fsdecode(name)).read_bytes() == PATCHED.read_bytes()
    for args in (["audit", "."], ["audit", "--fleet", "."]):
        audit = run(confedit_exe, *args, "--format", "json", cwd=fleet)
        assert audit.returncode == 0, audit.stderr
        report = json.loads(audit.stdout.decode("utf-8"))
        validate(report)
        files = report["files"] if "files" in report else report["servers"]
        assert os.fsencode(files[1]["file"]) == name
    text = run(confedit_exe, "offload", ".", "--check", cwd=fleet)
    assert text.returncode == 1
    assert b"\ncas\\udcff/applicationHost.config: 7 of 7 targets to change" in text.stderr


# Where a worker kills itself: as it reads the file, or once the file is renamed into place.
DEATHS = {
    "reading": (
        "_read_input = files.read_input\n"
        "def read_input(path, *args):\n"
        "    if path.parent.name == 'die':\n"
        "        die()\n"
        "    return _read_input(path, *args)\n"
        "files.read_input = read_input\n"
    ),
    "written": (
        "_commit = files._Staged.commit\n"
        "def commit(self):\n"
        "    _commit(self)\n"
        "    if self.target.parent.name == 'die' and self.target.suffix == '.config':\n"
        "        die()\n"
        "files._Staged.commit = commit\n"
    ),
}


def dying_worker_env(tmp_path: Path, when: str = "reading") -> dict[str, str]:
    """The installed command, whose worker processes kill themselves (SIGKILL, as the kernel
    does for memory) on a file in a folder named `die` (see DEATHS). Injected through
    sitecustomize, which every process imports; the parent itself never dies."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import multiprocessing, os, signal\n"
        "from confedit import files\n"
        "def die():\n"
        "    if multiprocessing.parent_process():\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n" + DEATHS[when]
    )
    return {**os.environ, "PYTHONPATH": str(hooks)}


DIED = "the worker process working on this file died (killed by signal 9, e.g. for lack of memory)"


@pytest.fixture
def servers_and_die(tmp_path: Path) -> list[str]:
    """20 copies of the sample; `die` first, so that its chunk holds another file (s01)."""
    names = ["die", *(f"s{number:02d}" for number in range(1, 20))]
    for name in names:
        (tmp_path / "ex" / name).mkdir(parents=True)
        shutil.copyfile(SAMPLE, tmp_path / "ex" / name / "applicationHost.config")
    return [f"ex/{name}/applicationHost.config" for name in names]


@pytest.mark.parametrize("when", DEATHS)
def test_a_worker_that_dies_costs_only_its_file(confedit_exe, tmp_path, servers_and_die, when):
    """The file the dead worker was working on is reported lost, with an honest reason; every
    other file, its own chunk's and the other worker's, is written, reported and in the diff.
    Running again does the lost file, or finds it done, and never backs up a patched file."""
    from tests.test_schemas import validate

    args = ("offload", "ex", "--in-place", "--backup", ".bak", "--diff", "all.diff", "-j", "2")
    env = dying_worker_env(tmp_path, when)
    proc = run(confedit_exe, *args, "--format", "json", "-q", cwd=tmp_path, env=env)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.decode().splitlines() == [
        f"ex/die/applicationHost.config: {DIED}; it may or may not have been written: run again"
    ]
    document = json.loads(proc.stdout)
    validate(document)
    assert [(f["file"], f["status"], f["exit_code"]) for f in document["files"]] == [
        (servers_and_die[0], "worker-died", 3),
        *[(name, "changed", 0) for name in servers_and_die[1:]],
    ]
    assert document["summary"] == {
        "files": 20,
        "changed": 19,
        "unchanged": 0,
        "refused": 0,
        "invalid": 0,
        "failed": 1,
    }
    diff = (tmp_path / "all.diff").read_bytes()
    assert re.findall(rb"^\+\+\+ b/(.*)$", diff, re.M) == [
        name.encode() for name in servers_and_die[1:]
    ]
    for name in servers_and_die[1:]:
        assert (tmp_path / name).read_bytes() == PATCHED.read_bytes(), name
        assert (tmp_path / f"{name}.bak").read_bytes() == SAMPLE.read_bytes(), name
    die = tmp_path / servers_and_die[0]
    backup = tmp_path / f"{servers_and_die[0]}.bak"
    if when == "written":
        assert die.read_bytes() == PATCHED.read_bytes()
        assert backup.read_bytes() == SAMPLE.read_bytes()
    else:
        assert die.read_bytes() == SAMPLE.read_bytes()
        assert not backup.exists()

    again = run(confedit_exe, *args, "--format", "json", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    statuses = [f["status"] for f in json.loads(again.stdout)["files"]]
    assert statuses == ["unchanged" if when == "written" else "changed"] + ["unchanged"] * 19
    for name in servers_and_die:
        assert (tmp_path / name).read_bytes() == PATCHED.read_bytes(), name
        assert (tmp_path / f"{name}.bak").read_bytes() == SAMPLE.read_bytes(), name


@pytest.mark.parametrize(
    ("command", "summary"),
    [
        ("offload", "20 files: 19 need work, 0 unchanged, 0 refused, 0 invalid, 1 failed"),
        ("audit", "20 files: 0 offloaded, 19 not offloaded, 0 invalid, 1 failed"),
    ],
    ids=["offload", "audit"],
)
def test_a_worker_that_dies_where_nothing_is_written(
    confedit_exe, tmp_path, servers_and_die, command, summary
):
    args = ["--check"] if command == "offload" else []
    env = dying_worker_env(tmp_path)
    proc = run(confedit_exe, command, "ex", *args, "-j", "2", cwd=tmp_path, env=env)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == f"ex/die/applicationHost.config: {DIED}; run again"
    assert lines[-1] == summary


def test_control_characters_in_names_are_shown_escaped_on_one_line(confedit_exe, tmp_path):
    """A line break in a folder name must not split a file's line on stderr, and an escape
    sequence in one must not reach the terminal (it could clear it, or recolour what follows)."""
    broken = tmp_path / "fleet" / "new\nline" / "applicationHost.config"
    coloured = tmp_path / "fleet" / "esc\x1b[2J" / "applicationHost.config"
    for path, source in ((broken, "e2019-malformed"), (coloured, "e2016")):
        path.parent.mkdir(parents=True)
        shutil.copyfile(EXCHANGE / f"{source}.applicationHost.config", path)
    proc = run(confedit_exe, "offload", "fleet", "--check", cwd=tmp_path)
    text = proc.stderr.decode()
    assert "\x1b" not in text
    assert "fleet/esc\\x1b[2J/applicationHost.config: 7 of 7 targets need work" in text or (
        "fleet/esc\\x1b[2J/applicationHost.config: 7 of 7 targets to change" in text
    )
    assert "\nfleet/new\\nline/applicationHost.config:128:22: Opening and ending tag" in text
    json_proc = run(confedit_exe, "offload", "fleet", "--check", "--format", "json", cwd=tmp_path)
    names = [file["file"] for file in json.loads(json_proc.stdout)["files"]]
    assert names == [
        "fleet/esc\x1b[2J/applicationHost.config",
        "fleet/new\nline/applicationHost.config",
    ]


@pytest.mark.skipif(STRACE is None, reason="needs strace (.ci/run installs it)")
def test_an_output_written_through_a_symlink_is_synced_on_its_own_filesystem(
    confedit_exe, tmp_path, fleet
):
    shm = Path("/dev/shm")  # a tmpfs, another filesystem, where there is one
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem")
    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        link = tmp_path / "out" / fleet["cas-2016"]
        link.parent.mkdir(parents=True)
        link.symlink_to(Path(elsewhere, "applicationHost.config"))
        calls = sync_calls(confedit_exe, "offload", "fleet", "--output-dir", "out", cwd=tmp_path)
        assert Path(elsewhere, "applicationHost.config").is_file()
    assert calls == ["syncfs", "syncfs"]  # this folder's filesystem, and the tmpfs


def test_an_output_dir_that_is_the_folder_searched_warns_of_nothing(confedit_exe, tmp_path, fleet):
    """`--output-dir fleet` over `fleet`: the folder given is searched (only folders found in
    it are skipped), so its configs are inputs, not configs hidden from the run."""
    proc = run(confedit_exe, "offload", "fleet", "--output-dir", "fleet", cwd=tmp_path)
    lines = proc.stderr.decode().splitlines()
    assert [line for line in lines if line.startswith("warning:")] == []  # files' are indented
    assert (tmp_path / "fleet" / fleet["cas-2016"]).is_file()


def test_a_fifo_in_the_output_dir_is_written_and_the_run_ends(confedit_exe, tmp_path, fleet):
    """An output that is a FIFO is written directly; the flush at the end must not open it
    (an open for reading waits for a writer that never comes)."""
    fifo = tmp_path / "out" / fleet["cas-2016"]
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    with subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE) as reader:
        args = [confedit_exe, "offload", "fleet", "--output-dir", "out", "-q"]
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, timeout=60, check=False)
        received, _ = reader.communicate(timeout=60)
    assert proc.returncode == 3, proc.stderr  # the refused and the invalid files of the fleet
    assert received.startswith(b"<?xml") and b'sslFlags="None"' in received


def test_a_failed_flush_is_said_even_when_the_combined_diff_fails_too(
    confedit_exe, tmp_path, fleet
):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FAILING_SYNCFS)
    env = {**os.environ, "PYTHONPATH": str(hooks)}
    args = ("offload", "fleet", "--output-dir", "out", "--diff", "/dev/full", "-q")
    proc = run(confedit_exe, *args, cwd=tmp_path, env=env)
    assert proc.returncode == 3
    assert proc.stderr.decode().splitlines()[-2:] == [
        "out: the files were written, but flushing them to disk failed: Input/output error; "
        "run again",
        "/dev/full: cannot write: No space left on device; the files were written, the diff "
        "was not",
    ]


def test_a_run_in_which_every_file_failed_leaves_an_earlier_diff_as_it_was(
    confedit_exe, tmp_path, fleet
):
    # As a run over one file that fails writes nothing; a folder of one refused file emptied
    # the diff of an earlier run.
    earlier = tmp_path / "offload.diff"
    earlier.write_bytes(b"an earlier run's diff\n")
    check = (confedit_exe, "offload", "--check", "--diff", "offload.diff")
    failed = run(*check, "fleet/cas-ep", "fleet/cas-broken", cwd=tmp_path)
    assert failed.returncode == 3
    assert earlier.read_bytes() == b"an earlier run's diff\n"
    some = run(*check, "fleet/cas-ep", "fleet/cas-2016", cwd=tmp_path)
    assert some.returncode == 3
    assert earlier.read_bytes().startswith(b"--- a/fleet/cas-2016/applicationHost.config")


def test_an_output_folder_that_cannot_be_created_is_reported_under_the_input_it_was_for(
    confedit_exe, tmp_path, fleet
):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "fleet").write_bytes(b"a file where a folder must go")
    proc = run(
        confedit_exe,
        "offload",
        "fleet/cas-2016",
        "fleet/cas-2019",
        "--output-dir",
        "out",
        cwd=tmp_path,
    )
    assert proc.returncode == 3
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == (
        "fleet/cas-2016/applicationHost.config: cannot create the output folder "
        "out/fleet/cas-2016: Not a directory; check that --output-dir can be written to"
    )
    assert lines[1].startswith("fleet/cas-2019/ApplicationHost.config: cannot create")
