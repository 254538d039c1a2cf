"""Benchmark confedit against xmlstarlet, a naive lxml script and a bare lxml parse.

    python bench/run.py                  # corpus + 1/10/100 MB + batch of 1,000 + start-up
    python bench/run.py --quick          # a smaller run for a first look (about a minute)
    python bench/run.py --sizes 10mb --batch 0 --json results.json

Every number is the median of several fresh processes (wall time, and peak RSS from GNU
time), except the in-process rows, which are the median of many warm calls in one child process.
Approaches run round-robin, after one unrecorded warm-up round, so that a noisy neighbour
slows all of them alike. The tables go to stdout as Markdown; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import batch
import generate
from measure import Sample, Series, changed_lines, cpus_free, run_once

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = generate.OUT / "work"

CLI = "confedit CLI: offload F -o OUT --diff D"
LIBRARY = "confedit library, in-process warm"
XMLSTARLET = "xmlstarlet ed (OAB only)"
NAIVE = "naive lxml script (OAB only)"
FLOOR = "lxml parse only, process (floor)"
PARSE = "lxml parse, in-process warm"
TARGET_CONFIG = "e2019.applicationHost.config"  # the real ~175 KB config


@dataclass(frozen=True)
class Tools:
    """The programs compared, as found on this machine."""

    python: str
    confedit: str
    xmlstarlet: str | None
    has_output_dir: bool


@dataclass(frozen=True)
class Input:
    label: str
    path: Path
    real: bool  # a corpus file, not a generated one
    allow_extended_protection: bool = False


@dataclass(frozen=True)
class Proc:
    """One approach as a command: its stdout file (if kept) and the patched file it makes."""

    name: str
    argv: list[str]
    stdout: Path | None = None
    output: Path | None = None


@dataclass
class InputResult:
    input: Input
    series: dict[str, Series] = field(default_factory=dict)
    diff_lines: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    # Median seconds of the in-process calls made first after switching from the other call
    # (see lib_worker.BLOCK), by row name.
    after_switch: dict[str, float] = field(default_factory=dict)


# --- options and environment ------------------------------------------------------------------

QUICK = {
    "sizes": "1mb,10mb",
    "runs": 3,
    "lib_budget": 1.0,
    "batch": 100,
    "batch_runs": 1,
    "loop_files": 50,
    "startup_runs": 5,
    "paths_below": "1000,4000",
}


def options(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1mb,10mb,100mb", help="synthetic sizes ('' for none)")
    parser.add_argument("--corpus", type=Path, default=default_corpus(), help="corpus folder")
    parser.add_argument("--no-corpus", action="store_true", help="skip the real files")
    parser.add_argument("--runs", type=int, default=5, help="processes per approach and input")
    parser.add_argument("--lib-budget", type=float, default=3.0, help="seconds of warm calls")
    parser.add_argument("--batch", type=int, default=1000, help="files in the batch (0: skip)")
    parser.add_argument("--batch-runs", type=int, default=3, help="runs of each batch command")
    parser.add_argument(
        "--loop-runs", type=int, default=1, help="runs of the slow per-file confedit loop"
    )
    parser.add_argument(
        "--loop-files", type=int, default=200, help="files for the per-file confedit loop"
    )
    parser.add_argument(
        "--paths-below",
        default="1000,4000,16000",
        help="counts of paths below a target, for the scaling table ('' for none)",
    )
    parser.add_argument("--startup-runs", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="batch parallelism")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument(
        "--confedit", help="the confedit to measure (default: beside this Python, else PATH)"
    )
    parser.add_argument("--quick", action="store_true", help=f"other defaults: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # options given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    counts = (args.runs, args.batch_runs, args.loop_runs, args.loop_files, args.startup_runs)
    if min(counts) < 1:
        parser.error("run counts must be at least 1")
    return args


def default_corpus() -> Path:
    """CONFEDIT_CORPUS, else ../shared/corpus next to the repository (as the tests use)."""
    return Path(os.environ.get("CONFEDIT_CORPUS", REPO.parent / "shared" / "corpus"))


def find_tools(confedit: str | None) -> Tools:
    """confedit as given, else from this interpreter's environment, else PATH; xmlstarlet from
    PATH."""
    beside = Path(sys.executable).with_name("confedit")
    confedit = confedit or (str(beside) if beside.exists() else shutil.which("confedit"))
    if confedit is None:
        sys.exit("confedit is not installed: python -m pip install -e '.[test]'")
    help_text = subprocess.run(
        [confedit, "offload", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return Tools(sys.executable, confedit, shutil.which("xmlstarlet"), "--output-dir" in help_text)


def environment(tools: Tools) -> dict[str, str]:
    """What the numbers were measured with."""
    from lxml import etree  # noqa: PLC0415 - only for its version

    def version(argv: list[str]) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (proc.stdout or proc.stderr).strip().splitlines()[0]

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
        "python": platform.python_version(),
        "lxml": f"{etree.__version__} (libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))})",
        "confedit": f"{version([tools.confedit, '--version'])} ({tools.confedit})",
        "confedit library": confedit_source(),
        "confedit bytecode": compile_bytecode(),
        "xmlstarlet": version([tools.xmlstarlet, "--version"]) if tools.xmlstarlet else "missing",
    }


def confedit_source() -> str:
    """The folder this interpreter imports confedit from, and its git commit if it has one."""
    import confedit  # noqa: PLC0415 - the library the worker rows measure

    folder = Path(confedit.__file__).resolve().parent
    proc = subprocess.run(
        ["git", "-C", str(folder), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = f"commit {proc.stdout.strip()}" if proc.returncode == 0 else "not a git checkout"
    return f"{folder} ({commit})"


def compile_bytecode() -> str:
    """Compile confedit's modules to bytecode first, as pip does when it installs a wheel.

    An editable install compiles them on first use and caches the result, unless
    PYTHONDONTWRITEBYTECODE is set (as in some containers): then every confedit process would
    compile every module again, about 15-20 ms that no installed copy pays.
    """
    import compileall  # noqa: PLC0415 - only here

    import confedit  # noqa: PLC0415

    folder = Path(confedit.__file__).resolve().parent
    if not compileall.compile_dir(folder, quiet=1):
        return f"not compiled (see the errors above; {folder})"
    unset = "unset" if not os.environ.get("PYTHONDONTWRITEBYTECODE") else "set"
    return f"compiled before the run, as pip does for a wheel (PYTHONDONTWRITEBYTECODE {unset})"


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the tables."""
    print(message, file=sys.stderr, flush=True)


