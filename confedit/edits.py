"""Edits as data, and the splice that applies them to the original bytes."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from confedit.document import ElementSpan
from confedit.errors import VerificationFailed


@dataclass(frozen=True, eq=False)
class Edit:
    """Replace input bytes [start, end) by `text` (an insertion when start == end).

    `anchor` is the existing element whose subtree the edit changes, and `creates` the elements
    made below it, outermost first; the innermost one (or the anchor itself, when nothing is
    created) ends up with sslFlags="None". A new <location> has no anchor. Verification rebuilds
    the expected subtree from these fields and compares it with what the new bytes parse to.
    """

    start: int
    end: int
    text: bytes
    anchor: etree._Element | None
    anchor_span: ElementSpan | None
    creates: tuple[str, ...]
    location_path: str

    @property
    def delta(self) -> int:
        return len(self.text) - (self.end - self.start)


def ordered(edits: Sequence[Edit]) -> list[Edit]:
    """Edits by position; insertions at the same offset keep their planned order."""
    result = sorted(edits, key=lambda edit: (edit.start, edit.end))
    for before, after in itertools.pairwise(result):
        if after.start < before.end:
            raise VerificationFailed(
                f"overlapping edits at bytes {before.start}-{before.end} and {after.start}"
            )
    return result


def splice(data: bytes, edits: Sequence[Edit]) -> bytes:
    """Apply the edits, each at its offsets in `data`: every other byte is copied unchanged."""
    view = memoryview(data)  # slices of a view are not copies: the join is the only copy
    pieces: list[bytes | memoryview] = []
    position = 0
    for edit in ordered(edits):
        pieces.append(view[position : edit.start])
        pieces.append(edit.text)
        position = edit.end
    pieces.append(view[position:])
    return b"".join(pieces)


def same_bytes(new: bytes, new_start: int, old: bytes, old_start: int, length: int) -> bool:
    """Whether new[new_start:][:length] == old[old_start:][:length], without copying either."""
    if new_start + length > len(new):
        return False
    return new.startswith(memoryview(old)[old_start : old_start + length], new_start)


class Moves:
    """Where input offsets lie in the output, for any number of questions at log cost each."""

    def __init__(self, steps: Sequence[Edit]) -> None:
        """`steps`: the edits as ordered() returns them (their ends, too, are in order)."""
        self._ends = [edit.end for edit in steps]
        self._index = {edit: index for index, edit in enumerate(steps)}
        # How far the output has moved before each step, and after the last.
        self._shift = list(itertools.accumulate((edit.delta for edit in steps), initial=0))

    def offset(self, offset: int) -> int:
        """Where the input byte at `offset` (one no edit changes) lies in the output."""
        return offset + self._shift[bisect.bisect_right(self._ends, offset)]

    def start(self, edit: Edit) -> int:
        """Where the new text of `edit` (one of the steps) starts in the output."""
        return edit.start + self._shift[self._index[edit]]


def touches(edit: Edit, start: int, end: int) -> bool:
    """Whether an edit changes any byte of [start, end) (an insertion strictly inside counts)."""
    if edit.start == edit.end:
        return start < edit.start < end
    return edit.start < end and edit.end > start
