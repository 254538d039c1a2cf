"""Load an applicationHost.config: encoding, hardened parse, and the Document.

lxml knows what the file means but not where its elements are in the bytes, and it cannot write
the file back unchanged. So the Document keeps both: the lxml tree for meaning and the original
bytes; spans.py finds where the elements confedit may edit are in those bytes.
"""

from __future__ import annotations

import bisect
import codecs
import io
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Final, NamedTuple

from lxml import etree

from confedit.background import Background
from confedit.errors import InvalidInput, UsageProblem, VerificationFailed
from confedit.spans import (
    MARKER_TARGET,
    ElementSpan,
    Reduced,
    fold,
    locate,
    locate_last,
    nested_location,
    pair_spans,
    reduced_copy,
    site_of_path,
    sourceline,
    subtree_spans,
    top_level_spans,
)

__all__ = ["Document", "ElementSpan", "Encoding", "Location", "load", "make_parser", "sourceline"]

NOT_APPHOST = "not an applicationHost.config"
# From this size on, a load with a scope leaves the other sites' elements out of its tree (see
# _parse_large): the tree of a 100 MB file would take several times its size. Below it, a plain
# parse is faster.
PRUNE_ABOVE: Final = 8 * 1024 * 1024


@dataclass(frozen=True)
class Encoding:
    """How the file's text is stored; confedit writes its output the same way."""

    name: str  # "utf-8", "utf-16-le" or "utf-16-be"
    bom: bytes

    @property
    def is_utf8(self) -> bool:
        return self.name == "utf-8"

    def encode(self, data: bytes) -> bytes:
        """Turn working UTF-8 bytes back into the file's own encoding."""
        if self.is_utf8:
            return data  # the working bytes are the file bytes, BOM included
        return self.bom + data.decode("utf-8").encode(self.name)

    @property
    def label(self) -> str:
        return self.name.upper() + (" with BOM" if self.bom else "")


_UTF32_BOMS: Final = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")  # checked before UTF-16's
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class Location(NamedTuple):
    """A top-level <location> element. (Tuples: a file has many, and they are cheap to make.)"""

    element: etree._Element
    path: str  # as written in the file ("" when the attribute is missing)
    span: ElementSpan  # its line, when needed: Document.line_at(span.start)


