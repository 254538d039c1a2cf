"""Timing a whole process: wall time and peak RSS of one fresh child per run.

The peak RSS comes from os.wait4(), which reports the child's own resource usage (the largest
of the child and the processes it waited for), so runs never mix as they would with
RUSAGE_CHILDREN, which keeps the maximum of every child the benchmark ever started.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Sample:
    """One run of a command."""

    seconds: float
    peak_rss_kib: int
    exit_code: int


@dataclass
class Series:
    """The runs of one approach on one input; failed runs are kept, never timed."""

    samples: list[Sample] = field(default_factory=list)
    failure: str | None = None

    def add(self, sample: Sample, expected_codes: Sequence[int] = (0,)) -> None:
        """Keep a sample; a run that exits with an unexpected code marks the series failed."""
        if sample.exit_code not in expected_codes and self.failure is None:
            self.failure = f"exit code {sample.exit_code}"
        self.samples.append(sample)

    @property
    def ok(self) -> bool:
        return self.failure is None and bool(self.samples)

    @property
    def seconds(self) -> float:
        """Median wall time."""
        return statistics.median(s.seconds for s in self.samples)

    @property
    def peak_rss_mib(self) -> float:
        """Median peak RSS, in MiB."""
        return statistics.median(s.peak_rss_kib for s in self.samples) / 1024


def run_once(
    argv: Sequence[str | os.PathLike[str]],
    stdout: Path | None = None,
    cwd: Path | None = None,
) -> Sample:
    """Run `argv` in a fresh process; stdout goes to `stdout` (or nowhere), stderr nowhere."""
    with contextlib.ExitStack() as stack:
        sink: IO[bytes] | int = (
            stack.enter_context(stdout.open("wb")) if stdout else subprocess.DEVNULL
        )
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
    return Sample(elapsed, usage.ru_maxrss, child.returncode)


def changed_lines(before: Path, after: Path) -> int:
    """Lines removed plus lines added between two files (GNU diff; CR counts as content)."""
    proc = subprocess.run(
        [
            "diff",
            "-a",
            "--unchanged-line-format=",
            "--old-line-format=-",
            "--new-line-format=+",
            before,
            after,
        ],
        capture_output=True,
        check=False,
    )
    if proc.returncode > 1:
        raise RuntimeError(f"diff failed: {proc.stderr.decode(errors='replace').strip()}")
    return len(proc.stdout)
