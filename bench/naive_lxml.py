"""What people write instead of confedit: parse with lxml, set one attribute, serialise.

    python bench/naive_lxml.py applicationHost.config patched.config

It makes the same single edit as the benchmark's xmlstarlet command (OAB's explicit sslFlags).
lxml re-serialises the whole tree: the BOM goes, CRLF becomes LF and the declaration is
rewritten, so its diff against the input is the whole file.
"""

from __future__ import annotations

import sys

from lxml import etree

OAB_ACCESS = "location[@path='Default Web Site/OAB']/system.webServer/security/access"


def main(argv: list[str]) -> int:
    """Set sslFlags="None" on OAB's <access> in argv[0] and write the result to argv[1]."""
    source, destination = argv
    tree = etree.parse(source)
    for access in tree.getroot().iterfind(OAB_ACCESS):
        access.set("sslFlags", "None")
    tree.write(destination, xml_declaration=True, encoding="UTF-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
