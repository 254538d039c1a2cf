"""Finding configs in folders, the parallel runner and the run's exit code."""

from __future__ import annotations

import errno
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confedit import batch
from confedit import workers as confedit_workers
from confedit.batch import Input, find_inputs, label_of, most_severe, run_all, show_progress
from confedit.diffing import logical_cwd
from confedit.errors import ExitCode
from tests.helpers import record_realpath

T = TypeVar("T")


def touch(path: Path, data: bytes = b"<configuration />") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folders_are_searched_recursively_in_sorted_order_any_case(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "exports" / "b" / "applicationHost.config")
    touch(tmp_path / "exports" / "a" / "deep" / "APPLICATIONHOST.CONFIG")
    touch(tmp_path / "exports" / "a" / "applicationhost.config")
    touch(tmp_path / "exports" / "a" / "applicationHost.config.bak")
    touch(tmp_path / "exports" / "a" / "web.config")
    touch(tmp_path / "exports" / "flat" / "cas01.applicationHost.config")
    touch(tmp_path / "exports" / "flat" / "cas02.applicationHost.patched.config")
    touch(tmp_path / "exports" / "flat" / "myapplicationHost.config")
    found = find_inputs([Path("exports")])
    assert [item.label for item in found] == [
        "exports/a/applicationhost.config",
        "exports/a/deep/APPLICATIONHOST.CONFIG",
        "exports/b/applicationHost.config",
        "exports/flat/cas01.applicationHost.config",
    ]
    assert all(item.problem is None for item in found)


def test_files_named_are_kept_whatever_their_name_in_argument_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    second = touch(tmp_path / "z.config")
    first = touch(tmp_path / "sub" / "exported.xml")
    found = find_inputs([second, Path("sub/exported.xml")])
    assert [item.path for item in found] == [second, Path("sub/exported.xml")]
    assert [item.label for item in found] == ["z.config", "sub/exported.xml"]
    assert first.exists()


def test_a_file_named_twice_or_also_found_in_a_folder_is_kept_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = touch(tmp_path / "srv" / "applicationHost.config")
    (tmp_path / "link.config").symlink_to(config)
    found = find_inputs([Path("srv/applicationHost.config"), Path("srv"), Path("link.config")])
    assert [item.label for item in found] == ["srv/applicationHost.config"]


def test_symlinked_folders_are_not_searched_but_listed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "real" / "applicationHost.config")
    touch(tmp_path / "exports" / "cas1" / "applicationHost.config")
    (tmp_path / "exports" / "cas2").symlink_to(tmp_path / "real")
    (tmp_path / "exports" / "cas1" / "up").symlink_to(tmp_path)  # a loop, were it followed
    unfollowed: list[Path] = []
    found = find_inputs([Path("exports")], unfollowed=unfollowed)
    assert [item.label for item in found] == ["exports/cas1/applicationHost.config"]
    assert unfollowed == [Path("exports/cas2"), Path("exports/cas1/up")]  # as the walk meets them


def test_the_output_folder_is_not_searched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "srv" / "applicationHost.config")
    touch(tmp_path / "srv" / "patched" / "srv" / "applicationHost.config")
    found = find_inputs([Path("srv")], skip=Path("srv/patched"))
    assert [item.label for item in found] == ["srv/applicationHost.config"]


def test_the_output_folder_is_not_searched_whichever_way_either_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "srv" / "applicationHost.config")
    touch(tmp_path / "srv" / "patched" / "srv" / "applicationHost.config")
    (tmp_path / "via").symlink_to(tmp_path / "srv")
    for searched, skip in [("via", "srv/patched"), ("srv", "via/patched"), ("via", "via/patched")]:
        found = find_inputs([Path(searched)], skip=Path(skip))
        assert [item.label for item in found] == [f"{searched}/applicationHost.config"]


