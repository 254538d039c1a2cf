"""`--since REV`: what counts as a change to the Exchange Back End, and the git look-up."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from confedit.baseline import back_end_changes, check_back_end_since, revision_version
from confedit.document import load
from confedit.engine import offload
from confedit.errors import Refused, UsageProblem
from tests.conftest import EXCHANGE, run
from tests.helpers import git_env

SCOPE = ("Exchange Back End",)  # as --since loads them
CAS_MBX = EXCHANGE / "e2013-cas-mbx.applicationHost.config"
POWERSHELL = b'<location path="Exchange Back End/PowerShell">'
SPN = b'<spn name="HTTP/new" />'
SERVER_WINDOWS_AUTH = (
    b'<windowsAuthentication enabled="false" authPersistNonNTLM="true" useKernelMode="false">'
)


def changes(old: bytes, new: bytes) -> list[str]:
    return back_end_changes(load(old, "old", sites=SCOPE), load(new, "new", sites=SCOPE))


def revision_bytes(path: Path, revision: str) -> bytes | None:
    """The file's content at `revision`, as --since compares it; None if it has none."""
    version = revision_version(path, revision)
    return version.content if version else None


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


def back_end_edited(original: bytes) -> bytes:
    """The file with one Back End setting changed: PowerShell's sslFlags, from its own location."""
    return replace_once(original, b'sslFlags="Ssl, SslNegotiateCert, Ssl128"', b'sslFlags="Ssl"')


@pytest.fixture(scope="module")
def original() -> bytes:
    return CAS_MBX.read_bytes()


def test_the_same_file_and_a_front_end_offload_change_nothing(original):
    assert changes(original, original) == []
    assert changes(original, offload(original).output) == []


def test_layout_and_comments_do_not_count(original):
    relaid = replace_once(
        original,
        POWERSHELL + b"\n        <system.webServer>",
        POWERSHELL + b"\r\n  <!-- reviewed -->\r\n<system.webServer   >",
    )
    assert changes(original, relaid) == []


def test_a_changed_setting_in_a_back_end_location_counts(original):
    changed = replace_once(
        original,
        b'<access sslFlags="Ssl, SslNegotiateCert, Ssl128" />',
        b'<access sslFlags="None" />',
    )
    assert changes(original, changed) == [
        "<location path='Exchange Back End/PowerShell'> was changed"
    ]


def test_an_added_or_removed_back_end_location_counts(original):
    added = replace_once(
        original,
        POWERSHELL,
        b'<location path="Exchange Back End/ecp/new"><system.webServer /></location>\n'
        + POWERSHELL,
    )
    assert changes(original, added) == ["<location path='Exchange Back End/ecp/new'> was added"]
    assert changes(added, original) == ["<location path='Exchange Back End/ecp/new'> was removed"]


def test_a_change_to_the_back_end_site_definition_counts(original):
    changed = replace_once(
        original,
        b'<site name="Exchange Back End" id="2" serverAutoStart="true">',
        b'<site name="Exchange Back End" id="2" serverAutoStart="false">',
    )
    assert changes(original, changed) == [
        "the site definition of 'Exchange Back End' in <sites> was changed"
    ]


def paths_of(change: str, setting: str, how: str, first: str = ".*") -> int:
    """How many Back End paths one change names: a change of an effective value made alike at
    several paths is one line, "the effective SETTING of N Back End paths, 'FIRST' first, HOW"."""
    found = re.fullmatch(
        rf"the effective {setting} of (\d+) Back End paths, '{first}' first, {re.escape(how)}",
        change,
    )
    assert found is not None, change
    return int(found.group(1))


def test_a_server_level_change_that_the_back_end_inherits_counts(original):
    changed = replace_once(
        original,
        SERVER_WINDOWS_AUTH,
        SERVER_WINDOWS_AUTH + b'<extendedProtection tokenChecking="Require" />',
    )
    # one line for the change, not one per path that inherits it (a screenful)
    (found,) = changes(original, changed)
    how = "is now 'Require' (was 'None')"
    assert paths_of(found, "Extended Protection", how, first="Exchange Back End") > 1


def test_the_spelling_of_a_back_end_location_path_does_not_count(original):
    for spelling in (b"exchange back end/powershell", b"Exchange Back End/PowerShell/"):
        respelled = replace_once(original, POWERSHELL, b'<location path="' + spelling + b'">')
        assert changes(original, respelled) == []


def test_unlocking_the_access_section_for_the_back_end_counts(original):
    # no effective value changes, but a web.config in the Back End's folders could turn SSL off
    registration = b'<section name="access" overrideModeDefault="Deny" />'
    unlocked = replace_once(
        original, registration, b'<section name="access" overrideModeDefault="Allow" />'
    )
    found = changes(original, unlocked)
    assert len(found) == 1
    assert found[0].startswith("the access section is now unlocked for ")
    assert "Back End paths, 'Exchange Back End' first (" in found[0]
    assert 'overrideModeDefault="Allow"' in found[0]
    assert found[0].endswith("a web.config there could turn SSL off")
    assert changes(unlocked, original)[0].startswith(
        "the access section is no longer unlocked for "
    )
    assert changes(unlocked, offload(unlocked).output) == []  # a front-end offload: nothing


def test_an_unlock_made_with_another_back_end_change_is_named_too(original):
    # both in one run: undoing the one named would only lead to a second refusal
    unlocked = replace_once(
        original,
        b'<section name="access" overrideModeDefault="Deny" />',
        b'<section name="access" overrideModeDefault="Allow" />',
    )
    both = replace_once(
        unlocked, POWERSHELL, b'<location path="Exchange Back End/PowerShell" x="1">'
    )
    found = changes(original, both)
    assert found[0] == "<location path='Exchange Back End/PowerShell'> was changed"
    assert len(found) == 2 and found[1].startswith("the access section is now unlocked for ")


def test_a_pool_set_by_the_application_defaults_counts(original):
    changed = replace_once(
        original,
        b'<applicationDefaults applicationPool="DefaultAppPool" />',
        b'<applicationDefaults applicationPool="MSExchangeOWAAppPool" />',
    )
    assert "the application pool of 'Exchange Back End' is now 'MSExchangeOWAAppPool' (was " in (
        "\n".join(changes(original, changed))
    )


POWERSHELL_POOL = b'<add name="MSExchangePowerShellAppPool" managedRuntimeVersion="v4.0"'


def test_a_change_to_a_pool_a_back_end_application_runs_in_counts(original):
    # The Back End's PowerShell stops starting with the server: its pool no longer starts.
    stopped = replace_once(original, POWERSHELL_POOL, POWERSHELL_POOL + b' autoStart="false"')
    assert changes(original, stopped) == [
        "the application pool 'MSExchangePowerShellAppPool' in <applicationPools>, which "
        "'Exchange Back End/PowerShell' runs in, was changed"
    ]
    # every pool takes what <applicationPoolDefaults> does not set from it
    defaults = b'<applicationPoolDefaults managedRuntimeVersion="v4.0">'
    older = replace_once(
        original, defaults, b'<applicationPoolDefaults managedRuntimeVersion="v2.0">'
    )
    assert changes(original, older) == [
        "<applicationPoolDefaults> in <applicationPools>, which every pool of the Exchange Back "
        "End takes its defaults from, was changed"
    ]


