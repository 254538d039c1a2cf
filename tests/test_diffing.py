"""diffing.py: labels and hunks built from edit positions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confedit.diffing import diff_label, header_name, unified_diff
from confedit.edits import Edit, splice
from tests.helpers import run_patch


def edit(start: int, end: int, text: bytes) -> Edit:
    return Edit(start, end, text, None, None, (), "x")


def test_label_is_relative_or_the_bare_name(tmp_path):
    inside = tmp_path / "etc" / "applicationHost.config"
    assert diff_label(inside, cwd=tmp_path) == "etc/applicationHost.config"
    assert diff_label(Path("/elsewhere/app.config"), cwd=tmp_path) == "app.config"
    assert diff_label(tmp_path / ".." / "up.config", cwd=tmp_path) == "up.config"


def test_no_edits_no_diff():
    assert unified_diff(b"a\n", b"a\n", [], "x") == b""


def test_far_apart_edits_make_separate_hunks_and_close_ones_merge(tmp_path):
    old = b"".join(b"line %d\r\n" % i for i in range(1, 41))
    edits = [
        edit(old.index(b"line 5\r"), old.index(b"line 5\r") + 6, b"LINE 5"),
        edit(old.index(b"line 9\r"), old.index(b"line 9\r") + 6, b"LINE 9"),
        edit(old.index(b"line 30"), old.index(b"line 30"), b"new\r\n"),
    ]
    new = splice(old, edits)
    diff = unified_diff(old, new, edits, "f.txt")
    assert diff.count(b"@@ -") == 2
    assert b"@@ -2,11 +2,11 @@" in diff
    assert b"@@ -27,6 +27,7 @@" in diff
    assert run_patch(tmp_path, "f.txt", old, diff) == new


def test_last_line_without_newline(tmp_path):
    old = b"a\nb\nc"
    edits = [edit(4, 5, b"C\nD")]
    new = splice(old, edits)
    diff = unified_diff(old, new, edits, "f")
    assert b"\\ No newline at end of file" in diff
    assert run_patch(tmp_path, "f", old, diff) == new
    assert run_patch(tmp_path / "r", "f", new, diff, reverse=True) == old


def test_a_lone_carriage_return_stays_inside_its_line(tmp_path):
    old = b"a\rb\nc\n"
    edits = [edit(5, 6, b"C")]
    new = splice(old, edits)
    assert run_patch(tmp_path, "f", old, unified_diff(old, new, edits, "f")) == new


def test_label_through_a_symlinked_current_directory(tmp_path, monkeypatch):
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "sub" / "applicationHost.config").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.chdir(link)
    monkeypatch.setenv("PWD", str(link))
    assert diff_label(link / "sub" / "applicationHost.config") == "sub/applicationHost.config"
    assert diff_label("sub/applicationHost.config") == "sub/applicationHost.config"
    assert diff_label(real / "sub" / "applicationHost.config") == "sub/applicationHost.config"


_LINES = st.lists(st.sampled_from([b"a", b"b", b"<x/>", b"  </y>", b"", b"a\r"]), max_size=25)


@st.composite
def edited_texts(draw):
    """A text of a few look-alike lines, and non-overlapping edits anywhere in it."""
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    old = ending.join(draw(_LINES)) + draw(st.sampled_from([b"", ending]))
    cuts = sorted(draw(st.lists(st.integers(0, len(old)), max_size=6)))
    texts = st.lists(st.sampled_from([b"a", b"b", ending, b"<z/>", b"  "]), max_size=4)
    edits = [
        edit(start, end, b"".join(draw(texts)))
        for start, end in zip(cuts[::2], cuts[1::2], strict=False)
    ]
    return old, edits


@given(edited_texts())
def test_the_diff_of_any_edits_turns_old_into_new_with_patch(case):
    old, edits = case
    new = splice(old, edits)
    diff = unified_diff(old, new, edits, "f")
    if old == new:
        assert diff == b""
        return
    with tempfile.TemporaryDirectory() as tmp:
        assert run_patch(Path(tmp), "f", old, diff) == new


@st.composite
def engine_edits(draw):
    """Edits of the shapes confedit makes, on look-alike lines: a value rewritten inside a line,
    and lines inserted before a line break (a new last child) or at the start of a line; with
    the number of diff lines each should cost at most."""
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    lines = draw(st.lists(st.sampled_from([b"a", b"b", b"<x/>", b"  </y>"]), min_size=1))
    old = ending.join(lines) + ending
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + len(ending))
    chosen = sorted(draw(st.sets(st.integers(0, len(lines) - 1), min_size=1, max_size=4)))
    block = st.lists(st.sampled_from([b"a", b"<x/>", b"  <z/>"]), min_size=1, max_size=3)
    edits, cost = [], 0
    for index in chosen:
        kind = draw(st.sampled_from(["rewrite", "after", "before"]))
        start, length = starts[index], len(lines[index])
        if kind == "rewrite":
            value = draw(st.sampled_from([b"N", b"<x/>"]))
            edits.append(edit(start, start + length, value))
            cost += 2 * (value != lines[index])  # one line out, one line in
        else:
            added = draw(block)
            text = ending + ending.join(added) if kind == "after" else ending.join(added) + ending
            at = start + length if kind == "after" else start
            edits.append(edit(at, at, text))
            cost += len(added)
    return old, edits, cost


@given(engine_edits())
def test_the_diff_of_confedits_edits_shows_only_the_lines_they_write(case):
    """Found from the edit positions alone, the diff shows no line the edits did not write or
    rewrite, and still applies."""
    old, edits, cost = case
    new = splice(old, edits)
    diff = unified_diff(old, new, edits, "f")
    assert sum(1 for line in diff.split(b"\n")[2:] if line[:1] in (b"-", b"+")) <= cost
    if old != new:
        with tempfile.TemporaryDirectory() as tmp:
            assert run_patch(Path(tmp), "f", old, diff) == new


@pytest.mark.parametrize(
    ("label", "line"),
    [
        ("ex/cas01/applicationHost.config", b"a/ex/cas01/applicationHost.config\n"),
        ("ex/srv 01/a.config", b"a/ex/srv 01/a.config\t\n"),
        ("ex/t\tab/a.config", b'"a/ex/t\\tab/a.config"\n'),
        ("ex/new\nline/a.config", b'"a/ex/new\\nline/a.config"\n'),
        ('ex/q"x/a.config', b'"a/ex/q\\"x/a.config"\n'),
        ("ex/b\\s/a.config", b'"a/ex/b\\\\s/a.config"\n'),
        ("ex/bell\a/a.config", b'"a/ex/bell\\a/a.config"\n'),
        ("ex/esc\x1b/a.config", b'"a/ex/esc\\033/a.config"\n'),
        ("ex/sérveur/a.config", "a/ex/sérveur/a.config\n".encode()),
    ],
)
def test_header_names_are_written_as_git_writes_them(label, line):
    assert header_name("a/", label) == line
