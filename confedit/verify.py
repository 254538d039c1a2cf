"""Post-conditions checked on every result before anything is written.

The output is the input with some spans replaced. Four checks together prove that it means
exactly "the input plus the intended sslFlags edits", at a cost that follows the edits rather than
the file size:

1. bytes: every byte outside the edited spans is identical to the input, and every byte inside
   one is the edit's text (one comparison per gap and per edit);
2. meaning: each changed element (one edit each), cut from the output and parsed on its own,
   equals the input's element with the intended change applied, and xmldiff finds exactly that
   change and nothing else (its other children are compared as stubs: the edit must replace
   none of their bytes).
   A well-formed element replaced by a well-formed element (or a new <location> inserted
   between two top-level elements) keeps the document well-formed, so the whole output re-parses;
3. one definition per path: an edit that creates <access> does so where no <location> of that
   path has one (IIS refuses a section defined twice for one path);
4. the Exchange Back End: no edit touches any of its <location> elements, and their bytes are
   identical.

A failure is a bug in confedit: VerificationFailed, nothing is written.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Sequence
from typing import Final, TypeVar

from lxml import etree

from confedit.document import Document, make_parser
from confedit.edits import Edit, ordered, same_bytes, touches
from confedit.errors import VerificationFailed
from confedit.exchange import BACK_END_SITE
from confedit.iis import path_key
from confedit.spans import root_end_tag, site_of_path

ACCESS_XPATH: Final = "system.webServer/security/access"  # below a <location>
# An outline pair as it is checked: before, after (serialised) and the elements the edit creates.
Shape = tuple[bytes, bytes, tuple[str, ...]]
K = TypeVar("K")
V = TypeVar("V")


def verify(document: Document, edits: Sequence[Edit], output: bytes) -> list[list[str]]:
    """Check `output` against the input and the edits; return xmldiff's actions per edit (for
    a new <location>, which xmldiff does not compare, one line that says what was inserted)."""
    name = document.name
    steps = ordered(edits)
    try:
        _check_output_bytes(document.data, steps, output)
        actions = []
        shift = 0  # how far the output has moved at this edit, from the edits before it
        for index, edit in enumerate(steps):
            if _shares_element(steps, index):
                raise VerificationFailed("two edits change one element")
            at = edit.start + shift
            _check_children_kept(document.data, edit)
            actions.append(_check_meaning(document, edit, output, at))
            shift += edit.delta
        _check_new_locations_at_top_level(document, [e for e in steps if e.anchor is None])
        _check_access_defined_once(document, steps)
        _check_back_end(document, steps, output)
    except VerificationFailed as exc:
        exc.source = name
        raise
    return actions


def _check_output_bytes(data: bytes, steps: list[Edit], output: bytes) -> None:
    """The output is the input with each edit's span replaced by its text, byte for byte: the
    bytes between the edits are the input's, and those of each edit its text (the diff is made
    from the edits, and must show the file written)."""
    position = shift = 0
    for edit in [*steps, None]:
        end = edit.start if edit else len(data)
        if not same_bytes(output, position + shift, data, position, end - position):
            raise VerificationFailed(f"bytes {position}-{end} outside the edits changed")
        if edit:
            if not same_bytes(output, edit.start + shift, edit.text, 0, len(edit.text)):
                raise VerificationFailed(
                    f"the output at byte {edit.start} is not the text of the edit of "
                    f"{edit.location_path!r}"
                )
            shift += edit.delta
            position = edit.end
    if len(output) != len(data) + shift:
        raise VerificationFailed("the output has bytes beyond the edits")


def _shares_element(steps: list[Edit], index: int) -> bool:
    """Whether another edit changes the element that steps[index] changes. The steps are in
    order and do not overlap, so their ends are in order too: only the edits next to it, while
    they reach into the element, can touch it."""
    span = steps[index].anchor_span
    if span is None:  # a new <location>: it changes no existing element
        return False
    before = index - 1
    while before >= 0 and steps[before].end > span.start:
        if touches(steps[before], span.start, span.end):
            return True
        before -= 1
    after = index + 1
    while after < len(steps) and steps[after].start < span.end:
        if touches(steps[after], span.start, span.end):
            return True
        after += 1
    return False


def _check_children_kept(data: bytes, edit: Edit) -> None:
    """The outlines compare the children of the edited element as stubs, their bytes being the
    input's: that holds only if the edit replaces none of the content between its tags (it
    changes the start tag, replaces a self-closed element, or inserts after the content)."""
    span = edit.anchor_span
    if span is None:  # a new <location>: it replaces nothing
        return
    if edit.start < span.start or edit.end > span.end:
        raise VerificationFailed(f"the edit of {edit.location_path!r} reaches outside its element")
    start, end = max(edit.start, span.start_tag_end), min(edit.end, span.end_tag_start)
    if start < end and data[start:end].strip():
        raise VerificationFailed(
            f"the edit of {edit.location_path!r} at byte {edit.start} rewrites an unchanged child"
        )


# The outline pairs that passed both checks, with their xmldiff actions. The checks of a pair
# depend on nothing else, and the same few pairs recur in every file of a fleet (the Exchange
# virtual directories hold the same sections on every server): a pair checked once in this
# process is not checked again.
_CHECKED: Final[dict[Shape, tuple[str, ...]]] = {}
# The outline of each changed element parsed from an output, serialised, by the element's bytes
# (and the namespaces around it): the same bytes parse to the same element, and the files of a
# fleet hold the same edited elements. Only elements of up to _KEYED_UP_TO bytes, their key.
_AFTER_OUTLINES: Final[dict[tuple[bytes, bytes, bool], bytes]] = {}
_KEYED_UP_TO: Final = 4096
_REMEMBERED: Final = 256  # entries per table; emptied when full


def forget() -> None:
    """Empty what this process remembers of the files checked before (_CHECKED and
    _AFTER_OUTLINES): for a measurement of what one file costs a process that meets it first."""
    _CHECKED.clear()
    _AFTER_OUTLINES.clear()


def _check_meaning(document: Document, edit: Edit, output: bytes, at: int) -> list[str]:
    """Parse the changed element from the output (where the edit starts at offset `at`) and
    compare it with the expected change.

    Most edited locations hold the same sections, so their outlines are often alike: an outline
    pair is checked once (see _CHECKED).
    """
    anchor, span = edit.anchor, edit.anchor_span
    if anchor is None or span is None:  # a new <location>
        after = _parse_fragment(output[at : at + len(edit.text)], document.root)
        _check_same(_expected(None, edit), after, edit)
        return [f'insert <location path={edit.location_path!r}> with <access sslFlags="None" />']
    start = at - (edit.start - span.start)
    fragment = output[start : start + span.end - span.start + edit.delta]
    created = bool(edit.creates)
    before_outline = _outline(anchor, created=False)
    after_text, after_outline = _after_outline(fragment, anchor, created)
    shape = (etree.tostring(before_outline), after_text, edit.creates)
    actions = _CHECKED.get(shape)
    if actions is None:
        if after_outline is None:  # its text was remembered, the pair is new: parse it now
            after_outline = _outline(_parse_fragment(fragment, anchor), created=created)
        _check_same(_expected(before_outline, edit), after_outline, edit)
        actions = tuple(_semantic_actions(before_outline, after_outline, edit))
        _remember(_CHECKED, shape, actions)
    return list(actions)


def _after_outline(
    fragment: bytes, context: etree._Element, created: bool
) -> tuple[bytes, etree._Element | None]:
    """The outline of the element `fragment` holds, serialised (see _AFTER_OUTLINES), and the
    outline itself when it was parsed here (None when its text was remembered)."""
    key = (fragment, _declarations(context), created)
    text = _AFTER_OUTLINES.get(key)
    if text is not None:
        return text, None
    outline = _outline(_parse_fragment(fragment, context), created=created)
    text = etree.tostring(outline)
    if len(fragment) <= _KEYED_UP_TO:
        _remember(_AFTER_OUTLINES, key, text)
    return text, outline


def _remember(table: dict[K, V], key: K, value: V) -> None:
    if len(table) >= _REMEMBERED:
        table.clear()  # one step: safe when threads share the module
    table[key] = value


def _check_same(expected: etree._Element, actual: etree._Element, edit: Edit) -> None:
    # Equal serialisations are the common case and settle it at C speed; same_tree decides
    # the rest (attributes in another order, whitespace).
    if etree.tostring(expected) == etree.tostring(actual):
        return
    if not same_tree(expected, actual):
        raise VerificationFailed(
            f"the edit of {edit.location_path!r} at byte {edit.start} does not produce the "
            "intended element"
        )


# One parser for every fragment: lxml serialises its use across threads.
_FRAGMENT_PARSER: Final = make_parser()


def _declarations(context: etree._Element) -> bytes:
    """The namespace prefixes in scope at `context`, as attributes of a wrapper element."""
    return b"".join(
        b" xmlns:" + prefix.encode() + b'="' + uri.encode() + b'"'
        for prefix, uri in context.nsmap.items()
        if prefix
    )


def _parse_fragment(fragment: bytes, context: etree._Element) -> etree._Element:
    """Parse one element cut from the output, with the namespaces in scope at its place."""
    declarations = _declarations(context)
    try:
        wrapper = etree.fromstring(
            b"<fragment" + declarations + b">" + fragment + b"</fragment>", _FRAGMENT_PARSER
        )
    except etree.XMLSyntaxError as exc:
        raise VerificationFailed(f"an edited element does not parse: {exc}") from None
    # Only the element, whitespace around it: a comment or instruction beside it would be
    # written too, and the text after one is its tail, which no check of the element sees.
    nodes: list[etree._Element] = list(wrapper)
    if (
        len(nodes) != 1
        or not isinstance(nodes[0].tag, str)
        or (wrapper.text or "").strip()
        or (nodes[0].tail or "").strip()
    ):
        raise VerificationFailed("an edited span is not exactly one element")
    return nodes[0]


def _expected(anchor: etree._Element | None, edit: Edit) -> etree._Element:
    names = list(edit.creates)
    if anchor is None:
        element = etree.Element(names.pop(0), path=edit.location_path)
        result = element
    else:
        result = element = copy.deepcopy(anchor)
        result.tail = None
    for name in names:
        element = etree.SubElement(element, name)
    element.set("sslFlags", "None")
    return result


def same_tree(a: etree._Element, b: etree._Element) -> bool:
    """Semantic equality for configuration XML: names, attributes, text, children in order.

    Whitespace-only text is formatting, not configuration, so it is ignored.
    """
    if a.tag != b.tag or sorted(a.attrib.items()) != sorted(b.attrib.items()):
        return False
    if (a.text or "").strip() != (b.text or "").strip():
        return False
    children_a, children_b = list(a), list(b)
    if len(children_a) != len(children_b):
        return False
    return all(
        (x.tail or "").strip() == (y.tail or "").strip() and same_tree(x, y)
        for x, y in zip(children_a, children_b, strict=True)
    )


def _semantic_actions(before: etree._Element, after: etree._Element, edit: Edit) -> list[str]:
    """xmldiff's edit script between the outlines; it must be exactly the intended change."""
    # Loaded only when there are edits. xmldiff.main is what diff_trees() lives in, but importing
    # it costs ~30 ms (it looks up its own version); the Differ it calls costs ~4 ms.
    from xmldiff import actions as xd_actions  # noqa: PLC0415
    from xmldiff.diff import Differ  # noqa: PLC0415

    script = list(Differ().diff(before, after))
    inserted = [a.tag for a in script if isinstance(a, xd_actions.InsertNode)]
    attribute = [
        a
        for a in script
        if isinstance(a, (xd_actions.UpdateAttrib, xd_actions.InsertAttrib))
        and a.name == "sslFlags"
        and a.value == "None"
    ]
    if inserted != list(edit.creates) or len(attribute) != 1 or len(script) != len(inserted) + 1:
        raise VerificationFailed(
            f"xmldiff finds more than the intended change at {edit.location_path!r}: {script}"
        )
    return [repr(action) for action in script]


