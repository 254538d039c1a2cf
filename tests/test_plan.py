"""plan.py: target selection, the safety rules, and the shape of every kind of edit."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from confedit import exchange, iis, offload
from confedit.auditing import audit
from confedit.errors import InvalidInput, Refused, UsageProblem
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
from tests.conftest import CORPUS, EXCHANGE, SAMPLES, corpus_files, run
from tests.helpers import access_values, back_end_blocks, record_is_below

LF = Style(newline="\n", bom=False)
SITES = [EXCHANGE_FRONT_END, EXCHANGE_BACK_END]
ROOT = Loc("Default Web Site", "Ssl, Ssl128")
BACK = [Loc("Exchange Back End", "Ssl, Ssl128"), Loc("Exchange Back End/owa", shape="security")]


def config(*locations: Loc, style: Style = LF, sites=SITES) -> bytes:
    return render(sites, [ROOT, *BACK, *locations], style)


def owa_only(raw: bytes, **kwargs):
    return offload(raw, Request(services=("owa",), **kwargs), name="t.config")


def owa_only_reason(raw: bytes) -> str:
    """The one reason offloading owa alone is refused."""
    with pytest.raises(Refused) as refused:
        owa_only(raw)
    (reason,) = refused.value.reasons
    return reason


def real(name: str) -> bytes:
    return (EXCHANGE / name).read_bytes()


# --- edits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "action", "created"),
    [
        ("access", "rewritten", ()),
        ("security", "inserted", ("access",)),
        ("webserver", "created", ("security", "access")),
        ("empty", "created", ("system.webServer", "security", "access")),
        ("self-closed", "created", ("system.webServer", "security", "access")),
    ],
)
@pytest.mark.parametrize("style", [LF, Style(), Style(indent="\t"), Style(indent="  ", quote="'")])
def test_each_shape_gets_its_edit_and_stays_idempotent(shape, action, created, style):
    raw = config(Loc("Default Web Site/owa", "Ssl", shape=shape), style=style)
    result = owa_only(raw)
    (outcome,) = result.outcomes
    assert (outcome.action, outcome.created) == (action, created)
    assert (
        access_values(result.output.removeprefix(b"\xef\xbb\xbf"))["Default Web Site/owa"] == "None"
    )
    assert owa_only(result.output).output == result.output


def test_inserted_access_is_indented_like_its_siblings_with_the_file_newline():
    raw = config(
        Loc("Default Web Site/owa", shape="security", token_checking="None"), style=Style()
    )
    out = owa_only(raw).output
    assert (
        b"                </authentication>\r\n"
        b'                <access sslFlags="None" />\r\n'
        b"            </security>\r\n"
    ) in out


def test_tabs_are_kept_when_creating_elements():
    raw = config(
        Loc("Default Web Site/owa", shape="webserver"), style=Style(indent="\t", newline="\n")
    )
    out = owa_only(raw).output
    assert b"\t\t</system.webServer>" in out
    assert (
        b'\t\t\t<security>\n\t\t\t\t<access sslFlags="None" />\n\t\t\t</security>\n\t\t</system.webServer>'
        in out
    )


def test_self_closed_location_becomes_an_open_close_pair():
    raw = config(Loc("Default Web Site/owa", shape="self-closed"))
    out = owa_only(raw).output
    assert b'<location path="Default Web Site/owa" />' not in out
    assert re.search(
        rb'<location path="Default Web Site/owa">\n        <system.webServer>\n            <security>\n'
        rb'                <access sslFlags="None" />\n            </security>\n        </system.webServer>\n'
        rb"    </location>",
        out,
    )


ACCESS_NONE = b'<access sslFlags="None" />'


@pytest.mark.parametrize(
    ("shape", "end_tag", "inserted"),
    [
        ("security", b"</security>", ACCESS_NONE),
        ("webserver", b"</system.webServer>", b"<security>" + ACCESS_NONE + b"</security>"),
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_location_written_on_one_line_stays_on_one_line(shape, end_tag, inserted, newline):
    style = Style(newline=newline, bom=False)
    raw = config(Loc("Default Web Site/owa", shape=shape, one_line=True), style=style)
    out = owa_only(raw).output
    (before,) = [line for line in raw.splitlines() if b"Default Web Site/owa" in line]
    assert before.count(end_tag) == 1
    assert out == raw.replace(before, before.replace(end_tag, inserted + end_tag))
    assert out.count(newline.encode()) == raw.count(newline.encode())


def test_missing_location_is_appended_after_the_last_one():
    raw = config(Loc("Default Web Site/ecp", shape="security"))
    result = owa_only(raw)
    assert result.outcomes[0].created[0] == "location"
    tail = result.output.split(b'<location path="Default Web Site/ecp">')[1]
    assert b'</location>\n    <location path="Default Web Site/owa">\n' in tail
    assert tail.endswith(b"    </location>\n</configuration>\n")


def test_comment_inside_security_stays_and_access_goes_last():
    raw = config(Loc("Default Web Site/owa", shape="security", comment="kept <location path='x'>"))
    out = owa_only(raw).output
    assert b"<!-- kept <location path='x'> -->\n                <access sslFlags=\"None\" />" in out


REPEATED_GROUPS = {  # the owa location's first block, before the one that holds <access>
    "system.webServer": b"<system.webServer>\n            <defaultDocument />\n"
    b"        </system.webServer>\n        ",
    "security": b"<system.webServer>\n            <security>\n                <authentication />\n"
    b"            </security>\n            ",
}


@pytest.mark.parametrize("group", sorted(REPEATED_GROUPS))
def test_access_is_rewritten_in_whichever_repeated_block_holds_it(group):
    raw = config(Loc("Default Web Site/owa", "Ssl"))
    start = b'<location path="Default Web Site/owa">\n        '
    first = REPEATED_GROUPS[group]
    if group == "security":  # two <security> in one <system.webServer>
        raw = raw.replace(start + b"<system.webServer>\n            ", start + first)
    else:
        raw = raw.replace(start, start + first)
    result = owa_only(raw)
    assert result.outcomes[0].action == "rewritten"
    head, _, tail = raw.rpartition(b'<access sslFlags="Ssl" />')  # not the header's comment
    assert result.output == head + b'<access sslFlags="None" />' + tail


def test_access_without_the_attribute_gets_it_added():
    raw = config(Loc("Default Web Site/owa", access_attributes=(("lockItem", "false"),)))
    out = owa_only(raw).output
    assert b'<access lockItem="false" sslFlags="None" />' in out


@pytest.mark.parametrize("value", ["None", "none", " None ", "0"])
def test_explicit_none_in_any_spelling_is_left_alone(value):
    raw = config(Loc("Default Web Site/owa", value))
    result = owa_only(raw)
    assert result.outcomes[0].action == "unchanged"
    assert result.output == raw


def test_single_quotes_and_spelling_of_the_value_are_kept():
    raw = config(Loc("Default Web Site/owa", "ssl,ssl128"), style=Style(quote="'", newline="\n"))
    out = owa_only(raw).output
    assert b"<access sslFlags='None' />" in out


def test_pinned_when_already_none_by_inheritance():
    raw = render(
        SITES, [Loc("Default Web Site", "None"), Loc("Default Web Site/owa", shape="security")], LF
    )
    (outcome,) = owa_only(raw).outcomes
    assert outcome.pinned and outcome.action == "inserted"


def test_paths_match_case_insensitively_with_a_trailing_slash_and_keep_the_file_spelling():
    raw = config(Loc("Default Web Site/owa", "Ssl"))
    result = offload(raw, Request(paths=("default web site/OWA/",)), name="t")
    assert [o.target.path for o in result.outcomes] == ["Default Web Site/owa"]
    assert b'<location path="Default Web Site/owa">' in result.output


@pytest.mark.parametrize(
    "typed",
    [
        "Default Web Site/OWA//",
        "Default Web Site/nothere/",
        "Exchange Back End/owa//",
        "Other Site/x/",
        "owa/",
        "./",
    ],
)
def test_a_path_the_file_does_not_have_is_named_as_it_was_typed(typed):
    """A trailing slash was taken off: 'owa//' was refused as 'owa/' (which the file has, as
    'owa'), and the slash too many the user had to find was not shown."""
    with pytest.raises(Refused) as info:
        offload(real("e2013-cas.applicationHost.config"), Request(paths=(typed,)), name="t")
    (reason,) = info.value.reasons
    assert reason.startswith(f"'{typed}'")


def test_a_service_and_its_path_are_one_target():
    raw = config(Loc("Default Web Site/owa", "Ssl"))
    result = offload(raw, Request(services=("OWA",), paths=("Default Web Site/owa",)), name="t")
    assert len(result.outcomes) == 1


def test_look_alike_paths_are_not_targets():
    sites = [
        Site("Default Web Site", (*EXCHANGE_FRONT_END.applications, App("/owa2"))),
        Site("Default Web Site2", (App("/"), App("/owa"))),
        EXCHANGE_BACK_END,
    ]
    look_alikes = [
        Loc("Default Web Site/owa2", "Ssl"),
        Loc("Default Web Site2/owa", "Ssl"),
        Loc("Default Web Site/owa/auth", "Ssl"),
        Loc("Exchange Back End/owa/x", "Ssl"),
    ]
    raw = render(sites, [ROOT, *BACK, *look_alikes, Loc("Default Web Site/owa", "Ssl")], LF)
    values = access_values(owa_only(raw, include_descendants=False).output)
    assert values["Default Web Site/owa"] == "None"
    assert all(values[loc.path] == "Ssl" for loc in look_alikes)


def test_binding_ssl_flags_are_never_touched():
    """<binding sslFlags="0"> under <sites> is another setting (SNI flags of a binding)."""
    raw = (SAMPLES / "exchange2013-cas.applicationHost.config").read_bytes()
    bindings = re.findall(rb"<binding [^>]*sslFlags[^>]*>", raw)
    assert bindings
    result = offload(raw, Request(paths=("Default Web Site",)), name="t")
    assert re.findall(rb"<binding [^>]*sslFlags[^>]*>", result.output) == bindings
    assert result.outcomes[0].action == "rewritten"


# --- target selection and refusals -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["Exchange Back End/owa", "exchange back end/OWA/", "EXCHANGE BACK END"]
)
def test_back_end_is_refused_in_any_spelling(path):
    raw = config()
    with pytest.raises(Refused) as info:
        offload(raw, Request(paths=(path,)), name="t")
    message = str(info.value)
    assert f"'{path.rstrip('/')}'".casefold() in message.casefold()
    assert "Exchange Back End site must keep requiring SSL" in message


@pytest.mark.parametrize("services", [(), ("owa", "ecp")])
def test_the_back_end_as_the_site_is_one_refusal(services):
    with pytest.raises(Refused) as info:
        offload(config(), Request(site="exchange BACK end", services=services), name="t")
    (reason,) = info.value.reasons
    assert reason.startswith("the site 'exchange BACK end' is the Exchange Back End: ")
    # What it says to do works ("the same directory under 'Default Web Site'" named none).
    assert reason.endswith(
        "; leave out --site, whose default is the front-end site, 'Default Web Site'"
    )
    assert offload(config(), Request(services=services), name="t").changed


@pytest.mark.parametrize(
    ("path", "instead"),
    [
        ("exchange back end/OWA", "Default Web Site/owa"),
        ("Exchange Back End/mapi/emsmdb", "Default Web Site/mapi"),
        ("Exchange Back End/", None),
        ("Exchange Back End/PushNotifications", None),
    ],
)
def test_a_back_end_path_is_answered_with_the_front_end_path_to_offload(path, instead):
    """The advice "offload the same directory under 'Default Web Site' instead" named no path,
    and for the Back End's own directories (mapi/emsmdb) or the site itself none that exists.
    The refusal names the front-end path meant, or the services, and doing so is offloaded."""
    raw = real("e2016.applicationHost.config")
    with pytest.raises(Refused) as info:
        offload(raw, Request(paths=(path,)), name="t")
    (reason,) = info.value.reasons
    if instead is None:
        assert reason.endswith("; offload the front end's services instead (leave out --path)")
        assert offload(raw, name="t").changed
    else:
        assert reason.endswith(f"; offload '{instead}' instead")
        assert offload(raw, Request(paths=(instead,)), name="t").changed


@pytest.mark.parametrize("path", ["Exchange Back End\\ecp", "/Exchange Back End/ecp"])
def test_a_back_end_path_spelled_otherwise_is_not_sent_round_in_a_loop(path):
    """Written with a backslash or a leading slash, a Back End path was "outside the front-end
    site (choose another front-end site with --site)"; --site "Exchange Back End" is refused
    with "leave out --site", which led back to the first refusal. It is refused as a Back End
    path, with the front-end path to offload instead, which is offloaded."""
    raw = real("e2016.applicationHost.config")
    with pytest.raises(Refused) as info:
        offload(raw, Request(paths=(path,)), name="t")
    (reason,) = info.value.reasons
    assert reason.startswith(f"'{path}' is in the Exchange Back End site: ")
    assert reason.endswith("; offload 'Default Web Site/ecp' instead")
    assert offload(raw, Request(paths=("Default Web Site/ecp",)), name="t").changed


@pytest.mark.parametrize(
    "path", ["Exchange Back End/EWS/mrsproxy.svc", "Exchange Back End/ews/MRSProxy.svc/x"]
)
def test_a_back_end_mrsproxy_path_is_not_told_to_offload_ews_instead(path):
    """The front end's nearest path above MRSProxy is EWS, and offloading EWS offloads MRSProxy
    with it, which Microsoft does not support: the refusal sent the operator who would offload
    MRSProxy in the Back End to offload it in the front end. It says to keep it on SSL."""
    raw = real("e2016.applicationHost.config")
    with pytest.raises(Refused) as info:
        offload(raw, Request(paths=(path,)), name="t")
    (reason,) = info.value.reasons
    assert reason.startswith(f"'{path}' is in the Exchange Back End site: ")
    assert "instead" not in reason
    assert reason.endswith(f"; nor in the front end: {exchange.MRSPROXY_REASON}")


def test_other_sites_are_refused():
    raw = config(sites=[*SITES, Site("Other Site", (App("/"), App("/owa")))])
    with pytest.raises(Refused) as info:
        offload(raw, Request(paths=("Other Site/owa",)), name="t")
    assert info.value.reasons == [
        "'Other Site/owa' is outside the front-end site 'Default Web Site'; to offload it, "
        "choose its site as the front-end site: --site 'Other Site'"
    ]
    # Done as it says, the path is offloaded ("another front-end site" named none).
    assert offload(raw, Request(paths=("Other Site/owa",), site="Other Site"), name="t").changed


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("owa", "the site 'owa' is not in <sites>; did you mean 'Default Web Site/owa'?"),
        ("/owa/", "the site 'owa' is not in <sites>; did you mean 'Default Web Site/owa'?"),
        (
            "Other Site/owa",
            "the site 'Other Site' is not in <sites>; a location path starts with its site's "
            "name, such as 'Default Web Site/owa'",
        ),
    ],
)
def test_a_paths_site_that_is_no_site_of_the_file_is_not_answered_with_site(path, reason):
    """--path owa was answered "outside the front-end site (choose another front-end site with
    --site)", and --site owa is refused in turn: the site is not in <sites>. The answer names
    the path meant when the front end has it."""
    with pytest.raises(Refused) as info:
        offload(config(), Request(paths=(path,)), name="t")
    assert info.value.reasons == [f"'{path}': {reason}"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (  # a typo in the path's site: not another site, but the front end misspelt
            "Default Web Sitee/owa",
            "'Default Web Sitee/owa': the site 'Default Web Sitee' is not in <sites>; "
            "did you mean 'Default Web Site'?",
        ),
        (  # a site of the file, near the front end's name: another site indeed
            "Default Web Site2/owa",
            "'Default Web Site2/owa' is outside the front-end site 'Default Web Site'; to "
            "offload it, choose its site as the front-end site: --site 'Default Web Site2'",
        ),
    ],
)
def test_a_paths_site_not_in_sites_is_answered_with_the_site_meant(path, reason):
    raw = config(sites=[*SITES, Site("Default Web Site2", (App("/"), App("/owa")))])
    with pytest.raises(Refused) as info:
        offload(raw, Request(paths=(path,)), name="t")
    assert info.value.reasons == [reason]


@pytest.mark.parametrize("path", ["/", ".", "./"])
def test_the_server_level_as_a_path_is_named_so(path):
    with pytest.raises(Refused) as info:
        offload(config(), Request(paths=(path,)), name="t")
    assert info.value.reasons[0].endswith(
        "is the server level, not a path in the front-end site 'Default Web Site'; name one "
        "below it, such as 'Default Web Site/owa'"
    )


def test_unknown_service_is_a_usage_problem_listing_the_names():
    with pytest.raises(
        UsageProblem, match="valid names: owa, ecp, ews, autodiscover, eas, oab, mapi, rpc"
    ):
        offload(config(), Request(services=("outlook",)), name="t")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"services": "owa"}, "services takes a tuple of names, not a str: services=('owa',)"),
        ({"paths": "Default Web Site/owa"}, "paths takes a tuple of names, not a str"),
        ({"services": ("owa", None)}, "services takes names (str), not None"),
        ({"paths": (1,)}, "paths takes names (str), not 1"),
        ({"paths": None}, "paths takes a tuple of names, not NoneType"),
        ({"site": None}, "site takes a site's name (str), not None"),
        ({"include_descendants": "no"}, "include_descendants takes True or False, not 'no'"),
    ],
)
def test_a_request_of_the_wrong_types_is_a_usage_problem_naming_the_field(arguments, message):
    """A program builds its Request itself: a str for a tuple ran letter by letter ("unknown
    service 'o'", a refusal for each letter of a path), None or a number failed deep inside
    with an AttributeError, and "no" asked for the descendants."""
    with pytest.raises(UsageProblem) as info:
        Request(**arguments)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_path_is_a_usage_problem_as_the_cli_says_it(blank):
    """--path "" is a usage error (exit 2); the library refused it as the server level "/", or
    as a path outside the site (exit 3), as if a path had been named."""
    with pytest.raises(UsageProblem, match="paths takes paths: a blank one names nothing"):
        Request(paths=("Default Web Site/owa", blank))


@pytest.mark.parametrize("blank", ["", "  ", "/"])
def test_a_blank_site_is_a_usage_problem_as_the_cli_says_it(confedit_exe, blank):
    """--site "" is a usage error (exit 2); the library refused it (exit 3) as a site with no
    Exchange front-end directories, audit reported it so."""
    cli = run(
        confedit_exe,
        "offload",
        "--site",
        blank,
        str(SAMPLES / "exchange2013-cas.applicationHost.config"),
    )
    assert cli.returncode == 2
    with pytest.raises(UsageProblem, match="a site name cannot be empty") as info:
        Request(site=blank)
    assert info.value.exit_code == cli.returncode
    said = f"a site name cannot be empty ({blank!r}; the default is 'Default Web Site')"
    assert info.value.message == said
    assert said.encode() in cli.stderr
    with pytest.raises(UsageProblem, match="a site name cannot be empty"):
        audit(config(), "t", site=blank)


def test_a_site_with_a_trailing_slash_is_the_site_as_the_cli_takes_it():
    """It was refused as "the site 'Default Web Site' is not in <sites>; did you mean 'Default
    Web Site'?", the target being 'Default Web Site//owa'."""
    result = offload(config(), Request(services=("owa",), site="Default Web Site/"), name="t")
    assert [outcome.target.path for outcome in result.outcomes] == ["Default Web Site/owa"]


def test_a_path_as_the_site_is_a_usage_problem_naming_the_site_meant():
    with pytest.raises(UsageProblem) as info:
        Request(site="Default Web Site/owa")
    assert str(info.value) == (
        "site takes a site's name, which has no '/': 'Default Web Site/owa' is a path (here the "
        "site is 'Default Web Site'); paths takes paths"
    )


def test_a_request_takes_a_list_of_names_as_its_tuple():
    assert Request(services=["owa"], paths=["Default Web Site/ecp"]) == Request(
        services=("owa",), paths=("Default Web Site/ecp",)
    )


def test_an_application_pool_that_serves_several_applications_names_them_all():
    """MSExchangeOWAAppPool serves the site's root application too: naming only the first of
    its applications told the user to offload the whole site."""
    typed = "Default Web Site/MSExchangeOWAAppPool"
    with pytest.raises(Refused) as info:
        offload(real("e2013-cas.applicationHost.config"), Request(paths=(typed,)), name="t")
    (reason,) = info.value.reasons
    assert reason == (
        f"'{typed}' is not a path: MSExchangeOWAAppPool is an application pool, and it serves "
        "'Default Web Site', 'Default Web Site/owa', 'Default Web Site/owa/Integrated' and "
        "'Default Web Site/owa/oma' — use the path of the one meant"
    )


@pytest.mark.parametrize("slash", ["", "/"])
def test_the_seeds_application_pool_mistake_is_explained(slash):
    """The seed's EAS step names 'Default Web Site/MSExchangeSyncAppPool' (an application pool);
    typed with a trailing slash too, it is named as typed."""
    typed = f"Default Web Site/MSExchangeSyncAppPool{slash}"
    with pytest.raises(Refused) as info:
        offload(real("e2013-cas.applicationHost.config"), Request(paths=(typed,)), name="t")
    (reason,) = info.value.reasons
    assert reason.startswith(
        f"'{typed}' is not a path: MSExchangeSyncAppPool is an application pool, and it serves "
        "'Default Web Site/Microsoft-Server-ActiveSync'"
    )


def test_a_typo_gets_a_did_you_mean_from_the_sites():
    with pytest.raises(Refused, match="did you mean 'Default Web Site/Autodiscover'"):
        offload(
            real("e2016.applicationHost.config"),
            Request(paths=("Default Web Site/Autodiscovr",)),
            name="t",
        )


def test_mrsproxy_is_refused_and_ews_warns_about_it():
    raw = real("e2013-cas.applicationHost.config")
    with pytest.raises(Refused, match="MRSProxy does not support SSL offloading"):
        offload(raw, Request(paths=("Default Web Site/EWS/mrsproxy.svc",)), name="t")
    result = offload(raw, Request(services=("ews",)), name="t")
    assert [f.code for f in result.findings] == ["mrsproxy"]


def test_offloading_the_site_above_ews_warns_about_mrsproxy_too():
    raw = real("e2013-cas.applicationHost.config")
    result = offload(raw, Request(paths=("Default Web Site",)), name="t")
    assert [(f.code, f.path) for f in result.findings if f.code == "mrsproxy"] == [
        ("mrsproxy", "Default Web Site")
    ]


def test_a_site_without_ews_is_not_warned_about_mrsproxy():
    """Offloading the site of a plain IIS server (the corpus's reverse proxy) warned that
    MRSProxy under EWS is offloaded with it and advised SSL bridging for it: the file has no
    EWS, so there is no MRSProxy to bridge."""
    raw = (CORPUS / "iis" / "reverse-proxy.applicationHost.config").read_bytes()
    result = offload(raw, Request(paths=("Default Web Site",)), name="t")
    assert result.changed
    assert [f.code for f in result.findings] == []
    apps = tuple(a for a in EXCHANGE_FRONT_END.applications if a.path != "/EWS")
    raw = render([Site("Default Web Site", apps), EXCHANGE_BACK_END], [ROOT, *BACK], LF)
    result = offload(raw, Request(paths=("Default Web Site",)), name="t")
    assert result.changed and "mrsproxy" not in [f.code for f in result.findings]


def test_ews_configured_by_a_location_alone_is_still_warned_about_mrsproxy():
    """A --path may name a folder the file configures with a <location> of its own and does not
    list in <sites> (see _is_known_path): offloading EWS so still offloads MRSProxy below it."""
    apps = tuple(a for a in EXCHANGE_FRONT_END.applications if a.path != "/EWS")
    raw = render(
        [Site("Default Web Site", apps), EXCHANGE_BACK_END],
        [ROOT, *BACK, Loc("Default Web Site/EWS", "Ssl")],
        LF,
    )
    result = offload(raw, Request(paths=("Default Web Site/EWS",)), name="t")
    assert result.changed
    assert [(f.code, f.path) for f in result.findings] == [("mrsproxy", "Default Web Site/EWS")]


@pytest.mark.parametrize(
    ("encoding", "shape", "notes"),
    [
        ("utf-16-le", "security", ["diff-not-applicable"]),
        ("utf-16-be", "security", ["diff-not-applicable"]),
        ("utf-16-le", "none", []),  # already offloaded: no diff
        ("utf-8", "security", []),
    ],
)
def test_a_utf16_file_is_told_that_its_diff_does_not_apply(encoding, shape, notes):
    """The README's Rollback says a UTF-16 file's diff applies neither way; the run says so
    too, where the diff is written."""
    owa = Loc("Default Web Site/owa", "None", shape="access") if shape == "none" else None
    raw = config(owa or Loc("Default Web Site/owa", shape=shape), style=Style(encoding=encoding))
    result = owa_only(raw)
    found = [f for f in result.findings if f.code == "diff-not-applicable"]
    assert [f.code for f in found] == notes
    assert all(f.level == "note" and "UTF-16" in f.message for f in found)


@pytest.mark.parametrize("include_descendants", [False, True])
def test_mrsproxy_that_keeps_its_own_ssl_is_neither_warned_about_nor_offered(include_descendants):
    """With a <location> of its own that requires SSL, MRSProxy stays on SSL after EWS is
    offloaded: what it needs. It is not a descendant to offload (that would be refused)."""
    raw = config(Loc("Default Web Site/EWS/mrsproxy.svc", "Ssl, Ssl128"))
    request = Request(services=("ews",), include_descendants=include_descendants)
    result = offload(raw, request, name="t")
    assert [f.code for f in result.findings] == []
    assert [o.target.path for o in result.outcomes] == ["Default Web Site/EWS"]


@pytest.mark.parametrize(
    "path",
    [
        "/Default Web Site/owa",
        "Default Web Site\\owa",
        "Default Web Site\\owa\\",
        "default web site\\OWA",
    ],
)
def test_a_path_with_a_leading_slash_or_backslashes_gets_the_spelling_meant(path):
    """The path meant, as the file spells it (not a trailing slash, not the typed case)."""
    with pytest.raises(Refused, match=r"did you mean 'Default Web Site/owa'[?]$"):
        offload(config(), Request(paths=(path,)), name="t")


def test_the_server_level_is_named_so_whatever_its_path_spelling():
    owa = Loc("Default Web Site/owa", shape="security")
    raw = render(SITES, [Loc(".", "Ssl"), *BACK, owa], LF, server_ssl_flags=None)
    (outcome,) = owa_only(raw).outcomes
    assert outcome.before.where == "(server level)"
    twice = render(SITES, [Loc(".", "Ssl"), *BACK, owa], LF)  # and outside any <location>
    with pytest.raises(InvalidInput, match=r"defined twice for path '\(server level\)'"):
        owa_only(twice)


def test_the_pools_of_applications_that_inherit_the_change_are_recycled_too():
    """Offloading the site changes every application below it that inherits its Ssl: their
    pools are recycled with the site's; those that keep a value of their own are not."""
    raw = real("e2019.applicationHost.config")
    result = offload(raw, Request(paths=("Default Web Site",)), name="t")
    assert result.plan.pools == [
        "MSExchangeOWAAppPool",  # the site's root application
        "MSExchangeECPAppPool",
        "MSExchangeServicesAppPool",
        "MSExchangeAutodiscoverAppPool",
    ]
    assert "MSExchangeOABAppPool" not in result.plan.pools  # OAB sets Ssl of its own


class _CountedPool(str):
    """A pool name that counts the comparisons made with it (hashing is str's)."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _CountedPool.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_the_pools_of_many_applications_are_gathered_without_a_search_each(monkeypatch):
    """Each application below the target with a pool of its own: its pool is listed once, and
    found among those listed by a lookup, not by comparing it with each of them (which grew
    with the square of the number of applications)."""
    count = 400
    apps = tuple(App(f"/owa/app{index}", f"pool{index}") for index in range(count))
    front = Site("Default Web Site", (*EXCHANGE_FRONT_END.applications, *apps))
    raw = render([front, EXCHANGE_BACK_END], [ROOT, *BACK], LF)
    application = iis._application

    def counted(site, element, default_pool):
        app = application(site, element, default_pool)
        return app._replace(pool=_CountedPool(app.pool)) if app.pool else app

    monkeypatch.setattr(iis, "_application", counted)
    monkeypatch.setattr(_CountedPool, "compared", 0)
    result = owa_only(raw)
    assert _CountedPool.compared < count  # a search each: about count * count / 2
    assert result.plan.pools == ["MSExchangeOWAAppPool", *(f"pool{i}" for i in range(count))]


def test_the_paths_still_requiring_ssl_below_many_targets_are_gathered_in_one_pass(monkeypatch):
    """Hundreds of targets, each with a path below it that keeps its own Ssl: each warning
    names its target's path, gathered in one pass over those paths, not one pass a target
    (which grew with the product of their numbers)."""
    count = 200
    apps = [App(f"/app{index}{sub}") for index in range(count) for sub in ("", "/sub")]
    front = Site("Default Web Site", (*EXCHANGE_FRONT_END.applications, *apps))
    below = [Loc(f"Default Web Site/app{index}/sub", "Ssl") for index in range(count)]
    raw = render([front, EXCHANGE_BACK_END], [ROOT, *BACK, *below], LF)
    compared = record_is_below(monkeypatch, "confedit.plan")
    paths = tuple(f"Default Web Site/app{index}" for index in range(count))
    result = offload(raw, Request(paths=paths), name="t")
    assert len(compared) < 4 * count  # a pass a target: count * count
    warned = [f.message for f in result.findings if f.code == "descendants-require-ssl"]
    assert warned == [
        f"below Default Web Site/app{index}, these paths still require SSL with it offloaded: "
        f"Default Web Site/app{index}/sub; offload them too with --include-descendants, or "
        "keep them on SSL bridging"
        for index in range(count)
    ]


def test_a_target_only_pinned_keeps_its_policy_and_its_pool_is_not_recycled():
    owa = Loc("Default Web Site/owa", shape="security")
    inherited_none = render(SITES, [Loc("Default Web Site", "None"), *BACK, owa], LF)
    pinned = owa_only(inherited_none)
    assert [(o.action, o.pinned) for o in pinned.outcomes] == [("inserted", True)]
    assert pinned.plan.pools == []
    assert owa_only(config(owa)).plan.pools == ["MSExchangeOWAAppPool"]  # Ssl inherited: changed


def test_a_file_without_front_end_directories_is_refused():
    raw = next(p for p in corpus_files() if "reverse-proxy" in p.name).read_bytes()
    with pytest.raises(
        Refused, match="no Exchange front-end virtual directories in 'Default Web Site'"
    ):
        offload(raw, name="t")


def test_absent_default_targets_are_skipped_with_a_warning():
    apps = tuple(a for a in EXCHANGE_FRONT_END.applications if a.path != "/mapi")
    raw = render([Site("Default Web Site", apps), EXCHANGE_BACK_END], [ROOT, *BACK], LF)
    result = offload(raw, name="t")
    assert "mapi" not in {o.target.service for o in result.outcomes}
    assert any(f.code == "target-absent" and "mapi" in f.message for f in result.findings)


def test_an_explicit_target_absent_from_sites_is_refused():
    apps = tuple(a for a in EXCHANGE_FRONT_END.applications if a.path != "/mapi")
    raw = render([Site("Default Web Site", apps), EXCHANGE_BACK_END], [ROOT, *BACK], LF)
    with pytest.raises(Refused) as info:
        offload(raw, Request(services=("mapi", "owa")), name="t")
    (reason,) = info.value.reasons
    assert "is not an application or virtual directory" in reason
    # It said what is missing, not what to do, in a fleet where other servers have mapi.
    assert reason.endswith(
        "; leave out --service mapi for it (without --service, the default services a file "
        "lacks are skipped with a warning)"
    )
    assert offload(raw, Request(services=("owa",)), name="t").changed
    assert [f.code for f in offload(raw, name="t").findings if f.code == "target-absent"]


def test_a_service_absent_from_sites_is_not_answered_with_another_services_path():
    # 'OAB' is near 'owa' and 'API' as text, but --service oab means the OAB directory: another
    # service's path is no spelling of it.
    apps = tuple(a for a in EXCHANGE_FRONT_END.applications if a.path != "/OAB")
    raw = render([Site("Default Web Site", apps), EXCHANGE_BACK_END], [ROOT, *BACK], LF)
    with pytest.raises(Refused) as info:
        offload(raw, Request(services=("oab",)), name="t")
    message = str(info.value)
    assert "did you mean" not in message
    assert "--service oab" in message
    assert "has none for that service" in message


def test_an_explicit_path_with_a_location_of_its_own_is_offloaded_though_not_in_sites():
    # owa/auth is a folder of the owa application, not in <sites>, with a <location> of its own
    # in every real export: appcmd sets it like any other path, and so does confedit.
    raw = config(Loc("Default Web Site/owa/auth", shape="security"))
    result = offload(raw, Request(paths=("default web site/OWA/Auth",)), name="t")
    assert [(o.target.path, o.action) for o in result.outcomes] == [
        ("Default Web Site/owa/auth", "inserted")
    ]
    assert (
        access_values(result.output.removeprefix(b"\xef\xbb\xbf"))["Default Web Site/owa/auth"]
        == "None"
    )
    assert result.plan.pools == ["MSExchangeOWAAppPool"]
    # The same path without a <location> may be a typo: still refused, with the paths meant;
    # and so is a location of a site that <sites> does not have.
    with pytest.raises(Refused, match="not an application or virtual directory"):
        offload(config(), Request(paths=("Default Web Site/owa/auth",)), name="t")
    with pytest.raises(Refused, match="the site 'Default Web Site2' is not in <sites>"):
        request = Request(paths=("Default Web Site2/owa",), site="Default Web Site2")
        offload(config(Loc("Default Web Site2/owa", shape="security")), request, name="t")


# --- Extended Protection, descendants, certificates, locks, delegation --------------------------


@pytest.mark.parametrize("token", ["Require", "Allow", "require"])
def test_extended_protection_on_the_target_is_refused(token):
    raw = config(Loc("Default Web Site/owa", shape="security", token_checking=token))
    with pytest.raises(Refused) as info:
        owa_only(raw)
    assert "Extended Protection is not supported in environments that use SSL offloading" in str(
        info.value
    )
    result = owa_only(raw, allow_extended_protection=True)
    assert [f.code for f in result.findings] == ["extended-protection"]


def test_extended_protection_below_the_target_counts_only_if_it_inherits():
    inherits = config(
        Loc("Default Web Site/owa", shape="security"),
        Loc("Default Web Site/owa/auth", shape="security", token_checking="Require"),
    )
    with pytest.raises(Refused, match="owa/auth"):
        owa_only(inherits)
    keeps_own = config(
        Loc("Default Web Site/owa", shape="security"),
        Loc("Default Web Site/owa/auth", "Ssl", token_checking="Require"),
    )
    assert owa_only(keeps_own).changed


def test_extended_protection_corpus_file_is_refused():
    with pytest.raises(Refused, match="Extended Protection"):
        offload(real("e2013-cas-extended-protection.applicationHost.config"), name="t")


def test_doing_what_the_extended_protection_refusal_says_turns_it_off_where_it_is_set():
    """The refusal named the paths and the levels their tokenChecking comes from, not the
    element to change; it now names the line of each <extendedProtection>. Set to None on
    those lines, and on no other (the Back End's and Rpc's stay), the file is offloaded."""
    raw = real("e2013-cas-extended-protection.applicationHost.config")
    with pytest.raises(Refused) as info:
        offload(raw, name="t")
    (reason,) = info.value.reasons
    assert 'tokenChecking="None" on the <extendedProtection> at each line named' in reason
    lines = {int(line) for line in re.findall(r", line (\d+)\)", reason)}
    assert len(lines) == 7  # owa/auth inherits owa's: one line for both
    mended = raw.splitlines(keepends=True)
    for number in lines:
        text = mended[number - 1]
        assert b"<extendedProtection " in text
        mended[number - 1] = re.sub(rb'tokenChecking="\w+"', b'tokenChecking="None"', text)
    mended_raw = b"".join(mended)
    result = offload(mended_raw, name="t")
    codes = [f.code for f in result.findings]
    assert result.changed and codes == ["descendants-require-ssl", "mrsproxy"]
    assert back_end_blocks(mended_raw) == back_end_blocks(raw)  # its PowerShell keeps Require
    assert mended_raw.count(b'tokenChecking="Require"') == 2  # and Rpc, no target, too


def test_descendants_that_keep_ssl_are_listed_or_offloaded():
    raw = real("e2013-cas.applicationHost.config")
    result = offload(raw, Request(services=("owa",)), name="t")
    (warning,) = [f for f in result.findings if f.code == "descendants-require-ssl"]
    assert "Default Web Site/owa/Integrated" in warning.message
    assert "Default Web Site/owa/oma" in warning.message
    assert "owa/Calendar" not in warning.message  # already None
    result = offload(raw, Request(services=("owa",), include_descendants=True), name="t")
    assert {o.target.path for o in result.outcomes} == {
        "Default Web Site/owa",
        "Default Web Site/owa/Integrated",
        "Default Web Site/owa/oma",
    }
    values = access_values(result.output)
    assert values["Default Web Site/owa/Integrated"] == values["Default Web Site/owa/oma"] == "None"


STOPS_AT_CHILD_APPLICATIONS = (("inheritInChildApplications", "false"),)


def test_a_child_application_past_inherit_in_child_applications_false_keeps_ssl():
    """The None written at owa stops above the child application owa/Integrated, which goes on
    inheriting Ssl from the site: it is a descendant that still requires SSL, though its own
    <access> sets nothing."""
    raw = config(
        Loc("Default Web Site/owa/Integrated"),  # <access /> without sslFlags
        Loc("Default Web Site/owa", "Ssl", attributes=STOPS_AT_CHILD_APPLICATIONS),
    )
    result = owa_only(raw)
    (warning,) = [f for f in result.findings if f.code == "descendants-require-ssl"]
    assert "Default Web Site/owa/Integrated" in warning.message
    result = owa_only(raw, include_descendants=True)
    values = access_values(result.output)
    assert values["Default Web Site/owa"] == values["Default Web Site/owa/Integrated"] == "None"
    # Where owa's None does reach owa/Integrated, there is nothing to warn about.
    flows = config(Loc("Default Web Site/owa/Integrated"), Loc("Default Web Site/owa", "Ssl"))
    assert not [f for f in owa_only(flows).findings if f.code == "descendants-require-ssl"]


@pytest.mark.parametrize("value", ["False", "FALSE"])
def test_inherit_in_child_applications_is_read_in_any_case(value):
    """IIS reads configuration booleans in any case, as confedit reads lockItem."""
    stops = (("inheritInChildApplications", value),)
    raw = config(Loc("Default Web Site/owa", "Ssl", attributes=stops))
    (warning,) = [f for f in owa_only(raw).findings if f.code == "descendants-require-ssl"]
    assert "Default Web Site/owa/Integrated" in warning.message


def test_a_child_application_without_a_location_past_the_boundary_keeps_ssl():
    """The same boundary, where owa/Integrated has no <location> at all: it goes on inheriting
    Ssl from the site. The warning names it, and --include-descendants gives it a location of
    its own, as `appcmd set config "Default Web Site/owa/Integrated"` would."""
    raw = config(Loc("Default Web Site/owa", "Ssl", attributes=STOPS_AT_CHILD_APPLICATIONS))
    assert "Default Web Site/owa/Integrated" not in access_values(raw)
    (warning,) = [f for f in owa_only(raw).findings if f.code == "descendants-require-ssl"]
    assert warning.message.startswith(
        "below Default Web Site/owa, these paths still require SSL with it offloaded: "
        "Default Web Site/owa/Integrated;"
    )
    result = owa_only(raw, include_descendants=True)
    assert [(o.target.path, o.target.service) for o in result.outcomes] == [
        ("Default Web Site/owa", "owa"),
        ("Default Web Site/owa/Integrated", "descendant"),
    ]
    values = access_values(result.output)
    assert values["Default Web Site/owa"] == values["Default Web Site/owa/Integrated"] == "None"
    assert owa_only(result.output, include_descendants=True).output == result.output
    # Without the boundary, owa's None reaches owa/Integrated: nothing to warn about.
    flows = config(Loc("Default Web Site/owa", "Ssl"))
    assert not [f for f in owa_only(flows).findings if f.code == "descendants-require-ssl"]


def test_paths_below_a_listed_location_are_not_listed_again():
    """owa/Integrated keeps its own Ssl; what lies below it in <sites> is covered by it."""
    apps = (*EXCHANGE_FRONT_END.applications, App("/owa/Integrated/sub"))
    sites = [Site("Default Web Site", apps), EXCHANGE_BACK_END]
    raw = config(Loc("Default Web Site/owa/Integrated", "Ssl"), sites=sites)
    (warning,) = [f for f in owa_only(raw).findings if f.code == "descendants-require-ssl"]
    assert warning.message.split(": ", 1)[1].startswith("Default Web Site/owa/Integrated;")


def test_a_location_below_a_listed_one_is_neither_listed_nor_edited():
    """owa/Integrated/sub has a <location> (without <access>) and inherits owa/Integrated's Ssl;
    offloading owa/Integrated reaches it, so it needs no edit of its own. It comes before
    owa/Integrated in the file: the order of the file must not matter."""
    apps = (*EXCHANGE_FRONT_END.applications, App("/owa/Integrated/sub"))
    sites = [Site("Default Web Site", apps), EXCHANGE_BACK_END]
    raw = config(
        Loc("Default Web Site/owa/Integrated/sub", shape="webserver"),
        Loc("Default Web Site/owa/Integrated", "Ssl"),
        sites=sites,
    )
    (warning,) = [f for f in owa_only(raw).findings if f.code == "descendants-require-ssl"]
    assert warning.message.split(": ", 1)[1].startswith("Default Web Site/owa/Integrated;")
    result = owa_only(raw, include_descendants=True)
    edited = [o.target.path for o in result.outcomes if o.edit is not None]
    assert edited == ["Default Web Site/owa", "Default Web Site/owa/Integrated"]


def test_extended_protection_past_inherit_in_child_applications_false_does_not_count():
    """owa/Integrated does not inherit owa's new None (the location stops at child
    applications), so its Extended Protection is not broken by offloading owa."""
    raw = config(
        Loc("Default Web Site/owa/Integrated", shape="security", token_checking="Require"),
        Loc("Default Web Site/owa", "Ssl", attributes=STOPS_AT_CHILD_APPLICATIONS),
    )
    assert owa_only(raw).changed
    inherits = config(
        Loc("Default Web Site/owa/Integrated", shape="security", token_checking="Require"),
        Loc("Default Web Site/owa", "Ssl"),
    )
    with pytest.raises(Refused, match="owa/Integrated"):
        owa_only(inherits)


def test_dropping_client_certificate_flags_warns():
    raw = config(Loc("Default Web Site/owa", "Ssl, SslRequireCert"))
    result = owa_only(raw)
    (warning,) = [f for f in result.findings if f.code == "client-certificates-dropped"]
    assert "SslRequireCert" in warning.message


@pytest.mark.parametrize(
    "lock",
    [
        ("lockAttributes", "sslFlags"),
        ("lockAttributes", "*"),
        ("lockAttributes", "foo, SSLFLAGS"),
        ("lockAllAttributesExcept", "foo"),
        ("lockItem", "true"),
    ],
)
def test_a_lock_on_an_ancestor_is_refused_with_the_iis_wording(lock):
    raw = render(
        SITES,
        [
            Loc("Default Web Site", "Ssl", access_attributes=(lock,)),
            *BACK,
            Loc("Default Web Site/owa", shape="security"),
        ],
        LF,
    )
    with pytest.raises(Refused, match="Lock violation"):
        owa_only(raw)


def test_both_attribute_locks_on_one_access_get_fixes_that_work_together():
    """lockAttributes="*" beside lockAllAttributesExcept: the star was told to become a second
    lockAllAttributesExcept (an attribute written twice, which is no XML) while the other lock
    was told to name sslFlags. The star is now told to go, the other lock keeping the rest; done
    as said, the offload succeeds."""
    locks = (("lockAttributes", "*"), ("lockAllAttributesExcept", "foo"))
    raw = render(SITES, [Loc("Default Web Site", "Ssl", access_attributes=locks), *BACK], LF)
    with pytest.raises(Refused) as refused:
        owa_only(raw)
    star, kept = refused.value.reasons
    assert star.endswith(
        'lockAttributes="*" on <access> at Default Web Site (line 84); remove that attribute: '
        "the lockAllAttributesExcept beside it keeps the rest locked"
    )
    assert kept.endswith(
        'change it to lockAllAttributesExcept="foo, sslFlags", which keeps the rest locked'
    )
    fixed = raw.replace(b' lockAttributes="*"', b"").replace(
        b'lockAllAttributesExcept="foo"', b'lockAllAttributesExcept="foo, sslFlags"'
    )
    assert fixed != raw and owa_only(fixed).changed


@pytest.mark.parametrize(
    ("locked", "holds_access"), [("access", True), ("access", False), ("*", False)]
)
def test_a_lock_on_security_is_refused_and_named_at_its_own_line(locked, holds_access):
    """lockElements locks the <access> element of the paths below, whether or not the
    <security> that holds it has one of its own; the reason names the line of the lock, not
    that of the <access> below it."""
    raw = config()
    start = raw.index(b"<security", raw.index(b'<location path="Default Web Site">'))
    if holds_access:
        end, lock = start + len(b"<security>"), f'<security lockElements="{locked}">'
    else:
        end = raw.index(b"</security>", start) + len(b"</security>")
        lock = f'<security lockElements="{locked}" />'
    raw = raw[:start] + lock.encode() + raw[end:]
    line = raw[:start].count(b"\n") + 1
    reason = owa_only_reason(raw)
    fix = (
        'replace it with lockAllElementsExcept="access", which keeps the rest locked'
        if locked == "*"
        else "remove that attribute"
    )
    assert reason.endswith(
        f'sslFlags is locked by lockElements="{locked}" on <security> at Default Web Site '
        f"(line {line}); {fix}"
    )


@pytest.mark.parametrize(
    ("kept", "locked"), [("authentication", True), ("", True), ("authentication, Access", False)]
)
def test_lock_all_elements_except_on_security_locks_access_unless_it_is_named(kept, locked):
    """lockAllElementsExcept is lockElements the other way round, as lockAllAttributesExcept
    is lockAttributes: every element not named is locked, <access> too."""
    raw = config()
    start = raw.index(b"<security", raw.index(b'<location path="Default Web Site">'))
    end = start + len(b"<security>")
    lock = f'<security lockAllElementsExcept="{kept}">'
    raw = raw[:start] + lock.encode() + raw[end:]
    line = raw[:start].count(b"\n") + 1
    if not locked:
        assert owa_only(raw).changed
        return
    reason = owa_only_reason(raw)
    named = f"{kept}, access" if kept else "access"
    assert reason.endswith(
        f'sslFlags is locked by lockAllElementsExcept="{kept}" on <security> at Default Web '
        f'Site (line {line}); change it to lockAllElementsExcept="{named}", which keeps the '
        "rest locked"
    )


def test_a_security_with_both_kinds_of_element_lock_names_each_path_once():
    """A <security> with lockElements and lockAllElementsExcept was found once for each
    attribute, and each of its two reasons named every path twice ('owa', 'owa')."""
    raw = config()
    start = raw.index(b"<security", raw.index(b'<location path="Default Web Site">'))
    end = start + len(b"<security>")
    lock = b'<security lockElements="access" lockAllElementsExcept="authentication">'
    raw = raw[:start] + lock + raw[end:]
    with pytest.raises(Refused) as refused:
        owa_only(raw)
    reasons = refused.value.reasons
    assert [reason.partition(": ")[0] for reason in reasons] == ["'Default Web Site/owa'"] * 2
    assert 'locked by lockElements="access"' in reasons[0]
    assert 'locked by lockAllElementsExcept="authentication"' in reasons[1]


@pytest.mark.parametrize(
    ("element", "lock", "kept"),
    [
        ("access", 'lockAttributes="sslFlags"', None),
        ("access", 'lockAttributes="*"', 'lockAllAttributesExcept="sslFlags"'),
        ("access", 'lockAllAttributesExcept=""', 'lockAllAttributesExcept="sslFlags"'),
        ("access", 'lockItem="true"', None),
        ("security", 'lockElements="access"', None),
        ("security", 'lockElements="authentication, access"', 'lockElements="authentication"'),
        ("security", 'lockElements="*"', 'lockAllElementsExcept="access"'),
        (
            "security",
            'lockAllElementsExcept="authentication"',
            'lockAllElementsExcept="authentication, access"',
        ),
    ],
)
def test_doing_what_a_lock_refusal_says_lifts_it_for_ssl_flags_alone(element, lock, kept):
    """The advice "remove that lock first" also lifted what else the lock held: without
    lockElements="authentication, access", <authentication> is free to be changed below. The
    refusal says how to lift it for sslFlags alone, and the file edited as it says is
    offloaded with the rest of the lock kept."""
    raw = config()
    start = raw.index(f"<{element}".encode(), raw.index(b'<location path="Default Web Site">'))
    end = start + len(f"<{element}")
    raw = raw[:end] + f" {lock}".encode() + raw[end:]
    with pytest.raises(Refused) as refused:
        owa_only(raw)
    (reason,) = refused.value.reasons
    fix = re.search(r"; (?:change it to|replace it with) (\w+=\"[^\"]*\")[^;]*$", reason)
    if kept is None:
        assert reason.endswith("; remove that attribute")
        mended = raw.replace(f" {lock}".encode(), b"", 1)
    else:
        assert fix is not None and fix.group(1) == kept
        mended = raw.replace(lock.encode(), kept.encode(), 1)
    result = owa_only(mended)
    assert result.changed
    assert kept is None or kept.encode() in result.output


@pytest.mark.parametrize(
    "locks",
    [
        [("access", 'lockAttributes="sslFlags"'), ("access", 'lockItem="true"')],
        [("access", 'lockAttributes="sslFlags"'), ("security", 'lockElements="access"')],
        [("access", 'lockItem="true"'), ("access", 'lockAllAttributesExcept="sslCertificate"')],
    ],
)
def test_every_lock_on_ssl_flags_is_named_so_that_lifting_them_as_said_is_enough(locks):
    """Only the first lock found was named: lifting it as the refusal said left another lock on
    sslFlags (on the same element, or on its <security>), and the next run was refused again."""
    raw = config()
    for element, lock in locks:
        start = raw.index(f"<{element}".encode(), raw.index(b'<location path="Default Web Site">'))
        end = start + len(f"<{element}")
        raw = raw[:end] + f" {lock}".encode() + raw[end:]
    with pytest.raises(Refused) as refused:
        owa_only(raw)
    named = [lock for _, lock in locks if any(lock in r for r in refused.value.reasons)]
    assert named == [lock for _, lock in locks]
    mended = raw
    for _, lock in locks:
        mended = mended.replace(f" {lock}".encode(), b"", 1)
    assert owa_only(mended).changed


@pytest.mark.parametrize(
    ("kept", "named"),
    [("sslCertificate,", "sslCertificate, sslFlags"), (" , ", "sslFlags"), (",,", "sslFlags")],
)
def test_a_lock_all_attributes_except_list_is_extended_without_empty_names(kept, named):
    """The list was extended as written: a trailing comma or a blank list gave
    lockAllAttributesExcept="sslCertificate,, sslFlags", an empty name in the advice."""
    lock = Loc("Default Web Site", "Ssl", access_attributes=(("lockAllAttributesExcept", kept),))
    raw = render(SITES, [lock, *BACK, Loc("Default Web Site/owa", shape="security")], LF)
    assert owa_only_reason(raw).endswith(
        f'; change it to lockAllAttributesExcept="{named}", which keeps the rest locked'
    )


def test_a_lock_does_not_refuse_a_target_already_set_to_none():
    """Nothing is written at a target whose own <access> already says None, so no lock is
    broken there: an offloaded file with a lock added above it was refused with "IIS would
    reject the change", though there was no change; the targets that do change still are."""
    lock = Loc("Default Web Site", "Ssl", access_attributes=(("lockAttributes", "sslFlags"),))
    owa = Loc("Default Web Site/owa", "None")
    raw = render(SITES, [lock, *BACK, owa, Loc("Default Web Site/ecp", "Ssl")], LF)
    assert not owa_only(raw).changed
    with pytest.raises(Refused) as refused:
        offload(raw, Request(services=("owa", "ecp")), name="t.config")
    (reason,) = refused.value.reasons
    assert reason.startswith("'Default Web Site/ecp': ")


