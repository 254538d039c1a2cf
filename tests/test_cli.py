"""The command line, run as a user runs it: the installed `confedit` in a subprocess."""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from confedit import cli, commands
from tests.conftest import CORPUS, EXCHANGE, REPO, SAMPLES
from tests.helpers import run_into_full_stdout, run_with_lost_stderr
from tests.test_schemas import validate

SAMPLE = SAMPLES / "exchange2013-cas.applicationHost.config"
PATCHED = SAMPLES / "exchange2013-cas.applicationHost.patched.config"
EXPECTED_DIFF = SAMPLES / "exchange2013-cas.offload.diff"
MALFORMED = EXCHANGE / "e2019-malformed.applicationHost.config"
REVERSE_PROXY = "reverse-proxy.applicationHost.config"


def run(exe: str, *args: str, cwd: Path = REPO, **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, check=False, **kwargs)


def copy_sample(tmp_path: Path) -> Path:
    target = tmp_path / "applicationHost.config"
    shutil.copyfile(SAMPLE, target)
    return target


def test_preview_prints_the_expected_diff_and_writes_nothing(confedit_exe):
    before = SAMPLE.read_bytes()
    proc = run(confedit_exe, "offload", "samples/exchange2013-cas.applicationHost.config")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_DIFF.read_bytes()
    assert SAMPLE.read_bytes() == before
    assert b"owa  " in proc.stderr and b"inherited from Default Web Site" in proc.stderr


