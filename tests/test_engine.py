"""The offload engine on every real Exchange file, as stored and as Windows exports it.

Each check is made by independent means: lxml reads the values, a regex finds the Back End,
the real `patch` and `git apply` programs apply the diff.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from confedit import offload
from confedit.errors import Refused, UsageProblem
from confedit.plan import Request
from tests.conftest import (
    EXCHANGE,
    SAMPLE,
    VARIANTS,
    corpus_files,
    variant,
    well_formed_exchange,
)
from tests.helpers import (
    ALLOWED_CHANGED_LINE,
    access_values,
    back_end_blocks,
    changed_lines,
    run_git_apply,
    run_patch,
    strip_access,
)

# Read off the files (grep for the <location> of each target; see the corpus README):
# inherited targets have <security> without <access>; explicit ones have sslFlags="Ssl, Ssl128".
INSERTED_2013 = {"owa", "ecp", "ews", "autodiscover", "eas"}
EXPECTED_ACTIONS = {
    "e2013-cas.applicationHost.config": INSERTED_2013,
    "e2013-cas-mbx.applicationHost.config": INSERTED_2013,
    "e2013-cas-extended-protection.applicationHost.config": INSERTED_2013,
    "e2016.applicationHost.config": {"owa", "ecp", "ews", "autodiscover"},
    "e2019.applicationHost.config": {"owa", "ecp", "ews", "autodiscover"},
}
DEFAULT_PATHS = {
    "owa": "Default Web Site/owa",
    "ecp": "Default Web Site/ecp",
    "ews": "Default Web Site/EWS",
    "autodiscover": "Default Web Site/Autodiscover",
    "eas": "Default Web Site/Microsoft-Server-ActiveSync",
    "oab": "Default Web Site/OAB",
    "mapi": "Default Web Site/mapi",
}
# The Extended Protection file must be refused by default (safety issue); here it is edited.
REQUEST = Request(allow_extended_protection=True)
FILES = well_formed_exchange()
CASES = [(path, kind) for path in FILES for kind in VARIANTS]


def _ids(case):
    return f"{case[0].name}-{case[1]}"


@pytest.fixture(scope="module", params=CASES, ids=[_ids(c) for c in CASES])
def case(request):
    path, kind = request.param
    raw = variant(path.read_bytes(), kind)
    return path, kind, raw, offload(raw, REQUEST, name=path.name)


def test_each_target_gets_the_expected_kind_of_edit(case):
    path, _, _, result = case
    inserted = EXPECTED_ACTIONS[path.name]
    actions = {o.target.service: o.action for o in result.outcomes}
    assert actions == {s: "inserted" if s in inserted else "rewritten" for s in DEFAULT_PATHS}
    assert {o.target.service: o.target.path for o in result.outcomes} == DEFAULT_PATHS


def test_every_target_ends_explicitly_none_and_nothing_else_changes(case):
    _, _, raw, result = case
    after = access_values(result.output.removeprefix(codecs.BOM_UTF8))
    for path in DEFAULT_PATHS.values():
        assert after[path] == "None"
    targets = {p.casefold() for p in DEFAULT_PATHS.values()}
    assert strip_access(result.output.removeprefix(codecs.BOM_UTF8), targets) == strip_access(
        raw.removeprefix(codecs.BOM_UTF8), targets
    )


def test_back_end_bytes_are_untouched(case):
    _, _, raw, result = case
    before = back_end_blocks(raw)
    assert before or "mbx" not in case[0].name
    assert back_end_blocks(result.output) == before


def test_bom_and_line_endings_are_kept(case):
    _, kind, raw, result = case
    assert result.output.startswith(codecs.BOM_UTF8) == raw.startswith(codecs.BOM_UTF8)
    lf_only = result.output.count(b"\n") - result.output.count(b"\r\n")
    if kind == "stored":
        assert b"\r\n" not in result.output
    else:
        assert lf_only == 0, "every line of a CRLF file stays CRLF, inserted ones included"


def test_the_diff_changes_only_offload_lines(case):
    _, _, _, result = case
    lines = changed_lines(result.diff("applicationHost.config"))
    assert lines
    assert all(ALLOWED_CHANGED_LINE.match(line.rstrip(b"\r")) for line in lines), lines


def test_offload_is_idempotent(case):
    path, _, _, result = case
    again = offload(result.output, REQUEST, name=path.name)
    assert again.output == result.output
    assert not again.changed
    assert {o.action for o in again.outcomes} == {"unchanged"}
    assert again.diff("x") == b""


def test_patch_applies_the_diff_and_reverses_it(case, tmp_path):
    _, _, raw, result = case
    label = "etc/applicationHost.config"
    diff = result.diff(label)
    assert run_patch(tmp_path / "fwd", label, raw, diff) == result.output
    assert run_patch(tmp_path / "rev", label, result.output, diff, reverse=True) == raw


def test_git_apply_applies_the_diff(case, tmp_path):
    _, _, raw, result = case
    label = "applicationHost.config"
    assert run_git_apply(tmp_path, label, raw, result.diff(label)) == result.output


def test_extended_protection_file_is_refused_by_default():
    path = next(p for p in FILES if "extended-protection" in p.name)
    with pytest.raises(Refused) as info:
        offload(path.read_bytes(), name=path.name)
    assert "Extended Protection is not supported" in str(info.value)
    assert "SSL bridging" in str(info.value)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_files_load_or_fail_cleanly(path):
    """Every real file either offloads, or is refused/invalid with a reason; none crashes."""
    from confedit.errors import ConfeditError

    try:
        result = offload(path.read_bytes(), REQUEST, name=path.name)
    except ConfeditError as error:
        assert error.exit_code in (3, 4)
        assert "malformed" in path.name or "reverse-proxy" in path.name
    else:
        assert result.changed


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_result_is_freed_without_the_garbage_collector(path):
    """No reference cycle holds a Result, its Document or its tree: batch runs free each file's
    memory as soon as it is done, not whenever the cycle collector happens to run."""
    import gc

    raw = path.read_bytes()
    gc.collect()
    gc.disable()
    try:
        result = offload(raw, REQUEST, name=path.name)
        result.diff("applicationHost.config")
        assert result.lines
        del result
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_file_with_carriage_returns_alone_is_patched_on_its_one_line(tmp_path):
    # As the README says: no line feed, so one line to diff, patch and git alike.
    raw = (EXCHANGE / "e2013-cas.applicationHost.config").read_bytes()
    carriage_returns = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    result = offload(carriage_returns, name="cr")
    assert b"\n" not in result.output
    assert result.output.count(b"\r") == carriage_returns.count(b"\r")
    values = access_values(result.output)
    assert [values[path] for path in DEFAULT_PATHS.values()] == ["None"] * len(DEFAULT_PATHS)
    diff = result.diff("applicationHost.config")
    assert diff.count(b"\n@@ -1 +1 @@\n") == 1
    assert run_git_apply(tmp_path, "applicationHost.config", carriage_returns, diff) == (
        result.output
    )


@pytest.mark.parametrize("attribute", ['sslFlags="Ssl"', 'enabled="true"'], ids=["set", "added"])
def test_a_target_s_line_is_its_access_start_tag_when_the_attribute_is_on_a_later_line(attribute):
    """A target whose <access> start tag goes over two lines, sslFlags (or the attribute
    sslFlags is added after) on the second, was reported at the second line, while its
    `before.line` and every other target's line name the line of '<access'."""
    from confedit.testing.build import EXCHANGE_BACK_END, EXCHANGE_FRONT_END, Loc, Style, render

    raw = render(
        [EXCHANGE_FRONT_END, EXCHANGE_BACK_END],
        [Loc("Default Web Site/owa", "Ssl")],
        Style(newline="\n", bom=False, header_comment=False),
    ).replace(b'<access sslFlags="Ssl"', b"<access\n    " + attribute.encode())
    assert raw.count(b"<access\n    ") == 1
    result = offload(raw, Request(services=("owa",)), name="x")
    assert result.outcomes[0].action == "rewritten"
    start = result.output.index(b"<access\n    ")
    assert result.lines["Default Web Site/owa"] == result.output.count(b"\n", 0, start) + 1


@pytest.mark.parametrize("changed", [True, False], ids=["changed", "unchanged"])
@pytest.mark.parametrize("label", [Path("applicationHost.config"), b"a.config"], ids=repr)
def test_a_diff_label_that_is_not_a_str_is_a_usage_problem(changed, label):
    """result.diff(config), a Path, failed inside with a TypeError, which no `except
    ConfeditError` catches, and only when something changed: an offloaded file let it pass."""
    raw = SAMPLE.read_bytes()
    result = offload(raw if changed else offload(raw).output, name="a.config")
    with pytest.raises(UsageProblem) as info:
        result.diff(label)
    kind = type(label).__name__
    assert str(info.value).startswith(f"diff takes the file's name as a str, not {kind}: ")
