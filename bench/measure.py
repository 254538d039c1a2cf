"""Timing a whole process: wall time and peak RSS of one fresh child per run.

The peak RSS is GNU time's %M (the largest resident set of the command and the processes it
waited for). It cannot come from wait4() or RUSAGE_CHILDREN here: Linux carries a process's
high-water mark across exec, and a child started from this Python process begins as a copy of
it (fork or vfork), so every command would seem to need at least the benchmark's own ~30 MiB.
GNU time is a small C program, so its own pages are what a shell would add too (about 1 MiB).
The wall time is measured here around the whole launch; GNU time adds well under a millisecond.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import statistics
import subprocess
import tempfile
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
    def fastest(self) -> float:
        """Shortest wall time: what the work costs when nothing else gets in the way."""
        return min(s.seconds for s in self.samples)

    @property
    def peak_rss_mib(self) -> float:
        """Median peak RSS, in MiB."""
        return statistics.median(s.peak_rss_kib for s in self.samples) / 1024


@functools.cache
def gnu_time() -> str:
    """The path of GNU time, or exit with how to install it."""
    path = shutil.which("time") or "/usr/bin/time"
    probe = subprocess.run([path, "-f", "%M", "true"], capture_output=True, check=False)
    if probe.returncode != 0 or not probe.stderr.strip().isdigit():
        raise SystemExit("GNU time is needed for peak RSS: apt-get install -y time")
    return path


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
        report = stack.enter_context(tempfile.NamedTemporaryFile("r", suffix=".rss"))
        command = [gnu_time(), "-f", "%M", "-o", report.name, *map(str, argv)]
        started = time.perf_counter()
        code = subprocess.call(command, stdout=sink, stderr=subprocess.DEVNULL, cwd=cwd)
        elapsed = time.perf_counter() - started
        # GNU time writes "Command exited with non-zero status N" before the figure then.
        peak = int(report.read().split()[-1])
    return Sample(elapsed, peak, code)


def cpus_free(python: str, cpus: int) -> float:
    """How many CPUs this machine gives right now: `cpus` busy loops at once against one alone.

    A shared machine can have a CPU taken by other work, which slows the parallel rows most;
    the report shows this figure so that a reader can tell.
    """
    loop = [python, "-c", "sum(range(20_000_000))"]
    started = time.perf_counter()
    subprocess.run(loop, check=True)
    alone = time.perf_counter() - started
    started = time.perf_counter()
    children = [subprocess.Popen(loop) for _ in range(cpus)]
    for child in children:
        child.wait()
    together = time.perf_counter() - started
    return min(cpus, cpus * alone / together)


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
