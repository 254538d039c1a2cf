"""Reading inputs: a file that changes while it is read is never taken for a shorter one."""

from __future__ import annotations

import io
import json
import os
import signal
import tempfile
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from confedit import files
from confedit.errors import InputChanged, InvalidInput, WriteFailed

ORIGINAL = b"<configuration>" + b" " * 5000 + b"</configuration>\n"


def grows_after_stat(monkeypatch: pytest.MonkeyPatch, path: Path, extra: bytes) -> None:
    """Make `path` grow by `extra` just after read_input has taken its stat()."""
    real_stat = Path.stat

    def stat_then_grow(self: Path, **kwargs: bool) -> os.stat_result:
        info = real_stat(self, **kwargs)
        if self == path:
            with path.open("ab") as handle:
                handle.write(extra)
        return info

    monkeypatch.setattr(Path, "stat", stat_then_grow)


def shrinks_after_stat(monkeypatch: pytest.MonkeyPatch, path: Path, size: int) -> None:
    """Make `path` shrink to `size` bytes just after read_input has taken its stat()."""
    real_stat = Path.stat

    def stat_then_truncate(self: Path, **kwargs: bool) -> os.stat_result:
        info = real_stat(self, **kwargs)
        if self == path:
            os.truncate(path, size)
        return info

    monkeypatch.setattr(Path, "stat", stat_then_truncate)


def test_a_file_read_whole_is_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "applicationHost.config"
    path.write_bytes(ORIGINAL)
    snapshot = files.read_input(path)
    assert snapshot.data == ORIGINAL
    assert snapshot.size == len(ORIGINAL)
    files.check_unchanged(snapshot)  # nothing changed: no error


def test_growth_after_stat_is_read_and_then_refused_at_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "applicationHost.config"
    path.write_bytes(ORIGINAL)
    grows_after_stat(monkeypatch, path, b"<!-- appended -->\n")
    snapshot = files.read_input(path)
    monkeypatch.undo()
    # All the bytes, not the first st_size of them: a truncated file would parse as another.
    assert snapshot.data == ORIGINAL + b"<!-- appended -->\n"
    with pytest.raises(InputChanged, match="changed while confedit was working on it"):
        files.check_unchanged(snapshot)


def test_growth_past_the_limit_after_stat_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "applicationHost.config"
    path.write_bytes(ORIGINAL)
    grows_after_stat(monkeypatch, path, b" " * 100)
    with pytest.raises(InvalidInput, match="over the size limit of 5050 bytes"):
        files.read_input(path, max_size=5050)


def test_a_file_cut_short_while_read_is_refused_as_changed_not_parsed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "applicationHost.config"
    path.write_bytes(ORIGINAL)
    shrinks_after_stat(monkeypatch, path, 1000)
    # Parsed, its first 1000 bytes would be reported as a file not well-formed (exit 4), at a
    # line that the file, now short, may not even have.
    with pytest.raises(InputChanged, match="changed while confedit was working on it"):
        files.read_input(path)


SYSFS_FILE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.mark.skipif(not SYSFS_FILE.is_file(), reason="no sysfs file to read here")
def test_a_file_shorter_than_its_stat_says_but_unchanged_is_read_as_it_is() -> None:
    """A sysfs file's stat() gives a page's size whatever it holds: reading fewer bytes is no
    sign that it changed, as it is for a file cut short while being read."""
    data = SYSFS_FILE.read_bytes()
    assert SYSFS_FILE.stat().st_size > len(data)
    assert files.read_input(SYSFS_FILE).data == data


