"""spans.py: finding <location> elements in the bytes, quickly and when the quick way can't."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from confedit import offload
from confedit.document import load
from confedit.errors import InvalidInput
from confedit.iis import SSL_FLAGS, Config
from confedit.plan import Request
from confedit.spans import ElementSpan, attribute_value, top_level_spans
from confedit.testing.build import (
    EXCHANGE_BACK_END,
    EXCHANGE_FRONT_END,
    App,
    Loc,
    Site,
    Style,
    render,
)
from tests.conftest import VARIANTS, corpus_files, variant
from tests.helpers import access_values, back_end_blocks, strip_access

SCOPE = ("Default Web Site", "Exchange Back End")
LF = Style(newline="\n", bom=False)
WELL_FORMED = [p for p in corpus_files() if "malformed" not in p.name]


@pytest.mark.parametrize("kind", VARIANTS)
@pytest.mark.parametrize("path", WELL_FORMED, ids=lambda p: p.name)
def test_scoped_loading_finds_the_same_spans_as_a_full_scan(path, kind):
    raw = variant(path.read_bytes(), kind)
    everything = {(loc.path, loc.span) for loc in load(raw).locations()}
    scoped = load(raw, sites=SCOPE).locations()
    assert scoped, "the Exchange files have front-end and back-end locations"
    assert {(loc.path, loc.span) for loc in scoped} <= everything
    wanted = {
        (p, s)
        for p, s in everything
        if p.split("/")[0] in ("", "Default Web Site", "Exchange Back End")
    }
    assert {(loc.path, loc.span) for loc in scoped} == wanted


def with_filler(count: int, *locations: Loc) -> bytes:
    sites = [EXCHANGE_FRONT_END, EXCHANGE_BACK_END, Site("Filler", (App("/"), App("/app")))]
    filler = [Loc("Filler/app", "Ssl") for _ in range(count)]
    return render(sites, [Loc("Default Web Site", "Ssl, Ssl128"), *filler, *locations], LF)


@pytest.mark.parametrize("prune_above", [0, 1 << 40], ids=["pruned", "whole-tree"])
def test_locations_past_line_65535_are_found_and_edited(monkeypatch, prune_above):
    """libxml2 reports wrong line numbers past 65535; pairing must not depend on them."""
    monkeypatch.setattr("confedit.document.PRUNE_ABOVE", prune_above)
    raw = with_filler(
        12_000, Loc("Default Web Site/owa", shape="security"), Loc("Default Web Site/ecp", "Ssl")
    )
    assert raw.count(b"\n") > 70_000
    result = offload(raw, Request(services=("owa", "ecp")), name="big")
    values = access_values(result.output)
    assert values["Default Web Site/owa"] == values["Default Web Site/ecp"] == "None"
    assert [o.action for o in result.outcomes] == ["inserted", "rewritten"]


def test_a_new_location_goes_after_the_last_one_even_of_another_site():
    raw = with_filler(3, Loc("Default Web Site/ecp", "Ssl"), Loc("Filler/app", "Ssl"))
    result = offload(raw, Request(services=("owa",)), name="x")
    tail = result.output.split(b'<location path="Default Web Site/ecp">')[1]
    assert tail.index(b'<location path="Filler/app">') < tail.index(
        b'<location path="Default Web Site/owa">'
    )
    assert result.outcomes[0].created[0] == "location"


def test_a_site_name_written_with_a_character_reference_takes_the_full_scan():
    raw = with_filler(2, Loc("Default Web Site/owa", "Ssl")).replace(
        b'path="Default Web Site/owa"', b'path="Default&#32;Web Site/owa"'
    )
    result = offload(raw, Request(services=("owa",)), name="x")
    assert result.outcomes[0].action == "rewritten"
    assert b'<location path="Default&#32;Web Site/owa">' in result.output


# A path's characters as a file may write them: plain, as a character reference (decimal or
# hexadecimal, C1 controls among them: html.unescape reads &#x80;-&#x9f; as Windows-1252), as a
# predefined entity, or a literal tab or line end (the parser reads each as a space).
_PLAIN = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='&<"\ufffe\uffff')
_REFERENCED = st.sampled_from([0x9, 0xA, 0xD, 0x20, 0x41, 0x7F, 0x80, 0x85, 0x9B, 0x9F, 0x2028])
_PATH_PIECES = st.one_of(
    st.text(_PLAIN, max_size=3),
    st.sampled_from(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "\t", "\n", "\r", "\r\n"]),
    _REFERENCED.flatmap(lambda n: st.sampled_from([f"&#{n};", f"&#x{n:x};", f"&#x{n:X};"])),
)


@given(st.lists(_PATH_PIECES, max_size=8).map("".join))
def test_an_attribute_value_is_read_as_the_parser_reads_it(written):
    raw = written.encode("utf-8")
    parsed = etree.fromstring(b'<location path="' + raw + b'"/>').get("path")
    assert attribute_value(raw) == parsed


@pytest.mark.parametrize("written", [b"&#x9b;31m", b"a&#133;b", b"x\ty", b"x\r\ny", b"&#10;"])
def test_a_path_with_control_characters_is_found_and_offloaded(written):
    """A <location> whose path holds C1 controls, tabs or line ends (literal or as references)
    is paired with its element, not an internal error, and is offloaded with its parent."""
    raw = with_filler(1, Loc("Default Web Site/owa/sub", "Ssl")).replace(
        b'path="Default Web Site/owa/sub"', b'path="Default Web Site/owa/s' + written + b'"'
    )
    result = offload(raw, Request(services=("owa",), include_descendants=True), name="x")
    parsed = etree.fromstring(b'<location path="s' + written + b'"/>').get("path")
    descendant = result.outcomes[1]
    assert (descendant.target.path, descendant.action) == (
        f"Default Web Site/owa/{parsed}",
        "rewritten",
    )
    assert b'path="Default Web Site/owa/s' + written + b'"' in result.output


def test_location_text_in_comments_cdata_and_instructions_is_skipped():
    noise = (
        b'<!-- <location path="Default Web Site/owa"> -->\n'
        b'<?note <location path="Default Web Site/owa"> ?>\n'
    )
    raw = with_filler(1, Loc("Default Web Site/owa", "Ssl")).replace(
        b"<configuration>\n", b"<configuration>\n" + noise
    )
    result = offload(raw, Request(services=("owa",)), name="x")
    assert noise in result.output
    assert access_values(result.output)["Default Web Site/owa"] == "None"


def test_a_nested_location_is_invalid_configuration():
    raw = with_filler(1, Loc("Default Web Site/owa", "Ssl")).replace(
        b"<system.webServer>\n            <security>",
        b'<system.webServer>\n<location path="x" />            <security>',
        1,
    )
    with pytest.raises(InvalidInput, match="only allowed directly inside <configuration>"):
        load(raw)
    with pytest.raises(InvalidInput, match="only allowed directly inside <configuration>"):
        load(raw, sites=SCOPE)


def test_scoped_loading_drops_other_sites_from_the_tree(monkeypatch):
    monkeypatch.setattr("confedit.document.PRUNE_ABOVE", 0)  # as for a large file
    raw = with_filler(50, Loc("Default Web Site/owa", "Ssl"))
    document = load(raw, sites=SCOPE)
    kept = [el.get("path") for el in document.root.iterchildren("location")]
    # of the 50 out-of-scope locations, only the last one seen may stay (it could be the file's last)
    assert [p for p in kept if p != "Filler/app"] == ["Default Web Site", "Default Web Site/owa"]
    assert kept.count("Filler/app") == 1
    assert [loc.path for loc in document.locations()] == [
        "Default Web Site",
        "Default Web Site/owa",
    ]
    assert [s.get("name") for s in document.root.iterfind("system.applicationHost/sites/site")] == [
        "Default Web Site",
        "Exchange Back End",
    ]


def test_reported_lines_are_right_past_line_65535():
    from confedit.report import result_json

    raw = with_filler(12_000, Loc("Default Web Site/ecp", "Ssl, Ssl128"))
    result = offload(raw, Request(services=("ecp",)), name="big")
    (target,) = result_json(result, diff="", status="changed", exit_code=0)["targets"]
    real_line = (
        raw[
            : raw.index(b'<access sslFlags="Ssl, Ssl128" />', raw.index(b"Default Web Site/ecp"))
        ].count(b"\n")
        + 1
    )
    assert real_line > 65535
    assert target["before"]["line"] == real_line
    assert target["line"] == real_line


def test_a_nested_location_past_line_65535_is_refused_at_its_own_line(loader):
    """The refusal of a <location> inside another element named libxml2's line, 65535 for
    any later line: the user was sent to the wrong place in a large file."""
    raw = with_filler(12_000, Loc("Default Web Site/owa", "Ssl")).replace(
        b"<system.webServer>\n", b'<system.webServer>\n<!-- <location path="x" /> -->\n', 1
    )
    nested = b'<location path="x" />'
    raw = raw[: raw.rindex(b"<security>")] + nested + raw[raw.rindex(b"<security>") :]
    real_line = raw[: raw.rindex(nested)].count(b"\n") + 1
    assert real_line > 65535
    for sites in (None, SCOPE):
        with pytest.raises(InvalidInput) as refused:
            load(raw, "big", sites=sites)
        assert refused.value.line == real_line
        assert "only allowed directly inside <configuration>" in str(refused.value)


def with_many_apps(count: int, server_ssl_flags: str, *locations: Loc) -> bytes:
    """A file whose server-level <system.webServer> comes after `count` applications of
    another site (three lines each), as a hosting server's large <sites> puts it."""
    filler = Site("Filler", tuple(App(f"/app{n}") for n in range(count)))
    sites = [EXCHANGE_FRONT_END, EXCHANGE_BACK_END, filler]
    return render(sites, list(locations), LF, server_ssl_flags=server_ssl_flags)