# --- inputs -----------------------------------------------------------------------------------


def corpus_inputs(corpus: Path) -> tuple[list[Input], list[str]]:
    """Every well-formed file of corpus/exchange that confedit offloads, and what was skipped.

    A file confedit refuses only because of Extended Protection is run with
    --allow-extended-protection, as the benchmark asks.
    """
    from confedit import ConfeditError  # noqa: PLC0415

    inputs: list[Input] = []
    skipped: list[str] = []
    for path in sorted((corpus / "exchange").glob("*.config")):
        label = path.name.removesuffix(".applicationHost.config")
        try:
            allow = needs_extended_protection_flag(path)
        except ConfeditError as exc:
            skipped.append(str(exc))  # names the file
            continue
        inputs.append(Input(label, path, real=True, allow_extended_protection=allow))
    return inputs, skipped


def needs_extended_protection_flag(path: Path) -> bool:
    """False if confedit offloads the file as it is, True if only with the flag; else raise."""
    from confedit import Refused, offload  # noqa: PLC0415 - the engine, only where needed
    from confedit.plan import Request  # noqa: PLC0415

    raw = path.read_bytes()
    try:
        offload(raw, name=path.name)
        return False
    except Refused:
        offload(raw, Request(allow_extended_protection=True), name=path.name)
        return True


