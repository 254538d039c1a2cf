"""Build small, valid applicationHost.config documents from a description (no Hypothesis needed).

>>> from confedit.testing.build import App, Loc, Site, Style, render
>>> raw = render(
...     [Site("Default Web Site", (App("/"), App("/owa", "MSExchangeOWAAppPool")))],
...     [Loc("Default Web Site", "Ssl, Ssl128"), Loc("Default Web Site/owa", shape="security")],
...     Style(newline="\\n", bom=False),
... )
>>> b'<location path="Default Web Site/owa">' in raw
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Shape = Literal["access", "security", "webserver", "empty", "self-closed"]


@dataclass(frozen=True)
class App:
    path: str  # "/" or "/owa"
    pool: str | None = None
    directories: tuple[str, ...] = ()  # extra virtual directories: "/bin"


@dataclass(frozen=True)
class Site:
    name: str
    applications: tuple[App, ...] = (App("/"),)


@dataclass(frozen=True)
class Loc:
    """A <location>. `shape` says how far its system.webServer/security/access chain goes:
    access (with `ssl_flags` if not None), security (no access), webserver (no security),
    empty (<location></location>), self-closed (<location path="..." />)."""

    path: str
    ssl_flags: str | None = None
    shape: Shape = "access"
    token_checking: str | None = None  # windowsAuthentication/extendedProtection@tokenChecking
    attributes: tuple[tuple[str, str], ...] = ()  # on <location>: overrideMode, ...
    access_attributes: tuple[tuple[str, str], ...] = ()  # on <access>: lockAttributes, ...
    comment: str | None = None  # a comment placed inside <security>


@dataclass(frozen=True)
class Style:
    newline: str = "\r\n"
    indent: str = "    "
    bom: bool = True
    quote: str = '"'
    header_comment: bool = True  # a comment holding a sample <location>, as real files have
    blank_lines: bool = False  # a blank line between locations


def render(
    sites: Sequence[Site],
    locations: Sequence[Loc],
    style: Style = Style(),
    server_ssl_flags: str = "None",
) -> bytes:
    """The bytes of a well-formed applicationHost.config."""
    lines = _Writer(style)
    lines.add(0, '<?xml version="1.0" encoding="UTF-8"?>')
    if style.header_comment:
        lines.add(0, "<!--")
        lines.add(1, "The recommended way to unlock sections is by using a location tag:")
        lines.add(1, f'<location path={_q("Default Web Site", style)} overrideMode="Allow">')
        lines.add(2, '<system.webServer><security><access sslFlags="Ssl" /></security>')
        lines.add(2, "</system.webServer>")
        lines.add(1, "</location>")
        lines.add(0, "-->")
    lines.add(0, "<configuration>")
    lines.add(1, "<system.applicationHost>")
    lines.add(2, "<sites>")
    for site in sites:
        _site(lines, site, style)
    lines.add(3, f"<applicationDefaults applicationPool={_q('DefaultAppPool', style)} />")
    lines.add(2, "</sites>")
    lines.add(1, "</system.applicationHost>")
    lines.add(1, "<system.webServer>")
    lines.add(2, "<security>")
    lines.add(3, f"<access sslFlags={_q(server_ssl_flags, style)} />")
    lines.add(2, "</security>")
    lines.add(1, "</system.webServer>")
    for location in locations:
        if style.blank_lines:
            lines.blank()
        _location(lines, location, style)
    lines.add(0, "</configuration>")
    data = lines.text().encode("utf-8")
    return b"\xef\xbb\xbf" + data if style.bom else data


class _Writer:
    def __init__(self, style: Style) -> None:
        self.style = style
        self.lines: list[str] = []

    def add(self, level: int, text: str) -> None:
        self.lines.append(self.style.indent * level + text)

    def blank(self) -> None:
        self.lines.append("")

    def text(self) -> str:
        newline = self.style.newline
        return newline.join(self.lines) + newline


def _q(value: str, style: Style) -> str:
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(style.quote, _entity(style))
    return f"{style.quote}{escaped}{style.quote}"


def _entity(style: Style) -> str:
    return "&quot;" if style.quote == '"' else "&apos;"


def _attrs(pairs: Sequence[tuple[str, str]], style: Style) -> str:
    return "".join(f" {name}={_q(value, style)}" for name, value in pairs)


_PHYSICAL = "C:\\inetpub\\wwwroot"


def _site(lines: _Writer, site: Site, style: Style) -> None:
    lines.add(3, f"<site name={_q(site.name, style)} id={_q('1', style)}>")
    for app in site.applications:
        pool = _attrs([("applicationPool", app.pool)], style) if app.pool else ""
        lines.add(4, f"<application path={_q(app.path, style)}{pool}>")
        for directory in ("/", *app.directories):
            where = _attrs([("path", directory), ("physicalPath", _PHYSICAL)], style)
            lines.add(5, f"<virtualDirectory{where} />")
        lines.add(4, "</application>")
    lines.add(3, "</site>")


def _location(lines: _Writer, loc: Loc, style: Style) -> None:
    head = f"<location path={_q(loc.path, style)}{_attrs(loc.attributes, style)}"
    if loc.shape == "self-closed":
        lines.add(1, head + " />")
        return
    lines.add(1, head + ">")
    if loc.shape != "empty":
        lines.add(2, "<system.webServer>")
        if loc.shape in ("access", "security"):
            _security(lines, loc, style)
        lines.add(2, "</system.webServer>")
    lines.add(1, "</location>")


def _security(lines: _Writer, loc: Loc, style: Style) -> None:
    lines.add(3, "<security>")
    if loc.comment is not None:
        lines.add(4, f"<!-- {loc.comment} -->")
    if loc.shape == "access":
        flags = [("sslFlags", loc.ssl_flags)] if loc.ssl_flags is not None else []
        lines.add(4, f"<access{_attrs([*flags, *loc.access_attributes], style)} />")
    if loc.token_checking is not None:
        lines.add(4, "<authentication>")
        lines.add(5, f"<windowsAuthentication enabled={_q('true', style)}>")
        lines.add(6, f"<extendedProtection tokenChecking={_q(loc.token_checking, style)} />")
        lines.add(5, "</windowsAuthentication>")
        lines.add(4, "</authentication>")
    lines.add(3, "</security>")


EXCHANGE_FRONT_END = Site(
    "Default Web Site",
    (
        App("/", "MSExchangeOWAAppPool"),
        App("/owa", "MSExchangeOWAAppPool"),
        App("/owa/Integrated", "MSExchangeOWAAppPool"),
        App("/ecp", "MSExchangeECPAppPool"),
        App("/EWS", "MSExchangeServicesAppPool"),
        App("/Autodiscover", "MSExchangeAutodiscoverAppPool"),
        App("/Microsoft-Server-ActiveSync", "MSExchangeSyncAppPool"),
        App("/OAB", "MSExchangeOABAppPool"),
        App("/mapi", "MSExchangeMapiFrontEndAppPool"),
        App("/Rpc", "MSExchangeRpcProxyFrontEndAppPool"),
    ),
)
EXCHANGE_BACK_END = Site(
    "Exchange Back End",
    (
        App("/"),
        App("/owa", "MSExchangeOWAAppPool"),
        App("/PowerShell", "MSExchangePowerShellAppPool"),
    ),
)
