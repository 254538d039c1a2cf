"""Instructions per warm library call and per lxml parse, counted by valgrind's callgrind.

    python bench/instructions.py FILE [--calls 10]     # needs valgrind (apt-get install valgrind)

Wall time on a shared machine moves by a tenth and more between runs of the same code; an
instruction count does not (about 25 K per call between runs here, with PYTHONHASHSEED fixed),
so it shows what a change to the code costs. It is no measure of time: a call's instructions
take longer than a parse's (the interpreter's branches, small objects). Each count is a process
making `calls` warm calls minus one making none, divided by `calls`: start-up and the first,
cold call cancel out.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# What the counted process runs: `calls` warm calls of one kind, after one to warm it.
_CHILD = """
import sys
from lxml import etree
import confedit
from confedit import verify
from confedit.document import make_parser

raw = open(sys.argv[1], "rb").read()
kind, calls = sys.argv[2], int(sys.argv[3])

def library():
    verify.forget()  # what one file costs, as bench/run.py measures it
    confedit.offload(raw).diff("config")

def parse():
    etree.fromstring(raw, make_parser())

call = library if kind == "library" else parse
call()
for _ in range(calls):
    call()
"""

_COLLECTED = re.compile(rb"Collected : (\d+)")


def count(valgrind: str, file: Path, kind: str, calls: int) -> int:
    """Instructions of one process that makes `calls` warm calls of `kind` (after a first)."""
    with tempfile.TemporaryDirectory() as folder:
        argv = [
            valgrind,
            "--tool=callgrind",
            f"--callgrind-out-file={folder}/out",
            # This interpreter as it was started: a virtual environment's python is a link to
            # the base interpreter, and the base interpreter named by its own path (a resolved
            # link) runs outside the environment, without its packages. sys.executable is never
            # a launcher script (pyenv's shims run the interpreter by its own path).
            sys.executable,
            "-c",
            _CHILD,
            str(file),
            kind,
            str(calls),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        proc = subprocess.run(argv, capture_output=True, env=env, check=False)
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed on {file}: {proc.stderr.decode(errors='replace')}")
    return int(found.group(1))


def per_call(valgrind: str, file: Path, kind: str, calls: int) -> float:
    return (count(valgrind, file, kind, calls) - count(valgrind, file, kind, 0)) / calls


def main(argv: Sequence[str] | None = None) -> int:
    """Print the instructions per library call and per parse of each file, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    print(f"{'file':<40}{'library call':>16}{'lxml parse':>16}{'ratio':>8}")
    for file in args.files:
        library = per_call(valgrind, file, "library", args.calls)
        parse = per_call(valgrind, file, "parse", args.calls)
        ratio = library / parse
        print(f"{file.name:<40}{library / 1e6:>14.2f} M{parse / 1e6:>14.2f} M{ratio:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
