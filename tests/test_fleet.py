"""The fleet matrix: which targets the servers disagree on, from real audits."""

from __future__ import annotations

import pytest

from confedit.auditing import AuditReport, audit
from confedit.fleet import Below, Cell, fleet_of, render_fleet
from confedit.style import paint
from tests.conftest import CORPUS, EXCHANGE, SAMPLES
from tests.helpers import NOT_INHERITED, SMALL_CAS, strip_ansi

CAS = EXCHANGE / "e2013-cas.applicationHost.config"
EXTENDED_PROTECTION = EXCHANGE / "e2013-cas-extended-protection.applicationHost.config"
OFFLOADED = SAMPLES / "exchange2013-cas.applicationHost.patched.config"
PLAIN_IIS = CORPUS / "iis" / "reverse-proxy.applicationHost.config"


def audited(path, name: str) -> AuditReport:
    return audit(path.read_bytes(), name)


@pytest.fixture(scope="module")
def reports() -> dict[str, AuditReport]:
    return {
        "cas1": audited(CAS, "fleet/cas1/applicationHost.config"),
        "cas2": audited(CAS, "fleet/cas2/applicationHost.config"),
        "ep": audited(EXTENDED_PROTECTION, "fleet/ep/applicationHost.config"),
        "done": audited(OFFLOADED, "fleet/done/ApplicationHost.config"),
        "web": audited(PLAIN_IIS, "fleet/web/applicationHost.config"),
    }


def test_identical_servers_agree(reports):
    fleet = fleet_of([reports["cas1"], reports["cas2"]])
    assert fleet.consistent and fleet.disagreeing() == []
    assert not fleet.all_offloaded
    calendar = Below("calendar", "Calendar", "None", "None")  # owa/Calendar does not require SSL
    assert fleet.servers[0].cells["owa"] == Cell(True, "Ssl, Ssl128", "None", (calendar,))


def test_the_agreement_line_counts_the_servers_and_is_green_only_for_a_pass(reports):
    two = render_fleet(fleet_of([reports["cas1"], reports["cas2"]])).splitlines()
    assert two[-1] == "both servers agree"  # it said "all 2 servers agree"
    three = fleet_of([reports["cas1"], reports["cas2"], reports["cas1"]])
    assert render_fleet(three).splitlines()[-1] == "all 3 servers agree"
    assert render_fleet(three, color=True).splitlines()[-1] == paint("all 3 servers agree", "good")
    hand = fleet_of([reports["done"], back_end_offloaded("Exchange Back End")])
    # The run fails on the Back End line below it: the line above is not painted as a pass.
    agree = render_fleet(hand, color=True).splitlines()[-2]
    assert agree == paint("both servers agree on the front end", "dim")


def test_extended_protection_differs_where_it_is_on(reports):
    fleet = fleet_of([reports["cas1"], reports["ep"]])
    # the file turns Extended Protection on everywhere but Autodiscover
    assert fleet.disagreeing() == ["owa", "ecp", "ews", "eas", "oab", "mapi"]
    assert fleet.servers[1].cells["owa"].text() == "Ssl,Ssl128/EP=Require"
    assert fleet.servers[1].cells["ews"].text() == "Ssl,Ssl128/EP=Allow"


def test_an_offloaded_server_differs_everywhere_from_one_that_is_not(reports):
    fleet = fleet_of([reports["cas1"], reports["done"]])
    assert fleet.disagreeing() == ["owa", "ecp", "ews", "autodiscover", "eas", "oab", "mapi"]
    assert fleet_of([reports["done"]]).all_offloaded


def test_a_server_without_front_end_targets_is_listed_but_not_compared(reports):
    fleet = fleet_of([reports["cas1"], reports["web"], reports["cas2"]])
    assert [server.compared for server in fleet.servers] == [True, False, True]
    assert fleet.consistent
    text = render_fleet(fleet)
    assert "not compared (no Exchange front-end targets): fleet/web/applicationHost.config" in text


