"""The Exchange catalogue: the services of the SSL-offloading procedure and the sites' rules."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Service:
    name: str  # the --service name
    directory: str  # the virtual directory under the front-end site, as Microsoft spells it
    default: bool = True


SERVICES: Final = (
    Service("owa", "owa"),
    Service("ecp", "ecp"),
    Service("ews", "EWS"),
    Service("autodiscover", "Autodiscover"),
    # The seed's ActiveSync step names "Default Web Site/MSExchangeSyncAppPool", an application
    # pool; the path is Microsoft-Server-ActiveSync, as in the same document's script.
    Service("eas", "Microsoft-Server-ActiveSync"),
    Service("oab", "OAB"),
    Service("mapi", "MAPI"),
    Service("rpc", "Rpc", default=False),
)
SERVICE_BY_NAME: Final = {service.name: service for service in SERVICES}
DEFAULT_SERVICES: Final = tuple(service.name for service in SERVICES if service.default)

FRONT_END_SITE: Final = "Default Web Site"
BACK_END_SITE: Final = "Exchange Back End"

BACK_END_REASON: Final = (
    "the Exchange Back End site must keep requiring SSL: the front end proxies to it over SSL, "
    "and Microsoft's procedure says to make no change to it"
)

# The Back End's paths that Exchange itself leaves on sslFlags="None" (every export with the
# Mailbox role has them): anonymous calendar publishing, and RPC over HTTP's back end.
BACK_END_WITHOUT_SSL: Final = ("owa/Calendar", "Rpc", "RpcWithCert")

# The sslFlags Exchange Setup writes in the Back End, the same in every export with the Mailbox
# role (2013 to 2019): the site's, which its other paths inherit, and the paths with their own.
# Keyed by the path below the site, folded.
_BACK_END_SETUP_SSL: Final = {
    "": "Ssl, Ssl128",
    "mapi/emsmdb": "Ssl",
    "mapi/nspi": "Ssl",
    "powershell": "Ssl, SslNegotiateCert, Ssl128",
}


def back_end_setup_ssl(below_site: str) -> str:
    """The sslFlags Exchange Setup writes at a Back End path (given below the site, folded), or
    that the path inherits from where Setup writes it."""
    key = below_site
    while key not in _BACK_END_SETUP_SSL:
        key = key.rpartition("/")[0]
    return _BACK_END_SETUP_SSL[key]


# An empty or blank site's name (IIS names no site so), given to --site or the library.
BLANK_SITE: Final = (
    "a site name cannot be empty ({site!r}; the default is '" + FRONT_END_SITE + "')"
)
# A --site naming the Back End: refused by both commands.
BACK_END_AS_FRONT_END: Final = (
    "the site '{site}' is the Exchange Back End: "
    + BACK_END_REASON
    + f"; leave out --site, whose default is the front-end site, '{FRONT_END_SITE}'"
)


EXTENDED_PROTECTION_STATEMENT: Final = (
    'Microsoft: "Extended Protection is not supported in environments that use SSL offloading. '
    'SSL termination during SSL offloading causes Extended Protection to fail."'
)
EXTENDED_PROTECTION_ADVICE: Final = (
    "keep SSL to the server (SSL bridging: the load balancer re-encrypts), or turn Extended "
    'Protection off for these directories first (tokenChecking="None" on the '
    "<extendedProtection> at each line named); --allow-extended-protection proceeds anyway"
)
MRSPROXY_DIRECTORY: Final = "ews/mrsproxy.svc"
MRSPROXY_REASON: Final = (
    "MRSProxy does not support SSL offloading (Microsoft's procedure: use SSL bridging for it)"
)
MRSPROXY_WARNING: Final = (
    "MRSProxy (EWS/mrsproxy.svc) lives under EWS and is offloaded with it, which Microsoft "
    "does not support: if you move mailboxes through MRSProxy, use SSL bridging for it"
)
NOT_A_CAS: Final = (
    "no Exchange front-end virtual directories in '{site}' — is this a Client Access server?"
)
# What an offload refused with NOT_A_CAS can do: a Mailbox-only or plain IIS server's export
# has nothing of the procedure's to offload.
NOT_A_CAS_ADVICE: Final = (
    "if not, leave this file out of the run; to offload other paths of it, name them with --path"
)
# A misspelt --site rather than a server's role.
UNKNOWN_SITE: Final = (
    "the site '{site}' is not in <sites>; name the front-end site with --site (the default is "
    f"'{FRONT_END_SITE}')"
)


def unknown_site(name: str, nearest: str | Sequence[str] | None) -> str:
    """Why a site name is wrong, and what to name instead: the nearest site of the file (or of
    each file, for several), if one is near (see nearest_site), else the option and its
    default."""
    names = [nearest] if isinstance(nearest, str) else list(nearest or ())
    if not names:
        return UNKNOWN_SITE.format(site=name)
    meant = " or ".join(f"'{site}'" for site in names)
    return f"the site '{name}' is not in <sites>; did you mean {meant}?"


def nearest_site(name: str, sites: Iterable[str]) -> str | None:
    """The site of `sites` whose name is closest to the misspelt `name`, if one is close: a
    typo, or spaces pasted around the name (`--site " Default Web Site"`). Never the Back End,
    which no offload may name."""
    by_folded = {site.strip().casefold(): site for site in sites}
    by_folded.pop(BACK_END_SITE.casefold(), None)
    close = difflib.get_close_matches(name.strip().casefold(), list(by_folded), n=1, cutoff=0.8)
    return by_folded[close[0]] if close else None


def service_names() -> str:
    return ", ".join(service.name for service in SERVICES)
