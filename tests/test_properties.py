"""The safety properties of offload(), on generated applicationHost.config files.

Files come from confedit.testing.strategies (every formatting style, UTF-8 and UTF-16, look-alike
paths, locks, Extended Protection, invalid files). Each property is checked by independent means:
lxml and tests/reference_model.py for meaning, regular expressions for bytes, xmldiff for the
semantic change, the real `patch` program for the diff.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from xmldiff import actions as xd_actions
from xmldiff import main as xd_main

from confedit import audit, document, offload
from confedit.baseline import back_end_changes
from confedit.document import load
from confedit.errors import ConfeditError, InvalidInput, Refused, UsageProblem
from confedit.iis import SSL_FLAGS, TOKEN_CHECKING, Config
from confedit.plan import Request
from confedit.report import result_json
from confedit.testing import strategies as st_iis
from confedit.testing.build import EXCHANGE_FRONT_END, Loc, Site, Style
from confedit.testing.strategies import GeneratedConfig
from tests import reference_model as model
from tests.helpers import back_end_blocks, location_blocks, run_patch, split_bom
from tests.properties import (
    ANY_CONFIGS,
    BACK_END_PATHS,
    CONFIGS,
    INVALID_CONFIGS,
    OVERRIDE_SPELLINGS,
    SERVER_LOCKS,
    STYLES,
    any_requests,
    compact_locations,
    edit_is_narrow,
    expected_targets,
    interesting_paths,
    is_below,
    misindented_lines,
    parse,
    pinned_tree,
    requests,
    respelled,
    with_server_lock,
    working,
)

LF = Style(newline="\n", bom=False, header_comment=False)
STOPS_AT_APPLICATIONS = (("inheritInChildApplications", "false"),)


# (file, request): files offload must accept, with requests they allow
CASES = CONFIGS.flatmap(lambda config: st.tuples(st.just(config), requests(config)))


# Back End invariance -----------------------------------------------------------------------------


@given(CASES)
def test_an_offload_never_trips_the_back_end_gate_of_since(case):
    """What `--since` compares (the Back End's locations, site, pools, effective policy and
    whether a web.config could set sslFlags there) is never changed by an offload it allows."""
    config, request = case
    try:
        result = offload(config.raw, request)
    except Refused:
        return
    scope = ("Exchange Back End",)
    before, after = (
        load(config.raw, "before", sites=scope),
        load(result.output, "after", sites=scope),
    )
    assert back_end_changes(before, after) == []


@given(ANY_CONFIGS.flatmap(lambda c: st.tuples(st.just(c), any_requests(c))))
def test_back_end_bytes_never_change_or_the_request_is_refused(case):
    config, request = case
    back_end_named = any(
        model.key(p).partition("/")[0] == "exchange back end" for p in request.paths
    )
    try:
        result = offload(config.raw, request)
    except (Refused, InvalidInput, UsageProblem) as error:
        if back_end_named and not config.invalid:
            assert isinstance(error, Refused)
            assert "Exchange Back End site must keep requiring SSL" in str(error)
        return
    assert not back_end_named, "a Back End path was accepted"
    before = back_end_blocks(working(config.raw))
    assert back_end_blocks(working(result.output)) == before


# Every way of loading agrees ---------------------------------------------------------------------


@contextlib.contextmanager
def loaded_as(loader: str) -> Iterator[None]:
    """load() as for a file of over 8 MB: from a copy without the other sites ("reduced"), or
    by a parse that drops them ("pruned", when the copy cannot be made with certainty)."""
    saved = document.PRUNE_ABOVE, document.reduced_copy
    document.PRUNE_ABOVE = 0
    if loader == "pruned":
        document.reduced_copy = lambda raw, scope: None
    try:
        yield
    finally:
        document.PRUNE_ABOVE, document.reduced_copy = saved


def outcome(raw: bytes, request: Request) -> tuple[object, ...]:
    """What a user sees of an offload and an audit: the output and the JSON report (which
    reads the edited elements' lines and tags), or the error and its message; the audit's rows."""
    try:
        result = offload(raw, request)
        done: tuple[object, ...] = (
            result.output,
            result_json(result, diff="", status="", exit_code=0),
        )
    except (Refused, InvalidInput, UsageProblem) as error:
        done = (type(error).__name__, str(error))
    try:
        audited: object = audit(raw, site=request.site).to_json()
    except (Refused, InvalidInput, UsageProblem) as error:
        audited = (type(error).__name__, str(error))
    return done, audited


@given(
    ANY_CONFIGS.flatmap(lambda c: st.tuples(st.just(c), any_requests(c))),
    st.sampled_from(["reduced", "pruned"]),
)
def test_the_large_file_loaders_give_what_the_plain_parse_gives(case, loader):
    config, request = case
    expected = outcome(config.raw, request)
    with loaded_as(loader):
        assert outcome(config.raw, request) == expected


# Only the intended change ------------------------------------------------------------------------


def _normalised(raw: bytes) -> etree._Element:
    """The tree without whitespace-only text: indentation is not meaning."""
    root = parse(raw)
    for node in root.iter():
        if not (node.text or "").strip():
            node.text = None
        if not (node.tail or "").strip():
            node.tail = None
    return root


# xmldiff matches nodes by similarity (F = 0.5 by default); an <access> whose only attribute
# changed, or appeared, is then not "similar" to itself and comes out as insert + delete.
# With so low an F, similarity must be measured, not bounded: the default ("fast", an upper
# bound that counts letters in any order) took <isapiFilters> and <system.webServer> for one
# another, and described an added sslFlags as ten moves and renames.
XMLDIFF_OPTIONS = {"F": 0.1, "ratio_mode": "accurate"}


def semantic_changes(old_raw: bytes, new_raw: bytes) -> list[object]:
    """xmldiff's edit script from input to output, location by location.

    On a whole file xmldiff matches look-alike <location> elements by similarity and may
    "move" one onto another; a location keeps its place in the file (new ones are appended
    after the last), so each is compared with the one at the same place, the new ones with
    nothing, and the rest of the file as one tree.
    """
    old, new = _normalised(old_raw), _normalised(new_raw)
    old_locations, new_locations = old.findall("location"), new.findall("location")
    script = []
    for before, after in zip(old_locations, new_locations, strict=False):
        script += xd_main.diff_trees(copy.deepcopy(before), copy.deepcopy(after), XMLDIFF_OPTIONS)
    appended = etree.Element("configuration")
    appended.extend(copy.deepcopy(loc) for loc in new_locations[len(old_locations) :])
    script += xd_main.diff_trees(etree.Element("configuration"), appended)
    for tree, locations in ((old, old_locations), (new, new_locations)):
        for location in locations:
            tree.remove(location)
    return script + xd_main.diff_trees(old, new)


def _expected_actions(root: etree._Element, targets: set[str]) -> Counter[tuple[str, str, str]]:
    """What xmldiff must find for each target that needs a change (tests/reference_model's
    reading of the input, and the rules of appcmd)."""
    expected: Counter[tuple[str, str, str]] = Counter()
    for target in targets:
        locations = [
            loc for loc in root.findall("location") if model.key(loc.get("path", "")) == target
        ]
        holders = [loc.find("system.webServer/security/access") for loc in locations]
        access = next((a for a in holders if a is not None), None)
        if access is not None:
            value = access.get("sslFlags")
            if value is None:
                expected["InsertAttrib", "sslFlags", "None"] += 1
            elif model.flag_bits(value):
                expected["UpdateAttrib", "sslFlags", "None"] += 1
            continue
        # The first that neither locks nor unlocks its sections, else a new one (see pin_none).
        element = next((loc for loc in locations if model.plain(loc)), None)
        missing = ["system.webServer", "security", "access"]
        if element is None:
            expected["InsertNode", "location", ""] += 1
            expected["InsertAttrib", "path", target] += 1
        while element is not None and missing and element.find(missing[0]) is not None:
            element = element.find(missing.pop(0))
        for tag in missing:
            expected["InsertNode", tag, ""] += 1
        expected["InsertAttrib", "sslFlags", "None"] += 1
    return expected


def _described(action: object) -> tuple[str, str, str]:
    if isinstance(action, xd_actions.InsertNode):
        return ("InsertNode", action.tag, "")
    if isinstance(action, (xd_actions.InsertAttrib, xd_actions.UpdateAttrib)):
        value = action.value if action.name == "sslFlags" else model.key(action.value)
        return (type(action).__name__, action.name, value)
    return (type(action).__name__, repr(action), "")


@given(CASES)
@example(  # two <location> elements for one path, neither with access: the first takes it
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (
                Loc("Default Web Site/owa", shape="security"),
                Loc("Default Web Site/OAB", "Ssl"),
                Loc("default web site/owa/", shape="webserver"),
            ),
            LF,
            "Ssl",
        ),
        Request(services=("owa",)),
    )
)
@example(  # ... unless the first unlocks its sections: then the first that does not
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (
                Loc(
                    "Default Web Site/owa",
                    shape="security",
                    attributes=(("overrideMode", "Allow"),),
                ),
                Loc("Default Web Site/owa", shape="webserver"),
            ),
            LF,
            "Ssl",
        ),
        Request(services=("owa",)),
    )
)
@example(  # a section after </security> that "fast" similarity takes for <system.webServer>
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (Loc("Default Web Site/owa", after_security=("isapiFilters",)),),
            LF,
            "None",
        ),
        Request(services=("owa",)),
    )
)
def test_xmldiff_finds_exactly_one_change_per_target_that_needed_one(case):
    config, request = case
    result = offload(config.raw, request)
    script = semantic_changes(config.raw, result.output)
    targets = expected_targets(parse(config.raw), request)
    expected = _expected_actions(parse(config.raw), targets)
    assert Counter(_described(action) for action in script) == expected, script


# Effective values --------------------------------------------------------------------------------


def _nearest_target(path_key: str, targets: set[str]) -> str | None:
    above = [t for t in targets if t == path_key or is_below(path_key, t)]
    return max(above, key=len) if above else None


@given(CASES)
@example(  # a target already None in another spelling keeps it ("0"), as appcmd would
    (
        GeneratedConfig((EXCHANGE_FRONT_END,), (Loc("Default Web Site/owa", "0"),), LF, "Ssl"),
        Request(services=("owa",)),
    )
)
@example(  # a folder below a descendant inherits the None written there: no target of its own
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (
                Loc("Default Web Site/owa", "Ssl"),
                Loc("Default Web Site/owa/auth", shape="security"),
            ),
            LF,
            "None",
        ),
        Request(paths=("Default Web Site",), include_descendants=True),
    )
)
@example(  # inheritInChildApplications="false" keeps the None from owa's child applications
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (Loc("Default Web Site/owa", "Ssl", attributes=STOPS_AT_APPLICATIONS),),
            LF,
            "Ssl",
        ),
        Request(services=("owa",), include_descendants=True),
    )
)
def test_effective_values_after_offload(case):
    config, request = case
    result = offload(config.raw, request)
    before, after = parse(config.raw), parse(result.output)
    targets = expected_targets(before, request)
    # Keyed as the model keys paths: confedit's keys take non-ASCII letters to upper case, as
    # Windows compares names, and the model's casefold() to lower case.
    assert {model.key(outcome.target.path) for outcome in result.outcomes} == targets
    appcmd = pinned_tree(before, targets)  # what appcmd would leave, in meaning
    for path in interesting_paths(after):
        old, old_level = model.effective(before, path)
        new, _ = model.effective(after, path)
        assert new == model.effective(appcmd, path)[0], path
        owner = _nearest_target(path, targets)
        if owner == path:
            assert model.flag_bits(new) == 0, f"target {path} is {new!r}"
        elif owner is None:
            assert new == old, f"{path} is no target and not below one"
        elif new != old:  # below a target: only what inherited from it (or above it) changes
            inherited = old_level is None or old_level in model.levels(owner)
            assert inherited and model.flag_bits(new) == 0, path


# Idempotence -------------------------------------------------------------------------------------


@given(CASES)
def test_offload_is_idempotent_byte_for_byte(case):
    config, request = case
    once = offload(config.raw, request)
    twice = offload(once.output, request)
    assert twice.output == once.output
    assert not twice.changed
    assert twice.diff("applicationHost.config") == b""


# The diff round trip -----------------------------------------------------------------------------


@given(CASES)
def test_the_diff_round_trips_through_patch(case):
    """patch -p1 turns the input into the output, patch -R turns it back (UTF-16 files: their
    text in UTF-8, which is what the diff is written in)."""
    config, request = case
    result = offload(config.raw, request)
    label = "inetsrv/config/applicationHost.config"
    diff = result.diff(label)
    old, new = working(config.raw), working(result.output)
    assert (diff == b"") == (old == new)
    if not diff:
        return
    with tempfile.TemporaryDirectory() as tmp:
        assert run_patch(Path(tmp, "fwd"), label, old, diff) == new
        assert run_patch(Path(tmp, "rev"), label, new, diff, reverse=True) == old


# Formatting kept ---------------------------------------------------------------------------------


@given(CASES)
@example(  # found by this test: new elements got 4 spaces in a 2-space file without locations
    (GeneratedConfig((EXCHANGE_FRONT_END,), (), Style(indent="  "), "None"), Request())
)
@example(  # ... and in a tab-indented file whose only location is self-closed
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (Loc("Default Web Site/owa", shape="self-closed"),),
            Style(indent="\t"),
            "None",
        ),
        Request(services=("owa",)),
    )
)
def test_bytes_outside_the_edits_and_the_formatting_are_kept(case):
    config, request = case
    result = offload(config.raw, request)
    data, out = working(config.raw), working(result.output)
    edits = sorted(result.edits, key=lambda edit: edit.start)
    pieces, position = [], 0
    for edit in edits:
        assert edit.start >= position, "overlapping edits"
        assert edit_is_narrow(data, edit.start, edit.end, edit.text), edit
        pieces += [data[position : edit.start], edit.text]
        position = edit.end
    assert out == b"".join([*pieces, data[position:]]), "bytes outside the edits changed"

    bom, text = split_bom(config.raw)
    out_bom, out_text = split_bom(result.output)  # decodes in the input's encoding
    assert out_bom == bom
    assert out_text.partition("\n")[0] == text.partition("\n")[0]  # the XML declaration
    newline = config.style.newline
    for edit in edits:
        lf, crlf = edit.text.count(b"\n"), edit.text.count(b"\r\n")
        if isinstance(newline, str):
            assert (crlf == lf) == (newline == "\r\n") or lf == 0, edit.text
        else:
            assert crlf in (0, lf), edit.text
    compact = compact_locations(parse(config.raw))
    assert misindented_lines(text, config.style.indent, compact) == []  # the generator's
    assert misindented_lines(out_text, config.style.indent, compact) == []


@st.composite
def bare_access_cases(draw: st.DrawFn) -> tuple[GeneratedConfig, Request]:
    """A file whose front-end <access> elements (some of them) hold other attributes and no
    sslFlags, and a request for their paths: an offload adds the attribute to each."""
    config = draw(CONFIGS)
    front = model.key(EXCHANGE_FRONT_END.name)
    holders = [
        index
        for index, loc in enumerate(config.locations)
        if loc.shape == "access" and model.key(loc.path).partition("/")[0] == front
    ]
    assume(holders)
    chosen = draw(st.lists(st.sampled_from(holders), min_size=1, max_size=3, unique=True))
    locations = list(config.locations)
    for index in chosen:
        loc = locations[index]
        locks = loc.access_attributes or (("lockItem", "false"),)  # one that spares sslFlags
        locations[index] = dataclasses.replace(loc, ssl_flags=None, access_attributes=locks)
    bare = dataclasses.replace(config, locations=tuple(locations))
    return bare, Request(paths=tuple(locations[index].path for index in chosen))


@given(bare_access_cases())
def test_an_added_sslflags_comes_after_the_other_attributes(case):
    config, request = case
    result = offload(config.raw, request)
    data = working(config.raw)
    added = [edit for edit in result.edits if edit.text == b' sslFlags="None"']
    assert added, result.edits
    for edit in result.edits:
        assert edit_is_narrow(data, edit.start, edit.end, edit.text), (edit, data[edit.end :][:40])


# Only the targets' locations ---------------------------------------------------------------------


@given(CASES)
def test_only_target_locations_change(case):
    """Every <location> that is not a target keeps its bytes; new ones are targets."""
    config, request = case
    result = offload(config.raw, request)
    targets = expected_targets(parse(config.raw), request)
    old = location_blocks(working(config.raw))
    new = location_blocks(working(result.output))
    assert len(new) >= len(old)
    for (path, block), (new_path, new_block) in zip(old, new, strict=False):
        assert new_path == path
        assert model.key(path) in targets or new_block == block, path
    assert all(model.key(path) in targets for path, _ in new[len(old) :])


# The library against the naive model -------------------------------------------------------------


@given(ANY_CONFIGS.filter(lambda config: not config.invalid))
def test_the_library_agrees_with_the_naive_model_everywhere(config):
    root = parse(config.raw)
    library = Config(load(config.raw))
    for path in interesting_paths(root):
        for setting, xpath in ((SSL_FLAGS, model.ACCESS), (TOKEN_CHECKING, model.TOKEN_CHECKING)):
            value, level = model.effective(root, path, xpath, setting.attribute, setting.default)
            resolved = library.resolve(path, setting)
            source = model.key(resolved.source.path) if resolved.source else None
            assert (resolved.value, source) == (value, level), (path, setting.attribute)


def test_the_naive_model_follows_inherit_in_child_applications():
    """The reference model itself, on the case the corpus never shows."""
    from confedit.testing.build import App, render

    site = Site("Default Web Site", (App("/"), App("/app"), App("/app/child")))
    stop = (("inheritInChildApplications", "false"),)
    root = parse(render([site], [Loc("Default Web Site/app", "Ssl", attributes=stop)], LF))
    assert model.effective(root, "Default Web Site/app/folder") == ("Ssl", "default web site/app")
    assert model.effective(root, "Default Web Site/app/child") == ("None", "")


# Locks -------------------------------------------------------------------------------------------


def _written(root: etree._Element, targets: set[str]) -> list[str]:
    """The targets whose own <access> does not already say None: those an offload writes to."""
    values = {target: model.explicit(root, target) for target in targets}
    return sorted(t for t, value in values.items() if value is None or model.flag_bits(value))


@given(CASES, st.sampled_from(SERVER_LOCKS))
def test_a_lock_above_the_targets_refuses_exactly_the_changes_it_forbids(case, lock):
    """A lock on the server level's <access> or <security> reaches every path: an offload that
    writes anywhere is refused if the lock forbids sslFlags there, and allowed if it does not."""
    config, request = case
    tag, attribute, value, forbids = lock
    raw = with_server_lock(config.raw, tag, attribute, value)
    root = parse(raw)
    written = _written(root, expected_targets(root, request))
    try:
        offload(raw, request)
    except Refused as error:
        assert forbids and written, str(error)
        assert "Lock violation" in str(error) and f'{attribute}="{value}"' in str(error)
        return
    assert not (forbids and written), f'{attribute}="{value}" did not stop writing to {written}'


# Delegation to web.config files ------------------------------------------------------------------


@given(CASES, st.sampled_from(OVERRIDE_SPELLINGS))
@example(  # a target's own location unlocks its access section
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (Loc("Default Web Site/owa", "Ssl", attributes=(("overrideMode", "Allow"),)),),
            LF,
            "None",
        ),
        Request(services=("owa",)),
    ),
    "allowOverride",
)
@example(  # the server level's <location path=""> unlocks it, the registration does not
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (Loc("", "Ssl", attributes=(("overrideMode", "Allow"),)),),
            LF,
            None,
            access_override_default="Deny",
        ),
        Request(services=("owa",)),
    ),
    "as drawn",
)
def test_a_target_is_said_to_be_delegated_exactly_when_its_access_section_is_unlocked(
    case, spelling
):
    """A web.config below a target could set sslFlags again where, in the file the offload
    writes, the access section is unlocked for the target (tests/reference_model.delegated):
    the offload warns "delegated" for exactly those targets. The reading is of the output, in
    which every target's own <location> holds <access>; appcmd's end state reads the same."""
    config, request = case
    raw = respelled(config.raw, spelling)
    result = offload(raw, request)
    before, after = parse(raw), parse(result.output)
    targets = {model.key(outcome.target.path) for outcome in result.outcomes}
    unlocked = {target for target in targets if model.delegated(after, target)}
    appcmd = pinned_tree(before, targets)
    assert unlocked == {target for target in targets if model.delegated(appcmd, target)}
    warned = [finding for finding in result.findings if finding.code == "delegated"]
    assert Counter(model.key(finding.path or "") for finding in warned) == Counter(unlocked)


# Extended Protection -----------------------------------------------------------------------------


@st.composite
def protected_requests(draw: st.DrawFn, config: GeneratedConfig) -> Request:
    """A request for the file, half the time one that names the front end's locations that turn
    Extended Protection on (else few requests would reach it)."""
    front = model.key(EXCHANGE_FRONT_END.name)
    paths = [
        loc.path
        for loc in config.locations
        if (loc.token_checking or "none").lower() != "none"
        and model.key(loc.path).partition("/")[0] == front
    ]
    if not paths or draw(st.booleans()):
        return draw(requests(config))
    chosen = draw(st.lists(st.sampled_from(paths), min_size=1, max_size=2))
    return Request(paths=tuple(chosen), include_descendants=draw(st.booleans()))


PROTECTED_CASES = st_iis.generated_configs(styles=STYLES, extended_protection=True).flatmap(
    lambda config: st.tuples(st.just(config), protected_requests(config), st.booleans())
)


def _protected(root: etree._Element, targets: set[str]) -> list[str]:
    """The targets, and the locations that inherit their None, where the file turns Extended
    Protection on (tokenChecking Allow or Require, set at some level rather than by default)."""
    pinned = pinned_tree(root, targets)
    reached = {
        key for key in model.location_keys(root) if model.effective(pinned, key)[1] in targets
    }
    protected = []
    for key in sorted(targets | reached):
        token, level = model.effective(root, key, model.TOKEN_CHECKING, "tokenChecking", "None")
        if level is not None and token.lower() in ("allow", "require"):
            protected.append(key)
    return protected


@given(PROTECTED_CASES)
@example(  # on a location below the target, which inherits the None: the ci examples miss it
    (
        GeneratedConfig(
            (EXCHANGE_FRONT_END,),
            (
                Loc("Default Web Site/owa", "Ssl"),
                Loc("Default Web Site/owa/auth", shape="security", token_checking="Require"),
            ),
            LF,
            "Ssl",
        ),
        Request(services=("owa",)),
        False,
    )
)
def test_extended_protection_is_never_offloaded_unsaid(case):
    """Offloading a path with Extended Protection on breaks it: refused, or with
    allow_extended_protection done with a warning; a path without it gets neither."""
    config, request, allowed = case
    request = dataclasses.replace(request, allow_extended_protection=allowed)
    root = parse(config.raw)
    protected = _protected(root, expected_targets(root, request))
    try:
        result = offload(config.raw, request)
    except Refused as error:
        assert protected and not allowed, str(error)
        assert "Extended Protection is on for" in str(error)
        return
    assert not protected or allowed, f"offloaded with Extended Protection on: {protected}"
    warned = [finding for finding in result.findings if finding.code == "extended-protection"]
    assert bool(warned) == bool(protected), (protected, warned)


# Files IIS would refuse ----------------------------------------------------------------------------


@given(INVALID_CONFIGS)
def test_every_file_iis_would_refuse_is_refused_with_its_exit_code(config):
    """Each generated file IIS would not load is invalid input (exit 4), and one in which a
    lock forbids the change is refused (exit 3): in the library, on every example, where the
    command line's test below runs a quarter as many, spread over other kinds of refusal."""
    try:
        result = offload(config.raw)
    except ConfeditError as error:
        assert error.exit_code == (3 if "forbidding-lock" in config.invalid else 4), str(error)
        return
    raise AssertionError(f"{config.invalid} offloaded: {[e.text for e in result.edits]}")


# Refusals write nothing --------------------------------------------------------------------------

# What the command line must refuse, and with which exit code.
OUTPUTS = (
    ("-o", "out.config", "--diff", "out.diff"),
    ("--in-place", "--backup", ".bak"),
    ("--in-place", "--format", "json"),
    ("-o", "-", "--diff", "offload.diff", "-q"),
)


@st.composite
def refused_runs(draw: st.DrawFn) -> tuple[bytes, tuple[str, ...], int]:
    """(file bytes, command-line arguments, expected exit code)"""
    kind = draw(st.sampled_from(("invalid", "back end", "truncated")))
    outputs = draw(st.sampled_from(OUTPUTS))
    if kind == "invalid":
        config = draw(INVALID_CONFIGS)
        return config.raw, outputs, 3 if "forbidding-lock" in config.invalid else 4
    config = draw(CONFIGS)
    if kind == "back end":
        path = draw(st.sampled_from(BACK_END_PATHS))
        return config.raw, ("--path", path, *outputs), 3
    cut = draw(st.integers(0, len(config.raw) // 2))  # the end tag of the root is gone
    return config.raw[:cut], outputs, 4


@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(refused_runs())
def test_refusals_write_nothing(confedit_exe, run):
    """The installed command, refusing (exit 3 or 4), creates and changes no file."""
    raw, arguments, code = run
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "applicationHost.config").write_bytes(raw)
        before = {path.name: path.read_bytes() for path in folder.iterdir()}
        proc = subprocess.run(
            [confedit_exe, "offload", "applicationHost.config", *arguments],
            cwd=folder,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == code, proc.stderr
        assert b"Traceback" not in proc.stderr
        assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
