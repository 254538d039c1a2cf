"""Reading inputs and writing outputs without ever leaving a file half-written."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

from confedit.background import MAIN_THREAD_SIGNALS, Background
from confedit.errors import InputChanged, InvalidInput, StdoutFailed, WriteFailed

DEFAULT_MAX_SIZE = 512 * 1024 * 1024
# Large files are read again, and written, this much at a time. One write() of 100 MB took 0.1
# to 0.25 s in about one call in three on the benchmark's machine; in 1 MiB writes, 20 ms always.
_CHUNK = 1 << 20
NOTHING_CHANGED: Final = "; nothing was changed"


@dataclass(frozen=True)
class Snapshot:
    """The bytes of an input file and what its stat said when they were read."""

    path: Path
    data: bytes
    size: int
    mtime_ns: int
    inode: tuple[int, int]  # device and inode: a file replaced by a rename is another file


def read_input(path: Path, max_size: int = DEFAULT_MAX_SIZE) -> Snapshot:
    """Read a config file, checking its kind and size before reading it whole. One that grew
    past the size limit since stat() is InvalidInput; one read shorter than stat() said, with
    stat() now saying otherwise (cut short meanwhile), is InputChanged."""
    name = str(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InvalidInput("is a directory, not an applicationHost.config file", source=name)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput("is not a regular file", source=name)
        if info.st_size > max_size:
            raise InvalidInput(
                f"the file is {info.st_size} bytes, over the size limit of {max_size} bytes "
                "(raise it with --max-size)",
                source=name,
            )
        with path.open("rb") as handle:
            # Asking for the size stat() gave (plus one byte) makes one buffer of that size;
            # asking for max_size would allocate max_size first.
            data = handle.read(info.st_size + 1)
            if len(data) > info.st_size:  # it grew after stat(): read on, up to the limit
                data += handle.read(max_size + 1 - len(data))
    except FileNotFoundError:
        hint = " (confedit reads files, not stdin: name the file)" if name == "-" else ""
        raise InvalidInput(f"no such file{hint}", source=name) from None
    except PermissionError:
        raise InvalidInput("permission denied", source=name) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror or exc}", source=name) from None
    if len(data) > max_size:  # it grew after stat()
        raise InvalidInput(f"the file is over the size limit of {max_size} bytes", source=name)
    # Shorter than stat() said: cut short after it (these bytes are no version of the file),
    # unless stat() still says the same, as a sysfs file does, whose size is always a page.
    if len(data) < info.st_size and not _stat_unchanged(path, info):
        raise InputChanged(_CHANGED, source=name)
    return Snapshot(path, data, info.st_size, info.st_mtime_ns, (info.st_dev, info.st_ino))


def _stat_unchanged(path: Path, before: os.stat_result) -> bool:
    try:
        now = path.stat()
    except OSError:
        return False
    same = ("st_dev", "st_ino", "st_size", "st_mtime_ns")
    return all(getattr(now, field) == getattr(before, field) for field in same)


_CHANGED: Final = (
    "the file changed while confedit was working on it; nothing was written, run again"
)


def check_unchanged(snapshot: Snapshot) -> None:
    """Refuse to write if the input changed since it was read (replaced by another file, or its
    size, mtime or content)."""
    name = str(snapshot.path)
    try:
        check_same_stat(snapshot)
        data = snapshot.data
        with snapshot.path.open("rb") as handle:
            for offset in range(0, len(data), _CHUNK):
                expected = min(_CHUNK, len(data) - offset)
                chunk = handle.read(expected)  # not _CHUNK: a buffer that size for a small file
                # startswith compares in place: no copy of the snapshot's bytes
                if len(chunk) != expected or not data.startswith(chunk, offset):
                    raise InputChanged(_CHANGED, source=name)
            if handle.read(1):
                raise InputChanged(_CHANGED, source=name)
    except OSError as exc:
        raise InputChanged(
            f"cannot re-read the input: {exc.strerror or exc}", source=name
        ) from None


# From this size on, rereading() reads the input in a thread: below it, starting one costs
# about as much as the reading itself.
_REREAD_IN_THREAD: Final = 4 << 20


@contextlib.contextmanager
def rereading(snapshot: Snapshot) -> Iterator[Callable[[], None]]:
    """check_unchanged() of `snapshot`, begun now, for what the block writes from its bytes:
    it yields the check to give Outputs as its last one (which waits for check_unchanged, then
    calls check_same_stat). A large input is read again in a thread, while the outputs are
    written: a second pass over 100 MB takes about 45 ms, the writing about as long."""
    if len(snapshot.data) < _REREAD_IN_THREAD:
        check_unchanged(snapshot)
        yield partial(check_same_stat, snapshot)
        return
    reread = Background(partial(check_unchanged, snapshot))

    def last_check() -> None:
        reread.result()
        check_same_stat(snapshot)

    try:
        yield last_check
    finally:
        reread.wait()  # an error in the block: the thread ends before the file is let go


def check_same_stat(snapshot: Snapshot) -> None:
    """Refuse if the input's size, mtime or inode differ from when it was read: the last check,
    made just before the outputs are renamed into place (check_unchanged reads the bytes too,
    which takes too long to leave no window after it)."""
    try:
        info = snapshot.path.stat()
    except OSError as exc:
        raise InputChanged(
            f"cannot re-read the input: {exc.strerror or exc}", source=str(snapshot.path)
        ) from None
    same_file = (info.st_dev, info.st_ino) == snapshot.inode
    if not same_file or info.st_size != snapshot.size or info.st_mtime_ns != snapshot.mtime_ns:
        raise InputChanged(_CHANGED, source=str(snapshot.path))


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path`: atomically if it is (or will be) a regular file, else directly.

    A rename over a device node or a FIFO would replace it (as root, for the whole machine), so
    those are written in place. Regular files get a temporary file in the same folder, fsync and
    rename; the file mode of the file replaced is kept, and so are its owner and group where this
    process may set them (as `sed -i` does).
    """
    with Outputs() as outputs:
        outputs.add(path, data)