def synthetic_inputs(sizes: str) -> list[Input]:
    """The generated files, made first if they are not cached yet."""
    inputs = []
    for size in filter(None, (s.strip() for s in sizes.split(","))):
        log(f"generating/finding synthetic {size} ...")
        inputs.append(Input(f"synthetic-{size}", generate.cached(size), real=False))
    return inputs


# --- one input, all approaches ----------------------------------------------------------------


def procs(inp: Input, work: Path, tools: Tools) -> list[Proc]:
    """The process approaches for one input."""
    out = work / "out.config"
    cli = [tools.confedit, "offload", str(inp.path), "-o", str(out), "--diff", str(work / "d")]
    if inp.allow_extended_protection:
        cli.append("--allow-extended-protection")
    result = [Proc(CLI, cli, output=out)]
    if tools.xmlstarlet:
        xml_out = work / "xmlstarlet.config"
        xml = [tools.xmlstarlet, "ed", "-u", generate.OAB_XPATH, "-v", "None", str(inp.path)]
        result.append(Proc(XMLSTARLET, xml, stdout=xml_out, output=xml_out))
    naive_out = work / "naive.config"
    naive = [tools.python, str(BENCH / "naive_lxml.py"), str(inp.path), str(naive_out)]
    result.append(Proc(NAIVE, naive, output=naive_out))
    result.append(Proc(FLOOR, [tools.python, str(BENCH / "floor.py"), str(inp.path)]))
    return result


def bench_input(inp: Input, args: argparse.Namespace, tools: Tools) -> InputResult:
    """Run every approach on one input; the in-process rows come from a worker child."""
    work = WORK / inp.label
    work.mkdir(parents=True, exist_ok=True)
    result = InputResult(inp)
    commands = procs(inp, work, tools)
    result.series = {p.name: Series() for p in commands}
    for round_ in range(args.runs + 1):  # round 0 warms the page cache and .pyc files
        for proc in commands:
            sample = run_once(proc.argv, proc.stdout)
            if round_:
                result.series[proc.name].add(sample)
    for proc in commands:
        if proc.output and result.series[proc.name].ok:
            result.diff_lines[proc.name] = changed_lines(inp.path, proc.output)
    if not tools.xmlstarlet:
        result.notes[XMLSTARLET] = "skipped: xmlstarlet is not installed"
    library_rows(result, work, args, tools)
    if inp.allow_extended_protection:
        result.notes[CLI] = "with --allow-extended-protection (refused otherwise)"
    return result


def library_rows(result: InputResult, work: Path, args: argparse.Namespace, tools: Tools) -> None:
    """The warm in-process rows, from lib_worker.py in a fresh child."""
    flags = ["--allow-extended-protection"] if result.input.allow_extended_protection else []
    data = lib_worker(result.input.path, flags, work, args, tools)
    library, parse = worker_series(data)
    if not isinstance(data, str):
        result.diff_lines[LIBRARY] = data["diff_lines"]
        result.notes[LIBRARY] = "RSS: the worker's peak after a first call"
        result.notes[PARSE] = "etree.fromstring(raw)"
        for name, key in ((LIBRARY, "library_after_switch"), (PARSE, "parse_after_switch")):
            if data[key]:
                result.after_switch[name] = statistics.median(data[key])
    result.series[LIBRARY], result.series[PARSE] = library, parse


