"""document.py: loading, encodings, hardened parsing, and the byte spans of elements."""

from __future__ import annotations

import codecs
import re

import pytest
from lxml import etree

import confedit
from confedit.document import load
from confedit.errors import InvalidInput, UsageProblem
from tests.conftest import VARIANTS, corpus_files, variant

WELL_FORMED = [p for p in corpus_files() if "malformed" not in p.name]


@pytest.mark.parametrize("kind", VARIANTS)
@pytest.mark.parametrize("path", WELL_FORMED, ids=lambda p: p.name)
def test_every_element_span_of_every_location_pairs_with_lxml(path, kind):
    """The scanner's spans agree with lxml on every element of every <location> of real files:
    each span starts with the element's own start tag and re-parses to the same element."""
    document = load(variant(path.read_bytes(), kind), path.name)
    assert document.locations(), "every corpus file has <location> elements"
    for location in document.locations():
        spans = document.spans_in(location)
        elements = list(location.element.iter(etree.Element))
        assert set(spans) == set(elements)
        for element in elements:
            span = spans[element]
            text = document.data[span.start : span.end]
            assert re.match(rb"<" + element.tag.encode() + rb"[\s/>]", text)
            reparsed = etree.fromstring(text)
            assert reparsed.tag == element.tag
            assert dict(reparsed.attrib) == dict(element.attrib)
            assert len(reparsed) == len(element)


@pytest.mark.parametrize("path", WELL_FORMED, ids=lambda p: p.name)
def test_locations_are_the_top_level_ones_in_file_order(path):
    document = load(path.read_bytes(), path.name)
    tree = etree.fromstring(path.read_bytes())
    assert [loc.path for loc in document.locations()] == [
        el.get("path", "") for el in tree.findall("location")
    ]
    text = path.read_bytes()
    for location in document.locations():
        chunk = text[location.span.start : location.span.end]
        assert chunk.startswith(b"<location") and chunk.endswith(b"</location>")


def test_comment_holding_a_location_is_not_configuration():
    """Real files have a sample <location> in their header comment (corpus README)."""
    path = next(p for p in WELL_FORMED if p.name.startswith("e2013-cas."))
    raw = path.read_bytes()
    header = raw.split(b"\n    <configSections>")[0]
    assert b'<location path="Default Web Site" overrideMode="Allow">' in header
    document = load(raw, path.name)
    assert not [
        loc
        for loc in document.locations()
        if loc.path == "Default Web Site" and loc.element.get("overrideMode") == "Allow"
    ]
    assert all(loc.span.start > len(header) for loc in document.locations())


def test_malformed_file_names_line_and_column():
    path = next(p for p in corpus_files() if "malformed" in p.name)
    with pytest.raises(InvalidInput) as info:
        load(path.read_bytes(), str(path))
    assert (info.value.line, info.value.column) == (128, 22)
    assert str(info.value).startswith(f"{path}:128:22: ")
    assert "\n" not in str(info.value)


