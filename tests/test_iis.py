"""iis.py: sslFlags values, paths, <sites>, the inheritance resolver, what IIS refuses to load,
and what unlocks the access section for a web.config."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from confedit import offload
from confedit.auditing import audit
from confedit.document import load
from confedit.errors import InvalidInput, Refused
from confedit.iis import (
    FLAGS_WORDING,
    SECURITY_LOCK,
    SSL_FLAGS,
    TOKEN_CHECKING,
    Config,
    SslFlags,
    is_below,
    lineage,
    path_key,
)
from confedit.plan import Request
from confedit.testing.build import (
    EXCHANGE_BACK_END,
    EXCHANGE_FRONT_END,
    App,
    Loc,
    Site,
    Style,
    render,
)
from tests import reference_model
from tests.conftest import well_formed_exchange
from tests.helpers import record_is_below
from tests.test_plan import BACK, ROOT, SITES, config, owa_only

LF = Style(newline="\n", bom=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("None", "None"),
        ("none", "None"),
        ("0", "None"),
        ("Ssl, Ssl128", "Ssl, Ssl128"),
        ("ssl128,SSL", "Ssl, Ssl128"),
        ("  Ssl ,Ssl128 ", "Ssl, Ssl128"),
        ("264", "Ssl, Ssl128"),
        ("Ssl128, SslNegotiateCert, Ssl", "Ssl, SslNegotiateCert, Ssl128"),
        ("SslRequireCert", "SslRequireCert"),
        ("8, 256", "Ssl, Ssl128"),
    ],
)
def test_ssl_flags_parse_as_sets_and_format_as_iis(text, expected):
    assert str(SslFlags.parse(text)) == expected


@pytest.mark.parametrize(
    "text", ["", "None, Ssl", "Ssl, Bogus", "SslMapCert", "1", "-8", "Ssl;Ssl128", "None,None"]
)
def test_invalid_ssl_flags_use_the_iis_wording(text):
    with pytest.raises(ValueError, match=FLAGS_WORDING):
        SslFlags.parse(text)


def test_requires_ssl_and_client_certificates():
    assert SslFlags.parse("Ssl128").requires_ssl is False
    assert SslFlags.parse("Ssl, Ssl128").requires_ssl is True
    assert SslFlags.parse("Ssl, SslNegotiateCert, SslRequireCert").client_certificate_flags == [
        "SslNegotiateCert",
        "SslRequireCert",
    ]


def test_path_keys_and_lineage():
    assert path_key("Default Web Site/OWA/") == "default web site/owa"
    assert path_key(".") == path_key("") == ""
    assert list(lineage("a/b/c")) == ["a/b/c", "a/b", "a", ""]
    assert is_below("a/b", "a") and not is_below("a/bc", "a/b") and not is_below("a", "a")
    assert is_below("a", "")


@pytest.mark.parametrize("path", well_formed_exchange(), ids=lambda p: p.name)
def test_resolver_agrees_with_a_naive_model_on_every_real_location(path):
    raw = path.read_bytes()
    config = Config(load(raw, path.name))
    root = etree.fromstring(raw)
    paths = {loc.get("path", "") for loc in root.findall("location")}
    paths |= {p + "/some/folder" for p in paths if p}
    assert len(paths) > 10
    for location_path in sorted(paths):
        for setting, xpath in (
            (SSL_FLAGS, reference_model.ACCESS),
            (TOKEN_CHECKING, reference_model.TOKEN_CHECKING),
        ):
            expected, _ = reference_model.effective(
                root, location_path, xpath, setting.attribute, setting.default
            )
            assert config.resolve(location_path, setting).value == expected, (
                location_path,
                setting,
            )


def test_resolver_says_where_a_value_comes_from():
    raw = next(p for p in well_formed_exchange() if p.name.startswith("e2013-cas.")).read_bytes()
    config = Config(load(raw, "x"))
    owa = config.resolve("Default Web Site/owa", SSL_FLAGS)
    assert (owa.value, owa.where) == ("Ssl, Ssl128", "Default Web Site")
    assert (
        config.resolve("Default Web Site/owa/Calendar", SSL_FLAGS).where
        == "Default Web Site/owa/Calendar"
    )
    assert config.resolve("Other Site", SSL_FLAGS).where == "(server level)"


def test_inherit_in_child_applications_false_stops_at_child_applications_only():
    site = Site("Default Web Site", (App("/"), App("/app"), App("/app/child")))
    raw = render(
        [site],
        [Loc("Default Web Site/app", "Ssl", attributes=(("inheritInChildApplications", "false"),))],
        LF,
        server_ssl_flags="None",
    )
    config = Config(load(raw, "x"))
    assert config.resolve("Default Web Site/app", SSL_FLAGS).value == "Ssl"
    assert config.resolve("Default Web Site/app/folder", SSL_FLAGS).value == "Ssl"  # a folder
    assert config.resolve("Default Web Site/app/child", SSL_FLAGS).value == "None"  # an application
    assert config.resolve("Default Web Site/app/child/x", SSL_FLAGS).value == "None"


def test_schema_default_when_nothing_sets_it():
    raw = render([EXCHANGE_FRONT_END], [], LF).replace(b'<access sslFlags="None" />', b"<access />")
    resolved = Config(load(raw, "x")).resolve("Default Web Site/owa", SSL_FLAGS)
    assert (resolved.value, resolved.where, resolved.source) == ("None", "(schema default)", None)


def test_sites_give_applications_virtual_directories_and_pools():
    raw = next(p for p in well_formed_exchange() if p.name.startswith("e2013-cas.")).read_bytes()
    config = Config(load(raw, "x"))
    front = config.sites["default web site"]
    assert "Default Web Site/Microsoft-Server-ActiveSync" in front.config_paths()
    assert (
        config.application("Default Web Site/Microsoft-Server-ActiveSync/Proxy").pool
        == "MSExchangeSyncAppPool"
    )
    assert config.application("Exchange Back End").pool == "DefaultAppPool"  # applicationDefaults


_SEGMENTS = st.sampled_from(["a", "A", "b", "ab", "a b", ""])
_PATHS = st.lists(_SEGMENTS, min_size=0, max_size=4).map(
    lambda segments: "/".join(["Default Web Site", *segments])
)


@given(st.lists(_PATHS, min_size=1, max_size=12), _PATHS)
def test_below_lists_what_is_below_segment_wise_in_file_order(paths, asked):
    site = Site("Default Web Site", (App("/"), App("/a")))
    raw = render([site], [Loc(path, "Ssl") for path in dict.fromkeys(paths)], LF)
    config = Config(load(raw, "x"))
    keys = list(dict.fromkeys(path_key(path) for path in paths))
    for key in {path_key(asked), path_key(asked).rpartition("/")[0], ""}:
        assert config.below(key) == [k for k in keys if is_below(k, key)], key


@given(st.lists(_PATHS, min_size=1, max_size=12), _PATHS)
def test_paths_below_lists_the_sites_paths_below_segment_wise_in_sites_order(paths, asked):
    apps = [path.removeprefix("Default Web Site") for path in paths]
    apps = [App(app) for app in dict.fromkeys(["/", *(app for app in apps if app)])]
    config = Config(load(render([Site("Default Web Site", tuple(apps))], [], LF), "x"))
    keys = list(config.sites["default web site"].paths)
    for key in {path_key(asked), path_key(asked).rpartition("/")[0], ""}:
        assert config.paths_below(key) == [k for k in keys if key and is_below(k, key)], key


def test_the_paths_below_each_of_many_targets_are_not_searched_for_in_the_whole_site(monkeypatch):
    """Hundreds of paths offloaded at once: the site's paths below each are looked up, not
    found by comparing each target with every path of the site (which grew with the product
    of their numbers)."""
    count = 300
    apps = tuple(App(f"/app{index}") for index in range(count))
    front = Site("Default Web Site", (*EXCHANGE_FRONT_END.applications, *apps))
    raw = render([front, EXCHANGE_BACK_END], [ROOT, *BACK], LF)
    compared = record_is_below(monkeypatch, "confedit.iis")
    paths = tuple(f"Default Web Site/app{index}" for index in range(count))
    result = offload(raw, Request(paths=paths), name="t")
    assert len(compared) < count  # a search each: count * (count + 11)
    assert [o.action for o in result.outcomes] == ["created"] * count


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Default Web Site/OWA", "default web site/owa/", True),
        ("Site/Café", "SITE/CAFÉ", True),
        ("Site/Straße", "Site/strasse", False),  # casefold() would make them one name
        ("Site/\u212a", "Site/k", False),  # the Kelvin sign is no k to Windows
        ("Site/\u0131", "Site/I", True),  # dotless i upper-cases to I, as in Windows
    ],
)
def test_paths_compare_as_windows_compares_names(a, b, same):
    assert (path_key(a) == path_key(b)) is same


def test_a_front_end_site_with_a_non_ascii_name_is_found_in_any_case():
    front = dataclasses.replace(EXCHANGE_FRONT_END, name="Sité Wéb")
    locations = [
        Loc("Sité Wéb", "Ssl"),
        Loc("Exchange Back End", "Ssl"),
        Loc("SITÉ WÉB/owa", "Ssl"),
    ]
    raw = render([front, EXCHANGE_BACK_END], locations, Style(newline="\n", bom=False))
    result = offload(raw, Request(site="sité wéb", services=("owa", "ecp")))
    assert [(o.target.path, o.action) for o in result.outcomes] == [
        ("SITÉ WÉB/owa", "rewritten"),
        ("Sité Wéb/ecp", "created"),
    ]


# --- what unlocks the access section for a web.config ------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "unlocked_by"),
    [
        ((("allowOverride", "true"),), 'allowOverride="true" at Default Web Site/owa'),
        ((("allowOverride", "false"),), None),
        ((("overrideMode", "Inherit"),), None),
    ],
)
def test_the_older_allow_override_unlocks_and_locks_like_override_mode(attributes, unlocked_by):
    raw = config(Loc("Default Web Site/owa", "Ssl", attributes=attributes))
    messages = [f.message for f in owa_only(raw).findings if f.code == "delegated"]
    if unlocked_by is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert unlocked_by in messages[0]


@pytest.mark.parametrize("spelling", ["", ".", "/"])
def test_a_server_level_location_that_unlocks_is_named_the_server_level(spelling):
    unlocking = Loc(spelling, "Ssl", attributes=(("overrideMode", "Allow"),))
    raw = render(SITES, [ROOT, *BACK, unlocking], LF, server_ssl_flags=None)
    messages = [f.message for f in owa_only(raw).findings if f.code == "delegated"]
    assert len(messages) == 1
    assert 'overrideMode="Allow" at the server level (line ' in messages[0]


def registered(raw: bytes, override_mode_default: str) -> bytes:
    """`raw` with the access section registered in <configSections>, as IIS does."""
    sections = (
        b'<configuration>\n    <configSections>\n        <sectionGroup name="system.webServer">\n'
        b'            <sectionGroup name="security">\n                <section name="access" '
        b'overrideModeDefault="' + override_mode_default.encode() + b'" />\n'
        b"            </sectionGroup>\n        </sectionGroup>\n    </configSections>"
    )
    return raw.replace(b"<configuration>", sections, 1)


@pytest.mark.parametrize(("default", "warned"), [("Allow", True), ("allow", True), ("Deny", False)])
def test_the_section_registered_with_override_mode_default_allow_warns(default, warned):
    result = owa_only(registered(config(Loc("Default Web Site/owa", "Ssl")), default))
    messages = [f.message for f in result.findings if f.code == "delegated"]
    assert len(messages) == warned
    if warned:
        assert (
            f'its registration in <configSections>, overrideModeDefault="{default}"' in messages[0]
        )


def test_override_mode_deny_on_the_way_up_keeps_a_registration_allow_locked():
    site = Loc("Default Web Site", "Ssl, Ssl128", attributes=(("overrideMode", "Deny"),))
    raw = render(SITES, [site, *BACK, Loc("Default Web Site/owa", "Ssl")], LF)
    result = owa_only(registered(raw, "Allow"))
    assert [f.code for f in result.findings if f.code == "delegated"] == []


def test_override_mode_counts_only_on_the_location_that_holds_access():
    # IIS-NOTES "Locking": overrideMode unlocks the sections inside its <location> (IIS keeps
    # <location path="" overrideMode="Allow"> and "Deny" side by side, each with its own
    # sections). The access inserted for owa goes into its first location, without a mode.
    first = Loc("Default Web Site/owa", shape="security")
    allow = Loc("Default Web Site/owa", shape="webserver", attributes=(("overrideMode", "Allow"),))
    result = owa_only(config(first, allow))
    assert result.changed
    assert [f.code for f in result.findings if f.code == "delegated"] == []
    deny = Loc("Default Web Site/owa", shape="webserver", attributes=(("overrideMode", "Deny"),))
    result = owa_only(registered(config(first, deny), "Allow"))
    messages = [f.message for f in result.findings if f.code == "delegated"]
    assert len(messages) == 1
    assert "its registration in <configSections>" in messages[0]


# --- configurations IIS would not load ---------------------------------------------------------


def test_access_defined_twice_for_one_path_is_invalid_and_names_both_lines():
    raw = config(Loc("Default Web Site/owa", "Ssl"), Loc("default web site/OWA", "None"))
    with pytest.raises(InvalidInput) as info:
        owa_only(raw)
    assert re.search(r"lines \d+ and \d+", str(info.value))
    assert info.value.exit_code == 4


@pytest.mark.parametrize("second", ["", ' overrideModeDefault="Allow"'])
def test_the_access_section_registered_twice_is_invalid_and_names_both_lines(second):
    """IIS refuses a second registration of a section ("There is a duplicate
    'system.webServer/security/access' section defined"): the first one was read, locked,
    and a file with a second one, unlocking the section, was offloaded and audited as if IIS
    would load it."""
    raw = registered(config(Loc("Default Web Site/owa", "Ssl")), "Deny")
    first = b'<section name="access" overrideModeDefault="Deny" />'
    twice = raw.replace(first, first + b'\n<section name="access"' + second.encode() + b" />")
    line = raw[: raw.index(first)].count(b"\n") + 1
    for check in (owa_only, lambda data: audit(data, "x")):
        with pytest.raises(InvalidInput) as info:
            check(twice)
        assert str(info.value).endswith(
            f":{line + 1}: the access section is registered twice in <configSections> (lines "
            f"{line} and {line + 1}); IIS would not load this file"
        )
        assert info.value.exit_code == 4


@pytest.mark.parametrize(
    ("declared", "undeclared"),
    [
        (b'<section name="access" overrideModeDefault="Deny" />', b""),
        (b'<sectionGroup name="security">', b'<sectionGroup name="authentication">'),
        (b'<section name="access"', b'<section name="Access"'),
    ],
    ids=["left-out", "in-another-group", "another-name"],
)
def test_config_sections_that_do_not_declare_the_access_section_are_invalid(declared, undeclared):
    """IIS reads no section that <configSections> does not declare: the <access> an offload
    adds made IIS refuse the whole file ("... cannot be read because it is missing a section
    declaration", HTTP 500.19), and such a file was offloaded and audited as if IIS loaded it."""
    raw = registered(config(Loc("Default Web Site/owa", "Ssl")), "Deny")
    assert raw.count(declared) == 1
    undeclared_raw = raw.replace(declared, undeclared)
    line = raw[: raw.index(b"<configSections>")].count(b"\n") + 1
    for check in (owa_only, lambda data: audit(data, "x")):
        with pytest.raises(InvalidInput) as info:
            check(undeclared_raw)
        assert info.value.exit_code == 4
        assert info.value.line == line
        message = str(info.value)
        assert "\n" not in message
        assert f":{line}: <configSections> does not declare the access section" in message
        assert 'add the declaration IIS ships, <section name="access" ' in message
        assert '<sectionGroup name="security"> of <sectionGroup name="system.webServer">' in message


def test_a_file_without_config_sections_is_a_fragment_read_with_the_declarations_iis_ships():
    """Hand-made files have no <configSections> at all: no IIS export is one, so the section
    is taken as IIS declares it (locked: no web.config may override sslFlags)."""
    raw = config(Loc("Default Web Site/owa", "Ssl"))
    assert b"<configSections" not in raw
    result = owa_only(raw)
    assert [outcome.action for outcome in result.outcomes] == ["rewritten"]
    assert result.findings == owa_only(registered(raw, "Deny")).findings


def test_two_locations_for_one_path_with_different_sections_are_fine():
    raw = config(Loc("Default Web Site/owa", "Ssl"), Loc("Default Web Site/owa", shape="webserver"))
    assert owa_only(raw).outcomes[0].action == "rewritten"


@pytest.mark.parametrize(
    "value",
    # Unicode digits (Arabic-Indic eight, full-width eight, superscript two) are no numbers to IIS.
    ["Ssl, Bogus", "None, Ssl", "", "512", "Ssl;Ssl128", "\u0668", "\uff18", "\u00b2"],
)
def test_invalid_ssl_flags_are_refused_with_the_iis_wording(value):
    raw = config(Loc("Default Web Site/ecp", value))
    with pytest.raises(InvalidInput) as info:
        owa_only(raw)
    assert (
        "Flags must be some combination of None, Ssl, SslNegotiateCert, SslRequireCert, Ssl128"
        in str(info.value)
    )
    assert info.value.line is not None


def owa_access(raw: bytes, attributes: bytes) -> bytes:
    """`raw` with the <access> of Default Web Site/owa written with `attributes` instead."""
    start = raw.index(b'<location path="Default Web Site/owa">')
    access = raw.index(b'<access sslFlags="Ssl" />', start)
    return raw[:access] + b"<access " + attributes + b" />" + raw[access + 25 :]


@pytest.mark.parametrize(
    "attributes",
    [b'SslFlags="Ssl"', b'SSLFLAGS="None"', b'sslFlags="Ssl" LockAttributes="sslFlags"'],
)
def test_an_attribute_name_in_another_case_is_refused_as_iis_refuses_it(attributes):
    # IIS reads attribute names case-sensitively: "Unrecognized attribute 'SslFlags'. Note that
    # attribute names are case-sensitive." The value must not be read as set, nor the lock as
    # absent.
    raw = owa_access(config(Loc("Default Web Site/owa", "Ssl")), attributes)
    with pytest.raises(InvalidInput) as info:
        owa_only(raw)
    wrong = attributes.split(b" ")[-1].split(b"=")[0].decode()
    assert f"unrecognized attribute '{wrong}'" in str(info.value)
    assert "case-sensitive" in str(info.value)
    assert info.value.line is not None
    assert info.value.exit_code == 4


@pytest.mark.parametrize(
    ("written", "wrong"),
    [
        (b'<windowsAuthentication enabled="true">', b'<windowsAuthentication Enabled="true">'),
        (b'<extendedProtection tokenChecking="None"', b'<extendedProtection TokenChecking="None"'),
    ],
)
def test_each_setting_has_its_own_attribute_name_checked_for_case(written, wrong):
    # Not only sslFlags: the other settings confedit reads have their own attribute, which
    # IIS reads case-sensitively too; a name right for one setting is not right for another.
    raw = config(Loc("Default Web Site/owa", "Ssl", token_checking="None"))
    assert raw.count(written) == 1
    with pytest.raises(InvalidInput) as info:
        owa_only(raw.replace(written, wrong))
    name = wrong.split(b" ")[1].split(b"=")[0].decode()
    assert f"unrecognized attribute '{name}'" in str(info.value)
    assert info.value.exit_code == 4


def test_an_access_section_kept_in_another_file_is_refused():
    # configSource: IIS reads the section from a file confedit is not given; its sslFlags there
    # is unknown, and an attribute written beside configSource would make the section invalid.
    raw = owa_access(config(Loc("Default Web Site/owa", "Ssl")), b'configSource="access.config"')
    with pytest.raises(Refused) as info:
        owa_only(raw)
    message = str(info.value)
    assert 'configSource="access.config"' in message
    assert "not in this file" in message
    assert info.value.exit_code == 3


def test_a_setting_is_read_at_the_server_level_and_in_its_sites_locations_only():
    """Where IIS reads sslFlags: <system.webServer> of the root (first), then the top-level
    <location> elements of the sites in scope, in file order; not another site's, nor an
    <access> below some other element."""
    raw = b"""<configuration>
<system.applicationHost><sites><site name="A" /><site name="B" /></sites></system.applicationHost>
<location path="B/x"><system.webServer><security><access sslFlags="Ssl" /></security>
</system.webServer></location>
<location path="A/y"><system.webServer><security><access sslFlags="Ssl" /></security>
</system.webServer><system.webServer><security /></system.webServer></location>
<location path="A"><other><system.webServer><security><access /></security></system.webServer>
</other></location>
<system.webServer><x><security><access /></security></x></system.webServer>
<system.webServer><security lockElements="access"><access sslFlags="Ssl128" /></security>
</system.webServer>
</configuration>"""
    found = Config(load(raw, sites=("A",))).elements(SSL_FLAGS)
    assert [(d.where, d.element.get("sslFlags")) for d in found] == [
        ("(server level)", "Ssl128"),
        ("A/y", "Ssl"),
    ]
    locks = Config(load(raw, sites=("A",))).holding(SECURITY_LOCK)
    assert [(d.where, d.element[0].get("sslFlags")) for d in locks] == [
        ("(server level)", "Ssl128")
    ]
