"""A unified diff built from the edit positions, so its cost follows the edits, not the file.

Each line keeps its own line ending (CRLF, LF or none at the end of the file), so `patch -p1` and
`git apply` turn the input into the output byte for byte, and `patch -R` turns it back.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

from confedit.edits import Edit, ordered

NO_NEWLINE = b"\\ No newline at end of file\n"


def diff_label(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """The path a diff names: relative to the current directory, or the bare file name when the
    file lies outside it (never '..' or an absolute path), always with '/' separators."""
    base = Path(cwd) if cwd is not None else _logical_cwd()
    # Paths as the user typed them (symlinks kept), then as the file system resolves them.
    for file, folder in (
        (Path(os.path.normpath(base / path)), base),
        (Path(os.path.realpath(base / path)), Path(os.path.realpath(base))),
    ):
        if file.is_relative_to(folder):
            return file.relative_to(folder).as_posix()
    return Path(path).name


def _logical_cwd() -> Path:
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


def unified_diff(
    old: bytes, new: bytes, edits: Sequence[Edit], label: str, context: int = 3
) -> bytes:
    """The diff of `old` -> `new`, which differ only inside `edits`; b"" when there are none."""
    if not edits:
        return b""
    regions = _regions(old, ordered(edits), context)
    out = [b"--- a/" + label.encode() + b"\n", b"+++ b/" + label.encode() + b"\n"]
    old_line = 1
    old_scanned = 0
    shift_lines = 0
    for (old_start, old_end), (new_start, new_end), delta_lines in regions:
        old_line += old.count(b"\n", old_scanned, old_start)
        old_scanned = old_start
        old_lines = _lines(old[old_start:old_end])
        new_lines = _lines(new[new_start:new_end])
        out += _hunks(old_lines, new_lines, old_line, old_line + shift_lines, context)
        shift_lines += delta_lines
    return b"".join(out)


Region = tuple[tuple[int, int], tuple[int, int], int]


def _regions(old: bytes, steps: list[Edit], context: int) -> list[Region]:
    """Byte ranges of whole lines around the edits, with `context` lines more on each side;
    overlapping ranges merged. Returns (old range, new range, lines added) per region."""
    merged: list[list[int]] = []  # [old_start, old_end, first edit index, last edit index]
    for index, edit in enumerate(steps):
        start = _back_lines(old, edit.start, context)
        end = _forward_lines(old, max(edit.end, edit.start + 1) - 1, context)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][3] = index
        else:
            merged.append([start, end, index, index])
    regions: list[Region] = []
    before = 0  # how far the output has moved at this region
    for start, end, first, last in merged:
        inside = steps[first : last + 1]
        delta = sum(e.delta for e in inside)
        lines = sum(e.text.count(b"\n") - old.count(b"\n", e.start, e.end) for e in inside)
        regions.append(((start, end), (start + before, end + before + delta), lines))
        before += delta
    return regions


def _lines(chunk: bytes) -> list[bytes]:
    """Split after each LF only, as patch does: a CR stays part of its line."""
    parts = chunk.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _back_lines(data: bytes, offset: int, count: int) -> int:
    """Start of the line `count` lines above the one holding `offset`."""
    start = data.rfind(b"\n", 0, offset) + 1
    for _ in range(count):
        if start == 0:
            break
        start = data.rfind(b"\n", 0, start - 1) + 1
    return start


def _forward_lines(data: bytes, offset: int, count: int) -> int:
    """End (after the newline) of the line `count` lines below the one holding `offset`."""
    end = offset
    for _ in range(count + 1):
        found = data.find(b"\n", end)
        if found == -1:
            return len(data)
        end = found + 1
    return end


def _hunks(
    old_lines: list[bytes], new_lines: list[bytes], old_first: int, new_first: int, context: int
) -> list[bytes]:
    out: list[bytes] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(
            b"@@ -"
            + _range(old_first + i1, i2 - i1)
            + b" +"
            + _range(new_first + j1, j2 - j1)
            + b" @@\n"
        )
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [_line(b" ", line) for line in old_lines[a1:a2]]
                continue
            out += [_line(b"-", line) for line in old_lines[a1:a2]]
            out += [_line(b"+", line) for line in new_lines[b1:b2]]
    return out


def _range(first: int, length: int) -> bytes:
    # unified format: an empty range names the line before it
    start = first if length else first - 1
    return str(start).encode() if length == 1 else f"{start},{length}".encode()


def _line(prefix: bytes, line: bytes) -> bytes:
    if line.endswith(b"\n"):
        return prefix + line
    return prefix + line + b"\n" + NO_NEWLINE