def test_the_matrix_marks_the_columns_that_differ(reports):
    fleet = fleet_of([reports["cas1"], reports["cas2"], reports["ep"]])
    lines = render_fleet(fleet).splitlines()
    assert lines[0].split() == ["SERVER", "owa", "ecp", "ews", "autodiscover", "eas", "oab", "mapi"]
    # owa/Calendar differs too (Extended Protection on there as well): owa's cells show it
    assert lines[1].split() == ["fleet/cas1", "Ssl,Ssl128;Calendar=None", *["Ssl,Ssl128"] * 6]
    assert lines[3].split()[:2] == ["fleet/ep", "Ssl,Ssl128/EP=Require;Calendar=None/EP=Require"]
    assert lines[4].split() == ["DIFFERS", "DIFFERS", "DIFFERS", "same", *["DIFFERS"] * 3]
    # the marks stand under their columns
    assert lines[4].index("same") == lines[0].index("autodiscover")
    assert lines[-1] == "the 3 servers disagree on: owa, ecp, ews, eas, oab, mapi"


def test_in_colour_only_the_odd_cells_are_red_and_the_text_is_the_same(reports):
    fleet = fleet_of([reports["cas1"], reports["cas2"], reports["ep"]])
    coloured = render_fleet(fleet, color=True)
    assert strip_ansi(coloured.encode()).decode() == render_fleet(fleet)
    red = "\x1b[31m\x1b[1m"
    rows = coloured.splitlines()
    assert red not in rows[1] and red not in rows[2]  # cas1, cas2: the majority
    assert rows[3].count(red) == 6  # ep differs from the others in six columns


def test_where_no_cell_is_the_most_common_every_cell_of_the_column_is_red(reports):
    # Two servers, one offloaded: neither is the odd one out. The second alone was red, which
    # told the reader to fix that one; on a tie no value stands for the fleet.
    red = "\x1b[31m\x1b[1m"
    rows = render_fleet(fleet_of([reports["cas1"], reports["done"]]), color=True).splitlines()
    assert rows[1].count(red) == rows[2].count(red) == 7
    # two against two and one: tied in six columns, so all five are red there; autodiscover
    # is three (Extended Protection is off there on ep) against the two offloaded
    fleet = fleet_of([reports[name] for name in ("cas1", "cas2", "ep", "done", "done")])
    rows = render_fleet(fleet, color=True).splitlines()
    assert [rows[i].count(red) for i in (1, 2, 3, 4, 5)] == [6, 6, 6, 7, 7]


def test_without_any_client_access_server_nothing_agrees_or_is_offloaded(reports):
    fleet = fleet_of([reports["web"]])
    assert fleet.consistent and not fleet.all_offloaded
    assert render_fleet(fleet).splitlines()[-1] == (
        "no Client Access server among the files: no Exchange front-end virtual directory in "
        "'Default Web Site' in any file"
    )


def test_a_site_in_no_files_sites_is_named_as_the_likely_mistake():
    fleet = fleet_of([audit(CAS.read_bytes(), "a", site="Contoso")])
    assert render_fleet(fleet).splitlines()[-1] == (
        "no Client Access server among the files: the site 'Contoso' is not in "
        "<sites>; name the front-end site with --site (the default is 'Default Web Site')"
    )
    fleet = fleet_of([audit(CAS.read_bytes(), "a", site="Default Web Site 2")])
    assert render_fleet(fleet).splitlines()[-1] == (
        "no Client Access server among the files: the site 'Default Web Site 2' is not in "
        "<sites>; did you mean 'Default Web Site'?"
    )
    # each file's own near name, once each, in the files' order
    renamed = CAS.read_bytes().replace(
        b'site name="Default Web Site"', b'site name="Default Web Sites"'
    )
    files = [CAS.read_bytes(), renamed, CAS.read_bytes()]
    fleet = fleet_of([audit(raw, str(i), site="Default Web Sit") for i, raw in enumerate(files)])
    assert (
        render_fleet(fleet)
        .splitlines()[-1]
        .endswith("did you mean 'Default Web Site' or 'Default Web Sites'?")
    )


