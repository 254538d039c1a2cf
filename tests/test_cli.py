"""The command line, run as a user runs it: the installed `confedit` in a subprocess. What both
commands share is tested here (options, streams, errors, names, workers); what one command does,
in test_offload_command.py and test_audit_command.py."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from confedit import cli, command_common, offload_command
from confedit.batch import Input
from tests.conftest import (
    DIED,
    EXCHANGE,
    PATCHED,
    SAMPLE,
    close_stdout,
    copy_sample,
    dying_worker_env,
    run,
    two_servers,
)
from tests.helpers import run_in_pty, run_with_lost_stderr
from tests.test_schemas import validate


def test_python_dash_m_runs_the_same_command():
    proc = subprocess.run(
        [sys.executable, "-m", "confedit", "--version"], capture_output=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith(b"confedit, version ")


def test_unknown_service_is_a_usage_error_listing_names(confedit_exe):
    proc = run(confedit_exe, "offload", str(SAMPLE), "--service", "outlook")
    assert proc.returncode == 2
    assert b"owa, ecp, ews, autodiscover, eas, oab, mapi, rpc" in proc.stderr


def test_internal_errors_hide_the_traceback_unless_debug(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(offload_command, "offload", boom)
    runner = CliRunner()
    result = runner.invoke(cli.main, ["offload", str(SAMPLE)])
    assert result.exit_code == 3
    assert "internal error, please report: RuntimeError: kaboom" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(cli.main, ["offload", str(SAMPLE), "--debug"])
    assert result.exit_code == 3 and "Traceback" in result.output


def test_an_internal_error_reads_the_same_over_one_file_or_several(monkeypatch):
    """A bug is reported in the same words by cli.py (one file) and for a file of several."""

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(offload_command, "offload", boom)
    said = "internal error, please report: RuntimeError: kaboom"
    one = CliRunner().invoke(cli.main, ["offload", str(SAMPLE)])
    assert one.output.splitlines()[-1] == f"{said} (run with --debug for the traceback)"
    item = Input(SAMPLE, "x")
    error = command_common.crash(item, RuntimeError("kaboom"), debug=False, writes=False)
    assert str(error) == f"{SAMPLE}: {said} (run with --debug for the traceback)"
    error = command_common.crash(item, RuntimeError("kaboom"), debug=True, writes=False)
    assert error.message == f"{said}\nRuntimeError: kaboom"  # the traceback, with no frame


@pytest.mark.parametrize("command", ["audit", "offload"])
def test_a_path_given_as_the_site_is_a_usage_error(confedit_exe, command):
    proc = run(confedit_exe, command, "--site", "Default Web Site/owa", str(SAMPLE))
    assert proc.returncode == 2
    assert b"--site takes a site name, which has no '/' (here 'Default Web Site')" in proc.stderr
    assert b"Traceback" not in proc.stderr
    empty = run(confedit_exe, command, "--site", "/", str(SAMPLE))
    assert empty.returncode == 2
    assert b"a site name cannot be empty" in empty.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["offload", "--in-place", "--format", "json"],  # the report
        ["offload", "--in-place", "--diff", "-"],  # an output
        ["offload", "--in-place", "--diff", "/dev/stdout"],  # by a name that leads nowhere then
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


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["offload", "--diff", "out.diff"],
            "interrupted: files not yet written were left as they were; no temporary file remains",
        ),
        # they write no file: they said the words of an offload that writes
        (["offload"], "interrupted"),  # the preview
        (["offload", "--check"], "interrupted"),
        (["audit"], "interrupted"),
    ],
)
def test_an_interrupted_run_says_what_became_of_its_files(monkeypatch, tmp_path, args, said):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(offload_command, "offload", ctrl_c)
    monkeypatch.setattr("confedit.audit_command.audit", ctrl_c)
    result = CliRunner().invoke(cli.main, [*args, str(SAMPLE)])
    assert result.exit_code == 130
    assert result.stderr.splitlines()[-1] == said


@pytest.mark.parametrize("command", ["offload", "audit"])
def test_an_internal_error_is_a_json_report_too(monkeypatch, command):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(offload_command, "offload", boom)
    monkeypatch.setattr("confedit.audit_command.audit", boom)
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


@pytest.mark.parametrize("command", ["audit", "offload"])
def test_a_site_name_that_is_not_utf8_is_a_usage_error(confedit_exe, command):
    """Bytes the terminal's encoding cannot decode (0xFF here) can name no site of a config,
    which is Unicode text; they were an internal error where the name was encoded."""
    site = os.fsdecode(b"Default Web Sit\xff")
    proc = run(confedit_exe, command, "--site", site, str(SAMPLE), "--format", "json")
    assert proc.returncode == 2, proc.stderr
    assert b"'Default Web Sit\\udcff' is not UTF-8 text" in proc.stderr
    assert b"internal error" not in proc.stderr


def test_the_site_takes_one_trailing_slash_as_paths_do(confedit_exe):
    proc = run(confedit_exe, "offload", str(SAMPLE), "--site", "Default Web Site/", "--check")
    assert proc.returncode == 1, proc.stderr
    audit = run(confedit_exe, "audit", str(SAMPLE), "--site", "Default Web Site/")
    assert audit.returncode == 0 and b"Default Web Site (front-end)" in audit.stdout


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


def test_help_says_the_gates_exit_1_for_a_back_end_without_ssl_as_the_readme_does(confedit_exe):
    """The README's exit code 1 covers an Exchange Back End that does not require SSL, for
    `audit --offloaded` and `audit --fleet`; the help named only targets not offloaded and
    servers that disagree, so a gate's 1 on an offloaded fleet was left unexplained."""
    main = " ".join(run(confedit_exe, "--help").stdout.decode().split())
    audit = " ".join(run(confedit_exe, "audit", "--help").stdout.decode().split())
    assert "(audit: a target not offloaded, an Exchange Back End that does not require SSL," in (
        main
    )
    assert "exit 1 if one is not, or if the Exchange Back End does not require SSL." in audit
    assert "exit 1 if the servers disagree, or if an Exchange Back End does not require" in audit


