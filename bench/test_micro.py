"""Micro-benchmarks of the engine's stages, run on demand to catch regressions:

    python -m pytest bench/test_micro.py --benchmark-only
    python -m pytest bench/test_micro.py --benchmark-only --benchmark-autosave   # keep a baseline
    python -m pytest bench/test_micro.py --benchmark-only --benchmark-compare    # against it

They are outside the default test run (testpaths is tests/, and addopts has --benchmark-skip).
Each stage is called with the arguments the engine itself passed it in one offload (see
stages.py). Inputs: the real e2019 export as Windows stores it (BOM, CRLF), and the synthetic
1 MB file.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any

import generate
import pytest
from lxml import etree
from stages import Call, record

from confedit.plan import Request

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CONFEDIT_CORPUS", REPO.parent / "shared" / "corpus"))
E2019 = CORPUS / "exchange" / "e2019.applicationHost.config"

# pytest-benchmark's fixture: benchmark(function, *args), benchmark.pedantic(...)
Benchmark = Any


def _windows_export(raw: bytes) -> bytes:
    return codecs.BOM_UTF8 + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _raw(name: str) -> bytes:
    if name == "e2019":
        if not E2019.exists():
            pytest.skip(f"the real corpus is missing at {CORPUS}; set CONFEDIT_CORPUS")
        return _windows_export(E2019.read_bytes())
    return generate.cached(name).read_bytes()


@pytest.fixture(scope="module", params=["e2019", "1mb"])
def raw(request: pytest.FixtureRequest) -> bytes:
    return _raw(request.param)


@pytest.fixture(scope="module")
def calls(raw: bytes) -> dict[str, Call]:
    return record(raw, Request())


def test_lxml_parse_for_scale(benchmark: Benchmark, raw: bytes) -> None:
    benchmark(etree.fromstring, raw)


def test_load(benchmark: Benchmark, calls: dict[str, Call]) -> None:
    benchmark(calls["load"].again)


def test_config_and_plan(benchmark: Benchmark, calls: dict[str, Call]) -> None:
    # Each round gets a fresh Document (not timed): a Document caches what it has located,
    # and a reused one would make planning look faster than it is in a real run.
    load, config, plan = calls["load"], calls["Config"], calls["plan"]
    request = plan.args[1]

    def fresh_document() -> tuple[tuple[Any], dict[str, Any]]:
        return (load.again(),), {}

    def config_and_plan(document: Any) -> Any:
        return plan.function(config.function(document), request)

    result = benchmark.pedantic(config_and_plan, setup=fresh_document, rounds=30)
    assert result.edits


def test_splice(benchmark: Benchmark, calls: dict[str, Call]) -> None:
    benchmark(calls["splice"].again)


def test_verify(benchmark: Benchmark, calls: dict[str, Call]) -> None:
    benchmark(calls["verify"].again)


def test_diff(benchmark: Benchmark, calls: dict[str, Call]) -> None:
    diff = benchmark(calls["unified_diff"].again)
    assert diff.startswith(b"--- a/input")
