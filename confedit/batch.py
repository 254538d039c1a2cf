"""Many files at once: finding the configs, running one function over them in parallel, the
progress bar, and the run's exit code. Knows nothing about what is done to each file."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import Pipe, get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Final, Generic, TextIO, TypeVar

import click

from confedit.diffing import logical_cwd, relative_label
from confedit.errors import ExitCode
from confedit.files import HELD, signals_held

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


def find_inputs(arguments: Sequence[Path], skip: Path | None = None) -> list[Input]:
    """Files named, and every config file (see is_config_name) below the folders named.

    Folders are searched in sorted order, without following symlinked folders; `skip` (the
    output folder) is not searched. A file found twice is kept once, at its first place, and
    named by its own path rather than by a symlink to it.
    """
    found: list[Input] = []
    skipped = os.path.realpath(skip) if skip is not None else None
    cwd = logical_cwd()  # found once
    at: dict[str, int] = {}  # a file's real path -> its place in `found`
    for argument in arguments:
        for item in _expand(argument, skipped, cwd):
            key = os.path.realpath(item.path)
            if key not in at:
                at[key] = len(found)
                found.append(item)
            elif found[at[key]].path.is_symlink() and not item.path.is_symlink():
                found[at[key]] = item  # found by its own name too: named so, at the first place
    return found


def _expand(argument: Path, skipped: str | None, cwd: Path) -> list[Input]:
    if not argument.is_dir():
        return [Input(argument, label_of(argument, None, cwd))]
    label = partial(label_of, folder=argument, cwd=cwd)
    found: list[Input] = []

    def unreadable(error: OSError) -> None:
        where = Path(error.filename) if error.filename else argument
        found.append(Input(where, label(where), f"cannot search: {error.strerror}"))

    for folder, subfolders, files in os.walk(argument, onerror=unreadable):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if skipped is None or os.path.realpath(Path(folder, name)) != skipped
        )
        for name in sorted(files):
            if is_config_name(name):
                path = Path(folder, name)
                found.append(Input(path, label(path)))
    if not found:
        problem = "is a directory with no applicationHost.config in it (searched recursively)"
        return [Input(argument, label(argument), problem)]
    return found


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
    if jobs <= 1 or len(items) <= 1:
        with _bar(len(items), progress) as advance:
            results = []
            for item in items:
                results.append(_call(work, item, crashed))
                report(results[-1])
                advance(1)
            return results
    # lxml trees cannot cross processes: workers get paths and return plain data. Files go in
    # chunks, so that a round trip to a worker is paid once per chunk.
    size = max(1, min(CHUNK, len(items) // (jobs * 4)))
    finished: dict[int, R] = {}  # results that came before some result ahead of them
    in_order: list[R] = []
    workers = _Workers(work, crashed, min(jobs, len(items)))
    with _bar(len(items), progress) as advance, workers:
        for index, result in workers.run(items, size):
            finished[index] = result
            advance(1)
            while len(in_order) in finished:
                in_order.append(finished.pop(len(in_order)))
                report(in_order[-1])
    return in_order


class WorkerDied(Exception):
    """Handed to run_all's `crashed` for the item a worker process was working on when it died:
    whatever that item's work had done (a file written or not) is unknown."""


class _Stopped(BaseException):
    """Raised in a worker by SIGTERM: unwinds the file it is working on (its temporary files are
    removed), then the worker exits. Not an Exception, so that no `except Exception` takes it
    for the file's error."""


@dataclass
class _Worker:
    """A worker process, and the items sent to it whose results have not come back, in order:
    the first is the one it is working on (or, between two items, about to start)."""

    process: BaseProcess
    connection: Connection  # the parent's end of the worker's own pipe
    sent: deque[int] = field(default_factory=deque)
    answered: int = 0  # results received from it


