"""The engine's stages, timed as the engine itself calls them.

confedit.engine calls load, Config, plan, splice, verify and unified_diff by those names. While
recording, each name in the engine module is wrapped so that its arguments, result and time are
kept. Stage timings and micro-benchmarks then follow the engine's real data path (whatever
arguments it passes, such as the sites a load keeps), not a copy of it that could drift.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confedit import engine, verify
from confedit.plan import Request

STAGES = ("load", "Config", "plan", "splice", "verify", "unified_diff")


@dataclass(frozen=True)
class Call:
    """One stage as the engine called it."""

    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    seconds: float
    rss_mib: tuple[float, float] | None  # (current, high-water) right after the call

    def again(self) -> Any:
        """Call the stage again with the same arguments."""
        return self.function(*self.args, **self.kwargs)


def rss_mib() -> tuple[float, float]:
    """(current RSS, high-water RSS) of this process in MiB, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


@contextlib.contextmanager
def recording(memory: bool = False) -> Iterator[list[Call]]:
    """While inside, every stage the engine calls is appended to the yielded list, with the RSS
    after it when `memory` is asked for (reading it takes about 30 µs a stage, which would
    count as the engine's time in a timed run)."""
    calls: list[Call] = []
    originals = {name: getattr(engine, name) for name in STAGES}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            elapsed = time.perf_counter() - started
            rss = rss_mib() if memory else None
            calls.append(Call(name, function, args, kwargs, elapsed, rss))
            return result

        return call

    for name, function in originals.items():
        setattr(engine, name, timed(name, function))
    try:
        yield calls
    finally:
        for name, function in originals.items():
            setattr(engine, name, function)


def record(raw: bytes, request: Request, *, memory: bool = False) -> dict[str, Call]:
    """The stages of one offload of `raw`, including its diff, by stage name."""
    verify.forget()  # one file's whole cost, as in bench/lib_worker.py
    with recording(memory) as calls:
        engine.offload(raw, request, name="input").diff("input")
    return {call.name: call for call in calls}