@pytest.mark.parametrize("size", [10, files._CHUNK - 1, files._CHUNK, files._CHUNK + 7])
def test_a_change_anywhere_is_found_on_re_reading(tmp_path: Path, size: int) -> None:
    path = tmp_path / "applicationHost.config"
    data = bytes(index % 251 for index in range(size))
    path.write_bytes(data)
    snapshot = files.read_input(path)
    files.check_unchanged(snapshot)
    for offset in {0, size // 2, size - 1}:
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        path.write_bytes(bytes(changed))
        # The same size and mtime as when read: only the bytes tell.
        os.utime(path, ns=(snapshot.mtime_ns, snapshot.mtime_ns))
        with pytest.raises(InputChanged):
            files.check_unchanged(snapshot)


def test_an_input_replaced_by_a_rename_after_the_check_is_caught_before_any_rename(
    tmp_path: Path,
) -> None:
    """The last check, just before the outputs are renamed into place, compares the inode too:
    a file replaced by a rename (as editors and git do) with the same size and mtime is another
    file. Nothing is written and no temporary file stays."""
    path = tmp_path / "applicationHost.config"
    path.write_bytes(ORIGINAL)
    snapshot = files.read_input(path)
    files.check_unchanged(snapshot)
    replacement = tmp_path / "new"
    replacement.write_bytes(ORIGINAL.replace(b" ", b"\t", 1))
    os.utime(replacement, ns=(snapshot.mtime_ns, snapshot.mtime_ns))
    replacement.replace(path)
    with (
        pytest.raises(InputChanged),
        files.Outputs(partial(files.check_same_stat, snapshot)) as out,
    ):
        out.add(path, b"patched")
        out.add(tmp_path / "offload.diff", b"diff")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["applicationHost.config"]
    assert path.read_bytes() == ORIGINAL.replace(b" ", b"\t", 1)


# --- writing -----------------------------------------------------------------------------------

AS_ROOT = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")


@AS_ROOT
def test_a_copy_takes_the_mode_and_owner_of_its_original_not_of_the_file_it_replaces(tmp_path):
    original, backup = tmp_path / "a.config", tmp_path / "a.config.bak"
    original.write_bytes(ORIGINAL)
    original.chmod(0o600)
    backup.write_bytes(b"an earlier backup")  # someone else's, readable by all
    os.chown(backup, 4321, 4321)
    backup.chmod(0o644)
    with files.Outputs() as outputs:
        outputs.add(backup, ORIGINAL, copy_of=original)
    info = backup.stat()
    assert backup.read_bytes() == ORIGINAL
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, 0, 0o600)


def test_an_owner_that_cannot_be_kept_does_not_stop_the_write(tmp_path, monkeypatch):
    """In a user namespace an owner unknown there makes fchown fail with EINVAL, not EPERM."""
    target = tmp_path / "a.config"
    target.write_bytes(ORIGINAL)

    def refuse(descriptor: int, uid: int, gid: int) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "fchown", refuse)
    monkeypatch.setattr(files, "_owner_of", lambda info: (12345, 12345))
    files.write_file(target, b"new")
    assert target.read_bytes() == b"new"


# --- durability --------------------------------------------------------------------------------


def test_outputs_fsync_each_file_and_its_folder_unless_told_the_caller_syncs(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    with files.Outputs() as outputs:
        outputs.add(tmp_path / "a.config", b"a")
    assert len(synced) == 2  # the temporary file, then the folder after the rename
    synced.clear()
    with files.Outputs(durable=False) as outputs:
        outputs.add(tmp_path / "b.config", b"b")
    assert synced == []
    assert (tmp_path / "b.config").read_bytes() == b"b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.config", "b.config"]


def test_folders_on_one_filesystem_are_synced_once(tmp_path, monkeypatch):
    synced: list[int] = []

    def recorder() -> object:
        return lambda descriptor: synced.append(os.fstat(descriptor).st_dev)

    monkeypatch.setattr(files, "_syncfs_function", recorder)
    folders = [tmp_path / name for name in ("a", "b", "c")]
    for folder in folders:
        folder.mkdir()
    shm = Path("/dev/shm")  # a tmpfs, another filesystem, where there is one
    other = [shm] if shm.is_dir() and shm.stat().st_dev != tmp_path.stat().st_dev else []
    files.sync_filesystems([*folders, *other])
    assert synced == [tmp_path.stat().st_dev, *(folder.stat().st_dev for folder in other)]


def test_syncfs_really_runs_here(tmp_path):
    """The libc function is found and accepted on this system (Linux: syncfs; else sync)."""
    (tmp_path / "a").write_bytes(b"a")
    files.sync_filesystems([tmp_path])


