"""The measuring scripts in bench/ answer a file confedit refuses as confedit does: by naming
it, not with a traceback; and they measure the confedit of the environment they run in. (The
benchmark itself, bench/run.py, is run by hand.)"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import confedit
from tests.conftest import EXCHANGE, REPO, SAMPLES, default_start_method_env, pythons_started

HOTSPOTS = REPO / "bench" / "hotspots.py"
INSTRUCTIONS = REPO / "bench" / "instructions.py"
FLOOR = REPO / "bench" / "floor.py"


def batch_steps(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOTSPOTS), "batch", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_hotspots_batch_leaves_out_a_refused_file_and_measures_the_others(tmp_path):
    for server, source in (
        ("cas1", SAMPLES / "exchange2013-cas.applicationHost.config"),
        ("cas2", EXCHANGE / "e2013-cas-extended-protection.applicationHost.config"),
    ):
        (tmp_path / server).mkdir()
        shutil.copyfile(source, tmp_path / server / "applicationHost.config")
    proc = batch_steps(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        f"left out: {tmp_path / 'cas2' / 'applicationHost.config'}: refused: Extended Protection"
    )
    assert proc.stdout.startswith("1 file (1 left out); per file:\n")
    (tmp_path / "cas1" / "applicationHost.config").unlink()
    nothing = batch_steps(tmp_path)
    assert nothing.returncode == 1
    assert nothing.stderr.splitlines()[-1] == (
        f"no file below {tmp_path} could be offloaded: nothing to measure"
    )


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_instruction_counts_show_a_call_costs_more_than_its_parse():
    sample = SAMPLES / "exchange2013-cas.applicationHost.config"
    proc = subprocess.run(
        [sys.executable, str(INSTRUCTIONS), str(sample), "--calls", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    name, library, _, parse, _, ratio = proc.stdout.splitlines()[1].split()
    assert name == sample.name
    # A call parses the file and then does its own work: more than one parse.
    assert float(library) > float(parse) > 0
    # the ratio of the counts, which the table rounds to hundredths of a million
    assert abs(float(ratio.removesuffix("x")) - float(library) / float(parse)) < 0.1


def test_instruction_counts_are_of_this_environment_s_confedit(monkeypatch, tmp_path):
    """The counted process runs the interpreter of this environment: in a virtual environment
    (whose python is a link to the base interpreter), the base interpreter by its own path
    would count another installation's confedit, or fail without lxml."""
    spec = importlib.util.spec_from_file_location("instructions", INSTRUCTIONS)
    assert spec is not None and spec.loader is not None
    instructions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(instructions)
    started: list[list[str]] = []

    def callgrind(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        started.append(argv)
        return subprocess.CompletedProcess(argv, 0, b"", b"Collected : 5")

    monkeypatch.setattr(instructions.subprocess, "run", callgrind)
    assert instructions.count("valgrind", SAMPLES / "any.config", "parse", 1) == 5
    monkeypatch.undo()
    (argv,) = started
    python = argv[argv.index("-c") - 1]
    where = subprocess.run(
        [python, "-c", "import lxml, confedit; print(confedit.__file__)"],
        cwd=tmp_path,  # not the clone's folder, which `python -c` would import confedit from
        capture_output=True,
        text=True,
        check=False,
    )
    assert where.stdout.strip() == confedit.__file__, where.stderr


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_the_batch_floor_forks_its_workers_as_confedit_does(tmp_path, method):
    """Whatever the interpreter's default (a fork server from Python 3.14 on Linux): workers
    that each load Python and lxml again would make the floor a slower one than confedit's."""
    sample = SAMPLES / "exchange2013-cas.applicationHost.config"
    names = [f"s{index}.config" for index in range(4)]
    for name in names:
        shutil.copyfile(sample, tmp_path / name)
    (tmp_path / "out").mkdir()
    proc = subprocess.run(
        [sys.executable, str(FLOOR), "--output-dir", "out", "--jobs", "2", *names],
        cwd=tmp_path,
        env=default_start_method_env(tmp_path, method),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [(tmp_path / "out" / name).read_bytes() for name in names] == [sample.read_bytes()] * 4
    assert len(pythons_started(tmp_path)) == 1