class _Workers(Generic[T, R]):
    """Worker processes for run_all, each with a pipe of its own: it is sent a chunk of items
    at a time and sends back each item's result as soon as it is done. So a worker that dies
    costs only the item it was working on: the results it sent are kept, the items it had not
    started go to another worker, and the other workers never notice (a ProcessPoolExecutor
    breaks as a whole: it stops every worker and fails every pending item). Used as a context
    manager: on leaving, the workers are told to stop, or, on an error (Ctrl-C, SIGTERM),
    stopped by SIGTERM; either way waited for."""

    def __init__(
        self, work: Callable[[T], R], crashed: Callable[[T, BaseException], R], count: int
    ) -> None:
        self._work = work
        self._crashed = crashed
        self._count = count
        self._live: list[_Worker] = []

    def __enter__(self) -> _Workers[T, R]:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        for worker in self._live:
            with contextlib.suppress(OSError, ValueError):  # OSError: it has died meanwhile
                if kind is None:
                    worker.connection.send_bytes(pickle.dumps(None))
                else:  # Ctrl-C or SIGTERM (see cli._guarded), or a bug here
                    worker.process.terminate()
        for worker in self._live:
            worker.process.join()
            worker.connection.close()

    def run(self, items: Sequence[T], size: int) -> Iterator[tuple[int, R]]:
        """Each item's index and result, in the order they are done."""
        waiting = deque(range(len(items)))
        while True:
            self._top_up(items, waiting, size)
            busy = [worker for worker in self._live if worker.sent]
            if not busy and waiting:  # the workers given them died idle: start others
                continue
            if not busy:
                return
            ready = wait([worker.connection for worker in busy])
            for worker in [worker for worker in busy if worker.connection in ready]:
                received = self._receive(worker)
                if received is None:
                    yield from self._bury(worker, items, waiting)
                else:
                    yield received

    def _top_up(self, items: Sequence[T], waiting: deque[int], size: int) -> None:
        """A chunk for each idle worker, as long as items wait; a dead worker is replaced."""
        while waiting and len(self._live) < self._count:
            if not self._started():
                break
        for worker in list(self._live):
            if waiting and not worker.sent:
                chunk = [waiting.popleft() for _ in range(min(size, len(waiting)))]
                worker.sent.extend(chunk)
                try:
                    worker.connection.send_bytes(pickle.dumps([(i, items[i]) for i in chunk]))
                except OSError:  # it died while idle, or the pipe failed (no buffer memory)
                    worker.process.kill()  # either way it gets no more work, nor keeps any
                    self._requeue_unsent(worker, waiting)

    def _requeue_unsent(self, worker: _Worker, waiting: deque[int]) -> None:
        """A worker that has done work and could not be sent its next chunk costs nothing: the
        chunk goes back. One that never answered is left to be found by the end of its pipe,
        so that its first item pays: workers that die as they start cannot be restarted
        forever."""
        if worker.answered:
            waiting.extendleft(reversed(worker.sent))
            worker.sent.clear()
            self._retire(worker)

    def _started(self) -> bool:
        """Whether another worker could be started. If not (no memory for a process, say, as
        when workers are being killed for memory), the run goes on with those it has."""
        try:
            self._start()
        except OSError:
            if not self._live:
                raise  # no worker at all: the run cannot go on
            self._count = len(self._live)
            return False
        return True

    def _start(self) -> None:
        parent_end, child_end = Pipe()
        # The worker closes every parent's end it inherits (its own and the other workers'):
        # a copy left open would keep a pipe alive after the parent is killed outright.
        parents_ends = [parent_end, *(worker.connection for worker in self._live)]
        process = get_context().Process(
            target=_serve, args=(child_end, parents_ends, self._work, self._crashed), daemon=True
        )
        # An interrupt before the worker has set its handlers would kill it with a traceback:
        # signals wait until it can take them (see _worker_started), and until it is known to
        # __exit__, which stops it.
        with signals_held():
            try:
                process.start()
            except OSError:
                parent_end.close()
                raise
            finally:
                child_end.close()  # so that the worker's death is the end of its pipe
            self._live.append(_Worker(process, parent_end))

    @staticmethod
    def _receive(worker: _Worker) -> tuple[int, R] | None:
        """The next result the worker has sent, or None if it has died (its pipe ended)."""
        try:
            index, result = pickle.loads(worker.connection.recv_bytes())
        except (EOFError, OSError):  # OSError: it died in the middle of sending a result
            return None
        worker.sent.remove(index)
        worker.answered += 1
        return index, result

    def _retire(self, worker: _Worker) -> None:
        worker.process.join()
        worker.connection.close()
        self._live.remove(worker)

    def _bury(
        self, worker: _Worker, items: Sequence[T], waiting: deque[int]
    ) -> Iterator[tuple[int, R]]:
        """A dead worker's item in progress fails; those it had not started wait for another."""
        self._retire(worker)
        if worker.sent:
            lost = worker.sent.popleft()
            reason = WorkerDied(_how_it_ended(worker.process.exitcode))
            yield lost, self._crashed(items[lost], reason)
            waiting.extendleft(reversed(worker.sent))


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        cause = ", e.g. for lack of memory" if -exitcode == _SIGKILL else ""
        return f"killed by signal {-exitcode}{cause}"
    if exitcode == 128 + signal.SIGTERM:  # how _stop_worker ends a worker
        return f"stopped by signal {int(signal.SIGTERM)}"
    return f"exit status {exitcode}"