def lib_worker(
    path: Path, flags: Sequence[str], work: Path, args: argparse.Namespace, tools: Tools
) -> dict[str, Any] | str:
    """What lib_worker.py measured on `path`, or why it failed."""
    argv = [
        tools.python,
        str(BENCH / "lib_worker.py"),
        str(path),
        f"--min-runs={args.runs}",
        f"--budget={args.lib_budget}",
        *flags,
    ]
    report = work / "lib.json"
    process = run_once(argv, stdout=report)
    if process.exit_code != 0:
        return f"worker exit code {process.exit_code}"
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def worker_series(data: dict[str, Any] | str) -> tuple[Series, Series]:
    """The library's and the parse's series from what lib_worker() returned."""
    library, parse = Series(), Series()
    if isinstance(data, str):
        library.failure = parse.failure = data
    else:
        library.samples = [Sample(s, data["peak_rss_kib"], 0) for s in data["library"]]
        parse.samples = [Sample(s, 0, 0) for s in data["parse"]]
    return library, parse


# --- many paths below a target ----------------------------------------------------------------


@dataclass
class ScalingRow:
    """The library with --include-descendants on a file with `count` paths below owa."""

    count: int
    size: int
    library: Series
    parse: Series


def bench_scaling(args: argparse.Namespace, tools: Tools) -> list[ScalingRow]:
    """Cost per path below a target: each is checked, and with --include-descendants offloaded
    and verified, so the time should grow with the count and no faster."""
    rows = []
    work = WORK / "scaling"
    work.mkdir(parents=True, exist_ok=True)
    for count in (int(text) for text in args.paths_below.split(",") if text.strip()):
        log(f"{count} paths below a target ...")
        path = generate.paths_below(count)
        data = lib_worker(path, ["--include-descendants"], work, args, tools)
        rows.append(ScalingRow(count, path.stat().st_size, *worker_series(data)))
    return rows


def scaling_table(rows: Sequence[ScalingRow]) -> str:
    header = [
        "paths below owa",
        "size",
        "library, --include-descendants (median)",
        "per path",
        "lxml parse (median)",
        "library / lxml parse",
    ]
    cells = []
    for row in rows:
        if not row.library.ok:
            cells.append(
                [f"{row.count:,}", megabytes(row.size), row.library.failure or "—", "", "", ""]
            )
            continue
        per_path = row.library.seconds / row.count
        cells.append(
            [
                f"{row.count:,}",
                megabytes(row.size),
                seconds(row.library.seconds),
                f"{per_path * 1e6:.0f} µs",
                seconds(row.parse.seconds),
                f"{row.library.seconds / row.parse.seconds:.1f}x",
            ]
        )
    return table(header, cells)


# --- batch and start-up -----------------------------------------------------------------------


@dataclass
class BatchResult:
    """The batch commands' runs; `notes` holds the commands that could not run, and why."""

    jobs: int = 0
    files: dict[str, int] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    diff_lines: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def throughput(self, name: str) -> float | None:
        """Files per second (median run), or None if the command did not run or failed."""
        runs = self.series.get(name)
        return self.files[name] / runs.seconds if runs is not None and runs.ok else None


def bench_batch(args: argparse.Namespace, tools: Tools, sources: Sequence[Path]) -> BatchResult:
    """The fleet through one confedit process, xargs+xmlstarlet and xargs+confedit."""
    log(f"batch: preparing {args.batch} files ...")
    folder = batch.fleet(args.batch, sources, generate.OUT)
    relative = batch.files(folder)
    for path in relative:
        (folder / path).read_bytes()  # into the page cache for every command alike
    output = WORK / "batch"
    result = BatchResult(args.jobs)
    whole = batch.Work(tuple(relative), output, args.jobs)
    # A process per file costs the same per file at any count: a part of the fleet tells its
    # throughput in a fraction of the time.
    part = batch.Work(whole.files[: args.loop_files], output, args.jobs)
    commands: list[batch.Command] = []
    if tools.has_output_dir:
        commands.append(batch.confedit_batch(tools.confedit, whole))
    else:
        result.notes[batch.ONE_PROCESS] = "skipped: confedit has no --output-dir"
    if tools.xmlstarlet:
        commands.append(batch.xargs_xmlstarlet(tools.xmlstarlet, whole, WORK / "xml.list"))
    commands.append(batch.xargs_confedit(tools.confedit, part, WORK / "confedit.list"))
    commands.append(batch.floor_batch(tools.python, BENCH / "floor.py", whole))
    result.files = {c.name: len(c.work.files) for c in commands}
    result.series = {c.name: Series() for c in commands}
    runs = {c.name: args.batch_runs for c in commands} | {batch.XARGS_CONFEDIT: args.loop_runs}
    for run in range(max(runs.values())):
        for command in (c for c in commands if run < runs[c.name]):
            log(f"batch run {run + 1}/{runs[command.name]}: {command.name}")
            batch.prepare_output(output, command)
            result.series[command.name].add(run_once(command.argv, cwd=folder))
            if run == runs[command.name] - 1:
                check_batch_outputs(result, command, folder, output)
    return result