def test_a_file_found_twice_through_symlinks_is_kept_once_by_its_own_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = touch(tmp_path / "srv" / "b" / "applicationHost.config")
    touch(tmp_path / "srv" / "c" / "applicationHost.config")
    (tmp_path / "srv" / "a").mkdir()
    (tmp_path / "srv" / "a" / "applicationHost.config").symlink_to(config)
    (tmp_path / "via").symlink_to(tmp_path / "srv")
    found = find_inputs([Path("srv"), Path("via/c/applicationHost.config")])
    assert [item.label for item in found] == [
        "srv/b/applicationHost.config",  # at the link's place, named by the file's own path
        "srv/c/applicationHost.config",
    ]


def test_finding_files_resolves_no_path_per_file(tmp_path, monkeypatch):
    """A fleet's search must not resolve each path found folder by folder (os.path.realpath: a
    system call per folder of the path): that was most of the time before the first worker
    started."""
    monkeypatch.chdir(tmp_path)
    for server in range(20):
        touch(tmp_path / "fleet" / f"srv{server:02d}" / "applicationHost.config")
    calls = record_realpath(monkeypatch)
    found = find_inputs([Path("fleet")], skip=Path("patched"))
    assert len(found) == 20
    assert len(calls) <= 3, calls


@pytest.mark.parametrize(
    "argument",
    [".", "exports", "./exports/", "exports/../exports", "ABSOLUTE", "..", "../elsewhere"],
)
def test_files_found_are_labelled_as_label_of_labels_each(tmp_path, monkeypatch, argument):
    """The search labels the files below a folder from the folder's own label; label_of is what
    a label is: the current directory below the folder named, above it, and outside it."""
    cwd = tmp_path / "work"
    touch(cwd / "exports" / "a" / "deep" / "applicationHost.config")
    touch(cwd / "exports" / "b" / "cas.applicationHost.config")
    (cwd / "exports" / "c").mkdir()
    (cwd / "exports" / "c" / "applicationHost.config").symlink_to(tmp_path / "outside.config")
    touch(tmp_path / "outside.config")
    touch(tmp_path / "elsewhere" / "srv" / "applicationHost.config")
    monkeypatch.chdir(cwd)
    folder = Path(str(cwd / "exports") if argument == "ABSOLUTE" else argument)
    found = find_inputs([folder])
    assert len(found) >= 1 and all(item.problem is None for item in found)
    assert [item.label for item in found] == [
        label_of(item.path, folder, logical_cwd()) for item in found
    ]


def test_finding_files_labels_no_file_with_pathlib(tmp_path, monkeypatch):
    """Making each label with pathlib (relative_label: normalizing and comparing Path objects)
    took more time than the rest of the search; a file's label is made from its folder's."""
    monkeypatch.chdir(tmp_path)
    for server in range(20):
        touch(tmp_path / "fleet" / f"srv{server:02d}" / "applicationHost.config")
    calls: list[Path] = []
    real_relative_label = batch.relative_label

    def relative_label(path, *args, **kwargs):
        calls.append(path)
        return real_relative_label(path, *args, **kwargs)

    monkeypatch.setattr(batch, "relative_label", relative_label)
    found = find_inputs([Path("fleet")])
    assert [item.label for item in found][:2] == [
        "fleet/srv00/applicationHost.config",
        "fleet/srv01/applicationHost.config",
    ]
    assert calls == [], calls


def test_a_folder_without_configs_is_one_input_with_a_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "empty" / "notes.txt")
    (found,) = find_inputs([Path("empty")])
    assert found.path == Path("empty")
    assert found.problem is not None and "is a directory with no applicationHost.config" in (
        found.problem
    )


def test_a_file_named_as_a_folder_is_an_input_of_its_own_with_a_problem(tmp_path, monkeypatch):
    """`a.config/` is not `a.config`: a Path drops the slash, and the file was read through it.
    It keeps its name as typed and a label of its own, and is not taken for the file named
    without the slash (nor that file for it)."""
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "a.config")
    slashed, plain = find_inputs(["a.config/", "./a.config//", Path("a.config")])
    assert (slashed.name, slashed.label) == ("a.config/", "a.config/")
    assert slashed.problem == "cannot read: Not a directory"
    assert (plain.name, plain.label, plain.problem) == ("a.config", "a.config", None)
    (dotted,) = find_inputs(["a.config/."])  # a Path drops the dot too
    assert (dotted.name, dotted.problem) == ("a.config/.", "cannot read: Not a directory")
    (missing,) = find_inputs(["missing.config/"])  # a missing file, as without the slash
    assert (missing.name, missing.problem) == ("missing.config", None)