@pytest.mark.parametrize("columns", ["80", "60"])
def test_help_lists_each_command_with_a_whole_summary(confedit_exe, columns):
    """click cut the first sentence of each command's help to fit its list ("Show the effective
    SSL policy of every location of the..."), a new user's first sight of the tool."""
    env = {**os.environ, "COLUMNS": columns}
    text = run(confedit_exe, "--help", env=env).stdout.decode()
    commands = " ".join(text.partition("Commands:")[2].split())
    assert "..." not in commands
    assert "audit Show the effective SSL policy of the Exchange sites." in commands
    assert 'offload Offload SSL: set sslFlags="None" on the Exchange front end.' in commands


def test_help_shows_the_size_limits_default_as_a_size(confedit_exe):
    """click writes a default given as text in parentheses, as a description: (512M)."""
    for command in ("offload", "audit"):
        text = " ".join(run(confedit_exe, command, "--help").stdout.decode().split())
        assert "[default: 512M]" in text


# --- several files -----------------------------------------------------------------------------


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


@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_several_files_with_a_stderr_that_cannot_be_written(tmp_path, stderr):
    two_servers(tmp_path)

    def confedit(*args: str) -> int:
        return run_with_lost_stderr(stderr, tmp_path, *args).returncode

    assert confedit("offload", ".", "--check") == 1
    assert confedit("offload", ".", "--in-place") == 0
    assert {path.read_bytes() for path in tmp_path.rglob("*.config")} == {PATCHED.read_bytes()}
    assert confedit("audit", ".", "--offloaded") == 0


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


# What a command loads is its start-up time: modules only some runs need are loaded by those.
LOADED = """import sys
from confedit import cli
prefixes = tuple(sys.stdin.read().split())
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(name for name in sys.modules if name.startswith(prefixes))))
"""


def loaded(args: list[str], prefixes: str, cwd: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        input=prefixes,
        capture_output=True,
        text=True,
        cwd=cwd,
        check=True,
    )
    return proc.stdout.splitlines()[-1].split()


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["offload", "--help"]])
def test_help_and_version_load_neither_lxml_nor_xmldiff_nor_the_workers(args, tmp_path):
    assert loaded(args, "lxml xmldiff multiprocessing confedit.workers", tmp_path) == []


