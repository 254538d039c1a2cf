"""verify.py: a wrong edit is caught before anything is written (the engine checks itself)."""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from lxml import etree

from confedit import engine, offload, verify, writing
from confedit.document import Document, ElementSpan
from confedit.edits import Edit, Moves, ordered, splice, touches
from confedit.errors import VerificationFailed
from confedit.plan import Request
from confedit.verify import _shares_element
from tests import reference_model as model
from tests.conftest import corpus_files
from tests.properties import CONFIGS, requests

RAW = corpus_files("e2013-cas-mbx.applicationHost.config")[0].read_bytes()


def _break(monkeypatch, change):
    """Make the planner produce wrong edits, to show verification stops them."""
    real_plan = engine.plan

    def broken_plan(config, request):
        the_plan = real_plan(config, request)
        edits = tuple(change(e, config) for e in the_plan.edits)
        return dataclasses.replace(the_plan, edits=edits)

    monkeypatch.setattr(engine, "plan", broken_plan)


@pytest.mark.parametrize(
    "change",
    [
        lambda e, c: dataclasses.replace(e, text=e.text.replace(b"None", b"Ssl")),
        lambda e, c: dataclasses.replace(e, text=e.text.replace(b"<access", b"<acces")),
        lambda e, c: dataclasses.replace(e, text=e.text + b"<extra/>"),
        lambda e, c: dataclasses.replace(e, text=e.text.replace(b" />", b">")),
        lambda e, c: dataclasses.replace(e, start=e.start - 1),
    ],
    ids=["wrong-value", "wrong-name", "extra-element", "not-well-formed", "eats-a-byte"],
)
def test_wrong_edits_are_caught(monkeypatch, change):
    _break(monkeypatch, change)
    with pytest.raises(VerificationFailed) as info:
        offload(RAW, Request(services=("owa", "oab")), name="x")
    assert "this is a bug in confedit" in str(info.value)


def test_an_edit_inside_the_back_end_is_caught(monkeypatch):
    def into_back_end(edit: Edit, config) -> Edit:
        location = next(loc for loc in config.locations if loc.path == "Exchange Back End/owa")
        spans = config.document.spans_in(location)
        security = location.element.find("system.webServer/security")
        span = spans[security]
        return dataclasses.replace(
            edit,
            start=span.end_tag_start,
            end=span.end_tag_start,
            text=b'<access sslFlags="None" />',
            anchor=security,
            anchor_span=span,
        )

    _break(monkeypatch, into_back_end)
    with pytest.raises(VerificationFailed, match="Back End"):
        offload(RAW, Request(services=("owa",)), name="x")


def test_an_edit_that_rewrites_an_unchanged_child_is_caught(monkeypatch):
    """The children of an edited element other than the new one are compared as stubs, since
    their bytes are the input's: an edit reaching back into one must be refused, not outlined
    as unchanged."""

    def into_the_child_before(edit: Edit, config) -> Edit:
        if not edit.creates or edit.anchor is None:
            return edit
        child = config.document.data.rindex(b'enabled="', 0, edit.start) + len(b'enabled="')
        old = config.document.data[child : edit.start]
        return dataclasses.replace(
            edit, start=child, text=b"EVIL" + old[old.index(b'"') :] + edit.text
        )

    _break(monkeypatch, into_the_child_before)
    with pytest.raises(VerificationFailed, match="unchanged child"):
        offload(RAW, Request(services=("owa",)), name="x")


def test_semantic_changes_come_from_xmldiff():
    result = offload(RAW, Request(services=("owa", "oab")), name="x")
    inserted, updated = result.semantic_changes
    assert any("InsertNode" in action and "access" in action for action in inserted)
    assert any("UpdateAttrib" in action and "sslFlags" in action for action in updated)


def test_an_outline_pair_is_checked_by_xmldiff_once_per_process(monkeypatch):
    from xmldiff.diff import Differ

    calls = []
    real_diff = Differ.diff

    def counted(self, left=None, right=None):
        calls.append(left)
        return real_diff(self, left, right)

    monkeypatch.setattr(Differ, "diff", counted)
    verify.forget()  # the earlier tests' pairs
    first = offload(RAW, Request(), name="x")
    assert calls  # the file's distinct pairs, each once
    checked_once = len(calls)
    calls.clear()
    # another server of the fleet: the same outlines, written otherwise around them
    again = offload(RAW.replace(b"<!--", b"<!-- another server"), Request(), name="y")
    assert calls == []
    assert again.semantic_changes == first.semantic_changes
    verify.forget()  # as a measurement of one file's whole cost does
    offload(RAW, Request(), name="x")
    assert len(calls) == checked_once