def server_access_line(raw: bytes) -> int:
    server_level = raw.index(b"</system.applicationHost>")
    return raw[: raw.index(b"<access ", server_level)].count(b"\n") + 1


def test_a_server_level_setting_past_line_65535_is_reported_at_its_own_line(loader):
    """An inherited value's source outside every <location> was reported at libxml2's line,
    65535 for any later line: the server-level <access> of a large file, in the JSON report's
    `before.line` of every target that inherits it."""
    from confedit.report import result_json

    raw = with_many_apps(25_000, "Ssl", Loc("Default Web Site/owa", shape="security"))
    real_line = server_access_line(raw)
    assert real_line > 65535
    result = offload(raw, Request(services=("owa",)), name="big")
    (target,) = result_json(result, diff="", status="changed", exit_code=0)["targets"]
    assert target["before"]["source"] == "(server level)"
    assert target["before"]["line"] == real_line


def test_a_server_level_refusal_past_line_65535_names_its_own_line(loader):
    raw = with_many_apps(25_000, "Bogus", Loc("Default Web Site/owa", "Ssl"))
    real_line = server_access_line(raw)
    assert real_line > 65535
    with pytest.raises(InvalidInput) as refused:
        offload(raw, Request(services=("owa",)), name="big")
    assert refused.value.line == real_line
    assert 'sslFlags="Bogus"' in str(refused.value)