def in_powershell_pool(data: bytes, old: bytes, new: bytes) -> bytes:
    """`old` replaced by `new` in the definition of the pool the Back End's PowerShell runs in."""
    start = data.index(POWERSHELL_POOL)
    end = data.index(b"</add>", start)
    return data[:start] + replace_once(data[start:end], old, new) + data[end:]


def in_sites(data: bytes, old: bytes, new: bytes) -> bytes:
    start = data.index(b"<sites>")
    end = data.index(b"</sites>", start)
    return data[:start] + replace_once(data[start:end], old, new) + data[end:]


@pytest.mark.parametrize(
    ("where", "old", "respelled", "changed"),
    [
        (in_powershell_pool, b'loadUserProfile="true"', b'"True"', b'"False"'),
        (in_powershell_pool, b'rapidFailProtection="false"', b'"FALSE"', b'"True"'),
        (in_powershell_pool, b'pingingEnabled="false"', b'"False"', b'"true"'),
        (in_sites, b'allowSubDirConfig="true"', b'"True"', b'"false"'),
    ],
)
def test_the_case_of_a_bool_in_a_back_end_pool_or_the_site_defaults_does_not_count(
    original, where, old, respelled, changed
):
    # IIS reads its schema's bools in any case; PowerShell writes `True`
    name = old.split(b"=")[0] + b"="
    assert changes(original, where(original, old, name + respelled)) == []
    assert len(changes(original, where(original, old, name + changed))) == 1


def test_a_change_to_a_pool_only_the_front_end_runs_in_does_not_count(original):
    front = b'<add name="MSExchangeMapiFrontEndAppPool" queueLength="65535" autoStart="true"'
    stopped = front.replace(b'"true"', b'"false"')
    assert changes(original, replace_once(original, front, stopped)) == []


@pytest.mark.parametrize(
    ("element", "old", "new"),
    [
        ("<siteDefaults>", b"<siteDefaults>", b'<siteDefaults serverAutoStart="false">'),
        (
            "<applicationDefaults>",
            b'<applicationDefaults applicationPool="DefaultAppPool" />',
            b'<applicationDefaults applicationPool="DefaultAppPool" enabledProtocols="http" />',
        ),
        (
            "<virtualDirectoryDefaults>",
            b'<virtualDirectoryDefaults allowSubDirConfig="true" />',
            b'<virtualDirectoryDefaults allowSubDirConfig="true" logonMethod="Network" />',
        ),
    ],
)
def test_a_change_to_the_defaults_every_site_takes_counts(original, element, old, new):
    # The Back End's site, applications and virtual directories take from these what they do
    # not set themselves: the Back End changes as the site definition does.
    assert changes(original, replace_once(original, old, new)) == [
        f"{element} in <sites>, which the Exchange Back End takes what it does not set from, "
        "was changed"
    ]


def test_a_server_level_change_of_extended_protection_flags_that_the_back_end_inherits_counts(
    original,
):
    # The Back End's paths set no flags of their own: a change at the server level reached them
    # and passed, the effective policy being compared by sslFlags and tokenChecking alone.
    def server_level(flags: bytes) -> bytes:
        token = b'<extendedProtection tokenChecking="Require" flags="' + flags + b'" />'
        return replace_once(original, SERVER_WINDOWS_AUTH, SERVER_WINDOWS_AUTH + token)

    (found,) = changes(server_level(b"None"), server_level(b"Proxy, NoServiceNameCheck"))
    how = "are now 'Proxy, NoServiceNameCheck' (was 'None')"
    assert paths_of(found, "Extended Protection flags", how, first="Exchange Back End") > 1
    # the same flags spelled another way are the same to IIS
    respelled = server_level(b"noservicenamecheck,PROXY")
    assert changes(server_level(b"Proxy, NoServiceNameCheck"), respelled) == []


def test_a_server_level_change_of_the_spn_list_that_the_back_end_inherits_counts(original):
    # The list of service names Extended Protection accepts (<spn> items, <clearSpns /> to
    # start afresh) is a collection: set at the server level, it reaches every Back End path.
    def server_level(spns: bytes) -> bytes:
        token = b'<extendedProtection tokenChecking="Require" flags="Proxy">' + spns
        token += b"</extendedProtection>"
        return replace_once(original, SERVER_WINDOWS_AUTH, SERVER_WINDOWS_AUTH + token)

    one = server_level(b'<spn name="HTTP/mail.example.com" />')
    two = server_level(b'<spn name="HTTP/mail.example.com" /><spn name="HTTP/evil.example" />')
    (found,) = changes(one, two)
    how = "are now 'HTTP/evil.example, HTTP/mail.example.com' (was 'HTTP/mail.example.com')"
    assert paths_of(found, "Extended Protection SPNs", how, first="Exchange Back End") > 1
    (found,) = changes(one, server_level(b""))
    assert found.endswith(" first, are now none (was 'HTTP/mail.example.com')"), found
    # the same list in another order, or built another way, is the same list to IIS
    reordered = server_level(
        b'<spn name="HTTP/evil.example" /><spn name="HTTP/mail.example.com" />'
    )
    assert changes(two, reordered) == []
    cleared = server_level(
        b'<spn name="HTTP/old" /><clearSpns /><spn name="HTTP/mail.example.com" />'
    )
    assert changes(one, cleared) == []


def test_which_spn_a_level_removes_from_the_list_counts(original):
    # <removeSpn name="..." /> takes one name back out of the list: removing another one is
    # another list, though both add the same names and remove one.
    def server_level(removed: bytes) -> bytes:
        token = b'<extendedProtection><spn name="HTTP/a" /><spn name="HTTP/b" />'
        token += b'<removeSpn name="' + removed + b'" /></extendedProtection>'
        return replace_once(original, SERVER_WINDOWS_AUTH, SERVER_WINDOWS_AUTH + token)

    (found,) = changes(server_level(b"HTTP/a"), server_level(b"HTTP/b"))
    assert paths_of(found, "Extended Protection SPNs", "are now 'HTTP/a' (was 'HTTP/b')") > 1
    # removing a name no level added leaves the list as it was
    assert changes(server_level(b"HTTP/c"), server_level(b"HTTP/d")) == []


def test_a_back_end_location_that_starts_its_own_spn_list_does_not_inherit_one(original):
    # PowerShell's location starts a list of its own (<clearSpns />): the server level's list
    # no longer reaches it, so one path fewer changes with it.
    def with_server_list(data: bytes, spns: bytes) -> bytes:
        token = b"<extendedProtection>" + spns + b"</extendedProtection>"
        return replace_once(data, SERVER_WINDOWS_AUTH, SERVER_WINDOWS_AUTH + token)

    def paths_changed(data: bytes) -> int:
        (found,) = changes(with_server_list(data, b""), with_server_list(data, SPN))
        return paths_of(found, "Extended Protection SPNs", "are now 'HTTP/new' (was none)")

    own = b"<extendedProtection><clearSpns /><spn name='HTTP/own' /></extendedProtection>"
    providers = b"</providers>\n                    </windowsAuthentication>"
    assert original.count(providers) > 1
    at = original.index(providers, original.index(POWERSHELL))
    owning = original[:at] + b"</providers>" + own + original[at + len(b"</providers>") :]
    assert paths_changed(owning) == paths_changed(original) - 1