def test_an_edited_element_is_parsed_once_per_process_for_the_same_bytes(monkeypatch):
    parsed = []
    real_parse = verify._parse_fragment

    def counted(fragment, context):
        parsed.append(fragment)
        return real_parse(fragment, context)

    monkeypatch.setattr(verify, "_parse_fragment", counted)
    verify.forget()  # the earlier tests' elements
    first = offload(RAW, Request(), name="x")
    new_locations = sum(edit.anchor is None for edit in first.edits)
    assert parsed and len(parsed) == len(set(parsed))  # none twice: for its outline and checks
    parsed.clear()
    # another server of the fleet: the same edited elements, written otherwise around them
    again = offload(RAW.replace(b"<!--", b"<!-- another server"), Request(), name="y")
    assert len(parsed) == new_locations  # each made from its edit's own text: parsed every time
    assert again.semantic_changes == first.semantic_changes
    parsed.clear()
    edit = next(e for e in first.edits if e.anchor is not None and e.anchor.tag == "security")
    span = edit.anchor_span
    spelled = RAW[span.start : span.end].replace(b"<authentication>", b"<authentication >", 1)
    assert spelled != RAW[span.start : span.end]
    offload(RAW[: span.start] + spelled + RAW[span.end :], Request(), name="z")
    assert len(parsed) == new_locations + 1  # an element written otherwise is parsed again


def test_two_edits_in_one_element_are_caught(monkeypatch):
    real_plan = engine.plan

    def doubled_plan(config, request):
        the_plan = real_plan(config, request)
        edit = next(e for e in the_plan.edits if e.anchor_span is not None)
        inside = edit.anchor_span.start_tag_end  # an insertion inside the same element
        extra = dataclasses.replace(edit, start=inside, end=inside, text=b"<!-- x -->")
        return dataclasses.replace(the_plan, edits=(*the_plan.edits, extra))

    monkeypatch.setattr(engine, "plan", doubled_plan)
    with pytest.raises(VerificationFailed, match="two edits change one element"):
        offload(RAW, Request(services=("owa", "oab")), name="x")


@st.composite
def ordered_edits(draw: st.DrawFn) -> list[Edit]:
    """Edits in order, not overlapping, each with some span (not always around it)."""
    steps, position = [], 0
    for _ in range(draw(st.integers(1, 8))):
        start = position + draw(st.integers(0, 5))
        end = start + draw(st.integers(0, 5))
        span_start = draw(st.integers(0, end + 10))
        span_end = span_start + draw(st.integers(0, 20))
        span = ElementSpan(span_start, span_start, span_end, span_end)
        steps.append(Edit(start, end, b"x", None, span, (), "p"))
        position = end
    return ordered(steps)


@given(ordered_edits(), st.data())
def test_the_neighbour_check_finds_what_checking_every_edit_finds(steps, data):
    index = data.draw(st.integers(0, len(steps) - 1))
    span = steps[index].anchor_span
    every = any(
        other is not steps[index] and touches(other, span.start, span.end) for other in steps
    )
    assert _shares_element(steps, index) == every


def test_a_second_access_for_one_path_is_caught(monkeypatch):
    """A writer that inserts <access> into the first <security> of a location whose <access>
    sits in another one would define the section twice: IIS would not load the output."""

    def first_security(location):
        return location.find("system.webServer/security"), ("access",)

    monkeypatch.setattr(writing, "_deepest_existing", first_security)
    start = b'<location path="Default Web Site/OAB">'
    second = b"<system.webServer><security><authentication /></security></system.webServer>"
    raw = RAW.replace(start, start + second)
    assert raw != RAW
    with pytest.raises(VerificationFailed, match="second <access>"):
        offload(raw, Request(services=("oab",)), name="x")