@dataclass(frozen=True, eq=False)
class Document:
    """An immutable, loaded applicationHost.config."""

    name: str
    data: bytes  # working bytes: the file itself if UTF-8, else its UTF-8 transcoding
    encoding: Encoding
    root: etree._Element
    # Case-folded sites confedit looks at (only they are kept in a large file's tree); None: all.
    scope: frozenset[str] | None = None
    # The copy a large file's tree was parsed from (see _parse_large): its <location> elements
    # are found in it, a tenth of the bytes to scan, and their spans mapped back to `data`.
    reduced: Reduced | None = field(default=None, repr=False)
    # Whether the tree was parsed while pruning (see _parse_pruned): it then lacks elements the
    # bytes hold, and no copy of the bytes matches it.
    pruned: bool = False
    _located: list[tuple[Location, ...]] = field(default_factory=list, repr=False)
    _last: list[Location | None] = field(default_factory=list, repr=False)
    _by_element: dict[etree._Element, Location] = field(default_factory=dict, repr=False)
    _line_marks: list[tuple[int, int]] = field(default_factory=lambda: [(0, 1)], repr=False)
    _spans: dict[etree._Element, dict[etree._Element, ElementSpan]] = field(
        default_factory=dict, repr=False
    )
    # The root's children as the tree's bytes hold them (the reduced copy's, if any); and the
    # spans inside the sections of them asked about (see _offset_outside_locations).
    _tops: list[list[tuple[bytes, ElementSpan]]] = field(default_factory=list, repr=False)
    _section_spans: dict[etree._Element, dict[etree._Element, ElementSpan]] = field(
        default_factory=dict, repr=False
    )

    def locations(self) -> tuple[Location, ...]:
        """The top-level <location> elements of the sites in scope (and of the server level),
        in file order, with their byte spans."""
        if not self._located:
            elements = [el for el in self.root.iterchildren("location") if self._in_scope(el)]
            if self.reduced is None:
                found = locate(self.data, elements, self.scope)
            else:
                found = [
                    (element, self.reduced.original_span(span))
                    for element, span in locate(self.reduced.data, elements, self.scope)
                ]
            self._located.append(tuple(self._location(el, span) for el, span in found))
        return self._located[0]

    def location_of(self, element: etree._Element) -> Location | None:
        """The Location of a top-level <location> element in scope; None for any other."""
        if not self._by_element:
            self._by_element.update((location.element, location) for location in self.locations())
        return self._by_element.get(element)

    def last_location(self) -> Location | None:
        """The last top-level <location> of the file, where a new one is appended (it is kept
        in the tree even when its site is out of scope). Found once: each new <location> asks,
        and one of a site out of scope is found by scanning the bytes."""
        if not self._last:
            self._last.append(self._find_last_location())
        return self._last[0]

    def _find_last_location(self) -> Location | None:
        last = next((el for el in reversed(self.root) if el.tag == "location"), None)
        if last is None:
            return None
        located = self.locations()
        if self._in_scope(last):
            return self.location_of(last)
        if self.reduced is not None:  # the copy keeps the last <location>, whatever its site
            span = self.reduced.original_span(locate_last(self.reduced.data, last, 0))
            return self._location(last, span)
        after = located[-1].span.end if located else 0
        return self._location(last, locate_last(self.data, last, after))

    def site_names(self) -> list[str]:
        """The name of every <site> in <sites>, read from the bytes, because a large file's
        tree holds only some of them (see load). A parse that builds no tree."""
        names = _SiteNames()
        parser = etree.XMLParser(
            target=names,  # type: ignore[arg-type]  # the stubs say str | bytes; lxml gives str
            encoding="utf-8",  # `data` is UTF-8, whatever its declaration says
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
        etree.fromstring(self.data, parser)
        return names.names

    def _in_scope(self, element: etree._Element) -> bool:
        return self.scope is None or site_of_path(element.get("path")) in self.scope

    def _location(self, element: etree._Element, span: ElementSpan) -> Location:
        return Location(element, element.get("path", ""), span)

    def line_at(self, offset: int) -> int:
        """The 1-based line of a byte offset, counted from the nearest offset asked before (so
        that asking in file order costs one pass over the bytes)."""
        index = bisect.bisect_right(self._line_marks, (offset, 1 << 62)) - 1
        known_offset, known_line = self._line_marks[index]
        line = known_line + self.data.count(b"\n", known_offset, offset)
        self._line_marks.insert(index + 1, (offset, line))
        return line

    def line_of(self, element: etree._Element) -> int:
        """The line where an element's start tag begins, placed by its byte offset. lxml's
        `sourceline` is where the start tag ends (a line late when its attributes go on
        lines of their own), and libxml2 records lines up to 65535 only: for an
        element past it, it is a neighbour's line, or 65535, or an earlier one."""
        top = element
        while (parent := top.getparent()) is not None and parent.getparent() is not None:
            top = parent
        location = self.location_of(top)
        if location is not None:
            return self.line_at(self.spans_in(location)[element].start)
        offset = self._offset_outside_locations(top, element)
        return sourceline(element) if offset is None else self.line_at(offset)

    def _offset_outside_locations(self, top: etree._Element, element: etree._Element) -> int | None:
        """The offset of `element`, inside `top`, a child of the root that is not a <location>
        in scope. None inside a <location> or <system.applicationHost> of a tree parsed while
        pruning: it lacks elements the bytes hold there. (That parse keeps the whitespace, from
        which libxml2 takes lines past 65535: where the whitespace inside or after the
        element ends, the next line in an indented file.)"""
        if self.pruned and top.tag in ("location", "system.applicationHost"):
            return None
        data = self.reduced.data if self.reduced is not None else self.data
        if top not in self._section_spans:
            span = self._span_of_child(top, data)
            if span is None:
                return None
            try:
                self._section_spans[top] = pair_spans(data, top, span)
            except VerificationFailed:
                return None
        offset = self._section_spans[top][element].start
        return self.reduced.original(offset) if self.reduced is not None else offset

    def _span_of_child(self, top: etree._Element, data: bytes) -> ElementSpan | None:
        """The span of `top`, a child of the root, in `data`, the bytes of the tree."""
        if not self._tops:  # a reduced copy keeps the bytes before the first blanked element
            self._tops.append(top_level_spans(data, self.root_content_start()))
        if self.pruned:
            # It keeps every child of the root but <location>s: the n-th of a name in the tree
            # is the n-th in the bytes.
            spans = [span for name, span in self._tops[0] if name == top.tag.encode()]
            index = sum(1 for _ in top.itersiblings(top.tag, preceding=True))
        else:  # the bytes hold the tree's elements and no others (blanked ones are markers)
            spans = [span for _, span in self._tops[0]]
            index = sum(1 for _ in top.itersiblings(etree.Element, preceding=True))
        return spans[index] if index < len(spans) else None

    def spans_in(self, location: Location) -> dict[etree._Element, ElementSpan]:
        """Byte spans of `location` and every element inside it (computed once, on demand)."""
        if location.element not in self._spans:
            self._spans[location.element] = pair_spans(self.data, location.element, location.span)
        return self._spans[location.element]

    def spans_through(
        self, location: Location, last: etree._Element
    ) -> dict[etree._Element, ElementSpan]:
        """Spans of `last` and the elements inside it (an edit needs no other: it changes
        `last` or appends to it; the tags before it are only counted)."""
        if location.element in self._spans:
            return self._spans[location.element]
        return subtree_spans(self.data, location.element, location.span, last)

    def newline_at(self, offset: int) -> bytes:
        """The line ending used by the line that contains `offset` (the file's own, if mixed)."""
        end = self.data.find(b"\n", offset)
        if end == -1:
            return self.default_newline
        return b"\r\n" if end > 0 and self.data[end - 1 : end] == b"\r" else b"\n"

    @property
    def default_newline(self) -> bytes:
        crlf = self.data.count(b"\r\n", 0, 1 << 16)
        lf = self.data.count(b"\n", 0, 1 << 16)
        return b"\r\n" if crlf and crlf * 2 >= lf else b"\n"

    def root_content_start(self) -> int:
        """The offset just after the <configuration> start tag."""
        position = len(codecs.BOM_UTF8) if self.data.startswith(codecs.BOM_UTF8) else 0
        while item := _PROLOG_ITEM.match(self.data, position):
            position = item.end()
        root_tag = _ROOT_TAG.match(self.data, position)
        if root_tag is None:  # load() has checked the root: this cannot happen
            raise VerificationFailed("cannot find the <configuration> start tag")
        return root_tag.end()

    def indent_of(self, offset: int) -> bytes:
        """The whitespace between the start of the line and `offset`, if only whitespace."""
        line_start = self.data.rfind(b"\n", 0, offset) + 1
        prefix = self.data[line_start:offset]
        return prefix if not prefix.strip() else b""

    def starts_line(self, offset: int) -> bool:
        """Whether only whitespace comes before `offset` on its line."""
        line_start = self.data.rfind(b"\n", 0, offset) + 1
        return not self.data[line_start:offset].strip()


# --- loading ---------------------------------------------------------------------------------

# Used with match() at the text's start (after a UTF-8 BOM): \A would not match there.
_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]*)["']""")
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)
_ROOT_TAG = re.compile(rb"""\s*<configuration(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*>""")
# Markup in UTF-16 LE or BE, after blank characters if any: each ASCII character and a NUL byte.
_UTF16_WITHOUT_BOM = re.compile(rb"(?:[\t\n\r ]\x00)*<\x00|(?:\x00[\t\n\r ])*\x00<")
_UTF8_NAMES: Final = {"utf-8", "utf8"}
_UTF16_NAMES: Final = {"utf-16", "utf-16le", "utf-16be", "unicode"}
# A converter (iconv, PowerShell's Set-Content) changes the bytes but not the declaration,
# which would then be refused the same way: the advice names both.
_CONVERT: Final = 'convert the file to UTF-8 and make its XML declaration say encoding="UTF-8"'


