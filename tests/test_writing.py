"""Where new elements go in the bytes (confedit/writing.py), beyond what the corpus shows."""

from __future__ import annotations

import pytest
from lxml import etree

from confedit import document, offload
from confedit.document import Document
from confedit.plan import Request
from confedit.spans import root_end_tag
from tests.conftest import EXCHANGE

NO_LOCATION = b"""<?xml version="1.0" encoding="UTF-8"?>
<configuration>
    <system.applicationHost>
        <sites>
            <site name="Default Web Site" id="1">
                <application path="/owa" applicationPool="MSExchangeOWAAppPool">
                    <virtualDirectory path="/" physicalPath="C:\\owa" />
                </application>
            </site>
        </sites>
    </system.applicationHost>
    <system.webServer>
        <security>
            <access sslFlags="Ssl, Ssl128" />
        </security>
    </system.webServer>
</configuration>
"""

AFTER_THE_ROOT = [
    b"<?generated-by tool </configuration> ?>\n",
    b"<!-- </configuration> -->\n",
    b"<?a </configuration><?b ?>\n",  # a PI may hold "<?": what follows looks like one
    b"<!-- one --><?two </configuration>?>\n<!-- </configuration> -->\n",
]


@pytest.mark.parametrize("tail", AFTER_THE_ROOT)
def test_a_new_location_goes_inside_the_root_whatever_follows_it(tail):
    """After </configuration> only comments and processing instructions may come, and their
    text may hold "</configuration>": the new <location> must still go inside the root."""
    raw = NO_LOCATION + tail
    output = offload(raw, Request(services=("owa",))).output
    root = etree.fromstring(output)
    (location,) = root.iterchildren("location")
    assert location.get("path") == "Default Web Site/owa"
    assert location.find("system.webServer/security/access").get("sslFlags") == "None"
    assert output.endswith(b"</location>\n</configuration>\n" + tail)


@pytest.mark.parametrize("tail", AFTER_THE_ROOT)
def test_the_root_end_tag_is_found_past_comments_and_instructions(tail):
    data = NO_LOCATION + tail
    assert root_end_tag(data, 0) == NO_LOCATION.rindex(b"</configuration>")
    assert root_end_tag(b"<configuration>", 0) == len(b"<configuration>")  # none: the end


OWA_SECURITY = b"""    <location path="Default Web Site/owa">
        <system.webServer>
            <security>
                <authentication />
            </security>
        </system.webServer>
    </location>
"""


@pytest.mark.parametrize(("ending", "other"), [(b"\r\n", b"\n"), (b"\n", b"\r\n")])
def test_an_appended_child_keeps_the_line_ending_of_the_line_before_it(ending, other):
    """In a file that mixes line endings, the line the new element follows keeps its own
    ending, and the new line gets the same: the diff adds one line and changes none."""
    line = b"                <authentication />" + ending
    block = OWA_SECURITY.replace(b"\n", other).replace(
        b"                <authentication />" + other, line
    )
    raw = NO_LOCATION.replace(b"</configuration>", block + b"</configuration>")
    result = offload(raw, Request(services=("owa",)))
    added = b'                <access sslFlags="None" />' + ending
    assert result.output == raw.replace(line, line + added)
    diff = result.diff("t.config").splitlines()
    assert [row for row in diff if row.startswith(b"-") and not row.startswith(b"---")] == []


ONE_LINE_SECURITY = b"""    <location path="Default Web Site/owa">
        <system.webServer>
            <security><authentication /></security>
        </system.webServer>
    </location>
"""
ONE_LINE_WEB_SERVER = b"""    <location path="Default Web Site/owa">
        <system.webServer><urlCompression /></system.webServer>
    </location>
"""


@pytest.mark.parametrize(
    ("block", "end_tag", "inserted"),
    [
        (ONE_LINE_SECURITY, b"</security>", b'<access sslFlags="None" />'),
        (
            ONE_LINE_WEB_SERVER,
            b"</system.webServer>",
            b'<security><access sslFlags="None" /></security>',
        ),
    ],
)
def test_an_element_written_on_one_line_with_children_stays_on_that_line(block, end_tag, inserted):
    """`<security><authentication /></security>` on a line of its own gains its <access> on
    that line, not on a line under its first child with the end tag on a third."""
    raw = NO_LOCATION.replace(b"</configuration>", block + b"</configuration>")
    output = offload(raw, Request(services=("owa",))).output
    assert output == raw.replace(b" />" + end_tag, b" />" + inserted + end_tag)