@pytest.mark.parametrize("has_security", [True, False])
def test_a_processing_instruction_in_the_edited_element_is_no_internal_error(has_security):
    # xmldiff cannot read a processing instruction (its tag is a function): the outline must
    # not hand it one. The edit goes into <security>, or creates it in <system.webServer>.
    owa = RAW.index(b'<location path="Default Web Site/owa">')
    start, stop = RAW.index(b"<security>", owa), RAW.index(b"</security>", owa)
    raw = RAW if has_security else RAW[:start] + RAW[stop + len(b"</security>") :]
    end = stop if has_security else raw.index(b"</system.webServer>", owa)
    raw = raw[:end] + b"<?stamp </security> ?>" + raw[end:]
    result = offload(raw, Request(services=("owa",)), name="x")
    assert result.output.count(b"<?stamp </security> ?>") == 1
    assert result.outcomes[0].changed


@pytest.mark.parametrize("where", ["before", "after"])
def test_text_written_beside_the_new_element_is_caught(monkeypatch, where):
    """Text before the new <access> becomes the tail of the child before it, text after it the
    new element's own tail: neither is the intended change, and the outlines must show both."""

    def with_text(edit: Edit, config) -> Edit:
        if not edit.creates:
            return edit
        text = b"x" + edit.text if where == "before" else edit.text + b"x"
        return dataclasses.replace(edit, text=text)

    _break(monkeypatch, with_text)
    with pytest.raises(VerificationFailed, match="does not produce the intended element"):
        offload(RAW, Request(services=("owa",)), name="x")


@pytest.mark.parametrize(
    "stray",
    [
        lambda text: b"<!-- c -->x" + text,
        lambda text: b"<?pi data?>x" + text,
        lambda text: text + b"<!-- c -->x",
        lambda text: b"<!-- c -->" + text,
    ],
    ids=["text-after-a-comment", "text-after-an-instruction", "text-at-the-end", "a-comment"],
)
def test_what_a_new_location_writes_beside_it_is_caught(monkeypatch, stray):
    """The new <location> is cut from the output and parsed alone: text after a comment or an
    instruction written with it is the tail of that node, no less the file's content (IIS
    reads it inside <configuration>) than text next to the element."""

    def with_stray(edit: Edit, config) -> Edit:
        return dataclasses.replace(edit, text=stray(edit.text)) if edit.anchor is None else edit

    _break(monkeypatch, with_stray)
    # the file without OAB's <location>: the offload appends a new one
    start = RAW.index(b'<location path="Default Web Site/OAB">')
    raw = RAW[:start] + RAW[RAW.index(b"</location>", start) + len(b"</location>") :]
    with pytest.raises(VerificationFailed, match="not exactly one element"):
        offload(raw, Request(services=("oab",)), name="x")


def test_two_edits_that_add_access_for_one_path_are_caught(monkeypatch):
    """Neither edit finds an <access> in the input, but together they define it twice."""
    real_plan = engine.plan

    def twice_for_owa(config, request):
        the_plan = real_plan(config, request)
        edit = next(e for e in the_plan.edits if e.creates)
        last = config.document.locations()[-1].span.end
        text = (
            f'<location path="{edit.location_path}"><system.webServer><security>'
            '<access sslFlags="None" /></security></system.webServer></location>'
        ).encode()
        chain = ("location", "system.webServer", "security", "access")
        extra = Edit(last, last, text, None, None, chain, edit.location_path)
        return dataclasses.replace(the_plan, edits=(*the_plan.edits, extra))

    monkeypatch.setattr(engine, "plan", twice_for_owa)
    with pytest.raises(
        VerificationFailed, match="two edits add <access> for 'Default Web Site/owa'"
    ):
        offload(RAW, Request(services=("owa",)), name="x")


@pytest.mark.parametrize(
    "where",
    [
        lambda span: span.end - 1,  # inside the end tag of a <location>: no longer well-formed
        lambda span: span.start_tag_end,  # inside a <location>: nested, which IIS refuses
    ],
    ids=["in-an-end-tag", "in-a-location"],
)
def test_a_new_location_inserted_inside_an_element_is_caught(monkeypatch, where):
    real_plan = engine.plan

    def misplaced(config, request):
        the_plan = real_plan(config, request)
        ecp = next(loc for loc in config.locations if loc.path == "Default Web Site/ecp")
        at = where(config.document.location_of(ecp.element).span)
        edits = [
            dataclasses.replace(edit, start=at, end=at) if edit.anchor is None else edit
            for edit in the_plan.edits
        ]
        return dataclasses.replace(the_plan, edits=tuple(edits))

    monkeypatch.setattr(engine, "plan", misplaced)
    # the file without OAB's <location>: the offload appends a new one
    start = RAW.index(b'<location path="Default Web Site/OAB">')
    raw = RAW[:start] + RAW[RAW.index(b"</location>", start) + len(b"</location>") :]
    with pytest.raises(VerificationFailed, match="not inserted between top-level elements"):
        offload(raw, Request(services=("oab",)), name="x")