def test_a_section_defined_twice_past_line_65535_names_both_lines(loader):
    raw = with_many_apps(25_000, "Ssl", Loc("", "Ssl"), Loc("Default Web Site/owa", "Ssl"))
    first = server_access_line(raw)
    second = raw[: raw.index(b"<access ", raw.index(b'<location path="">'))].count(b"\n") + 1
    assert 65535 < first < second
    with pytest.raises(InvalidInput) as refused:
        offload(raw, Request(services=("owa",)), name="big")
    assert f"(lines {first} and {second})" in str(refused.value)
    assert refused.value.line == second


def test_an_element_after_a_large_site_is_placed_at_its_own_line(loader):
    """libxml2 gave the element after 25,000 applications, past line 65535, the line of an
    element before them (73): it looks for a line among an element's neighbours. In a tree
    parsed while pruning, <sites> lacks the other sites, so the bytes cannot be paired with
    it; that parse keeps the whitespace, from which libxml2 takes lines past 65535, the line
    where the whitespace next to the element ends."""
    raw = with_many_apps(25_000, "Ssl", Loc("Default Web Site/owa", "Ssl"))
    document = load(raw, "big", sites=SCOPE)
    defaults = document.root.find("system.applicationHost/sites/applicationDefaults")
    real_line = raw[: raw.index(b"<applicationDefaults ")].count(b"\n") + 1
    assert real_line > 65535
    if loader == "pruning-parse":
        assert document.line_of(defaults) in (real_line, real_line + 1)
    else:
        assert document.line_of(defaults) == real_line


