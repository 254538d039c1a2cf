"""runbook.py: the operator's PowerShell steps after the change."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import xml.sax.saxutils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confedit import offload
from confedit.errors import Refused
from confedit.plan import Request
from confedit.runbook import render_runbook
from confedit.testing.build import App, Loc, Site, Style, render
from tests import powershell
from tests.conftest import EXCHANGE, SAMPLES, run

SAMPLE = (SAMPLES / "exchange2013-cas.applicationHost.config").read_bytes()
PATCHED = (SAMPLES / "exchange2013-cas.applicationHost.patched.config").read_bytes()


def test_runbook_recycles_the_pools_of_changed_directories_from_the_file():
    result = offload(SAMPLE, Request(services=("owa", "oab")), name="x")
    text = render_runbook(result, "x").decode()
    pools = re.search(r"\$pools = @\(\r\n(.*?)\r\n\)", text, re.S).group(1).split("\r\n")
    assert [p.strip() for p in pools] == ["'MSExchangeOWAAppPool'", "'MSExchangeOABAppPool'"]
    assert "Restart-WebAppPool -Name $pool" in text
    assert "\n# iisreset /noforce" in text


def test_the_runbook_carries_the_warnings_the_run_printed(confedit_exe, tmp_path):
    """The runbook is run on the server by an operator who may never see the run's stderr,
    and it left out every warning, among them the ones answered on the server only ("check
    the web.config files on the server"). It now lists them as the run printed them."""
    config = tmp_path / "applicationHost.config"
    config.write_bytes(
        SAMPLE.replace(
            b'<location path="Default Web Site">',
            b'<location path="Default Web Site" overrideMode="Allow">',
        )
    )
    proc = run(confedit_exe, "offload", str(config), "--runbook", "rb.ps1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = [line for line in proc.stderr.decode().splitlines() if line.startswith("warning: ")]
    assert any("check the web.config files on the server" in line for line in printed)
    assert any(line.startswith("warning: MRSProxy") for line in printed)
    script = (tmp_path / "rb.ps1").read_bytes().decode("utf-8-sig").split("\r\n")
    start = script.index("# confedit warned, when it patched the file:") + 1
    assert script[start : start + len(printed) + 1] == [*(f"#   {w}" for w in printed), ""]
    assert powershell.syntax_errors(powershell.parse("\r\n".join(script))) == []


def test_a_warning_naming_a_path_with_a_line_break_is_written_escaped(confedit_exe, tmp_path):
    """A warning names paths read from the file: one holding a line break (or a bidi override)
    refused the whole runbook, as a pool's name does, though a warning is only ever a comment.
    It is written as stderr printed it, its control and format characters escaped, so no text
    leaves its comment line."""
    descendant = b"Default Web Site/owa/x&#10;Write-Host X #&#x202e;"
    config = tmp_path / "applicationHost.config"
    config.write_bytes(
        SAMPLE.replace(
            b'    <location path="Default Web Site/owa">',
            b'    <location path="' + descendant + b'"><system.webServer><security>'
            b'<access sslFlags="Ssl" /></security></system.webServer></location>\r\n'
            b'    <location path="Default Web Site/owa">',
        )
    )
    proc = run(confedit_exe, "offload", str(config), "--runbook", "rb.ps1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = [line for line in proc.stderr.decode().splitlines() if line.startswith("warning: ")]
    below = [line for line in printed if "still require SSL" in line]
    assert len(below) == 1
    assert "owa/x\\nWrite-Host X #\u202e" in below[0]
    script = (tmp_path / "rb.ps1").read_bytes().decode("utf-8-sig").split("\r\n")
    start = script.index("# confedit warned, when it patched the file:") + 1
    expected = ["#   " + line.replace("\u202e", "\\u202e") for line in printed]
    assert script[start : start + len(printed) + 1] == [*expected, ""]
    assert powershell.syntax_errors(powershell.parse("\r\n".join(script))) == []


def test_nothing_runs_without_apply_and_outlook_anywhere_stays_commented():
    text = render_runbook(offload(SAMPLE, name="x"), "x").decode()
    live = [
        line for line in text.split("\r\n") if line.strip() and not line.lstrip().startswith("#")
    ]
    assert all("Set-OutlookAnywhere" not in line and "appcmd" not in line for line in live)
    block = apply_block(text)
    iis = [line for line in live if "WebAppPool" in line or "IIS:" in line or "Import-" in line]
    assert iis and all(line in block for line in iis)
    assert "-SSLOffloading $true" in text and "every 15 minutes" in text


def test_rollback_restores_explicit_values_and_clears_inserted_ones():
    text = render_runbook(offload(SAMPLE, name="x"), "x").decode()
    assert (
        "# & $env:windir\\system32\\inetsrv\\appcmd.exe set config 'Default Web Site/OAB' /section:access '/sslFlags:Ssl, Ssl128' /commit:APPHOST"
        in text
    )
    assert (
        "# & $env:windir\\system32\\inetsrv\\appcmd.exe clear config 'Default Web Site/owa' /section:access /commit:APPHOST"
        in text
    )


def test_pools_come_from_the_files_own_sites():
    raw = (EXCHANGE / "e2016.applicationHost.config").read_bytes()
    result = offload(raw, Request(services=("mapi",)), name="x")
    assert result.plan.pools == ["MSExchangeMapiFrontEndAppPool"]
    raw = raw.replace(
        b'applicationPool="MSExchangeMapiFrontEndAppPool"', b'applicationPool="CustomPool"'
    )
    assert offload(raw, Request(services=("mapi",)), name="x").plan.pools == ["CustomPool"]


def renamed_oab(pool: str, directory: str) -> bytes:
    """The sample with OAB's pool and directory named as given (in <sites> and its location)."""
    raw = SAMPLE.replace(b'"MSExchangeOABAppPool"', _attr(pool))
    raw = raw.replace(b'path="/OAB"', b'path="/' + _attr(directory)[1:])
    return raw.replace(b'"Default Web Site/OAB"', b'"Default Web Site/' + _attr(directory)[1:])


def _attr(text: str) -> bytes:
    escaped = text.replace("&", "&amp;").replace("\n", "&#10;").replace("\t", "&#9;")
    return ('"' + escaped + '"').encode()


def runbook_lines(raw: bytes, path: str, name: str = "x") -> list[str]:
    result = offload(raw, Request(paths=(f"Default Web Site/{path}",)), name="x")
    return render_runbook(result, name).decode("utf-8-sig").split("\r\n")


def test_every_powershell_quote_in_a_name_is_doubled_and_dollars_stay_literal():
    # PowerShell closes a single-quoted string at any of ' \u2018 \u2019 \u201a \u201b: a pool
    # named "OAB\u2019; Write-Host X; \u2019" would otherwise run Write-Host as administrator.
    lines = runbook_lines(
        renamed_oab("OAB\u2019; Write-Host X; \u2018'\u201a\u201b", "O$A`B"), "O$A`B"
    )
    assert "    'OAB\u2019\u2019; Write-Host X; \u2018\u2018''\u201a\u201a\u201b\u201b'" in lines
    commands = [line.split("appcmd.exe ", 1)[1] for line in lines if "appcmd.exe" in line]
    assert commands == [
        "set config 'Default Web Site/O$A`B' /section:access '/sslFlags:None' /commit:APPHOST",
        "set config 'Default Web Site/O$A`B' /section:access '/sslFlags:Ssl, Ssl128' /commit:APPHOST",
    ]


@pytest.mark.parametrize(
    ("pool", "directory", "file_name"),
    [
        ("OAB\nWrite-Host X", "OAB", "x"),
        ("MSExchangeOABAppPool", "OAB\nWrite-Host X #", "x"),
        ("MSExchangeOABAppPool", "OAB", "srv\nStop-Computer #.applicationHost.config"),
        ("OAB\u202e", "OAB", "x"),  # a right-to-left override: what is shown is not what runs
    ],
    ids=["pool", "path", "file-name", "bidi-override"],
)
def test_a_line_break_in_a_name_refuses_the_runbook(pool, directory, file_name):
    with pytest.raises(
        Refused, match=r"cannot write a safe runbook: .* holds a control or formatting character"
    ):
        runbook_lines(renamed_oab(pool, directory), directory, file_name)


def test_the_runbook_has_a_bom_for_windows_powershell():
    data = render_runbook(offload(renamed_oab("Stra\u00dfen", "OAB"), name="x"), "x")
    assert data.startswith(codecs.BOM_UTF8)
    assert "    'Stra\u00dfen'" in data.decode("utf-8-sig").split("\r\n")


def test_a_runbook_for_an_unchanged_file_says_so():
    text = render_runbook(offload(PATCHED, name="x"), "x").decode("utf-8-sig")
    assert "# Nothing changed in this file" in text
    assert "$pools = @(\r\n)" in text


def test_a_changed_directory_whose_pool_the_file_does_not_name_is_left_to_the_operator():
    raw = SAMPLE.replace(b' applicationPool="MSExchangeOABAppPool"', b"")
    raw = raw.replace(b'<applicationDefaults applicationPool="DefaultAppPool" />', b"")
    lines = runbook_lines(raw, "OAB")
    assert (
        "#    The pool of Default Web Site/OAB is not named in the file: recycle it by hand."
        in lines
    )


def test_a_changed_application_with_a_virtual_directory_is_left_to_the_operator_once():
    # The virtual directory below OAB runs in OAB's own application: its pool is the target's,
    # not a second one to recycle by hand.
    raw = SAMPLE.replace(b' applicationPool="MSExchangeOABAppPool"', b"")
    raw = raw.replace(b'<applicationDefaults applicationPool="DefaultAppPool" />', b"")
    root = b'<virtualDirectory path="/" physicalPath="C:\\Program Files\\Microsoft\\Exchange'
    root += b' Server\\V15\\FrontEnd\\HttpProxy\\OAB" />'
    extra = b'\n                    <virtualDirectory path="/extra" physicalPath="C:\\x" />'
    assert raw.count(root) == 1
    raw = raw.replace(root, root + extra)
    lines = runbook_lines(raw, "OAB")
    assert [line for line in lines if "is not named in the file" in line] == [
        "#    The pool of Default Web Site/OAB is not named in the file: recycle it by hand."
    ]


def test_an_application_inheriting_the_change_whose_pool_is_not_named_is_left_to_the_operator():
    # ECP inherits the site's Ssl: offloading the site changes it too. Its pool was left out
    # of the runbook without a word when no element of the file named one.
    raw = SAMPLE.replace(b'<applicationDefaults applicationPool="DefaultAppPool" />', b"")
    raw = raw.replace(
        b'<application path="/ecp" applicationPool="MSExchangeECPAppPool">',
        b'<application path="/ecp">',
    )
    result = offload(raw, Request(paths=("Default Web Site",)), name="x")
    assert result.plan.apps_without_pool == ("Default Web Site/ecp",)
    assert "MSExchangeOWAAppPool" in result.plan.pools  # the others are named as before
    lines = render_runbook(result, "x").decode("utf-8-sig").split("\r\n")
    assert (
        "#    The pool of Default Web Site/ecp is not named in the file: recycle it by hand."
        in lines
    )


def test_a_tab_in_a_pool_name_is_harmless_inside_its_quotes():
    assert "    'OAB\tPool'" in runbook_lines(renamed_oab("OAB\tPool", "OAB"), "OAB")


def test_a_target_only_pinned_needs_no_pool_named():
    site = Site("Default Web Site", (App("/", "MSExchangeOWAAppPool"), App("/owa")))
    locations = [Loc("Default Web Site", "None"), Loc("Default Web Site/owa", shape="security")]
    raw = render([site], locations, Style(newline="\n", bom=False))
    raw = raw.replace(b'<applicationDefaults applicationPool="DefaultAppPool" />', b"")
    result = offload(raw, Request(services=("owa",)), name="x")
    assert [(o.changed, o.pinned, o.pool) for o in result.outcomes] == [(True, True, None)]
    assert "is not named in the file" not in render_runbook(result, "x").decode("utf-8-sig")


def test_a_file_name_that_is_not_utf8_is_escaped_and_the_script_stays_utf8():
    name = os.fsdecode(b"cas\xff/applicationHost.config")
    text = render_runbook(offload(SAMPLE, name=name), name).decode("utf-8-sig")
    assert "# SSL offloading runbook for cas\\udcff/applicationHost.config," in text


def apply_block(text: str) -> list[str]:
    """The lines of the script's `if ($Apply) {` block, up to its closing brace."""
    lines = text.split("\r\n")
    start = lines.index("if ($Apply) {")
    return lines[start : lines.index("}", start) + 1]


def test_a_pool_that_is_not_started_is_left_alone_and_named():
    # Restart-WebAppPool fails on a stopped pool, and $ErrorActionPreference = 'Stop' ended the
    # script there, the other pools not recycled.
    block = [line.strip() for line in apply_block(render_runbook(offload(SAMPLE), "x").decode())]
    state = block.index("$state = (Get-WebAppPoolState -Name $pool).Value")
    guard = block.index("if ($state -eq 'Started') {")
    assert (
        state < guard < block.index('Restart-WebAppPool -Name $pool; Write-Host "recycled $pool"')
    )
    assert (
        'else { Write-Host "$pool is ${state}: not recycled; it reads the new configuration when '
        'started" }'
    ) in block


def test_every_pool_is_looked_up_before_any_is_recycled():
    block = [line.strip() for line in apply_block(render_runbook(offload(SAMPLE), "x").decode())]
    check = block.index("$missing = @($pools | Where-Object { $known -notcontains $_ })")
    throw = next(i for i, line in enumerate(block) if line.startswith('throw "no application'))
    assert check < throw < block.index("foreach ($pool in $pools) {")
    assert "on this server, nothing recycled: run this script on the server" in block[throw]


@pytest.mark.parametrize(
    "config",
    [path for path in sorted(EXCHANGE.glob("*.config")) if "malformed" not in path.name],
    ids=lambda path: path.name.removesuffix(".applicationHost.config"),
)
@pytest.mark.parametrize(
    "request_",
    [
        Request(allow_extended_protection=True),
        Request(include_descendants=True, allow_extended_protection=True),
    ],
    ids=["defaults", "descendants"],
)
def test_every_runbook_reads_as_powershell(config, request_):
    """The whole script parses, and so does each appcmd step its comments give to paste. No
    variable in a double-quoted string is followed by a colon, which PowerShell reads as a drive
    or scope (`"$state: ..."` does not run), and which the grammar lets pass."""
    result = offload(config.read_bytes(), request_, name="x")
    script = render_runbook(result, "x").decode("utf-8-sig")
    root = powershell.parse(script)
    assert powershell.syntax_errors(root) == []
    for step in _appcmd_steps(script):
        assert powershell.syntax_errors(powershell.parse(step)) == [], step
    expanded = [s.text.decode() for s in powershell.nodes(root, "expandable_string_literal")]
    assert expanded and not [s for s in expanded if re.search(r"\$\w+:(?![\w{])", s)]


# The names a file may give a pool or a directory, but for the controls and format characters a
# runbook refuses (see test_a_line_break_in_a_name_refuses_the_runbook) and a path's separators.
_NAMES = st.text(
    st.one_of(
        st.sampled_from("'\u2018\u2019\u201a\u201b\"$`@(){};#&|<> -"),
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp")),
    ).filter(lambda char: char not in "/\\"),
    min_size=1,
    max_size=12,
).filter(lambda name: name.strip() == name)


_INVERSES = {  # where OAB's sslFlags came from: how the rollback restores it
    "set here": " set config ",
    "inherited": " clear config ",
    "inherited, <access> kept": ".GetAttribute('sslFlags').Delete()",
}


@given(pool=_NAMES, directory=_NAMES, before=st.sampled_from(sorted(_INVERSES)))
def test_names_reach_powershell_as_the_file_spells_them(pool, directory, before):
    """Whatever quotes, dollars, backticks or braces a pool or a directory's name holds, the
    script parses, its $pools holds exactly the pool, and the steps name the path: the
    change, and its inverse (`set config` back to the value the file set, `clear config`
    where the directory inherited its value, the attribute deleted where the directory
    inherited it through an <access> of its own)."""
    path = f"Default Web Site/{directory}"
    raw = _named_oab(pool, directory, before=before)
    result = offload(raw, Request(paths=(path,)), name="x")
    script = render_runbook(result, "x").decode("utf-8-sig")
    root = powershell.parse(script)
    assert powershell.syntax_errors(root) == []
    (pools,) = [
        node
        for node in powershell.nodes(root, "assignment_expression")
        if node.children[0].text == b"$pools"
    ]
    assert [powershell.verbatim(s) for s in powershell.nodes(pools, "string_literal")] == [pool]
    steps = _appcmd_steps(script)
    assert len(steps) == 2  # the change, and its inverse
    assert _INVERSES[before] in steps[1], steps[1]
    for step in steps:
        arguments = powershell.nodes(powershell.parse(step), "string_literal")
        assert path in [powershell.verbatim(argument) for argument in arguments], step


def _appcmd_steps(script: str) -> list[str]:
    """The commands the script's comments give to paste for one path, uncommented."""
    return [line[2:] for line in script.split("\r\n") if line.startswith(("# & ", "# $iis "))]


def _named_oab(pool: str, directory: str, *, before: str = "set here") -> bytes:
    """The sample with OAB's pool and directory named as given, escaped for an attribute;
    `before` (see _INVERSES): "inherited", without OAB's own <access>, so that it inherits the
    site's sslFlags; "inherited, <access> kept", its <access> kept without sslFlags."""
    escaped = {name: xml.sax.saxutils.quoteattr(name).encode() for name in (pool, directory)}
    raw = SAMPLE
    if before != "set here":
        kept = b"<access />" if before == "inherited, <access> kept" else b""
        oab = raw.index(b'<location path="Default Web Site/OAB">')
        raw = raw[:oab] + raw[oab:].replace(b'<access sslFlags="Ssl, Ssl128" />', kept, 1)
    raw = raw.replace(b'"MSExchangeOABAppPool"', escaped[pool])
    quoted = escaped[directory]
    raw = raw.replace(b'path="/OAB"', b"path=" + quoted[:1] + b"/" + quoted[1:])
    prefix = b"Default Web Site/"
    return raw.replace(b'"Default Web Site/OAB"', quoted[:1] + prefix + quoted[1:])


def test_the_rollback_of_a_utf16_file_does_not_send_the_operator_to_its_diff():
    utf16 = codecs.BOM_UTF16_LE + SAMPLE.decode("utf-8-sig").replace(
        'encoding="UTF-8"', 'encoding="UTF-16"', 1
    ).encode("utf-16-le")
    text = render_runbook(offload(utf16, name="x"), "x").decode("utf-8-sig")
    assert "git apply -R" not in text
    assert "# 4. Rollback: put back the original file (the file is UTF-16-LE with BOM," in text
    assert "keep a --backup of it" in text
    utf8 = render_runbook(offload(SAMPLE, name="x"), "x").decode("utf-8-sig")
    assert "# 4. Rollback: apply the diff in reverse to the file (git apply -R" in utf8


def _owa_with_access(access: bytes) -> bytes:
    """The sample with `access` (an <access> without sslFlags) in owa's <security>: owa
    inherits the site's Ssl, and the offload adds the attribute to that element."""
    start = SAMPLE.index(b'<location path="Default Web Site/owa">')
    end = SAMPLE.index(b"</authentication>", start) + len(b"</authentication>")
    return SAMPLE[:end] + b"\n                " + access + SAMPLE[end:]


@pytest.mark.parametrize(
    "access",
    [b'<access lockAttributes="sslFlags" />', b'<access lockItem="true" />', b"<access />"],
)
def test_the_rollback_of_an_attribute_added_to_an_access_deletes_the_attribute_only(access):
    # `appcmd clear config /section:access` deletes the whole <access>: a lock the file set on
    # it, which the change kept, would be lost by the rollback.
    result = offload(_owa_with_access(access), Request(services=("owa",)), name="x")
    (outcome,) = result.outcomes
    assert (outcome.action, outcome.created, outcome.inherited) == ("rewritten", (), True)
    script = render_runbook(result, "x").decode("utf-8-sig")
    rollback = script[script.index("# 4. Rollback") :]
    assert " clear config " not in rollback
    assert "# [void][Reflection.Assembly]::LoadWithPartialName('Microsoft.Web.Administration')" in (
        rollback.split("\r\n")
    )
    (step,) = [line[2:] for line in rollback.split("\r\n") if "'Default Web Site/owa'" in line]
    assert step.endswith(
        "$iis.GetApplicationHostConfiguration().GetSection('system.webServer/security/access', "
        "'Default Web Site/owa').GetAttribute('sslFlags').Delete(); $iis.CommitChanges()"
    )
    assert powershell.syntax_errors(powershell.parse(step)) == [], step


def test_the_deployed_file_is_checked_before_any_pool_is_recycled():
    # The pools are the same in the original file: their check alone let a server where the
    # patched file was not deployed yet be recycled, and reported as done.
    result = offload(SAMPLE, name="x")
    text = render_runbook(result, "x").decode("utf-8-sig")
    digest = hashlib.sha256(result.output).hexdigest().upper()
    assert f"$patched = '{digest}'  # SHA-256 of the patched file" in text.split("\r\n")
    block = [line.strip() for line in apply_block(text)]
    check = block.index(
        "if ((Get-FileHash -LiteralPath $config -Algorithm SHA256).Hash -ne $patched) {"
    )
    assert (
        block[check - 1]
        == '$config = "$env:windir\\system32\\inetsrv\\config\\applicationHost.config"'
    )
    assert block[check + 1].startswith('throw "$config is not the patched file')
    assert check < block.index(
        "$known = @(Get-ChildItem IIS:\\AppPools | ForEach-Object { $_.Name })"
    )