# The engine's own edits, corrupted ----------------------------------------------------------------
#
# Each example takes a real offload (its document, edits and output) and corrupts it in one
# drawn way. A corruption of the edits that makes the output mean something else than the real
# output does is a wrong result: verify() must raise. Every such corruption keeps what the
# edits say they intend (anchor, created elements, path) or intends what is never right (the
# Back End, a second <access> for a path, a <location> inside another element), so that
# verify() cannot rightly accept a meaning other than the real one; one that changes only
# spacing is harmless, and nothing is asserted then. A byte of the output changed, the edits
# kept, is always wrong: the output is no longer the input with the edits applied, which the
# diff shows.

# lxml, not confedit, says what a file means: the working bytes are UTF-8 whatever they declare.
_PARSER = etree.XMLParser(encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False)
_ACCESS = b'<access sslFlags="None" />'
_CHAIN = ("location", "system.webServer", "security", "access")
_BYTES = b'x<>/"= \n'
_WRONG_VALUES = (b"Ssl", b"none", b"Ssl128", b"SslNegotiateCert")
_START_TAG = re.compile(rb"<([\w.]+)")
_ATTRIBUTE_VALUE = re.compile(rb'\s(?!sslFlags)[\w.:-]+\s*=\s*"')
_SSL_FLAGS = re.compile(rb"""\ssslFlags\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_CORRUPTIONS = (
    "text",
    "beside",
    "value",
    "attribute",
    "shift",
    "output",
    "children",
    "child-changed",
    "two-edits",
    "second-access",
    "back-end",
    "new-location-inside",
)


def _meaning(data: bytes) -> bytes | None:
    """The file's tree as canonical XML (attributes in order, text stripped: spacing is
    formatting), its <location> elements last and by path (IIS reads those of different paths
    in any order; those of one path keep theirs); None if it does not parse."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return None
    for node in root.iter():
        node.text = (node.text or "").strip() or None
        node.tail = (node.tail or "").strip() or None
    locations = root.findall("location")
    for location in sorted(locations, key=lambda element: model.key(element.get("path", ""))):
        root.append(location)  # moved from where it was
    return etree.tostring(root, method="c14n2")


def _new_location(path: str, at: int) -> Edit:
    escaped = path.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    text = (
        f'\n<location path="{escaped}"><system.webServer><security>'
        f"{_ACCESS.decode()}</security></system.webServer></location>"
    )
    return Edit(at, at, text.encode(), None, None, _CHAIN, path)


def _is_back_end(path: str) -> bool:
    return model.key(path).partition("/")[0] == "exchange back end"


def _spans_of(document: Document, element: etree._Element) -> dict[etree._Element, ElementSpan]:
    """The spans inside the <location> that holds `element`."""
    top = element
    while top.getparent() is not None and top.getparent().getparent() is not None:
        top = top.getparent()
    location = document.location_of(top)
    assert location is not None
    return document.spans_in(location)


def _replaced(steps: list[Edit], old: Edit, new: Edit) -> list[Edit]:
    """The edits with `new` in the place of `old` (insertions at one offset keep their order)."""
    return [new if edit is old else edit for edit in steps]


def _overlaps(steps: list[Edit]) -> bool:
    result = sorted(steps, key=lambda edit: (edit.start, edit.end))
    return any(b.start < a.end for a, b in itertools.pairwise(result))


