"""runbook.py: the operator's PowerShell steps after the change."""

from __future__ import annotations

import re

from confedit import offload
from confedit.plan import Request
from confedit.runbook import render_runbook
from tests.conftest import EXCHANGE, SAMPLES

SAMPLE = (SAMPLES / "exchange2013-cas.applicationHost.config").read_bytes()


def test_runbook_recycles_the_pools_of_changed_directories_from_the_file():
    result = offload(SAMPLE, Request(services=("owa", "oab")), name="x")
    text = render_runbook(result, "x").decode()
    pools = re.search(r"\$pools = @\(\r\n(.*?)\r\n\)", text, re.S).group(1).split("\r\n")
    assert [p.strip() for p in pools] == ["'MSExchangeOWAAppPool'", "'MSExchangeOABAppPool'"]
    assert "Restart-WebAppPool -Name $pool" in text
    assert "\n# iisreset /noforce" in text


def test_nothing_runs_without_apply_and_outlook_anywhere_stays_commented():
    text = render_runbook(offload(SAMPLE, name="x"), "x").decode()
    live = [
        line for line in text.split("\r\n") if line.strip() and not line.lstrip().startswith("#")
    ]
    assert all("Set-OutlookAnywhere" not in line and "appcmd" not in line for line in live)
    restart = next(line for line in live if "Restart-WebAppPool" in line)
    assert restart.strip().startswith("if ($Apply)")
    assert "-SSLOffloading $true" in text and "every 15 minutes" in text


def test_rollback_restores_explicit_values_and_clears_inserted_ones():
    text = render_runbook(offload(SAMPLE, name="x"), "x").decode()
    assert (
        '# & $env:windir\\system32\\inetsrv\\appcmd.exe set config "Default Web Site/OAB" /section:access /sslFlags:"Ssl, Ssl128" /commit:APPHOST'
        in text
    )
    assert (
        '# & $env:windir\\system32\\inetsrv\\appcmd.exe clear config "Default Web Site/owa" /section:access /commit:APPHOST'
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
