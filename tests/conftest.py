"""Shared fixtures: the real corpus (and its Windows-style variants), Hypothesis profiles, and what
the command tests share (the sample, a fleet of servers, running the installed command)."""

from __future__ import annotations

import codecs
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.helpers import make_fleet

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CONFEDIT_CORPUS", REPO.parent / "shared" / "corpus"))
EXCHANGE = CORPUS / "exchange"
SAMPLES = REPO / "samples"
SAMPLE = SAMPLES / "exchange2013-cas.applicationHost.config"
PATCHED = SAMPLES / "exchange2013-cas.applicationHost.patched.config"

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


def run(exe: str, *args: str, cwd: Path = REPO, **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, check=False, **kwargs)


def copy_sample(tmp_path: Path) -> Path:
    target = tmp_path / "applicationHost.config"
    shutil.copyfile(SAMPLE, target)
    return target


def close_stdout() -> None:
    os.close(1)


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Path]:
    """server -> its file, relative to tmp_path (the folder the commands run in)."""
    paths = make_fleet(tmp_path, CORPUS, SAMPLES)
    return {server: path.relative_to(tmp_path) for server, path in paths.items()}


def two_servers(root: Path, *names: str) -> None:
    for name in names or ("cas01", "cas02"):
        folder = Path(os.fsdecode(bytes(root) + b"/" + os.fsencode(name)))
        folder.mkdir(parents=True)
        shutil.copyfile(SAMPLE, folder / "applicationHost.config")


# Where a worker kills itself: as it reads the file, or once the file is renamed into place.
DEATHS = {
    "reading": (
        "_read_input = files.read_input\n"
        "def read_input(path, *args):\n"
        "    if path.parent.name == 'die':\n"
        "        die()\n"
        "    return _read_input(path, *args)\n"
        "files.read_input = read_input\n"
    ),
    "written": (
        "_commit = files._Staged.commit\n"
        "def commit(self):\n"
        "    _commit(self)\n"
        "    if self.target.parent.name == 'die' and self.target.suffix == '.config':\n"
        "        die()\n"
        "files._Staged.commit = commit\n"
    ),
}


def dying_worker_env(tmp_path: Path, when: str = "reading") -> dict[str, str]:
    """The installed command, whose worker processes kill themselves (SIGKILL, as the kernel
    does for memory) on a file in a folder named `die` (see DEATHS). Injected through
    sitecustomize, which every process imports; the parent itself never dies."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import multiprocessing, os, signal\n"
        "from confedit import files\n"
        "def die():\n"
        "    if multiprocessing.parent_process():\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n" + DEATHS[when]
    )
    return {**os.environ, "PYTHONPATH": str(hooks)}


def default_start_method_env(tmp_path: Path, method: str, hook: str = "") -> dict[str, str]:
    """The environment of a command whose Python starts processes by `method` by default (as
    Python 3.14 does by "forkserver" on Linux). Injected through sitecustomize, which every
    Python process imports: each appends `started PID` to tmp_path/python.log, then runs `hook`
    (code that may call log(line) too)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import multiprocessing, os\n"
        f"multiprocessing.set_start_method({method!r})\n"
        "def log(line):\n"
        f"    with open({str(tmp_path / 'python.log')!r}, 'a') as handle:\n"
        "        handle.write(line + '\\n')\n"
        "log(f'started {os.getpid()}')\n" + hook
    )
    return {**os.environ, "PYTHONPATH": str(hooks)}


def pythons_started(tmp_path: Path) -> list[int]:
    """The Python processes that default_start_method_env's hook saw start, by pid."""
    lines = (tmp_path / "python.log").read_text().splitlines()
    return [int(line.removeprefix("started ")) for line in lines if line.startswith("started ")]


DIED = "the worker process working on this file died (killed by signal 9, e.g. for lack of memory)"


@pytest.fixture
def servers_and_die(tmp_path: Path) -> list[str]:
    """20 copies of the sample; `die` first, so that its chunk holds another file (s01)."""
    names = ["die", *(f"s{number:02d}" for number in range(1, 20))]
    for name in names:
        (tmp_path / "ex" / name).mkdir(parents=True)
        shutil.copyfile(SAMPLE, tmp_path / "ex" / name / "applicationHost.config")
    return [f"ex/{name}/applicationHost.config" for name in names]