def test_one_client_access_server_is_not_said_to_agree(reports):
    lines = render_fleet(fleet_of([reports["cas1"], reports["web"]])).splitlines()
    assert lines[-1] == "one Client Access server: nothing to compare it with"
    assert not any("same" in line.split() for line in lines)  # no row of marks


def test_servers_are_named_by_their_folder_or_file_name_prefix(reports):
    flat = audited(CAS, "exports/CAS03.applicationHost.config")
    other = audited(CAS, "applicationHost.config")
    names = [
        line.split()[0]
        for line in render_fleet(fleet_of([reports["done"], flat, other])).splitlines()[1:4]
    ]
    assert names == ["fleet/done", "exports/CAS03", "applicationHost.config"]


def test_two_files_one_server_name_would_give_are_named_by_their_paths(reports):
    """`cas1/applicationHost.config` and `cas1.applicationHost.config` in one folder: two
    servers' rows must not both read `fl/cas1`."""
    folder = audited(CAS, "fl/cas1/applicationHost.config")
    flat = audited(EXTENDED_PROTECTION, "fl/cas1.applicationHost.config")
    lines = render_fleet(fleet_of([folder, flat, reports["cas2"]])).splitlines()
    names = [line.split()[0] for line in lines[1:4]]
    assert names == [
        "fl/cas1/applicationHost.config",
        "fl/cas1.applicationHost.config",
        "fleet/cas2",
    ]


def test_a_control_character_in_a_skipped_files_name_is_escaped(reports):
    # a line break in a folder name must not split the verdict, nor an escape drive the terminal
    web = audited(PLAIN_IIS, "fleet/evil\n\x1b[31m/applicationHost.config")
    text = render_fleet(fleet_of([reports["cas1"], web]))
    assert "not compared (no Exchange front-end targets): fleet/evil\\n\\x1b[31m/" in text
    assert "\x1b" not in text


def integrated_offloaded_too() -> AuditReport:
    """The offloaded sample, with owa/Integrated offloaded as well (--include-descendants)."""
    raw = OFFLOADED.read_bytes()
    start = raw.index(b'<location path="Default Web Site/owa/Integrated">')
    at = raw.index(b'sslFlags="Ssl, Ssl128"', start)
    raw = raw[:at] + b'sslFlags="None"' + raw[at + len(b'sslFlags="Ssl, Ssl128"') :]
    return audit(raw, "fleet/all/applicationHost.config")


def test_servers_that_differ_below_a_target_disagree_on_it(reports):
    # Both have owa offloaded; on one, owa/Integrated still requires SSL. The fleet said they
    # agreed: a gate of "all servers configured the same" passed over it.
    fleet = fleet_of([reports["done"], integrated_offloaded_too()])
    assert fleet.disagreeing() == ["owa"]
    lines = render_fleet(fleet).splitlines()
    assert lines[1].split()[:2] == ["fleet/done", "None;Integrated=Ssl,Ssl128"]
    assert lines[2].split()[:2] == ["fleet/all", "None"]
    assert lines[-1] == "the 2 servers disagree on: owa"
    below = fleet.to_json()["servers"][0]["targets"]["owa"]["below"]
    assert below == [
        {
            "path": "Integrated",
            "effective_ssl_flags": "Ssl, Ssl128",
            "extended_protection": "None",
            "unlocked_by": None,
        }
    ]


def test_paths_below_a_target_are_shown_only_in_a_column_where_they_differ(reports):
    # Every server has owa/Calendar on None while owa requires SSL: alike, it is no finding, and
    # each owa cell stays the target's value alone.
    lines = render_fleet(fleet_of([reports["cas1"], reports["cas2"]])).splitlines()
    assert lines[1].split() == ["fleet/cas1", *["Ssl,Ssl128"] * 7]
    assert fleet_of([reports["cas1"], reports["cas2"]]).servers[0].cells["owa"].below


