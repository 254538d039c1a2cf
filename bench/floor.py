"""The floor: a Python process that reads a file and parses it with lxml, nothing else.

python bench/floor.py applicationHost.config
"""

from __future__ import annotations

import sys
from pathlib import Path

from lxml import etree


def main(argv: list[str]) -> int:
    """Parse each file named on the command line."""
    for name in argv:
        etree.fromstring(Path(name).read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
