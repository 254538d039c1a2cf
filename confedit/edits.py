"""Edits as data, and the splice that applies them to the original bytes."""

from __future__ import annotations

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
    """Apply the edits, last offset first in effect: every other byte is copied unchanged."""
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


def moved(edits: Sequence[Edit], offset: int) -> int:
    """Where the input byte at `offset` (one no edit changes) lies in the output."""
    return offset + sum(edit.delta for edit in edits if edit.end <= offset)


def touches(edit: Edit, start: int, end: int) -> bool:
    """Whether an edit changes any byte of [start, end) (an insertion strictly inside counts)."""
    if edit.start == edit.end:
        return start < edit.start < end
    return edit.start < end and edit.end > start