def test_one_lock_over_many_targets_is_one_reason_naming_them_all():
    """A lock above the front end was one reason a target: with --include-descendants on a
    hosting server's file, thousands of lines that all name the same lock."""
    descendants = [Loc(f"Default Web Site/owa/app{n}", "Ssl") for n in range(50)]
    raw = render(
        SITES,
        [
            Loc("Default Web Site", "Ssl", access_attributes=(("lockAttributes", "sslFlags"),)),
            *BACK,
            Loc("Default Web Site/owa", shape="security"),
            *descendants,
        ],
        LF,
    )
    with pytest.raises(Refused) as refused:
        offload(raw, Request(services=("owa", "ecp"), include_descendants=True), name="t.config")
    (reason,) = refused.value.reasons
    paths = ["Default Web Site/owa", "Default Web Site/ecp", *(d.path for d in descendants)]
    assert reason.startswith(", ".join(f"'{path}'" for path in paths) + ": ")
    line = raw[: raw.index(b'<access sslFlags="Ssl" lockAttributes')].count(b"\n") + 1
    assert reason.endswith(
        'sslFlags is locked by lockAttributes="sslFlags" on <access> at Default Web Site '
        f"(line {line}); remove that attribute"
    )


def test_a_lock_that_spares_ssl_flags_or_sits_on_the_target_itself_is_fine():
    spared = render(
        SITES,
        [
            Loc(
                "Default Web Site",
                "Ssl",
                access_attributes=(("lockAllAttributesExcept", "sslFlags"),),
            ),
            *BACK,
            Loc("Default Web Site/owa", shape="security"),
        ],
        LF,
    )
    assert owa_only(spared).changed
    own = config(
        Loc("Default Web Site/owa", "Ssl", access_attributes=(("lockAttributes", "sslFlags"),))
    )
    assert owa_only(own).changed