def _outline(element: etree._Element, *, created: bool) -> etree._Element:
    """What xmldiff compares: the changed element with each unchanged child reduced to a stub.

    The children other than the one the edit created are byte-identical in input and output
    (the edit replaces none of their bytes, _check_children_kept, and the output keeps every
    byte no edit writes, _check_output_bytes), so their content cannot differ; reducing them to
    stubs keeps xmldiff's cost independent of their size. Whitespace-only text is dropped:
    indentation is not meaning.
    """
    outline = etree.Element(element.tag)
    for name, value in element.attrib.items():
        outline.set(name, value)
    if (element.text or "").strip():
        outline.text = element.text
    children = list(element)
    for index, child in enumerate(children):
        if created and index == len(children) - 1:
            item = _normalised(child)
            outline.append(item)
        elif isinstance(child.tag, str):
            item = etree.SubElement(outline, child.tag, {"unchanged-child": str(index)})
        elif isinstance(child, etree._ProcessingInstruction):
            # xmldiff cannot read one (it joins the tag, a function, as text): a stub
            # element stands for it, its bytes being unchanged like those of the other stubs.
            item = etree.SubElement(
                outline, "processing-instruction", {"unchanged-child": str(index)}
            )
        else:  # a comment: small, kept as it is
            item = _normalised(child)
            outline.append(item)
        # The text after a child is the element's content, and an insertion writes next to
        # the last child's: text it adds there must show. Stripped: its spacing is formatting.
        item.tail = (child.tail or "").strip() or None
    return outline