def test_a_rename_refused_after_another_says_what_was_written(tmp_path, monkeypatch):
    """A backup is renamed into place before the input; if the input's rename is then refused
    (an immutable or busy file), the error must not say that nothing was changed."""
    config, backup = tmp_path / "a.config", tmp_path / "a.config.bak"
    config.write_bytes(ORIGINAL)
    backup.write_bytes(b"an earlier backup")
    real_replace = Path.replace

    def refuse_the_input(self: Path, target: Path) -> Path:
        if Path(target) == config:
            raise PermissionError(1, "Operation not permitted")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", refuse_the_input)
    with pytest.raises(WriteFailed) as caught, files.Outputs() as outputs:
        outputs.add(backup, ORIGINAL, copy_of=config)
        outputs.add(config, b"patched")
    assert caught.value.message == (
        f"cannot write: Operation not permitted; written before it: {backup}"
    )
    assert config.read_bytes() == ORIGINAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.config", "a.config.bak"]


def test_json_names_a_file_that_is_not_utf8_by_an_escape_that_maps_back_to_its_bytes():
    name = os.fsdecode(b"cas\xff/Stra\xc3\x9fe/applicationHost.config")
    data = files.json_bytes({"file": name})
    text = data.decode("utf-8")  # valid UTF-8
    assert '"cas\\udcff/Straße/applicationHost.config"' in text  # other text stays readable
    assert os.fsencode(json.loads(data)["file"]) == b"cas\xff/Stra\xc3\x9fe/applicationHost.config"


def test_a_filesystem_is_synced_through_a_path_that_opens_or_else_wholly(tmp_path, monkeypatch):
    """A drop-box folder may be write-only: the flush goes through a file written in it, and
    where nothing opens, through sync(2), rather than failing a batch whose files are written."""
    synced: list[int] = []
    whole: list[bool] = []
    monkeypatch.setattr(files, "_syncfs_function", lambda: synced.append)
    monkeypatch.setattr(os, "sync", lambda: whole.append(True))
    folder = tmp_path / "drop-box"
    folder.mkdir()
    written = folder / "applicationHost.config"
    written.write_bytes(b"x")
    real_open = os.open
    refused: set[Path] = {folder}

    def open_unless_refused(path: Path, flags: int, *args: int) -> int:
        if Path(path) in refused:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_unless_refused)
    files.sync_filesystems([folder, written])
    assert len(synced) == 1 and whole == []
    refused.add(written)
    files.sync_filesystems([folder, written])
    assert len(synced) == 1 and whole == [True]


def test_a_file_written_through_a_symlink_is_synced_where_it_lives(tmp_path, monkeypatch):
    shm = Path("/dev/shm")  # a tmpfs, another filesystem, where there is one
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem")
    synced: list[int] = []
    monkeypatch.setattr(
        files, "_syncfs_function", lambda: lambda fd: synced.append(os.fstat(fd).st_dev)
    )
    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        target = Path(elsewhere, "applicationHost.config")
        target.write_bytes(b"x")
        link = tmp_path / "applicationHost.config"
        link.symlink_to(target)
        files.sync_filesystems([link])
    assert synced == [shm.stat().st_dev]


@pytest.mark.parametrize("in_thread", [False, True], ids=["inline", "thread"])
def test_outputs_written_while_rereading_are_put_in_place_only_if_the_input_is_unchanged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, in_thread: bool
) -> None:
    """rereading() reads a large input again while the outputs are written (a small one at
    once): a change of its bytes alone, same size and mtime, still leaves everything as it
    was, and the reading has ended when the block has."""
    if in_thread:
        monkeypatch.setattr(files, "_REREAD_IN_THREAD", 0)
    path = tmp_path / "applicationHost.config"
    path.write_bytes(ORIGINAL)
    snapshot = files.read_input(path)
    with files.rereading(snapshot) as unchanged, files.Outputs(unchanged) as out:
        out.add(tmp_path / "a.diff", b"first")
    assert (tmp_path / "a.diff").read_bytes() == b"first"

    path.write_bytes(ORIGINAL.replace(b" ", b"\t", 1))
    os.utime(path, ns=(snapshot.mtime_ns, snapshot.mtime_ns))
    threads = threading.active_count()
    with (
        pytest.raises(InputChanged),
        files.rereading(snapshot) as unchanged,
        files.Outputs(unchanged) as out,
    ):
        out.add(tmp_path / "a.diff", b"second")
        out.add(tmp_path / "b.diff", b"second")
    assert threading.active_count() == threads
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.diff", "applicationHost.config"]
    assert (tmp_path / "a.diff").read_bytes() == b"first"


