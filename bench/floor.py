"""The floor: a Python process that reads a file and parses it with lxml, nothing else.

    python bench/floor.py applicationHost.config
    python bench/floor.py --output-dir OUT --jobs N FILE...   # the batch floor

The batch floor reads, parses and writes back each file (its bytes as read, to OUT/FILE), in N
worker processes given the files in chunks, as confedit's --output-dir does: what any Python
tool built on lxml pays per file before it does any work of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lxml import etree

CHUNK = 16  # files per task, as confedit.batch


def parse(name: str) -> bytes:
    """The bytes of the file `name`, parsed once (and the tree dropped)."""
    raw = Path(name).read_bytes()
    etree.fromstring(raw)
    return raw


def copy_parsed(output: Path, names: list[str]) -> None:
    """Parse each file and write its bytes to `output`/name."""
    for name in names:
        (output / name).write_bytes(parse(name))


def main(argv: list[str]) -> int:
    """Parse each file named; with --output-dir, also write each one there."""
    if argv[:1] != ["--output-dir"]:
        # The per-file floor imports nothing else: its start-up is part of what it measures.
        for name in argv:
            parse(name)
        return 0
    return batch(argv)


def batch(argv: list[str]) -> int:
    """The batch floor (see the module's docstring)."""
    import argparse  # noqa: PLC0415 - only the batch floor pays for these imports
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415
    from functools import partial  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    chunks = [args.files[start : start + CHUNK] for start in range(0, len(args.files), CHUNK)]
    # Forked, as confedit's workers are, whatever the interpreter's default (a fork server from
    # Python 3.14 on Linux): workers that load Python and lxml again would be a higher floor.
    forked = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=forked) as pool:
        list(pool.map(partial(copy_parsed, args.output_dir), chunks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
