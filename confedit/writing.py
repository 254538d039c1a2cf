"""Writing like IIS does: the bytes of each edit, appended last and indented like siblings,
with the file's own newline (see the README's "What is written")."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import Final, Literal

from lxml import etree

from confedit.document import Document, ElementSpan, Location
from confedit.edits import Edit
from confedit.iis import NONE, SslFlags
from confedit.spans import attribute_span, root_end_tag

Action = Literal["rewritten", "inserted", "created", "unchanged"]
ACCESS: Final = b'<access sslFlags="None" />'
ACCESS_CHAIN: Final = ("system.webServer", "security", "access")  # below a <location>


_TAG_CLOSE: Final = re.compile(rb"\s*/?>\Z")


class EditWriter:
    """Builds the bytes of each edit the way IIS writes: appended last, indented like siblings."""

    def __init__(self, document: Document, locations: Sequence[Location]) -> None:
        self.document = document
        self.locations = locations
        self.edits: list[Edit] = []
        self._unit = _indent_unit(document, locations)
        # Where new <location> elements end the line that </configuration> was on: the index
        # of the last one written there (see _end_line_only_after_the_last).
        self._line_ended: dict[int, int] = {}

    def offload(self, path: str, location: Location | None) -> tuple[Action, int]:
        """Plan sslFlags="None" at `path`; return the action and the input offset it concerns."""
        if location is None:
            return self._new_location(path)
        element, creates = _deepest_existing(location.element)
        spans = self.document.spans_through(location, element)
        if not creates:
            return self._set_attribute(element, spans[element], location.path)
        self._append_child(element, spans, creates, location.path)
        return ("inserted" if creates == ("access",) else "created"), self.edits[-1].start

    def _set_attribute(
        self, access: etree._Element, span: ElementSpan, path: str
    ) -> tuple[Action, int]:
        value = access.get("sslFlags")
        if value is not None and SslFlags.parse(value) == NONE:
            return "unchanged", span.start
        data = self.document.data
        found = attribute_span(data, span.start, span.start_tag_end, b"sslFlags")
        if found:
            (start, end), text = found, b"None"
        else:  # <access> without the attribute: add it after the last attribute
            close = _TAG_CLOSE.search(data, span.start, span.start_tag_end)
            start = end = close.start() if close else span.start_tag_end - 1
            text = b' sslFlags="None"'
        self.edits.append(Edit(start, end, text, access, span, (), path))
        return "rewritten", span.start

    def _append_child(
        self,
        parent: etree._Element,
        spans: dict[etree._Element, ElementSpan],
        creates: tuple[str, ...],
        path: str,
    ) -> None:
        """Append the chain `creates` as the last child of `parent`: on lines of its own,
        indented like siblings; in a parent written inside a line (see _written_inline), on
        that line, without line breaks or indentation, as the file writes that element."""
        doc, data, span = self.document, self.document.data, spans[parent]
        content = data[span.start_tag_end : span.end_tag_start]
        insert_at = span.start if span.self_closing else span.start_tag_end + len(content.rstrip())
        if _written_inline(data, span):
            newline = parent_indent = child_indent = unit = b""
        else:
            # The ending of the line the new text splits: the line before the new text keeps
            # its own ending and the new lines get the same (a file may mix CRLF and LF).
            newline, unit = doc.newline_at(insert_at), self._unit
            parent_indent = (
                self._location_indent(span.start)
                if parent.tag == "location"
                else doc.indent_of(span.start)
            )
            child_indent = self._child_indent(parent, spans, parent_indent)
        block = _nested(creates, child_indent, unit, newline)
        if span.self_closing:
            open_tag = _TAG_CLOSE.sub(b">", data[span.start : span.end])
            close_tag = b"</" + parent.tag.encode() + b">"
            text = open_tag + newline + block + newline + parent_indent + close_tag
            self.edits.append(Edit(span.start, span.end, text, parent, span, creates, path))
            return
        text = newline + block
        if b"\n" not in data[insert_at : span.end_tag_start]:
            text += newline + parent_indent  # the end tag was on the same line: give it its own
        self.edits.append(Edit(insert_at, insert_at, text, parent, span, creates, path))

    def _child_indent(
        self,
        parent: etree._Element,
        spans: dict[etree._Element, ElementSpan],
        parent_indent: bytes,
    ) -> bytes:
        """The indentation of the parent's last child element, if it starts its own line."""
        children = [c for c in parent if isinstance(c.tag, str)]
        if children:  # indent_of is empty when the child does not start its own line
            indent = self.document.indent_of(spans[children[-1]].start)
            if indent:
                return indent
        return parent_indent + self._unit

    def _location_indent(self, start: int) -> bytes:
        """The indentation of the <location> at `start`: its own if it starts its line, else
        that of the nearest one before it that does (else after it), else one unit. What starts
        the line of `</location><location ...>` is not that <location>'s indentation."""
        starts, own, before, after = self._indents
        first, last = bisect.bisect_left(starts, start), bisect.bisect_right(starts, start)
        if first == last and self.document.starts_line(start):  # not a <location>'s start
            return self.document.indent_of(start)
        mine = own[first] if first < last else None
        nearest = before[first] if before[first] is not None else after[last]
        for indent in (mine, nearest):
            if indent is not None:
                return indent
        return self._unit

    @cached_property
    def _indents(
        self,
    ) -> tuple[list[int], list[bytes | None], list[bytes | None], list[bytes | None]]:
        """The locations' starts; the indentation of each that starts its line (None for one
        that does not); of the nearest such among the locations before each index; of the
        first such from each index on. Found once: a search over every location for each edit
        grew with the product of their numbers where locations share lines."""
        starts = [location.span.start for location in self.locations]
        own = _line_indents(self.document.data, starts)
        before: list[bytes | None] = [None]
        for indent in own:
            before.append(indent if indent is not None else before[-1])
        after: list[bytes | None] = [None]
        for indent in reversed(own):
            after.append(indent if indent is not None else after[-1])
        return starts, own, before, after[::-1]

    def _new_location(self, path: str) -> tuple[Action, int]:
        doc, data = self.document, self.document.data
        creates = ("location", *ACCESS_CHAIN)
        last_location = doc.last_location()
        # The scan for </configuration> starts where no comment or instruction can be open.
        close = root_end_tag(
            data, last_location.span.end if last_location else doc.root_content_start()
        )
        if last_location:
            last = last_location.span
            insert_at, indent = last.end, self._location_indent(last.start)
        else:
            insert_at = close
            while insert_at > 0 and data[insert_at - 1 : insert_at].isspace():
                insert_at -= 1
            indent = self._unit
        newline = doc.newline_at(insert_at)
        text = newline + _nested(creates, indent, self._unit, newline, path)
        if b"\n" not in data[insert_at:close]:  # </configuration> would follow on its line
            text += newline
            self._end_line_only_after_the_last(insert_at, newline)
        self.edits.append(Edit(insert_at, insert_at, text, None, None, creates, path))
        return "created", insert_at

    def _end_line_only_after_the_last(self, insert_at: int, newline: bytes) -> None:
        """The new <location> written before at `insert_at` (each begins its own line) loses
        the line ending written for what follows it: the one about to be added ends that line."""
        before = self._line_ended.get(insert_at)
        if before is not None:
            edit = self.edits[before]
            self.edits[before] = replace(edit, text=edit.text.removesuffix(newline))
        self._line_ended[insert_at] = len(self.edits)


