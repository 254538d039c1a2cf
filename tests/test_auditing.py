"""auditing.py: the effective policy table, and what it says beside the table."""

from __future__ import annotations

import re

import pytest

from confedit import offload
from confedit.auditing import audit, render_table, unlocked_warnings
from confedit.errors import UsageProblem
from confedit.fleet import fleet_of
from confedit.iis import path_key
from confedit.testing.build import EXCHANGE_FRONT_END, App, Loc, Site, Style, render
from tests.conftest import CORPUS, EXCHANGE, SAMPLES
from tests.helpers import NOT_INHERITED, SMALL_CAS, record_is_below

PATCHED = SAMPLES / "exchange2013-cas.applicationHost.patched.config"
CAS = EXCHANGE / "e2013-cas.applicationHost.config"
REGISTRATION = b'<section name="access" overrideModeDefault="Deny" />'
SERVER_WINDOWS_AUTH = (
    b'<windowsAuthentication enabled="false" authPersistNonNTLM="true" useKernelMode="false">'
)


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


@pytest.mark.parametrize("offloaded_only", [True, False])
def test_an_unlocked_access_section_is_a_warning_apart_from_the_table(offloaded_only):
    raw = PATCHED.read_bytes()
    unlocked = replace_once(raw, REGISTRATION, REGISTRATION.replace(b"Deny", b"Allow"))
    report = audit(unlocked, "x")
    assert report.all_offloaded  # the file's own verdict stands: a web.config may not agree
    (warning,) = unlocked_warnings(report)
    assert "unlocked for autodiscover, ecp, ews, mapi, eas, oab, owa by" in warning  # table order
    assert 'overrideModeDefault="Allow"' in warning
    assert "warning" not in render_table(report, offloaded_only=offloaded_only)  # stderr's
    target = report.to_json(offloaded_only=offloaded_only)["offloaded"][0]
    assert "overrideModeDefault" in target["unlocked_by"]
    locked = audit(raw, "x")
    assert unlocked_warnings(locked) == []
    assert {t["unlocked_by"] for t in locked.to_json()["offloaded"]} == {None}


def test_a_registration_without_override_mode_default_unlocks_the_section():
    """The file's own header comment gives each <section> attribute with its default:
    overrideModeDefault="Allow". A registration that leaves it out lets any web.config set
    sslFlags, as one that says Allow does."""
    raw = PATCHED.read_bytes()
    unlocked = replace_once(raw, REGISTRATION, b'<section name="access" />')
    (warning,) = unlocked_warnings(audit(unlocked, "x"))
    assert "unlocked for autodiscover, ecp, ews, mapi, eas, oab, owa by" in warning
    assert "registration in <configSections> without overrideModeDefault" in warning
    assert "line 31" in warning


def test_a_location_that_unlocks_one_target_is_named_for_it_alone():
    raw = PATCHED.read_bytes()
    owa = b'<location path="Default Web Site/owa"'
    unlocked = replace_once(raw, owa + b">", owa + b' overrideMode="Allow">')
    (warning,) = unlocked_warnings(audit(unlocked, "x"))
    assert warning.startswith(
        'warning: the access section is unlocked for owa by overrideMode="Allow"'
    )


INTEGRATED = b'<location path="Default Web Site/owa/Integrated"'
SITE = b'    <location path="Default Web Site">'


def test_a_location_that_unlocks_a_path_below_a_target_is_a_warning_too():
    """overrideMode="Allow" at owa/Integrated unlocked it alone: no default target is unlocked,
    and the warning covered the targets only, though the fleet compares that path."""
    raw = PATCHED.read_bytes()
    unlocked = replace_once(raw, INTEGRATED + b">", INTEGRATED + b' overrideMode="Allow">')
    (warning,) = unlocked_warnings(audit(unlocked, "x"))
    assert warning.startswith(
        'warning: the access section is unlocked below owa by overrideMode="Allow" at '
        "Default Web Site/owa/Integrated (line 196): a web.config below could override sslFlags"
    )


def test_a_site_level_unlock_is_one_warning_whatever_is_unlocked_below_it():
    raw = PATCHED.read_bytes()
    site = replace_once(raw, SITE, SITE[:-1] + b' overrideMode="Allow">')
    both = replace_once(site, INTEGRATED + b">", INTEGRATED + b' overrideMode="Allow">')
    (warning,) = unlocked_warnings(audit(both, "x"))
    assert "unlocked for autodiscover, ecp, ews, mapi, eas, oab, owa by" in warning
    assert "at Default Web Site (line 143)" in warning


