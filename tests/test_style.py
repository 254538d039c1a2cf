"""Colour: when it is on, and that it never changes the text under it."""

from __future__ import annotations

import pytest

from confedit.style import enabled, paint, paint_diff
from tests.conftest import SAMPLES
from tests.helpers import strip_ansi


class Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    "case",
    [
        ("auto", True, None, "xterm", True),
        ("auto", False, None, "xterm", False),
        ("auto", True, "1", "xterm", False),
        ("auto", True, "", "xterm", True),  # NO_COLOR counts only when not empty
        ("auto", True, None, "dumb", False),
        ("always", False, "1", "dumb", True),  # an explicit flag wins
        ("never", True, None, "xterm", False),
    ],
)
def test_when_colour_is_on(monkeypatch, case):
    choice, tty, no_color, term, expected = case
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setenv("TERM", term)
    assert enabled(choice, Stream(tty)) is expected


def test_paint_is_plain_when_off_or_without_a_role():
    assert paint("text", "bad", on=False) == "text"
    assert paint("text", None) == "text"
    assert paint("text", "bad") != "text" and strip_ansi(paint("text", "bad").encode()) == b"text"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_a_coloured_diff_is_the_diff_plus_colour_codes_only(newline):
    diff = (SAMPLES / "exchange2013-cas.offload.diff").read_bytes().replace(b"\n", newline)
    coloured = paint_diff(diff)
    assert strip_ansi(coloured) == diff
    lines = coloured.split(b"\n")
    assert lines[0].startswith(b"\x1b[1m--- a/")
    assert any(line.startswith(b"\x1b[32m+") for line in lines)
    assert any(line.startswith(b"\x1b[31m-") for line in lines)
    assert any(line.startswith(b"\x1b[36m@@") for line in lines)
    # the line ending stays outside the colour, so a CR never lands inside an escape sequence
    assert all(not line.endswith(b"\r\x1b[0m") for line in lines)