def check_batch_outputs(
    result: BatchResult, command: batch.Command, folder: Path, output: Path
) -> None:
    """Changed lines per file (mean over the files); a missing output fails the command."""
    files = command.work.files
    missing = [path for path in files if not (output / path).exists()]
    if missing:
        result.series[command.name].failure = f"{len(missing)} of {len(files)} outputs missing"
        return
    total = sum(changed_lines(folder / path, output / path) for path in files)
    result.diff_lines[command.name] = round(total / len(files))


def bench_startup(args: argparse.Namespace, tools: Tools) -> dict[str, Series]:
    """`confedit --version` and `--help`, next to a bare interpreter start for scale."""
    commands = {
        "confedit --version": [tools.confedit, "--version"],
        "confedit --help": [tools.confedit, "--help"],
        "confedit offload --help": [tools.confedit, "offload", "--help"],
        "python -c pass (interpreter alone)": [tools.python, "-c", "pass"],
    }
    series = {name: Series() for name in commands}
    for round_ in range(args.startup_runs + 1):
        for name, argv in commands.items():
            sample = run_once(argv)
            if round_:
                series[name].add(sample)
    return series


# --- rendering --------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """A duration, in the unit that reads best."""
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.01:
        return f"{value * 1000:.0f} ms"
    return f"{value * 1000:.2f} ms"


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def mib(value: float) -> str:
    return f"{value:.0f} MiB" if value >= 10 else f"{value:.1f} MiB"


def ratio(a: Series | None, b: Series | None, rss: bool = False) -> str:
    """a / b of the medians, or a dash when either is missing or failed."""
    if a is None or b is None or not a.ok or not b.ok:
        return "—"
    if rss:
        return f"{a.peak_rss_mib / b.peak_rss_mib:.2f}x"
    return f"{a.seconds / b.seconds:.2f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def series_cells(series: Series, rss: bool = True) -> list[str]:
    """Median and fastest wall, median peak RSS and the run count, or why there are none."""
    if not series.ok:
        return [f"failed: {series.failure}", "", "", str(len(series.samples))]
    memory = mib(series.peak_rss_mib) if rss and series.samples[0].peak_rss_kib else "—"
    return [seconds(series.seconds), seconds(series.fastest), memory, str(len(series.samples))]


def input_table(results: Sequence[InputResult]) -> str:
    rows = []
    for result in results:
        size = megabytes(result.input.path.stat().st_size)
        names = [*result.series, *(n for n in result.notes if n not in result.series)]
        for name in names:
            runs = result.series.get(name)
            cells = series_cells(runs) if runs is not None else ["—", "—", "—", "0"]
            lines = result.diff_lines.get(name)
            rows.append(
                [
                    result.input.label,
                    size,
                    name,
                    *cells,
                    f"{lines:,}" if lines is not None else "—",
                    result.notes.get(name, ""),
                ]
            )
    header = [
        "input",
        "size",
        "approach",
        "wall (median)",
        "wall (min)",
        "peak RSS",
        "runs",
        "diff lines",
        "",
    ]
    return table(header, rows)