def test_the_paths_unlocked_below_the_targets_are_named_ten_at_most():
    raw = PATCHED.read_bytes()
    folders = b"".join(
        b'    <location path="Default Web Site/ecp/f%02d" overrideMode="Allow"><system.webServer>'
        b'<security><access sslFlags="None" /></security></system.webServer></location>\r\n' % i
        for i in range(12)
    )
    unlocked = replace_once(raw, b"    " + INTEGRATED, folders + b"    " + INTEGRATED)
    (warning,) = unlocked_warnings(audit(unlocked, "x"))
    named = re.findall(r"at Default Web Site/ecp/(f\d\d) \(line \d+\)", warning)
    assert named == [f"f{i:02d}" for i in range(10)]
    assert "ecp/f09 (line 205) and 2 more: a web.config below" in warning
    assert warning.startswith("warning: the access section is unlocked below ecp by ")


def test_a_location_without_access_neither_unlocks_nor_locks_it():
    # IIS-NOTES "Locking": overrideMode applies to the sections inside its <location>.
    raw = PATCHED.read_bytes()
    ecp = b'    <location path="Default Web Site/ecp">'
    other = b"<system.webServer><urlCompression /></system.webServer></location>\r\n"
    allow = b'    <location path="Default Web Site/ecp" overrideMode="Allow">' + other
    assert {
        t["unlocked_by"]
        for t in audit(replace_once(raw, ecp, allow + ecp), "x").to_json()["offloaded"]
    } == {None}
    registration = replace_once(raw, REGISTRATION, REGISTRATION.replace(b"Deny", b"Allow"))
    deny = b'    <location path="Default Web Site/ecp" overrideMode="Deny">' + other
    report = audit(replace_once(registration, ecp, deny + ecp), "x")
    assert all(t["unlocked_by"] for t in report.to_json()["offloaded"])


def test_extended_protection_is_named_as_iis_names_it_whatever_its_spelling():
    raw = CAS.read_bytes()
    spelled = {
        value: replace_once(
            raw,
            SERVER_WINDOWS_AUTH,
            SERVER_WINDOWS_AUTH + b'<extendedProtection tokenChecking="' + value + b'" />',
        )
        for value in (b"None", b"none", b"NONE")
    }
    reports = [audit(data, f"fleet/{value.decode()}/x") for value, data in spelled.items()]
    assert "(server level)" in {row.extended_protection_from for row in reports[1].rows}
    assert {row.extended_protection for report in reports for row in report.rows} == {"None"}
    assert fleet_of(reports).consistent
    assert all("EP=" not in cell.text() for cell in fleet_of(reports).servers[1].cells.values())


def test_default_targets_a_server_does_not_have_are_marked_absent():
    raw = CAS.read_bytes()
    oab = re.compile(rb'<application path="/OAB".*?</application>', re.DOTALL)
    without_oab, removed = oab.subn(b"", raw)
    assert removed == 1
    lines = render_table(audit(without_oab, "x")).splitlines()
    assert [line.split()[0:2] for line in lines if "(absent)" in line.split()[1:2]] == [
        ["/OAB", "(absent)"]
    ]
    assert any(line.startswith("(absent): ") for line in lines)  # the legend says what it means
    assert not any("Client Access server?" in line for line in lines)  # the others are there
    assert "(absent)" not in render_table(audit(raw, "x"))


def test_an_offloaded_file_lacking_default_targets_names_them_in_its_verdict():
    offloaded = offload(CAS.read_bytes()).output
    oab = re.compile(rb'<application path="/OAB".*?</application>', re.DOTALL)
    without_oab, removed = oab.subn(b"", offloaded)
    assert removed == 1
    verdict = render_table(audit(without_oab, "x"), offloaded_only=True).splitlines()[-1]
    assert verdict == "all default targets present are offloaded; absent: oab"
    whole = render_table(audit(offloaded, "x"), offloaded_only=True).splitlines()[-1]
    assert whole == "all default targets are offloaded"


