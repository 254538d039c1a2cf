"""The worker processes of batch.run_all: the files of a run over several are worked on by
a few processes, each given chunks of them, which take paths and return plain data (lxml trees
cannot cross processes). A worker that dies costs only the file it was working on.

Imported only by a run over several files in several processes: multiprocessing and pickle cost
a run in one process (one file, or --jobs 1) about 9 ms of start-up.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pipe, get_all_start_methods, get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Final, Generic, TypeVar

from confedit.errors import WorkerDied
from confedit.files import HELD, remove_temporary_files, signals_held

T = TypeVar("T")
R = TypeVar("R")

# Workers are forked, whatever the interpreter's default (a fork server from Python 3.14 on
# Linux, spawn on macOS): the design depends on it (the signals held since the fork, the copies
# of the parent's pipe ends and stdout buffer that come with it, see _serve), a forked worker
# starts with confedit loaded instead of loading it again, and it is this process's own child,
# done with when it is joined (a fork server and its resource tracker are Python processes of
# their own, started for the run, that outlive it). Where there is no fork (Windows), the default.
# The fork is safe: the parent of workers runs no thread (background.py's threads work on a file,
# which only a worker does), so Python 3.12's warning about forking threads does not apply.
_START_METHOD: Final = "fork" if "fork" in get_all_start_methods() else None


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


class Workers(Generic[T, R]):
    """Worker processes for run_all, each with a pipe of its own: it is sent a chunk of items
    at a time and sends back each item's result as soon as it is done. So a worker that dies
    costs only the item it was working on: the results it sent are kept, the items it had not
    started go to another worker, and the other workers never notice (a ProcessPoolExecutor
    breaks as a whole: it stops every worker and fails every pending item). Used as a context
    manager: on leaving, the workers are told to stop, or, on an error (Ctrl-C, SIGTERM),
    stopped by SIGTERM; either way waited for. `work` returns its errors as results (see
    batch.call); `crashed` makes one of a result that cannot be sent, or of a worker's death."""

    def __init__(
        self, work: Callable[[T], R], crashed: Callable[[T, BaseException], R], count: int
    ) -> None:
        self._work = work
        self._crashed = crashed
        self._count = count
        self._live: list[_Worker] = []

    def __enter__(self) -> Workers[T, R]:
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
        process = get_context(_START_METHOD).Process(
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
    if hasattr(signal, "SIGHUP"):  # a hangup too reaches the group (not on Windows)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
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
            connection.send_bytes(_message(index, item, work(item), crashed))
    except _Stopped:  # the file's `finally` blocks have run: exit now, not at the next chunk
        remove_temporary_files()  # those whose `finally` the signal came before (see there)
        os._exit(128 + int(signal.SIGTERM))
    finally:
        _busy = False


def _message(index: int, item: T, result: R, crashed: Callable[[T, BaseException], R]) -> bytes:
    """An item's result, pickled for the parent. One that cannot be is a bug: the item's crash."""
    try:
        return pickle.dumps((index, result))
    except Exception as error:
        return pickle.dumps((index, crashed(item, error)))
