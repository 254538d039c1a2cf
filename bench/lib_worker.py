"""Warm, in-process timings of the library call and of one lxml parse of the same bytes.

run.py starts this in a child process per input, so that the benchmark's own memory does not
count and each input starts from a clean heap. Prints one JSON object on stdout.

    python bench/lib_worker.py FILE [--min-runs 5] [--budget 3] [--allow-extended-protection]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from argparse import Namespace
from collections.abc import Callable, Sequence
from pathlib import Path

from lxml import etree

import confedit
from confedit import verify
from confedit.document import PRUNE_ABOVE
from confedit.plan import Request


def changed_lines(diff: bytes) -> int:
    """Lines added or removed in a unified diff of one file (its two header lines excluded)."""
    lines = diff.split(b"\n")[2:]
    return sum(1 for line in lines if line[:1] in (b"+", b"-"))


def main(argv: Sequence[str] | None = None) -> int:
    """Time confedit.offload(raw).diff(label) and etree.fromstring(raw): in blocks taking turns,
    or one after the other for a file too large for confedit to build its whole tree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--min-runs", type=int, default=5)
    parser.add_argument("--max-runs", type=int, default=200)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds to keep sampling")
    parser.add_argument("--allow-extended-protection", action="store_true")
    parser.add_argument("--include-descendants", action="store_true")
    args = parser.parse_args(argv)

    raw = args.file.read_bytes()
    request = Request(
        allow_extended_protection=args.allow_extended_protection,
        include_descendants=args.include_descendants,
    )
    label = args.file.name

    def library() -> bytes:
        # The cost of one file: what verify remembers of a file checked before (which spares
        # a fleet's later servers the same checks) would otherwise make every call after the
        # first a repeat. Emptying it costs microseconds.
        verify.forget()
        result = confedit.offload(raw, request, name=label)
        _ = result.output  # the file's own encoding: what a caller writes
        return result.diff(label)

    def parse() -> None:
        etree.fromstring(raw)

    timings: dict[str, list[float]] = {
        "library": [],
        "parse": [],
        "library_after_switch": [],
        "parse_after_switch": [],
    }
    library()  # warm: imports, caches, first-touch of the pages
    # The high-water mark now is the library's: file, result, imports. Parsing into a whole
    # tree comes later and may need more, so it is read before the first parse.
    library_peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"diff_lines": changed_lines(library()), "peak_rss_kib": library_peak_rss_kib}
    if len(raw) < PRUNE_ABOVE:
        # Blocks of each call in turn, so that a noisy neighbour slows both alike.
        _sample(timings, {"library": library, "parse": parse}, args, BLOCK)
    else:
        # confedit never builds a whole tree of a file this large; a call made just after a
        # whole-tree parse was freed ran in a heap shaped by it, up to half as fast again.
        _sample(timings, {"library": library}, args, args.max_runs)
        _sample(timings, {"parse": parse}, args, args.max_runs)
    json.dump({**timings, **result}, sys.stdout)
    return 0


# Calls timed in a row before switching to the other call. The first call after a switch is
# timed apart ("..._after_switch"): it runs in the caches and heap the other call left, which
# made a library call about 15% slower and a parse about 10% faster than in a row of its own.
BLOCK = 10


def _sample(
    timings: dict[str, list[float]],
    calls: dict[str, Callable[[], object]],
    args: Namespace,
    block: int,
) -> None:
    """Time each of `calls` in turn: a switch call, timed apart, then up to `block` calls; at
    least min-runs calls each, then until the budget is spent."""
    started = time.perf_counter()
    while not _enough(timings[next(iter(calls))], started, args):
        for name, call in calls.items():
            timings[f"{name}_after_switch"].append(_timed(call))
            for _ in range(block):
                timings[name].append(_timed(call))
                if _enough(timings[name], started, args):
                    break


def _enough(samples: list[float], started: float, args: Namespace) -> bool:
    runs, spent = len(samples), time.perf_counter() - started
    return bool(runs >= args.max_runs or (runs >= args.min_runs and spent >= args.budget))


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