@pytest.mark.parametrize(
    "attributes",
    [(("overrideMode", "Allow"),), (("allowOverride", "true"),), (("overrideMode", "Deny"),)],
)
def test_a_new_access_goes_into_a_location_without_an_override_mode_of_its_own(attributes):
    """A Cumulative Update can leave two <location> elements for one path, one of them with
    overrideMode or allowOverride, which IIS keeps with each section inside it. appcmd's new
    access section asks for none: it goes into the other <location>. Written into the first,
    sslFlags would be unlocked for web.config files (or locked, with Deny), and the diff would
    create a <security> the other location has."""
    raw = config(
        Loc("Default Web Site/owa", shape="webserver", attributes=attributes),
        Loc("Default Web Site/owa", shape="security"),
    )
    result = owa_only(raw)
    (outcome,) = result.outcomes
    assert (outcome.action, outcome.created) == ("inserted", ("access",))
    assert result.findings == ()
    root = etree.fromstring(result.output.removeprefix(b"\xef\xbb\xbf"))
    owa = [loc for loc in root.iterfind("location") if loc.get("path") == "Default Web Site/owa"]
    holds_access = [loc.find("system.webServer/security/access") is not None for loc in owa]
    assert holds_access == [False, True]


@pytest.mark.parametrize(
    "attributes",
    [(("overrideMode", "Allow"),), (("allowOverride", "true"),), (("overrideMode", "Deny"),)],
)
def test_a_new_access_gets_a_location_of_its_own_when_every_one_has_an_override_mode(attributes):
    """The same rule where the path's only <location> locks or unlocks its sections: appcmd's
    new access section asks for no override mode, so it goes into a new <location> of the path
    (IIS allows two for one path that define different sections). Written into that one, the
    offload would itself unlock sslFlags for web.config files (or lock it)."""
    raw = config(Loc("Default Web Site/owa", shape="webserver", attributes=attributes))
    result = owa_only(raw)
    (outcome,) = result.outcomes
    assert (outcome.action, outcome.created) == (
        "created",
        ("location", "system.webServer", "security", "access"),
    )
    assert [f.code for f in result.findings] == []
    root = etree.fromstring(result.output)
    owa = [loc for loc in root.iterfind("location") if loc.get("path") == "Default Web Site/owa"]
    assert [dict(loc.attrib) for loc in owa] == [
        {"path": "Default Web Site/owa", **dict(attributes)},
        {"path": "Default Web Site/owa"},
    ]
    assert [loc.find("system.webServer/security/access") is not None for loc in owa] == [
        False,
        True,
    ]
    assert owa_only(result.output).output == result.output