def test_an_unreadable_folder_is_reported_not_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "srv" / "a" / "applicationHost.config")
    touch(tmp_path / "srv" / "b" / "applicationHost.config")
    real_scandir = os.scandir

    def scandir(path):  # as for a folder without read permission (root reads them all)
        if Path(path).name == "b":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = find_inputs([Path("srv")])
    assert [(item.label, item.problem) for item in found] == [
        ("srv/a/applicationHost.config", None),
        ("srv/b", "cannot search: Permission denied"),
    ]


def test_most_severe_follows_the_documented_order():
    assert most_severe([]) == 0
    assert most_severe([0, 0]) == 0
    assert most_severe([0, 1, 0]) == 1
    assert most_severe([1, 2]) == 2
    assert most_severe([1, 4, 0]) == 4
    assert most_severe([4, 3, 1]) == 3
    assert most_severe([ExitCode.INVALID_INPUT, ExitCode.REFUSED]) == 3


def square_or_fail(offset: int, value: int) -> int:
    if value < 0:
        raise ValueError(f"negative: {value}")
    if value == 99:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies, as when it is killed for memory
    if value == 98:
        os._exit(1)
    return value * value + offset


def failed(item: int, error: BaseException) -> int:
    return -1000 - item if isinstance(error, ValueError) else -2000


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_all_returns_results_in_input_order_and_errors_as_results(jobs):
    items = [5, 1, -3, 4, 2]
    results = run_all(partial(square_or_fail, 1), items, jobs=jobs, crashed=failed)
    assert results == [26, 2, -997, 17, 5]


def died(item: int, error: BaseException) -> str:
    return f"{item}: {type(error).__name__}: {error}"


def test_a_worker_that_dies_costs_only_the_item_it_was_working_on():
    """The item the worker was working on fails; the rest of its chunk (here 2, sent with 99),
    and every item the other worker had or would have, are done as if nothing had happened."""
    items = [99, *range(2, 17)]
    results = run_all(partial(square_or_fail, 0), items, jobs=2, crashed=died)
    assert results == [
        "99: WorkerDied: killed by signal 9, e.g. for lack of memory",
        *[n * n for n in range(2, 17)],
    ]


def test_workers_that_die_again_and_again_are_replaced():
    """More deaths than workers: each costs its item only, and the run still ends."""
    items = [99, 2, 98, 3, 99, 4, 99, 99, 5, 6, 99, 7, 98, 8, 9, 10, 99]
    results = run_all(partial(square_or_fail, 0), items, jobs=2, crashed=died)
    deaths = {
        99: "99: WorkerDied: killed by signal 9, e.g. for lack of memory",
        98: "98: WorkerDied: exit status 1",
    }
    assert results == [deaths.get(n, n * n) for n in items]


def wait_for(folder: Path, item: int) -> str:
    """Item 0 is done at once; the others wait until the parent has reported the one before."""
    if item == 0:
        return "done"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (folder / str(item - 1)).exists():
            return "saw the report of the one before"
        time.sleep(0.01)
    return "timed out"


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_are_reported_in_order_while_later_files_still_run(tmp_path, jobs):
    reported: list[str] = []

    def report(result: str) -> None:
        (tmp_path / str(len(reported))).touch()
        reported.append(result)

    items = [0, 1, 2]
    work = partial(wait_for, tmp_path)
    results = run_all(work, items, jobs=jobs, crashed=failed, on_result=report)
    assert results == reported == ["done", *["saw the report of the one before"] * 2]


def test_work_really_runs_in_other_processes_with_jobs():
    pids = run_all(partial(worker_pid, 0), [0, 1, 2, 3], jobs=2, crashed=failed)
    assert os.getpid() not in pids
    assert run_all(partial(worker_pid, 0), [0], jobs=2, crashed=failed) == [os.getpid()]


def worker_pid(offset: int, item: int) -> int:
    return os.getpid() + offset


