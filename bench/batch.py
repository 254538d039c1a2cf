"""The batch benchmark: a fleet of config files, and the commands that patch all of them.

The fleet is made of the real corpus files, each copy varied as exports from different servers
are: a comment naming the server, another drive letter in the physical paths, and LF, CRLF or
BOM+CRLF line endings. Each file is SERVER/applicationHost.config, as a pipeline stores them.
"""

from __future__ import annotations

import codecs
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generate import OAB_XPATH

# Part of the cache folder name: bump it whenever the fleet's bytes change.
VERSION = 1
FILE_NAME = "applicationHost.config"
_LINE_ENDINGS = ("lf", "crlf", "bom-crlf")
_CHUNK = 25  # files per shell in the xargs loops: one sh per chunk, one tool process per file

ONE_PROCESS = "confedit offload DIR --output-dir --jobs N (one process)"
XARGS_XMLSTARLET = "xargs -P N xmlstarlet ed (OAB only)"
XARGS_CONFEDIT = "xargs -P N confedit offload -o (a process per file)"
FLOOR = "floor: N Python processes read, lxml-parse and write each file"


def fleet(count: int, sources: Sequence[Path], out: Path) -> Path:
    """The folder of `count` varied copies of `sources` (made once, then reused)."""
    folder = out / f"fleet-{count}-v{VERSION}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    originals = [path.read_bytes() for path in sources]
    for index in range(count):
        raw = originals[index % len(originals)]
        ending = _LINE_ENDINGS[(index // len(originals)) % len(_LINE_ENDINGS)]
        path = folder / server_name(index) / FILE_NAME
        path.parent.mkdir(parents=True)
        path.write_bytes(vary(raw, index, ending))
    marker.write_text("\n".join(path.name for path in sources) + "\n")
    return folder


def server_name(index: int) -> str:
    """The folder of the fleet's `index`-th file."""
    return f"exch{index + 1:04d}"


def vary(raw: bytes, index: int, ending: str) -> bytes:
    """`raw` as exported from another server: a comment, a drive letter, the line endings."""
    data = raw.replace(b"\r\n", b"\n")
    comment = f"\n<!-- exported from {server_name(index).upper()} -->".encode()
    declaration_end = data.index(b"?>") + 2 if data.startswith(b"<?xml") else 0
    data = data[:declaration_end] + comment + data[declaration_end:]
    if index % 2:
        data = data.replace(b'physicalPath="C:\\', b'physicalPath="D:\\')
    if ending == "lf":
        return data
    data = data.replace(b"\n", b"\r\n")
    return codecs.BOM_UTF8 + data if ending == "bom-crlf" else data


def files(folder: Path) -> list[Path]:
    """The fleet's config files, relative to `folder`, in order."""
    return sorted(path.relative_to(folder) for path in folder.glob(f"*/{FILE_NAME}"))


@dataclass(frozen=True)
class Work:
    """What a batch command is asked to do: these fleet files into `output`, `jobs` at a time."""

    files: tuple[Path, ...]  # relative to the fleet folder
    output: Path
    jobs: int


@dataclass(frozen=True)
class Command:
    """One way to do the Work (run with the fleet folder as its cwd).

    Every command starts from the same output tree: the server folders already made (the
    xargs loops cannot make them without a process per file), so all are timed on the same
    work: read each file, patch it, write it.
    """

    name: str
    argv: list[str]
    work: Work


def confedit_batch(confedit: str, work: Work) -> Command:
    """One confedit process over the whole fleet (the multi-file interface).

    It is given the fleet folder as "." (its cwd), since --output-dir mirrors the paths as
    given: the outputs land at the same relative paths as the xargs loops'.
    """
    argv = [confedit, "offload", ".", "--output-dir", str(work.output)]
    return Command(ONE_PROCESS, [*argv, "--jobs", str(work.jobs), "-q"], work)


def floor_batch(python: str, floor: Path, work: Work) -> Command:
    """bench/floor.py's batch floor: what a Python tool on lxml pays before doing any work."""
    argv = [python, str(floor), "--output-dir", str(work.output), "--jobs", str(work.jobs)]
    return Command(FLOOR, [*argv, *map(str, work.files)], work)


def xargs_xmlstarlet(xmlstarlet: str, work: Work, listing: Path) -> Command:
    """xmlstarlet once per file, `jobs` at a time (writes the file list to `listing`)."""
    tool = f"{shlex.quote(xmlstarlet)} ed -u {shlex.quote(OAB_XPATH)} -v None"
    return _xargs(XARGS_XMLSTARLET, f'{tool} "$f" > "$out/$f"', work, listing)


def xargs_confedit(confedit: str, work: Work, listing: Path) -> Command:
    """confedit once per file, `jobs` at a time: what works without --output-dir."""
    tool = f'{shlex.quote(confedit)} offload "$f" -o "$out/$f" -q'
    return _xargs(XARGS_CONFEDIT, tool, work, listing)


def _xargs(name: str, per_file: str, work: Work, listing: Path) -> Command:
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_bytes(b"".join(bytes(path) + b"\0" for path in work.files))
    loop = f"out=$0; for f; do {per_file} || exit 255; done"
    script = (
        f"xargs -0 -a {shlex.quote(str(listing))} -n {_CHUNK} -P {work.jobs} "
        f"sh -c {shlex.quote(loop)} {shlex.quote(str(work.output))}"
    )
    return Command(name, ["sh", "-c", script], work)


def prepare_output(output: Path, command: Command) -> None:
    """An empty output folder with the server folders in it (see Command)."""
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    for path in command.work.files:
        (output / path).parent.mkdir(parents=True, exist_ok=True)