def test_a_registration_without_override_mode_default_warns_about_web_config():
    """IIS reads a missing overrideModeDefault as "Allow" (the default the file's header
    comment gives): a web.config could then set sslFlags."""
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    raw = real("e2013-cas.applicationHost.config")
    assert raw.count(registration) == 1
    locked = [f.code for f in offload(raw, name="t").findings]
    assert "delegated" not in locked
    unlocked = raw.replace(registration, b'<section name="access" />')
    findings = [f.code for f in offload(unlocked, name="t").findings]
    assert findings.count("delegated") == 7


def test_override_mode_allow_warns_about_web_config():
    raw = config(Loc("Default Web Site/owa", "Ssl", attributes=(("overrideMode", "Allow"),)))
    result = owa_only(raw)
    assert [f.code for f in result.findings] == ["delegated"]


@pytest.mark.parametrize(
    "restriction",
    [
        'allowLocation="false"',
        'allowLocation="False"',
        'allowDefinition="AppHostOnly"',
        'allowDefinition="MachineOnly"',
        'allowDefinition="MachineToApplication"',
    ],
)
def test_a_registration_that_keeps_access_out_of_locations_is_refused(restriction):
    """The file's own header comment: allowLocation says whether a section is "Allowed in
    location tags", allowDefinition the "Level where it can be set". Every offload writes
    sslFlags into a <location> of a path (as appcmd ... /commit:APPHOST does): where the
    registration forbids that, appcmd fails and IIS would not load the result."""
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    raw = real("e2013-cas.applicationHost.config")
    assert raw.count(registration) == 1
    changed = raw.replace(
        registration,
        b'<section name="access" ' + restriction.encode() + b' overrideModeDefault="Deny" />',
    )
    with pytest.raises(Refused) as info:
        offload(changed, name="t")
    (reason,) = info.value.reasons
    assert restriction in reason
    assert "line 74" in reason
    assert "<location>" in reason
    # Audit showed the file's table as if IIS loaded it, the gate advising an offload that
    # refuses: it refuses it too, for offload's reason.
    with pytest.raises(Refused) as audited:
        audit(changed, "t")
    assert audited.value.reasons == [reason]
    assert audited.value.exit_code == 3


