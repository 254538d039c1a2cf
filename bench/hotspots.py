"""Where confedit spends its time and memory: stages, cProfile and the RSS high-water mark.

    python bench/hotspots.py stages FILE [--runs 20]     # median per stage, RSS after each
    python bench/hotspots.py profile FILE [--runs 20]    # cProfile of warm library calls
    python bench/hotspots.py cli FILE [--top 25]         # cProfile of the CLI, in-process
    python bench/hotspots.py parsers FILE [--runs 3]     # lxml parser options: time and RSS
    python bench/hotspots.py batch FOLDER                 # a batch file's steps, one process

The stages are the engine's own, timed as confedit.engine calls them (see stages.py): load,
Config, plan, splice, verify and unified_diff. Run it on a quiet machine; the numbers are medians.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree
from stages import STAGES, record

from confedit.plan import Request

if TYPE_CHECKING:
    from confedit.batch import Input


def show_stages(raw: bytes, request: Request, runs: int) -> None:
    """Median time per stage over `runs` warm offloads, the RSS after each stage in the first
    one, and one lxml parse of the same bytes for scale."""
    timings: dict[str, list[float]] = {name: [] for name in STAGES}
    totals: list[float] = []
    parses: list[float] = []
    memory: dict[str, tuple[float, float] | None] = {}
    for round_ in range(runs + 1):
        started = time.perf_counter()
        # the whole offload, its diff, and freeing the result; the RSS in the warm-up only
        calls = record(raw, request, memory=round_ == 0)
        total = time.perf_counter() - started
        started = time.perf_counter()
        etree.fromstring(raw)
        parse = time.perf_counter() - started
        if round_ == 0:  # warm-up; its RSS shows what each stage adds
            memory = {name: call.rss_mib for name, call in calls.items()}
            continue
        totals.append(total)
        parses.append(parse)
        for name, call in calls.items():
            timings[name].append(call.seconds)
    whole = statistics.median(totals)
    print(f"{'stage':<28}{'median':>12}{'share':>8}{'RSS after':>12}{'RSS peak':>12}")
    for name, values in timings.items():
        if not values:
            continue
        median = statistics.median(values)
        current, peak = memory[name] or (0.0, 0.0)  # recorded in the warm-up
        print(
            f"{name:<28}{median * 1000:>9.2f} ms{median / whole:>8.0%}"
            f"{current:>8.0f} MiB{peak:>8.0f} MiB"
        )
    rest = whole - sum(statistics.median(v) for v in timings.values() if v)
    print(f"{'the rest (freeing, glue)':<28}{rest * 1000:>9.2f} ms{rest / whole:>8.0%}")
    print(f"{'offload + diff, in all':<28}{whole * 1000:>9.2f} ms")
    print(f"{'one lxml parse, for scale':<28}{statistics.median(parses) * 1000:>9.2f} ms")


def show_profile(call: Callable[[], object], runs: int, top: int) -> None:
    """cProfile of `runs` calls: the top functions by own time, then by cumulative time."""
    call()  # warm
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        call()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(top)
        print(f"--- {runs} runs, sorted by {order} ---")
        report = text.getvalue()
        print(report[report.index("   ncalls") :].rstrip())  # from the column headers on


class _NoTree:
    """A parser target without callbacks: libxml2 checks well-formedness and builds nothing."""

    def close(self) -> None:
        return None


_SAFE: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "collect_ids": False,
}
PARSERS: dict[str, dict[str, Any]] = {
    "tree (confedit's options)": _SAFE,
    "tree, remove_blank_text": {**_SAFE, "remove_blank_text": True},
    "no tree (well-formedness only)": {**_SAFE, "target": _NoTree()},
}


def parse_once(variant: str, path: Path) -> None:
    """Read and parse `path` with one of PARSERS; print the parse's seconds (a child's job)."""
    raw = path.read_bytes()
    started = time.perf_counter()
    etree.fromstring(raw, etree.XMLParser(**PARSERS[variant]))
    print(time.perf_counter() - started)


def show_parsers(path: Path, runs: int) -> None:
    """Each parser variant in fresh processes: median parse time and whole-process peak RSS."""
    from measure import run_once  # noqa: PLC0415 - a sibling script, only needed here

    print(f"{'parser':<34}{'parse':>10}{'peak RSS':>12}")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "seconds"
        for variant in PARSERS:
            times, peaks = [], []
            for _ in range(runs):
                argv = [sys.executable, __file__, "parse-one", str(path), "--variant", variant]
                sample = run_once(argv, stdout=report)
                times.append(float(report.read_text()))
                peaks.append(sample.peak_rss_kib / 1024)
            parse = statistics.median(times) * 1000
            print(f"{variant:<34}{parse:>7.0f} ms{statistics.median(peaks):>8.0f} MiB")


def run_cli(path: Path, extra: Sequence[str]) -> None:
    """`confedit offload FILE -o OUT --diff D` in this process."""
    from confedit.cli import main  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        argv = ["offload", str(path), "-o", f"{folder}/out", "--diff", f"{folder}/d", "-q"]
        try:
            main([*argv, *extra], standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise


BATCH_STEPS = (
    "read",
    "library call",
    "freeing the result",
    "re-read",
    "write",
    "report",
    "sync at the end",
)


def show_batch_steps(folder: Path, request: Request) -> int:
    """Mean wall and CPU time per file of each step confedit.offload_command.offload_file takes with
    --output-dir (no fsync per file; the run's one sync at the end shared out), over the
    config files below `folder`, in this one process. A file confedit refuses or cannot read
    is named on stderr and left out of the means, as a batch reports it and goes on."""
    from confedit.batch import find_inputs  # noqa: PLC0415
    from confedit.errors import ConfeditError  # noqa: PLC0415
    from confedit.files import sync_filesystems  # noqa: PLC0415

    inputs = find_inputs([folder])
    spent = {step: [0.0, 0.0] for step in BATCH_STEPS}
    measured = 0
    with tempfile.TemporaryDirectory() as output:
        for item in inputs:
            try:
                steps = _batch_file_steps(item, request, Path(output))
            except ConfeditError as error:
                print(f"left out: {error}", file=sys.stderr)
                continue
            measured += 1
            for step, (wall, cpu) in steps.items():
                spent[step][0] += wall
                spent[step][1] += cpu
        clock = [time.perf_counter(), time.process_time()]
        sync_filesystems([Path(output)])
        spent["sync at the end"] = [time.perf_counter() - clock[0], time.process_time() - clock[1]]
    if not measured:
        print(f"no file below {folder} could be offloaded: nothing to measure", file=sys.stderr)
        return 1
    left_out = f" ({len(inputs) - measured} left out)" if measured < len(inputs) else ""
    print(f"{measured} file{'s' * (measured != 1)}{left_out}; per file:")
    print(f"{'step':<22}{'wall':>10}{'CPU':>10}")
    for step, (wall, cpu) in spent.items():
        print(f"{step:<22}{wall / measured * 1000:>7.2f} ms{cpu / measured * 1000:>7.2f} ms")
    return 0


def _batch_file_steps(item: Input, request: Request, output: Path) -> dict[str, list[float]]:
    """Wall and CPU seconds of each step of one file (all but the sync at the end); raises
    the ConfeditError of a file confedit refuses or cannot read."""
    from confedit import report  # noqa: PLC0415
    from confedit.engine import offload  # noqa: PLC0415
    from confedit.files import Outputs, check_unchanged, read_input  # noqa: PLC0415

    spent: dict[str, list[float]] = {}
    clock = [time.perf_counter(), time.process_time()]

    def done(step: str) -> None:
        now = [time.perf_counter(), time.process_time()]
        spent[step] = [now[0] - clock[0], now[1] - clock[1]]
        clock[:] = now

    snapshot = read_input(item.path)
    done("read")
    result = offload(snapshot.data, request, name=str(item.path))
    data = result.output
    done("library call")
    check_unchanged(snapshot)
    done("re-read")
    destination = output / item.label
    destination.parent.mkdir(parents=True, exist_ok=True)
    with Outputs(durable=False) as outputs:  # as --output-dir writes (see offload_command.py)
        outputs.add(destination, data, mode_from=item.path)
    done("write")
    report.summary_line(result, str(item.path))
    list(report.finding_lines(result))
    done("report")
    del result, snapshot, data
    done("freeing the result")
    return spent


def main(argv: Sequence[str] | None = None) -> int:
    """Print stages, a library profile or a CLI profile for one file, or a batch's steps."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "what", choices=["stages", "profile", "cli", "parsers", "batch", "parse-one"]
    )
    parser.add_argument("file", type=Path, help="a config file (a folder of them for batch)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--allow-extended-protection", action="store_true")
    parser.add_argument("--variant", choices=list(PARSERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.what == "parse-one":
        parse_once(args.variant, args.file)
        return 0
    request = Request(allow_extended_protection=args.allow_extended_protection)
    if args.what == "batch":
        return show_batch_steps(args.file, request)
    raw = args.file.read_bytes()
    print(f"{args.file.name}: {len(raw):,} bytes")
    if args.what == "stages":
        show_stages(raw, request, args.runs)
    elif args.what == "parsers":
        show_parsers(args.file, args.runs)
    elif args.what == "profile":
        import confedit  # noqa: PLC0415

        show_profile(lambda: confedit.offload(raw, request).diff("input"), args.runs, args.top)
    else:
        extra = ["--allow-extended-protection"] if args.allow_extended_protection else []
        show_profile(lambda: run_cli(args.file, extra), args.runs, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