def test_the_spelling_of_a_server_level_extended_protection_value_does_not_count(original):
    def server_level(value: bytes) -> bytes:
        token = b'<extendedProtection tokenChecking="' + value + b'" />'
        return replace_once(original, SERVER_WINDOWS_AUTH, SERVER_WINDOWS_AUTH + token)

    assert changes(server_level(b"None"), server_level(b"none")) == []
    assert changes(server_level(b"Allow"), server_level(b"ALLOW")) == []


def test_a_changed_extended_protection_value_is_quoted_as_the_other_values_are(original):
    # Unquoted, an empty value left a gap ("is now  (was None)") and a value with a comma read
    # as two values.
    def server_level(value: bytes) -> bytes:
        token = b'<extendedProtection tokenChecking="' + value + b'" />'
        return replace_once(original, SERVER_WINDOWS_AUTH, SERVER_WINDOWS_AUTH + token)

    for value, said in [(b"", "''"), (b"Require, Allow", "'Require, Allow'")]:
        (found,) = changes(server_level(b"None"), server_level(value))
        assert found.endswith(f" first, is now {said} (was 'None')"), found


def test_a_back_end_application_without_a_location_of_its_own_counts(original):
    # /foo is its own application, and the site's location stops at it (inheritInChildApplications
    # ="false"): it takes sslFlags from the server level, which changes.
    base = replace_once(
        original,
        b'<location path="Exchange Back End">',
        b'<location path="Exchange Back End" inheritInChildApplications="false">',
    )
    with_foo = replace_once(
        base,
        b'<site name="Exchange Back End" id="2" serverAutoStart="true">',
        b'<site name="Exchange Back End" id="2" serverAutoStart="true">\n'
        b'<application path="/foo"><virtualDirectory path="/" physicalPath="C:\\foo" /></application>',
    )

    def server_level_paths(config: bytes) -> int:
        """How many Back End paths the one change names (one line for them all)."""
        changed = config.replace(b'<access sslFlags="None" />', b'<access sslFlags="Ssl" />', 1)
        (change,) = changes(config, changed)
        return paths_of(change, "sslFlags", "is now 'Ssl' (was 'None'), set at the server level")

    assert server_level_paths(with_foo) == server_level_paths(base) + 1  # /foo is one of them


def test_a_changed_sslflags_says_where_it_comes_from_in_words(original):
    # "set at (server level)", and "set at (schema default)" for a value no level sets.
    base = replace_once(
        original,
        b'<location path="Exchange Back End">',
        b'<location path="Exchange Back End" inheritInChildApplications="false">',
    )
    ssl = base.replace(b'<access sslFlags="None" />', b'<access sslFlags="Ssl" />', 1)
    unset = base.replace(b'<access sslFlags="None" />', b"<access />", 1)
    (found,) = changes(unset, ssl)
    assert found.endswith(" first, is now 'Ssl' (was 'None'), set at the server level"), found
    (found,) = changes(ssl, unset)
    assert found.endswith(" first, is now 'None' (was 'Ssl'), the schema default"), found


BACK_END_SITE = b'<site name="Exchange Back End"'
OWA_APPLICATION = (
    b'                <application path="/owa" applicationPool="MSExchangeOWAAppPool">\n'
    b'                    <virtualDirectory path="/" physicalPath="C:\\Program Files\\Microsoft'
    b'\\Exchange Server\\V15\\ClientAccess\\owa" />\n'
    b"                </application>\n"
)


def in_back_end_site(data: bytes, old: bytes, new: bytes) -> bytes:
    """`old` replaced by `new` in the Back End's <site> (the front end's may hold it too)."""
    start = data.index(BACK_END_SITE)
    end = data.index(b"</site>", start)
    return data[:start] + replace_once(data[start:end], old, new) + data[end:]


def test_the_order_of_the_back_end_applications_does_not_count(original):
    # IIS finds an application by its path; a re-export may list them in another order
    moved = in_back_end_site(original, OWA_APPLICATION, b"")
    moved = in_back_end_site(moved, b"                <bindings>", OWA_APPLICATION + b"<bindings>")
    assert moved != original
    assert changes(original, moved) == []


ROOT_DIRECTORIES = (
    b'                    <virtualDirectory path="/mapi" physicalPath="C:\\Program Files\\Microsoft'
    b'\\Exchange Server\\V15\\ClientAccess\\mapi" />\n',
    b'                    <virtualDirectory path="/Exchange" physicalPath="C:\\Program Files'
    b'\\Microsoft\\Exchange Server\\V15\\ClientAccess\\owa" />\n',
)


def test_the_order_of_the_virtual_directories_of_a_back_end_application_does_not_count(
    original,
):
    # as for applications: IIS finds a virtual directory by its path
    mapi, exchange = ROOT_DIRECTORIES
    swapped = in_back_end_site(original, mapi + exchange, exchange + mapi)
    assert changes(original, swapped) == []
    moved = exchange + mapi.replace(b"ClientAccess\\mapi", b"ClientAccess\\owa")
    assert changes(original, in_back_end_site(original, mapi + exchange, moved)) == [
        "the site definition of 'Exchange Back End' in <sites> was changed"
    ]


def test_a_changed_application_still_counts_in_any_order(original):
    moved = in_back_end_site(original, OWA_APPLICATION, b"")
    changed = OWA_APPLICATION.replace(b"ClientAccess\\owa", b"ClientAccess\\other")
    changed = in_back_end_site(moved, b"                <bindings>", changed + b"<bindings>")
    assert changes(original, changed) == [
        "the site definition of 'Exchange Back End' in <sites> was changed"
    ]
    assert changes(original, moved) == [  # removed: its path falls to the root application
        "the site definition of 'Exchange Back End' in <sites> was changed"
    ]


POWERSHELL_APPLICATION = (
    b'<application path="/PowerShell" applicationPool="MSExchangePowerShellAppPool">'
)
DEFAULT_POOL = b'<applicationDefaults applicationPool="DefaultAppPool" />'


def pool_respelled(data: bytes, where: str, spelling: bytes) -> bytes:
    """The file with the name of the PowerShell application's pool (or, for "defaults", of the
    pool <applicationDefaults> gives the root application) spelled otherwise in one place."""
    if where == "application":
        return in_back_end_site(
            data,
            POWERSHELL_APPLICATION,
            POWERSHELL_APPLICATION.replace(b"MSExchangePowerShellAppPool", spelling),
        )
    if where == "definition":
        return replace_once(
            data, POWERSHELL_POOL, POWERSHELL_POOL.replace(b"MSExchangePowerShellAppPool", spelling)
        )
    return replace_once(data, DEFAULT_POOL, DEFAULT_POOL.replace(b"DefaultAppPool", spelling))


