"""Many files at once: finding the configs, running one function over them (in parallel: see
workers.py), the progress bar, and the run's exit code. Knows nothing about what is done to each
file."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final, NamedTuple, TextIO, TypeVar

import click

from confedit.diffing import logical_cwd, relative_label
from confedit.errors import ExitCode
from confedit.files import is_folder, is_link, named_as_folder

CONFIG_NAME: Final = "applicationhost.config"  # matched case-insensitively
HANDFUL: Final = 5  # more files than this get a progress bar (on a terminal)
CHUNK: Final = 16  # at most this many files per task given to a worker process

# The run's exit code is its files' most severe one, in this order. A refusal (3) comes first:
# something was judged unsafe or could not be written, and a pipeline must stop on it whatever
# else happened. Invalid input (4) next: a file could not be read at all. A usage problem found
# in one file (2) before drift (1): both need a person, but 1 is the gate's normal "work to do".
SEVERITY: Final = (
    ExitCode.REFUSED,
    ExitCode.INVALID_INPUT,
    ExitCode.USAGE,
    ExitCode.WORK_FOUND,
    ExitCode.OK,
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Input:
    """One file to work on, as found from the command line."""

    path: Path  # as given, or the folder given joined with the path found below it
    label: str  # its name in the diff and the output folder (see label_of)
    problem: str | None = None  # why it cannot be worked on, found while searching
    typed: str | None = None  # the name given, where `path` lost part of it (`a.config/`)

    @property
    def name(self) -> str:
        """Its name in the report: as given."""
        return self.typed if self.typed is not None else str(self.path)


def find_inputs(
    arguments: Sequence[Path | str], skip: Path | None = None, unfollowed: list[Path] | None = None
) -> list[Input]:
    """Files named, and every config file (see is_config_name) below the folders named.

    Folders are searched in sorted order, without following symlinked folders (a link may lead
    out of the tree, or back up it); those met are added to `unfollowed`, for the caller to
    warn of. `skip` (the output folder) is not searched. A file found twice is kept once, at its
    first place, and named by its own path rather than by a symlink to it.
    """
    found: list[Input] = []
    skipped = os.path.realpath(skip) if skip is not None else None
    cwd = logical_cwd()  # found once
    links = unfollowed if unfollowed is not None else []
    at: dict[str, int] = {}  # a file's real path -> its place in `found`
    for argument in arguments:
        named = _input_named_as_folder(os.fspath(argument), cwd)
        for item, key in named or _expand(Path(argument), skipped, cwd, links):
            if key not in at:
                at[key] = len(found)
                found.append(item)
            elif is_link(found[at[key]].path) and not is_link(item.path):
                found[at[key]] = item  # found by its own name too: named so, at the first place
    return found


def _input_named_as_folder(name: str, cwd: Path) -> list[tuple[Input, str]]:
    """A file named as a folder (`a.config/`, see files.named_as_folder), as the input of its
    own error, with a key of its own: it is not the file `a.config`, which is neither read nor
    written for it. Its label keeps the slash, so that it is not taken for that file's either.
    Empty for any other name."""
    problem = named_as_folder(name)
    if problem is None:
        return []
    path = Path(name)  # only for its label: reading it would read a.config
    label = label_of(path, None, cwd) + "/"
    return [(Input(path, label, problem, typed=name), os.path.realpath(path) + "/")]


def _expand(
    argument: Path, skipped: str | None, cwd: Path, links: list[Path]
) -> list[tuple[Input, str]]:
    """The inputs found from one argument, each with its real path."""
    if not is_folder(argument):
        return [(Input(argument, label_of(argument, None, cwd)), os.path.realpath(argument))]
    label_for = partial(label_of, folder=argument, cwd=cwd)
    found: list[tuple[Input, str]] = []

    def unreadable(error: OSError) -> None:
        where = Path(error.filename) if error.filename else argument
        problem = f"cannot search: {error.strerror}"
        found.append((Input(where, label_for(where), problem), os.path.realpath(where)))

    known = {os.fspath(argument): _Folder(os.path.realpath(argument), _typed_label(argument, cwd))}
    for folder, subfolders, files in os.walk(argument, onerror=unreadable):
        here = known.get(folder) or _Folder(os.path.realpath(folder), None)
        subfolders[:] = _to_search(folder, subfolders, here, skipped, links=links, known=known)
        for name in sorted(files):
            if is_config_name(name):
                found.append(_found(folder, name, here, label_for))
    if not found:
        problem = "is a directory with no applicationHost.config in it (searched recursively)"
        return [(Input(argument, label_for(argument), problem), os.path.realpath(argument))]
    return found


class _Folder(NamedTuple):  # not a dataclass: making the class costs every run 0.2 ms more
    """A folder being searched, as its files need it. Both are made from its parent's, one name
    at a time: os.path.realpath (a system call per folder of the path) and pathlib's
    normalizing for every file found cost more than all the rest of the search."""

    real: str  # its real path
    label: str | None  # its label as typed (see label_of), if that is below the current directory


def _to_search(
    folder: str,
    subfolders: list[str],
    here: _Folder,
    skipped: str | None,
    *,
    links: list[Path],
    known: dict[str, _Folder],
) -> list[str]:
    """os.walk's list of subfolders, in order, without the output folder. Symlinked ones stay
    in it (os.walk does not go into them) and go to `links`; the others go to `known`."""
    linked = {name for name in subfolders if is_link(_joined(folder, name))}
    links += sorted(Path(folder, name) for name in linked)
    kept = []
    for name in sorted(subfolders):
        real = os.path.realpath(Path(folder, name)) if name in linked else _joined(here.real, name)
        if real == skipped:
            continue
        kept.append(name)
        if name not in linked:
            known[_joined(folder, name)] = _Folder(real, _below(here.label, name))
    return kept


def _found(
    folder: str, name: str, here: _Folder, label_for: Callable[[Path], str]
) -> tuple[Input, str]:
    """The config file `name` in `folder`, with its real path: one lstat of the file."""
    path = Path(folder, name)
    joined = _joined(folder, name)
    below = _below(here.label, name)
    if is_link(joined) or below is None:  # named as label_of names it
        return Input(path, label_for(path)), os.path.realpath(joined)
    return Input(path, below), _joined(here.real, name)


def _typed_label(folder: Path, cwd: Path) -> str | None:
    """The path of `folder` from the current directory as typed (see relative_label), if it is
    below it; then a file below `folder` that is not a symlink is labelled by it."""
    typed = Path(os.path.normpath(cwd / folder))
    with contextlib.suppress(ValueError):
        return typed.relative_to(cwd).as_posix()
    return None


def _below(label: str | None, name: str) -> str | None:
    if label is None:
        return None
    return name if label == "." else f"{label}/{name}"


# Strings, not Paths, for the paths made for every folder and file found: making a Path object
# costs more than the system call.
def _joined(folder: str, name: str) -> str:
    return os.path.join(folder, name)  # noqa: PTH118 - see above


def label_of(path: Path, folder: Path | None, cwd: Path) -> str:
    """A file's name in the diff and the output folder: its path from the current directory, so
    that `git apply` at a repository's root applies the diff. A file outside it is named by its
    path from the folder named on the command line, that folder's own name included (as
    `cp -r` would copy it), or by its file name when it was named itself."""
    inside = relative_label(path, cwd)
    if inside is not None:
        return inside
    base = Path(os.path.normpath(cwd / folder)).parent if folder is not None else None
    file = Path(os.path.normpath(cwd / path))
    return file.relative_to(base).as_posix() if base and file.is_relative_to(base) else path.name


def is_config_name(name: str) -> bool:
    """`applicationHost.config`, or `SERVER.applicationHost.config` for exports kept side by
    side in one folder; in any case."""
    folded = name.casefold()
    return folded == CONFIG_NAME or folded.endswith("." + CONFIG_NAME)


def most_severe(codes: Iterable[int]) -> int:
    """The run's exit code: the most severe of its files' codes (see SEVERITY); 0 for none."""
    present = set(codes)
    return int(next((code for code in SEVERITY if code in present), ExitCode.OK))


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def run_all(
    work: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int,
    crashed: Callable[[T, BaseException], R],
    progress: str | None = None,
    on_result: Callable[[R], object] | None = None,
) -> list[R]:
    """`work` over `items`, in up to `jobs` processes; results in the order of `items`.

    `work` must be picklable (a module-level function or a partial of one) and should return
    its errors as results; `crashed` turns an error it raised into one, and a worker process
    that died (e.g. killed for memory) into one for the item it was working on (a WorkerDied):
    the other items are still worked on. With `progress` (a label), a bar on stderr advances as
    files finish. `on_result` gets each result in the order of `items` as soon as it and all
    those before it are done, so that a long run reports as it goes.
    """
    report = on_result or (lambda _result: None)
    with _bar(len(items), progress) as advance:
        if jobs <= 1 or len(items) <= 1:
            return _run_here(work, items, crashed=crashed, report=report, advance=advance)
        return _run_in_workers(
            work, items, jobs=jobs, crashed=crashed, report=report, advance=advance
        )


def _run_here(
    work: Callable[[T], R],
    items: Sequence[T],
    *,
    crashed: Callable[[T, BaseException], R],
    report: Callable[[R], object],
    advance: Callable[[int], None],
) -> list[R]:
    """run_all in this process, one item after another."""
    results = []
    for item in items:
        results.append(call(work, item, crashed))
        report(results[-1])
        advance(1)
    return results


def _run_in_workers(
    work: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int,
    crashed: Callable[[T, BaseException], R],
    report: Callable[[R], object],
    advance: Callable[[int], None],
) -> list[R]:
    """run_all in worker processes, the results handed on in the order of `items`."""
    # Imported here: a run in one process (one file, or --jobs 1) does not pay for
    # multiprocessing and pickle (about 9 ms of its start-up).
    from confedit import workers  # noqa: PLC0415

    # lxml trees cannot cross processes: workers get paths and return plain data. Files go in
    # chunks, so that a round trip to a worker is paid once per chunk.
    size = max(1, min(CHUNK, len(items) // (jobs * 4)))
    finished: dict[int, R] = {}  # results that came before some result ahead of them
    in_order: list[R] = []
    # The workers get `work` with its errors made results, as a run in one process has them.
    safe_work = partial(call, work, crashed=crashed)
    pool = workers.Workers(safe_work, crashed, min(jobs, len(items)))
    with pool:
        for index, result in pool.run(items, size):
            finished[index] = result
            advance(1)
            while len(in_order) in finished:
                in_order.append(finished.pop(len(in_order)))
                report(in_order[-1])
    return in_order


def call(work: Callable[[T], R], item: T, crashed: Callable[[T, BaseException], R]) -> R:
    """`work` on `item`; an error it raised turned into a result by `crashed`."""
    try:
        return work(item)
    except Exception as error:
        return crashed(item, error)


def show_progress(count: int, quiet: bool) -> bool:
    """A bar only for more than a handful of files, on a terminal, and not with --quiet."""
    return count > HANDFUL and not quiet and on_terminal(sys.stderr)


def on_terminal(stream: TextIO | None) -> bool:
    """Whether `stream` is a terminal. None is a closed one: Python's sys.stderr when the
    process was started with descriptor 2 closed (`2>&-`)."""
    return stream is not None and stream.isatty()


@contextlib.contextmanager
def _bar(length: int, label: str | None) -> Iterator[Callable[[int], None]]:
    if label is None:
        yield lambda _done: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update
