"""`--runbook FILE.ps1`: the operator's steps after deploying the patched file, as PowerShell.

The script does nothing unless run with -Apply: without it, it only prints what it would do.
The Outlook Anywhere steps and iisreset stay commented: they are decisions, not routine.
"""

from __future__ import annotations

import codecs
import hashlib
import unicodedata
from typing import Final

from confedit import __version__
from confedit.engine import Result
from confedit.errors import Refused, shown
from confedit.plan import Outcome

APPCMD: Final = r"& $env:windir\system32\inetsrv\appcmd.exe"
# appcmd deletes a whole section, not one attribute of it: Microsoft.Web.Administration does.
_LOAD_IIS_API: Final = (
    "[void][Reflection.Assembly]::LoadWithPartialName('Microsoft.Web.Administration')"
)

# PowerShell takes each of these for the quote that opens and closes a single-quoted string.
_SINGLE_QUOTES: Final = "'\u2018\u2019\u201a\u201b"
# Characters that would end a line (a comment) in the script, or hide what it does (bidi
# overrides, zero-width characters): controls but the tab, line and paragraph separators, format.
_UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Zl", "Zp", "Cf"})


# Restart-WebAppPool fails on a pool that is not started (and $ErrorActionPreference stops the
# script there); a stopped pool reads the configuration when it starts, so it is left alone.
_RECYCLE: Final = (
    "if ($Apply) {",
    "    # The pools are in the original file too: only the file itself shows it was deployed.",
    '    $config = "$env:windir\\system32\\inetsrv\\config\\applicationHost.config"',
    "    if ((Get-FileHash -LiteralPath $config -Algorithm SHA256).Hash -ne $patched) {",
    '        throw "$config is not the patched file this runbook was written for, nothing '
    'recycled: deploy that file first, on the server it was exported from"',
    "    }",
    "    Import-Module WebAdministration",
    "    # Every pool is checked before any is recycled: one missing means another server.",
    "    $known = @(Get-ChildItem IIS:\\AppPools | ForEach-Object { $_.Name })",
    "    $missing = @($pools | Where-Object { $known -notcontains $_ })",
    "    if ($missing) {",
    "        throw \"no application pool $($missing -join ', ') on this server, nothing "
    'recycled: run this script on the server whose file it was written for"',
    "    }",
    "    foreach ($pool in $pools) {",
    "        $state = (Get-WebAppPoolState -Name $pool).Value",
    "        if ($state -eq 'Started') {",
    '            Restart-WebAppPool -Name $pool; Write-Host "recycled $pool"',
    "        }",
    '        else { Write-Host "$pool is ${state}: not recycled; it reads the new configuration '
    'when started" }',
    "    }",
    "}",
    'else { foreach ($pool in $pools) { Write-Host "would recycle $pool (run with -Apply)" } }',
)


def render_runbook(result: Result, name: str, *, option: str = "--runbook") -> bytes:
    """The runbook for a verified result: UTF-8 with a byte-order mark (Windows PowerShell 5.1
    reads a script without one in the ANSI code page, garbling non-ASCII names), Windows line
    endings. Refused when a name it must write holds a control or formatting character: no
    quoting keeps a line break inside a comment, and a script run as administrator must do only
    what it shows. The warnings are comments alone, so their characters are escaped instead.
    `option` is the one that asked for it, for the refusal to name."""
    changed = [o for o in result.outcomes if o.changed]
    paths = [*(o.target.path for o in changed), *result.plan.apps_without_pool]
    _check_names([name, *result.plan.pools, *paths], name, option)
    warned = [_escaped(f"{finding.level}: {shown(finding.message)}") for finding in result.findings]
    lines = [
        f"# SSL offloading runbook for {name}, written by confedit {__version__}.",
        "# Deploy the patched applicationHost.config first (staged, one Client Access server at a",
        "# time), then run this script on that server. Without -Apply it only prints the steps.",
        "param(",
        "    [string] $Server = $env:COMPUTERNAME,  # the Client Access server",
        "    [string] $ExternalHostName = 'mail.contoso.com',  # Outlook Anywhere's external name",
        "    [switch] $Apply",
        ")",
        "$ErrorActionPreference = 'Stop'",
        "",
        *_nothing_changed(changed),
        *_warnings(warned),
        "# 1. Recycle the application pools of the changed directories.",
        *_pools_not_named(result, changed),
        f"$patched = '{hashlib.sha256(result.output).hexdigest().upper()}'  # SHA-256 of the "
        "patched file",
        "$pools = @(",
        *[f"    '{_ps(pool)}'" for pool in result.plan.pools],  # one element per line
        ")",
        *_RECYCLE,
        "# Alternative to recycling each pool: restart IIS.",
        "# iisreset /noforce",
        "",
        "# 2. Outlook Anywhere (Microsoft's procedure). Its SSL offloading flag lives in Active",
        "#    Directory, not in applicationHost.config. Uncomment to use:",
        '# Set-OutlookAnywhere -Identity "$Server\\Rpc*" -ExternalHostname $ExternalHostName '
        "-ExternalClientsRequireSsl $true -ExternalClientAuthenticationMethod Basic",
        '# Set-OutlookAnywhere -Identity "$Server\\Rpc*" -SSLOffloading $true',
        "# The Service Host process applies Active Directory changes to IIS every 15 minutes,",
        "# even if IIS is restarted: allow for that delay before testing.",
        "",
        "# 3. The same change made with appcmd on the server (for reference):",
        *[f"# {_appcmd_set(o.target.path, 'None')}" for o in changed],
        "",
        *_rollback_of_the_file(result),
        *_load_iis_api(changed),
        *[f"# {_inverse(o)}" for o in changed],
        "#    then recycle the same application pools.",
    ]
    # backslashreplace: a file name that is not UTF-8 (written only in the first comment) keeps
    # its other bytes as \udcff escapes, as in the JSON report, and the script stays UTF-8.
    return codecs.BOM_UTF8 + ("\r\n".join(lines) + "\r\n").encode("utf-8", "backslashreplace")