@pytest.mark.parametrize(
    ("places", "spelling"),
    [
        (("application",), b"msexchangepowershellapppool"),
        (("definition",), b"msexchangepowershellapppool"),
        (("application", "definition"), b"MSEXCHANGEPOWERSHELLAPPPOOL"),
        (("defaults",), b"defaultapppool"),
    ],
)
def test_the_case_of_a_back_end_pool_name_does_not_count(original, places, spelling):
    # IIS compares pool names ignoring case: the same pool, run as the same account
    respelled = original
    for where in places:
        respelled = pool_respelled(respelled, where, spelling)
    assert respelled != original
    assert changes(original, respelled) == []


def test_another_pool_for_a_back_end_application_still_counts(original):
    other = pool_respelled(original, "application", b"MSExchangeOWAAppPool")
    assert changes(original, other) == [
        "the site definition of 'Exchange Back End' in <sites> was changed",
        "the application pool of 'Exchange Back End/PowerShell' is now 'MSExchangeOWAAppPool' "
        "(was 'MSExchangePowerShellAppPool')",
    ]
    renamed = pool_respelled(original, "definition", b"MSExchangePowerShellAppPool2")
    assert changes(original, renamed) == [
        "the application pool 'MSExchangePowerShellAppPool' in <applicationPools>, which "
        "'Exchange Back End/PowerShell' runs in, was changed"
    ]
    by_defaults = pool_respelled(original, "defaults", b"DefaultAppPool2")
    assert changes(original, by_defaults) == [
        "the application pool of 'Exchange Back End' is now 'DefaultAppPool2' "
        "(was 'DefaultAppPool')",
    ]


def test_the_order_of_two_locations_of_one_back_end_path_does_not_count(original):
    # one path may have a <location> per section (IIS-NOTES: order of locations does not matter)
    first = (
        b'<location path="Exchange Back End/ecp/new" overrideMode="Allow">'
        b'<system.webServer><defaultDocument enabled="false" /></system.webServer></location>\n'
    )
    second = b'<location path="Exchange Back End/ecp/new"><system.web /></location>\n'
    in_order = replace_once(original, POWERSHELL, first + second + POWERSHELL)
    swapped = replace_once(original, POWERSHELL, second + first + POWERSHELL)
    assert changes(in_order, swapped) == []
    changed = replace_once(
        original, POWERSHELL, second + first.replace(b'"false"', b'"true"') + POWERSHELL
    )
    assert changes(in_order, changed) == ["<location path='Exchange Back End/ecp/new'> was changed"]


POWERSHELL_ACCESS = b'<access sslFlags="Ssl, SslNegotiateCert, Ssl128" />'


def in_location(data: bytes, location: bytes, old: bytes, new: bytes) -> bytes:
    """`old` replaced by `new` in the first <location> that starts with `location`."""
    start = data.index(location)
    end = data.index(b"</location>", start)
    return data[:start] + replace_once(data[start:end], old, new) + data[end:]


@pytest.mark.parametrize(
    "spelling",
    [b"Ssl,SslNegotiateCert,Ssl128", b"ssl128, SSL, sslnegotiatecert", b"296"],
)
def test_the_spelling_of_sslflags_in_a_back_end_location_does_not_count(original, spelling):
    # IIS reads the flags in any case and order, or as their number (IIS-NOTES: compare as sets)
    respelled = replace_once(
        original, POWERSHELL_ACCESS, b'<access sslFlags="' + spelling + b'" />'
    )
    assert changes(original, respelled) == []


def test_the_case_of_extended_protection_in_a_back_end_location_does_not_count(original):
    autodiscover = b'<location path="Exchange Back End/Autodiscover">'
    token = b'<extendedProtection tokenChecking="None" flags="None">'
    respelled = in_location(original, autodiscover, token, token.replace(b'"None" f', b'"none" f'))
    assert changes(original, respelled) == []
    required = in_location(original, autodiscover, token, token.replace(b"None", b"Require", 1))
    assert changes(original, required) == [
        "<location path='Exchange Back End/Autodiscover'> was changed"
    ]


@pytest.mark.parametrize("value", [b"Ssl, Ssl128", b"ssl, ssl128", b"32", b"Sll"])
def test_other_sslflags_in_a_back_end_location_still_count(original, value):
    # another set of flags, however spelled, or a value IIS rejects: the location changed
    changed = replace_once(original, POWERSHELL_ACCESS, b'<access sslFlags="' + value + b'" />')
    assert changes(original, changed)[0] == (
        "<location path='Exchange Back End/PowerShell'> was changed"
    )


def test_a_bool_attribute_with_a_value_iis_rejects_is_compared_as_written(original):
    # only true and false fold: `Yes` is no bool to IIS, nor is it the same text as `yes`
    def directory_browse(value: bytes) -> bytes:
        return in_location(
            original,
            POWERSHELL,
            b'<directoryBrowse enabled="false"',
            b'<directoryBrowse enabled="' + value + b'"',
        )

    assert changes(original, directory_browse(b"FALSE")) == []
    assert changes(directory_browse(b"Yes"), directory_browse(b"yes")) == [
        "<location path='Exchange Back End/PowerShell'> was changed"
    ]


@pytest.mark.parametrize(
    ("value", "respelled"),
    [
        (b"Read, Script", b"513"),  # a number where names were: compared as written
        (b"Read, Script", b"Read, Script, Scripts"),  # a name IIS does not know
        (b"Read, Scripts", b"scripts, read"),
        (b"Read, Script", b"Read"),
        (b"None", b"None, None"),  # None combines with nothing (IIS-NOTES): IIS rejects it
        (b"None", b"none,NONE"),
        (b"Read, Script", "Read,\u00a0Script".encode()),  # a no-break space: no space to IIS
    ],
)
def test_other_back_end_access_policies_still_count(original, value, respelled):
    def access_policy(flags: bytes) -> bytes:
        handlers = b'<handlers accessPolicy="' + flags + b'" />'
        return in_location(original, POWERSHELL, POWERSHELL_HANDLERS, handlers)

    assert changes(access_policy(value), access_policy(respelled)) == [
        "<location path='Exchange Back End/PowerShell'> was changed"
    ]


# --- git -------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, env=git_env()
    )


@pytest.fixture
def repo(tmp_path: Path, original: bytes) -> Path:
    git(tmp_path, "init", "-q")
    config = tmp_path / "servers" / "cas1" / "applicationHost.config"
    config.parent.mkdir(parents=True)
    config.write_bytes(original)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "export")
    return tmp_path


def test_a_back_end_change_since_head_is_refused(repo, original):
    config = repo / "servers" / "cas1" / "applicationHost.config"
    changed = back_end_edited(original)
    with pytest.raises(Refused) as caught:
        check_back_end_since(config, changed, "HEAD", "servers/cas1/applicationHost.config")
    assert caught.value.reasons == [
        "the Exchange Back End changed since HEAD: "
        "<location path='Exchange Back End/PowerShell'> was changed"
    ]
    assert caught.value.advice is not None
    assert f"undo this change; `{_advised(config, 'HEAD')}` shows it" in caught.value.advice
    assert str(caught.value).startswith(
        "servers/cas1/applicationHost.config: refused: the Exchange Back End changed since HEAD"
    )
    check_back_end_since(config, offload(original).output, "HEAD", "x")  # front end only: fine


