"""A unified diff built from the edit positions, so its cost follows the edits, not the file.

Each line keeps its own line ending (CRLF, LF or none at the end of the file), so `patch -p1` and
`git apply` turn the input into the output byte for byte, and `patch -R` turns it back.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NamedTuple

from confedit.edits import Edit, ordered
from confedit.files import is_link

NO_NEWLINE = b"\\ No newline at end of file\n"
CONTEXT: Final = 3  # unchanged lines around each change, as diff -u and git diff show
_LF = ord("\n")


def diff_label(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """The path a diff names: relative to the current directory, or the bare file name when the
    file lies outside it (never '..' or an absolute path), always with '/' separators."""
    return relative_label(path, cwd) or Path(path).name


def relative_label(
    path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None
) -> str | None:
    """The path relative to the current directory, with '/' separators; None when the file
    lies outside it."""
    base = Path(cwd) if cwd is not None else logical_cwd()
    # Paths as the user typed them (symlinked folders kept), then as the file system resolves
    # them. A symlink to the file itself is named by the file: git apply and patch refuse to
    # patch a symlink.
    full = base / path
    for spelling in (_resolved, _typed) if is_link(full) else (_typed, _resolved):
        file, folder = spelling(full, base)
        with contextlib.suppress(ValueError):  # not below it (is_relative_to would do this twice)
            return file.relative_to(folder).as_posix()
    return None


def _typed(file: Path, folder: Path) -> tuple[Path, Path]:
    return Path(os.path.normpath(file)), folder


def _resolved(file: Path, folder: Path) -> tuple[Path, Path]:
    # Only when the typed spelling does not do: realpath costs a system call per folder.
    return Path(os.path.realpath(file)), Path(os.path.realpath(folder))


def logical_cwd() -> Path:
    """The current directory as the shell names it ($PWD, symlinks kept), when that is right;
    os.getcwd() resolves symlinks, which would make `a/sub/file` come out as `a/file`."""
    physical = Path.cwd()
    logical = os.environ.get("PWD")
    if logical and Path(logical).is_absolute():
        try:
            if Path(logical).samefile(physical):
                return Path(logical)
        except OSError:
            pass
    return physical


def unified_diff(old: bytes, new: bytes, edits: Sequence[Edit], label: str) -> bytes:
    """The diff of `old` -> `new`, which differ only inside `edits`; b"" when there are none."""
    changes = _changes(old, new, ordered(edits))
    if not changes:
        return b""
    out = [b"--- " + header_name("a/", label), b"+++ " + header_name("b/", label)]
    for hunk in _hunks(changes, CONTEXT):
        out += _hunk(old, hunk, CONTEXT)
    return b"".join(out)


_C_ESCAPES: Final = {
    ord("\a"): b"\\a",
    ord("\b"): b"\\b",
    ord("\t"): b"\\t",
    ord("\n"): b"\\n",
    ord("\v"): b"\\v",
    ord("\f"): b"\\f",
    ord("\r"): b"\\r",
    ord('"'): b'\\"',
    ord("\\"): b"\\\\",
}


def header_name(prefix: str, label: str) -> bytes:
    """A `---`/`+++` line's name, as git writes it, so that git apply and patch -p1 both read it:
    C-quoted when it holds a control character, a quote or a backslash (a newline in a folder
    name would otherwise end the line), else followed by a TAB when it holds a space (patch
    would otherwise end the name there). Non-ASCII names stay UTF-8, as with git's
    core.quotePath=false."""
    raw = (prefix + label).encode("utf-8", "surrogateescape")
    if not any(byte < 0x20 or byte == 0x7F or byte in b'"\\' for byte in raw):
        return raw + (b"\t\n" if b" " in raw else b"\n")
    quoted = b"".join(
        _C_ESCAPES.get(byte) or (b"\\%03o" % byte if byte < 0x20 or byte == 0x7F else bytes([byte]))
        for byte in raw
    )
    return b'"' + quoted + b'"\n'


class Change(NamedTuple):
    """Lines replaced: old lines from line `line` (1-based) at [start, end) by `added`."""

    line: int
    start: int
    end: int
    removed: list[bytes]
    added: list[bytes]
    new_line: int  # where the added lines begin in the new file


def _changes(old: bytes, new: bytes, steps: list[Edit]) -> list[Change]:
    """The lines each edit (or group of edits on one line) changes, found from the edit
    positions: the whole lines around an edit, less the lines that stay the same at either end.
    That is all the matching a one-line rewrite or an inserted block needs; other shapes are
    matched line by line with difflib."""
    changes: list[Change] = []
    line, scanned, shift, line_shift = 1, 0, 0, 0
    for lines_start, lines_end, delta in _touched_lines(old, new, steps):
        new_range = (lines_start + shift, lines_end + shift + delta)
        start, end, removed, added = _trimmed(old, new, (lines_start, lines_end), new_range)
        line += old.count(b"\n", scanned, start)
        scanned = start
        if removed and added and len(removed) + len(added) > 2:
            changes += _matched(Change(line, start, end, removed, added, line + line_shift))
        elif removed or added:
            changes.append(Change(line, start, end, removed, added, line + line_shift))
        shift += delta
        line_shift += len(added) - len(removed)
    return changes


def _matched(change: Change) -> list[Change]:
    """`change` split where difflib finds lines that stay the same inside it."""
    matcher = difflib.SequenceMatcher(None, change.removed, change.added, autojunk=False)
    parts: list[Change] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start = change.start + sum(map(len, change.removed[:i1]))
        end = start + sum(map(len, change.removed[i1:i2]))
        removed, added = change.removed[i1:i2], change.added[j1:j2]
        parts.append(Change(change.line + i1, start, end, removed, added, change.new_line + j1))
    return parts


def _trimmed(
    old: bytes, new: bytes, old_range: tuple[int, int], new_range: tuple[int, int]
) -> tuple[int, int, list[bytes], list[bytes]]:
    """Old lines in `old_range` and the new lines that replace them, less the lines equal at
    either end; with the old range narrowed to match."""
    start, end = old_range
    removed, added = _lines(old[start:end]), _lines(new[new_range[0] : new_range[1]])
    head = _common_head(removed, added)
    tail = _common_head(removed[head:][::-1], added[head:][::-1])
    kept = len(removed) - tail
    start += sum(map(len, removed[:head]))
    end -= sum(map(len, removed[kept:]))
    return start, end, removed[head:kept], added[head : len(added) - tail]


def _touched_lines(old: bytes, new: bytes, steps: list[Edit]) -> list[list[int]]:
    """[start, end, bytes added] of the whole old lines the edits touch, such that the new
    bytes of the range are whole lines too (an edit that removes a line break joins the next
    line to its own). Edits on one line make one range."""
    ranges: list[list[int]] = []
    for edit in steps:
        start = old.rfind(b"\n", 0, edit.start) + 1
        end = _line_end(old, max(edit.end, edit.start + 1) - 1)
        if ranges and (start < ranges[-1][1] or start == ranges[-1][0]):
            ranges[-1][1] = max(ranges[-1][1], end)
            ranges[-1][2] += edit.delta
        else:
            ranges.append([start, end, edit.delta])
    shift, index = 0, 0
    while index < len(ranges):
        current = ranges[index]
        # The old byte before current[1] is unchanged by later ranges (they start at or after
        # it), so it sits at current[1] + shift + delta - 1 in the new bytes.
        while (stop := current[1] + shift + current[2]) < len(new) and new[stop - 1] != _LF:
            following = ranges[index + 1] if index + 1 < len(ranges) else None
            if current[1] < len(old):
                current[1] = _line_end(old, current[1])
            elif following is None:
                break  # cannot happen: past the last range, old and new end alike
            if following is not None and following[0] <= current[1]:
                del ranges[index + 1]
                current[1], current[2] = max(current[1], following[1]), current[2] + following[2]
        shift += current[2]
        index += 1
    return ranges


def _line_end(data: bytes, offset: int) -> int:
    """Just after the line break of the line that holds `offset` (or the end of the data)."""
    found = data.find(b"\n", offset)
    return len(data) if found == -1 else found + 1


def _common_head(a: list[bytes], b: list[bytes]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def _hunks(changes: list[Change], context: int) -> list[list[Change]]:
    """Changes grouped into hunks: those at most two contexts apart (their context lines
    touch or overlap) share one."""
    hunks = [[changes[0]]]
    for change in changes[1:]:
        previous = hunks[-1][-1]
        if change.line - (previous.line + len(previous.removed)) <= 2 * context:
            hunks[-1].append(change)
        else:
            hunks.append([change])
    return hunks


def _hunk(old: bytes, changes: list[Change], context: int) -> list[bytes]:
    first, last = changes[0], changes[-1]
    before = _lines(old[_back_lines(old, first.start, context) : first.start])
    after = _lines(old[last.end : _next_lines(old, last.end, context)])
    body: list[bytes] = [_line(b" ", line) for line in before]
    old_count = new_count = len(before) + len(after)
    for index, change in enumerate(changes):
        if index:  # the unchanged lines since the previous change
            between = _lines(old[changes[index - 1].end : change.start])
            body += [_line(b" ", line) for line in between]
            old_count += len(between)
            new_count += len(between)
        body += [_line(b"-", line) for line in change.removed]
        body += [_line(b"+", line) for line in change.added]
        old_count += len(change.removed)
        new_count += len(change.added)
    body += [_line(b" ", line) for line in after]
    old_first = first.line - len(before)
    new_first = first.new_line - len(before)
    header = (
        b"@@ -" + _range(old_first, old_count) + b" +" + _range(new_first, new_count) + b" @@\n"
    )
    return [header, *body]


def _lines(chunk: bytes) -> list[bytes]:
    """Split after each LF only, as patch does: a CR stays part of its line."""
    parts = chunk.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _back_lines(data: bytes, offset: int, count: int) -> int:
    """Start of the line `count` lines above the line that starts at `offset`."""
    start = offset
    for _ in range(count):
        if start == 0:
            break
        start = data.rfind(b"\n", 0, start - 1) + 1
    return start


def _next_lines(data: bytes, offset: int, count: int) -> int:
    """End of the `count` lines that start at `offset` (fewer at the end of the file)."""
    end = offset
    for _ in range(count):
        if end >= len(data):
            break
        found = data.find(b"\n", end)
        end = len(data) if found == -1 else found + 1
    return end


def _range(first: int, length: int) -> bytes:
    # unified format: an empty range names the line before it
    start = first if length else first - 1
    return str(start).encode() if length == 1 else f"{start},{length}".encode()


def _line(prefix: bytes, line: bytes) -> bytes:
    if line.endswith(b"\n"):
        return prefix + line
    return prefix + line + b"\n" + NO_NEWLINE