def test_no_progress_bar_off_a_terminal_or_with_quiet_or_for_few_files(monkeypatch):
    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    assert show_progress(6, quiet=False)
    assert not show_progress(5, quiet=False)
    assert not show_progress(6, quiet=True)
    Terminal.isatty = lambda self: False  # type: ignore[method-assign]
    assert not show_progress(60, quiet=False)


def test_input_labels_never_leave_the_current_directory(tmp_path, monkeypatch):
    outside = touch(tmp_path / "elsewhere" / "applicationHost.config")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    (found,) = find_inputs([outside])
    assert found == Input(outside, "applicationHost.config")


def test_files_found_outside_the_current_directory_keep_their_path_from_the_folder_named(
    tmp_path, monkeypatch
):
    exports = tmp_path / "srv" / "exports"
    first = touch(exports / "cas01" / "applicationHost.config")
    second = touch(exports / "cas02" / "applicationHost.config")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for named in (exports, Path("..") / "srv" / "exports", Path("../srv/./exports/")):
        assert [item.label for item in find_inputs([named])] == [
            "exports/cas01/applicationHost.config",
            "exports/cas02/applicationHost.config",
        ], named
    assert [i.path for i in find_inputs([exports])] == [first, second]
    # inside the current directory, the path from it, as before
    monkeypatch.chdir(tmp_path)
    assert [item.label for item in find_inputs([exports])] == [
        "srv/exports/cas01/applicationHost.config",
        "srv/exports/cas02/applicationHost.config",
    ]


def test_no_progress_bar_without_a_stderr(monkeypatch):
    monkeypatch.setattr("sys.stderr", None)  # as Python sets it when started with `2>&-`
    assert not show_progress(100, quiet=False)


def square_then_die_idle(value: int) -> int:
    """Item 1's worker dies a moment after answering, while it waits for its next chunk."""
    if value == 1:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return value * value


def test_a_worker_that_dies_between_chunks_costs_nothing():
    """The parent is slow to send the next chunk (its report of item 1 takes a second), and
    the worker that did item 1 dies meanwhile, idle: the chunk it never received goes to a
    new worker, and no item is reported lost."""

    def slow_report(result: int) -> None:
        if result == 1:
            time.sleep(1)

    items = [1, 2, 3, 4, 5, 6, 7, 8]
    results = run_all(square_then_die_idle, items, jobs=2, crashed=died, on_result=slow_report)
    assert results == [n * n for n in items]


def square(value: int) -> int:
    return value * value


def test_when_every_worker_has_died_idle_new_ones_take_the_files():
    """Every worker dies while idle, each after doing some work, before the next chunks are
    sent: none is busy, files still wait; new workers must take them (not end the run)."""
    workers = confedit_workers.Workers(square, died, 2)
    with workers:
        for _ in range(2):
            workers._start()
        for worker in workers._live:
            worker.answered = 1  # each has done work before
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.join()
        results = dict(workers.run([1, 2, 3, 4, 5, 6], 1))
    assert results == {index: (index + 1) ** 2 for index in range(6)}


class Hung(Exception):
    """Not an OSError (as TimeoutError is), which the code under test may catch."""


def within(seconds: int, call: Callable[[], T]) -> T:
    """`call()`, or Hung after `seconds`: a hang fails the test, not the whole run."""

    def too_long(signum: int, frame: object) -> None:
        raise Hung(f"still running after {seconds} s")

    before = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(seconds)
    try:
        return call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


def double(value: int) -> int:
    return value * 2


@pytest.mark.parametrize(("failing", "lost"), [(1, [0]), (3, [])])
def test_a_send_that_fails_for_want_of_memory_neither_hangs_nor_loses_a_file(
    monkeypatch, failing, lost
):
    """A pipe can fail for other reasons than a dead worker (ENOBUFS, under the very memory
    pressure that kills workers): the worker is stopped, and its chunk goes back unless it
    never answered (then its first item pays, as for a worker that dies at start)."""
    parent, calls = os.getpid(), [0]
    real_send = Connection.send_bytes

    def send_bytes(self: Connection, data: bytes) -> None:
        if os.getpid() == parent:
            calls[0] += 1
            if calls[0] == failing:
                raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
        real_send(self, data)

    monkeypatch.setattr(Connection, "send_bytes", send_bytes)
    results = within(60, lambda: run_all(double, list(range(40)), jobs=2, crashed=died))
    assert [index for index, result in enumerate(results) if isinstance(result, str)] == lost
    assert all(result == 2 * index for index, result in enumerate(results) if index not in lost)