_SIGKILL: Final = 9  # signal.SIGKILL, which Windows does not define


def _serve(
    connection: Connection,
    parents_ends: list[Connection],
    work: Callable[[T], R],
    crashed: Callable[[T, BaseException], R],
) -> None:
    """A worker process: works on the chunks it is sent until it is sent None, or until the
    parent is gone (its pipe ends: the next result it sends fails)."""
    # Copies of the parent's ends that came with the fork would keep pipes open: after a
    # parent killed outright (kill -9), this worker would wait for work forever, and the
    # workers started before it would go on through their chunks, sending into the copies.
    for end in parents_ends:
        end.close()
    _worker_started()
    with contextlib.suppress(EOFError, OSError):  # the parent is gone, and so is the work
        while (chunk := pickle.loads(connection.recv_bytes())) is not None:
            _work_on(connection, work, chunk, crashed)
    # Not a return: multiprocessing would then flush stdout and stderr, whose buffers a forked
    # worker shares with the parent at the fork; what is in them is the parent's to write.
    os._exit(0)


def _worker_started() -> None:
    # Ctrl-C reaches every process of the terminal's group: the workers leave it to the parent,
    # which stops them (SIGTERM) whatever the signal it got, so that they stop one way only.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)  # held since the parent's fork


_busy = False  # whether this worker is working on a chunk (set in the worker process only)


def _stop_worker(signum: int, frame: object) -> None:
    del frame
    signal.signal(signum, signal.SIG_IGN)  # once: a second signal must not cut the cleanup short
    if _busy:
        raise _Stopped
    os._exit(128 + signum)  # waiting for work: nothing to clean up


def _call(work: Callable[[T], R], item: T, crashed: Callable[[T, BaseException], R]) -> R:
    try:
        return work(item)
    except Exception as error:
        return crashed(item, error)


def _work_on(
    connection: Connection,
    work: Callable[[T], R],
    chunk: list[tuple[int, T]],
    crashed: Callable[[T, BaseException], R],
) -> None:
    """Each result is sent as soon as it is done: if this worker dies, the parent keeps them."""
    global _busy  # noqa: PLW0603 - the signal handler's view of this worker
    _busy = True
    try:
        for index, item in chunk:
            connection.send_bytes(_message(index, item, _call(work, item, crashed), crashed))
    except _Stopped:  # the file's `finally` blocks have run: exit now, not at the next chunk
        os._exit(128 + int(signal.SIGTERM))
    finally:
        _busy = False


def _message(index: int, item: T, result: R, crashed: Callable[[T, BaseException], R]) -> bytes:
    """An item's result, pickled for the parent. One that cannot be is a bug: the item's crash."""
    try:
        return pickle.dumps((index, result))
    except Exception as error:
        return pickle.dumps((index, crashed(item, error)))


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