# Markup in which a scanner that does not skip comments, CDATA sections and processing
# instructions whole, or reads a quoted value's ">" or "/" as the end of a tag, goes wrong.
_NOISE = st.sampled_from(
    [
        "<!-- <a> </configuration> -->",
        "<?pi <b/> ?>",
        "<![CDATA[</a><a>]]>",
        "text &gt; &lt;/a&gt;",
        "\n    ",
    ]
)
_TAG = st.sampled_from(["a", "location", "system.webServer", "x-y.z"])
_ATTRIBUTE = st.sampled_from(["", ' v="1>2"', " v='/>'", ' v="a/b" w="&lt;c&gt;"'])


def _elements(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def element(tag: str, attribute: str, inside: list[str]) -> str:
        if not inside:
            return f"<{tag}{attribute}/>"
        return f"<{tag}{attribute}>{''.join(inside)}</{tag} >"

    return st.builds(element, _TAG, _ATTRIBUTE, st.lists(children, max_size=3))


_CONTENT = st.recursive(_NOISE, _elements, max_leaves=12)


@given(st.lists(_CONTENT, max_size=6))
def test_top_level_spans_are_the_root_children_as_lxml_reads_them(children):
    data = ("<configuration>" + "".join(children) + "</configuration><!-- </a> -->").encode()
    root = etree.fromstring(data)
    found = top_level_spans(data, len(b"<configuration>"))
    elements = list(root.iterchildren(etree.Element))
    assert [name.decode() for name, _ in found] == [el.tag for el in elements]
    for (_, span), element in zip(found, elements, strict=True):
        whole = etree.fromstring(data[span.start : span.end])
        assert etree.tostring(whole) == etree.tostring(element, with_tail=False)
        start_tag = data[span.start : span.start_tag_end]
        assert start_tag.endswith(b">") and start_tag.count(b"<") == 1


LOADERS = ["whole-tree", "reduced-copy", "pruning-parse"]


@pytest.fixture(params=LOADERS)
def loader(request, monkeypatch):
    """The three ways load() builds its tree: whole (small files), from a copy without the other
    sites (large files), and pruning while parsing (when the copy cannot be made with certainty)."""
    if request.param == "whole-tree":
        monkeypatch.setattr("confedit.document.PRUNE_ABOVE", 1 << 40)
    else:
        monkeypatch.setattr("confedit.document.PRUNE_ABOVE", 0)
    if request.param == "pruning-parse":
        monkeypatch.setattr("confedit.document.reduced_copy", lambda raw, scope: None)
    return request.param


TRICKY = [
    Loc(
        "Filler/app",
        "Ssl",
        comment="a comment with </location> and <location path='Default Web Site/owa'> in it",
    ),
    Loc(  # a comment with end tags that balance: no parse error would reveal a wrong scan
        "Filler/other",
        "Ssl",
        comment='</security></system.webServer></location><location path="Default Web Site/OAB">'
        "<system.webServer><security>",
    ),
    Loc("Default Web Site/owa", shape="security"),
    Loc("Filler/app&amp;more", "Ssl"),
    Loc("Default Web Site/ecp", "Ssl"),
    Loc("FILLER/app", shape="self-closed"),
]


@pytest.mark.parametrize("order", [TRICKY, TRICKY[::-1]], ids=["forward", "reversed"])
def test_every_way_of_loading_gives_the_same_result(loader, order):
    raw = with_filler(30, *order)
    result = offload(raw, Request(services=("owa", "ecp", "oab")), name="x")
    values = access_values(result.output)
    assert values["Default Web Site/owa"] == values["Default Web Site/ecp"] == "None"
    assert values["Default Web Site/OAB"] == "None"  # a new <location>, after the file's last
    *_, before_last, new = load(result.output).locations()  # a whole-tree scan of the output
    assert before_last.path == load(raw).locations()[-1].path  # the input's last <location>
    assert new.path == "Default Web Site/OAB"
    assert result.output[before_last.span.end : new.span.start] == b"\n    "
    patched = {"Default Web Site/owa", "Default Web Site/ecp", "Default Web Site/OAB"}
    assert strip_access(result.output, {p.casefold() for p in patched}) == strip_access(
        raw, {p.casefold() for p in patched}
    )
    assert back_end_blocks(result.output) == back_end_blocks(raw)


@pytest.mark.parametrize("server_level", ["", ".", "/", "./"])
def test_every_way_of_loading_keeps_the_server_level_in_any_spelling(loader, server_level):
    owa = Loc("Default Web Site/owa", shape="security")
    raw = with_filler(30, Loc(server_level, "Ssl"), owa, Loc("Filler/app", "Ssl"))
    document = load(raw, sites=SCOPE)
    assert server_level in [location.path for location in document.locations()]
    definitions = Config(document).definitions("", SSL_FLAGS)
    assert [d.location.path for d in definitions if d.location] == [server_level]


PLAIN = [Loc("Default Web Site/owa", shape="security"), Loc("Filler/app", "Ssl")] * 3


LAST = Loc("Filler/app", "Ssl")
LAST_WITH_COMMENT = Loc("Filler/app", "Ssl", comment="a <location path='Filler/x'> in the last")


@pytest.mark.parametrize(
    ("order", "copied"),
    [
        ([*PLAIN, LAST], True),
        ([*TRICKY, LAST], True),
        ([*TRICKY[::-1], LAST], True),
        ([*PLAIN, LAST_WITH_COMMENT], False),
    ],
    ids=["plain", "tricky", "tricky-reversed", "comment-in-the-last"],
)
def test_spans_found_in_the_reduced_copy_are_the_file_s_own(monkeypatch, order, copied):
    """A large file's <location> elements are found in the reduced copy; mapped back, their
    spans (and the last location's) are those a scan of the whole file finds. (A comment
    holding '<location' in the file's last <location>, which the copy keeps, makes the copy
    uncertain: the tree is then parsed while pruning, and the whole file is scanned.)"""
    raw = with_filler(30, *order)

    def spans(prune_above: int) -> tuple[list[tuple[str, ElementSpan]], ElementSpan]:
        monkeypatch.setattr("confedit.document.PRUNE_ABOVE", prune_above)
        document = load(raw, sites=SCOPE)
        assert (document.reduced is not None) == (prune_above == 0 and copied)
        last = document.last_location()
        assert last is not None
        return [(loc.path, loc.span) for loc in document.locations()], last.span

    located, last = spans(0)
    assert (located, last) == spans(1 << 40)
    for path, span in located:
        assert raw[span.start : span.start_tag_end].startswith(b'<location path="' + path.encode())
        assert raw[span.end_tag_start : span.end] == b"</location>"
    assert raw[last.start : last.end].startswith(b'<location path="Filler/app">')
    assert raw[last.end :].strip() == b"</configuration>"


def test_the_reduced_copy_keeps_lines_and_the_last_location():
    from confedit.spans import reduced_copy

    raw = with_filler(
        40, Loc("Default Web Site/owa", "Ssl"), Loc("Filler/app", "Ssl"), Loc("Filler/app", "None")
    )
    scope = frozenset({"default web site", "exchange back end", ""})
    copy = reduced_copy(raw, scope)
    assert copy is not None
    reduced = copy.data
    assert len(reduced) < len(raw) / 2
    assert reduced.count(b"\n") == raw.count(b"\n")
    assert reduced.count(b'<location path="Filler/app">') == 1  # the file's last one
    assert reduced.rstrip().endswith(
        b'<access sslFlags="None" />\n            </security>\n        </system.webServer>\n    </location>\n</configuration>'
    )
    assert reduced_copy(raw, frozenset({"défault web site", ""})) is None
    assert reduced_copy(b"\xff\xfe<\x00", scope) is None


_LOCATION_WITH = b"""<configuration><location path="s/a">%s</location></configuration>"""


@pytest.mark.parametrize(
    "inside",
    [
        b"<system.webServer><security><access/></security></system.webServer>",
        b"<!-- <security> --><system.webServer><security/></system.webServer>",
        b"<x><security/></x><system.webServer><security><a/></security></system.webServer>",
        b"<?pi <security?><system.webServer><security /></system.webServer>",
    ],
    ids=["name-is-unique", "comment", "name-twice", "instruction"],
)
def test_the_edited_element_is_found_by_its_name_or_by_counting(inside):
    """subtree_spans finds the same spans as pairing every tag: by the name when it is unique
    and nothing can hide a tag, else by counting the start tags before it."""
    from lxml import etree

    from confedit.spans import ElementSpan, pair_spans, subtree_spans

    data = _LOCATION_WITH % inside
    location = etree.fromstring(data)[0]
    span = ElementSpan(data.index(b"<location"), 0, len(data), len(data))
    target = location.findall("system.webServer/security")[-1]
    expected = pair_spans(data, location, span, target)
    found = subtree_spans(data, location, span, target)
    assert found == {el: sp for el, sp in expected.items() if el in set(target.iter())}
    assert data[found[target].start :].startswith(b"<security")


def _plain_and_large(monkeypatch, raw: bytes, request: Request) -> list[tuple[str, bytes, list]]:
    """offload() (with its JSON report) and audit() of `raw`, loaded as a small file, then as
    a large one."""
    from confedit.auditing import audit
    from confedit.errors import ConfeditError
    from confedit.report import result_json

    runs = []
    for prune_above in (1 << 40, 0):
        monkeypatch.setattr("confedit.document.PRUNE_ABOVE", prune_above)
        try:
            result = offload(raw, request, name="x")
            report = result_json(result, diff="", status="changed", exit_code=0)
            ran = ("written", result.output, report["targets"])
        except ConfeditError as error:
            ran = (type(error).__name__, str(error).encode(), [])
        runs.append((*ran, audit(raw, "x").rows if ran[0] == "written" else ()))
    return runs


@pytest.mark.parametrize("written", ["path", "name"])
@pytest.mark.parametrize(
    "site",
    [
        b"Default\tWeb Site",
        b"Default\r\nWeb Site",
        "Default Web S\u0131te".encode(),
        "Default Web \u017fite".encode(),
    ],
    ids=["tab", "line-end", "dotless-i", "long-s"],
)
def test_a_site_name_read_otherwise_than_its_bytes_is_not_dropped_from_a_large_file(
    monkeypatch, site, written
):
    """The parser reads a literal tab or line end in a value as a space, and fold() takes U+0131
    and U+017F (dotless i, long s) to "i" and "s": such a name is the front end's to the plain parse, so the copy a
    large file is parsed from must keep its elements. (It dropped them: a second <location>
    was appended for the path, or the site was 'not in <sites>'.)"""
    raw = with_filler(3, Loc("Default Web Site/owa", "Ssl"), Loc("Filler/app", "Ssl"))
    if written == "path":
        raw = raw.replace(b'path="Default Web Site/owa"', b'path="' + site + b'/owa"')
    else:
        raw = raw.replace(b'<site name="Default Web Site"', b'<site name="' + site + b'"')
    plain, large = _plain_and_large(monkeypatch, raw, Request(services=("owa",)))
    assert plain[0] == "written"
    assert [target["action"] for target in plain[2]] == ["rewritten"]
    assert large == plain


def test_a_path_that_starts_with_a_slash_is_kept_from_a_large_file(monkeypatch):
    """site_of_path() reads "/x" as the server level's (its site part is empty), so the plain
    parse checks it: two of them that define the access section for one key make a file IIS
    would not load. The copy a large file is parsed from dropped them, and wrote the file."""
    raw = with_filler(
        1, Loc("/x", "Ssl"), Loc("/X", "Ssl"), Loc("Default Web Site/owa", "Ssl"), Loc("Filler/a")
    )
    plain, large = _plain_and_large(monkeypatch, raw, Request(services=("owa",)))
    assert plain[0] == "InvalidInput"
    assert large == plain


def test_a_site_named_nothing_is_kept_from_a_large_file(monkeypatch):
    """A <site name=""> is in every scope (its key is the server level's), as the pruning parse
    and the plain parse read it; the copy a large file is parsed from dropped it. No request
    names that site (a blank site is a usage error), so the sites read are compared."""
    raw = with_filler(1, Loc("Default Web Site/owa", "Ssl"), Loc("Filler/a")).replace(
        b"</sites>", b'<site name="" id="9"><application path="/" /></site></sites>'
    )
    read = []
    for prune_above in (1 << 40, 0):
        monkeypatch.setattr("confedit.document.PRUNE_ABOVE", prune_above)
        document = load(raw, "x", sites=SCOPE)
        read.append((document.reduced is not None, sorted(Config(document).sites)))
    (plain, plain_sites), (large, large_sites) = read
    assert (plain, large) == (False, True)  # the second was parsed from the copy
    assert "" in plain_sites
    assert large_sites == plain_sites


OWA_START = b'<location path="Default Web Site/owa">\n        <system.webServer>'
FILLER_START = b'<location path="Filler/a">\n        <system.webServer>'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (FILLER_START, FILLER_START + b'<location path="Filler/b" />'),
        (OWA_START, OWA_START + b'<location path="Filler/b" />'),
        (b"</sites>", b'<location path="Filler/b" /></sites>'),
        (b"</sites>", b'<site name="Other"><location path="Filler/b" /></site></sites>'),
        (FILLER_START, FILLER_START + b'<location path="Filler/b"></location>'),
    ],
    ids=["in-another-site-s", "in-the-front-end-s", "in-sites", "in-another-site", "open"],
)
def test_a_nested_location_is_refused_in_a_large_file_too(monkeypatch, before, after):
    """The copy a large file is parsed from blanked a nested <location> of another site, or
    the other site's element that held it, and the pruning parse dropped the element that held
    it: the file IIS would not load was written (or failed verification)."""
    raw = with_filler(1, Loc("Default Web Site/owa", "Ssl"), Loc("Filler/a", "Ssl"), Loc("F/z"))
    raw = raw.replace(before, after, 1)
    plain, large = _plain_and_large(monkeypatch, raw, Request(services=("owa",)))
    assert plain[0] == "InvalidInput"
    assert large == plain
    monkeypatch.setattr("confedit.document.reduced_copy", lambda raw, scope: None)
    with pytest.raises(InvalidInput, match="only allowed directly inside <configuration>"):
        load(raw, sites=SCOPE)