def _found_one_path_at_a_time(arguments: list[Path], skip: Path | None) -> list[Input]:
    """find_inputs as it was written before it built paths one name at a time: each folder and
    file resolved with os.path.realpath, each file labelled with label_of. The reference."""
    found: list[Input] = []
    skipped = os.path.realpath(skip) if skip is not None else None
    at: dict[str, int] = {}
    for argument in arguments:
        items = [Input(argument, label_of(argument, None, logical_cwd()))]
        if argument.is_dir():
            items = []
            for folder, subfolders, files in os.walk(argument):
                subfolders[:] = sorted(
                    name for name in subfolders if os.path.realpath(Path(folder, name)) != skipped
                )
                items += [
                    Input(Path(folder, name), label_of(Path(folder, name), argument, logical_cwd()))
                    for name in sorted(files)
                    if batch.is_config_name(name)
                ]
            if not items:
                problem = (
                    "is a directory with no applicationHost.config in it (searched recursively)"
                )
                items = [Input(argument, label_of(argument, argument, logical_cwd()), problem)]
        for item in items:
            key = os.path.realpath(item.path)
            if key not in at:
                at[key] = len(found)
                found.append(item)
            elif found[at[key]].path.is_symlink() and not item.path.is_symlink():
                found[at[key]] = item
    return found


_NAMES = st.sampled_from(["a", "b", "srv1", "x y"])
_FILES = st.sampled_from(["applicationHost.config", "cas.applicationHost.config", "other.txt"])
_TREE = st.lists(st.tuples(st.lists(_NAMES, max_size=3), _FILES), min_size=1, max_size=8)
# Links: (where, to): a folder or file link at a folder path of the tree, to a path of it
_LINKS = st.lists(
    st.tuples(st.lists(_NAMES, min_size=1, max_size=2), st.integers(0, 7)), max_size=3
)
_SPELLINGS = st.sampled_from(["{t}", "./{t}/", "{t}/../top", "{abs}", "{t}/a", "{t}/a/.."])


@given(
    tree=_TREE,
    links=_LINKS,
    spellings=st.lists(_SPELLINGS, min_size=1, max_size=3),
    cwd_at=st.sampled_from(["above", "in", "below", "alias"]),
    skip=st.sampled_from([None, "{t}/b", "{t}/a/srv1"]),
)
def test_finding_files_finds_and_labels_as_resolving_every_path_does(
    tree, links, spellings, cwd_at, skip
):
    """Over random trees with symlinked folders and files, spelled in several ways from several
    places, the search finds, orders, keeps once and labels the files as the plain way does."""
    with tempfile.TemporaryDirectory() as scratch:
        top = Path(scratch, "top")
        top.mkdir()
        made = []
        for folders, name in tree:
            made.append(touch(top.joinpath(*folders, name)))
        for where, index in links:
            link = top.joinpath(*where, "link")
            if not link.parent.exists() or link.exists():
                continue
            target = made[index % len(made)]
            link.symlink_to(
                target if index % 2 else target.parent, target_is_directory=index % 2 == 0
            )
        cwd = {"above": Path(scratch), "in": top, "below": top / "a", "alias": top}[cwd_at]
        cwd.mkdir(exist_ok=True)
        if cwd_at == "alias":  # the shell's $PWD names the folder through a symlink
            cwd = Path(scratch, "alias")
            cwd.symlink_to(top, target_is_directory=True)
        t = os.path.relpath(top, cwd)
        arguments = [Path(s.format(t=t, abs=top)) for s in spellings]
        output = Path(skip.format(t=t)) if skip else None
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(cwd)
            patch.setenv("PWD", str(cwd))
            arguments = [a for a in arguments if a.exists()]
            expected = _found_one_path_at_a_time(arguments, output)
            assert find_inputs(arguments, skip=output) == expected