def test_a_re_export_that_leaves_the_back_end_as_iis_sees_it_passes(repo, original):
    # applications and locations in another order, a pool's name in other case, attributes in
    # another order, a character written as a reference, a comment: IIS's end state is the same
    config = repo / "servers" / "cas1" / "applicationHost.config"
    moved = in_back_end_site(original, OWA_APPLICATION, b"")
    moved = in_back_end_site(moved, b"                <bindings>", OWA_APPLICATION + b"<bindings>")
    respelled = pool_respelled(moved, "application", b"msexchangepowershellapppool")
    respelled = replace_once(
        respelled,
        b'<site name="Exchange Back End" id="2" serverAutoStart="true">',
        b'<site serverAutoStart="true" id="&#50;" name="Exchange Back End"><!-- re-exported -->',
    )
    flags = b"ssl,ssl128,SslNegotiateCert"
    respelled = replace_once(respelled, POWERSHELL_ACCESS, b'<access sslFlags="' + flags + b'" />')
    check_back_end_since(config, respelled, "HEAD", "servers/cas1/applicationHost.config")
    changed = replace_once(respelled, flags, b"ssl,ssl128")  # and one real change
    with pytest.raises(Refused) as caught:
        check_back_end_since(config, changed, "HEAD", "servers/cas1/applicationHost.config")
    assert caught.value.reasons == [
        "the Exchange Back End changed since HEAD: "
        "<location path='Exchange Back End/PowerShell'> was changed"
    ]


CAS1 = "servers/cas1/applicationHost.config"  # the export the repo fixture commits
POWERSHELL_WINDOWS_AUTH = b'<windowsAuthentication enabled="true">'


def offload_since_head(
    confedit_exe: str, repo: Path, committed: bytes, now: bytes
) -> subprocess.CompletedProcess[bytes]:
    """`confedit offload --since HEAD`, run as a user would, on the export committed as
    `committed` and written since as `now`."""
    config = repo / CAS1
    if committed != revision_bytes(config, "HEAD"):
        config.write_bytes(committed)
        git(repo, "commit", "-qam", "the export as committed")
    config.write_bytes(now)
    return run(confedit_exe, "offload", "--since", "HEAD", "-q", CAS1, cwd=repo)


def assert_refused(proc: subprocess.CompletedProcess[bytes], change: str) -> None:
    """A --since refusal (exit 3) for the one change `change`, the advice after it."""
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.decode().startswith(
        f"{CAS1}: refused: the Exchange Back End changed since HEAD: {change}; SSL offloading "
    )


@pytest.mark.parametrize(
    ("committed", "respelled"),
    [
        (POWERSHELL_WINDOWS_AUTH, b'<windowsAuthentication enabled="True">'),
        (b'<windowsAuthentication enabled="false">', b'<windowsAuthentication enabled="FALSE">'),
        (
            b'<windowsAuthentication enabled="true" useKernelMode="false">',
            b'<windowsAuthentication enabled="TRUE" useKernelMode="False">',
        ),
        (
            b'<windowsAuthentication enabled="true" useAppPoolCredentials="true">',
            b'<windowsAuthentication enabled="true" useAppPoolCredentials="True">',
        ),
    ],
)
def test_the_case_of_a_bool_in_a_back_end_location_does_not_count(
    confedit_exe, repo, original, committed, respelled
):
    # IIS reads its schema's bools in any case; PowerShell's Set-WebConfigurationProperty
    # writes `True` where appcmd wrote `true`
    base = in_location(original, POWERSHELL, POWERSHELL_WINDOWS_AUTH, committed)
    now = in_location(original, POWERSHELL, POWERSHELL_WINDOWS_AUTH, respelled)
    proc = offload_since_head(confedit_exe, repo, base, now)
    assert proc.returncode == 0, proc.stderr


def test_the_case_of_a_bool_in_the_back_end_site_definition_does_not_count(
    confedit_exe, repo, original
):
    start = b'<site name="Exchange Back End" id="2" serverAutoStart="true">'
    respelled = replace_once(original, start, start.replace(b'"true"', b'"True"'))
    proc = offload_since_head(confedit_exe, repo, original, respelled)
    assert proc.returncode == 0, proc.stderr
    stopped = replace_once(original, start, start.replace(b'"true"', b'"False"'))
    assert_refused(
        offload_since_head(confedit_exe, repo, original, stopped),
        "the site definition of 'Exchange Back End' in <sites> was changed",
    )


def test_a_changed_bool_in_a_back_end_location_still_counts(confedit_exe, repo, original):
    off = in_location(
        original, POWERSHELL, POWERSHELL_WINDOWS_AUTH, b'<windowsAuthentication enabled="False">'
    )
    proc = offload_since_head(confedit_exe, repo, original, off)
    assert_refused(proc, "<location path='Exchange Back End/PowerShell'> was changed")


def test_the_case_of_a_string_that_reads_true_still_counts(confedit_exe, repo, original):
    # an application reads its setting as written: only the IIS schema's bools fold
    def setting(value: bytes) -> bytes:
        added = b'<appSettings><add key="LogVerbose" value="' + value + b'" /></appSettings>'
        return replace_once(original, POWERSHELL, POWERSHELL + added)

    proc = offload_since_head(confedit_exe, repo, setting(b"true"), setting(b"True"))
    assert_refused(proc, "<location path='Exchange Back End/PowerShell'> was changed")


POWERSHELL_HANDLERS = b'<handlers accessPolicy="Read, Script" />'
AUTODISCOVER = b'<location path="Exchange Back End/Autodiscover">'
AUTODISCOVER_TOKEN = b'<extendedProtection tokenChecking="None" flags="None">'


def extended_protection_flags(data: bytes, flags: bytes) -> bytes:
    """The file with Autodiscover's Extended Protection flags set to `flags`."""
    token = AUTODISCOVER_TOKEN.replace(b'flags="None"', b'flags="' + flags + b'"')
    return in_location(data, AUTODISCOVER, AUTODISCOVER_TOKEN, token)


@pytest.mark.parametrize("spelling", [b"Script,Read", b"read, SCRIPT", b"Script, Read, Script"])
def test_the_spelling_of_a_back_end_handlers_access_policy_does_not_count(
    confedit_exe, repo, original, spelling
):
    # IIS reads flags as a set of names, in any case and order
    respelled = in_location(
        original, POWERSHELL, POWERSHELL_HANDLERS, b'<handlers accessPolicy="' + spelling + b'" />'
    )
    proc = offload_since_head(confedit_exe, repo, original, respelled)
    assert proc.returncode == 0, proc.stderr


def test_a_flag_removed_from_a_back_end_handlers_access_policy_still_counts(
    confedit_exe, repo, original
):
    no_script = in_location(
        original, POWERSHELL, POWERSHELL_HANDLERS, b'<handlers accessPolicy="read" />'
    )
    proc = offload_since_head(confedit_exe, repo, original, no_script)
    assert_refused(proc, "<location path='Exchange Back End/PowerShell'> was changed")


POWERSHELL_BROWSE = (
    b'<directoryBrowse enabled="false" showFlags="Date, Size, Extension, LongDate" />'
)