def test_a_site_element_outside_sites_is_not_blanked_from_a_large_file(monkeypatch):
    """Only the <site> elements of <sites> are other sites: one elsewhere (here inside the
    front end's own <location>) is kept, as the plain parse keeps it (the copy a large file is
    parsed from blanked it, and the edit failed verification)."""
    raw = with_filler(1, Loc("Default Web Site/owa", "Ssl"), Loc("Filler/a", "Ssl"))
    raw = raw.replace(OWA_START, OWA_START + b'<sites><site name="Filler" /></sites>', 1)
    plain, large = _plain_and_large(monkeypatch, raw, Request())
    assert plain[0] == "written"
    assert large == plain


def test_a_server_level_line_in_a_short_file_is_where_its_start_tag_begins(loader):
    """In a file too short for libxml2's limit, the server level's <access> was reported at
    libxml2's line, where its start tag ends: a line late when its attributes are on a line of
    their own, while inside a <location> (and past line 65535) confedit names the line where
    the start tag begins. Both are now where it begins."""
    raw = render(
        [EXCHANGE_FRONT_END, EXCHANGE_BACK_END],
        [Loc("Default Web Site/owa", "Ssl")],
        LF,
        server_ssl_flags="Bogus",
    ).replace(b'<access sslFlags="Bogus"', b'<access\n    sslFlags="Bogus"')
    real_line = raw[: raw.index(b'<access\n    sslFlags="Bogus"')].count(b"\n") + 1
    with pytest.raises(InvalidInput) as refused:
        offload(raw, Request(services=("owa",)), name="short")
    assert refused.value.line == real_line


@pytest.mark.parametrize("site", [b"Default Web Site", b"Default&#32;Web Site"])
def test_a_path_written_inside_another_attribute_is_not_the_location_s_path(site):
    """Another attribute's quoted value may hold ` path="..."`: the quick scan and the full one
    (taken for a site name written with a character reference) both read the path attribute
    itself, so the location is paired with its element and edited."""
    raw = with_filler(1, Loc("Default Web Site/owa", "Ssl")).replace(
        b'<location path="Default Web Site/owa">',
        b"""<location note=' path="Filler/app"' path=\"""" + site + b'/owa">',
    )
    result = offload(raw, Request(services=("owa",)), name="x")
    assert [o.action for o in result.outcomes] == ["rewritten"]
    assert access_values(result.output)["Default Web Site/owa"] == "None"
    assert etree.fromstring(result.output).find("location[@note]").get("note") == (
        ' path="Filler/app"'
    )