def make_parser() -> etree.XMLParser:
    """An lxml parser that never loads a DTD, resolves an entity or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,  # keeps libxml2's depth and size limits: nesting bombs fail fast
        collect_ids=False,
        # Whitespace between tags is formatting: confedit takes the layout from the bytes and
        # compares trees without it. Not keeping it saves about a tenth of the parse.
        remove_blank_text=True,
    )


def load(raw: bytes, name: str = "<input>", sites: Collection[str] | None = None) -> Document:
    """Check and parse the bytes of an applicationHost.config, or raise InvalidInput.

    With `sites` (names, any case), confedit looks only at the <location> and <site> elements
    of those sites and of the server level. The whole file is still parsed and checked, and in a
    large file (PRUNE_ABOVE) the other sites' elements are left out of the tree (see
    _parse_large), so a file with thousands of other sites costs little memory for them.
    """
    if not isinstance(raw, bytes | bytearray):  # a str has lost the file's encoding and BOM
        raise UsageProblem(
            f"confedit takes the file's bytes (open(path, 'rb').read()), not {type(raw).__name__}"
        )
    if not isinstance(name, str):  # every message names the file with it
        raise UsageProblem(f"name takes the file's name as a str, not {type(name).__name__}")
    if not raw:
        raise InvalidInput("empty file", source=name)
    encoding, data = _decode(raw, name)
    _check_text(data, encoding, name)
    _refuse_doctype(data, name)
    scope = None if sites is None else frozenset(fold(s) for s in sites) | {""}
    root, reduced = _parse(raw, data, name, scope)
    if not isinstance(root.tag, str) or root.tag != "configuration":
        raise InvalidInput(
            f"{NOT_APPHOST}: the root element is <{root.tag}>, expected <configuration>",
            source=name,
            line=sourceline(root),
        )
    if root.find("system.applicationHost/sites") is None:
        raise InvalidInput(
            f"{NOT_APPHOST}: it has no <system.applicationHost><sites> section", source=name
        )
    pruned = scope is not None and len(raw) >= PRUNE_ABOVE and reduced is None
    return Document(
        name=name,
        data=data,
        encoding=encoding,
        root=root,
        scope=scope,
        reduced=reduced,
        pruned=pruned,
    )


def _decode(raw: bytes, name: str) -> tuple[Encoding, bytes]:
    if raw.startswith(_UTF32_BOMS):
        raise InvalidInput(
            "the file is UTF-32 (its byte-order mark says so): confedit reads UTF-8 and UTF-16, "
            f"as IIS writes them; {_CONVERT}",
            source=name,
        )
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            if codec == "utf-8":
                return Encoding(codec, bom), raw
            try:
                text = raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                # The text before the bad code unit decodes: its line breaks give the line.
                before = raw[len(bom) : len(bom) + exc.start].decode(codec)
                raise InvalidInput(
                    f"invalid {codec.upper()} at byte offset {exc.start + len(bom)}",
                    source=name,
                    line=before.count("\n") + 1,
                ) from None
            if not text.lstrip().startswith("<"):
                raise InvalidInput(
                    f"the file starts with a {codec.upper()} byte-order mark, but what follows is "
                    "not UTF-16 XML text",
                    source=name,
                )
            return Encoding(codec, bom), text.encode("utf-8")
    if _UTF16_WITHOUT_BOM.match(raw):  # else "NUL byte at byte offset 1": true, but no help
        raise InvalidInput(
            "the file is UTF-16 without a byte-order mark: confedit reads UTF-16 only with one, "
            f"as Windows writes it; add the byte-order mark, or {_CONVERT}",
            source=name,
        )
    return Encoding("utf-8", b""), raw


def _check_text(data: bytes, encoding: Encoding, name: str) -> None:
    nul = data.find(b"\x00")
    if nul != -1:
        # The line for an editor, and in UTF-8 the offset too, for a hex viewer (a UTF-16
        # file's offsets are those of its transcoding).
        where = f" at byte offset {nul}" if encoding.is_utf8 else ""
        raise InvalidInput(
            f"NUL byte{where}: binary or mis-encoded file",
            source=name,
            line=data.count(b"\n", 0, nul) + 1,
        )
    # A UTF-16 file's working bytes are its UTF-8 transcoding, without the BOM.
    declared = _DECLARED_ENCODING.match(data, len(encoding.bom) if encoding.is_utf8 else 0)
    if declared:
        spelled = declared.group(1).decode("ascii")
        label = spelled.lower()
        if label not in _UTF8_NAMES | _UTF16_NAMES:
            raise InvalidInput(
                f'the XML declaration says encoding="{spelled}": confedit reads UTF-8 and '
                f"UTF-16, as IIS writes them; {_CONVERT}",
                source=name,
                line=1,
            )
        if label not in _names_of(encoding):
            meant = "UTF-8" if encoding.is_utf8 else "UTF-16"
            raise InvalidInput(
                f'the XML declaration says encoding="{spelled}" but the bytes are '
                f'{encoding.label}: make the declaration say encoding="{meant}"',
                source=name,
                line=1,
            )
    if encoding.is_utf8:
        _check_utf8(data, name)


def _names_of(encoding: Encoding) -> set[str]:
    """The declared names that agree with the bytes: a UTF-16 file may say which byte order,
    but not the other one (libxml2 follows the BOM and would not say so)."""
    if encoding.is_utf8:
        return set(_UTF8_NAMES)
    other = "utf-16be" if encoding.name == "utf-16-le" else "utf-16le"
    return _UTF16_NAMES - {other}


def _check_utf8(data: bytes, name: str, chunk: int = 1 << 20) -> None:
    if data.isascii():  # valid UTF-8, found at memory speed
        return
    # Decoded chunk by chunk so that a 100 MB file does not cost a 100 MB string.
    decoder = codecs.getincrementaldecoder("utf-8")()
    for offset in range(0, len(data), chunk):
        pending = len(decoder.getstate()[0])  # bytes of a sequence split across chunks
        try:
            decoder.decode(data[offset : offset + chunk], final=offset + chunk >= len(data))
        except UnicodeDecodeError as exc:
            bad = offset - pending + exc.start
            raise InvalidInput(
                f"invalid UTF-8 at byte offset {bad}",
                source=name,
                line=data.count(b"\n", 0, bad) + 1,
            ) from None


def _refuse_doctype(data: bytes, name: str) -> None:
    position = data.startswith(codecs.BOM_UTF8) * len(codecs.BOM_UTF8)
    while item := _PROLOG_ITEM.match(data, position):
        position = item.end()
    rest = data[position : position + 64].lstrip()
    if rest[:9].upper() == b"<!DOCTYPE" or rest.startswith(b"<!ENTITY"):
        raise InvalidInput(
            "DOCTYPE is not allowed in applicationHost.config",
            source=name,
            line=data.count(b"\n", 0, position + 1) + 1,
        )


_LIBXML_WHERE = re.compile(r", line \d+, column \d+$")
# libxml2 suggests an option of its own for its limits; confedit keeps the limits on purpose.
_LIBXML_HINT = re.compile(r",? (?:use|try) XML_PARSE_HUGE(?: option)?")


def _parse(
    raw: bytes, data: bytes, name: str, scope: frozenset[str] | None
) -> tuple[etree._Element, Reduced | None]:
    reduced = None
    try:
        if scope is None or len(raw) < PRUNE_ABOVE:
            parser = make_parser()
            root = etree.fromstring(raw, parser)
            _raise_logged_error(parser)
        else:
            root, reduced = _parse_large(raw, scope)
        for element in root.iter("location"):
            _check_top_level(element, data, name)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        message = _LIBXML_HINT.sub("", _LIBXML_WHERE.sub("", (exc.msg or str(exc)).strip()))
        message = " ".join(message.split())  # one line
        raise InvalidInput(message, source=name, line=line, column=column) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise InvalidInput("DOCTYPE is not allowed in applicationHost.config", source=name)
    return root, reduced


class _NoTree:
    """A parser target with no callbacks: libxml2 checks the file and builds nothing."""

    def close(self) -> None:
        return None


def _check(raw: bytes) -> None:
    """Raise XMLSyntaxError unless libxml2 reads the whole file as well-formed XML."""
    checker = etree.XMLParser(
        # The stubs want start/end/data methods; their absence is what spares the callbacks.
        target=_NoTree(),  # type: ignore[arg-type]
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    etree.fromstring(raw, checker)
    _raise_logged_error(checker)


def _raise_logged_error(parser: etree.XMLParser) -> None:
    """Raise the first error libxml2 logged and read past (a namespace prefix not defined):
    lxml raises none for a parser with a target, and for a plain one only if no warning (an
    xml:space value not known, say) was logged after it, as it reads the last message alone."""
    errors = parser.error_log.filter_from_errors()
    if errors:
        first = errors[0]
        where = (first.type, first.line, first.column)  # lxml's, which the stubs leave out
        raise etree.XMLSyntaxError(first.message, *where)  # type: ignore[call-arg]


class _SiteNames:
    """A parser target that keeps the name of each <site> in <sites>, and builds nothing."""

    def __init__(self) -> None:
        self.open: list[str] = []
        self.names: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.open.append(tag)
        if self.open == ["configuration", "system.applicationHost", "sites", "site"]:
            self.names.append(attrib.get("name", ""))

    def end(self, _tag: str) -> None:
        self.open.pop()

    def close(self) -> None:
        return None


def _parse_large(raw: bytes, scope: frozenset[str]) -> tuple[etree._Element, Reduced | None]:
    """Check the whole file without building a tree, then parse a copy in which the other
    sites' <location> and <site> elements are blanked out (their line breaks kept, so lines stay
    where they were); the copy is returned too. If it cannot be made with certainty, parse
    while pruning instead."""
    # The check takes a pass over the file (about 0.2 s for 100 MB), and the copy's regex scan
    # and parse about as long: libxml2 checks without Python's lock, in a thread, meanwhile.
    check = Background(partial(_check, raw))
    try:
        reduced = reduced_copy(raw, scope)
        root = _parse_reduced(reduced)
    finally:
        check.wait()
    check.result()  # a malformed file: its own error, whatever the copy made of it
    if root is None:
        return _parse_pruned(raw, scope), None
    return root, reduced


def _parse_reduced(reduced: Reduced | None) -> etree._Element | None:
    """The tree of the copy, without its markers; None if the copy cannot be used."""
    if reduced is None:
        return None
    try:
        root = etree.fromstring(reduced.data, make_parser())
    except etree.XMLSyntaxError:
        return None  # malformed (the check says so), or a blanked span was not one element
    return root if _take_out_markers(root, len(reduced.ends)) else None


def _take_out_markers(root: etree._Element, blanked: int) -> bool:
    """Whether each of the `blanked` runs of the copy was where its elements may be dropped:
    its marker (see spans.MARKER_TARGET) in the root for <location> elements, in the root's
    <sites> for <site> elements. The markers are then taken out of the tree."""
    places = {"locations": root, "sites": root.find("system.applicationHost/sites")}
    markers = [
        (pi, places.get(pi.text or ""))
        for pi in root.iter(etree.PI)
        if isinstance(pi, etree._ProcessingInstruction) and pi.target == MARKER_TARGET
    ]
    placed = [(pi, place) for pi, place in markers if place is not None and pi.getparent() is place]
    if len(placed) != blanked or len(markers) != blanked:  # or the file has some of its own
        return False
    for pi, parent in placed:
        if pi.tail:  # remove() would drop the text after it, which is the file's
            previous = pi.getprevious()
            if previous is None:
                parent.text = (parent.text or "") + pi.tail
            else:
                previous.tail = (previous.tail or "") + pi.tail
        parent.remove(pi)
    return True


def _check_top_level(location: etree._Element, data: bytes, name: str) -> None:
    parent = location.getparent()
    if parent is not None and parent.getparent() is not None:
        # The first such element, in the tree and in the bytes; libxml2's line numbers stop
        # at 65535, and the elements before it may be out of a large file's tree.
        offset = nested_location(data)
        line = sourceline(location) if offset is None else data.count(b"\n", 0, offset) + 1
        raise InvalidInput(
            "<location> is only allowed directly inside <configuration>; IIS would not load "
            "this file",
            source=name,
            line=line,
        )


def _parse_pruned(raw: bytes, scope: frozenset[str]) -> etree._Element:
    """Parse everything, keep the <location> and <site> elements of the sites in scope.

    Elements are dropped as soon as they end; the last top-level <location> is always kept,
    because a new <location> is appended after it.
    """
    events = etree.iterparse(
        io.BytesIO(raw),
        events=("end",),
        tag=("location", "site"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    pending: etree._Element | None = None  # the last out-of-scope <location> so far
    nested = False  # once a nested <location> is seen, nothing is dropped: not its ancestors
    for _, element in events:
        parent = element.getparent()
        if parent is None or nested:
            continue
        if element.tag == "site":
            if _in_sites(parent) and fold(element.get("name", "")) not in scope:
                parent.remove(element)
            continue
        if parent.getparent() is not None:
            nested = True  # kept, with what holds it, and refused once the tree is built
            continue
        if site_of_path(element.get("path")) not in scope:
            if pending is not None:
                parent.remove(pending)
            pending = element
    root: etree._Element = events.root
    return root


def _in_sites(parent: etree._Element) -> bool:
    """Whether `parent` is the root's system.applicationHost/sites, where <site> elements are
    sites (one anywhere else is kept, as the plain parse keeps it)."""
    if parent.tag != "sites":
        return False
    section = parent.getparent()
    return (
        section is not None
        and section.tag == "system.applicationHost"
        and (root := section.getparent()) is not None
        and root.getparent() is None
    )