def test_a_run_over_one_file_loads_no_worker_processes(tmp_path):
    args = ["offload", str(SAMPLE), "-o", "out.config", "-q"]
    prefixes = "multiprocessing pickle confedit.workers"
    assert loaded(args, prefixes, tmp_path) == []
    assert (tmp_path / "out.config").is_file()  # the run did happen
    two_servers(tmp_path)
    several = loaded(["offload", "cas01", "cas02", "--output-dir", "o", "-q"], prefixes, tmp_path)
    assert "confedit.workers" in several  # ... and the check can see them


def test_only_runs_with_since_or_a_runbook_load_git_or_hashlib(tmp_path):
    args = ["offload", str(SAMPLE), "-o", "out.config", "-q"]
    unused = "confedit.baseline subprocess confedit.runbook hashlib"
    assert loaded(args, unused, tmp_path) == []
    assert (tmp_path / "out.config").is_file()  # the run did happen
    # ... and the check can see them
    since = ["offload", str(SAMPLE), "--check", "--since", "HEAD", "-q"]
    assert loaded(since, "confedit.baseline", tmp_path) == ["confedit.baseline"]
    runbook = [*args, "--runbook", "out.ps1"]
    assert loaded(runbook, "confedit.runbook hashlib", tmp_path) == ["confedit.runbook", "hashlib"]


@pytest.mark.parametrize(
    "args",
    [
        ["offload", "cas01", "--output-dir", "o", "-q"],  # a folder with one config in it
        ["audit", "--fleet", "cas01"],
        ["audit", "cas01", "cas01/applicationHost.config"],  # one file, named twice
        ["offload", "cas01", "cas02", "--output-dir", "o", "-q", "--jobs", "1"],
        ["audit", "cas01", "cas02", "--jobs", "1"],
    ],
)
def test_a_run_in_one_process_loads_no_worker_processes(args, tmp_path):
    two_servers(tmp_path)
    assert loaded(args, "multiprocessing pickle confedit.workers", tmp_path) == []