def ratio_table(results: Sequence[InputResult]) -> str:
    rows = []
    for result in results:
        s = result.series
        rows.append(
            [
                result.input.label,
                ratio(s.get(CLI), s.get(XMLSTARLET)),
                ratio(s.get(CLI), s.get(XMLSTARLET), rss=True),
                ratio(s.get(CLI), s.get(FLOOR)),
                ratio(s.get(LIBRARY), s.get(PARSE)),
            ]
        )
    header = [
        "input",
        "CLI / xmlstarlet (wall)",
        "CLI / xmlstarlet (RSS)",
        "CLI / floor (wall)",
        "library / lxml parse",
    ]
    return table(header, rows)


def batch_table(result: BatchResult) -> str:
    rows = [[name, "", note, "", "", "", "", ""] for name, note in result.notes.items()]
    for name, runs in result.series.items():
        throughput = result.throughput(name)
        lines = result.diff_lines.get(name)
        rows.append(
            [
                name,
                str(result.files[name]),
                *series_cells(runs),
                f"{throughput:,.1f} files/s" if throughput else "—",
                f"{lines:,}" if lines is not None else "—",
            ]
        )
    header = [
        "batch",
        "files",
        "wall (median)",
        "wall (min)",
        "peak RSS",
        "runs",
        "throughput (median)",
        "diff lines/file",
    ]
    return table(header, rows)


def startup_table(series: dict[str, Series]) -> str:
    return table(
        ["command", "wall (median)", "wall (min)", "peak RSS", "runs"],
        [[name, *series_cells(runs)] for name, runs in series.items()],
    )


# --- targets ----------------------------------------------------------------------------------


def targets(
    results: Sequence[InputResult],
    batch_result: BatchResult,
    scaling: Sequence[ScalingRow],
    startup: dict[str, Series],
) -> str:
    """The issue's targets against this run's numbers."""
    rows = [
        library_target(results),
        *cli_targets(results),
        batch_target(batch_result),
        scaling_target(scaling),
        *startup_targets(startup),
    ]
    return table(["target", "measured", "met"], rows)


def _by_label(results: Sequence[InputResult], label: str) -> InputResult | None:
    return next((r for r in results if r.input.label == label), None)


def library_target(results: Sequence[InputResult]) -> list[str]:
    name = "library on e2019 (175 KB) ≤ 3x one lxml parse"
    found = _by_label(results, TARGET_CONFIG.removesuffix(".applicationHost.config"))
    if found is None or not found.series[LIBRARY].ok:
        return [name, "not measured", "—"]
    lib, parse = found.series[LIBRARY], found.series[PARSE]
    value = lib.seconds / parse.seconds
    measured = f"{seconds(lib.seconds)} vs {seconds(parse.seconds)}: {value:.2f}x"
    switched = found.after_switch
    if LIBRARY in switched and PARSE in switched:
        ratio = switched[LIBRARY] / switched[PARSE]
        measured += f" (each call's first after a switch from the other: {ratio:.2f}x)"
    return [name, measured, yes_no(value <= 3)]


def cli_targets(results: Sequence[InputResult]) -> list[list[str]]:
    wall = "CLI on 100 MB ≤ xmlstarlet's wall time"
    rss = "CLI on 100 MB ≤ 1.5x xmlstarlet's peak RSS"
    found = _by_label(results, "synthetic-100mb")
    if found is None or XMLSTARLET not in found.series:
        return [[wall, "not measured", "—"], [rss, "not measured", "—"]]
    cli, xml = found.series[CLI], found.series[XMLSTARLET]
    if not cli.ok or not xml.ok:
        return [[wall, "a command failed", "—"], [rss, "a command failed", "—"]]
    time_ratio = cli.seconds / xml.seconds
    rss_ratio = cli.peak_rss_mib / xml.peak_rss_mib
    return [
        [
            wall,
            f"{seconds(cli.seconds)} vs {seconds(xml.seconds)}: {time_ratio:.2f}x",
            yes_no(time_ratio <= 1),
        ],
        [
            rss,
            f"{mib(cli.peak_rss_mib)} vs {mib(xml.peak_rss_mib)}: {rss_ratio:.2f}x",
            yes_no(rss_ratio <= 1.5),
        ],
    ]