def test_a_registration_that_allows_access_everywhere_is_no_refusal():
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    raw = real("e2013-cas.applicationHost.config")
    explicit = b'<section name="access" allowDefinition="Everywhere" allowLocation="true" overrideModeDefault="Deny" />'
    assert offload(raw.replace(registration, explicit), name="t").output == offload(
        raw, name="t"
    ).output.replace(registration, explicit)


def test_back_end_bytes_never_change_on_the_sample_with_every_service():
    raw = config(Loc("Default Web Site/owa", "Ssl"))
    result = offload(raw, Request(services=("owa", "ecp", "ews", "rpc")), name="t")
    assert back_end_blocks(result.output) == back_end_blocks(raw)


def test_extended_protection_is_one_refusal_with_microsofts_words_once():
    with pytest.raises(Refused) as info:
        offload(real("e2013-cas-extended-protection.applicationHost.config"), name="t")
    assert len(info.value.reasons) == 1
    message = info.value.reasons[0]
    assert message.count("Extended Protection is not supported") == 1
    for path in (
        "Default Web Site/owa",
        "Default Web Site/ecp",
        "Default Web Site/EWS",
        "Default Web Site/OAB",
        "Default Web Site/mapi",
    ):
        assert path + " (tokenChecking=" in message


@pytest.mark.parametrize("indent", ["  ", "\t"])
def test_new_elements_take_the_file_indentation_when_no_location_shows_it(indent):
    """Found by the formatting property: without a multi-line <location>, the unit of
    indentation comes from the first element inside <configuration>, not a 4-space default."""
    style = Style(newline="\n", bom=False, indent=indent)
    out = owa_only(render(SITES, [], style)).output
    assert (
        f'\n{indent}<location path="Default Web Site/owa">\n{indent * 2}<system.webServer>\n'
        f'{indent * 3}<security>\n{indent * 4}<access sslFlags="None" />\n'
    ).encode() in out
    raw = render(SITES, [Loc("Default Web Site/owa", shape="self-closed")], style)
    assert f"\n{indent * 2}<system.webServer>\n".encode() in owa_only(raw).output


