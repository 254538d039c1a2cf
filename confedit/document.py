"""Load an applicationHost.config: encoding, hardened parse, and the byte span of elements.

lxml knows what the file means but not where its elements are in the bytes, and it cannot write
the file back unchanged. So the Document keeps both: the lxml tree for meaning and the original
bytes, plus the byte spans of the elements confedit may edit. Spans are found with a small
regular-expression scanner and paired with the lxml elements in document order; the pairing checks
tag names, so a scanner mistake is an error, never a silent wrong edit.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from lxml import etree

from confedit.errors import InvalidInput, VerificationFailed

NOT_APPHOST = "not an applicationHost.config"


def sourceline(element: etree._Element) -> int:
    """The element's line in the input (lxml's stubs type it loosely)."""
    line: int | None = getattr(element, "sourceline", None)
    return line or 0


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


_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class ElementSpan(NamedTuple):
    """Byte offsets of one element in the working bytes (end offsets are exclusive).

    A NamedTuple, not a dataclass: thousands are made per file and tuples are cheap.
    """

    start: int  # the '<' of the start tag
    start_tag_end: int  # just after the start tag's '>'
    end_tag_start: int  # the '<' of the end tag; == end for a self-closed element
    end: int  # just after the end tag's '>'

    @property
    def self_closing(self) -> bool:
        return self.end_tag_start == self.end


@dataclass(frozen=True, eq=False)
class Location:
    """A top-level <location> element."""

    element: etree._Element
    path: str  # as written in the file ("" when the attribute is missing)
    span: ElementSpan
    line: int


@dataclass(frozen=True, eq=False)
class Document:
    """An immutable, loaded applicationHost.config."""

    name: str
    data: bytes  # working bytes: the file itself if UTF-8, else its UTF-8 transcoding
    encoding: Encoding
    root: etree._Element
    locations: tuple[Location, ...]
    _spans: dict[etree._Element, dict[etree._Element, ElementSpan]] = field(
        default_factory=dict, repr=False
    )

    def spans_in(self, location: Location) -> dict[etree._Element, ElementSpan]:
        """Byte spans of `location` and every element inside it (computed once, on demand)."""
        if location.element not in self._spans:
            self._spans[location.element] = _pair_spans(self.data, location.element, location.span)
        return self._spans[location.element]

    def spans_through(
        self, location: Location, last: etree._Element
    ) -> dict[etree._Element, ElementSpan]:
        """Spans of the elements of `location` up to the end of `last` (a cheaper prefix of
        spans_in: an edit never needs what follows the element it changes)."""
        if location.element in self._spans:
            return self._spans[location.element]
        return _pair_spans(self.data, location.element, location.span, last)

    def line_of(self, offset: int) -> int:
        """1-based line number of a byte offset."""
        return self.data.count(b"\n", 0, offset) + 1

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

    def indent_of(self, offset: int) -> bytes:
        """The whitespace between the start of the line and `offset`, if only whitespace."""
        line_start = self.data.rfind(b"\n", 0, offset) + 1
        prefix = self.data[line_start:offset]
        return prefix if not prefix.strip() else b""


# --- loading ---------------------------------------------------------------------------------

_DECLARED_ENCODING = re.compile(rb"""\A<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]*)["']""")
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)
_UTF8_NAMES: Final = {"utf-8", "utf8"}
_UTF16_NAMES: Final = {"utf-16", "utf-16le", "utf-16be", "unicode"}