def test_the_spelling_of_back_end_directory_browse_flags_does_not_count(original):
    # a flags attribute like the others: a set of names, in any case and order
    def show(flags: bytes) -> bytes:
        browse = POWERSHELL_BROWSE.replace(b"Date, Size, Extension, LongDate", flags)
        return in_location(original, POWERSHELL, POWERSHELL_BROWSE, browse)

    assert changes(original, show(b"longdate,extension,SIZE, date")) == []
    assert changes(original, show(b"Date, Size, Extension")) == [
        "<location path='Exchange Back End/PowerShell'> was changed"
    ]


def test_the_spelling_of_back_end_extended_protection_flags_does_not_count(
    confedit_exe, repo, original
):
    base = extended_protection_flags(original, b"Proxy, NoServiceNameCheck")
    respelled = extended_protection_flags(original, b"noservicenamecheck,proxy")
    proc = offload_since_head(confedit_exe, repo, base, respelled)
    assert proc.returncode == 0, proc.stderr


def test_a_flag_removed_from_back_end_extended_protection_still_counts(
    confedit_exe, repo, original
):
    base = extended_protection_flags(original, b"Proxy, NoServiceNameCheck")
    proxy_only = extended_protection_flags(original, b"proxy")
    proc = offload_since_head(confedit_exe, repo, base, proxy_only)
    assert_refused(proc, "<location path='Exchange Back End/Autodiscover'> was changed")


def test_none_with_none_in_back_end_extended_protection_flags_still_counts(original):
    # None combines with nothing (IIS-NOTES): IIS rejects `None, None`, and reads `None`
    doubled = extended_protection_flags(original, b"None, None")
    assert changes(original, doubled) == [
        "<location path='Exchange Back End/Autodiscover'> was changed"
    ]


def test_a_look_alike_of_a_back_end_extended_protection_flag_still_counts(original):
    # the Kelvin sign lowers to `k`, but Windows, comparing in upper case, keeps it: IIS knows
    # no flag NoServiceNameChec\u212a
    base = extended_protection_flags(original, b"Proxy, NoServiceNameCheck")
    kelvin = extended_protection_flags(original, "Proxy, NoServiceNameChec\u212a".encode())
    assert changes(base, kelvin) == ["<location path='Exchange Back End/Autodiscover'> was changed"]


def test_a_refusal_counts_the_changes_not_the_advice_that_follows_them(repo, original):
    config = repo / "servers" / "cas1" / "applicationHost.config"
    changed = back_end_edited(original)
    changed = replace_once(
        changed,
        b'<location path="Exchange Back End">',
        b'<location path="Exchange Back End" a="b">',
    )
    with pytest.raises(Refused) as caught:
        check_back_end_since(config, changed, "HEAD", "servers/cas1/applicationHost.config")
    lines = str(caught.value).splitlines()
    assert lines[0] == "servers/cas1/applicationHost.config: refused for 2 reasons:"
    assert [line.startswith("  - the Exchange Back End changed") for line in lines[1:]] == [
        True,
        True,
        False,
    ]
    assert lines[-1].startswith("  SSL offloading makes no change to the Exchange Back End")
    assert lines[-1].endswith("undo these changes; `" + _advised(config, "HEAD") + "` shows them")


def test_a_config_reached_through_a_symlink_is_compared_with_its_own_history(repo, original):
    # git keeps a tracked symlink as the text of the link: the file it leads to is what counts
    link = repo / "servers" / "cas2" / "applicationHost.config"
    link.parent.mkdir()
    link.symlink_to("../cas1/applicationHost.config")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a second name")
    changed = back_end_edited(original)
    with pytest.raises(Refused):
        check_back_end_since(link, changed, "HEAD", "servers/cas2/applicationHost.config")


def test_a_link_retargeted_since_the_revision_is_followed_as_it_was_then(repo, original):
    servers = repo / "servers"
    changed = back_end_edited(original)
    (servers / "cas2").mkdir()
    (servers / "cas2" / "applicationHost.config").write_bytes(changed)
    (servers / "current").mkdir()
    link = servers / "current" / "applicationHost.config"
    link.symlink_to("../cas1/applicationHost.config")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "current is cas1")
    link.unlink()
    link.symlink_to("../cas2/applicationHost.config")  # a Back End that differs
    git(repo, "commit", "-qam", "current is cas2")
    assert revision_bytes(link, "HEAD~1") == original
    with pytest.raises(Refused):
        check_back_end_since(link, link.read_bytes(), "HEAD~1", "servers/current/x")


def test_a_link_git_does_not_know_leads_to_a_file_whose_history_counts(repo, original):
    # an untracked (or newly added) link to a tracked config: the config's own history
    config = repo / "servers" / "cas1" / "applicationHost.config"
    config.write_bytes(back_end_edited(original))
    link = repo / "links" / "cas1.applicationHost.config"
    link.parent.mkdir()
    link.symlink_to("../servers/cas1/applicationHost.config")
    with pytest.raises(Refused) as caught:
        check_back_end_since(link, link.read_bytes(), "HEAD", "links/cas1.applicationHost.config")
    assert str(caught.value).startswith("links/cas1.applicationHost.config: refused: ")
    assert f"`{_advised(config, 'HEAD')}` shows it" in str(caught.value.advice)
    git(repo, "add", "links")
    with pytest.raises(Refused):  # added, but not in HEAD: the same
        check_back_end_since(link, link.read_bytes(), "HEAD", "links/cas1.applicationHost.config")


def test_a_link_to_a_file_renamed_since_names_the_files_old_path(repo, original):
    # the old path is the file's, from its own folder, not one made from the link's folder
    git(repo, "mv", "servers/cas1", "servers/cas9")
    config = repo / "servers" / "cas9" / "applicationHost.config"
    config.write_bytes(back_end_edited(original))
    link = repo / "links" / "cas9.applicationHost.config"
    link.parent.mkdir()
    link.symlink_to("../servers/cas9/applicationHost.config")
    with pytest.raises(Refused) as caught:
        check_back_end_since(link, link.read_bytes(), "HEAD", "links/cas9.applicationHost.config")
    old = os.path.realpath(repo / "servers" / "cas1" / "applicationHost.config")
    assert str(caught.value).startswith(
        f"links/cas9.applicationHost.config (renamed from {old}): refused: "
    )


def test_a_link_out_of_the_repository_is_a_usage_problem(repo, original, tmp_path_factory):
    # no history of the file here: passing it would vouch for a Back End never compared
    outside = tmp_path_factory.mktemp("elsewhere") / "applicationHost.config"
    outside.write_bytes(original)
    link = repo / "servers" / "linked.applicationHost.config"
    link.symlink_to(outside)
    expected = "leads out of its git repository"
    with pytest.raises(UsageProblem, match=expected):  # a link git does not know
        check_back_end_since(link, original, "HEAD", "linked")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a link out")
    assert revision_bytes(link, "HEAD") is None
    with pytest.raises(UsageProblem, match=expected):  # one in the revision
        check_back_end_since(link, original, "HEAD", "linked")


