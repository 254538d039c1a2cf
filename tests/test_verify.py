"""verify.py: a wrong edit is caught before anything is written (the engine checks itself)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confedit import engine, offload, verify, writing
from confedit.document import ElementSpan
from confedit.edits import Edit, ordered, touches
from confedit.errors import VerificationFailed
from confedit.plan import Request
from confedit.verify import _shares_element
from tests.conftest import corpus_files

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