def make_parser() -> etree.XMLParser:
    """An lxml parser that never loads a DTD, resolves an entity or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,  # keeps libxml2's depth and size limits: nesting bombs fail fast
        collect_ids=False,
    )


def load(raw: bytes, name: str = "<input>") -> Document:
    """Check and parse the bytes of an applicationHost.config, or raise InvalidInput."""
    if not raw:
        raise InvalidInput("empty file", source=name)
    encoding, data = _decode(raw, name)
    _check_text(data, encoding, name)
    _refuse_doctype(data, name)
    root = _parse(raw, name)
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
    return Document(
        name=name,
        data=data,
        encoding=encoding,
        root=root,
        locations=tuple(_locations(data, root, name)),
    )


def _decode(raw: bytes, name: str) -> tuple[Encoding, bytes]:
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            if codec == "utf-8":
                return Encoding(codec, bom), raw
            try:
                text = raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"invalid {codec.upper()} at byte offset {exc.start + len(bom)}", source=name
                ) from None
            if not text.lstrip().startswith("<"):
                raise InvalidInput(
                    f"the file starts with a {codec.upper()} byte-order mark, but what follows is "
                    "not UTF-16 XML text",
                    source=name,
                )
            return Encoding(codec, bom), text.encode("utf-8")
    return Encoding("utf-8", b""), raw


def _check_text(data: bytes, encoding: Encoding, name: str) -> None:
    nul = data.find(b"\x00")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        where = f"byte offset {nul}" if encoding.is_utf8 else f"line {line}"
        raise InvalidInput(f"NUL byte at {where}: binary or mis-encoded file", source=name)
    if encoding.is_utf8:
        _check_utf8(data, name)
    declared = _DECLARED_ENCODING.match(data, len(encoding.bom))
    if declared:
        label = declared.group(1).decode("ascii").lower()
        family = _UTF8_NAMES if encoding.is_utf8 else _UTF16_NAMES
        if label not in family:
            raise InvalidInput(
                f'the XML declaration says encoding="{declared.group(1).decode("ascii")}" '
                f"but the bytes are {encoding.label}",
                source=name,
                line=1,
            )


def _check_utf8(data: bytes, name: str, chunk: int = 1 << 20) -> None:
    # Decoded chunk by chunk so that a 100 MB file does not cost a 100 MB string.
    decoder = codecs.getincrementaldecoder("utf-8")()
    for offset in range(0, len(data), chunk):
        pending = len(decoder.getstate()[0])  # bytes of a sequence split across chunks
        try:
            decoder.decode(data[offset : offset + chunk], final=offset + chunk >= len(data))
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"invalid UTF-8 at byte offset {offset - pending + exc.start}", source=name
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


def _parse(raw: bytes, name: str) -> etree._Element:
    try:
        root = etree.fromstring(raw, make_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        message = _LIBXML_WHERE.sub("", (exc.msg or str(exc)).strip())
        raise InvalidInput(message, source=name, line=line, column=column) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise InvalidInput("DOCTYPE is not allowed in applicationHost.config", source=name)
    return root


# --- spans -----------------------------------------------------------------------------------

# In well-formed XML a '<' outside comments, CDATA and processing instructions always starts
# markup (attribute values and text cannot hold a raw '<'), so these scanners never need to look
# inside attribute values for a '<'; they only need to skip quoted values when looking for '>'.
_OPAQUE = rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"
_ATTRS = rb"""(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*"""
_LOCATION_TAGS = re.compile(
    _OPAQUE + rb"|<location(?=[\s/>])" + _ATTRS + rb"(/?)>|</location\s*>", re.S
)
_TAGS = re.compile(_OPAQUE + rb"|</([^\s>]+)\s*>|<([^\s/>!?]+)" + _ATTRS + rb"(/?)>", re.S)


def _locations(data: bytes, root: etree._Element, name: str) -> Iterator[Location]:
    elements = list(root.iter("location"))
    spans = sorted(_location_spans(data), key=lambda span: span.start)
    if len(elements) != len(spans):
        raise VerificationFailed(
            f"found {len(spans)} <location> tags in the bytes but {len(elements)} in the tree",
            source=name,
        )
    for element, span in zip(elements, spans, strict=True):
        if element.getparent() is root:
            path = element.get("path", "")
            yield Location(element, path, span, sourceline(element))


def _location_spans(data: bytes) -> Iterator[ElementSpan]:
    open_starts: list[tuple[int, int]] = []
    for match in _LOCATION_TAGS.finditer(data):
        text = match.group(0)
        if text.startswith(b"</"):
            start, start_tag_end = open_starts.pop()
            yield ElementSpan(start, start_tag_end, match.start(), match.end())
        elif text.startswith(b"<location"):
            if match.group(1):  # self-closed
                yield ElementSpan(match.start(), match.end(), match.end(), match.end())
            else:
                open_starts.append((match.start(), match.end()))


def _pair_spans(
    data: bytes, element: etree._Element, span: ElementSpan, last: etree._Element | None = None
) -> dict[etree._Element, ElementSpan]:
    """Spans of `element` and its descendant elements, checked tag by tag against lxml;
    all of them, or those up to the end of `last`."""
    elements = iter(element.iter(etree.Element))
    found: dict[etree._Element, ElementSpan] = {}
    stack: list[tuple[etree._Element, int, int]] = []
    for match in _TAGS.finditer(data, span.start, span.end):
        end_name, start_name, empty = match.groups()
        if end_name is not None:
            el, start, start_tag_end = stack.pop()
            _check_name(el, end_name)
            found[el] = ElementSpan(start, start_tag_end, match.start(), match.end())
            if el is last:
                return found
        elif start_name is not None:
            el = next(elements)
            _check_name(el, start_name)
            if empty:
                found[el] = ElementSpan(match.start(), match.end(), match.end(), match.end())
                if el is last:
                    return found
            else:
                stack.append((el, match.start(), match.end()))
    if stack or next(elements, None) is not None:
        raise VerificationFailed(f"could not pair the tags of line {sourceline(element)}")
    return found


def _check_name(element: etree._Element, raw_name: bytes) -> None:
    if element.tag.encode() == raw_name:  # the common case: no namespace prefix
        return
    qname = etree.QName(element)
    expected = f"{element.prefix}:{qname.localname}" if element.prefix else qname.localname
    if raw_name.decode("utf-8") != expected:
        raise VerificationFailed(
            f"tag <{raw_name.decode('utf-8', 'replace')}> in the bytes is <{expected}> in the "
            f"tree (line {sourceline(element)})"
        )