def test_a_link_into_another_repository_is_a_usage_problem(repo, original, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    git(other, "init", "-q")
    (other / "applicationHost.config").write_bytes(original)
    git(other, "add", ".")
    git(other, "commit", "-qm", "another repository's export")
    link = repo / "servers" / "linked.applicationHost.config"
    link.symlink_to(other / "applicationHost.config")
    with pytest.raises(UsageProblem, match="leads out of its git repository"):
        check_back_end_since(link, original, "HEAD", "linked")


def test_a_file_under_a_folder_link_out_of_the_repository_is_a_usage_problem(
    repo, original, tmp_path_factory
):
    # git, run in the link's folder, would answer from the other repository: its own HEAD
    other = tmp_path_factory.mktemp("other")
    git(other, "init", "-q")
    (other / "cas5").mkdir()
    (other / "cas5" / "applicationHost.config").write_bytes(original)
    git(other, "add", ".")
    git(other, "commit", "-qm", "another repository's export")
    (repo / "exports").mkdir()
    (repo / "exports" / "cas5").symlink_to(other / "cas5")
    config = repo / "exports" / "cas5" / "applicationHost.config"
    with pytest.raises(UsageProblem, match="leads out of its git repository"):
        check_back_end_since(config, original, "HEAD", "exports/cas5/applicationHost.config")


def test_a_folder_link_retargeted_since_the_revision_is_followed_as_it_was_then(repo, original):
    # exports/cas5 led to cas5's export at the revision; it now leads to another server's
    servers = repo / "servers"
    (servers / "cas5").mkdir()
    (servers / "cas5" / "applicationHost.config").write_bytes(original)
    (servers / "cas1" / "applicationHost.config").write_bytes(back_end_edited(original))
    (repo / "exports").mkdir()
    folder = repo / "exports" / "cas5"
    folder.symlink_to("../servers/cas5")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "cas1 and cas5 differ")
    folder.unlink()
    folder.symlink_to("../servers/cas1")
    git(repo, "commit", "-qam", "exports/cas5 leads to cas1")
    config = folder / "applicationHost.config"
    assert revision_bytes(config, "HEAD~1") == original
    with pytest.raises(Refused) as caught:
        check_back_end_since(config, config.read_bytes(), "HEAD~1", "exports/cas5/x")
    # the advised diff shows what changed under that name: the link
    advised = shlex.join(["git", "-C", str(repo), "diff", "HEAD~1", "--", "exports/cas5"])
    assert f"`{advised}` shows it" in str(caught.value.advice)


def test_a_file_under_a_folder_link_git_does_not_know_has_its_own_history(repo, original):
    (repo / "exports").mkdir()
    (repo / "exports" / "cas1").symlink_to("../servers/cas1")
    config = repo / "exports" / "cas1" / "applicationHost.config"
    assert revision_bytes(config, "HEAD") == original
    with pytest.raises(Refused):
        check_back_end_since(config, back_end_edited(original), "HEAD", "exports/cas1/x")


def test_the_committed_version_is_read_from_the_files_own_folder(repo, original, monkeypatch):
    monkeypatch.chdir(repo.parent)  # outside the repository
    config = repo / "servers" / "cas1" / "applicationHost.config"
    assert revision_bytes(config, "HEAD") == original
    monkeypatch.chdir(repo / "servers")
    assert revision_bytes(Path("cas1/applicationHost.config"), "HEAD") == original


def test_a_new_file_or_a_repository_without_commits_has_nothing_to_compare(tmp_path, original):
    git(tmp_path, "init", "-q")
    config = tmp_path / "applicationHost.config"
    config.write_bytes(original)
    assert revision_bytes(config, "HEAD") is None
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    new = tmp_path / "new" / "applicationHost.config"
    new.parent.mkdir()
    new.write_bytes(original)
    assert revision_bytes(new, "HEAD") is None


def test_an_old_version_that_does_not_load_has_no_back_end_to_keep(repo, original):
    config = repo / "servers" / "cas1" / "applicationHost.config"
    config.write_bytes(b"<configuration><broken></configuration>")
    git(repo, "commit", "-qam", "broken")
    check_back_end_since(config, original, "HEAD", "x")


def test_an_unknown_revision_or_no_repository_is_a_usage_problem(repo, tmp_path_factory):
    config = repo / "servers" / "cas1" / "applicationHost.config"
    with pytest.raises(UsageProblem, match="unknown git revision 'no-such-branch'"):
        revision_bytes(config, "no-such-branch")
    outside = tmp_path_factory.mktemp("plain") / "applicationHost.config"
    outside.write_bytes(b"")
    with pytest.raises(UsageProblem, match="not in a git repository"):
        revision_bytes(outside, "HEAD")


def test_an_unknown_revision_or_no_repository_says_what_to_do(repo, tmp_path_factory):
    config = repo / "servers" / "cas1" / "applicationHost.config"
    with pytest.raises(UsageProblem) as caught:
        revision_bytes(config, "origin/main")
    assert caught.value.message == (
        "--since: unknown git revision 'origin/main'; name a branch, tag or commit of this clone "
        "(`git branch -a` lists the branches; `git fetch origin` brings those of the remote)"
    )
    outside = tmp_path_factory.mktemp("plain") / "applicationHost.config"
    outside.write_bytes(b"")
    with pytest.raises(UsageProblem) as caught:
        revision_bytes(outside, "HEAD")
    assert caught.value.message == (
        "--since: not in a git repository; name the file in its git clone, or leave out --since"
    )


def test_repository_variables_of_a_git_hook_do_not_redirect_the_look_up(
    repo, original, monkeypatch
):
    other = repo.parent / "other"
    git(repo.parent, "init", "-q", str(other))
    monkeypatch.setenv("GIT_DIR", ".git")  # as git sets it for a hook, relative to its root
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    config = repo / "servers" / "cas1" / "applicationHost.config"
    assert revision_bytes(config, "HEAD") == original


def test_a_renamed_file_is_compared_with_its_version_under_the_old_name(repo, original):
    # a server's folder renamed in the same change as a Back End edit must not pass as new
    git(repo, "mv", "servers/cas1", "servers/cas1-renamed")
    config = repo / "servers" / "cas1-renamed" / "applicationHost.config"
    assert revision_bytes(config, "HEAD") == original  # staged
    git(repo, "commit", "-qm", "renamed")
    assert revision_bytes(config, "HEAD~1") == original  # committed
    changed = back_end_edited(original)
    with pytest.raises(Refused):
        check_back_end_since(
            config, changed, "HEAD~1", "servers/cas1-renamed/applicationHost.config"
        )
    check_back_end_since(config, offload(original).output, "HEAD~1", "x")  # front end only


