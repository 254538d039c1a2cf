"""`confedit offload`, run as a user runs it: the installed `confedit` in a subprocess, over one
file, then over several (a small fleet of real configs, see helpers.make_fleet, from the folder
that holds it)."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from confedit import cli, offload_command
from confedit.batch import Input
from confedit.plan import Request
from tests.conftest import (
    DEATHS,
    DIED,
    EXCHANGE,
    PATCHED,
    REPO,
    SAMPLE,
    SAMPLES,
    close_stdout,
    copy_sample,
    default_start_method_env,
    dying_worker_env,
    pythons_started,
    run,
    two_servers,
)
from tests.helpers import (
    access_values,
    as_at_a_terminal,
    back_end_blocks,
    changed_lines,
    git_env,
    record_realpath,
    run_in_pty,
    run_into_full_stdout,
    strip_ansi,
)
from tests.test_schemas import validate

EXPECTED_DIFF = SAMPLES / "exchange2013-cas.offload.diff"


MALFORMED = EXCHANGE / "e2019-malformed.applicationHost.config"


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


def test_malformed_input_is_one_line_exit_4_nothing_written(confedit_exe, tmp_path):
    out = tmp_path / "out.config"
    proc = run(confedit_exe, "offload", str(MALFORMED), "-o", str(out))
    assert proc.returncode == 4
    assert proc.stderr.decode().strip() == (
        f"{MALFORMED}:128:22: Opening and ending tag mismatch: sectionGroup line 52 and configSections"
    )
    assert not out.exists()


def test_config_sections_without_the_access_section_are_one_line_exit_4_nothing_written(
    confedit_exe, tmp_path
):
    """IIS would not load the file with the <access> an offload adds: it is refused before
    anything is written, by offload and by audit alike."""
    declaration = b'<section name="access" overrideModeDefault="Deny" />'
    config = tmp_path / "applicationHost.config"
    config.write_bytes(SAMPLE.read_bytes().replace(declaration, b""))
    line = SAMPLE.read_bytes().split(b"<configSections>")[0].count(b"\n") + 1
    for args in (
        ["offload", "-o", "out.config", "--diff", "d"],
        ["offload", "--in-place"],
        ["audit"],
    ):
        proc = run(confedit_exe, *args, config.name, cwd=tmp_path)
        assert proc.returncode == 4, args
        (error,) = proc.stderr.decode().splitlines()
        assert error.startswith(
            f"applicationHost.config:{line}: <configSections> does not declare the access section"
        )
        assert proc.stdout == b""
        assert sorted(p.name for p in tmp_path.iterdir()) == ["applicationHost.config"]
        assert config.read_bytes() == SAMPLE.read_bytes().replace(declaration, b"")


def test_back_end_target_is_refused_exit_3_nothing_written(confedit_exe, tmp_path):
    out = tmp_path / "out.config"
    proc = run(
        confedit_exe, "offload", str(SAMPLE), "--path", "Exchange Back End/owa", "-o", str(out)
    )
    assert proc.returncode == 3
    assert b"Exchange Back End site must keep requiring SSL" in proc.stderr
    assert b"Traceback" not in proc.stderr
    assert not out.exists()


def test_a_path_with_a_slash_too_many_is_named_as_it_was_typed(confedit_exe):
    """`--path "Default Web Site/OWA//"` was refused as 'Default Web Site/OWA/', which names
    owa: the message hid the slash too many."""
    typed = "Default Web Site/OWA//"
    proc = run(confedit_exe, "offload", str(SAMPLE), "--path", typed)
    assert proc.returncode == 3
    (reason,) = proc.stderr.decode().splitlines()
    assert reason.startswith(f"{SAMPLE}: refused: '{typed}' is not an application or virtual")
    report = json.loads(
        run(confedit_exe, "offload", str(SAMPLE), "--path", typed, "--format", "json").stdout
    )
    assert report["error"]["reasons"][0].startswith(f"'{typed}' is not")


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


def test_json_report_of_new_locations_before_a_root_end_tag_on_their_line(confedit_exe, tmp_path):
    """Two new <location> elements after the last one, which `</configuration>` follows on its
    line: the report gives each target the line of its <access> in the output (it was an
    internal error: the first target's edit, replaced when the second took its line ending,
    was not among the plan's)."""
    raw = SAMPLE.read_bytes()
    first_app = b'                <application path="/owa" '
    apps = b'<application path="/one" /><application path="/two" />\r\n'
    end = b"    </location>\r\n\r\n</configuration>"
    assert raw.count(end) == 1
    raw = raw.replace(first_app, b"                " + apps + first_app, 1)
    raw = raw.replace(end, b"    </location></configuration>")
    config = tmp_path / "applicationHost.config"
    config.write_bytes(raw)
    paths = ("Default Web Site/one", "Default Web Site/two")
    out = tmp_path / "patched.config"
    args = ("--path", paths[0], "--path", paths[1], "-o", str(out), "--format", "json")
    proc = run(confedit_exe, "offload", str(config), *args)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_bytes().split(b"\n")
    access = [n for n, line in enumerate(lines, 1) if b'<access sslFlags="None" />' in line]
    report = json.loads(proc.stdout)
    created = [(t["path"], t["line"]) for t in report["targets"] if t["action"] == "created"]
    assert created == list(zip(paths, access[-2:], strict=True))


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


def test_stdin_and_what_is_not_a_regular_file_are_answered_as_the_readme_says(
    confedit_exe, tmp_path
):
    """The README's options table made stdin a usage error for --in-place alone, and its Bad
    input table named neither answer: a user piping a config in was left to guess."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    piped = subprocess.run(
        [confedit_exe, "offload", "/dev/stdin"],
        input=SAMPLE.read_bytes(),
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    answers = [piped, run(confedit_exe, "offload", str(fifo), "--diff", "d", cwd=tmp_path)]
    answers.append(run(confedit_exe, "offload", "-", cwd=tmp_path))
    assert [proc.returncode for proc in answers] == [4, 4, 4]
    assert [proc.stdout for proc in answers] == [b"", b"", b""]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fifo"]
    messages = [proc.stderr.decode().rstrip("\n") for proc in answers]
    assert messages[:2] == ["/dev/stdin: is not a regular file", f"{fifo}: is not a regular file"]
    bad_input = (REPO / "README.md").read_text(encoding="utf-8").split("## Bad input\n")[1]
    bad_input = bad_input.split("\n## ", 1)[0]
    assert f"`{messages[2]}`" in bad_input
    assert "`FILE: is not a regular file`" in bad_input


@pytest.mark.parametrize(("declared", "codec"), [("windows-1252", "cp1252"), ("UTF-32", "utf-32")])
def test_an_encoding_refused_is_mended_by_following_its_message(
    confedit_exe, tmp_path, declared, codec
):
    """The advice "convert the file first" led back to the same refusal: a converter (iconv,
    PowerShell's Set-Content) changes the bytes, not the declaration, which still named the old
    encoding. The message names both, and doing what it says is enough."""
    text = SAMPLE.read_bytes().removeprefix(codecs.BOM_UTF8).decode()
    config = tmp_path / "applicationHost.config"
    config.write_bytes(text.replace('encoding="UTF-8"', f'encoding="{declared}"').encode(codec))
    refused = run(confedit_exe, "offload", str(config), "--check")
    converted = config.read_bytes().decode(codec).encode("utf-8")  # as iconv -t UTF-8 does
    config.write_bytes(converted)
    still = run(confedit_exe, "offload", str(config), "--check")
    assert [refused.returncode, still.returncode] == [4, 4]
    advice = 'convert the file to UTF-8 and make its XML declaration say encoding="UTF-8"'
    assert refused.stderr.decode().rstrip("\n").endswith(advice)
    assert still.stderr.decode().rstrip("\n").endswith(advice)
    config.write_bytes(converted.replace(f'encoding="{declared}"'.encode(), b'encoding="UTF-8"'))
    assert run(confedit_exe, "offload", str(config), "--check").returncode == 1
    bad_input = (REPO / "README.md").read_text(encoding="utf-8").split("## Bad input\n")[1]
    assert advice in bad_input.split("\n## ", 1)[0]


def test_utf16_without_a_bom_is_mended_by_following_its_messages(confedit_exe, tmp_path):
    """Converted to UTF-8 as the message said, the file still declared UTF-16 and was refused
    again with no word on what to do: each message now says it, and doing so is enough."""
    text = SAMPLE.read_bytes().removeprefix(codecs.BOM_UTF8).decode()
    config = tmp_path / "applicationHost.config"
    config.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16-le"))
    no_bom = run(confedit_exe, "offload", str(config), "--check")
    config.write_bytes(config.read_bytes().decode("utf-16-le").encode("utf-8"))  # iconv's way
    declared = run(confedit_exe, "offload", str(config), "--check")
    assert [no_bom.returncode, declared.returncode] == [4, 4]
    convert = 'convert the file to UTF-8 and make its XML declaration say encoding="UTF-8"'
    assert no_bom.stderr.decode().endswith(f"add the byte-order mark, or {convert}\n")
    mend = 'but the bytes are UTF-8: make the declaration say encoding="UTF-8"\n'
    assert declared.stderr.decode().endswith(mend)
    config.write_bytes(config.read_bytes().replace(b'encoding="UTF-16"', b'encoding="UTF-8"'))
    assert run(confedit_exe, "offload", str(config), "--check").returncode == 1
    bad_input = (REPO / "README.md").read_text(encoding="utf-8").split("## Bad input\n")[1]
    bad_input = bad_input.split("\n## ", 1)[0]
    assert 'but the bytes are ...: make the declaration say encoding="UTF-8"' in bad_input
    assert 'make its XML declaration say encoding="UTF-8"` (a converter' in bad_input


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


def change_after_offload(monkeypatch, config: Path) -> None:
    """The input changes once confedit has read and offloaded it, before anything is written."""
    real_offload = offload_command.offload

    def offload_then_touch(*args, **kwargs):
        result = real_offload(*args, **kwargs)
        config.write_bytes(config.read_bytes() + b"\n")
        return result

    monkeypatch.setattr(offload_command, "offload", offload_then_touch)


def test_input_changed_between_read_and_write_is_refused(monkeypatch, tmp_path):
    config = copy_sample(tmp_path)
    change_after_offload(monkeypatch, config)
    result = CliRunner().invoke(cli.main, ["offload", str(config), "--in-place"])
    assert result.exit_code == 3
    assert "changed while confedit was working on it" in result.output
    assert config.read_bytes() == SAMPLE.read_bytes() + b"\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--diff", "out.diff"],
        ["--runbook", "out.ps1"],
        ["--check", "--diff", "out.diff"],
        ["--diff", "out.diff", "-j", "1"],  # with a folder as CONFIG: several files
        ["--runbook-dir", "runbooks", "-j", "1"],
    ],
    ids=["diff", "runbook", "check-diff", "many-diff", "runbook-dir"],
)
def test_an_input_changed_while_read_gets_no_diff_or_runbook_written(monkeypatch, tmp_path, args):
    """A diff (or a runbook) of a version the file no longer has would be applied to the one it
    has now: a <security> that gained an <access> meanwhile would get a second one."""
    folder = tmp_path / "cas01"
    folder.mkdir()
    config = copy_sample(folder)
    change_after_offload(monkeypatch, config)
    monkeypatch.chdir(tmp_path)
    named = "cas01" if "-j" in args else str(config)
    result = CliRunner().invoke(cli.main, ["offload", named, *args])
    assert result.exit_code == 3, result.output
    assert "changed while confedit was working on it" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cas01"]
    assert config.read_bytes() == SAMPLE.read_bytes() + b"\n"


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


def test_a_full_stdout_after_the_files_were_written_says_that_they_were(confedit_exe, tmp_path):
    config = copy_sample(tmp_path)
    args = [confedit_exe, "offload", str(config), "--in-place", "--format", "json", "-q"]
    proc = run_into_full_stdout(args, tmp_path)
    assert proc.returncode == 3
    assert proc.stderr == (
        b"cannot write to stdout: No space left on device; the files were written\n"
    )
    assert config.read_bytes() == PATCHED.read_bytes()


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


@pytest.mark.parametrize("suffix", ["/", "/.", "/old", ".d/bak"])
def test_a_backup_suffix_holding_a_slash_is_a_usage_error(confedit_exe, tmp_path, suffix):
    """CONFIG + '/' names CONFIG itself: the backup was written over the input, then replaced by
    the patched file, and the run exited 0 with the original lost."""
    config = copy_sample(tmp_path)
    before = snapshot_folder(tmp_path)
    args = ("offload", config.name, "--in-place", "--backup", suffix)
    proc = run(confedit_exe, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert b"--backup takes a SUFFIX added to each file's name" in proc.stderr
    assert snapshot_folder(tmp_path) == before


@pytest.mark.parametrize("value", ["", " ", "\t", "  "])
@pytest.mark.parametrize(
    ("option", "kind"),
    [
        ("-o", b"PATH"),
        ("--diff", b"PATH"),
        ("--runbook", b"FILE.ps1"),
        ("--output-dir", b"DIR"),
        ("--runbook-dir", b"DIR"),
        ("--since", b"REV"),
        ("--path", b"SITE/VDIR"),  # was refused, exit 3, as "'/' is the server level"
    ],
)
def test_an_empty_or_blank_value_is_a_usage_error_not_an_option_left_out(
    confedit_exe, tmp_path, option, kind, value
):
    """`-o "$OUT"` with OUT unset: `-o ''` printed the preview and exited 0 with nothing
    written, and `--since ''` ran without its Back End check. `-o "$OUT "`: `-o ' '` wrote the
    patched file under the name ' ', and `--diff ' '` the diff (--site and --backup already
    refused a blank value), and `--path ' '` was refused, exit 3, as outside the front end."""
    config = copy_sample(tmp_path)
    before = snapshot_folder(tmp_path)
    proc = run(confedit_exe, "offload", config.name, option, value, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    empty = b"an empty " if value == "" else b"a blank "
    assert empty + kind + b" names nothing" in proc.stderr
    assert proc.stdout == b""
    assert snapshot_folder(tmp_path) == before


@pytest.mark.parametrize("command", [["offload", "--in-place"], ["audit"]])
def test_an_empty_config_is_a_usage_error_not_the_current_folder(confedit_exe, tmp_path, command):
    """`confedit offload --in-place "$CONFIG"` with CONFIG unset searched the current folder
    and rewrote every applicationHost.config below it."""
    server = tmp_path / "srv1"
    server.mkdir()
    copy_sample(server)
    before = snapshot_folder(tmp_path)
    proc = run(confedit_exe, *command, "", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert b"an empty CONFIG names nothing" in proc.stderr
    assert proc.stdout == b""
    assert snapshot_folder(tmp_path) == before


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
    assert b"2 files: 1 needs work, 0 unchanged, 0 refused, 1 invalid" in proc.stderr


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_dev_stdout_redirected_to_a_file_is_written_like_stdout(confedit_exe, tmp_path, name):
    """`{ echo header; confedit ... -o /dev/stdout; echo footer; } > all.txt`: the patched file
    was written to a temporary file renamed over all.txt, so the header was lost and the
    footer went to the file the rename had replaced."""
    collected = tmp_path / "all.txt"
    with collected.open("ab") as out:
        out.write(b"header\n")
        out.flush()
        proc = subprocess.run(
            [confedit_exe, "offload", str(SAMPLE), "-o", name, "-q"],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
        out.write(b"footer\n")
    assert proc.returncode == 0, proc.stderr
    assert collected.read_bytes() == b"header\n" + PATCHED.read_bytes() + b"footer\n"


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


# --- several files -----------------------------------------------------------------------------


DEFAULT_TARGETS = {
    "owa",
    "ecp",
    "ews",
    "autodiscover",
    "microsoft-server-activesync",
    "oab",
    "mapi",
}


# sorted folder order: what the reports and the patch follow
ORDER = ["cas-2016", "cas-2019", "cas-broken", "cas-done", "cas-ep", "web"]


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
    assert headlines[5].endswith(
        "is this a Client Access server? if not, leave this file out of the run; to offload "
        "other paths of it, name them with --path"
    )
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


def test_runbook_dir_writes_each_file_its_own_runbook_as_single_file_runs_do(
    confedit_exe, tmp_path, fleet
):
    proc = run(
        confedit_exe, "offload", "fleet", "--output-dir", "out", "--runbook-dir", "rb", cwd=tmp_path
    )
    assert proc.returncode == 3, proc.stderr  # the fleet holds refused and invalid files
    # one for each file that was offloaded (an unchanged one's says there is nothing to do)
    assert sorted(snapshot(tmp_path / "rb")) == [
        "fleet/cas-2016/applicationHost.config.ps1",
        "fleet/cas-2019/ApplicationHost.config.ps1",
        "fleet/cas-done/applicationHost.config.ps1",
    ]
    for server in ("cas-2016", "cas-2019", "cas-done"):
        single = tmp_path / f"{server}.ps1"
        done = run(
            confedit_exe,
            "offload",
            str(fleet[server]),
            "-o",
            "o",
            "--runbook",
            str(single),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        runbook = (tmp_path / "rb" / f"{fleet[server]}.ps1").read_bytes()
        assert runbook == single.read_bytes(), server
    # a preview writes the runbooks too (as --runbook does), and shows the combined diff
    preview = run(
        confedit_exe, "offload", str(fleet["cas-2016"]), "--runbook-dir", "rb2", cwd=tmp_path
    )
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith(f"--- a/{fleet['cas-2016'].as_posix()}".encode())
    assert sorted(snapshot(tmp_path / "rb2")) == [f"{fleet['cas-2016'].as_posix()}.ps1"]


def test_a_runbook_refused_leaves_that_file_unwritten_and_the_others_written(
    confedit_exe, tmp_path, fleet
):
    # a pool name with a line break cannot be written safely into the script: refused (exit 3)
    bad = tmp_path / "bad" / "applicationHost.config"
    bad.parent.mkdir()
    data = (tmp_path / fleet["cas-2016"]).read_bytes()
    assert b'applicationPool="MSExchangeOWAAppPool"' in data
    bad.write_bytes(
        data.replace(b'applicationPool="MSExchangeOWAAppPool"', b'applicationPool="OWA&#10;Pool"')
    )
    args = ("bad", str(fleet["cas-2019"]), "--output-dir", "out", "--runbook-dir", "rb", "-q")
    proc = run(confedit_exe, "offload", *args, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert b"bad/applicationHost.config: refused:" in proc.stderr
    assert b"leave out --runbook-dir, or rename it" in proc.stderr  # the option given
    assert sorted(snapshot(tmp_path / "out")) == [fleet["cas-2019"].as_posix()]
    assert sorted(snapshot(tmp_path / "rb")) == [f"{fleet['cas-2019'].as_posix()}.ps1"]


def test_a_file_that_fails_leaves_no_empty_output_folders_behind(confedit_exe, tmp_path, fleet):
    # its config's folders are made before its runbook's folder turns out impossible
    (tmp_path / "blocked").write_bytes(b"a file, not a folder\n")
    (tmp_path / "out" / "kept").mkdir(parents=True)  # there before the run: stays
    servers = [str(fleet[s]) for s in ("cas-2016", "cas-2019")]
    args = (*servers, "--output-dir", "out", "--runbook-dir", "blocked/rb", "-q", "--jobs", "1")
    proc = run(confedit_exe, "offload", *args, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count(b"cannot create the output folder blocked/rb/") == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "out").rglob("*")) == [
        "out/kept"
    ]


def test_a_runbook_dir_that_would_write_over_an_input_is_a_usage_error(
    confedit_exe, tmp_path, fleet
):
    # a file named explicitly can be called anything, a runbook's name too
    victim = tmp_path / "rb" / f"{fleet['cas-2016'].as_posix()}.ps1"
    victim.parent.mkdir(parents=True)
    victim.write_bytes((tmp_path / fleet["cas-2016"]).read_bytes())
    before = snapshot(tmp_path)
    args = (str(fleet["cas-2016"]), str(victim), "--runbook-dir", "rb")
    proc = run(confedit_exe, "offload", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert (
        f"--runbook-dir would write rb/{fleet['cas-2016'].as_posix()}.ps1 over the input".encode()
        in proc.stderr
    )
    assert snapshot(tmp_path) == before


def test_a_runbook_that_would_be_another_files_output_is_a_usage_error(
    confedit_exe, tmp_path, fleet
):
    """With --runbook-dir the --output-dir, the runbook of a.config is the output of an input
    named a.config.ps1: the patched file would be lost under a script."""
    source = (tmp_path / fleet["cas-2016"]).read_bytes()
    for name in ("a.config", "a.config.ps1"):
        (tmp_path / name).write_bytes(source)
    before = snapshot(tmp_path)
    folders = ("--output-dir", "out", "--runbook-dir", "out")
    proc = run(confedit_exe, "offload", "a.config", "a.config.ps1", *folders, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    message = b"--output-dir and --runbook-dir would both write out/a.config.ps1; give them"
    assert message in proc.stderr
    assert snapshot(tmp_path) == before


def test_the_files_of_one_output_folder_are_not_resolved_against_each_other(tmp_path, monkeypatch):
    """Only files written by two options can be one file that both write: with --output-dir
    alone there is nothing to compare, and resolving each of a fleet's outputs (a system call
    per folder of its path) took a third of the checks made before the first file."""
    inputs = [tmp_path / f"srv{server:02d}" / "applicationHost.config" for server in range(20)]
    produced = [("--output-dir", tmp_path / "out" / path.relative_to(tmp_path)) for path in inputs]
    calls = record_realpath(monkeypatch)
    offload_command._check_destinations([], inputs, produced)
    assert calls == []
    runbooks = [("--runbook-dir", tmp_path / "out" / "srv00" / "applicationHost.config")]
    with pytest.raises(click.UsageError, match="--output-dir and --runbook-dir would both write"):
        offload_command._check_destinations([], inputs, produced + runbooks)


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


CAS_2016 = "fleet/cas-2016/applicationHost.config"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fleet", "-o", "x.config"], b"use --output-dir DIR"),
        (["fleet", "--runbook", "x.ps1"], b"with several CONFIGs or a folder, use --runbook-dir"),
        (["fleet", "--runbook-dir", "rb", "--check"], b"--check writes nothing"),
        (
            ["fleet", "--runbook-dir", "rb", "--runbook", "x.ps1"],
            b"either --runbook or --runbook-dir",
        ),
        # one CONFIG: the message must not speak of several
        (
            [CAS_2016, "--runbook-dir", "rb", "--runbook", "x.ps1"],
            b"either --runbook or --runbook-dir",
        ),
        (
            [CAS_2016, "--output-dir", "out", "-o", "x.config"],
            b"either -o/--output or --output-dir",
        ),
        (
            [CAS_2016, "--runbook-dir", "rb", "-o", "x.config"],
            b"-o writes one file and --runbook-dir a folder: use -o with --runbook FILE.ps1, "
            b"or --output-dir DIR with --runbook-dir",
        ),
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


def test_counts_of_one_are_singular(confedit_exe, tmp_path, fleet):
    """'1 file: 1 needs work', and a --path target alone is '1 of 1 target'."""
    (tmp_path / "one").mkdir()
    shutil.copytree(tmp_path / fleet["cas-2016"].parent, tmp_path / "one" / "cas-2016")
    proc = run(confedit_exe, "offload", "--check", "one", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.decode().splitlines()[-1]
    assert last == "1 file: 1 needs work, 0 unchanged, 0 refused, 0 invalid"
    owa = ["--path", "Default Web Site/owa"]
    proc = run(confedit_exe, "offload", "--check", *owa, str(fleet["cas-2016"]), cwd=tmp_path)
    assert ": 1 of 1 target to change (1 inserted)" in proc.stderr.decode()


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
    # the location changed, and what the change does: a web.config may now set sslFlags there
    assert (
        "fleet/cas-2016/applicationHost.config: refused for 2 reasons:\n"
        "  - the Exchange Back End changed since HEAD: "
        "<location path='Exchange Back End/PowerShell'> was changed\n"
        "  - the Exchange Back End changed since HEAD: the access section is now unlocked for "
        "'Exchange Back End/PowerShell' (overrideMode=\"Allow\" at Exchange Back End/PowerShell"
        in text
    )
    assert text.splitlines()[-1] == "3 files: 1 needs work, 1 unchanged, 1 refused, 0 invalid"


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


def test_an_output_folder_swapped_for_a_link_to_the_inputs_mid_run_overwrites_none(
    confedit_exe, tmp_path
):
    """The check that no output lands on an input is made when the run starts: an output
    folder replaced meanwhile by a symlink to the current folder (`ln -s . out`) then had every
    later file's output written over its input, without a backup. The first file's output is a
    FIFO, which holds the run there (its output fills the pipe) while the folder is swapped."""
    source = EXCHANGE / "e2016.applicationHost.config"
    assert source.stat().st_size > 65536  # more than a pipe holds (64 KiB): its writer waits
    for server in ("a", "b"):
        (tmp_path / "fleet" / server).mkdir(parents=True)
        shutil.copyfile(source, tmp_path / "fleet" / server / "applicationHost.config")
    fifo = tmp_path / "out" / "fleet" / "a" / "applicationHost.config"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the writer's open does not wait
    args = [confedit_exe, "offload", "fleet", "--output-dir", "out", "-j", "1"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert select.select([reader], [], [], 60)[0]  # the first file is being written
        (tmp_path / "out").rename(tmp_path / "was-out")
        (tmp_path / "out").symlink_to(".")
        os.set_blocking(reader, True)
        with os.fdopen(reader, "rb") as pipe:
            received = pipe.read()
    finally:
        _, err = proc.communicate(timeout=60)
    assert received.count(b'sslFlags="None"') > source.read_bytes().count(b'sslFlags="None"')
    assert (tmp_path / "fleet" / "b" / "applicationHost.config").read_bytes() == (
        source.read_bytes()
    )
    assert proc.returncode == 3, err
    assert err.decode().splitlines()[-2:] == [
        "fleet/b/applicationHost.config: --output-dir would write out/fleet/b/applicationHost."
        "config over the input itself: the output folder changed during the run; nothing was "
        "changed",
        "2 files: 1 changed, 0 unchanged, 0 refused, 0 invalid, 1 failed",
    ]


@pytest.mark.parametrize(
    ("to_group", "sig", "code"),
    [(True, signal.SIGINT, 130), (False, signal.SIGTERM, 143), (True, signal.SIGHUP, 129)],
    ids=["ctrl-c", "kill-pid", "hangup"],
)
def test_an_interrupted_run_stops_its_workers_and_leaves_every_file_whole(
    confedit_exe, tmp_path, to_group, sig, code
):
    """Ctrl-C reaches the whole process group; `kill PID` (or a CI runner's timeout) only
    confedit itself, whose workers must stop with it instead of writing on, orphaned; a hangup
    (the terminal closed, an SSH session lost) the whole group too, and it killed every process
    at once, leaving temporary files. Either way each file is its original or its patched
    version, with its backup, and no temporary file stays."""
    original, patched = SAMPLE.read_bytes(), PATCHED.read_bytes()
    for index in range(300):
        folder = tmp_path / "fleet" / f"cas{index:03d}"
        folder.mkdir(parents=True)
        (folder / "applicationHost.config").write_bytes(original)
    args = [confedit_exe, "offload", "fleet", "--in-place", "--backup", ".bak", "-q", "-j", "2"]
    proc = subprocess.Popen(
        as_at_a_terminal(args),
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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


# Sends a hangup to the whole group as a file in a folder named `hangup` is about to be committed:
# from the process that writes it (the parent over one file, a worker over several), which then
# waits for the signal that stops it. Python runs a signal's handler when a function is entered,
# before any of its code: here, where Outputs.__exit__ begins.
HANGUP_AS_THE_OUTPUTS_ARE_COMMITTED = (
    "import os, signal, time\n"
    "from confedit import files\n"
    "_exit = files.Outputs.__exit__\n"
    "def hung_up(self, kind, *rest):\n"
    "    if kind is None and any(s.target.parent.name == 'hangup' for s in self._staged):\n"
    "        os.killpg(0, signal.SIGHUP)\n"
    "        time.sleep(30)\n"
    "    return _exit(self, kind, *rest)\n"
    "files.Outputs.__exit__ = hung_up\n"
)


@pytest.mark.parametrize("many", [False, True], ids=["one-file", "workers"])
def test_a_hangup_taken_as_the_outputs_are_committed_leaves_no_temporary_file(
    confedit_exe, tmp_path, many
):
    """A signal whose handler ran as Outputs.__exit__ was entered, its temporary files written
    and not yet renamed, raised before the `finally` that removes them: the file's and its
    backup's stayed beside the input, and the run said that no temporary file remained (rarely,
    in the test above: a worker that took the parent's SIGTERM just after its last fsync)."""
    fleet = tmp_path / "fleet"
    for name in ["hangup", *(f"cas{index:02d}" for index in range(8 if many else 0))]:
        (fleet / name).mkdir(parents=True)
        shutil.copyfile(SAMPLE, fleet / name / "applicationHost.config")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HANGUP_AS_THE_OUTPUTS_ARE_COMMITTED)
    config = "fleet" if many else "fleet/hangup/applicationHost.config"
    args = [confedit_exe, "offload", config, "--in-place", "--backup", ".bak", "-q", "-j", "2"]
    proc = subprocess.run(
        as_at_a_terminal(args),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(hooks)},
        start_new_session=True,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 129, proc.stderr
    assert b"interrupted" in proc.stderr and b"Traceback" not in proc.stderr
    assert (fleet / "hangup" / "applicationHost.config").read_bytes() == SAMPLE.read_bytes()
    assert not (fleet / "hangup" / "applicationHost.config.bak").exists()
    assert sorted(path.name for path in fleet.glob("*/.*confedit-tmp")) == []


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


# Each file read logs the process that read it and that process's parent.
LOG_READERS = """
from confedit import files
_read_input = files.read_input
def read_input(path, *args):
    log(f"read by {os.getpid()}, child of {os.getppid()}")
    return _read_input(path, *args)
files.read_input = read_input
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_workers_are_forked_whatever_the_interpreter_s_default_start_method(
    confedit_exe, tmp_path, method
):
    """The workers' design depends on a fork (the signals held since it, the copies of the
    parent's pipe ends that come with it): with a fork server or spawn as the interpreter's
    default, every file was still done, but each worker loaded Python and confedit again, and
    a fork server and a resource tracker, Python processes of their own, outlived the run."""
    env = default_start_method_env(tmp_path, method, LOG_READERS)
    two_servers(tmp_path / "ex", "cas01", "cas02", "cas03", "cas04")
    args = [confedit_exe, "offload", "ex", "--output-dir", "out", "-q", "-j", "2"]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    outputs = sorted(tmp_path.glob("out/ex/*/applicationHost.config"))
    assert [path.read_bytes() for path in outputs] == [PATCHED.read_bytes()] * 4
    started = pythons_started(tmp_path)
    assert len(started) == 1, started  # confedit alone: its workers are forks of it
    lines = (tmp_path / "python.log").read_text().splitlines()
    readers = {line for line in lines if line.startswith("read by ")}
    assert len(readers) == 2, lines  # two workers, each given files at once
    assert all(line.endswith(f", child of {started[0]}") for line in readers), lines


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

    args = ("offload", "fleet", "--runbook-dir", "rb", "--output-dir", "out2", "-q")
    assert sync_calls(confedit_exe, *args, cwd=tmp_path) == ["syncfs"]  # one filesystem
    calls = sync_calls(confedit_exe, "offload", "fleet", "--runbook-dir", "rb2", "-q", cwd=tmp_path)
    assert calls == ["syncfs"]  # runbooks alone: new files in a folder too

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


@pytest.mark.parametrize(
    "on_stdout",
    [["--format", "json"], ["--diff", "-"]],  # the combined diff said nothing of the files
)
def test_a_full_stdout_after_several_files_were_written_says_that_they_were(
    confedit_exe, tmp_path, on_stdout
):
    two_servers(tmp_path)
    args = [confedit_exe, "offload", ".", "--in-place", *on_stdout, "-q"]
    proc = run_into_full_stdout(args, tmp_path)
    assert proc.returncode == 3
    assert proc.stderr == (
        b"cannot write to stdout: No space left on device; the files were written\n"
    )
    assert {path.read_bytes() for path in tmp_path.rglob("*.config")} == {PATCHED.read_bytes()}


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
    assert "fleet/esc\\x1b[2J/applicationHost.config: 7 of 7 targets to change" in text
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


def test_text_like_an_attribute_inside_another_attribute_s_value_is_left_alone(
    confedit_exe, tmp_path
):
    """`note=' path="..."'` on a <location> (with its site name written with a character
    reference, which takes the full scan) and `note=' sslFlags="None"'` on an <access>: the
    run exits 0 (it was an internal error, exit 3), the diff rewrites the sslFlags attribute
    itself, and the output audits as offloaded."""
    location = b"""<location note=' path="Default Web Site/ecp"' path="Default&#32;Web Site/EWS">"""
    access = b"""<access note=' sslFlags="None"' sslFlags="Ssl, Ssl128" />"""
    raw = SAMPLE.read_bytes()
    raw = raw.replace(b'<location path="Default Web Site/EWS">', location)
    mapi = raw.index(b'<location path="Default Web Site/mapi">')
    raw = raw[:mapi] + raw[mapi:].replace(b'<access sslFlags="Ssl, Ssl128" />', access, 1)
    config = tmp_path / "applicationHost.config"
    config.write_bytes(raw)
    out, diff = tmp_path / "out.config", tmp_path / "offload.diff"
    proc = run(confedit_exe, "offload", str(config), "-o", str(out), "--diff", str(diff))
    assert proc.returncode == 0, proc.stderr
    mapi_lines = [line for line in changed_lines(diff.read_bytes()) if b"note=" in line]
    assert mapi_lines == [
        b"-                " + access + b"\r",
        b"+                " + access.replace(b'"Ssl, Ssl128"', b'"None"') + b"\r",
    ]
    assert access_values(out.read_bytes())["Default Web Site/EWS"] == "None"
    assert run(confedit_exe, "audit", str(out), "--offloaded").returncode == 0


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_a_destination_whose_folder_takes_no_new_file_says_so(confedit_exe, tmp_path):
    """/proc/version exists, but procfs refuses the temporary file that would be renamed over
    it (ENOENT): the error said "No such file or directory" of a file that is there."""
    config = copy_sample(tmp_path)
    before = Path("/proc/version").read_bytes()
    proc = run(confedit_exe, "offload", str(config), "-o", "/proc/version", "-q")
    assert proc.returncode == 3
    assert proc.stderr.decode().splitlines() == [
        "/proc/version: cannot write: no file can be created in /proc (No such file or "
        "directory), and confedit writes a new file there to rename over it; nothing was changed"
    ]
    assert Path("/proc/version").read_bytes() == before
    assert config.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize("option", ["--output-dir", "--runbook-dir"])
def test_an_output_folder_that_is_a_dangling_symlink_says_so(confedit_exe, tmp_path, option):
    """mkdir through a symlink whose target is missing fails with EEXIST: each file's error said
    "File exists" of a folder that is not there. The link is named, and its missing target."""
    config = copy_sample(tmp_path)
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    proc = run(confedit_exe, "offload", config.name, option, "out", "-q", cwd=tmp_path)
    assert proc.returncode == 2
    error = proc.stderr.decode().splitlines()[-1]
    assert error == (
        f"Error: Invalid value for '{option}': out is a symbolic link to {tmp_path / 'gone'}, "
        "which does not exist; create that folder, or name another"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applicationHost.config", "out"]
    assert config.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize("name", ["-", "/dev/stdin", "/dev/fd/0"])
def test_in_place_on_stdin_is_a_usage_error(confedit_exe, tmp_path, name):
    """/dev/stdin redirected from a file was rewritten through the link, and its backup written
    to /dev/stdin.bak; `-` was "no such file" (exit 4). Stdin has no name to rewrite or to put
    a backup beside: both are refused alike, before anything is read or written."""
    config = copy_sample(tmp_path)
    backup = Path(f"{name}.bak")
    assert not backup.exists()
    with config.open("rb") as stdin:
        args = ("offload", name, "--in-place", "--backup", ".bak")
        proc = run(confedit_exe, *args, cwd=tmp_path, stdin=stdin)
    made = backup.exists()
    if made:  # written by a confedit that does not refuse: not left behind in /dev
        backup.unlink()
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[-1] == (
        f"Error: --in-place rewrites a file by its name, and {name} is stdin: name the file"
    )
    assert not made
    assert config.read_bytes() == SAMPLE.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applicationHost.config"]


@pytest.mark.parametrize("name", ["/dev//stdin", "/dev/./stdin", "/dev/fd//0"])
@pytest.mark.parametrize("several", [False, True])
def test_in_place_on_stdin_spelled_otherwise_is_a_usage_error(
    confedit_exe, tmp_path, name, several
):
    """/dev//stdin and /dev/./stdin, redirected from a file, were rewritten through the link:
    the stdin check compared the name as typed, where it once compared its Path."""
    config = copy_sample(tmp_path)
    (tmp_path / "other").mkdir()
    other = copy_sample(tmp_path / "other")
    names = (name, "other") if several else (name,)
    with config.open("rb") as stdin:
        proc = run(confedit_exe, "offload", *names, "--in-place", cwd=tmp_path, stdin=stdin)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[-1] == (
        f"Error: --in-place rewrites a file by its name, and {name} is stdin: name the file"
    )
    assert config.read_bytes() == SAMPLE.read_bytes()
    assert other.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_in_place_on_a_fifo_is_a_usage_error(confedit_exe, tmp_path):
    """A FIFO cannot be rewritten in place (there is no file to put the new bytes in): it was
    read as an invalid input (exit 4), as if the fault were its content."""
    copy_sample(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    proc = run(confedit_exe, "offload", "fifo", "--in-place", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[-1] == (
        "Error: --in-place rewrites a regular file, and fifo is not one; use -o to write the "
        "result elsewhere"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applicationHost.config", "fifo"]


@pytest.mark.parametrize("padding", [0, 5 << 20], ids=["small", "re-read-in-a-thread"])
def test_a_batch_file_changed_while_offloaded_is_refused_and_not_written(
    tmp_path, monkeypatch, padding
):
    """A file of a run over several files is re-read before its outputs are written, as one
    file is: a large one in a thread while they are written. Its bytes changed (the same size
    and mtime) are refused, and its output is not written."""
    path = tmp_path / "applicationHost.config"
    path.write_bytes(SAMPLE.read_bytes() + b"<!-- pad" + b" " * padding + b" -->\r\n")
    real_offload = offload_command.offload

    def offload_then_change(data, request, *, name):
        result = real_offload(data, request, name=name)
        mtime = path.stat().st_mtime_ns
        path.write_bytes(data.replace(b"<!-- pad", b"<!-- PAD"))
        os.utime(path, ns=(mtime, mtime))
        return result

    monkeypatch.setattr(offload_command, "offload", offload_then_change)
    settings = offload_command.FileSettings(
        request=Request(),
        check=False,
        in_place=False,
        backup=None,
        output_dir=tmp_path / "out",
        runbook_dir=None,
        since=None,
        max_size=1 << 30,
        want_diff=False,
        writes_files=True,
        want_json=False,
        debug=False,
    )
    item = Input(path, "applicationHost.config")
    outcome = offload_command.offload_file(settings, item)
    assert (outcome.status, outcome.exit_code) == ("refused", 3)
    assert "changed while confedit was working on it" in outcome.headline
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