def batch_target(result: BatchResult) -> list[str]:
    name = "batch of 1,000 ≥ 2x the throughput of xargs -P xmlstarlet"
    files = result.files.get(batch.XARGS_XMLSTARLET, 0)
    if files and files != 1000:
        name += f" (run here on {files:,} files)"
    xml = result.throughput(batch.XARGS_XMLSTARLET)
    one = result.throughput(batch.ONE_PROCESS)
    loop = result.throughput(batch.XARGS_CONFEDIT)
    if xml is None:
        return [name, "not measured", "—"]
    fallback = f"; the per-file confedit loop: {loop / xml:.2f}x" if loop else ""
    if floor := result.throughput(batch.FLOOR):
        fallback += f"; the floor (Python and lxml, no work): {floor / xml:.2f}x"
    if one is None:
        reason = result.notes.get(batch.ONE_PROCESS, "the one-process run failed")
        return [name, f"{reason.removeprefix('skipped: ')}{fallback}", "—"]
    return [name, f"{one / xml:.2f}x xmlstarlet's throughput{fallback}", yes_no(one / xml >= 2)]


def scaling_target(rows: Sequence[ScalingRow]) -> list[str]:
    """Cost proportional to the work: from the fewest paths below a target to the most, the
    library's time grows as one lxml parse of the same file does. Measured against the parse,
    not per path alone: a larger file misses the caches more, and the parse itself takes about
    1.7x as long per byte at 10 MB as at 0.65 MB here, which no change to confedit moves."""
    name = "paths below a target: library / lxml parse at the most ≤ 1.25x that at the fewest"
    measured = [row for row in rows if row.library.ok and row.parse.ok]
    if len(measured) < 2:
        return [name, "not measured", "—"]
    fewest, most = min(measured, key=lambda r: r.count), max(measured, key=lambda r: r.count)
    parses = [row.library.seconds / row.parse.seconds for row in (fewest, most)]
    per_path = [row.library.seconds / row.count * 1e6 for row in (fewest, most)]
    ratio = parses[1] / parses[0]
    text = (
        f"{parses[1]:.1f}x one parse at {most.count:,} paths vs {parses[0]:.1f}x at "
        f"{fewest.count:,}: {ratio:.2f}x (per path {per_path[1]:.0f} µs vs {per_path[0]:.0f} µs)"
    )
    return [name, text, yes_no(ratio <= 1.25)]


def startup_targets(series: dict[str, Series]) -> list[list[str]]:
    rows = []
    for name in ("confedit --version", "confedit --help"):
        runs = series.get(name)
        if runs is None or not runs.ok:
            rows.append([f"`{name}` < 150 ms", "not measured", "—"])
        else:
            rows.append([f"`{name}` < 150 ms", seconds(runs.seconds), yes_no(runs.seconds < 0.150)])
    return rows


def yes_no(met: bool) -> str:
    return "yes" if met else "**no**"