def test_a_refusal_after_a_rename_names_both_paths_and_a_git_diff_that_shows_the_edit(
    repo, original
):
    git(repo, "mv", "servers/cas1", "servers/cas9")
    git(repo, "commit", "-qm", "renamed")
    config = repo / "servers" / "cas9" / "applicationHost.config"
    config.write_bytes(back_end_edited(original))
    with pytest.raises(Refused) as caught:
        check_back_end_since(
            config, config.read_bytes(), "HEAD~1", "servers/cas9/applicationHost.config"
        )
    assert str(caught.value).startswith(
        "servers/cas9/applicationHost.config (renamed from servers/cas1/applicationHost.config): "
        "refused: the Exchange Back End changed since HEAD~1: "
    )
    command = shlex.split(str(caught.value.advice).split("`")[1])
    assert command == [
        *("git", "-C", str(config.parent), "diff", "--find-renames", "HEAD~1", "--"),
        *("../cas1/applicationHost.config", "applicationHost.config"),
    ]
    shown = subprocess.run(command, capture_output=True, check=True).stdout.decode()
    assert "rename from servers/cas1/applicationHost.config" in shown
    assert '+                <access sslFlags="Ssl" />' in shown.splitlines()


def test_a_file_only_moved_on_disk_is_still_compared_under_its_old_name(repo, original):
    # `mv` without `git add`: git sees a deleted file and an untracked one, not a rename
    index_before = (repo / ".git" / "index").read_bytes()
    (repo / "servers" / "cas1").rename(repo / "servers" / "cas9")
    config = repo / "servers" / "cas9" / "applicationHost.config"
    config.write_bytes(back_end_edited(original))
    with pytest.raises(Refused) as caught:
        check_back_end_since(
            config, config.read_bytes(), "HEAD", "servers/cas9/applicationHost.config"
        )
    assert str(caught.value).startswith(
        "servers/cas9/applicationHost.config (renamed from servers/cas1/applicationHost.config): "
        "refused: the Exchange Back End changed since HEAD: "
    )
    assert (repo / ".git" / "index").read_bytes() == index_before  # the user's index untouched
    assert git(repo, "status", "--porcelain").stdout.decode().splitlines() == [
        " D servers/cas1/applicationHost.config",
        "?? servers/cas9/",
    ]
    # the advice stages the rename, then shows the edit
    stage, show = (shlex.split(part) for part in str(caught.value.advice).split("`")[1:4:2])
    paths = ("../cas1/applicationHost.config", "applicationHost.config")
    assert stage == ["git", "-C", str(config.parent), "add", "--all", "--", *paths]
    assert show == ["git", "-C", str(config.parent), "diff", "--find-renames", "HEAD", "--", *paths]
    subprocess.run(stage, capture_output=True, check=True, env=git_env())
    shown = subprocess.run(show, capture_output=True, check=True).stdout.decode()
    assert "rename from servers/cas1/applicationHost.config" in shown
    assert '+                <access sslFlags="Ssl" />' in shown.splitlines()


def test_looking_for_a_rename_leaves_the_users_index_as_it_was(repo, original):
    # a tracked file whose timestamps changed, content not: `git diff` would refresh its entry
    # in the index and rewrite the file, under the user's feet (in a hook, as `git commit` runs)
    tracked = repo / "servers" / "cas1" / "applicationHost.config"
    os.utime(tracked, (1, 1))
    index_before = (repo / ".git" / "index").read_bytes()
    config = repo / "servers" / "cas2" / "applicationHost.config"
    config.parent.mkdir()
    config.write_bytes(original)
    check_back_end_since(config, original, "HEAD", "servers/cas2/applicationHost.config")
    assert (repo / ".git" / "index").read_bytes() == index_before


def test_looking_for_a_rename_in_a_split_index_leaves_no_file_in_the_repository(repo, original):
    # a copy of a split index, written, would add a shared index of its own to .git
    git(repo, "update-index", "--split-index")
    before = sorted(path.name for path in (repo / ".git").iterdir())
    (repo / "servers" / "cas1").rename(repo / "servers" / "cas9")
    config = repo / "servers" / "cas9" / "applicationHost.config"
    version = revision_version(config, "HEAD")
    assert version is not None and version.renamed_from == "../cas1/applicationHost.config"
    assert sorted(path.name for path in (repo / ".git").iterdir()) == before


def test_a_new_untracked_file_with_no_deleted_one_to_match_passes(repo, original):
    config = repo / "servers" / "cas2" / "applicationHost.config"
    config.parent.mkdir()
    config.write_bytes(original)
    assert revision_bytes(config, "HEAD") is None
    check_back_end_since(config, b"<configuration />", "HEAD", "cas2")  # nothing to compare


def test_the_git_diff_the_refusal_advises_is_quoted_for_a_shell(repo, original):
    folder = repo / "servers" / "cas 2 é"
    folder.mkdir()
    config = folder / "applicationHost.config"
    config.write_bytes(original)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a folder name with a space")
    changed = back_end_edited(original)
    with pytest.raises(Refused) as caught:
        check_back_end_since(config, changed, "HEAD", "servers/cas 2 é/applicationHost.config")
    assert f"`git -C '{folder}' diff HEAD -- applicationHost.config`" in str(caught.value.advice)


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        (b"cas\n2 'x'", "cas\\x0a2 \\'x\\'"),  # a line break: stays on the message's line
        (b"caf\xe9", "caf\\xe9"),  # Latin-1: plain quotes showed '\\udce9', another folder
    ],
    ids=["line-break", "not-utf8"],
)
def test_the_git_diff_advised_for_an_odd_folder_name_runs_in_bash(repo, original, name, escaped):
    """The command is written as $'...' with the folder's own bytes escaped."""
    folder = Path(os.fsdecode(bytes(repo / "servers") + b"/" + name))
    folder.mkdir(parents=True)
    config = folder / "applicationHost.config"
    config.write_bytes(original)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "an odd folder name")
    config.write_bytes(back_end_edited(original))
    with pytest.raises(Refused) as caught:
        check_back_end_since(config, config.read_bytes(), "HEAD", "cas")
    advice = str(caught.value.advice)
    command = advice.split("`")[1]
    assert "\n" not in advice and escaped in command
    shown = subprocess.run(["bash", "-c", os.fsencode(command)], capture_output=True, check=True)
    assert b'+                <access sslFlags="Ssl" />' in shown.stdout.splitlines()


def test_the_git_diff_the_refusal_advises_works_from_outside_the_repository(
    repo, original, tmp_path_factory, monkeypatch
):
    config = repo / "servers" / "cas1" / "applicationHost.config"
    config.write_bytes(back_end_edited(original))
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    name = os.path.relpath(config, elsewhere)  # as the file is named from there
    with pytest.raises(Refused) as caught:
        check_back_end_since(Path(name), config.read_bytes(), "HEAD", name)
    command = shlex.split(str(caught.value.advice).split("`")[1])
    shown = subprocess.run(command, capture_output=True, check=True).stdout.decode()
    assert '+                <access sslFlags="Ssl" />' in shown.splitlines()


def _advised(config: Path, revision: str) -> str:
    return shlex.join(["git", "-C", str(config.parent), "diff", revision, "--", config.name])


def test_an_unknown_revision_in_a_shallow_clone_says_the_clone_is_shallow(repo, tmp_path_factory):
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    clone = tmp_path_factory.mktemp("ci") / "clone"
    git(repo.parent, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    config = clone / "servers" / "cas1" / "applicationHost.config"
    with pytest.raises(
        UsageProblem, match=r"unknown git revision 'HEAD~1' \(this clone is shallow"
    ):
        revision_bytes(config, "HEAD~1")