def test_a_warning_names_ten_paths_and_counts_the_rest():
    children = tuple(App(f"/owa/app{index:02d}") for index in range(12))
    sites = [Site(SITES[0].name, (*SITES[0].applications, *children)), *SITES[1:]]
    raw = config(
        *(Loc(f"Default Web Site{app.path}", "Ssl") for app in children),
        Loc("Default Web Site/owa", "Ssl"),
        sites=sites,
    )
    (warning,) = [f for f in owa_only(raw).findings if f.code == "descendants-require-ssl"]
    named = ", ".join(f"Default Web Site/owa/app{index:02d}" for index in range(10))
    assert warning.message == (
        f"below Default Web Site/owa, these paths still require SSL with it offloaded: "
        f"{named} and 2 more (a preview with --include-descendants lists them all); offload "
        "them too with --include-descendants, or keep them on SSL bridging"
    )
    listed = owa_only(raw, include_descendants=True).outcomes
    assert [o.target.path for o in listed if o.target.service == "descendant"] == [
        f"Default Web Site/owa/app{index:02d}" for index in range(12)
    ]


@pytest.mark.parametrize(
    ("site", "meant"),
    [
        (" Default Web Site", "Default Web Site"),  # spaces pasted around the name
        ("Default Website", "Default Web Site"),
        ("Web Site 2", "Web Site 2 "),  # a site name of the file, spaces and all
        ("Exchange Back En", None),  # never the Back End, which no offload may name
    ],
)
def test_a_misspelt_site_is_answered_with_the_site_meant(site, meant):
    raw = config(
        Loc("Default Web Site/owa", "Ssl"),
        sites=[*SITES, Site("Web Site 2 ", (App("/"),))],
    )
    with pytest.raises(Refused) as info:
        offload(raw, Request(site=site), name="t.config")
    hint = f"did you mean '{meant}'?"
    if meant is None:
        hint = "name the front-end site with --site (the default is 'Default Web Site')"
    assert str(info.value) == f"t.config: refused: the site '{site}' is not in <sites>; {hint}"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_a_misspelt_site_in_a_large_file_is_answered_with_the_nearest_of_all_its_sites(
    monkeypatch, encoding
):
    # A large file's tree holds only the sites asked for, and the sites whose name the parser
    # reads otherwise than its bytes (a tab, written &#9;): the nearest name is still the
    # nearest of them all, not the nearest of those kept.
    monkeypatch.setattr("confedit.document.PRUNE_ABOVE", 0)
    raw = config(
        Loc("Default Web Site/owa", "Ssl"),
        sites=[*SITES, Site("Default Web Site\t2", (App("/"),))],
        style=Style(encoding=encoding),
    )
    with pytest.raises(Refused, match=r"did you mean 'Default Web Site'\?"):
        offload(raw, Request(site="Defualt Web Site"), name="t.config")