def unlocked_at(path: str) -> AuditReport:
    """The audit of the offloaded sample as server fleet/open, with overrideMode="Allow" on the
    <location> of `path`: a web.config there could set sslFlags on that server alone."""
    tag = f'<location path="{path}">'.encode()
    raw = OFFLOADED.read_bytes().replace(tag, tag[:-1] + b' overrideMode="Allow">', 1)
    return audit(raw, "fleet/open/applicationHost.config")


def test_a_server_whose_access_section_is_unlocked_at_a_target_disagrees_on_it(reports):
    # A web.config below owa could turn SSL back on (or off) on that server alone: the file's
    # sslFlags is the same, the server's effective policy may not be.
    unlocked = unlocked_at("Default Web Site/owa")
    fleet = fleet_of([reports["done"], unlocked])
    assert fleet.disagreeing() == ["owa"]
    # owa/Integrated, below, is unlocked by owa's location too
    assert render_fleet(fleet).splitlines()[2].split()[:2] == [
        "fleet/open",
        "None/unlocked;Integrated=Ssl,Ssl128/unlocked",
    ]
    cell = fleet.to_json()["servers"][1]["targets"]["owa"]
    assert cell["unlocked_by"].startswith('overrideMode="Allow" at Default Web Site/owa (line ')
    assert fleet.to_json()["servers"][0]["targets"]["owa"]["unlocked_by"] is None


def test_a_child_application_without_location_past_inherit_false_is_compared():
    # IIS-NOTES: owa's None does not flow into the child application owa/Integrated on the
    # server whose owa location says inheritInChildApplications="false"; Integrated gets the
    # site's Ssl, Ssl128 there, and owa's None on the other. They were said to agree.
    stopped = audit(SMALL_CAS % NOT_INHERITED, "cas1/applicationHost.config")
    flowing = audit(SMALL_CAS % b"", "cas2/applicationHost.config")
    fleet = fleet_of([stopped, flowing])
    assert fleet.disagreeing() == ["owa"]
    lines = render_fleet(fleet).splitlines()
    assert lines[1].split()[:2] == ["cas1", "None;Integrated=Ssl,Ssl128"]
    assert lines[2].split()[:2] == ["cas2", "None"]
    assert lines[-1] == "the 2 servers disagree on: owa"


def test_a_server_whose_access_section_is_unlocked_below_a_target_disagrees_on_it(reports):
    # overrideMode="Allow" on owa/Integrated's location: a web.config there could set sslFlags
    # on that server alone. Only a target's own unlocking was compared: the two agreed.
    unlocked = unlocked_at("Default Web Site/owa/Integrated")
    fleet = fleet_of([reports["done"], unlocked])
    assert fleet.disagreeing() == ["owa"]
    lines = render_fleet(fleet).splitlines()
    assert lines[1].split()[:2] == ["fleet/done", "None;Integrated=Ssl,Ssl128"]
    assert lines[2].split()[:2] == ["fleet/open", "None;Integrated=Ssl,Ssl128/unlocked"]
    (below,) = fleet.to_json()["servers"][1]["targets"]["owa"]["below"]
    assert below["unlocked_by"].startswith('overrideMode="Allow" at Default Web Site/owa/Integ')
    assert fleet.to_json()["servers"][0]["targets"]["owa"]["below"][0]["unlocked_by"] is None


def back_end_offloaded(path: str, name: str = "fleet/hand/applicationHost.config") -> AuditReport:
    """The offloaded sample with sslFlags="None" at the Back End's `path`, set by hand there
    (the <location> of the site holds an access section; one is added for another path)."""
    raw = OFFLOADED.read_bytes()
    tag = f'<location path="{path}">'.encode()
    if tag in raw:
        start = raw.index(tag)
        at = raw.index(b'sslFlags="Ssl, Ssl128"', start)
        raw = raw[:at] + b'sslFlags="None"' + raw[at + len(b'sslFlags="Ssl, Ssl128"') :]
    else:
        location = tag + b'<system.webServer><security><access sslFlags="None" />'
        raw = raw.replace(
            b"</configuration>",
            location + b"</security></system.webServer></location>\r\n</configuration>",
        )
    return audit(raw, name)