def joined_after_the_location_before(raw: bytes, path: bytes) -> bytes:
    """`raw` with the <location> of `path` started on the line of the `</location>` before it."""
    start = raw.index(b'<location path="' + path + b'"')
    return raw[: raw.rindex(b"</location>", 0, start) + len(b"</location>")] + raw[start:]


def without_location(raw: bytes, path: bytes) -> bytes:
    start = raw.index(b'<location path="' + path + b'"')
    start = raw.rindex(b"\n", 0, start) + 1
    return raw[:start] + raw[raw.index(b"</location>", start) + len(b"</location>\n") :]


NEW_RPC = b"""
    <location path="Default Web Site/Rpc">
        <system.webServer>
            <security>
                <access sslFlags="None" />
            </security>
        </system.webServer>
    </location>"""


def test_a_new_location_after_one_started_on_the_line_before_is_indented_like_the_others():
    """`</location><location path="Default Web Site/mapi">` (joined by hand): the <location>
    appended after it went to column 0, as if it had the indentation of that line's start."""
    real = (EXCHANGE / "e2013-cas.applicationHost.config").read_bytes()
    raw = joined_after_the_location_before(
        without_location(real, b"Default Web Site/Rpc"), b"Default Web Site/mapi"
    )
    assert b'    </location><location path="Default Web Site/mapi">\n' in raw
    output = offload(raw, Request(paths=("Default Web Site/Rpc",))).output
    assert raw.endswith(b"    </location>\n\n</configuration>\n")
    assert output == raw[: -len(b"\n\n</configuration>\n")] + NEW_RPC + b"\n\n</configuration>\n"


SITE_SSL = b"""    <location path="Default Web Site">
        <system.webServer>
            <security>
                <access sslFlags="Ssl" />
            </security>
        </system.webServer>
    </location>"""
OWA_NONE = b"""
        <system.webServer>
            <security>
                <access sslFlags="None" />
            </security>
        </system.webServer>"""


def test_a_location_started_on_the_line_before_gains_children_indented_like_the_others():
    """`</location><location ...>` then its end tag on a line of its own: what it gains is
    indented from the other <location> elements, not from that line's start."""
    raw = NO_LOCATION.replace(
        b"</configuration>",
        SITE_SSL + b'<location path="Default Web Site/owa">\n    </location>\n</configuration>',
    )
    output = offload(raw, Request(services=("owa",))).output
    assert output == raw.replace(b'/owa">\n', b'/owa">' + OWA_NONE + b"\n")


def test_the_only_location_started_on_the_line_before_does_not_set_the_indentation_unit():
    """`</system.webServer><location ...>`: its first child's indentation (two levels) is not
    one level, which IIS's other elements of the file show."""
    site = SITE_SSL.replace(b"    <location", b"<location", 1)
    raw = NO_LOCATION.replace(
        b"    </system.webServer>\n", b"    </system.webServer>" + site + b"\n"
    )
    output = offload(raw, Request(services=("owa",))).output
    new = b'\n    <location path="Default Web Site/owa">' + OWA_NONE + b"\n    </location>"
    assert output == raw.replace(b"    </location>\n", b"    </location>" + new + b"\n")


@pytest.mark.parametrize(
    "attributes",
    [
        b"""note=' sslFlags="None"' sslFlags="Ssl" """,
        b"""note=" sslFlags='None'" sslFlags='Ssl'""",
        b"""sslFlags="Ssl" note=' sslFlags="Ssl"'""",
    ],
)
def test_only_the_sslflags_attribute_is_rewritten_not_text_in_another_value(attributes):
    """Another attribute's quoted value may hold ` sslFlags="..."` (single quotes around double,
    or the reverse): the value rewritten is that of the sslFlags attribute itself, and the
    other attribute keeps its text."""
    access = b"<access " + attributes + b" />"
    block = OWA_SECURITY.replace(b"<authentication />", access)
    raw = NO_LOCATION.replace(b"</configuration>", block + b"</configuration>")
    result = offload(raw, Request(services=("owa",)))
    old = etree.fromstring(raw).find("location/system.webServer/security/access")
    new = etree.fromstring(result.output).find("location/system.webServer/security/access")
    assert new.get("sslFlags") == "None"
    assert new.get("note") == old.get("note")
    assert [o.action for o in result.outcomes] == ["rewritten"]