MINIMAL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n  <system.applicationHost>\n'
    b"    <sites />\n  </system.applicationHost>\n</configuration>\n"
)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x02binary", "NUL byte at byte offset 0"),
        (MINIMAL.replace(b"<sites />", b"<sites>\xff</sites>"), "invalid UTF-8 at byte offset"),
        (b"<other/>", "not an applicationHost.config: the root element is <other>"),
        (b"<configuration/>", "not an applicationHost.config: it has no"),
        (MINIMAL.replace(b'encoding="UTF-8"', b'encoding="UTF-16"'), 'says encoding="UTF-16"'),
        (  # after a byte-order mark the declaration is checked too
            codecs.BOM_UTF8 + MINIMAL.replace(b'encoding="UTF-8"', b'encoding="UTF-16"'),
            'says encoding="UTF-16" but the bytes are UTF-8 with BOM',
        ),
        (
            codecs.BOM_UTF16_LE + MINIMAL.decode().encode("utf-16-le"),
            'says encoding="UTF-8" but the bytes are UTF-16-LE with BOM',
        ),
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE configuration [<!ENTITY x "y">]>\n<configuration/>',
            "DOCTYPE is not allowed in applicationHost.config",
        ),
        (b"<configuration><sites></configuration>", "Opening and ending tag mismatch"),
        (codecs.BOM_UTF32_LE + MINIMAL.decode().encode("utf-32-le"), "the file is UTF-32"),
        (  # the declaration names the other byte order than the bytes have
            codecs.BOM_UTF16_BE
            + MINIMAL.replace(b"UTF-8", b"UTF-16LE").decode().encode("utf-16-be"),
            'says encoding="UTF-16LE" but the bytes are UTF-16-BE with BOM',
        ),
        (
            codecs.BOM_UTF16_LE
            + MINIMAL.replace(b"UTF-8", b"utf-16be").decode().encode("utf-16-le"),
            'says encoding="utf-16be" but the bytes are UTF-16-LE with BOM',
        ),
        (MINIMAL.decode().encode("utf-16-le"), "the file is UTF-16 without a byte-order mark"),
        (MINIMAL.decode().encode("utf-16-be"), "the file is UTF-16 without a byte-order mark"),
        (  # no declaration, a blank line first
            ("\r\n" + MINIMAL.split(b"\n", 1)[1].decode()).encode("utf-16-be"),
            "the file is UTF-16 without a byte-order mark",
        ),
        (
            MINIMAL.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'),
            'says encoding="ISO-8859-1": confedit reads UTF-8 and UTF-16',
        ),
        (b"<configuration>" + b"<a>" * 300 + b"</a>" * 300, "Excessive depth in document: 256"),
    ],
)
def test_bad_input_is_one_clear_line(raw, message):
    with pytest.raises(InvalidInput) as info:
        load(raw, "bad.config")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert "XML_PARSE_HUGE" not in str(info.value)  # libxml2's own option, not confedit's


def test_invalid_utf8_offset_is_exact_across_chunks():
    from confedit.document import _check_utf8

    data = b"a" * 10 + "é".encode() + b"b" * 5 + b"\xc3" + b"("
    for chunk in (1, 2, 3, 7, 64):
        with pytest.raises(InvalidInput, match=r"byte offset 17$"):
            _check_utf8(data, "x", chunk=chunk)


@pytest.mark.parametrize(
    ("byte", "codec", "message"),
    [
        (b"\xff", "utf-8", "invalid UTF-8 at byte offset {offset}"),
        (b"\x00", "utf-8", "NUL byte at byte offset {offset}"),
        (b"\x00", "utf-16-le", "NUL byte: "),
    ],
)
def test_a_bad_byte_deep_in_a_large_file_is_named_by_its_line_too(byte, codec, message):
    """A bad byte was named by its byte offset alone (by its line alone in UTF-16, and not as
    the line of the error in the JSON report): in a hosting server's file of a hundred thousand
    lines, a number no editor goes to."""
    raw = MINIMAL.replace(b"<sites />", b"<!--" + b"\n" * 70_000 + b"-->\n    <sites>x</sites>")
    offset = raw.index(b"<sites>x") + len(b"<sites>")
    raw = raw[:offset] + byte + raw[offset + 1 :]
    line = raw.count(b"\n", 0, offset) + 1
    if codec != "utf-8":
        raw = codecs.BOM_UTF16_LE + raw.replace(b"UTF-8", b"UTF-16").decode().encode(codec)
    with pytest.raises(InvalidInput) as info:
        load(raw, "big.config")
    assert info.value.line == line
    assert str(info.value).startswith(f"big.config:{line}: {message.format(offset=offset)}")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_invalid_utf16_deep_in_a_large_file_is_named_by_its_line_too(codec):
    text = MINIMAL.replace(b"UTF-8", b"UTF-16").decode()
    text = text.replace("<sites />", "<!--" + "\n" * 70_000 + "-->\n    <sites>x</sites>")
    at = text.index("<sites>x") + len("<sites>")
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    lone_surrogate = "\ud800".encode(codec, "surrogatepass")
    raw = bom + text[:at].encode(codec) + lone_surrogate + text[at + 1 :].encode(codec)
    line = text.count("\n", 0, at) + 1
    with pytest.raises(InvalidInput) as info:
        load(raw, "big.config")
    assert info.value.line == line
    offset = len(bom) + 2 * at
    assert str(info.value) == f"big.config:{line}: invalid {codec.upper()} at byte offset {offset}"