def test_output_and_diff_files_match_the_expected_samples(confedit_exe, tmp_path):
    out, diff = tmp_path / "patched.config", tmp_path / "offload.diff"
    proc = run(
        confedit_exe,
        "offload",
        "samples/exchange2013-cas.applicationHost.config",
        "-o",
        str(out),
        "--diff",
        str(diff),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == PATCHED.read_bytes()
    assert diff.read_bytes() == EXPECTED_DIFF.read_bytes()
    assert proc.stdout == b""


def test_python_dash_m_runs_the_same_command():
    proc = subprocess.run(
        [sys.executable, "-m", "confedit", "--version"], capture_output=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith(b"confedit, version ")


def test_check_exits_1_with_work_and_0_when_offloaded(confedit_exe):
    assert run(confedit_exe, "offload", "--check", str(SAMPLE)).returncode == 1
    assert run(confedit_exe, "offload", "--check", str(PATCHED)).returncode == 0


def test_in_place_with_backup_keeps_mode_and_symlink(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)
    config.chmod(0o640)
    link = tmp_path / "link.config"
    link.symlink_to(config.name)
    proc = run(confedit_exe, "offload", str(link), "--in-place", "--backup", ".bak")
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert config.read_bytes() == PATCHED.read_bytes()
    assert (tmp_path / "link.config.bak").read_bytes() == SAMPLE.read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "applicationHost.config",
        "link.config",
        "link.config.bak",
    ]


def immutable(path: Path) -> bool:
    """Make `path` immutable (chattr +i: root, and a filesystem that has the flag)."""
    chattr = shutil.which("chattr")
    return chattr is not None and subprocess.run([chattr, "+i", path], check=False).returncode == 0


def test_a_file_with_nothing_to_change_gets_no_backup_and_an_empty_diff(confedit_exe, tmp_path):
    config = tmp_path / "applicationHost.config"
    shutil.copyfile(PATCHED, config)
    earlier = tmp_path / "applicationHost.config.bak"
    earlier.write_bytes(b"an earlier backup\n")
    diff = tmp_path / "offload.diff"
    diff.write_bytes(b"an earlier diff\n")
    args = ("offload", config.name, "--in-place", "--backup", ".bak", "--diff", diff.name)
    proc = run(confedit_exe, *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"already offloaded, nothing to do" in proc.stderr
    assert config.read_bytes() == PATCHED.read_bytes()
    assert earlier.read_bytes() == b"an earlier backup\n"  # not rewritten: no backup replaces it
    assert diff.read_bytes() == b""  # written, and empty
    earlier.unlink()
    assert run(confedit_exe, *args, cwd=tmp_path).returncode == 0
    assert not earlier.exists()


def test_an_input_that_cannot_be_replaced_after_its_backup_is_reported_so(confedit_exe, tmp_path):
    """The backup is renamed into place first; an immutable input then refuses its rename. The
    message must say the backup was written, not that nothing was changed."""
    config = copy_sample(tmp_path)
    backup = tmp_path / "applicationHost.config.bak"
    backup.write_bytes(b"an earlier backup\n")
    if not immutable(config):
        pytest.skip("chattr +i is not possible here")
    try:
        proc = run(confedit_exe, "offload", str(config), "--in-place", "--backup", ".bak")
    finally:
        subprocess.run(["chattr", "-i", config], check=True)
    assert proc.returncode == 3
    assert proc.stderr.decode().strip() == (
        f"{config}: cannot write: Operation not permitted; written before it: {backup}"
    )
    assert config.read_bytes() == SAMPLE.read_bytes() == backup.read_bytes()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_in_place_as_root_keeps_the_owner_of_the_file_and_gives_it_the_backup(
    confedit_exe, tmp_path
):
    # `sudo confedit --in-place` in a user's checkout must not leave root-owned files there.
    config = copy_sample(tmp_path)
    os.chown(config, 4321, 4322)
    proc = run(confedit_exe, "offload", str(config), "--in-place", "--backup", ".bak")
    assert proc.returncode == 0, proc.stderr
    backup = tmp_path / f"{config.name}.bak"
    assert config.read_bytes() == PATCHED.read_bytes()
    assert backup.read_bytes() == SAMPLE.read_bytes()
    for path in (config, backup):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)


def test_the_summary_says_changed_once_written_and_to_change_before(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)
    preview = run(confedit_exe, "offload", str(config), "--diff", str(tmp_path / "d"))
    assert b" targets to change (" in preview.stderr
    written = run(confedit_exe, "offload", str(config), "-o", str(tmp_path / "out.config"))
    assert b" targets changed (" in written.stderr
    folder = run(confedit_exe, "offload", str(tmp_path), "--output-dir", str(tmp_path / "o"))
    assert b" targets changed (" in folder.stderr


def test_output_naming_the_input_is_a_usage_error(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)
    proc = run(confedit_exe, "offload", str(config), "-o", str(config))
    assert proc.returncode == 2
    assert b"--in-place" in proc.stderr
    assert config.read_bytes() == SAMPLE.read_bytes()


def test_unknown_service_is_a_usage_error_listing_names(confedit_exe):
    proc = run(confedit_exe, "offload", str(SAMPLE), "--service", "outlook")
    assert proc.returncode == 2
    assert b"owa, ecp, ews, autodiscover, eas, oab, mapi, rpc" in proc.stderr


def test_malformed_input_is_one_line_exit_4_nothing_written(confedit_exe, tmp_path):
    out = tmp_path / "out.config"
    proc = run(confedit_exe, "offload", str(MALFORMED), "-o", str(out))
    assert proc.returncode == 4
    assert proc.stderr.decode().strip() == (
        f"{MALFORMED}:128:22: Opening and ending tag mismatch: sectionGroup line 52 and configSections"
    )
    assert not out.exists()


def test_back_end_target_is_refused_exit_3_nothing_written(confedit_exe, tmp_path):
    out = tmp_path / "out.config"
    proc = run(
        confedit_exe, "offload", str(SAMPLE), "--path", "Exchange Back End/owa", "-o", str(out)
    )
    assert proc.returncode == 3
    assert b"Exchange Back End site must keep requiring SSL" in proc.stderr
    assert b"Traceback" not in proc.stderr
    assert not out.exists()


def test_json_report_on_success_and_on_refusal(confedit_exe):
    proc = run(confedit_exe, "offload", str(SAMPLE), "--format", "json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["status"] == "changed"
    owa = report["targets"][0]
    assert owa["action"] == "inserted" and owa["before"] == {
        "sslFlags": "Ssl, Ssl128",
        "source": "Default Web Site",
        "line": owa["before"]["line"],
    }
    assert report["diff"].startswith("--- a/samples/")
    assert "MSExchangeOWAAppPool" in report["application_pools_to_recycle"]
    proc = run(
        confedit_exe, "offload", str(SAMPLE), "--format", "json", "--path", "Exchange Back End"
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 3 and report["status"] == "refused" and report["error"]["reasons"]


def test_output_to_a_device_node_writes_through_and_keeps_the_node(confedit_exe, tmp_path):
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    proc = run(confedit_exe, "offload", str(SAMPLE), "-o", str(node))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(node.stat().st_mode)


def test_output_to_a_fifo_is_written_directly(confedit_exe, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = run(confedit_exe, "offload", str(SAMPLE), "-o", str(fifo), timeout=30)
    if reader.is_alive() and proc.returncode != 0:  # confedit never opened it: release the reader
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert received == [PATCHED.read_bytes()]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_full_disk_leaves_everything_as_it_was(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)

    def small_files() -> None:  # Python ignores SIGXFSZ: the write fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = run(confedit_exe, "offload", str(config), "--in-place", preexec_fn=small_files)
    assert proc.returncode == 3
    assert b"cannot write" in proc.stderr and b"Traceback" not in proc.stderr
    assert config.read_bytes() == SAMPLE.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["applicationHost.config"]


def test_a_missing_folder_or_file_is_reported_in_one_line(confedit_exe, tmp_path):
    proc = run(confedit_exe, "offload", str(tmp_path / "nope.config"))
    assert proc.returncode == 4 and proc.stderr.count(b"\n") == 1 and b"no such file" in proc.stderr
    proc = run(confedit_exe, "offload", "-", cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stderr == b"-: no such file (confedit reads files, not stdin: name the file)\n"
    proc = run(confedit_exe, "offload", str(tmp_path))
    assert proc.returncode == 4 and b"is a directory" in proc.stderr
    proc = run(confedit_exe, "offload", str(SAMPLE), "-o", str(tmp_path / "no" / "dir" / "x"))
    assert proc.returncode == 3 and b"cannot write" in proc.stderr


def test_internal_errors_hide_the_traceback_unless_debug(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(commands, "offload", boom)
    runner = CliRunner()
    result = runner.invoke(cli.main, ["offload", str(SAMPLE)])
    assert result.exit_code == 3
    assert "internal error, please report: RuntimeError: kaboom" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(cli.main, ["offload", str(SAMPLE), "--debug"])
    assert result.exit_code == 3 and "Traceback" in result.output


def test_input_changed_between_read_and_write_is_refused(monkeypatch, tmp_path):
    config = copy_sample(tmp_path)
    real_offload = commands.offload

    def offload_then_touch(*args, **kwargs):
        result = real_offload(*args, **kwargs)
        config.write_bytes(config.read_bytes() + b"\n")
        return result

    monkeypatch.setattr(commands, "offload", offload_then_touch)
    result = CliRunner().invoke(cli.main, ["offload", str(config), "--in-place"])
    assert result.exit_code == 3
    assert "changed while confedit was working on it" in result.output
    assert config.read_bytes() == SAMPLE.read_bytes() + b"\n"


@pytest.mark.parametrize("command", ["audit", "offload"])
def test_a_path_given_as_the_site_is_a_usage_error(confedit_exe, command):
    proc = run(confedit_exe, command, "--site", "Default Web Site/owa", str(SAMPLE))
    assert proc.returncode == 2
    assert b"--site takes a site name, which has no '/' (here 'Default Web Site')" in proc.stderr
    assert b"Traceback" not in proc.stderr
    empty = run(confedit_exe, command, "--site", "/", str(SAMPLE))
    assert empty.returncode == 2
    assert b"a site name cannot be empty" in empty.stderr


@pytest.mark.parametrize("option", ["-o", "--diff", "--runbook"])
def test_stdout_under_another_name_is_stdout_for_the_json_report(confedit_exe, tmp_path, option):
    """A machine reading --format json needs exactly one JSON document on stdout."""
    piped = run(confedit_exe, "offload", str(SAMPLE), "--format", "json", option, "/dev/stdout")
    assert piped.returncode == 2
    assert json.loads(piped.stdout)["status"] == "usage"
    assert b"would both write to stdout" in piped.stderr
    three = run(confedit_exe, "offload", str(SAMPLE), "--format", "json", "-o", "-", "--diff", "-")
    assert three.returncode == 2 and b"would all write to stdout" in three.stderr
    report = tmp_path / "report.json"
    with report.open("wb") as stdout:  # `> report.json`, and the same file named as an output
        args = ("offload", str(SAMPLE), "--format", "json", option, str(report))
        redirected = subprocess.run([confedit_exe, *args], stdout=stdout, check=False)
    assert redirected.returncode == 2
    assert json.loads(report.read_bytes())["status"] == "usage"


def test_outputs_into_dev_null_beside_a_json_report_into_it_are_fine(confedit_exe, tmp_path):
    # cron and systemd run jobs with stdout on /dev/null: nothing there is read
    args = ["offload", str(SAMPLE), "--format", "json", "--diff", os.devnull, "-o", "out"]
    with Path(os.devnull).open("wb") as null:
        proc = subprocess.run([confedit_exe, *args], cwd=tmp_path, stdout=null, check=False)
    assert proc.returncode == 0


def close_stdout() -> None:
    os.close(1)


def test_a_closed_stdout_is_a_write_failure_not_a_crash(confedit_exe, tmp_path):
    args = ["offload", str(SAMPLE), "--format", "json", "-o", "out"]
    proc = run(confedit_exe, *args, cwd=tmp_path, preexec_fn=close_stdout)
    assert proc.returncode == 3
    assert proc.stderr.endswith(b"cannot write to stdout: it is closed\n")


def test_a_run_without_a_stdout_it_does_not_need_exits_with_its_own_code(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)
    proc = run(confedit_exe, "offload", "--check", str(config), preexec_fn=close_stdout)
    assert proc.returncode == 1, proc.stderr
    assert b"internal error" not in proc.stderr
    written = run(confedit_exe, "offload", str(config), "--in-place", "-q", preexec_fn=close_stdout)
    assert written.returncode == 0, written.stderr
    assert written.stderr == b""
    assert config.read_bytes() == PATCHED.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ["offload", "--in-place", "--format", "json"],  # the report
        ["offload", "--in-place", "--diff", "-"],  # an output
        ["audit"],  # the table
    ],
)
def test_a_closed_stdout_the_run_needs_stops_it_before_anything_is_written(
    confedit_exe, tmp_path, args
):
    config = copy_sample(tmp_path)
    proc = run(confedit_exe, args[0], str(config), *args[1:], preexec_fn=close_stdout)
    assert proc.returncode == 3
    assert proc.stderr == b"cannot write to stdout: it is closed\n"
    assert config.read_bytes() == SAMPLE.read_bytes()


def test_an_error_in_json_without_a_stdout_is_said_on_stderr(confedit_exe, tmp_path):
    closed = run(
        confedit_exe,
        *("offload", str(SAMPLE), "--in-place", "-o", "x", "--format", "json"),
        preexec_fn=close_stdout,
    )
    assert closed.returncode == 2
    assert closed.stderr == b"use either -o/--output or --in-place, not both\n"
    if not Path("/dev/full").exists():
        return
    with Path("/dev/full").open("wb") as full:
        args = ["offload", str(tmp_path / "nope.config"), "--format", "json"]
        missing = subprocess.run(
            [confedit_exe, *args], stdout=full, stderr=subprocess.PIPE, check=False
        )
    assert missing.returncode == 4
    assert missing.stderr == f"{tmp_path / 'nope.config'}: no such file\n".encode()


@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_a_stderr_that_cannot_be_written_leaves_the_run_its_exit_code(tmp_path, stderr):
    """What goes to stderr explains the run; the exit code is the work's (1 is 'work found',
    3 'nothing written': neither may stand for a lost report)."""
    config = copy_sample(tmp_path)

    def confedit(*args: str) -> subprocess.CompletedProcess[bytes]:
        return run_with_lost_stderr(stderr, tmp_path, *args)

    assert confedit("offload", "--check", config.name).returncode == 1
    assert confedit("offload", config.name, "--in-place", "--debug").returncode == 0
    assert config.read_bytes() == PATCHED.read_bytes()
    assert confedit("offload", "--check", config.name).returncode == 0
    assert confedit("audit", config.name).returncode == 0
    missing = confedit("offload", "missing.config", "--debug")
    assert (missing.returncode, missing.stdout) == (4, b"")  # no traceback on stdout either
    assert confedit("offload", "--service", "nope", config.name).returncode == 2  # click's


def test_a_full_stdout_after_the_files_were_written_says_that_they_were(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)
    args = [confedit_exe, "offload", str(config), "--in-place", "--format", "json", "-q"]
    proc = run_into_full_stdout(args, tmp_path)
    assert proc.returncode == 3
    assert proc.stderr == (
        b"cannot write to stdout: No space left on device; the files were written\n"
    )
    assert config.read_bytes() == PATCHED.read_bytes()


@pytest.mark.parametrize("command", ["offload", "audit"])
def test_an_internal_error_is_a_json_report_too(monkeypatch, command):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(commands, "offload", boom)
    monkeypatch.setattr("confedit.auditing.audit", boom)
    result = CliRunner().invoke(cli.main, [command, str(SAMPLE), "--format", "json"])
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    validate(document)
    assert (document["status"], document["exit_code"]) == ("internal", 3)
    assert document["file"] == str(SAMPLE)
    assert document["error"]["message"].startswith("internal error, please report: RuntimeError")
    assert "internal error, please report: RuntimeError: kaboom" in result.stderr


def non_utf8_config(tmp_path: Path) -> Path:
    """A config in a folder whose name is not UTF-8 (Linux allows any bytes but / and NUL)."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/cas\xff"))
    folder.mkdir()
    config = folder / "applicationHost.config"
    shutil.copyfile(SAMPLE, config)
    return config


@pytest.mark.parametrize("command", ["offload", "audit"])
def test_a_file_name_that_is_not_utf8_is_named_exactly_in_the_json_report(
    confedit_exe, tmp_path, command
):
    config = non_utf8_config(tmp_path)
    name = os.path.relpath(config, tmp_path)
    extra = ["-o", "out.config"] if command == "offload" else []
    proc = run(confedit_exe, command, name, *extra, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout.decode("utf-8"))  # strict: valid UTF-8
    validate(document)
    assert b"\\udcff" in proc.stdout  # the byte 0xFF as a JSON escape
    assert os.fsencode(document["file"]) == b"cas\xff/applicationHost.config"
    if command == "offload":
        assert "a/cas\udcff/applicationHost.config" in document["diff"]


def test_a_file_name_that_is_not_utf8_in_text(confedit_exe, tmp_path):
    """stdout (a table, the diff) gets the name's bytes, in any locale; stderr the escape that
    the JSON report uses too."""
    name = os.path.relpath(non_utf8_config(tmp_path), tmp_path)
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}  # as in en_US.UTF-8
    table = run(confedit_exe, "audit", name, cwd=tmp_path, env=strict)
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(b"cas\xff/applicationHost.config\n")
    preview = run(confedit_exe, "offload", name, cwd=tmp_path, env=strict)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith(b"--- a/cas\xff/applicationHost.config\n")
    assert b"\ncas\\udcff/applicationHost.config: 7 of 7 targets to change" in preview.stderr
    runbook = run(confedit_exe, "offload", name, "-o", "o", "--runbook", "r.ps1", cwd=tmp_path)
    assert runbook.returncode == 0, runbook.stderr


@pytest.mark.parametrize("gate", [[], ["--offloaded"]])
@pytest.mark.parametrize("config", [SAMPLE, PATCHED], ids=["not-offloaded", "offloaded"])
def test_an_audit_report_carries_its_status_and_the_exit_code(confedit_exe, gate, config):
    proc = run(confedit_exe, "audit", "--format", "json", *gate, str(config))
    report = json.loads(proc.stdout)
    assert report["exit_code"] == proc.returncode == (1 if gate and config == SAMPLE else 0)
    assert report["status"] == ("offloaded" if config == PATCHED else "not-offloaded")


def test_audit_table_and_drift_gate(confedit_exe):
    proc = run(confedit_exe, "audit", str(SAMPLE))
    assert proc.returncode == 0
    text = proc.stdout.decode()
    assert "Default Web Site (front-end)" in text and "Exchange Back End (back-end)" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    gate = run(confedit_exe, "audit", "--offloaded", str(SAMPLE))
    assert gate.returncode == 1 and b"NOT offloaded: run confedit offload" in gate.stdout
    assert run(confedit_exe, "audit", "--offloaded", str(PATCHED)).returncode == 0
    # A server without front-end directories: offload would refuse it, so it is not advised.
    plain = run(confedit_exe, "audit", "--offloaded", str(CORPUS / "iis" / REVERSE_PROXY))
    assert plain.returncode == 1
    assert b"no Exchange front-end virtual directory" in plain.stdout
    assert b"run confedit offload" not in plain.stdout
    report = json.loads(run(confedit_exe, "audit", "--format", "json", str(PATCHED)).stdout)
    assert report["all_offloaded"] is True
    assert {row["service"] for row in report["offloaded"]} == {
        "owa",
        "ecp",
        "ews",
        "autodiscover",
        "eas",
        "oab",
        "mapi",
    }


@pytest.mark.parametrize("args", [[], ["--offloaded"], ["--format", "json"]])
def test_audit_says_an_unlocked_access_section_on_stderr_as_every_warning(
    confedit_exe, tmp_path, args
):
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    config = tmp_path / "applicationHost.config"
    config.write_bytes(
        PATCHED.read_bytes().replace(registration, registration.replace(b"Deny", b"Allow"))
    )
    proc = run(confedit_exe, "audit", *args, config.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"warning" not in proc.stdout
    assert proc.stderr.startswith(b"warning: the access section is unlocked for autodiscover,")
    assert len(proc.stderr.splitlines()) == 1
    quiet = run(confedit_exe, "audit", *args, "-q", config.name, cwd=tmp_path)
    assert (quiet.stdout, quiet.stderr) == (proc.stdout, b"")


def snapshot_folder(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--diff", "{config}"], b"--diff names the input file"),
        (["--runbook", "./{config}"], b"--runbook names the input file"),
        (["--check", "--diff", "{config}"], b"--diff names the input file"),
        (["--in-place", "--diff", "{config}"], b"--diff names the input file"),
        (["-o", "x", "--diff", "x"], b"-o and --diff both write x"),
        (["--diff", "x", "--runbook", "./x"], b"--diff and --runbook both write"),
        # the backup is an output too: the original would be lost
        (["--in-place", "--backup", ".bak", "--diff", "{config}.bak"], b"--backup and --diff"),
        (["--in-place", "--backup", ".b", "--runbook", "{config}.b"], b"--backup and --runbook"),
    ],
)
def test_an_output_over_the_input_or_another_output_is_a_usage_error(
    confedit_exe, tmp_path, args, message
):
    """Writing the diff or the runbook over the config would lose it, even under --check."""
    config = copy_sample(tmp_path)
    before = snapshot_folder(tmp_path)
    filled = [arg.format(config=config.name) for arg in args]
    proc = run(confedit_exe, "offload", config.name, *filled, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert snapshot_folder(tmp_path) == before


def test_a_backup_over_another_input_or_through_a_symlink_is_refused(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)
    other = tmp_path / "applicationHost.config.bak"
    shutil.copyfile(EXCHANGE / "e2016.applicationHost.config", other)
    before = snapshot_folder(tmp_path)
    args = ("--in-place", "--backup", ".bak")
    proc = run(confedit_exe, "offload", config.name, other.name, *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert b"would write the backup of applicationHost.config over the input" in proc.stderr
    assert snapshot_folder(tmp_path) == before
    other.unlink()
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"precious\n")
    other.symlink_to(precious.name)
    proc = run(confedit_exe, "offload", config.name, *args, cwd=tmp_path)
    assert proc.returncode == 3
    assert b"is a symbolic link" in proc.stderr
    assert precious.read_bytes() == b"precious\n"
    assert config.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize("written", [["--in-place", "--backup", ".orig"], ["-o", "out.config"]])
def test_a_diff_that_cannot_be_written_leaves_the_config_as_it_was(confedit_exe, tmp_path, written):
    """The outputs are written together: none of them, if one cannot be."""
    config = copy_sample(tmp_path)
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"a file, not a folder\n")
    before = snapshot_folder(tmp_path)
    diff = str(blocked / "x.diff")
    proc = run(confedit_exe, "offload", config.name, *written, "--diff", diff, cwd=tmp_path)
    assert proc.returncode == 3
    assert b"cannot write" in proc.stderr and b"nothing was changed" in proc.stderr
    assert snapshot_folder(tmp_path) == before


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_an_unreadable_input_is_that_files_error_and_the_others_go_on(confedit_exe, tmp_path):
    """As root, permissions apply only without the capabilities that override them."""
    unreadable = copy_sample(tmp_path)
    unreadable.chmod(0)
    readable = tmp_path / "cas02.applicationHost.config"
    shutil.copyfile(SAMPLE, readable)
    drop = "-dac_override,-dac_read_search,-fowner"
    as_user = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", confedit_exe]
    proc = subprocess.run(
        [*as_user, "offload", unreadable.name, readable.name, "--check"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 4, proc.stderr
    assert b"applicationHost.config: permission denied" in proc.stderr
    assert b"2 files: 1 need work, 0 unchanged, 0 refused, 1 invalid" in proc.stderr


def test_a_closed_stdout_ends_quietly_and_a_full_one_is_a_write_failure(confedit_exe, tmp_path):
    """`confedit audit ... | head` is ordinary use: no "internal error"; /dev/full is an
    output that cannot be written (exit 3), as a file would be."""
    fleet = tmp_path / "fleet"
    for index in range(40):
        (fleet / f"cas{index:02d}").mkdir(parents=True)
        shutil.copyfile(SAMPLE, fleet / f"cas{index:02d}" / "applicationHost.config")
    proc = subprocess.Popen(
        [confedit_exe, "audit", "fleet", "-q"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert err == b""
    # A reader that goes away while the output is being written: a write into the pipe then
    # returns short without failing, which must still end as a closed stdout, not exit 0.
    large = EXCHANGE / "e2019.applicationHost.config"  # more than a pipe holds
    for output in ("-", "/dev/stdout"):  # the stream itself, and a path that leads to it
        proc = subprocess.Popen(
            [confedit_exe, "offload", str(large), "-o", output, "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert len(proc.stdout.read(10)) == 10
        time.sleep(0.3)  # confedit now waits on the full pipe
        proc.stdout.close()
        assert proc.wait(timeout=60) == 141, proc.stderr.read()
        assert proc.stderr.read() == b""
    full_device = Path("/dev/full")
    if not full_device.exists():
        return
    with full_device.open("wb") as full:
        done = subprocess.run(
            [confedit_exe, "offload", str(SAMPLE), "-o", "-", "-q"],
            stdout=full,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert done.returncode == 3
    assert done.stderr == b"cannot write to stdout: No space left on device\n"


def test_the_site_takes_one_trailing_slash_as_paths_do(confedit_exe):
    proc = run(confedit_exe, "offload", str(SAMPLE), "--site", "Default Web Site/", "--check")
    assert proc.returncode == 1, proc.stderr
    audit = run(confedit_exe, "audit", str(SAMPLE), "--site", "Default Web Site/")
    assert audit.returncode == 0 and b"Default Web Site (front-end)" in audit.stdout


def test_output_to_dev_stdout_and_a_fifo_is_written_as_it_is(confedit_exe, tmp_path):
    """/dev/stdout leads to a pipe here: it is written directly, never replaced by a rename
    (nor taken for a missing file because its link resolves to 'pipe:[...]')."""
    proc = run(confedit_exe, "offload", str(SAMPLE), "-o", "/dev/stdout", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == PATCHED.read_bytes()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    proc = run(confedit_exe, "offload", str(SAMPLE), "-o", str(fifo), "-q")
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert received == [PATCHED.read_bytes()]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_stream_output_that_fails_leaves_every_file_as_it_was(confedit_exe, tmp_path):
    """Streams (here a folder named as the diff, and /dev/full) are written before any file is
    renamed into place: when one fails, the config and its backup are as they were."""
    config = copy_sample(tmp_path)
    (tmp_path / "diffs").mkdir()
    before = snapshot_folder(tmp_path)
    in_place = ("--in-place", "--backup", ".bak")
    proc = run(confedit_exe, "offload", config.name, *in_place, "--diff", "diffs", cwd=tmp_path)
    assert proc.returncode == 3
    assert proc.stderr == b"diffs: is a directory; nothing was changed\n"
    assert snapshot_folder(tmp_path) == before
    if Path("/dev/full").exists():
        args = (config.name, *in_place, "--diff", "/dev/full")
        proc = run(confedit_exe, "offload", *args, cwd=tmp_path)
        assert proc.returncode == 3 and b"nothing was changed" in proc.stderr
        assert snapshot_folder(tmp_path) == before


def test_paths_read_from_the_file_are_shown_escaped_on_one_line(confedit_exe, tmp_path):
    """A location path or an sslFlags value with a line break or a C1 control (CSI, which some
    terminals read as ESC [) written as character references must not split a warning, a
    target's line or a table row, nor reach the terminal; the JSON report keeps the path as the
    parser reads it."""
    config = tmp_path / "applicationHost.config"
    raw = (EXCHANGE / "e2019.applicationHost.config").read_bytes()
    odd = (
        b'<location path="Default Web Site/owa/x&#10;y&#x9b;31m">\r\n<system.webServer>'
        b'<security><access sslFlags="Ssl" /></security></system.webServer>\r\n</location>\r\n'
    )
    end = raw.rindex(b"</configuration>")
    oab = raw.index(b'sslFlags="Ssl, Ssl128"', raw.index(b'<location path="Default Web Site/OAB"'))
    raw = raw[:oab] + b'sslFlags="Ssl,&#10;Ssl128"' + raw[oab + 22 : end] + odd + raw[end:]
    config.write_bytes(raw)
    offload = run(confedit_exe, "offload", "--check", str(config))
    assert offload.returncode == 1, offload.stderr
    lines = offload.stderr.decode().splitlines()
    warning = next(line for line in lines if "below" in line)
    assert "Default Web Site/owa/x\\ny\\x9b31m; offload them too" in warning
    assert any(line.endswith('(was "Ssl,\\nSsl128", set here)') for line in lines)
    audit = run(confedit_exe, "audit", str(config))
    assert audit.returncode == 0, audit.stderr
    assert "  /x\\ny\\x9b31m  " in audit.stdout.decode()
    for text in (offload.stderr, audit.stdout):
        assert "\x9b" not in text.decode()
    report = json.loads(run(confedit_exe, "offload", "--format", "json", str(config)).stdout)
    messages = [finding["message"] for finding in report["findings"]]
    assert any("Default Web Site/owa/x\ny\x9b31m;" in message for message in messages)


def test_help_names_the_options_as_the_readme_does(confedit_exe):
    """The README's table writes `--site NAME` and has `--color` colour what each command prints:
    the diff for offload, the tables for audit (click's default metavar said TEXT, and both
    commands' help said "the diff and tables")."""
    offload = run(confedit_exe, "offload", "--help").stdout.decode()
    audit = run(confedit_exe, "audit", "--help").stdout.decode()
    for text in (offload, audit):
        assert "--site NAME" in text
        assert "--site TEXT" not in text
    assert "Colour the diff on stdout" in " ".join(offload.split())
    assert "Colour the tables (auto" in " ".join(audit.split())