TWO_APPLICATIONS = NO_LOCATION.replace(
    b"            </site>",
    b"""                <application path="/ecp" applicationPool="MSExchangeECPAppPool">
                    <virtualDirectory path="/" physicalPath="C:\\\\ecp" />
                </application>
            </site>""",
)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"    </system.webServer>\n</configuration>", b"    </system.webServer></configuration>"),
        (
            b"    </system.webServer>\n</configuration>",
            b'    </system.webServer>\n    <location path="Default Web Site/x" /></configuration>',
        ),
    ],
    ids=["no-location", "after-a-location"],
)
def test_new_locations_before_a_root_end_tag_on_the_same_line_have_no_blank_line_between(
    before, after
):
    """`</configuration>` on the line of the element before it: the new <location> elements
    go on lines of their own, and only the last of them starts a new line for it (each did,
    which left a blank line between two of them)."""
    raw = TWO_APPLICATIONS.replace(before, after)
    assert raw.count(after) == 1
    output = offload(raw, Request(services=("owa", "ecp"))).output
    assert b"\n\n" not in output
    assert output.endswith(b"    </location>\n</configuration>\n")
    assert b'</location>\n    <location path="Default Web Site/ecp">' in output


def test_targets_of_new_locations_before_a_root_end_tag_on_their_line_have_their_lines():
    """Two new <location> elements where `</configuration>` followed the one before them on
    its line: the first gives its line ending to the second, which replaces its edit. Each
    target's line is that of its <access> in the output (the first target's edit was the one
    replaced, unknown to the plan's edits: a KeyError, and --format json an internal error)."""
    raw = TWO_APPLICATIONS.replace(
        b"    </system.webServer>\n</configuration>", b"    </system.webServer></configuration>"
    )
    result = offload(raw, Request(services=("owa", "ecp")))
    lines = result.output.split(b"\n")
    access = [number for number, line in enumerate(lines, 1) if b'sslFlags="None"' in line]
    targets = ("Default Web Site/owa", "Default Web Site/ecp")
    assert result.lines == dict(zip(targets, access, strict=True))
    assert [o.edit for o in result.outcomes] == list(result.edits)


def test_locations_that_share_lines_are_not_searched_again_for_each_new_one(monkeypatch):
    """Hundreds of `</location><location ...>` and as many new <location> elements after
    them: each new one is indented like the one that starts its line, found once for all (a
    search back through every <location> for each new one grew with the product of their
    numbers)."""
    count = 200
    apps = b"".join(
        b'                <application path="/app%d" />\n' % index for index in range(2 * count)
    )
    joined = b"".join(
        b'<location path="Default Web Site/app%d">\n        <system.webServer>\n'
        b'            <security>\n                <access sslFlags="Ssl" />\n'
        b"            </security>\n        </system.webServer>\n    </location>" % index
        for index in range(count)
    )
    raw = NO_LOCATION.replace(b"            </site>", apps + b"            </site>").replace(
        b"</configuration>", SITE_SSL + joined + b"\n</configuration>"
    )
    looked: list[int] = []
    for name in ("starts_line", "indent_of"):
        method = getattr(Document, name)

        def counted(self, offset, method=method):
            looked.append(offset)
            return method(self, offset)

        monkeypatch.setattr(Document, name, counted)
    paths = [f"Default Web Site/app{index}" for index in range(2 * count)]
    output = offload(raw, Request(paths=tuple(paths))).output
    assert len(looked) < count  # a search each: about count * count
    new = output[len(raw) - len(b"\n</configuration>\n") :]
    assert new.count(b'\n    <location path="Default Web Site/app') == count
    assert new.count(b"\n<location") == 0


def test_the_last_location_of_another_site_is_found_once_for_all_new_ones(monkeypatch):
    """The file's last <location> is of a site out of scope, found by a scan of the bytes after
    the last one in scope: once, not again for each new <location> appended after it (which
    grew with the product of their number and the bytes scanned)."""
    count = 50
    apps = b"".join(
        b'                <application path="/app%d" />\n' % index for index in range(count)
    )
    other = SITE_SSL.replace(b"Default Web Site", b"Other Site")
    raw = NO_LOCATION.replace(b"            </site>", apps + b"            </site>").replace(
        b"</configuration>", SITE_SSL + b"\n" + other + b"\n</configuration>"
    )
    scans: list[int] = []
    locate_last = document.locate_last

    def counted(data, element, start):
        scans.append(start)
        return locate_last(data, element, start)

    monkeypatch.setattr(document, "locate_last", counted)
    paths = [f"Default Web Site/app{index}" for index in range(count)]
    output = offload(raw, Request(paths=tuple(paths))).output
    assert len(scans) == 1
    assert output.startswith(raw[: -len(b"\n</configuration>\n")] + b'\n    <location path="')
    assert output.count(b'\n    <location path="Default Web Site/app') == count