class Outputs:
    """Files written together: each regular file is first written to a temporary file beside it
    (and fsynced), and only when all of them are, and any stream among the outputs (a pipe, a
    FIFO, a device) is written, they are renamed into place, in the order added. So a failure
    to write any of them (disk full, permission denied, interrupted) changes none of the files.
    Used as a context manager: committed at the end of the block, and on an error the
    temporary files are removed.

    With `durable=False` nothing is fsynced: the files are still written whole and renamed into
    place, and the caller makes them durable later with sync_filesystems(). Only for files that
    replace no one's data (a batch's --output-dir and --runbook-dir): an input or a backup is
    always fsynced.
    """

    def __init__(
        self, before_commit: Callable[[], None] | None = None, *, durable: bool = True
    ) -> None:
        self._staged: list[_Staged] = []
        self._before_commit = before_commit  # a last check; raising leaves every file as it was
        self._durable = durable

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                if self._before_commit is not None:
                    self._before_commit()
                # Streams first (a pipe, a FIFO, a device): they cannot be staged, and one that
                # fails must leave the files unchanged; a FIFO without a reader must stay
                # interruptible.
                streams = [staged for staged in self._staged if staged.direct]
                files = [staged for staged in self._staged if not staged.direct]
                _commit_in_order(streams)
                with signals_held():
                    _commit_in_order(files, written=[staged.name for staged in streams])
        finally:
            # Held: a second interrupt (Ctrl-C pressed twice, the parent's SIGTERM in a worker
            # whose write failed) would end the removal half-way.
            with signals_held():
                for staged in self._staged:
                    staged.discard()

    def add(
        self,
        path: Path,
        data: bytes,
        *,
        mode_from: Path | None = None,
        copy_of: Path | None = None,
    ) -> None:
        """Stage `data` for `path` (see write_file). A new file gets the mode of `mode_from`.
        A copy of another file (a backup) gets that file's mode, owner and group, whatever the
        file it replaces had: a backup left by an earlier run, or put there by someone else,
        must not hand the copy to its owner or leave it readable by more people."""
        try:
            info = path.stat()  # through symlinks: /dev/stdout is the pipe or file behind it
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise WriteFailed(
                f"cannot write: {exc.strerror}; nothing was changed", source=str(path)
            ) from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise WriteFailed("is a directory; nothing was changed", source=str(path))
        if info is not None and not stat.S_ISREG(info.st_mode):
            self._staged.append(_Staged(path, str(path), data, direct=True))
            return
        target = Path(os.path.realpath(path))  # write through a symlink, keep the link
        staged = _Staged(target, str(path), data, direct=False, durable=self._durable)
        self._staged.append(staged)  # before writing: a temporary file half-written is removed
        like = _stat(copy_of) if copy_of is not None else info
        staged.write_temporary(_mode_for(like, mode_from), _owner_of(like))


