"""Independent checks used by several test modules (they do not use confedit's own code)."""

from __future__ import annotations

import codecs
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Final

import pytest
from lxml import etree

from confedit.iis import is_below

# A <location> element (they never nest) in text whose comments are blanked out.
LOCATION = re.compile(rb"<location\b[^>]*/>|<location\b.*?</location\s*>", re.S)
LOCATION_PATH = re.compile(rb"""\spath\s*=\s*(?:"([^"]*)"|'([^']*)')""")
BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# The only lines an offload diff may add or remove.
ALLOWED_CHANGED_LINE = re.compile(
    rb'^[+-]\s*(<access sslFlags="[^"]*" />|<access [^>]*>|</?security>|</?system\.webServer>'
    rb'|<location path="[^"]*">|</location>|<security [^>]*>|<system\.webServer [^>]*>)?\s*$'
)


def location_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(path, raw bytes) of every top-level <location>, found by a regex, not by confedit."""
    blanked = re.sub(rb"<!--.*?-->", lambda m: b" " * len(m.group(0)), data, flags=re.S)
    blocks = []
    for match in LOCATION.finditer(blanked):
        start_tag = blanked[match.start() : blanked.index(b">", match.start())]
        found = LOCATION_PATH.search(start_tag)
        blocks.append((_path_value(found), data[match.start() : match.end()]))
    return blocks


def _path_value(found: re.Match[bytes] | None) -> str:
    """The path as lxml reads it (character references and all)."""
    if found is None:
        return ""
    quote = b'"' if found.group(1) is not None else b"'"
    raw = found.group(1) if found.group(1) is not None else found.group(2)
    return etree.fromstring(b"<x p=" + quote + raw + quote + b"/>").get("p")


def back_end_blocks(data: bytes) -> list[bytes]:
    """The raw bytes of every Exchange Back End <location> (any spelling of the path)."""
    return [
        block
        for path, block in location_blocks(data)
        if path.casefold().rstrip("/").partition("/")[0] == "exchange back end"
    ]


def split_bom(raw: bytes) -> tuple[bytes, str]:
    """The BOM (or b"") and the text of a file in UTF-8 or UTF-16."""
    for bom, codec in zip(BOMS, ("utf-8", "utf-16-le", "utf-16-be"), strict=True):
        if raw.startswith(bom):
            return bom, raw[len(bom) :].decode(codec)
    return b"", raw.decode("utf-8")


def changed_lines(diff: bytes) -> list[bytes]:
    return [
        line
        for line in diff.split(b"\n")
        if line[:1] in (b"+", b"-") and not line.startswith((b"+++ ", b"--- "))
    ]


def run_patch(
    tmp: Path, label: str, original: bytes, diff: bytes, *, reverse: bool = False
) -> bytes:
    """Apply `diff` with the real `patch -p1` to a copy of `original` named `label`."""
    patch = shutil.which("patch")
    assert patch, "the patch program is needed for the round-trip tests"
    target = tmp / label
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(original)
    args = [patch, "-p1", "--quiet", "--no-backup-if-mismatch", "--batch"]
    if reverse:
        args.append("-R")
    subprocess.run(args, input=diff, cwd=tmp, check=True, capture_output=True)
    return target.read_bytes()


def run_git_apply(tmp: Path, label: str, original: bytes, diff: bytes) -> bytes:
    git = shutil.which("git")
    assert git, "git is needed for the git-apply tests"
    target = tmp / label
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(original)
    subprocess.run([git, "init", "-q", str(tmp)], check=True)
    subprocess.run([git, "apply", "-"], input=diff, cwd=tmp, check=True, capture_output=True)
    return target.read_bytes()


def access_values(data: bytes) -> dict[str, str | None]:
    """location path -> sslFlags of its system.webServer/security/access (lxml, naive)."""
    root = etree.fromstring(data)
    values: dict[str, str | None] = {}
    for location in root.findall("location"):
        access = location.find("system.webServer/security/access")
        values[location.get("path", "")] = access.get("sslFlags") if access is not None else None
    return values


def strip_access(data: bytes, paths: set[str]) -> bytes:
    """Canonical XML of the document with every trace of the offload edits removed at `paths`:
    what must be identical between input and output."""
    root = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
    for location in root.findall("location"):
        if location.get("path", "").casefold() not in paths:
            continue
        for access in location.findall("system.webServer/security/access"):
            access.attrib.pop("sslFlags", None)
            if not access.attrib:
                access.getparent().remove(access)
        for name in ("system.webServer/security", "system.webServer"):
            for element in location.findall(name):
                if len(element) == 0 and not element.attrib:
                    element.getparent().remove(element)
    for location in root.findall("location"):
        if location.get("path", "").casefold() in paths and len(location) == 0:
            root.remove(location)
    return etree.tostring(root, method="c14n")


def git_env(**extra: str) -> dict[str, str]:
    """The environment for git in a temporary repository: no user or system configuration, a
    fixed author."""
    return {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        **extra,
    }


ANSI = re.compile(rb"\x1b\[[0-9;]*m")


FULL: Final = Path("/dev/full")  # a device where every write fails: disk full


def run_into_full_stdout(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run a command whose stdout is a full disk (pytest.skip where there is no /dev/full)."""
    if not FULL.exists():
        pytest.skip("needs /dev/full")
    with FULL.open("wb") as full:
        return subprocess.run(args, cwd=cwd, stdout=full, stderr=subprocess.PIPE, check=False)


