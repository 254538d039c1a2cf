"""diffing.py: labels and hunks built from edit positions."""

from __future__ import annotations

from pathlib import Path

from confedit.diffing import diff_label, unified_diff
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
