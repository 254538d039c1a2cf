"""Colour on terminals: `--color auto|always|never`, NO_COLOR honoured, plain text otherwise."""

from __future__ import annotations

import os
from typing import Final, Protocol

import click

CHOICES: Final = ("auto", "always", "never")

# role -> (colour, bold, dim); one place to change the look
_ROLES: Final[dict[str, tuple[str | None, bool, bool]]] = {
    "added": ("green", False, False),
    "removed": ("red", False, False),
    "hunk": ("cyan", False, False),
    "header": (None, True, False),
    "good": ("green", False, False),
    "bad": ("red", True, False),
    "warn": ("yellow", False, False),
    "dim": (None, False, True),
}


class _Stream(Protocol):
    def isatty(self) -> bool: ...


def enabled(choice: str, stream: _Stream) -> bool:
    """Whether to colour what goes to `stream` (auto: a terminal, NO_COLOR unset, TERM not dumb).

    An explicit `always` wins over NO_COLOR, as no-color.org asks of command-line flags.
    """
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def paint(text: str, role: str | None, on: bool = True) -> str:
    """`text` in the colour of `role`, or unchanged when colour is off or the role is None."""
    if not on or role is None or not text:
        return text
    colour, bold, dim = _ROLES[role]
    return click.style(text, fg=colour, bold=bold or None, dim=dim or None)


def paint_diff(diff: bytes) -> bytes:
    """A unified diff with coloured lines; line endings (CRLF too) stay outside the colour."""
    out = []
    for line in diff.splitlines(keepends=True):
        body = line.rstrip(b"\r\n")
        ending = line[len(body) :]
        role = _diff_role(body)
        if role is None:
            out.append(line)
            continue
        out.append(
            paint(body.decode("utf-8", "surrogateescape"), role).encode("utf-8", "surrogateescape")
            + ending
        )
    return b"".join(out)


def _diff_role(line: bytes) -> str | None:
    if line.startswith((b"--- ", b"+++ ")):
        return "header"
    if line.startswith(b"@@"):
        return "hunk"
    if line.startswith(b"+"):
        return "added"
    if line.startswith(b"-"):
        return "removed"
    if line.startswith(b"\\"):
        return "dim"
    return None