def _close_stderr() -> None:
    os.close(2)


def run_with_lost_stderr(stderr: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m confedit ARGS` (no launcher in front of it) with a stderr that is "closed"
    (descriptor 2 closed) or "full" (/dev/full; pytest.skip where there is none)."""
    if stderr == "full" and not FULL.exists():
        pytest.skip("needs /dev/full")
    with (FULL if stderr == "full" else Path(os.devnull)).open("wb") as sink:
        return subprocess.run(
            [sys.executable, "-m", "confedit", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=sink,
            preexec_fn=_close_stderr if stderr == "closed" else None,
            check=False,
        )


def strip_ansi(data: bytes) -> bytes:
    return ANSI.sub(b"", data)


def run_in_pty(
    args: list[str], *, tty: str, cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run `args` with stdout or stderr (`tty`) on a pseudo-terminal, the other one on a pipe.
    Returns (exit code, what the terminal showed with CRLF turned back to LF, the pipe's bytes)."""
    primary, secondary = pty.openpty()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, tty: secondary}
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        **streams,  # type: ignore[arg-type]
    )
    os.close(secondary)
    shown: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the other side is closed
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    piped = (proc.stdout if tty == "stderr" else proc.stderr).read()  # type: ignore[union-attr]
    code = proc.wait(timeout=120)
    reader.join(timeout=10)
    os.close(primary)
    return code, b"".join(shown).replace(b"\r\n", b"\n"), piped


def make_fleet(root: Path, corpus: Path, samples: Path) -> dict[str, Path]:
    """A small fleet of server folders under root/fleet, from the real corpus, with variations:
    two servers to offload (one a Windows-style BOM+CRLF export, its file name in another
    case), one already offloaded, one with Extended Protection, one malformed, one plain IIS
    server (no Exchange front end), and files that are no applicationHost.config."""
    exchange = corpus / "exchange"
    crlf = (exchange / "e2019.applicationHost.config").read_bytes().replace(b"\n", b"\r\n")
    files = {
        "cas-2016": (
            "applicationHost.config",
            (exchange / "e2016.applicationHost.config").read_bytes(),
        ),
        "cas-2019": ("ApplicationHost.config", b"\xef\xbb\xbf" + crlf),
        "cas-done": (
            "applicationHost.config",
            (samples / "exchange2013-cas.applicationHost.patched.config").read_bytes(),
        ),
        "cas-ep": (
            "applicationHost.config",
            (exchange / "e2013-cas-extended-protection.applicationHost.config").read_bytes(),
        ),
        "cas-broken": (
            "applicationHost.config",
            (exchange / "e2019-malformed.applicationHost.config").read_bytes(),
        ),
        "web": (
            "applicationHost.config",
            (corpus / "iis" / "reverse-proxy.applicationHost.config").read_bytes(),
        ),
    }
    paths = {}
    for server, (name, data) in files.items():
        folder = root / "fleet" / server
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
        paths[server] = folder / name
    (root / "fleet" / "cas-2016" / "applicationHost.config.bak").write_bytes(b"not a config")
    (root / "fleet" / "README.txt").write_text("exports of the Client Access servers\n")
    return paths


# Resets SIGINT and SIGHUP, then becomes the command: exec keeps a handler reset to the default.
_SIGNALS_RESET: Final = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGHUP, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
)


def as_at_a_terminal(argv: list[str]) -> list[str]:
    """`argv` run with SIGINT and SIGHUP as a command typed at a terminal has them. The tests
    may run in a background job of a shell script, which starts every process with SIGINT
    ignored (as confedit then leaves it: see test_console), or under nohup, which ignores
    SIGHUP."""
    return [sys.executable, "-c", _SIGNALS_RESET, *argv]


def record_is_below(monkeypatch: pytest.MonkeyPatch, module: str) -> list[str]:
    """The paths `module` (confedit.iis, say) asks is_below about from now on, in order: how
    many comparisons a step makes, to show it does not compare every path with every other."""
    calls: list[str] = []

    def counted(key: str, ancestor: str) -> bool:
        calls.append(key)
        return is_below(key, ancestor)

    monkeypatch.setattr(f"{module}.is_below", counted)
    return calls


def record_realpath(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths os.path.realpath is asked to resolve from now on (a system call for each
    folder of the path), in order."""
    calls: list[str] = []
    real_realpath = os.path.realpath

    def realpath(path: str, *args: Any, **kwargs: Any) -> str:
        calls.append(os.fspath(path))
        return real_realpath(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", realpath)
    return calls


# owa offloaded on a server whose owa/Integrated is a child application with no <location>
SMALL_CAS = b"""<?xml version="1.0" encoding="UTF-8"?>
<configuration>
    <system.applicationHost>
        <sites>
            <site name="Default Web Site" id="1">
                <application path="/" />
                <application path="/owa" />
                <application path="/owa/Integrated" />
            </site>
        </sites>
    </system.applicationHost>
    <system.webServer>
        <security>
            <access sslFlags="None" />
        </security>
    </system.webServer>
    <location path="Default Web Site">
        <system.webServer>
            <security>
                <access sslFlags="Ssl, Ssl128" />
            </security>
        </system.webServer>
    </location>
    <location path="Default Web Site/owa"%s>
        <system.webServer>
            <security>
                <access sslFlags="None" />
            </security>
        </system.webServer>
    </location>
</configuration>
"""
NOT_INHERITED = b' inheritInChildApplications="false"'