def _commit_in_order(outputs: list[_Staged], written: list[str] | None = None) -> None:
    """Commit each output in turn. A failure after others were written says which were: the
    renames are the only step that can fail after another succeeded (a backup renamed into
    place, then the rename over an immutable or busy input refused)."""
    done = list(written or [])
    for staged in outputs:
        try:
            staged.commit()
        except WriteFailed as error:
            if done:
                reason = error.message.removesuffix(NOTHING_CHANGED)
                error.message = f"{reason}; written before it: {', '.join(done)}"
            raise
        done.append(staged.name)


HELD: Final = MAIN_THREAD_SIGNALS

# The temporary files this process has made and neither renamed into place nor removed.
_unfinished: set[str] = set()


def remove_temporary_files() -> None:
    """Remove the temporary files this process has made and neither renamed into place nor
    removed: where an interrupt ends a run. Outputs removes its own on leaving its block, but
    Python runs a signal's handler as a function is entered, before any of its code: an
    interrupt taken as Outputs.__exit__ began (its files written, about to be renamed) was
    raised before the `try` whose `finally` removes them."""
    with signals_held():
        for path in sorted(_unfinished):
            with contextlib.suppress(OSError):
                os.unlink(path)  # noqa: PTH108 - a str path from mkstemp
        _unfinished.clear()


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done (a child process started in it
    inherits that). Here: the renames (a few milliseconds), so that a file and its backup are
    put in place together, the creation of a temporary file, so that its name is known to the
    cleanup, and the cleanup; in workers.py, the start of a worker process, until it has its
    own handlers."""
    if not hasattr(signal, "pthread_sigmask"):  # not on Windows
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _Staged:
    """One output: a temporary file beside a regular file, or the data for anything else."""

    def __init__(
        self, target: Path, name: str, data: bytes, *, direct: bool, durable: bool = True
    ) -> None:
        self.target, self.name, self.data = target, name, data
        self.direct = direct  # a stream: written at commit, in place
        self.durable = durable  # fsync the file and its folder (else the caller syncs later)
        self.temporary: str | None = None

    def write_temporary(self, mode: int, owner: tuple[int, int] | None) -> None:
        try:
            with signals_held():  # else an interrupt between creating and naming it loses it
                descriptor, self.temporary = tempfile.mkstemp(
                    dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".confedit-tmp"
                )
                _unfinished.add(self.temporary)
        except FileNotFoundError as exc:
            raise self._no_new_file(exc) from None
        except OSError as exc:
            raise self._failed(exc) from None
        try:
            with os.fdopen(descriptor, "wb") as handle:
                _write_all(handle, self.data)
                handle.flush()
                if owner is not None and hasattr(os, "fchown"):  # not on Windows
                    _give_to(handle.fileno(), *owner)
                # After fchown, which clears set-id bits; by descriptor where possible, so that
                # a folder writable by others cannot swap the name for a link meanwhile.
                if hasattr(os, "fchmod"):
                    os.fchmod(handle.fileno(), mode)
                else:
                    os.chmod(self.temporary, mode)  # noqa: PTH101 - a str path from mkstemp
                if self.durable:
                    os.fsync(handle.fileno())
        except OSError as exc:
            raise self._failed(exc) from None

    def commit(self) -> None:
        try:
            if self.direct:
                with self.target.open("wb") as handle:
                    _write_all(handle, self.data)
                return
            if self.temporary is None:  # committed already
                return
            Path(self.temporary).replace(self.target)
            _unfinished.discard(self.temporary)
            self.temporary = None
            if self.durable:
                _fsync_folder(self.target.parent)
        except BrokenPipeError:
            raise  # a pipe's reader has gone (`-o /dev/stdout | head`): not a write failure
        except OSError as exc:
            raise self._failed(exc) from None

    def discard(self) -> None:
        if self.temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.temporary)  # noqa: PTH108 - a str path from mkstemp
            _unfinished.discard(self.temporary)
            self.temporary = None

    def _no_new_file(self, exc: OSError) -> WriteFailed:
        """A folder that is there but refuses to create a file in it (procfs, sysfs answer
        ENOENT): "No such file or directory" alone would speak of a destination that exists."""
        folder = self.target.parent
        if not is_folder(folder):
            return self._failed(exc)
        return WriteFailed(
            f"cannot write: no file can be created in {folder} ({exc.strerror}), and confedit "
            f"writes a new file there to rename over it{NOTHING_CHANGED}",
            source=self.name,
        )

    def _failed(self, exc: OSError) -> WriteFailed:
        # Streams are written, and temporary files made, before any file is renamed into place:
        # only a failing rename after others succeeded makes this untrue (_commit_in_order
        # then names what was written).
        reason = "file too large or disk full" if exc.errno == errno.EFBIG else exc.strerror
        return WriteFailed(f"cannot write: {reason or exc}{NOTHING_CHANGED}", source=self.name)


def _mode_for(info: os.stat_result | None, mode_from: Path | None) -> int:
    if info is not None:
        return stat.S_IMODE(info.st_mode)
    if mode_from is not None:
        with contextlib.suppress(OSError):
            return stat.S_IMODE(mode_from.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _owner_of(info: os.stat_result | None) -> tuple[int, int] | None:
    return (info.st_uid, info.st_gid) if info is not None else None


def _give_to(descriptor: int, uid: int, gid: int) -> None:
    """The file's owner and group as given, or as much of them as allowed: root may give a file
    away (`sudo confedit --in-place` must not leave a root-owned file in a user's checkout), a
    user only to a group of theirs. Best effort, as in `sed -i`: the content matters more."""
    now = os.fstat(descriptor)
    if (now.st_uid, now.st_gid) == (uid, gid):
        return
    try:
        os.fchown(descriptor, uid, gid)
    except OSError:  # not allowed, or an owner unknown here (a user namespace: EINVAL)
        with contextlib.suppress(OSError):
            os.fchown(descriptor, -1, gid)


STDOUT_CLOSED: Final = "it is closed"
# Other names of stdout: `-o /dev/stdout` is `-o -` (see cli._output).
STDOUT_NAMES: Final = frozenset({"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})
# Names of stdin, which --in-place cannot rewrite (see offload_command._check_rewritable).
STDIN_NAMES: Final = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


def to_stdout(data: bytes) -> None:
    """All of `data` on stdout. Into a pipe whose reader has gone, a write can return a short
    count instead of failing: writing on turns that into the BrokenPipeError the command line
    answers (exit 141), instead of output silently cut short. Any other failure (closed, full,
    I/O error) is StdoutFailed."""
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        raise StdoutFailed(STDOUT_CLOSED)
    try:
        sys.stdout.flush()  # text written before (click.echo) comes first
        _write_all(sys.stdout.buffer, data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        silence_stdout()
        raise StdoutFailed(exc.strerror or str(exc)) from None


def stdout_open() -> bool:
    """Whether the process has a stdout: Python sets sys.stdout to None when it starts with
    descriptor 1 closed (`>&-`)."""
    return sys.stdout is not None


def silence_stdout() -> None:
    """Once stdout has failed: see to_null."""
    to_null(sys.stdout)


def to_null(stream: TextIO | None) -> None:
    """Send what a failed `stream` still holds, and anything written to it later, to the null
    device: the interpreter's last flush must not fail again (Python would then exit 120)."""
    if stream is None:  # closed from the start: nothing is held
        return
    with contextlib.suppress(OSError, ValueError):  # a stream without a descriptor (tests)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


def _write_all(stream: BinaryIO, data: bytes) -> None:
    """All of `data`, _CHUNK bytes at most a call, writing on after a short count (see
    to_stdout)."""
    view = memoryview(data)
    while view:
        view = view[stream.write(view[:_CHUNK]) :]


def print_json(document: Any) -> None:
    """A JSON document on stdout, as confedit prints every report: UTF-8, with any text that
    UTF-8 cannot hold written as a JSON escape (see json_bytes)."""
    to_stdout(json_bytes(document))


def json_bytes(document: Any) -> bytes:
    """`document` as JSON in valid UTF-8.

    A file name need not be UTF-8 on Linux: Python decodes its other bytes to lone surrogates
    (os.fsdecode: 0xFF becomes U+DCFF), which UTF-8 cannot encode. Such a character is written
    as its JSON escape, `\\udcff`, which keeps the name exact: json.loads gives back the same
    string and os.fsencode the original bytes (any other reader: an escape from \\udc80 to
    \\udcff stands for the byte 0x80 to 0xFF). Replacing the byte (U+FFFD) would name no file,
    and escaping all non-ASCII text (ensure_ascii) would hide every other name, e.g. `Straße`,
    from a person reading the report. backslashreplace writes exactly that escape: a lone
    surrogate is the only text UTF-8 cannot encode, and Python writes it as `\\u` and four hex
    digits, as JSON does.
    """
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return text.encode("utf-8", "backslashreplace")


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# Whether files may be written without fsync and made durable later by sync_filesystems():
# POSIX systems have sync(2); Windows has no call that flushes a whole volume's files.
CAN_SYNC_LATER: Final = hasattr(os, "sync")


def sync_filesystems(paths: Iterable[Path]) -> None:
    """Flush to disk everything written to the filesystems that hold `paths` (files or
    folders, followed through symlinks): one syncfs(2) per filesystem, called on the first of
    its paths that this process can open (a drop-box folder may be write-only), or sync(2)
    where there is no syncfs or none of them opens. A batch that writes many new files makes
    them durable this way, once, instead of with two fsyncs per file that each wait for the
    disk. Raises OSError if the kernel reports that data could not be written back."""
    syncfs = _syncfs_function()
    if syncfs is None:
        os.sync()
        return
    by_filesystem: dict[int, list[Path]] = {}
    for path in paths:
        with contextlib.suppress(OSError):  # gone meanwhile: nothing of it left to flush
            info = path.stat()
            # A FIFO or a device is written directly, not through the page cache of a
            # filesystem; opening one could block or have effects of its own.
            if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
                by_filesystem.setdefault(info.st_dev, []).append(path)
    for candidates in by_filesystem.values():
        descriptor = _open_any(candidates)
        if descriptor is None:
            os.sync()
            continue
        try:
            syncfs(descriptor)
        finally:
            os.close(descriptor)


def _open_any(paths: list[Path]) -> int | None:
    """A read-only descriptor of the first of `paths` that opens, or None."""
    for path in paths:
        with contextlib.suppress(OSError):
            return os.open(path, os.O_RDONLY)
    return None


def _syncfs_function() -> Callable[[int], None] | None:
    """libc's syncfs (Linux), raising OSError on failure; None where there is none. Python's
    os module has sync() but not syncfs()."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # noqa: PLC0415 - only a batch that writes needs it (about 1.5 ms to import)

    try:
        libc_syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None

    def syncfs(descriptor: int) -> None:
        if libc_syncfs(descriptor) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return syncfs


def is_folder(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a folder (through symlinks); False where it cannot be looked at. pathlib's
    is_dir() raises for a path the kernel refuses (longer than PATH_MAX, or below a folder this
    user may not search), which would end the run in a traceback: such a path then gets its own
    one-line error where it is used (an input that cannot be read, an output folder that cannot
    be made)."""
    return os.path.isdir(path)  # noqa: PTH112 - see above


def named_as_folder(name: str) -> str | None:
    """Why `name` cannot be read, if it names a file as a folder (`a.config/`, `a.config/.`):
    the system refuses to open a file so (ENOTDIR), but a Path made of the name drops the slash
    (and the dot) and names the file itself. None for any other name."""
    if not name.endswith(("/", "/.")) or is_folder(name):
        return None
    try:
        os.stat(name)  # noqa: PTH116 - Path(name) would drop the slash
    except NotADirectoryError as exc:
        return f"cannot read: {exc.strerror}"
    except OSError:  # missing, say: so is the file without the slash, and reading says so
        return None
    return None


def is_link(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a symlink; False where it cannot be looked at (see is_folder)."""
    return os.path.islink(path)  # noqa: PTH114 - see is_folder


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (following symlinks); False if either is missing."""
    try:
        return a.samefile(b)
    except OSError:
        return False