def test_a_failed_write_while_rereading_in_a_thread_ends_the_thread_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(files, "_REREAD_IN_THREAD", 0)
    path = tmp_path / "applicationHost.config"
    path.write_bytes(ORIGINAL)
    snapshot = files.read_input(path)
    threads = threading.active_count()
    with (
        pytest.raises(WriteFailed, match="is a directory"),
        files.rereading(snapshot) as unchanged,
        files.Outputs(unchanged) as out,
    ):
        out.add(tmp_path, b"not a file")
    assert threading.active_count() == threads


class _ShortWrites(io.BytesIO):
    """A stream that takes at most `limit` bytes a call, and records what it was offered."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.offered = limit, []

    def write(self, data: Any) -> int:
        self.offered.append(len(data))
        return super().write(bytes(data)[: self.limit])


@pytest.mark.parametrize("limit", [files._CHUNK, 1000])
def test_a_large_output_is_written_a_chunk_at_a_time_and_whole(limit: int) -> None:
    """One write() of 100 MB sometimes took ten times as long as the same bytes in 1 MiB
    writes; a short count (a pipe) is written on from where it stopped."""
    data = bytes(index % 251 for index in range(3 * files._CHUNK + 5))
    stream = _ShortWrites(limit)
    files._write_all(stream, data)
    assert stream.getvalue() == data
    assert max(stream.offered) == files._CHUNK


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_a_second_interrupt_while_temporary_files_are_removed_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C (pressed twice), or the parent's SIGTERM in a worker whose write had
    failed, that came while the temporary files were being removed ended the removal there:
    the files not yet removed stayed."""
    real_discard = files._Staged.discard

    def interrupted_again(staged: files._Staged) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        real_discard(staged)

    monkeypatch.setattr(files._Staged, "discard", interrupted_again)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), files.Outputs() as outputs:
            outputs.add(tmp_path / "applicationHost.config", b"<configuration/>")
            outputs.add(tmp_path / "offload.diff", b"")
            raise KeyboardInterrupt  # the first Ctrl-C, before the files were renamed
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_before_the_outputs_cleanup_began_leaves_files_that_the_run_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python runs a signal's handler as a function is entered: an interrupt taken there in
    Outputs.__exit__ raised before the `try` whose `finally` removes the temporary files, and
    they stayed. remove_temporary_files (where an interrupt ends a run) removes them, and only
    them: the names of temporary files renamed into place or removed may be other files' by
    then."""
    names: list[str] = []
    real_mkstemp = tempfile.mkstemp

    def recorded(*args: Any, **kwargs: Any) -> tuple[int, str]:
        descriptor, name = real_mkstemp(*args, **kwargs)
        names.append(name)
        return descriptor, name

    monkeypatch.setattr(tempfile, "mkstemp", recorded)
    with files.Outputs() as outputs:
        outputs.add(tmp_path / "committed.config", b"new")
    with pytest.raises(ValueError), files.Outputs() as outputs:
        outputs.add(tmp_path / "discarded.config", b"new")
        raise ValueError
    for name in names:  # a later run's temporary files, say
        Path(name).write_bytes(b"another's")

    def interrupted_on_entry(self: files.Outputs, *args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.Outputs, "__exit__", interrupted_on_entry)
    with pytest.raises(KeyboardInterrupt), files.Outputs() as outputs:
        outputs.add(tmp_path / "cut.config", b"new")
        outputs.add(tmp_path / "cut.config.bak", b"old")
    left = {path.name for path in tmp_path.iterdir()}
    assert len(left) == 5
    files.remove_temporary_files()
    assert {path.name for path in tmp_path.iterdir()} == {
        "committed.config",
        *(Path(name).name for name in names[:2]),
    }