def test_a_server_whose_back_end_lost_its_ssl_is_named(reports):
    # The front end of both is the same: the fleet said "all 2 servers agree", and exit 0.
    fleet = fleet_of([reports["done"], back_end_offloaded("Exchange Back End")])
    assert fleet.consistent and not fleet.back_end_requires_ssl
    # the site's own location; its paths below inherit it, and are not named again
    assert [server.back_end_without_ssl for server in fleet.servers] == [(), ("Exchange Back End",)]
    lines = render_fleet(fleet).splitlines()
    assert lines[-2] == "both servers agree on the front end"  # not a plain "agree" above a failure
    assert lines[-1] == (
        "the Exchange Back End does not require SSL on fleet/hand (at /): the front end "
        "proxies to it over SSL, and it must keep requiring it; set sslFlags back to what "
        'Exchange Setup writes: "Ssl, Ssl128" at /'
    )
    data = fleet.to_json()
    assert data["back_end_requires_ssl"] is False
    assert [s["back_end_without_ssl"] for s in data["servers"]] == [[], ["Exchange Back End"]]


def test_a_back_end_path_offloaded_by_hand_is_named_with_its_server(reports):
    ews = back_end_offloaded("Exchange Back End/EWS", "fleet/ews/applicationHost.config")
    fleet = fleet_of([ews, reports["done"], back_end_offloaded("Exchange Back End")])
    assert (
        render_fleet(fleet)
        .splitlines()[-1]
        .startswith(
            "the Exchange Back End does not require SSL on fleet/ews (at /EWS), fleet/hand (at /): "
        )
    )


def test_the_back_end_paths_exchange_itself_leaves_without_ssl_are_no_finding(reports):
    # Real exports with the Mailbox role have owa/Calendar, Rpc and RpcWithCert on None.
    servers = [
        audited(EXCHANGE / f"{name}.applicationHost.config", name)
        for name in ("e2013-cas-mbx", "e2016", "e2019")
    ]
    without = [
        row.path for row in servers[1].rows if row.role == "back-end" and not row.requires_ssl
    ]
    assert without == [
        "Exchange Back End/owa/Calendar",
        "Exchange Back End/Rpc",
        "Exchange Back End/RpcWithCert",
    ]
    fleet = fleet_of([*servers, reports["cas1"], reports["web"]])
    assert fleet.back_end_requires_ssl
    assert "Back End" not in render_fleet(fleet)


def test_a_server_names_ten_back_end_paths_at_most(reports):
    locations = b"".join(
        b'<location path="Exchange Back End/f%02d"><system.webServer><security>'
        b'<access sslFlags="None" /></security></system.webServer></location>\r\n' % i
        for i in range(12)
    )
    raw = OFFLOADED.read_bytes().replace(b"</configuration>", locations + b"</configuration>")
    fleet = fleet_of([audit(raw, "fleet/many/applicationHost.config")])
    assert len(fleet.servers[0].back_end_without_ssl) == 12
    named = ", ".join(f"/f{i:02d}" for i in range(10))
    assert f"on fleet/many (at {named} and 2 more): " in render_fleet(fleet)


def test_the_back_end_advice_names_each_path_of_several_servers_once_with_setups_value():
    # Two servers with the same path offloaded by hand name it once in the advice; a path that
    # inherits from one Setup writes on its own gets that one's value, whatever its case.
    fleet = fleet_of(
        [
            back_end_offloaded("Exchange Back End"),
            back_end_offloaded("Exchange Back End", "fleet/hand2/applicationHost.config"),
            back_end_offloaded("Exchange Back End/POWERSHELL/x", "fleet/ps/applicationHost.config"),
        ]
    )
    assert render_fleet(fleet).splitlines()[-1] == (
        "the Exchange Back End does not require SSL on fleet/hand (at /), fleet/hand2 (at /), "
        "fleet/ps (at /POWERSHELL/x): the front end proxies to it over SSL, and it must keep "
        'requiring it; set sslFlags back to what Exchange Setup writes: "Ssl, Ssl128" at /, '
        '"Ssl, SslNegotiateCert, Ssl128" at /POWERSHELL/x'
    )