@pytest.mark.parametrize("declared", ["UTF-16", "unicode", "same byte order"])
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_read_and_written_back_the_same(codec, declared):
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    if declared == "same byte order":
        declared = codec.replace("-le", "LE").replace("-be", "BE").upper()
    text = MINIMAL.decode().replace('encoding="UTF-8"', f'encoding="{declared}"')
    raw = bom + text.encode(codec)
    document = load(raw, "u16.config")
    assert document.encoding.name == codec
    assert document.encoding.encode(document.data) == raw


def test_billion_laughs_is_refused_without_expansion():
    bomb = (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
            for i in range(1, 10)
        )
        + b"]>\n<configuration>&lol9;</configuration>"
    )
    with pytest.raises(InvalidInput, match="DOCTYPE is not allowed"):
        load(bomb, "bomb.config")


def test_deep_nesting_is_refused():
    depth = 100_000
    raw = b"<configuration>" + b"<a>" * depth + b"</a>" * depth + b"</configuration>"
    with pytest.raises(InvalidInput):
        load(raw, "deep.config")


@pytest.mark.parametrize("entry", ["load", "offload", "audit"])
@pytest.mark.parametrize(
    ("raw", "kind"),
    [("<configuration/>", "str"), (None, "NoneType"), (memoryview(b"<"), "memoryview")],
)
def test_what_is_not_bytes_is_a_usage_problem_saying_to_read_the_file_in_binary(entry, raw, kind):
    """A program that read the file as text handed over a str: that raised a TypeError from
    inside load(), a memoryview an AttributeError, and None was called an empty file."""
    call = getattr(confedit, entry)
    with pytest.raises(UsageProblem) as info:
        call(raw) if entry != "load" else call(raw, "a.config")
    assert str(info.value).endswith(f"takes the file's bytes (open(path, 'rb').read()), not {kind}")


@pytest.mark.parametrize("entry", ["load", "offload", "audit"])
@pytest.mark.parametrize(("name", "kind"), [(b"a.config", "bytes"), (None, "NoneType")])
def test_a_name_that_is_not_a_str_is_a_usage_problem(entry, name, kind):
    """The name is in every message: a bytes name made the error's str() fail with a
    TypeError, and only once the file had been found malformed."""
    call = getattr(confedit, entry)
    with pytest.raises(UsageProblem) as info:
        call(b"<configuration>", name) if entry == "load" else call(b"<configuration>", name=name)
    assert str(info.value).endswith(f"name takes the file's name as a str, not {kind}")


def _load_error(raw: bytes, monkeypatch: pytest.MonkeyPatch, prune_above: int) -> str:
    monkeypatch.setattr("confedit.document.PRUNE_ABOVE", prune_above)
    with pytest.raises(InvalidInput) as info:
        load(raw, "big.config", sites=["Default Web Site"])
    return str(info.value)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(b"<a:b />", id="namespace prefix not defined"),
        pytest.param(b'<a b:c="1" />', id="attribute's namespace prefix not defined"),
        # lxml's plain parse reads libxml2's last message alone: a warning after the error
        # (an xml:space value not known) let a small file pass
        pytest.param(b'<a:b /><c xml:space="bad" />', id="prefix not defined, then a warning"),
    ],
)
def test_a_fault_in_another_site_of_a_large_file_is_said_as_in_a_small_one(fault, monkeypatch):
    """A large file's whole-file check has a parser target, for which lxml raises no error that
    libxml2 reads past: a namespace prefix not defined passed in a large file (its site left out
    of the tree), where the plain parse refuses the file."""
    raw = MINIMAL.replace(
        b"</configuration>",
        b'  <location path="Other Site/app">\n    <system.webServer>'
        + fault
        + b"</system.webServer>\n  </location>\n"
        # the file's last <location> stays in the tree (a new one goes after it)
        + b'  <location path="Other Site/last" />\n</configuration>',
    )
    small = _load_error(raw, monkeypatch, prune_above=1 << 40)
    assert small.startswith("big.config:7:")
    assert _load_error(raw, monkeypatch, prune_above=0) == small
