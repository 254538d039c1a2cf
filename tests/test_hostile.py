"""Hostile and broken input through the installed CLI: one clear line, exit 4, nothing written."""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from confedit import cli, files
from tests.conftest import SAMPLES

SAMPLE = SAMPLES / "exchange2013-cas.applicationHost.config"
PATCHED = SAMPLES / "exchange2013-cas.applicationHost.patched.config"
BODY = SAMPLE.read_bytes().removeprefix(codecs.BOM_UTF8)


# GNU time's %M, in Python: a small process starts the CLI, waits for it, and writes the CLI's
# own peak RSS to a file. The peak of a child of the test process itself would be at least the
# test process's own: Linux carries the high-water mark across exec from the process forked
# (see bench/measure.py), and a test run grows past 200 MB.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(exe: str, *args: str, cwd: Path) -> tuple[int, bytes, bytes, float, int]:
    """Run the CLI; return exit code, stdout, stderr, wall seconds and its peak RSS in bytes."""
    report = cwd / ".peak-rss"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(report), exe, *args],
        cwd=cwd,
        capture_output=True,
        timeout=60,
        check=False,
    )
    wall = time.monotonic() - start
    rss = int(report.read_text()) * 1024
    report.unlink()
    return proc.returncode, proc.stdout, proc.stderr, wall, rss


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_external_entity_never_leaks_a_local_file(confedit_exe, tmp_path):
    secret = write(tmp_path, "secret.txt", b"TOKEN-7f3a9c-never-print-me")
    xxe = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE configuration [<!ENTITY leak SYSTEM "file://'
        + str(secret).encode()
        + b'">]>\n'
        + BODY.split(b"?>", 1)[1].replace(b"<sites>", b"<sites>&leak;", 1)
    )
    config = write(tmp_path, "xxe.config", xxe)
    proc = subprocess.run(
        [
            confedit_exe,
            "offload",
            str(config),
            "-o",
            str(tmp_path / "out"),
            "--diff",
            "-",
            "--format",
            "text",
            "--runbook",
            str(tmp_path / "rb.ps1"),
        ],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 4
    assert b"DOCTYPE is not allowed in applicationHost.config" in proc.stderr
    everything = proc.stdout + proc.stderr + b"".join(snapshot(tmp_path).values())
    assert everything.count(b"TOKEN-7f3a9c") == 1  # only the secret file itself
    assert sorted(snapshot(tmp_path)) == ["secret.txt", "xxe.config"]
    json_proc = subprocess.run(
        [confedit_exe, "offload", str(config), "--format", "json"], capture_output=True, check=False
    )
    assert b"TOKEN-7f3a9c" not in json_proc.stdout + json_proc.stderr


def billion_laughs() -> bytes:
    entities = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz ['
        + entities
        + b"]>\n<configuration>&lol9;</configuration>\n"
    )


def test_the_peak_rss_measured_is_the_run_s_own_not_the_test_process_s(confedit_exe, tmp_path):
    """The test process grown by 300 MB (as a test run grows) must not count as the peak of
    the run measured, nor a child of 300 MB waited for before."""
    big = "x = bytearray(300 << 20); x[::4096] = b'1' * len(x[::4096])"  # touched: resident
    subprocess.run([sys.executable, "-c", big], check=True)
    grown = bytearray(300 << 20)
    grown[::4096] = b"1" * len(grown[::4096])
    code, out, _, _, rss = run_measured(confedit_exe, "--version", cwd=tmp_path)
    del grown
    assert code == 0 and out.startswith(b"confedit")
    assert rss < 100 * 1024 * 1024, f"peak RSS {rss // 2**20} MB"


@pytest.mark.parametrize(
    "bomb",
    [
        billion_laughs(),
        b"<configuration>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</configuration>",
        b"<configuration>" + b"<a>" * 100_000,  # deep and unterminated
    ],
    ids=["billion-laughs", "deep-nesting", "deep-unterminated"],
)
def test_bombs_fail_fast_and_small(confedit_exe, tmp_path, bomb):
    config = write(tmp_path, "bomb.config", bomb)
    code, _, err, wall, rss = run_measured(
        confedit_exe, "offload", str(config), "-o", "out", cwd=tmp_path
    )
    assert code == 4, err
    assert err.count(b"\n") == 1 and b"Traceback" not in err
    assert wall < 2.0, f"took {wall:.2f} s"
    assert rss < 200 * 1024 * 1024, f"peak RSS {rss / 2**20:.0f} MB"
    assert not (tmp_path / "out").exists()


def test_a_value_over_the_parsers_limit_is_one_line(confedit_exe, tmp_path):
    """libxml2 refuses one attribute value (or text, or comment) over 10 MB unless told to take
    huge files, which confedit never does: a README row says so."""
    value = b"A" * (11 * 1024 * 1024)
    site = b'<location path="Default Web Site">'
    raw = SAMPLE.read_bytes().replace(site, site[:-1] + b' x="' + value + b'">', 1)
    config = write(tmp_path, "huge-value.config", raw)
    proc = subprocess.run(
        [confedit_exe, "offload", str(config), "-o", "out"],
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 4
    assert proc.stderr.count(b"\n") == 1
    assert b": Resource limit exceeded: " in proc.stderr
    assert not (tmp_path / "out").exists()


def test_size_limit_is_checked_before_reading(confedit_exe, tmp_path):
    proc = subprocess.run(
        [confedit_exe, "offload", str(SAMPLE), "--max-size", "4K"], capture_output=True, check=False
    )
    assert proc.returncode == 4
    assert b"over the size limit of 4096 bytes" in proc.stderr
    proc = subprocess.run(
        [confedit_exe, "offload", str(SAMPLE), "--max-size", "lots"],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 2


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_files_come_back_in_utf16_with_their_bom(confedit_exe, tmp_path, codec):
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    text = BODY.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    config = write(tmp_path, "u16.config", bom + text.encode(codec))
    out = tmp_path / "out.config"
    proc = subprocess.run(
        [confedit_exe, "offload", str(config), "-o", str(out)], capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    expected = PATCHED.read_bytes().removeprefix(codecs.BOM_UTF8).decode("utf-8")
    expected = expected.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert out.read_bytes() == bom + expected.encode(codec)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", b"empty file"),
        (os.urandom(2048).replace(b"<", b"x") + b"\x00", b"NUL byte at byte offset"),
        (
            BODY.replace(b"Default Web Site", b"Default Web Site\xe9", 1),
            b"invalid UTF-8 at byte offset",
        ),
        (codecs.BOM_UTF16_LE + BODY, b"byte-order mark, but what follows is not UTF-16"),
        (BODY[: BODY.index(b"</configuration>")], b"Premature end of data in tag configuration"),
        (BODY[: len(BODY) // 2], b"AttValue"),
        (b"<html><body>not a config</body></html>", b"not an applicationHost.config"),
    ],
    ids=[
        "empty",
        "binary",
        "bad-utf8",
        "utf16-bom-on-utf8",
        "truncated-end",
        "truncated-mid",
        "html",
    ],
)
def test_broken_files_get_one_line_and_exit_4(confedit_exe, tmp_path, data, message):
    config = write(tmp_path, "bad.config", data)
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [confedit_exe, "offload", str(config), "--in-place", "--backup", ".bak"],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 4
    assert message in proc.stderr, proc.stderr
    assert proc.stderr.count(b"\n") == 1 and b"Traceback" not in proc.stderr
    if b"end of data" in message or b"AttValue" in message:
        assert re.match(rb".*bad\.config:\d+:\d+: ", proc.stderr), "parser errors say where"
    assert snapshot(tmp_path) == before


def test_debug_shows_the_traceback_for_bad_input(confedit_exe, tmp_path):
    config = write(tmp_path, "bad.config", b"<configuration>")
    proc = subprocess.run(
        [confedit_exe, "offload", str(config), "--debug"], capture_output=True, check=False
    )
    assert proc.returncode == 4 and b"Traceback" in proc.stderr


def test_an_unreadable_file_is_one_line(monkeypatch, tmp_path):
    """Tests run as root, for whom permissions do not apply: simulate the refusal."""
    config = write(tmp_path, "locked.config", BODY)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)
    result = CliRunner().invoke(cli.main, ["offload", str(config)])
    assert result.exit_code == 4
    assert result.output.strip() == f"{config}: permission denied"


def test_an_interrupted_write_leaves_no_trace(monkeypatch, tmp_path):
    config = write(tmp_path, "applicationHost.config", SAMPLE.read_bytes())

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.write_file(config, b"new content")
    assert config.read_bytes() == SAMPLE.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["applicationHost.config"]


def test_backup_is_written_before_the_input_is_replaced(monkeypatch, tmp_path):
    config = write(tmp_path, "applicationHost.config", SAMPLE.read_bytes())
    order: list[str] = []
    real_commit = files._Staged.commit

    def recording(self):
        order.append(self.target.name)
        real_commit(self)

    monkeypatch.setattr(files._Staged, "commit", recording)
    result = CliRunner().invoke(
        cli.main, ["offload", str(config), "--in-place", "--backup", ".orig"]
    )
    assert result.exit_code == 0, result.output
    assert order == ["applicationHost.config.orig", "applicationHost.config"]
    assert (tmp_path / "applicationHost.config.orig").read_bytes() == SAMPLE.read_bytes()


def _below_path_max(tmp_path: Path, data: bytes) -> Path:
    """A config file whose full path is longer than PATH_MAX (4096 on Linux): made one folder
    at a time, through descriptors, since no single name can reach it."""
    folder = os.open(tmp_path, os.O_RDONLY)
    for _ in range(24):
        os.mkdir("d" * 200, dir_fd=folder)
        inner = os.open("d" * 200, os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        folder = inner
    config = os.open("applicationHost.config", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder)
    os.write(config, data)
    os.close(config)
    os.close(folder)
    return tmp_path.joinpath(*["d" * 200] * 24, "applicationHost.config")


@pytest.mark.parametrize("command", ["offload", "audit"])
def test_a_path_longer_than_the_system_allows_is_one_line(confedit_exe, tmp_path, command):
    """The kernel answers such a path (or one below a folder that may not be searched) with an
    error that pathlib's is_dir() raises rather than answering False."""
    config = _below_path_max(tmp_path, SAMPLE.read_bytes())
    named = subprocess.run(
        [confedit_exe, command, str(config)], capture_output=True, check=False, cwd=tmp_path
    )
    assert named.returncode == 4, named.stderr[-300:]
    assert named.stderr == f"{config}: cannot read: File name too long\n".encode()
    searched = subprocess.run(
        [confedit_exe, command, "d" * 200, "-q"], capture_output=True, check=False, cwd=tmp_path
    )
    assert searched.returncode == 4, searched.stderr[-300:]
    assert b"cannot search: File name too long" in searched.stderr
    assert searched.stderr.count(b"\n") == 1 and b"Traceback" not in searched.stderr


@pytest.mark.parametrize("option", ["--output-dir", "--runbook-dir"])
def test_an_output_folder_longer_than_the_system_allows_is_a_write_failure(
    confedit_exe, tmp_path, option
):
    config = write(tmp_path, "applicationHost.config", SAMPLE.read_bytes())
    folder = tmp_path.joinpath(*["o" * 200] * 21)  # over PATH_MAX: nothing below it can be made
    proc = subprocess.run(
        [confedit_exe, "offload", str(config), option, str(folder)],
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr[-300:]
    assert b"cannot create the output folder" in proc.stderr
    assert b"File name too long" in proc.stderr and b"internal error" not in proc.stderr
    assert snapshot(tmp_path) == {"applicationHost.config": SAMPLE.read_bytes()}
    assert [p.name for p in tmp_path.iterdir()] == ["applicationHost.config"]


def test_a_backup_name_longer_than_the_system_allows_is_a_write_failure(confedit_exe, tmp_path):
    config = write(tmp_path, "applicationHost.config", SAMPLE.read_bytes())
    suffix = "." + "b" * 250  # the backup's name is over NAME_MAX (255 bytes)
    proc = subprocess.run(
        [confedit_exe, "offload", str(config), "--in-place", "--backup", suffix],
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr[-300:]
    assert proc.stderr.endswith(b": cannot write: File name too long; nothing was changed\n")
    assert proc.stderr.count(b"\n") == 1
    assert snapshot(tmp_path) == {"applicationHost.config": SAMPLE.read_bytes()}