@pytest.mark.parametrize("paths", [(), ("Nope/owa",)])
def test_a_site_missing_from_sites_is_named_with_the_option_that_fixes_it(paths):
    raw = config(Loc("Default Web Site/owa", "Ssl"))
    with pytest.raises(Refused) as info:
        offload(raw, Request(paths=paths, site="Nope"), name="t.config")
    message = str(info.value)
    assert "the site 'Nope' is not in <sites>" in message
    assert "--site" in message
    assert "Client Access server" not in message


@pytest.mark.parametrize("path", ["//", "\\", "/\\", "///"])
def test_a_path_of_slashes_alone_is_not_answered_with_the_front_end_site(path):
    """--path // was answered "the site '' is not in <sites>; did you mean 'Default Web
    Site/'?": the whole front-end site, which nobody asked for, as the path meant."""
    with pytest.raises(Refused) as info:
        offload(config(), Request(paths=(path,)), name="t")
    (reason,) = info.value.reasons
    assert reason.endswith(
        " names no site; a location path starts with its site's name, such as "
        "'Default Web Site/owa'"
    ), reason


@pytest.mark.parametrize(("wrong", "kind"), [("owa", "str"), ("", "str"), ({}, "dict")])
def test_a_request_that_is_not_a_request_is_a_usage_problem(wrong, kind):
    """offload(raw, "owa") failed with an AttributeError, which no `except ConfeditError` catches,
    and a falsy one ("", {}) was taken for no request: all seven services were offloaded."""
    with pytest.raises(UsageProblem) as info:
        offload(config(), wrong, name="t")
    assert str(info.value).startswith(f"request takes a confedit.Request, not {kind}: ")
