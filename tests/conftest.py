"""Shared fixtures: the real corpus (and its Windows-style variants) and Hypothesis profiles."""

from __future__ import annotations

import codecs
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CONFEDIT_CORPUS", REPO.parent / "shared" / "corpus"))
EXCHANGE = CORPUS / "exchange"
SAMPLES = REPO / "samples"

# HYPOTHESIS_PROFILE picks one. "ci" (the default) is derandomised: the same examples on every
# run, sized so that the whole suite stays well under 3 minutes on 2 cores. "thorough" draws
# thousands of new examples per property (see the README); "dev" is quick and random;
# "mutation" serves tests/mutation_check.py.
# Tests that run a subprocess per example or a sequence of steps scale their own count from
# settings.default.max_examples.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
# tests/mutation_check.py: the ci examples, without shrinking what fails
settings.register_profile(
    "mutation",
    parent=settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.generate],
    print_blob=False,
)
settings.register_profile(
    "thorough",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def corpus_files(pattern: str = "*.config") -> list[Path]:
    files = sorted(EXCHANGE.glob(pattern)) + sorted((CORPUS / "iis").glob(pattern))
    if not files:
        raise RuntimeError(
            f"the real corpus is missing at {CORPUS}; set CONFEDIT_CORPUS to its folder"
        )
    return files


def well_formed_exchange() -> list[Path]:
    return [p for p in corpus_files() if "exchange" in p.parts and "malformed" not in p.name]


def variant(raw: bytes, kind: str) -> bytes:
    """The file as stored (LF, no BOM), or as a Windows export would have it."""
    if kind == "stored":
        return raw
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if kind == "crlf":
        return crlf
    if kind == "bom-crlf":
        return codecs.BOM_UTF8 + crlf.removeprefix(codecs.BOM_UTF8)
    raise ValueError(kind)


VARIANTS = ("stored", "crlf", "bom-crlf")


@pytest.fixture(scope="session")
def confedit_exe() -> str:
    """The installed console script, run as a user would."""
    exe = shutil.which("confedit")
    if exe is None:
        raise RuntimeError("confedit is not installed: python -m pip install -e '.[test]'")
    return exe
