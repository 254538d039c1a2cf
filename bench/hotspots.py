"""Where confedit spends its time and memory: stages, cProfile and the RSS high-water mark.

    python bench/hotspots.py stages FILE [--runs 20]     # median per stage, RSS after each
    python bench/hotspots.py profile FILE [--runs 20]    # cProfile of warm library calls
    python bench/hotspots.py cli FILE [--top 25]         # cProfile of the CLI, in-process

The stages are the engine's own: load, plan (Config + plan), splice, verify, diff, and for the
CLI the reading and writing around them. Run it on a quiet machine; the numbers are medians.
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
from typing import Any

from lxml import etree

from confedit.diffing import unified_diff
from confedit.document import load
from confedit.edits import splice
from confedit.iis import Config
from confedit.plan import Request, plan
from confedit.verify import verify


def rss_mib() -> tuple[float, float]:
    """(current RSS, high-water RSS) of this process in MiB, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def stages(raw: bytes, request: Request) -> dict[str, Callable[[], Any]]:
    """The engine's stages as calls, each fed by the one before (run in order)."""
    state: dict[str, Any] = {}

    def do_load() -> None:
        state["document"] = load(raw, "input")

    def do_plan() -> None:
        state["plan"] = plan(Config(state["document"]), request)

    def do_splice() -> None:
        state["output"] = splice(state["document"].data, state["plan"].edits)

    def do_verify() -> None:
        verify(state["document"], state["plan"].edits, state["output"])

    def do_diff() -> None:
        unified_diff(state["document"].data, state["output"], state["plan"].edits, "input")

    def do_parse() -> None:  # for scale: what one bare lxml parse of the same bytes costs
        etree.fromstring(raw)

    return {
        "lxml parse alone (scale)": do_parse,
        "load": do_load,
        "plan": do_plan,
        "splice": do_splice,
        "verify": do_verify,
        "diff": do_diff,
    }


def show_stages(raw: bytes, request: Request, runs: int) -> None:
    """Median time per stage over `runs` warm rounds, and the RSS after the first round."""
    timings: dict[str, list[float]] = {}
    memory: dict[str, tuple[float, float]] = {}
    for round_ in range(runs + 1):
        for name, call in stages(raw, request).items():
            started = time.perf_counter()
            call()
            elapsed = time.perf_counter() - started
            if round_ == 0:
                memory[name] = rss_mib()  # the first round shows what each stage adds
            else:
                timings.setdefault(name, []).append(elapsed)
    total = sum(statistics.median(t) for n, t in timings.items() if "scale" not in n)
    print(f"{'stage':<26}{'median':>12}{'share':>8}{'RSS after':>12}{'RSS peak':>12}")
    for name, values in timings.items():
        median = statistics.median(values)
        share = "" if "scale" in name else f"{median / total:.0%}"
        current, peak = memory[name]
        print(f"{name:<26}{median * 1000:>9.2f} ms{share:>8}{current:>8.0f} MiB{peak:>8.0f} MiB")
    print(f"{'load..diff':<26}{total * 1000:>9.2f} ms")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Print stages, a library profile or a CLI profile for one file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["stages", "profile", "cli"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--allow-extended-protection", action="store_true")
    args = parser.parse_args(argv)
    raw = args.file.read_bytes()
    request = Request(allow_extended_protection=args.allow_extended_protection)
    print(f"{args.file.name}: {len(raw):,} bytes")
    if args.what == "stages":
        show_stages(raw, request, args.runs)
    elif args.what == "profile":
        import confedit  # noqa: PLC0415

        show_profile(lambda: confedit.offload(raw, request).diff("input"), args.runs, args.top)
    else:
        extra = ["--allow-extended-protection"] if args.allow_extended_protection else []
        show_profile(lambda: run_cli(args.file, extra), args.runs, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