def _text(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """A byte of an edit's new text changed, added or taken away."""
    edit = draw(st.sampled_from(steps))
    text, how = edit.text, draw(st.sampled_from(("change", "add", "remove")))
    at = draw(st.integers(0, len(text) - (how != "add")))
    if how == "change":
        byte = draw(st.sampled_from([bytes([b]) for b in _BYTES if b != text[at]]))
        text = text[:at] + byte + text[at + 1 :]
    elif how == "add":
        text = text[:at] + draw(st.sampled_from([bytes([b]) for b in _BYTES])) + text[at:]
    else:
        text = text[:at] + text[at + 1 :]
    return _replaced(steps, edit, dataclasses.replace(edit, text=text))


def _beside(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """A comment or an instruction, with text after it or not, written before or after an
    edit's new text (text after such a node is that node's tail, not the element's)."""
    edit = draw(st.sampled_from(steps))
    stray = draw(st.sampled_from((b"<!--c-->", b"<?pi c?>"))) + draw(st.sampled_from((b"", b"x")))
    text = stray + edit.text if draw(st.booleans()) else edit.text + stray
    return _replaced(steps, edit, dataclasses.replace(edit, text=text))


def _value(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """sslFlags written with another value."""
    edit = draw(st.sampled_from([edit for edit in steps if b"None" in edit.text]))
    text = edit.text.replace(b"None", draw(st.sampled_from(_WRONG_VALUES)), 1)
    return _replaced(steps, edit, dataclasses.replace(edit, text=text))


def _attribute(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """Another attribute added to an element the edit writes, or one of its values changed."""
    edit = draw(st.sampled_from(steps))
    text = edit.text
    values = [match.end() for match in _ATTRIBUTE_VALUE.finditer(text)]
    if values and draw(st.booleans()):
        at = draw(st.sampled_from(values))
        text = text[:at] + b"x" + text[at:]
    elif text == b"None":  # inside the quotes of the value
        text = b'None" extra="1'
    elif _START_TAG.search(text) is None:  # an attribute added to a start tag
        text += b' extra="1"'
    else:
        at = draw(st.sampled_from([match.end() for match in _START_TAG.finditer(text)]))
        text = text[:at] + b' extra="1"' + text[at:]
    return _replaced(steps, edit, dataclasses.replace(edit, text=text))


def _shift(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """An edit moved by one byte, or reaching one byte further or less far."""
    edit = draw(st.sampled_from(steps))
    start_by, end_by = draw(st.sampled_from(((-1, -1), (1, 1), (-1, 0), (0, 1), (1, 0), (0, -1))))
    start, end = edit.start + start_by, edit.end + end_by
    if not 0 <= start <= end <= len(document.data):
        return steps
    return _replaced(steps, edit, dataclasses.replace(edit, start=start, end=end))


def _edited_element(document: Document, steps: list[Edit], edit: Edit) -> tuple[ElementSpan, bytes]:
    """The span of the element `edit` changes, and that element's bytes in the output."""
    span = edit.anchor_span
    assert span is not None
    before = sum(other.delta for other in steps if other.end <= span.start and other is not edit)
    start = span.start + before
    return span, splice(document.data, steps)[start : start + span.end - span.start + edit.delta]


def _children(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """The edited element written whole, with one of its children (the new one among them)
    dropped, written twice, swapped with another or changed inside."""
    edit = draw(st.sampled_from([edit for edit in steps if _child_ranges(document, edit)]))
    span, element = _edited_element(document, steps, edit)
    ranges = _child_ranges(document, edit)
    k = draw(st.integers(0, len(ranges) - 1))
    (a, b), child = ranges[k], element[ranges[k][0] : ranges[k][1]]
    how = draw(st.sampled_from(("drop", "twice", "swap", "change")))
    if how == "drop":
        element = element[:a] + element[b:]
    elif how == "twice":
        element = element[:b] + child + element[b:]
    elif how == "swap" and len(ranges) > 1:
        j = draw(st.sampled_from([j for j in range(len(ranges)) if j != k]))
        (a, b), (c, d) = sorted((ranges[j], ranges[k]))
        element = element[:a] + element[c:d] + element[b:c] + element[a:b] + element[d:]
    elif b'="' in child:
        at = a + child.index(b'="') + 2
        element = element[:at] + b"x" + element[at:]
    else:  # a child without attributes: its name changed
        element = element[: a + 1] + b"x" + element[a + 1 :]
    whole = dataclasses.replace(edit, start=span.start, end=span.end, text=element)
    return _replaced(steps, edit, whole)


def _child_changed(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """The edited element written whole, with a child it had before changed inside (its
    outline is a stub: only the bytes it keeps say it is unchanged)."""
    edit = draw(st.sampled_from([edit for edit in steps if _had_children(document, edit)]))
    span, element = _edited_element(document, steps, edit)
    ranges = _child_ranges(document, edit)[: -1 if edit.creates else None]
    a, b = draw(st.sampled_from(ranges))
    child = element[a:b]
    at = a + child.index(b'="') + 2 if b'="' in child else a + 1  # a value, else the name
    whole = dataclasses.replace(
        edit, start=span.start, end=span.end, text=element[:at] + b"x" + element[at:]
    )
    return _replaced(steps, edit, whole)


def _had_children(document: Document, edit: Edit) -> bool:
    return (
        edit.anchor is not None and next(edit.anchor.iterchildren(etree.Element), None) is not None
    )


def _child_ranges(document: Document, edit: Edit) -> list[tuple[int, int]]:
    """Where the children of the edited element, the new one included, lie in its output bytes."""
    anchor, span = edit.anchor, edit.anchor_span
    if anchor is None or span is None:
        return []
    spans = _spans_of(document, anchor)
    ranges = []
    for child in anchor.iterchildren(etree.Element):
        child_span = spans[child]
        moved = edit.delta if child_span.start >= edit.end else 0
        offset = child_span.start - span.start + moved
        ranges.append((offset, offset + child_span.end - child_span.start))
    if edit.creates:
        text, inside = edit.text, edit.start - span.start
        first = text.index(b">") + 1 if span.self_closing else 0  # after the opened start tag
        last = text.rindex(b"</") if span.self_closing else len(text)
        ranges.append((inside + text.index(b"<", first), inside + text.rindex(b">", 0, last) + 1))
    return sorted(ranges)


def _two_edits(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """A second edit, a comment, inside an element an edit changes."""
    edit = draw(st.sampled_from([edit for edit in steps if edit.anchor_span is not None]))
    span = edit.anchor_span
    assert span is not None
    at = draw(st.integers(span.start + 1, span.end - 1))
    extra = dataclasses.replace(edit, start=at, end=at, text=b"<!--x-->")
    return [*steps, extra]


def _second_access(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """<access> added for a path that has one, in the input or by another edit: in a new
    <location> after one of the file's, or beside the <access> an edit rewrites."""
    ends = [location.span.end for location in document.locations()]
    paths = _paths_with_access(document, steps) if ends else []
    rewrites = [edit for edit in steps if edit.anchor is not None and not edit.creates]
    if not rewrites or (paths and draw(st.booleans())):
        return [*steps, _new_location(draw(st.sampled_from(paths)), draw(st.sampled_from(ends)))]
    edit = draw(st.sampled_from(rewrites))
    assert edit.anchor is not None
    security = edit.anchor.getparent()
    span = _spans_of(document, security)[security]
    at = span.end_tag_start
    beside = Edit(at, at, _ACCESS, security, span, ("access",), edit.location_path)
    return _replaced(steps, edit, beside)


def _paths_with_access(document: Document, steps: list[Edit]) -> list[str]:
    """The paths an edit adds <access> for, and those of the <location> elements that hold one."""
    return [edit.location_path for edit in steps if edit.creates] + [
        location.path
        for location in document.locations()
        if location.element.find("system.webServer/security/access") is not None
    ]


def _back_end(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """sslFlags="None" written in an Exchange Back End <location>."""
    location, access = draw(st.sampled_from(_back_end_access(document)))
    span = document.spans_in(location)[access]
    value = _SSL_FLAGS.search(document.data, span.start, span.start_tag_end)
    assert value is not None
    start, end = value.span(1) if value.group(1) is not None else value.span(2)
    return [*steps, Edit(start, end, b"None", access, span, (), location.path)]


def _back_end_access(document: Document) -> list[tuple[object, etree._Element]]:
    """The Back End's <location> elements whose <access> has an sslFlags other than "None"."""
    found = []
    for location in document.locations():
        access = location.element.find("system.webServer/security/access")
        value = None if access is None else access.get("sslFlags")
        if _is_back_end(location.path) and value not in (None, "None"):
            found.append((location, access))
    return found


def _new_location_inside(draw: st.DrawFn, document: Document, steps: list[Edit]) -> list[Edit]:
    """A new <location> inserted inside another <location> (the Back End's among them)."""
    edit = draw(st.sampled_from([edit for edit in steps if edit.anchor is None]))
    span = draw(st.sampled_from(document.locations())).span
    at = draw(st.integers(span.start + 1, span.end - 1))
    return _replaced(steps, edit, dataclasses.replace(edit, start=at, end=at))


def _output(document: Document, steps: list[Edit], output: bytes, draw: st.DrawFn) -> bytes:
    """A byte of the output changed, added or taken away, the edits left as they are: in a gap
    between the edits or in an edit's text, drawn first so that the last gap gets its share.
    Whatever it means, the output is then not the input with the edits applied."""
    moves = Moves(steps)
    regions = [(moves.start(edit), moves.start(edit) + len(edit.text)) for edit in steps]
    bounds = [0, *(at for region in regions for at in region), len(output)]
    pieces = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]  # the gaps
    if regions and draw(st.booleans()):
        pieces = regions
    start, end = draw(st.sampled_from([piece for piece in pieces if piece[0] < piece[1]]))
    how = draw(st.sampled_from(("change", "add", "remove")))
    at = draw(st.integers(start, end - 1))
    if how == "add":
        return output[:at] + b"x" + output[at:]
    if how == "remove":
        return output[:at] + output[at + 1 :]
    byte = draw(st.sampled_from([bytes([b]) for b in _BYTES if b != output[at]]))
    return output[:at] + byte + output[at + 1 :]


_EDIT_CORRUPTIONS = {
    "text": _text,
    "beside": _beside,
    "value": _value,
    "attribute": _attribute,
    "shift": _shift,
    "children": _children,
    "child-changed": _child_changed,
    "two-edits": _two_edits,
    "second-access": _second_access,
    "back-end": _back_end,
    "new-location-inside": _new_location_inside,
}


def _applicable(document: Document, steps: list[Edit]) -> list[str]:
    anchored = [edit for edit in steps if edit.anchor_span is not None]
    needs = {
        "text": bool(steps),
        "beside": bool(steps),
        "value": any(b"None" in edit.text for edit in steps),
        "attribute": bool(steps),
        "shift": bool(steps),
        "children": any(_child_ranges(document, edit) for edit in anchored),
        "child-changed": any(_had_children(document, edit) for edit in anchored),
        "two-edits": bool(anchored),
        "second-access": any(edit.anchor is not None and not edit.creates for edit in steps)
        or bool(document.locations() and _paths_with_access(document, steps)),
        "back-end": bool(_back_end_access(document)),
        "new-location-inside": any(edit.anchor is None for edit in steps)
        and bool(document.locations()),
        "output": True,
    }
    return [name for name in _CORRUPTIONS if needs[name]]


@given(CONFIGS.flatmap(lambda config: st.tuples(st.just(config), requests(config))), st.data())
def test_verify_refuses_the_real_edits_corrupted(case, data):
    """Each corruption that applies to the offload, drawn in its own way (most files give few
    edits inside an existing element: every kind is tried on every example)."""
    config, request = case
    result = offload(config.raw, request)
    document, steps, output = result.document, ordered(result.edits), result.output_data
    for kind in _applicable(document, steps):
        if kind == "output":
            corrupted, edits, wrong = _output(document, steps, output, data.draw), steps, True
        else:
            edits = _EDIT_CORRUPTIONS[kind](data.draw, document, steps)
            if _overlaps(edits):  # splice() itself refuses them: no output to verify
                event(f"{kind}: overlapping, skipped")
                continue
            corrupted = splice(document.data, edits)
            wrong = _meaning(corrupted) != _meaning(output)
        event(f"{kind}: {'wrong' if wrong else 'harmless, skipped'}")
        if wrong:
            with pytest.raises(VerificationFailed):
                note(f"{kind}: {[(e.start, e.end, e.text) for e in edits]}")
                verify.verify(document, edits, corrupted)


def test_an_output_whose_edited_bytes_are_not_the_edits_text_is_caught():
    """The diff is made from the edits: an output that means the same but holds other bytes
    where an edit writes (a space moved inside the new <access>, the length kept) is not the
    file the diff shows."""
    result = offload(RAW, Request(services=("owa",)), name="x")
    document, steps, output = result.document, ordered(result.edits), result.output_data
    written = b'<access sslFlags="None" />'
    at = Moves(steps).start(steps[0]) + steps[0].text.index(written)
    assert output[at : at + len(written)] == written
    moved = output[:at] + b'<access  sslFlags="None"/>' + output[at + len(written) :]
    with pytest.raises(VerificationFailed, match="is not the text of the edit"):
        verify.verify(document, steps, moved)