def _check_names(names: list[str], source: str, option: str) -> None:
    for text in names:
        if any(_unsafe(char) for char in text):
            raise Refused(
                [
                    f"cannot write a safe runbook: {text!r} holds a control or formatting "
                    "character, which could end a comment or hide what the script does; leave "
                    f"out {option}, or rename it"
                ],
                source=source,
            )


def _escaped(text: str) -> str:
    """`text` with each unsafe character written as its Python escape (\\u202e), as stderr
    writes the control characters (shown() has done those already)."""
    return "".join(repr(char)[1:-1] if _unsafe(char) else char for char in text)


def _unsafe(char: str) -> bool:
    return char != "\t" and unicodedata.category(char) in _UNSAFE_CATEGORIES


def _rollback_of_the_file(result: Result) -> list[str]:
    """How to undo the change to the file itself: a UTF-16 file's diff is UTF-8 text for
    review, which neither git apply nor patch applies (see the diff-not-applicable note)."""
    if result.document.encoding.is_utf8:
        return [
            "# 4. Rollback: apply the diff in reverse to the file (git apply -R / patch -R -p1),",
            "#    or on the server:",
        ]
    return [
        f"# 4. Rollback: put back the original file (the file is {result.document.encoding.label},",
        "#    and its diff applies neither with git apply nor with patch: keep a --backup of it),",
        "#    or on the server:",
    ]


def _warnings(warned: list[str]) -> list[str]:
    """What confedit warned of when it patched the file, for the operator who runs the script
    on the server without its output (some warnings are answered there: the web.config files
    that could override sslFlags, MRSProxy's SSL bridging on the load balancer)."""
    if not warned:
        return []
    return ["# confedit warned, when it patched the file:", *[f"#   {w}" for w in warned], ""]


def _nothing_changed(changed: list[Outcome]) -> list[str]:
    if changed:
        return []
    return ["# Nothing changed in this file: there is nothing to deploy, recycle or roll back.", ""]


def _pools_not_named(result: Result, changed: list[Outcome]) -> list[str]:
    """Changed targets, and applications that inherit their change, whose pool the file does not
    name (no applicationPool, no defaults); a target only pinned keeps its policy, and needs no
    recycle (see Plan.pools)."""
    paths = [o.target.path for o in changed if not o.pool and not o.pinned]
    return [
        f"#    The pool of {path} is not named in the file: recycle it by hand."
        for path in [*paths, *result.plan.apps_without_pool]
    ]


def _ps(text: str) -> str:
    """Quote for a single-quoted PowerShell string: each quote doubled, `$` and `` ` `` literal."""
    return "".join(char * 2 if char in _SINGLE_QUOTES else char for char in text)


def _appcmd_set(path: str, value: str) -> str:
    flags = f"'/sslFlags:{_ps(value)}'"
    return f"{APPCMD} set config '{_ps(path)}' /section:access {flags} /commit:APPHOST"


def _inverse(outcome: Outcome) -> str:
    """The command that restores the value before the change."""
    path = _ps(outcome.target.path)
    if not outcome.inherited:
        return _appcmd_set(outcome.target.path, outcome.before.value)
    if _access_was_there(outcome):
        # Clearing the section would delete the <access> the file had, with its locks.
        return (
            "$iis = New-Object Microsoft.Web.Administration.ServerManager; "
            "$iis.GetApplicationHostConfiguration().GetSection("
            f"'system.webServer/security/access', '{path}').GetAttribute('sslFlags').Delete(); "
            "$iis.CommitChanges()"
        )
    # The change created <access>: clearing the section at this path lets it inherit again.
    return f"{APPCMD} clear config '{path}' /section:access /commit:APPHOST"


def _access_was_there(outcome: Outcome) -> bool:
    """Whether the change added sslFlags to an <access> of the file's (one without it)."""
    return outcome.inherited and not outcome.created


def _load_iis_api(changed: list[Outcome]) -> list[str]:
    if any(_access_was_there(o) for o in changed):
        return [f"# {_LOAD_IIS_API}"]
    return []
