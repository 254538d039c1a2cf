"""Micro-benchmarks of the engine's stages, run on demand to catch regressions:

    python -m pytest bench/test_micro.py --benchmark-only
    python -m pytest bench/test_micro.py --benchmark-only --benchmark-autosave   # keep a baseline
    python -m pytest bench/test_micro.py --benchmark-only --benchmark-compare    # against it

They are outside the default test run (testpaths is tests/, and addopts has --benchmark-skip).
Inputs: the real e2019 export as Windows stores it (BOM, CRLF), and the synthetic 1 MB file.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import generate
import pytest
from lxml import etree

from confedit.diffing import unified_diff
from confedit.document import Document, load
from confedit.edits import Edit, splice
from confedit.iis import Config
from confedit.plan import Request, plan
from confedit.verify import verify

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CONFEDIT_CORPUS", REPO.parent / "shared" / "corpus"))
E2019 = CORPUS / "exchange" / "e2019.applicationHost.config"

# pytest-benchmark's fixture: benchmark(function, *args), benchmark.pedantic(...)
Benchmark = Any


@dataclass(frozen=True)
class Staged:
    """One input carried through every stage, so that each benchmark times only its own."""

    raw: bytes
    document: Document
    edits: tuple[Edit, ...]
    output: bytes


def _windows_export(raw: bytes) -> bytes:
    return codecs.BOM_UTF8 + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _raw(name: str) -> bytes:
    if name == "e2019":
        if not E2019.exists():
            pytest.skip(f"the real corpus is missing at {CORPUS}; set CONFEDIT_CORPUS")
        return _windows_export(E2019.read_bytes())
    return generate.cached(name).read_bytes()


@pytest.fixture(scope="module", params=["e2019", "1mb"])
def staged(request: pytest.FixtureRequest) -> Staged:
    raw = _raw(request.param)
    document = load(raw, request.param)
    edits = plan(Config(document), Request()).edits
    return Staged(raw, document, edits, splice(document.data, edits))


def test_lxml_parse_for_scale(benchmark: Benchmark, staged: Staged) -> None:
    benchmark(etree.fromstring, staged.raw)


def test_load(benchmark: Benchmark, staged: Staged) -> None:
    benchmark(load, staged.raw, "input")


def test_plan(benchmark: Benchmark, staged: Staged) -> None:
    # Each round gets a fresh Document (not timed): spans are cached on a Document, and a
    # reused one would make plan() look faster than it is on a real run.
    def fresh_document() -> tuple[tuple[Document], dict[str, Any]]:
        return (load(staged.raw, "input"),), {}

    def config_and_plan(document: Document) -> tuple[Edit, ...]:
        return plan(Config(document), Request()).edits

    rounds = 50 if len(staged.raw) < 1_000_000 else 10
    edits = benchmark.pedantic(config_and_plan, setup=fresh_document, rounds=rounds)
    assert len(edits) == len(staged.edits)


def test_splice(benchmark: Benchmark, staged: Staged) -> None:
    output = benchmark(splice, staged.document.data, staged.edits)
    assert output == staged.output


def test_verify(benchmark: Benchmark, staged: Staged) -> None:
    benchmark(verify, staged.document, staged.edits, staged.output)


def test_diff(benchmark: Benchmark, staged: Staged) -> None:
    diff = benchmark(unified_diff, staged.document.data, staged.output, staged.edits, "input")
    assert diff.startswith(b"--- a/input")
