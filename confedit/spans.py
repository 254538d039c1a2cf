"""Where elements are in the bytes: a small scanner, paired with lxml's elements.

In well-formed XML a '<' outside comments, CDATA and processing instructions always starts
markup (attribute values and text cannot hold a raw '<'), so the scanners here only need to skip
those three and quoted attribute values. Every span is checked against the lxml element it is
paired with (tag name, and path for <location> elements: libxml2's line numbers are wrong past
line 65535), so a scanner mistake becomes an error, never a silent wrong edit.

Cost follows the work: the locations of the sites confedit reasons about are found by one regular
expression that only matches their `path` values, and only the elements inside a location that is
edited are paired one by one. A file with a hundred thousand other sites costs one C-speed scan.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Collection
from typing import Final, NamedTuple

from lxml import etree

from confedit.errors import VerificationFailed


class ElementSpan(NamedTuple):
    """Byte offsets of one element (end offsets are exclusive).

    A NamedTuple, not a dataclass: many are made per file and tuples are cheap.
    """

    start: int  # the '<' of the start tag
    start_tag_end: int  # just after the start tag's '>'
    end_tag_start: int  # the '<' of the end tag; == end for a self-closed element
    end: int  # just after the end tag's '>'

    @property
    def self_closing(self) -> bool:
        return self.end_tag_start == self.end


def sourceline(element: etree._Element) -> int:
    """The line of the element's start tag (lxml's stubs type it loosely).

    libxml2 counts the line where the start tag *ends*, i.e. where its '>' is.
    """
    line: int | None = getattr(element, "sourceline", None)
    return line or 0


_BOM_UTF8: Final = b"\xef\xbb\xbf"
_L: Final = ord("l")
# After a "<": comments, CDATA sections and processing instructions, which every scanner
# below matches whole so that nothing inside them counts as markup.
_SKIPPED: Final = rb"!--.*?-->|!\[CDATA\[.*?\]\]>|\?.*?\?>"
# After a "<": a start tag (group: its name). Inside a document libxml2 has accepted it needs
# no attribute grammar, since only quoted values can hold ">" or "/"; possessive loops keep
# the engine from backtracking.
_START_TAG: Final = rb"""([^\s/>!?]+)(?:[^>"'/]++|"[^"]*+"|'[^']*+')*+"""
_ATTRS: Final = rb"""(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*"""
_LOCATION_TAGS: Final = re.compile(
    rb"<(?:" + _SKIPPED + rb"|location(?=[\s/>])" + _ATTRS + rb"(/?)>|/location\s*>)",
    re.S,
)
# An end tag (group 1), or a start tag (group 2, and 3 for "/>"), or markup that is skipped whole.
_TAGS: Final = re.compile(
    rb"<(?:/([^\s>]+)\s*>|" + _START_TAG + rb"(/?)>|" + _SKIPPED + rb")", re.S
)


def site_of_path(path: str | None) -> str:
    """The case-folded site name of a location path; '' for the server level (as path_key in
    iis.py reads it: "", ".", "/" or "./")."""
    if path in (None, "", ".", "./"):
        return ""
    return fold(path.partition("/")[0])


@functools.lru_cache(maxsize=1 << 15)  # the same few site names and paths, asked many times
def fold(text: str) -> str:
    """The key that compares names as Windows does (ordinal, ignoring case): each character
    taken to its upper case where that is one character, ASCII then lowered. str.casefold()
    goes further: it makes "Straße" equal "strasse", two different names to IIS."""
    if text.isascii():
        return text.lower()
    return "".join(map(_fold_character, text))


@functools.lru_cache(maxsize=1024)
def _fold_character(character: str) -> str:
    upper = character.upper()
    if len(upper) != 1:  # "ß".upper() is "SS": Windows keeps "ß"
        upper = character
    return upper.lower() if upper.isascii() else upper


# --- <location> elements ------------------------------------------------------------------------


def locate(
    data: bytes, elements: list[etree._Element], scope: Collection[str] | None
) -> list[tuple[etree._Element, ElementSpan]]:
    """Pair top-level <location> elements (all of them, or those of the sites in `scope`, in
    document order) with their byte spans."""
    if scope is not None:
        found = _quick_locate(data, elements, scope)
        if found is not None:
            return found
    spans = [
        (span, path)
        for span, path in _all_locations(data)
        if scope is None or site_of_path(path) in scope
    ]
    if [path for _, path in spans] != [element.get("path", "") for element in elements]:
        raise VerificationFailed(
            f"the <location> tags in the bytes ({len(spans)}) do not match the tree's "
            f"({len(elements)})"
        )
    return [(element, span) for element, (span, _) in zip(elements, spans, strict=True)]


def locate_last(data: bytes, element: etree._Element, after: int) -> ElementSpan:
    """The span of `element`, the file's last top-level <location>, which starts after `after`."""
    path = element.get("path", "")
    found = _quick_spans(data, _quick_pattern(frozenset((site_of_path(path),))), after)
    if found and _path(found[-1][0]) == path:
        return found[-1][1]
    every = _all_locations(data)
    if not every or every[-1][1] != path:
        raise VerificationFailed("cannot find the last <location> in the bytes")
    return every[-1][0]


def _all_locations(data: bytes) -> list[tuple[ElementSpan, str]]:
    """Every real <location> element (all are top-level: load() refuses others), with its path."""
    found: list[tuple[ElementSpan, str]] = []
    open_start: re.Match[bytes] | None = None
    for match in _LOCATION_TAGS.finditer(data):
        text = match.group(0)
        if text.startswith(b"</") and open_start is not None:
            span = ElementSpan(open_start.start(), open_start.end(), match.start(), match.end())
            found.append((span, _attribute_path(open_start.group(0))))
            open_start = None
        elif text.startswith(b"<location"):
            if match.group(1):
                span = ElementSpan(match.start(), match.end(), match.end(), match.end())
                found.append((span, _attribute_path(match.group(0))))
            else:
                open_start = match
    return found


def _attribute_path(start_tag: bytes) -> str:
    found = attribute_span(start_tag, 0, len(start_tag), b"path")
    return "" if found is None else attribute_value(start_tag[found[0] : found[1]])


# One attribute of a start tag (groups: its name, then its value in double or single quotes).
_ATTRIBUTE: Final = re.compile(rb"""\s+([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def attribute_span(data: bytes, start: int, end: int, name: bytes) -> tuple[int, int] | None:
    """Where the value of the attribute `name` lies, between its quotes, in the start tag
    data[start:end]; None if the tag has no such attribute. The attributes are read one after
    the other: a search for ` name="` could match inside another attribute's quoted value
    (`note=' path="x"'`)."""
    name_end = _NAME_END.search(data, start + 1, end)
    position = name_end.start() if name_end else end
    while match := _ATTRIBUTE.match(data, position, end):
        if match.group(1) == name:
            group = 2 if match.group(2) is not None else 3
            return match.start(group), match.end(group)
        position = match.end()
    return None


def _path(match: re.Match[bytes]) -> str:
    quoted = match.group("dq")
    return attribute_value(quoted if quoted is not None else match.group("sq"))


# XML's attribute-value normalization (XML 1.0, 3.3.3): a line end (CRLF, CR or LF, after 2.11's
# end-of-line handling) or a tab written as such is read as one space; one written as a
# character reference is kept.
_WHITESPACE: Final = re.compile(r"\r\n|[\t\n\r]")
_REFERENCE: Final = re.compile(r"&(?:#([0-9]+)|#x([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));")
_PREDEFINED: Final = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def attribute_value(raw: bytes) -> str:
    """An attribute's value, written between its quotes in a file that libxml2 has read (so
    with no other references than these), as the parser gives it: html.unescape would read
    &#x80;-&#x9f; as Windows-1252 characters, and keeps literal tabs and line ends."""
    text = raw.decode("utf-8")
    if not text.isprintable():  # most paths are, and need neither step
        text = _WHITESPACE.sub(" ", text)
    return _REFERENCE.sub(_referenced, text) if "&" in text else text


def _referenced(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return _PREDEFINED[name]
    return chr(int(decimal) if decimal is not None else int(hexadecimal, 16))


def _quick_locate(
    data: bytes, elements: list[etree._Element], sites: Collection[str]
) -> list[tuple[etree._Element, ElementSpan]] | None:
    """One regular-expression scan that only matches the `path` values of `sites` (and skips
    comments, CDATA and processing instructions whole); None when it cannot be sure (a site name
    written with character references, or in non-ASCII letters of another case), and the caller
    scans every <location> instead.

    Start tags are paired with elements by path, in order. lxml's line numbers cannot help: past
    line 65535 libxml2 reports later lines than the real ones.
    """
    found = _quick_spans(data, _quick_pattern(frozenset(sites)))
    if [_path(m) for m, _ in found] != [element.get("path", "") for element in elements]:
        return None
    return [(element, span) for element, (_, span) in zip(elements, found, strict=True)]


# What one scan for <location> elements must see: comments, CDATA and processing instructions
# (matched whole, so that nothing inside them counts), end tags of <location> (group 1) and the
# beginning of its start tags, which _quick_pattern then reads. Everything else is skipped in C.
_LOCATION_TOKENS: Final = re.compile(
    rb"<(?:" + _SKIPPED + rb"|(/location\s*>)|location(?=[\s/>]))", re.S
)


def _quick_spans(
    data: bytes, pattern: re.Pattern[bytes], start: int = 0
) -> list[tuple[re.Match[bytes], ElementSpan]]:
    """The <location> start tags outside comments, CDATA and processing instructions that
    `pattern` (see _quick_pattern) matches, each with the span of its element; in one scan."""
    found: list[tuple[re.Match[bytes], ElementSpan]] = []
    opened: re.Match[bytes] | None = None  # <location> elements do not nest (see load())
    for token in _LOCATION_TOKENS.finditer(data, start):
        if token.group(1):
            if opened is not None:
                end = ElementSpan(opened.start(), opened.end(), token.start(), token.end())
                found.append((opened, end))
                opened = None
        elif data[token.start() + 1] == _L and (match := pattern.match(data, token.start())):
            if match.group("empty"):
                empty = ElementSpan(match.start(), match.end(), match.end(), match.end())
                found.append((match, empty))
            else:
                opened = match
    if opened is not None:
        raise VerificationFailed(f"no end tag for the <location> at byte {opened.start()}")
    return found


@functools.lru_cache(maxsize=8)
def _quick_pattern(sites: frozenset[str]) -> re.Pattern[bytes]:
    """The start tag of a <location> whose path is in one of `sites` or at the server level,
    matched at its '<' (the path in group 'dq' or 'sq'; group 'empty' is '/' if self-closed)."""
    names = b"|".join(re.escape(site.encode("utf-8")) for site in sorted(sites) if site)
    site_paths = rb"(?i:" + names + rb")(?:/[^\"'<]*)?" if names else rb"(?!)"
    value = rb"(?:" + site_paths + rb"|\.?)"  # or the server level: "" or "."
    other_attr = rb"\s+(?!path\s*=)[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*')"
    return re.compile(
        rb"<location(?:"
        + other_attr
        + rb")*\s+path\s*=\s*"
        + rb"(?:\"(?P<dq>"
        + value
        + rb")\"|'(?P<sq>"
        + value
        + rb")')"
        + _ATTRS
        + rb"(?P<empty>/?)>"
    )


class Reduced(NamedTuple):
    """A copy of the file with runs of elements blanked out (see reduced_copy), and the way
    back from its offsets to the file's."""

    data: bytes
    ends: list[int]  # offset in `data` just after each blanked run (after its line breaks)
    removed: list[int]  # bytes the copy has fewer than the file up to there

    def original(self, offset: int) -> int:
        """The file's offset of an offset of the copy outside the blanked runs."""
        index = bisect.bisect_right(self.ends, offset) - 1
        return offset + self.removed[index] if index >= 0 else offset

    def original_span(self, span: ElementSpan) -> ElementSpan:
        return ElementSpan(*map(self.original, span))


# What the copy holds in place of each blanked run, by kind: a regular expression cannot tell
# where an element is, so load() checks that each marker stands where its elements may be
# dropped (<location> elements in the root, <site> elements in its <sites>), then takes the
# markers out of the tree. (A <location> elsewhere makes a file IIS would not load.)
MARKER_TARGET: Final = "confedit-blanked"
_MARKERS: Final = {
    kind: b"<?" + MARKER_TARGET.encode() + b" " + kind.encode() + b"?>"
    for kind in ("locations", "sites")
}


def reduced_copy(raw: bytes, scope: frozenset[str]) -> Reduced | None:
    """`raw` with the out-of-scope <location> and <site> elements replaced by a marker and
    their line breaks (so that lines stay where they were), except the file's last <location>,
    after which a new one is appended. None when that cannot be done with certainty, e.g. for
    UTF-16 text or non-ASCII site names (the regular expression knows ASCII case only)."""
    if not raw.startswith((_BOM_UTF8, b"<")) or not all(site.isascii() for site in scope):
        return None
    patterns = _droppable(scope)
    runs = [
        (*m.span(), m.lastgroup)
        for m in patterns.runs.finditer(raw)
        if m.lastgroup in ("locations", "sites")
    ]
    location_runs = [run for run in runs if run[2] == "locations"]
    if location_runs:  # keep the last element of the last run of <location> elements
        start, end, kind = location_runs[-1]
        last = raw.rfind(b"<location", start, end)
        one = patterns.location.match(raw, last + 1)
        if one is None or one.end() != end:
            return None  # '<location' inside a comment of the last element: not certain
        runs[runs.index((start, end, kind))] = (start, last, kind)
    pieces: list[bytes | memoryview] = []
    ends: list[int] = []
    removed: list[int] = []
    view, position, length = memoryview(raw), 0, 0
    for start, end, kind in runs:
        if start == end:
            continue  # the last run was the last <location> alone
        marker, breaks = _MARKERS[str(kind)], raw.count(b"\n", start, end)
        pieces += [view[position:start], marker, b"\n" * breaks]
        length += start - position + len(marker) + breaks
        ends.append(length)
        removed.append((removed[-1] if removed else 0) + end - start - len(marker) - breaks)
        position = end
    pieces.append(view[position:])
    return Reduced(b"".join(pieces), ends, removed)


class _Droppable(NamedTuple):
    runs: re.Pattern[bytes]  # comments etc. (skipped whole), or a run of droppable elements
    location: re.Pattern[bytes]  # one droppable <location>, after its '<'


@functools.lru_cache(maxsize=8)
def _droppable(scope: frozenset[str]) -> _Droppable:
    """Whole <location> and <site> elements whose path or name is certainly outside `scope`.
    A value the parser reads otherwise than its bytes is never certain, so never dropped (see
    _UNCERTAIN). Consecutive ones (whitespace between them) make one match: a file with a
    hundred thousand other sites costs a handful of matches, not a hundred thousand."""
    names = b"|".join(re.escape(site.encode()) for site in sorted(scope) if site)
    # The server level's key "" is always in scope: the paths "", ".", "./" and any that
    # starts with "/" (see site_of_path), and a site named "" (as _parse_pruned reads it).
    server = rb"\.?/?[\"']|/"
    in_scope_path = rb"(?i:" + names + rb")(?:/|[\"'])|" + server if names else server
    in_scope_name = rb"(?i:" + names + rb")[\"']|[\"']" if names else rb"[\"']"
    location = _element(b"location", b"path", in_scope_path)
    site = _element(b"site", b"name", in_scope_name)
    return _Droppable(
        runs=re.compile(
            rb"<(?:"
            + _SKIPPED
            + rb"|(?P<locations>"
            + location
            + rb"(?:\s*+<"
            + location
            + rb")*+)"
            rb"|(?P<sites>" + site + rb"(?:\s*+<" + site + rb")*+))",
            re.S,
        ),
        location=re.compile(location),
    )


# What makes a value's bytes differ from what fold() compares: a character reference, a literal
# tab or line end (the parser reads it as a space), or a non-ASCII byte (fold() takes U+0131 and
# U+017F, dotless i and long s, to "i" and "s"; the ASCII-only (?i) here does not).
_UNCERTAIN: Final = rb"[&\t\n\r\x80-\xff]"


def _element(tag: bytes, attribute: bytes, kept: bytes) -> bytes:
    """A whole element `tag` (without its '<') whose `attribute` does not match `kept`."""
    other = rb"\s+(?!" + attribute + rb"\s*=)[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*')"
    certain = rb"(?:\"(?![^\"]*" + _UNCERTAIN + rb")|'(?![^']*" + _UNCERTAIN + rb"))"
    value = certain + rb"(?!" + kept + rb")[^\"']*[\"']"
    # "Unrolled": text, then each '<' that does not end the element with the text after it,
    # a comment, CDATA section or processing instruction taken whole (a "</location>" in a
    # comment does not end the element); the same language as
    # (?:[^<]++|<(?:SKIPPED|(?!/tag\s*>)))*+, a fifth faster on a 100 MB file. An element that
    # holds a <location> is never dropped: load() must see that one to refuse it.
    body = rb"[^<]*+(?:<(?:" + _SKIPPED + rb"|(?!/" + tag + rb"\s*>|location[\s/>]))[^<]*+)*+"
    head = tag + rb"(?:" + other + rb")*\s+" + attribute + rb"\s*=\s*" + value + _ATTRS
    return head + rb"(?:/>|>" + body + rb"</" + tag + rb"\s*>)"


# --- the end of the document -------------------------------------------------------------------

# Comments, CDATA and processing instructions (skipped whole), or the root's end tag (group 1).
_ROOT_END_TOKENS: Final = re.compile(rb"<(?:" + _SKIPPED + rb"|(/configuration\s*>))", re.S)


def root_end_tag(data: bytes, start: int) -> int:
    """Offset of the </configuration> end tag, found by a scan from `start` (an offset outside
    any comment, CDATA section or processing instruction) that skips those whole: after the
    root, a comment or instruction may hold "</configuration>" text. len(data) if none."""
    found = len(data)
    for token in _ROOT_END_TOKENS.finditer(data, start):
        if token.group(1):
            found = token.start()
    return found


def top_level_spans(data: bytes, start: int) -> list[tuple[bytes, ElementSpan]]:
    """The name and span of each element directly inside the root, in file order, found by a
    scan from `start` (just after the root's start tag) that skips comments, CDATA sections
    and processing instructions whole. It stops at the root's end tag."""
    found: list[tuple[bytes, ElementSpan]] = []
    depth = 0
    opened: tuple[bytes, int, int] = (b"", 0, 0)  # the open top-level element: name, offsets
    for match in _TAGS.finditer(data, start):
        end_name, start_name, empty = match.groups()
        if end_name is not None:
            if depth == 0:
                break  # the root's end tag
            depth -= 1
            if depth == 0:
                name, begin, start_tag_end = opened
                found.append((name, ElementSpan(begin, start_tag_end, match.start(), match.end())))
        elif start_name is not None:
            if depth == 0 and empty:
                end = match.end()
                found.append((start_name, ElementSpan(match.start(), end, end, end)))
            elif depth == 0:
                opened = (start_name, match.start(), match.end())
            depth += not empty
    return found


def nested_location(data: bytes) -> int | None:
    """Offset of the first <location> start tag that is not directly inside the root element
    (comments, CDATA and processing instructions skipped whole); None if there is none."""
    depth = 0
    for match in _TAGS.finditer(data):
        end_name, start_name, empty = match.groups()
        if end_name is not None:
            depth -= 1
        elif start_name is not None:
            if start_name == b"location" and depth > 1:
                return match.start()
            depth += not empty
    return None


# --- elements inside a location -----------------------------------------------------------------

# A start tag (group 1: its name), or markup skipped whole; end tags do not match at all.
_START_TAGS: Final = re.compile(rb"<(?:" + _START_TAG + rb"/?>|" + _SKIPPED + rb")", re.S)


def subtree_spans(
    data: bytes, element: etree._Element, span: ElementSpan, target: etree._Element
) -> dict[etree._Element, ElementSpan]:
    """Spans of `target` (an element inside `element`, whose span is `span`) and of the
    elements inside it: its start tag is found (see _start_of), then `target` and what it
    holds are paired tag by tag (see pair_spans)."""
    start = _start_of(data, element, span, target)
    if start is None:
        return pair_spans(data, element, span, target)  # prefixed names: compare one by one
    return pair_spans(data, target, ElementSpan(start, start, span.end, span.end), target)


def _start_of(
    data: bytes, element: etree._Element, span: ElementSpan, target: etree._Element
) -> int | None:
    """Where the start tag of `target` is, inside `element`; None if the names disagree.

    When `target` is the only element of its name inside, and no comment, CDATA or processing
    instruction is, the first '<name' is its start tag (text and attribute values cannot hold a
    '<'). Otherwise the start tags before it are counted, their names checked against lxml's.
    """
    name = target.tag.encode()
    if (
        data.find(b"<!", span.start, span.end) == -1
        and data.find(b"<?", span.start, span.end) == -1
        and next(itertools.islice(element.iter(target.tag), 1, None), None) is None
    ):
        at = data.find(b"<" + name, span.start, span.end)
        if at != -1 and _NAME_END.match(data, at + 1 + len(name)):
            return at
    elements = list(element.iter(etree.Element))
    index = elements.index(target)
    starts = itertools.islice(
        (m for m in _START_TAGS.finditer(data, span.start, span.end) if m.group(1)), index + 1
    )
    before = list(starts)
    if [m.group(1) for m in before] != [el.tag.encode() for el in elements[: index + 1]]:
        return None
    return before[-1].start()


_NAME_END: Final = re.compile(rb"[\s/>]")


def pair_spans(
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
            if el.tag.encode() != end_name:  # the common case, a name without a prefix, inline
                _check_name(el, end_name)
            found[el] = ElementSpan(start, start_tag_end, match.start(), match.end())
            if el is last:
                return found
        elif start_name is not None:
            el = next(elements)
            if el.tag.encode() != start_name:
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
    """A tag whose bytes are not the element's tag (pair_spans compares those inline): it must
    be the element's prefix and local name."""
    qname = etree.QName(element)
    expected = f"{element.prefix}:{qname.localname}" if element.prefix else qname.localname
    if raw_name.decode("utf-8") != expected:
        raise VerificationFailed(
            f"tag <{raw_name.decode('utf-8', 'replace')}> in the bytes is <{expected}> in the "
            f"tree (line {sourceline(element)})"
        )
