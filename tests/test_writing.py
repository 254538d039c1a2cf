"""Where new elements go in the bytes (confedit/writing.py), beyond what the corpus shows."""

from __future__ import annotations

import pytest
from lxml import etree

from confedit import offload
from confedit.plan import Request
from confedit.spans import root_end_tag

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
