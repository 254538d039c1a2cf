"""confedit.testing: the builder and the Hypothesis strategies users import."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest
from hypothesis import Phase, find, given, settings
from lxml import etree

from confedit import offload
from confedit.errors import InvalidInput, Refused
from confedit.testing import build
from confedit.testing import strategies as st_iis
from confedit.testing.strategies import _with_a_change
from tests import reference_model as model
from tests.conftest import REPO
from tests.helpers import split_bom


@pytest.mark.parametrize("module", [build, st_iis], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


@given(st_iis.generated_configs(extended_protection=True))
def test_by_default_files_are_well_formed_and_loadable_by_iis(config):
    """Well-formed, declared in their own encoding, at most one access section and one
    windowsAuthentication section per path, and only flags IIS accepts."""
    bom, text = split_bom(config.raw)
    assert bom == config.bom
    declared = "UTF-8" if config.style.encoding == "utf-8" else "UTF-16"
    assert text.startswith(f'<?xml version="1.0" encoding="{declared}"?>')
    root = etree.fromstring(config.raw)
    for xpath in (model.ACCESS, model.TOKEN_CHECKING):
        defined = [
            model.key(loc.get("path", ""))
            for loc in root.findall("location")
            if loc.find("system.webServer/" + xpath) is not None
        ]
        if root.find("system.webServer/" + xpath) is not None:
            defined.append("")
        assert len(defined) == len(set(defined)), xpath
    others = ("security/requestFiltering", "security/ipSecurity", *build.AFTER_SECURITY)
    for section in ("directoryBrowse", "handlers", "defaultDocument", *others):
        defined = [
            model.key(loc.get("path", ""))
            for loc in root.findall("location")
            if loc.find("system.webServer/" + section) is not None
        ]
        assert len(defined) == len(set(defined)), section
    assert all(model.valid_flags(a.get("sslFlags", "None")) for a in root.iter("access"))


@given(st_iis.generated_configs())
def test_by_default_the_default_request_succeeds(config):
    """No lock forbids the change, Extended Protection is off, the front end has a service."""
    result = offload(config.raw)
    assert result.outcomes


@given(st_iis.generated_configs(invalid=st_iis.INVALID_KINDS))
def test_invalid_files_are_refused_as_iis_would(config):
    (kind,) = config.invalid
    expected = Refused if kind == "forbidding-lock" else InvalidInput
    with pytest.raises(expected) as info:
        offload(config.raw)
    wording = {
        "duplicate-section": "defined twice",
        "bad-flags": "Flags must be some combination",
        "forbidding-lock": "Lock violation",
        "nested-location": "only allowed directly inside <configuration>",
    }
    assert wording[kind] in str(info.value)


def test_a_forbidding_lock_always_has_a_change_to_forbid():
    """A target whose own <access> already says None is left as it is, lock or not: in a file
    where every target's did, the "forbidding-lock" was refused by nothing."""
    owa, ecp = "Default Web Site/owa", "Default Web Site/ecp"
    done = [build.Loc(owa, "none"), build.Loc(ecp.upper(), "0"), build.Loc(owa + "/auth", "None")]
    changed = _with_a_change(done, [owa, ecp])
    assert [loc.ssl_flags for loc in changed] == ["Ssl", "0", "None"]
    with_work = [build.Loc(owa, "None"), build.Loc(ecp, shape="security")]
    assert _with_a_change(with_work, [owa, ecp]) == with_work


