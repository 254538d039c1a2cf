"""Reading inputs and writing outputs without ever leaving a file half-written."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from confedit.errors import InputChanged, InvalidInput, WriteFailed

DEFAULT_MAX_SIZE = 512 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    """The bytes of an input file and what its stat said when they were read."""

    path: Path
    data: bytes
    size: int
    mtime_ns: int


def read_input(path: Path, max_size: int = DEFAULT_MAX_SIZE) -> Snapshot:
    """Read a config file, checking its kind and size before reading it whole."""
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
        raise InvalidInput("no such file", source=name) from None
    except PermissionError:
        raise InvalidInput("permission denied", source=name) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror or exc}", source=name) from None
    if len(data) > max_size:  # it grew after stat()
        raise InvalidInput(f"the file is over the size limit of {max_size} bytes", source=name)
    return Snapshot(path, data, info.st_size, info.st_mtime_ns)


def check_unchanged(snapshot: Snapshot) -> None:
    """Refuse to write if the input changed since it was read (size, mtime or content)."""
    name = str(snapshot.path)
    message = "the file changed while confedit was working on it; nothing was written, run again"
    try:
        info = snapshot.path.stat()
        if info.st_size != snapshot.size or info.st_mtime_ns != snapshot.mtime_ns:
            raise InputChanged(message, source=name)
        data = snapshot.data
        with snapshot.path.open("rb") as handle:
            for offset in range(0, len(data), _CHUNK):
                expected = min(_CHUNK, len(data) - offset)
                chunk = handle.read(expected)  # not _CHUNK: a buffer that size for a small file
                # startswith compares in place: no copy of the snapshot's bytes
                if len(chunk) != expected or not data.startswith(chunk, offset):
                    raise InputChanged(message, source=name)
            if handle.read(1):
                raise InputChanged(message, source=name)
    except OSError as exc:
        raise InputChanged(
            f"cannot re-read the input: {exc.strerror or exc}", source=name
        ) from None


def write_file(path: Path, data: bytes, *, mode_from: Path | None = None) -> None:
    """Write `data` to `path`: atomically if it is (or will be) a regular file, else directly.

    A rename over a device node or a FIFO would replace it (as root, for the whole machine), so
    those are written in place. Regular files get a temporary file in the same folder, fsync and
    rename; the file mode of the file replaced (or of `mode_from`) is kept.
    """
    target = Path(os.path.realpath(path))  # write through a symlink, keep the link
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise WriteFailed(f"cannot write: {exc.strerror}", source=str(path)) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        _write_direct(target, data, str(path))
        return
    mode = _mode_for(info, mode_from)
    _write_atomic(target, data, mode, str(path))


def _mode_for(info: os.stat_result | None, mode_from: Path | None) -> int:
    if info is not None:
        return stat.S_IMODE(info.st_mode)
    if mode_from is not None:
        with contextlib.suppress(OSError):
            return stat.S_IMODE(mode_from.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_direct(target: Path, data: bytes, name: str) -> None:
    try:
        with target.open("wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise WriteFailed(f"cannot write: {exc.strerror or exc}", source=name) from None


def _write_atomic(target: Path, data: bytes, mode: int, name: str) -> None:
    temporary: str | None = None
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".confedit-tmp"
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # noqa: PTH101 - a str path from mkstemp
        Path(temporary).replace(target)
        temporary = None
        _fsync_folder(target.parent)
    except OSError as exc:
        reason = "file too large or disk full" if exc.errno == errno.EFBIG else exc.strerror
        raise WriteFailed(
            f"cannot write: {reason or exc}; nothing was changed", source=name
        ) from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)  # noqa: PTH108


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (following symlinks); False if either is missing."""
    try:
        return a.samefile(b)
    except OSError:
        return False