def test_a_site_that_is_not_in_sites_is_named_as_the_likely_mistake():
    text = render_table(audit(CAS.read_bytes(), "x", site="Contoso"))
    assert (
        "the site 'Contoso' is not in <sites>; name the front-end site with --site "
        "(the default is 'Default Web Site')"
    ) in text.splitlines()
    # a name near one of the file's sites: that one is named
    text = render_table(audit(CAS.read_bytes(), "x", site="Defualt Web Site"))
    assert (
        "the site 'Defualt Web Site' is not in <sites>; did you mean 'Default Web Site'?"
    ) in text.splitlines()


def test_a_plain_iis_server_is_audited_as_one_without_the_exchange_front_end():
    raw = (CORPUS / "iis" / "reverse-proxy.applicationHost.config").read_bytes()
    report = audit(raw, "x")
    lines = render_table(report).splitlines()
    targets = [line for line in lines if line.startswith("/") and line.split()[0] != "/"]
    assert len(targets) == len(report.targets()) == 7
    assert all(line.split()[1] == "(absent)" for line in targets)
    assert (
        "no Exchange front-end virtual directories in 'Default Web Site' — is this a Client "
        "Access server?"
    ) in lines


def test_a_child_application_past_inherit_false_has_a_row_without_a_location():
    # The table showed owa offloaded and nothing below it: a reader took owa/Integrated (an
    # application with no <location>) to inherit None, where IIS gives it the site's value.
    report = audit(SMALL_CAS % NOT_INHERITED, "x")
    (row,) = [row for row in report.rows if row.path == "Default Web Site/owa/Integrated"]
    assert (row.effective_ssl_flags, row.ssl_flags_from) == ("Ssl, Ssl128", "Default Web Site")
    assert not row.has_location and row.in_sites and row.requires_ssl
    table = render_table(report)
    assert re.search(r"\n  /Integrated \*\s+Ssl, Ssl128\s+/\s+yes\s", table), table
    # where owa's None flows into it, the row above says all: no row of its own
    flowing = audit(SMALL_CAS % b"", "x")
    assert "Default Web Site/owa/Integrated" not in [row.path for row in flowing.rows]


@pytest.mark.parametrize("site", [None, 1, b"Default Web Site"])
def test_a_site_that_is_no_name_is_a_usage_problem(site):
    """As Request(site=...) is: it raised an AttributeError from deep inside."""
    raw = (SAMPLES / "exchange2013-cas.applicationHost.config").read_bytes()
    with pytest.raises(UsageProblem) as info:
        audit(raw, site=site)
    assert "site takes a site's name (str)" in str(info.value)


def test_a_site_with_a_trailing_slash_is_the_site_as_request_takes_it():
    """It was audited as a site the file lacks: "the site 'Default Web Site/' is not in <sites>;
    did you mean 'Default Web Site'?"."""
    raw = (SAMPLES / "exchange2013-cas.applicationHost.config").read_bytes()
    report = audit(raw, "x", site="Default Web Site/")
    assert report.front_end_problem is None
    assert report == audit(raw, "x", site="Default Web Site")


def test_a_path_as_the_site_is_a_usage_problem_as_request_says_it():
    """It raised a KeyError from inside."""
    raw = (SAMPLES / "exchange2013-cas.applicationHost.config").read_bytes()
    with pytest.raises(UsageProblem) as info:
        audit(raw, "x", site="Default Web Site/owa")
    assert str(info.value) == (
        "site takes a site's name, which has no '/': 'Default Web Site/owa' is a path (here the "
        "site is 'Default Web Site')"
    )


def test_back_end_paths_without_ssl_are_named_without_comparing_each_with_those_named(
    monkeypatch,
):
    """Hundreds of Back End applications on None, side by side: each is named once, and
    whether one named is above it is read from its own path, not from a comparison with each
    path named before it (which grew with the square of their number). A path below one named
    is not named."""
    count = 300
    paths = [f"/app{index}{sub}" for index in range(count) for sub in ("", "/sub")]
    back_end = Site("Exchange Back End", (App("/"), *(App(path) for path in paths)))
    locations = [Loc("Exchange Back End", "Ssl, Ssl128")]
    locations += [Loc(f"Exchange Back End{path}", "None") for path in paths]
    report = audit(render([EXCHANGE_FRONT_END, back_end], locations, Style(newline="\n")))
    compared = record_is_below(monkeypatch, "confedit.auditing")
    named = report.back_end_without_ssl
    assert len(compared) < count  # a comparison with each named: count * count / 2
    expected = [f"Exchange Back End/app{index}" for index in range(count)]
    assert named == tuple(sorted(expected, key=path_key))