def test_the_readme_names_every_kind_of_invalid_file_and_encoding():
    """It named three of the four kinds ("nested-location" was missing), and no encoding."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Property-testing your own configs", 1)[1].split("\n## ", 1)[0]
    for name in (*st_iis.INVALID_KINDS, *build.BOMS):
        assert f'"{name}"' in section, name


def test_an_unknown_kind_of_invalid_file_is_a_mistake():
    with pytest.raises(ValueError, match="unknown kinds"):
        st_iis.generated_configs(invalid=["typo"])


@pytest.mark.parametrize("kinds", ["bad-flags", None])
def test_invalid_takes_a_collection_of_kinds(kinds):
    """A string was taken letter by letter ("unknown kinds of invalid file: ['-', 'a', ...]")."""
    with pytest.raises(
        TypeError, match=r"invalid takes a list of kinds, such as invalid=\['bad-flags'\]"
    ):
        st_iis.generated_configs(invalid=kinds)


def test_invalid_kinds_may_come_from_an_iterator():
    """The kinds were read twice: an iterator was used up by the first reading, and every file
    drawn was valid."""
    config = _drawn(st_iis.generated_configs(invalid=iter(["bad-flags"])))
    assert config.invalid == {"bad-flags"}


@pytest.mark.parametrize(
    ("encodings", "error", "message"),
    [
        (("utf-8", "latin-1"), ValueError, r"unknown encodings: \['latin-1'\]; use \('utf-8', "),
        (("UTF-16",), ValueError, r"unknown encodings: \['UTF-16'\]"),
        ((), ValueError, r"encodings takes at least one of \('utf-8', 'utf-16-le', 'utf-16-be'\)"),
        ("utf-16-le", TypeError, r"encodings takes a list, such as encodings=\('utf-16-le',\)"),
    ],
)
def test_unknown_encodings_are_refused_at_the_call(encodings, error, message):
    """They failed when a file was rendered, with a KeyError from the builder ('latin-1', or
    'u' for a string taken letter by letter)."""
    with pytest.raises(error, match=message):
        st_iis.formatting_styles(encodings=encodings)


def test_encodings_given_by_an_iterator_are_read_once():
    """The check used them up: the strategy then failed when drawn, Hypothesis saying it
    cannot sample from a length-zero sequence."""
    styles = st_iis.formatting_styles(encodings=iter(["utf-16-le"]))
    assert find(styles, lambda _: True).encoding == "utf-16-le"


def test_no_encodings_at_all_is_refused_as_a_list_would_be():
    with pytest.raises(TypeError, match=r"encodings takes a list, such as encodings=\('utf-8',\)"):
        st_iis.formatting_styles(encodings=None)


@pytest.mark.parametrize(
    ("knobs", "error", "message"),
    [
        ({"max_locations": -1}, ValueError, "max_locations takes a whole number, 0 or more"),
        ({"max_locations": 2.5}, TypeError, "max_locations takes a whole number"),
        ({"max_locations": "3"}, TypeError, "max_locations takes a whole number"),
        ({"styles": st_iis.formatting_styles}, TypeError, r"styles takes a strategy.*\(\)"),
        ({"styles": build.Style()}, TypeError, r"styles takes a strategy.*st.just\(Style"),
        ({"back_end": "yes"}, TypeError, "back_end takes True, False or None"),
        ({"other_sites": "false"}, TypeError, "other_sites takes True or False"),
        ({"locks": 0}, TypeError, "locks takes True or False"),
    ],
)
@pytest.mark.parametrize("strategy", [st_iis.generated_configs, st_iis.application_host_configs])
def test_a_misused_knob_is_refused_at_the_call(strategy, knobs, error, message):
    """Not when the first example is drawn, from deep inside Hypothesis (a negative
    max_locations, a Style for styles) or never (a string for a boolean knob is true)."""
    with pytest.raises(error, match=message):
        strategy(**knobs)


def test_no_limit_on_locations_type_checks_as_it_runs(tmp_path):
    """max_locations=None (no limit) was accepted when run, but the knob was typed `int`: a
    user's `mypy --strict` refused the call."""
    user = tmp_path / "test_policy.py"
    user.write_text(
        "from confedit.testing import strategies as st_iis\n"
        "st_iis.generated_configs(max_locations=None).example()\n"
        "st_iis.application_host_configs(max_locations=None).example()\n",
        encoding="utf-8",
    )
    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run([*mypy, str(user)], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@given(st_iis.ssl_flags(), st_iis.ssl_flags(valid=False))
def test_flag_values_are_valid_unless_asked_otherwise(valid, invalid):
    assert model.valid_flags(valid)
    assert not model.valid_flags(invalid)


def _minimal(strategy, condition=lambda _: True):
    return find(strategy, condition, settings=settings(database=None, max_examples=2000))


def _drawn(strategy, condition=lambda _: True):
    """The first example drawn that meets `condition`, not shrunk: for the tests that ask only
    whether a strategy draws such a file (shrinking whole files took nearly all their time)."""
    only_drawn = settings(database=None, max_examples=2000, phases=(Phase.generate,))
    return find(strategy, condition, settings=only_drawn)


@given(st_iis.generated_configs(back_end=True, look_alikes=False))
def test_the_back_end_is_the_real_one_and_requires_ssl(config):
    """A property about the Back End needs one to protect: its directories are the front end's
    counterparts (and more), and it requires SSL, as on a real server."""
    back_end = config.site(st_iis.BACK_END)
    assert back_end is not None
    paths = {st_iis.BACK_END + app.path for app in back_end.applications}
    for app in st_iis.DEFAULT_SERVICE_APPS:  # mapi's are below /mapi, as on a real server
        assert any(
            path in paths for path in (st_iis.BACK_END + app, st_iis.BACK_END + app + "/emsmdb")
        )
    assert build.Loc(st_iis.BACK_END, "Ssl, Ssl128") in config.locations


def _children(element):
    return [child.tag for child in element if isinstance(child.tag, str)]


def _laid_out_as_exchange_does(raw):
    """A location whose <system.webServer> holds other sections around <security>, and whose
    <security> has <access> after <authentication>, as real Exchange exports have them."""
    for web_server in etree.fromstring(raw).iterfind("location/system.webServer"):
        sections = _children(web_server)
        security = web_server.find("security")
        if security is None or sections.index("security") in (0, len(sections) - 1):
            continue
        inside = _children(security)
        if "access" in inside and "authentication" in inside[: inside.index("access")]:
            return True
    return False


def test_locations_are_also_laid_out_as_exchange_writes_them():
    """The front end's <security> was always the only child of <system.webServer>, and <access>
    always the first of <security>: every real export has other sections around it (OWA's
    directoryBrowse, handlers, defaultDocument), and PowerShell's, ActiveSync's and OAB's
    <access> follows <authentication>."""
    strategy = st_iis.generated_configs(extended_protection=True)
    config = _drawn(strategy, lambda c: _laid_out_as_exchange_does(c.raw))
    assert any(loc.sections for loc in config.locations)


def test_a_built_location_holds_the_sections_exchange_writes():
    loc = build.Loc("Default Web Site/PowerShell", "Ssl", token_checking="None", sections=True)
    root = etree.fromstring(build.render([build.EXCHANGE_FRONT_END], [loc]))
    (web_server,) = root.iterfind("location/system.webServer")
    assert _children(web_server) == ["directoryBrowse", "handlers", "security", "defaultDocument"]
    assert _children(web_server.find("security")) == ["authentication", "access"]


def _security_orders(raw):
    """The children of each location's <security>, in order."""
    root = etree.fromstring(raw)
    return [_children(s) for s in root.iterfind("location/system.webServer/security")]


@pytest.mark.parametrize("section", ["requestFiltering", "ipSecurity"])
@pytest.mark.parametrize("neighbour", ["authentication", "access"])
@pytest.mark.parametrize("side", ["before", "after"])
def test_security_also_holds_other_sections_around_access_and_authentication(
    section, neighbour, side
):
    """<security> held only <authentication> and <access>: Exchange's Rpc locations have a
    <requestFiltering> (with its <requestLimits>) before them, and IIS takes <ipSecurity>
    there too, in any place among them."""

    def placed(config):
        for order in _security_orders(config.raw):
            if section in order and neighbour in order:
                before = order.index(section) < order.index(neighbour)
                if before == (side == "before"):
                    return True
        return False

    config = _drawn(st_iis.generated_configs(extended_protection=True), placed)
    for element in etree.fromstring(config.raw).iter(section):
        assert _children(element), etree.tostring(element)  # requestLimits, add


def test_windows_authentication_may_list_its_providers_before_extended_protection():
    """windowsAuthentication held only <extendedProtection>: real exports have <providers>
    (<clear /> and the values) before it."""

    def with_providers(config):
        root = etree.fromstring(config.raw)
        for windows in root.iterfind(".//windowsAuthentication"):
            providers = windows.find("providers")
            if _children(windows) == ["providers", "extendedProtection"]:
                return _children(providers)[:2] == ["clear", "add"]
        return False

    _drawn(st_iis.generated_configs(extended_protection=True), with_providers)


@pytest.mark.parametrize(
    "section", ["isapiFilters", "httpErrors", "staticContent", "urlCompression"]
)
def test_system_web_server_also_holds_sections_after_security(section):
    """Only defaultDocument (`sections`) ever followed </security>: real exports also have
    isapiFilters, httpErrors, staticContent and urlCompression there."""

    def after(config):
        for web_server in etree.fromstring(config.raw).iterfind("location/system.webServer"):
            sections = _children(web_server)
            if "security" in sections and section in sections:
                return sections.index("security") < sections.index(section)
        return False

    _drawn(st_iis.generated_configs(), after)


def _bindings(raw, site_name):
    root = etree.fromstring(raw)
    site = next(s for s in root.iter("site") if s.get("name") == site_name)
    return [(b.get("protocol"), b.get("bindingInformation")) for b in site.iter("binding")]


@pytest.mark.parametrize("site", [st_iis.FRONT_END, st_iis.BACK_END])
def test_sites_may_have_several_bindings_as_real_ones_do(site):
    """A site had one https <binding> at most: the front end of a real export binds http and
    https, on every address and on 127.0.0.1, and with host names; the Back End 81 and 444."""

    def bound_as_real_sites_are(config):
        bindings = _bindings(config.raw, site) if config.site(site) else []
        protocols = {protocol for protocol, _ in bindings}
        hosts = {information.split(":")[-1] for _, information in bindings}
        return {"http", "https"} <= protocols and (site != st_iis.FRONT_END or len(hosts) > 2)

    _drawn(st_iis.generated_configs(back_end=True), bound_as_real_sites_are)


def test_a_built_location_places_the_other_sections_as_asked():
    loc = build.Loc(
        "Default Web Site/Rpc",
        "Ssl",
        token_checking="None",
        sections=True,
        request_filtering="first",
        ip_security="between",
        providers=("Negotiate", "NTLM"),
        after_security=("httpErrors", "urlCompression"),
    )
    root = etree.fromstring(build.render([build.EXCHANGE_FRONT_END], [loc]))
    (web_server,) = root.iterfind("location/system.webServer")
    assert _children(web_server) == [
        "directoryBrowse",
        "handlers",
        "security",
        "defaultDocument",
        "httpErrors",
        "urlCompression",
    ]
    security = web_server.find("security")
    assert _children(security) == ["requestFiltering", "authentication", "ipSecurity", "access"]
    windows = security.find("authentication/windowsAuthentication")
    assert _children(windows) == ["providers", "extendedProtection"]
    assert [a.get("value") for a in windows.iterfind("providers/add")] == ["Negotiate", "NTLM"]
    plain = build.Loc("Default Web Site/Rpc", "Ssl", token_checking="None", ip_security="last")
    root = etree.fromstring(build.render([build.EXCHANGE_FRONT_END], [plain]))
    (security,) = root.iterfind("location/system.webServer/security")
    assert _children(security) == ["access", "authentication", "ipSecurity"]


@pytest.mark.parametrize(
    ("described", "message"),
    [
        ({"request_filtering": "middle"}, "'middle' is no place"),
        ({"after_security": ("httpError",)}, "httpError is none of"),
    ],
)
def test_a_built_location_refuses_a_place_or_section_it_does_not_know(described, message):
    loc = build.Loc("Default Web Site", **described)
    with pytest.raises(ValueError, match=message):
        build.render([build.EXCHANGE_FRONT_END], [loc])


def test_a_built_binding_with_sni_needs_a_host_name():
    site = build.Site("Default Web Site", bindings=(build.Binding("https", "*:443:", "1"),))
    with pytest.raises(ValueError, match="a binding with SNI needs a host name"):
        build.render([site], [])


def test_a_built_site_writes_its_bindings_in_order_before_the_one_of_its_flags():
    http, local = build.Binding("http", "*:80:"), build.Binding("https", "127.0.0.1:443:")
    site = build.Site("Default Web Site", binding_ssl_flags="0", bindings=(http, local))
    raw = build.render([site], [])
    assert _bindings(raw, "Default Web Site") == [
        ("http", "*:80:"),
        ("https", "127.0.0.1:443:"),
        ("https", "*:443:"),
    ]


def _applications(raw, site_name):
    """The application paths <sites> gives the site, read from the file."""
    root = etree.fromstring(raw)
    sites = root.iterfind("system.applicationHost/sites/site")
    site = next(site for site in sites if site.get("name") == site_name)
    return {app.get("path") for app in site.iterfind("application")}


@pytest.mark.parametrize("path", ["/owa/Calendar", "/owa/oma", "/API", "/PowerShell"])
def test_the_front_end_may_have_every_application_real_exports_have(path):
    """These were never applications of the front end, though every export of 2013 to 2019 has
    them (API from 2016): owa/Calendar is a child application of owa whose own <access> says
    None, so what crosses the boundary of a child application was tested only at
    owa/Integrated."""
    strategy = st_iis.generated_configs()
    _drawn(strategy, lambda c: path in _applications(c.raw, st_iis.FRONT_END))


def test_back_end_directories_get_locations_of_their_own_without_look_alikes():
    strategy = st_iis.generated_configs(back_end=True, look_alikes=False)
    _drawn(strategy, lambda c: {loc.path for loc in c.locations} & set(st_iis.BACK_END_PATHS))


def _location_paths(raw):
    return [loc.get("path") for loc in etree.fromstring(raw).iterfind("location")]


def _below_back_end_applications(raw):
    """Back End locations of a virtual directory or a folder, not of an application."""
    applications = {
        model.key(st_iis.BACK_END + path) for path in _applications(raw, "Exchange Back End")
    }
    back_end = model.key(st_iis.BACK_END) + "/"
    return [
        path
        for path in _location_paths(raw)
        if model.key(path).startswith(back_end) and model.key(path) not in applications
    ]


def test_the_back_end_has_locations_below_its_applications():
    """Real exports give the Back End's virtual directories (Exchange, mapi) and folders below
    its applications (owa/auth, ecp/App_Themes) locations of their own; its locations were
    only of its applications, so what an offload must leave alone below them was never there."""
    strategy = st_iis.generated_configs(back_end=True, look_alikes=False)
    _drawn(strategy, lambda c: _below_back_end_applications(c.raw))


def test_the_back_end_has_the_virtual_directories_of_a_real_one():
    """mapi/emsmdb is an application below the root's virtual directory /mapi, as on a real
    Mailbox server; owa/Calendar a child application of owa."""
    config = _drawn(st_iis.generated_configs(back_end=True))
    assert set(model.site_paths(etree.fromstring(config.raw), st_iis.BACK_END)) >= {
        "exchange back end/mapi",
        "exchange back end/mapi/emsmdb",
        "exchange back end/owa/calendar",
        "exchange back end/exchange",
    }


def test_a_back_end_location_may_come_after_the_front_ends():
    """The last location of a 2016 or 2019 export is the Back End's (PushNotifications), after
    the front end's, so a location an offload appends follows a Back End one; the Back End's
    locations always came first."""

    def back_end_last(config):
        paths = [model.key(path) for path in _location_paths(config.raw)]
        front = [path for path in paths if path.startswith("default web site")]
        return bool(front) and paths[-1].startswith("exchange back end")

    _drawn(st_iis.generated_configs(back_end=True, look_alikes=False), back_end_last)


@pytest.mark.parametrize("most", [0, 2])
@pytest.mark.parametrize("invalid", [(), st_iis.INVALID_KINDS])
def test_max_locations_caps_the_drawn_locations(most, invalid):
    """The Back End's locations of its directories (up to three) came on top of the limit:
    max_locations=0 gave files with four locations. Besides the drawn ones a file has only the
    Back End's own location and what an invalid file needs (two at most, nested included)."""

    @settings(database=None, derandomize=True, max_examples=200)
    @given(st_iis.generated_configs(max_locations=most, invalid=invalid))
    def capped(config):
        count = sum(1 for _ in etree.fromstring(config.raw).iter("location"))
        extra = (config.site(st_iis.BACK_END) is not None) + 2 * bool(config.invalid)
        assert count <= most + extra, config

    capped()


def _access_registration(raw):
    registration = etree.fromstring(raw).find(
        "configSections/sectionGroup[@name='system.webServer']/sectionGroup[@name='security']"
        "/section[@name='access']"
    )
    return None if registration is None else registration.get("overrideModeDefault")


@pytest.mark.parametrize("mode", ["Deny", "Allow"])
def test_the_access_section_may_be_registered_as_real_exports_register_it(mode):
    """Every real export begins with <configSections>, registering the access section with
    overrideModeDefault="Deny"; with "Allow" any web.config may set sslFlags, which offload
    warns of and audit and the --since gate report. No file had <configSections>."""
    _drawn(st_iis.generated_configs(), lambda c: _access_registration(c.raw) == mode)


def test_files_shrink_to_small_readable_examples():
    config = _minimal(st_iis.generated_configs(back_end=False), lambda c: len(c.locations) >= 1)
    assert config == st_iis.GeneratedConfig(
        (build.Site("Default Web Site", build.EXCHANGE_FRONT_END.applications[:2]),),
        (build.Loc("Default Web Site", "None"),),
        build.Style(newline="\n", bom=False, header_comment=False),
        "None",
    )
    assert repr(config) == (
        "GeneratedConfig((Site('Default Web Site', applications=(App('/', "
        "pool='MSExchangeOWAAppPool'), App('/owa', pool='MSExchangeOWAAppPool'))),), "
        "(Loc('Default Web Site', ssl_flags='None'),), "
        "Style(newline='\\n', bom=False, header_comment=False), 'None')"
    )
    assert config.raw.count(b"\n") < 30


@pytest.mark.parametrize("kind", ["duplicate-section", "nested-location"])
def test_a_failing_property_reports_a_small_example_with_hypothesis_defaults(kind):
    """As a user's @given test reports it: Hypothesis's last phase (explain) varies the shrunk
    example, and adopts any variation that is simpler in its own order. When a plain value
    cost more choices than an odd one (sslFlags "Ssl" 7, "None" 2), that was a file with more
    sites and locations than the shrunk one, and it was reported instead."""

    @settings(database=None, derandomize=True, max_examples=100)
    @given(st_iis.generated_configs(invalid=[kind]))
    def offload_works(config):
        offload(config.raw)

    with pytest.raises(InvalidInput) as caught:
        offload_works()
    example = " ".join(caught.value.__notes__[0].split())
    assert example.count("Site(") == 1  # the front end only
    assert example.count("App(") == 2  # its root and one service
    assert len(example) < 700, example


@given(st_iis.generated_configs())
def test_a_binding_with_sni_has_the_host_name_iis_requires_for_it(config):
    """And no site binds one protocol and address twice, which IIS refuses too. Bindings
    without SNI may name a host as well (http ones of real sites do)."""
    for site in etree.fromstring(config.raw).iter("site"):
        bindings = [(b.get("protocol"), b.get("bindingInformation")) for b in site.iter("binding")]
        assert len(bindings) == len(set(bindings)), bindings
        for binding in site.iter("binding"):
            if int(binding.get("sslFlags", "0")) & 1:
                host = binding.get("bindingInformation", "").split(":")[2]
                assert host, etree.tostring(binding)


@pytest.mark.parametrize(
    ("flags", "host"),
    [
        ("1", "mail.contoso.com"),
        ("3", "mail.contoso.com"),
        ("0", ""),
        ("Sni", "mail.contoso.com"),
        ("CentralCertStore, sni", "mail.contoso.com"),
        ("None", ""),
    ],
)
def test_a_built_binding_takes_its_flags_as_a_number_or_names(flags, host):
    site = build.Site("Default Web Site", binding_ssl_flags=flags)
    raw = build.render([site], [])
    (binding,) = etree.fromstring(raw).iter("binding")
    assert binding.get("sslFlags") == flags
    assert binding.get("bindingInformation") == f"*:443:{host}"


def test_a_built_binding_refuses_a_flag_iis_does_not_know():
    with pytest.raises(ValueError, match="Snii is no binding flag"):
        build.render([build.Site("Default Web Site", binding_ssl_flags="Snii")], [])


def test_building_blocks_shrink_to_the_plain_case():
    assert _minimal(st_iis.location_paths()) == "Default Web Site"
    assert _minimal(st_iis.ssl_flags(), lambda v: "," in v).count(",") == 1
    assert _minimal(st_iis.formatting_styles(), lambda s: s.indent == "\t") == build.Style(
        newline="\n", indent="\t", bom=False, header_comment=False
    )


def test_location_paths_spell_each_part_in_its_own_case():
    # as admin scripts write them: the site as IIS names it, the directory in capitals
    assert _minimal(st_iis.location_paths(), lambda p: p.endswith("/OWA")) == (
        "Default Web Site/OWA"
    )
    assert _minimal(st_iis.location_paths(), lambda p: p.startswith("DEFAULT WEB SITE/o")) == (
        "DEFAULT WEB SITE/owa"
    )
    assert _minimal(st_iis.location_paths(casing=False), lambda p: p.endswith("/owa")) == (
        "Default Web Site/owa"
    )


def test_generated_config_knows_its_sites_and_text():
    config = st_iis.GeneratedConfig(
        (build.EXCHANGE_FRONT_END,), (), build.Style(encoding="utf-16-be"), None
    )
    assert config.raw.startswith(b"\xfe\xff") and config.bom == b"\xfe\xff"
    assert config.text.startswith('<?xml version="1.0" encoding="UTF-16"?>')
    assert "Default Web Site/mapi" in config.site_paths()
    assert config.site("default web site") is build.EXCHANGE_FRONT_END
    assert config.site_paths("Exchange Back End") == []


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        (
            "hypothesis",
            "confedit.testing.strategies needs Hypothesis: install confedit[testing]",
        ),
        # Hypothesis is there, one of its own dependencies is not: that one is named
        ("sortedcontainers", "import of sortedcontainers halted; None in sys.modules"),
    ],
)
def test_without_hypothesis_the_import_error_names_the_extra(missing, said):
    code = f"import sys; sys.modules[{missing!r}] = None\nimport confedit.testing.strategies"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines()[-1] == f"ModuleNotFoundError: {said}"
