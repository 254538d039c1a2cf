"""`--runbook FILE.ps1`: the operator's steps after deploying the patched file, as PowerShell.

The script does nothing unless run with -Apply: without it, it only prints what it would do.
The Outlook Anywhere steps and iisreset stay commented: they are decisions, not routine.
"""

from __future__ import annotations

from typing import Final

from confedit import __version__
from confedit.engine import Result
from confedit.plan import Outcome

APPCMD: Final = r"& $env:windir\system32\inetsrv\appcmd.exe"


def render_runbook(result: Result, name: str) -> bytes:
    """The runbook for a verified result, with Windows line endings."""
    changed = [o for o in result.outcomes if o.changed]
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
        "# 1. Recycle the application pools of the changed directories.",
        "$pools = @(",
        *[f"    '{_ps(pool)}'" for pool in result.plan.pools],  # one element per line
        ")",
        "if ($Apply) { Import-Module WebAdministration }",
        "foreach ($pool in $pools) {",
        '    if ($Apply) { Restart-WebAppPool -Name $pool; Write-Host "recycled $pool" }',
        '    else { Write-Host "would recycle $pool (run with -Apply)" }',
        "}",
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
        "# 4. Rollback: apply the diff in reverse to the file (git apply -R / patch -R -p1),",
        "#    or on the server:",
        *[f"# {_inverse(o)}" for o in changed],
        "#    then recycle the same application pools.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _ps(text: str) -> str:
    """Quote for a single-quoted PowerShell string."""
    return text.replace("'", "''")


def _appcmd_set(path: str, value: str) -> str:
    return f'{APPCMD} set config "{path}" /section:access /sslFlags:"{value}" /commit:APPHOST'


def _inverse(outcome: Outcome) -> str:
    """The appcmd command that restores the value before the change."""
    if not outcome.inherited:
        return _appcmd_set(outcome.target.path, outcome.before.value)
    # It was inherited: clearing the setting at this path lets it inherit again.
    return f'{APPCMD} clear config "{outcome.target.path}" /section:access /commit:APPHOST'