def _normalised(element: etree._Element) -> etree._Element:
    """A copy without its tail and without whitespace-only text."""
    clone = copy.deepcopy(element)
    clone.tail = None
    for node in clone.iter():
        if not (node.text or "").strip():
            node.text = None
        if node is not clone and not (node.tail or "").strip():
            node.tail = None
    return clone


def _check_new_locations_at_top_level(document: Document, new: list[Edit]) -> None:
    """A new <location> is inserted between two top-level elements, as the writer appends it:
    after a <location>, or before </configuration>. Its own text parses alone, so only its place
    says whether the output nests it in another element, or cuts a tag in two."""
    if not new:
        return
    data = document.data
    ends = [location.span.end for location in document.locations()]  # in file order
    last = document.last_location()
    after = last.span.end if last else document.root_content_start()
    close = root_end_tag(data, after)
    for edit in new:
        at = edit.start
        index = bisect.bisect_left(ends, at)
        after_a_location = at == after or (index < len(ends) and ends[index] == at)
        before_the_end = after <= at <= close and not data[at:close].strip()
        if at != edit.end or not (after_a_location or before_the_end):
            raise VerificationFailed(
                f"the new <location> for {edit.location_path!r} is not inserted between "
                "top-level elements"
            )


def _check_access_defined_once(document: Document, steps: list[Edit]) -> None:
    """An edit that creates <access> does so at a path whose <location> elements have none, and
    no other edit creates one there: a second definition of the section for one path is a file
    IIS refuses to load."""
    creating: dict[str, Edit] = {}
    for step in (step for step in steps if step.creates):
        if creating.setdefault(path_key(step.location_path), step) is not step:
            raise VerificationFailed(f"two edits add <access> for {step.location_path!r}")
    if not creating:
        return
    for location in document.locations():
        edit = creating.get(path_key(location.path))
        if edit is not None and location.element.find(ACCESS_XPATH) is not None:
            raise VerificationFailed(
                f"an edit adds a second <access> for {edit.location_path!r}, which has one"
            )


def _check_back_end(document: Document, steps: list[Edit], output: bytes) -> None:
    back_end = path_key(BACK_END_SITE)
    locations = [loc for loc in document.locations() if site_of_path(loc.path) == back_end]
    starts = [location.span.start for location in locations]
    for edit in steps:  # the Back End locations from the one before the edit to its end
        # Walked by index: a slice from there would copy every location after the edit, for
        # each edit.
        index = max(bisect.bisect_right(starts, edit.start) - 1, 0)
        while index < len(locations) and starts[index] < max(edit.end, edit.start + 1):
            location = locations[index]
            if touches(edit, location.span.start, location.span.end):
                raise VerificationFailed(
                    f"an edit touches the Exchange Back End location {location.path!r}"
                )
            index += 1
    shift, index = 0, 0  # as Moves.offset() computes it, walking the edits once
    for location in locations:
        span = location.span
        while index < len(steps) and steps[index].end <= span.start:
            shift += steps[index].delta
            index += 1
        start = span.start + shift
        if not same_bytes(output, start, document.data, span.start, span.end - span.start):
            raise VerificationFailed(f"the bytes of Back End location {location.path!r} changed")