def test_bash_completes_commands_and_service_names(confedit_exe):
    """As a user's shell does: the script `_CONFEDIT_COMPLETE=bash_source` prints, evaluated in
    bash, asked for what follows a partly typed word."""

    def completions(*words: str) -> list[str]:
        script = (
            f'eval "$(_CONFEDIT_COMPLETE=bash_source {confedit_exe})"; '
            f"COMP_WORDS=({shlex.join(words)}); COMP_CWORD={len(words) - 1}; "
            '_confedit_completion confedit; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        proc = subprocess.run(["bash", "-c", script], capture_output=True, check=True)
        return proc.stdout.decode().split()

    assert completions("confedit", "au") == ["audit"]
    assert completions("confedit", "offload", "--service", "e") == ["ecp", "ews", "eas"]
    assert completions("confedit", "offload", "--format", "") == ["text", "json"]


@pytest.mark.parametrize("command", [["offload", "--check"], ["audit"], ["audit", "--fleet"]])
def test_a_symlinked_server_folder_is_named_as_not_searched(confedit_exe, tmp_path, command):
    """A folder search does not follow links; a server reached by one must not go unmentioned."""
    for server in ("cas1", "elsewhere/cas2"):
        (tmp_path / server).mkdir(parents=True)
        shutil.copyfile(SAMPLE, tmp_path / server / "applicationHost.config")
    (tmp_path / "exports").mkdir()
    (tmp_path / "cas1").rename(tmp_path / "exports" / "cas1")
    (tmp_path / "exports" / "cas2").symlink_to(tmp_path / "elsewhere" / "cas2")
    proc = run(confedit_exe, *command, "exports", cwd=tmp_path)
    warning = "warning: exports/cas2 is a symlinked folder, not searched: name it to search it"
    assert warning in proc.stderr.decode().splitlines()
    assert b"exports/cas2/applicationHost.config" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", [["offload", "--check", "-q"], ["audit", "-q"]])
def test_quiet_keeps_the_symlinked_folder_warnings_off_stderr(confedit_exe, tmp_path, command):
    """-q is only errors on stderr: the warnings of a folder search too."""
    (tmp_path / "exports" / "cas1").mkdir(parents=True)
    shutil.copyfile(SAMPLE, tmp_path / "exports" / "cas1" / "applicationHost.config")
    (tmp_path / "exports" / "cas2").symlink_to(tmp_path / "exports" / "cas1")
    proc = run(confedit_exe, *command, "exports", cwd=tmp_path)
    assert b"warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("link", "named"),
    [
        ("exports/cas2", ["exports"]),  # a link to a folder searched in the same tree
        ("exports/cas2", ["exports", "elsewhere"]),  # to a folder named too
        ("exports/patched", ["exports", "--output-dir", "exports/out"]),  # to the output folder
    ],
)
def test_no_warning_for_a_symlinked_folder_the_run_searches_or_writes(
    confedit_exe, tmp_path, link, named
):
    """'name it to search it' is wrong advice for a folder whose files are in the run already,
    and for the output folder, whose patched files are not inputs."""
    for server in ("exports/cas1", "elsewhere/cas2"):
        (tmp_path / server).mkdir(parents=True)
        shutil.copyfile(SAMPLE, tmp_path / server / "applicationHost.config")
    (tmp_path / "exports" / "out").mkdir()
    target = {"exports/cas2": "exports/cas1", "exports/patched": "exports/out"}[link]
    if "elsewhere" in named:
        target = "elsewhere/cas2"
    (tmp_path / link).symlink_to(tmp_path / target)
    proc = run(confedit_exe, "offload", *named, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"symlinked" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "case",
    [
        (b'SslFlags="Ssl"', 4, ":244: unrecognized attribute 'SslFlags' on <access>"),
        (b'configSource="oab.config"', 3, "refused: the access section at Default Web Site/OAB"),
    ],
)
@pytest.mark.parametrize("command", ["offload", "audit"])
def test_an_access_section_confedit_cannot_read_stops_both_commands(
    confedit_exe, tmp_path, case, command
):
    attributes, code, said = case
    raw = SAMPLE.read_bytes()
    access = raw.index(b"<access ", raw.index(b'<location path="Default Web Site/OAB"'))
    config = tmp_path / "applicationHost.config"
    config.write_bytes(raw[:access] + b"<access " + attributes + raw[raw.index(b" />", access) :])
    args = [command, str(config)] + (["-o", str(tmp_path / "out")] if command == "offload" else [])
    result = run(confedit_exe, *args)
    assert result.returncode == code
    [line] = result.stderr.decode().splitlines()
    assert said in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("offload", "applicationHost.config/", "--in-place"),
        ("offload", "applicationHost.config/.", "--in-place"),
        ("offload", "applicationHost.config/", "--check"),
        ("audit", "applicationHost.config/"),
    ],
)
def test_a_file_named_with_a_trailing_slash_is_not_read(confedit_exe, tmp_path, args):
    """`a.config/` (and `a.config/.`) names a folder, and the system refuses to open a file so
    (ENOTDIR); click's Path dropped the slash (and the dot) and the file was read, rewritten too
    with --in-place."""
    config = copy_sample(tmp_path)
    shutil.copyfile(SAMPLE, tmp_path / "other.config")
    proc = run(confedit_exe, *args, cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stderr.decode().splitlines() == [f"{args[1]}: cannot read: Not a directory"]
    assert proc.stdout == b""
    assert config.read_bytes() == SAMPLE.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applicationHost.config", "other.config"]


SLASHED_ERROR = "applicationHost.config/: cannot read: Not a directory"


@pytest.mark.parametrize("command", ["offload", "audit"])
def test_the_json_report_of_a_file_named_with_a_trailing_slash_names_it_so(
    confedit_exe, tmp_path, command
):
    """The report named it `applicationHost.config`, the file that was not read."""
    copy_sample(tmp_path)
    proc = run(confedit_exe, command, "applicationHost.config/", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 4
    document = json.loads(proc.stdout)
    validate(document)
    assert (document["file"], document["error"]["message"]) == (
        "applicationHost.config/",
        SLASHED_ERROR,
    )


@pytest.mark.parametrize(
    ("options", "patched", "written"),
    [
        (
            ["--output-dir", "out"],
            "out/other.config",
            ["applicationHost.config", "other.config", "out/other.config"],
        ),
        (
            ["--in-place", "--backup", ".bak"],
            "other.config",
            ["applicationHost.config", "other.config", "other.config.bak"],
        ),
    ],
)
def test_a_file_named_with_a_trailing_slash_among_several_is_its_own_error_line(
    confedit_exe, tmp_path, options, patched, written
):
    """Over several CONFIGs, `a.config/` fails as a missing file does: its own line, the other
    files done, exit 4. It stopped the whole run, and no file was done."""
    config = copy_sample(tmp_path)
    shutil.copyfile(SAMPLE, tmp_path / "other.config")
    args = ["applicationHost.config/", "other.config", "missing.config", *options]
    proc = run(confedit_exe, "offload", *args, cwd=tmp_path)
    assert proc.returncode == 4
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == SLASHED_ERROR
    assert lines[1].startswith("other.config: 7 of 7 targets changed")
    assert lines[-2:] == [
        "missing.config: no such file",
        "3 files: 1 changed, 0 unchanged, 0 refused, 2 invalid",
    ]
    assert config.read_bytes() == SAMPLE.read_bytes()  # neither read nor written for the slash
    assert (tmp_path / patched).read_bytes() == PATCHED.read_bytes()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == written


def test_what_would_be_written_for_a_file_named_with_a_trailing_slash_is_not_checked(
    confedit_exe, tmp_path
):
    """Nothing is written for `a.config/`: its backup would not overwrite the input
    `a.config.bak`, which is done (a usage error stopped the run, as if `a.config` were done)."""
    config = copy_sample(tmp_path)
    shutil.copyfile(SAMPLE, tmp_path / "applicationHost.config.bak")
    args = ["applicationHost.config/", "applicationHost.config.bak", "--in-place"]
    proc = run(confedit_exe, "offload", *args, "--backup", ".bak", cwd=tmp_path)
    assert proc.returncode == 4
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == SLASHED_ERROR
    assert lines[-1] == "2 files: 1 changed, 0 unchanged, 0 refused, 1 invalid"
    assert config.read_bytes() == SAMPLE.read_bytes()
    assert (tmp_path / "applicationHost.config.bak").read_bytes() == PATCHED.read_bytes()
    assert (tmp_path / "applicationHost.config.bak.bak").read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize(
    ("named", "options", "error"),
    [
        (
            "out/other.config",
            ["--output-dir", "out"],
            "the input out/other.config is inside --output-dir out (an earlier run's output?) "
            "and would be overwritten by the output of other.config; name the configs to "
            "offload without that folder",
        ),
        (
            "other.config.bak",
            ["--in-place", "--backup", ".bak"],
            "--backup .bak would write the backup of other.config over the input "
            "other.config.bak; choose another suffix",
        ),
        (
            "runbooks/other.config.ps1",
            ["--runbook-dir", "runbooks", "--output-dir", "out"],
            "--runbook-dir would write runbooks/other.config.ps1 over the input "
            "runbooks/other.config.ps1; choose another folder",
        ),
    ],
)
def test_a_file_named_with_a_trailing_slash_is_not_written_over_by_another_output(
    confedit_exe, tmp_path, named, options, error
):
    """Nothing is read or written for `a.config/`, and nothing else is written over it: named
    without the slash, that file stops the run as an input an output would overwrite. Named with
    it, it was overwritten by the output, backup or runbook of another file, and lost."""
    shutil.copyfile(SAMPLE, tmp_path / "other.config")
    precious = tmp_path / named
    precious.parent.mkdir(exist_ok=True)
    precious.write_bytes(b"not to be lost")
    proc = run(confedit_exe, "offload", f"{named}/", "other.config", *options, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[-1] == f"Error: {error}"
    assert precious.read_bytes() == b"not to be lost"
    assert (tmp_path / "other.config").read_bytes() == SAMPLE.read_bytes()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted([named, "other.config"])


def test_a_file_named_with_a_trailing_slash_among_several_is_its_own_json_entry(
    confedit_exe, tmp_path
):
    """Its entry names it as typed, with the slash, and says why it failed, as a missing
    file's does; the other file is reported in full."""
    copy_sample(tmp_path)
    shutil.copyfile(SAMPLE, tmp_path / "other.config")
    args = ["applicationHost.config/", "other.config", "missing.config", "--check"]
    proc = run(confedit_exe, "offload", *args, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 4
    document = json.loads(proc.stdout)
    validate(document)
    slashed, other, missing = document["files"]
    assert (slashed["file"], slashed["status"], slashed["exit_code"]) == (
        "applicationHost.config/",
        "invalid",
        4,
    )
    assert slashed["error"]["message"] == SLASHED_ERROR
    assert {**slashed, "file": "missing.config", "error": missing["error"]} == missing
    assert (other["file"], other["status"]) == ("other.config", "work-found")
    assert (document["exit_code"], document["summary"]["invalid"]) == (4, 2)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_audit_of_a_file_named_with_a_trailing_slash_among_several_goes_on(
    confedit_exe, tmp_path, fmt
):
    copy_sample(tmp_path)
    shutil.copyfile(SAMPLE, tmp_path / "other.config")
    args = ["applicationHost.config/", "other.config", "--format", fmt]
    proc = run(confedit_exe, "audit", *args, cwd=tmp_path)
    assert proc.returncode == 4
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == SLASHED_ERROR
    assert lines[-1] == "2 files: 0 offloaded, 1 not offloaded, 1 invalid"
    if fmt == "text":
        assert proc.stdout.decode().startswith("other.config\n")
        assert proc.stdout.count(b"(front-end)") == 1
        return
    document = json.loads(proc.stdout)
    validate(document)
    slashed, other = document["files"]
    assert (slashed["file"], slashed["status"]) == ("applicationHost.config/", "invalid")
    assert slashed["error"]["message"] == SLASHED_ERROR
    assert (other["file"], other["exit_code"]) == ("other.config", 0)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["offload", "--help"]])
def test_help_and_version_into_a_closed_or_full_stdout(confedit_exe, args):
    """click writes the help and the version itself, and ended a closed pipe with exit 1 (the
    code of "--check found work") and a full disk with a traceback: they end as the commands'
    own output does, 141 quietly and exit 3 in one line."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone: the write fails with EPIPE
    try:
        closed = subprocess.run(
            [confedit_exe, *args], stdout=write, stderr=subprocess.PIPE, check=False, timeout=60
        )
    finally:
        os.close(write)
    assert (closed.returncode, closed.stderr) == (141, b"")
    full_device = Path("/dev/full")
    if not full_device.exists():
        return
    with full_device.open("wb") as full:
        done = subprocess.run(
            [confedit_exe, *args], stdout=full, stderr=subprocess.PIPE, check=False, timeout=60
        )
    assert (done.returncode, done.stderr) == (
        3,
        b"cannot write to stdout: No space left on device\n",
    )


def test_a_namespace_fault_followed_by_a_warning_is_refused_and_nothing_written(
    confedit_exe, tmp_path
):
    """lxml's plain parse reads libxml2's last message alone: an xml:space value it does not
    know (a warning) after a namespace prefix not defined let the file be offloaded."""
    config = copy_sample(tmp_path)
    faulty = SAMPLE.read_bytes().replace(
        b"</configuration>",
        b'<location path="Other Site/x"><system.webServer><a:b /><c xml:space="bad" />'
        b"</system.webServer></location>\n</configuration>",
    )
    config.write_bytes(faulty)
    line = faulty[: faulty.index(b"<a:b")].count(b"\n") + 1
    proc = run(confedit_exe, "offload", "--in-place", config.name, cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stderr.decode().splitlines()[0].startswith(f"applicationHost.config:{line}:"), (
        proc.stderr
    )
    assert "Namespace prefix a on b is not defined" in proc.stderr.decode()
    assert config.read_bytes() == faulty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applicationHost.config"]