# --- main -------------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything one run measured."""

    command: str
    environment: dict[str, str]
    load_before: tuple[float, float, float]  # other work on the machine when the run began
    cpus_free: float  # CPUs that busy loops got when the run began
    skipped: list[str]
    inputs: list[InputResult]
    batch: BatchResult
    startup: dict[str, Series]
    scaling: list[ScalingRow]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    args = options(argv)
    tools = find_tools(args.confedit)
    env = environment(tools)
    load_before = os.getloadavg()  # before the run: what other work was doing
    free = cpus_free(tools.python, os.cpu_count() or 1)
    inputs: list[Input] = []
    skipped: list[str] = []
    if not args.no_corpus:
        if (args.corpus / "exchange").is_dir():
            inputs, skipped = corpus_inputs(args.corpus)
        else:
            skipped.append(f"no corpus at {args.corpus} (set CONFEDIT_CORPUS)")
    inputs += synthetic_inputs(args.sizes)
    results = []
    for inp in inputs:
        log(f"{inp.label}: {args.runs} runs of each approach ...")
        results.append(bench_input(inp, args, tools))
    sources = [  # the fleet: real files that offload with the default options
        r.input.path for r in results if r.input.real and not r.input.allow_extended_protection
    ]
    batch_result = BatchResult(args.jobs)
    if args.batch and sources:
        batch_result = bench_batch(args, tools, sources)
    elif args.batch:
        batch_result.notes["batch"] = "skipped: the batch is made of corpus files, none found"
    scaling = bench_scaling(args, tools)
    log("start-up ...")
    startup = bench_startup(args, tools)
    report = Report(
        "python bench/run.py" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv)),
        env,
        load_before,
        free,
        skipped,
        results,
        batch_result,
        startup,
        scaling,
    )
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report_json(report), indent=2) + "\n")
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


def print_report(report: Report) -> None:
    """All tables, as Markdown."""
    print(f"`{report.command}`\n")
    print("\n".join(f"- {key}: {value}" for key, value in report.environment.items()))
    cpus = os.cpu_count() or 1
    print(
        "- load average before the run (1, 5, 15 min): "
        + ", ".join(f"{load:.2f}" for load in report.load_before)
    )
    print(f"- CPUs free before the run (busy loops): {report.cpus_free:.1f} of {cpus}")
    if report.load_before[0] > cpus / 2 or report.cpus_free < cpus * 0.75:
        print("- note: other work was running when the benchmark started; expect inflated times")
    print("".join(f"- skipped {reason}\n" for reason in report.skipped))
    print("### Per file\n")
    print(input_table(report.inputs))
    print("\n### Ratios (medians)\n")
    print(ratio_table(report.inputs))
    if report.batch.series or report.batch.notes:
        print(f"\n### Batch (N = {report.batch.jobs} jobs)\n")
        print(batch_table(report.batch))
    if report.scaling:
        print("\n### Many paths below a target\n")
        print(scaling_table(report.scaling))
    print("\n### Start-up\n")
    print(startup_table(report.startup))
    print("\n### Targets\n")
    print(targets(report.inputs, report.batch, report.scaling, report.startup))


def report_json(report: Report) -> dict[str, object]:
    """Every sample, for anyone who wants more than medians."""
    return {
        "command": report.command,
        "environment": report.environment,
        "load_before": report.load_before,
        "cpus_free": report.cpus_free,
        "inputs": [
            {
                "label": r.input.label,
                "bytes": r.input.path.stat().st_size,
                "series": series_json(r.series),
                "diff_lines": r.diff_lines,
            }
            for r in report.inputs
        ],
        "batch": {
            "files": report.batch.files,
            "jobs": report.batch.jobs,
            "series": series_json(report.batch.series),
            "diff_lines": report.batch.diff_lines,
            "notes": report.batch.notes,
        },
        "startup": series_json(report.startup),
        "paths_below": [
            {
                "count": row.count,
                "bytes": row.size,
                "series": series_json({LIBRARY: row.library, PARSE: row.parse}),
            }
            for row in report.scaling
        ],
    }


def series_json(series: dict[str, Series]) -> dict[str, object]:
    return {
        name: {
            "failure": runs.failure,
            "seconds": [sample.seconds for sample in runs.samples],
            "peak_rss_kib": [sample.peak_rss_kib for sample in runs.samples],
        }
        for name, runs in series.items()
    }


if __name__ == "__main__":
    sys.exit(main())