def _line_indents(data: bytes, starts: Sequence[int]) -> list[bytes | None]:
    """For each offset of `starts` (in order), the whitespace before it on its line, or None
    where other bytes come before it there. Each line's start is searched for back to the
    offset before only: no further, for a file written on one line."""
    indents: list[bytes | None] = []
    searched = 0
    for start in starts:
        newline = data.rfind(b"\n", searched, start)
        if newline != -1 or not indents:  # else the markup at the offset before is on the line
            prefix = data[newline + 1 : start]
            indents.append(None if prefix.strip() else prefix)
        else:
            indents.append(None)
        searched = start
    return indents


def _deepest_existing(location: etree._Element) -> tuple[etree._Element, tuple[str, ...]]:
    """The deepest element of system.webServer/security/access that `location` has, and the
    names still to create below it. A location may hold <system.webServer> or <security> more
    than once: its <access> is found in any of them (a second one would define the section
    twice), else the first <security>, else the first <system.webServer>."""
    deepest: tuple[etree._Element, tuple[str, ...]] = (location, ACCESS_CHAIN)
    for web_server in location.iterchildren("system.webServer"):
        for security in web_server.iterchildren("security"):
            access = next(security.iterchildren("access"), None)
            if access is not None:
                return access, ()
            if len(deepest[1]) > 1:
                deepest = (security, ("access",))
        if len(deepest[1]) > 2:
            deepest = (web_server, ACCESS_CHAIN[1:])
    return deepest


def _written_inline(data: bytes, span: ElementSpan) -> bool:
    """Whether an element is written inside a line: with no line break inside it, and after
    other markup on its line (`<location ...><system.webServer><security>...`) or holding
    markup of its own on it (`<security><authentication /></security>`). What is added to it
    stays on that line, rather than breaking the line at column 0 or splitting the element
    across lines after its first child. An empty one (`<security></security>`) is opened onto
    lines of their own, as a person would."""
    if b"\n" in data[span.start : span.end]:
        return False
    line_start = data.rfind(b"\n", 0, span.start) + 1
    after_markup = bool(data[line_start : span.start].strip())
    holds_markup = bool(data[span.start_tag_end : span.end_tag_start].strip())
    return after_markup or holds_markup


def _nested(
    names: tuple[str, ...], indent: bytes, unit: bytes, newline: bytes, path: str | None = None
) -> bytes:
    """`names` as nested elements, the innermost being <access sslFlags="None" />."""
    head, *rest = names
    if not rest:
        return indent + ACCESS
    attrs = b' path="' + _escape_attr(path).encode() + b'"' if head == "location" and path else b""
    inner = _nested(tuple(rest), indent + unit, unit, newline, path)
    tag = head.encode()
    return (
        indent + b"<" + tag + attrs + b">" + newline + inner + newline + indent + b"</" + tag + b">"
    )


def _escape_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _indent_unit(document: Document, locations: Sequence[Location]) -> bytes:
    """One level of indentation as the file writes it: from a <location> and its first child
    (both starting their lines), else from the first element inside <configuration>, else IIS's
    four spaces."""
    data = document.data
    for location in locations[:5]:
        span = location.span
        child = data.find(b"<", span.start_tag_end, span.end_tag_start)  # first child's markup
        if child == -1 or not document.starts_line(span.start):
            continue
        outer, inner = document.indent_of(span.start), document.indent_of(child)
        if inner.startswith(outer) and len(inner) > len(outer):
            return inner[len(outer) :]
    return _top_level_indent(document) or b"    "


def _top_level_indent(document: Document) -> bytes:
    """The indentation of the first markup inside <configuration>, if it starts its line."""
    data, position = document.data, document.root_content_start()
    while position < len(data) and data[position : position + 1].isspace():
        position += 1
    return document.indent_of(position) if data[position : position + 1] == b"<" else b""
