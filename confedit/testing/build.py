"""Build small, valid applicationHost.config documents from a description (no Hypothesis needed).

>>> from confedit.testing.build import App, Loc, Site, Style, render
>>> raw = render(
...     [Site("Default Web Site", (App("/"), App("/owa", "MSExchangeOWAAppPool")))],
...     [Loc("Default Web Site", "Ssl, Ssl128"), Loc("Default Web Site/owa", shape="security")],
...     Style(newline="\\n", bom=False),
... )
>>> b'<location path="Default Web Site/owa">' in raw
True

The descriptions print only the fields that differ from their defaults, so a failing example
reads as the call that builds it:

>>> Loc("Default Web Site/owa", shape="security")
Loc('Default Web Site/owa', shape='security')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

Shape = Literal["access", "security", "webserver", "empty", "self-closed"]
# Where another section goes among <access> and <authentication> in <security>: before both,
# between them (in whichever order they are), or after both.
Place = Literal["first", "between", "last"]
PLACES: Final[tuple[Place, ...]] = ("first", "between", "last")
# A mixed file: line i ends with newline[i % len(newline)].
Newline = str | tuple[str, ...]
BOMS = {"utf-8": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}


class Compact:
    """A dataclass repr that leaves out the fields equal to their defaults (required fields are
    positional), so that a description reads as the call that makes it. Hypothesis prints
    failing examples with it too (`_repr_pretty_`)."""

    def _shown(self) -> list[tuple[str | None, object]]:
        shown: list[tuple[str | None, object]] = []
        for item in dataclasses.fields(self):  # type: ignore[arg-type]  # a dataclasses mixin
            value = getattr(self, item.name)
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                shown.append((None, value))
            elif value != item.default:
                shown.append((item.name, value))
        return shown

    def __repr__(self) -> str:
        parts = [f"{name}={value!r}" if name else repr(value) for name, value in self._shown()]
        return f"{type(self).__name__}({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The same as repr(), broken over lines by Hypothesis's (and IPython's) printer."""
        del cycle  # descriptions hold no cycles
        name = type(self).__name__
        with printer.group(len(name) + 1, name + "(", ")"):
            for index, (field_name, value) in enumerate(self._shown()):
                if index:
                    printer.text(",")
                    printer.breakable()
                if field_name:
                    printer.text(field_name + "=")
                printer.pretty(value)


@dataclass(frozen=True, repr=False)
class App(Compact):
    path: str  # "/" or "/owa"
    pool: str | None = None
    directories: tuple[str, ...] = ()  # extra virtual directories: "/bin"


@dataclass(frozen=True, repr=False)
class Binding(Compact):
    """A site's <binding>: Binding("http", "*:80:"), Binding("https", "*:443:mail.contoso.com",
    "1"). `ssl_flags` is a setting of the binding (SNI, ...), not the access section."""

    protocol: str
    information: str  # bindingInformation: "IP:port:host name" for http and https
    ssl_flags: str | None = None


@dataclass(frozen=True, repr=False)
class Site(Compact):
    name: str
    applications: tuple[App, ...] = (App("/"),)
    # sslFlags of an https <binding>: an SNI setting of the binding, not the access section; a
    # number ("1") as IIS Manager writes it, or names ("Sni, CentralCertStore"), as IIS reads too
    binding_ssl_flags: str | None = None
    # <binding> elements, in this order, before the one `binding_ssl_flags` writes: real sites
    # have several (http and https, on several addresses and host names).
    bindings: tuple[Binding, ...] = ()


@dataclass(frozen=True, repr=False)
class Loc(Compact):
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
    one_line: bool = False  # the whole element on one line
    # Started on the line where the element before it ends: `</location><location ...>`.
    joined: bool = False
    # <location> elements written inside this one, after its <system.webServer>: a file IIS
    # refuses to load (see generated_configs' invalid "nested-location").
    inner: tuple[Loc, ...] = ()
    # Laid out as Exchange writes its locations: other sections around <security> in
    # <system.webServer> (directoryBrowse and handlers before it, defaultDocument after it),
    # and <access> after <authentication>, as in PowerShell's or ActiveSync's location.
    sections: bool = False
    # Other sections in <security>, where among <access> and <authentication> (None: none):
    # requestFiltering with its requestLimits, as Exchange writes it for Rpc, and ipSecurity.
    request_filtering: Place | None = None
    ip_security: Place | None = None
    # A <providers> in windowsAuthentication, before its extendedProtection: <clear /> and
    # these values (None: no <providers>). Written only where token_checking is.
    providers: tuple[str, ...] | None = None
    # Sections of <system.webServer> after </security> (and after defaultDocument, which
    # `sections` writes), in this order, from AFTER_SECURITY.
    after_security: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Style(Compact):
    newline: Newline = "\r\n"
    indent: str = "    "
    bom: bool = True  # always a BOM for UTF-16
    quote: str = '"'
    header_comment: bool = True  # a comment holding a sample <location>, as real files have
    blank_lines: bool = False  # a blank line between locations
    equals: str = "="  # between an attribute's name and its value, e.g. " = "
    self_close: str = " />"  # or "/>"
    # Comments between the locations: a commented-out <location>, and one naming <location>.
    comments: bool = False
    final_newline: bool = True
    # After </configuration>, a comment and a processing instruction whose text holds
    # "</configuration>", as a tool that stamps its exports might write them.
    trailer: bool = False
    # Attribute values written with character references where a tool might use them: each
    # space as &#32;, each "e" as &#x65;, and any character outside ASCII as &#xNN;.
    references: bool = False
    encoding: str = "utf-8"  # or "utf-16-le", "utf-16-be" (declared as UTF-16)


def render(
    sites: Sequence[Site],
    locations: Sequence[Loc],
    style: Style = Style(),
    server_ssl_flags: str | None = "None",
    access_override_default: str | None = None,
) -> bytes:
    """The bytes of a well-formed applicationHost.config (`server_ssl_flags=None`: the server
    level has no <security> element, so the schema default applies). With
    `access_override_default`, <configSections> registers the access section with that
    overrideModeDefault ("Deny" in real exports; "Allow" lets any web.config set sslFlags)."""
    lines = _Writer(style)
    declared = "UTF-8" if style.encoding == "utf-8" else "UTF-16"
    lines.add(0, f'<?xml version="1.0" encoding="{declared}"?>')
    if style.header_comment:
        lines.add(0, "<!--")
        lines.add(1, "The recommended way to unlock sections is by using a location tag:")
        lines.add(1, f'<location {_attr("path", "Default Web Site", style)} overrideMode="Allow">')
        lines.add(2, '<system.webServer><security><access sslFlags="Ssl" /></security>')
        lines.add(2, "</system.webServer>")
        lines.add(1, "</location>")
        lines.add(0, "-->")
    lines.add(0, "<configuration>")
    if access_override_default is not None:
        _registration(lines, access_override_default, style)
    lines.add(1, "<system.applicationHost>")
    lines.add(2, "<sites>")
    for site in sites:
        _site(lines, site, style)
    lines.add(3, _empty("applicationDefaults", [("applicationPool", "DefaultAppPool")], style))
    lines.add(2, "</sites>")
    lines.add(1, "</system.applicationHost>")
    lines.add(1, "<system.webServer>")
    if server_ssl_flags is not None:
        lines.add(2, "<security>")
        lines.add(3, _empty("access", [("sslFlags", server_ssl_flags)], style))
        lines.add(2, "</security>")
    lines.add(1, "</system.webServer>")
    for index, location in enumerate(locations):
        if style.blank_lines and not location.joined:
            lines.blank()
        if style.comments and not location.joined:
            _comments(lines, index, location, style)
        start = len(lines.lines)
        _location(lines, location, style)
        if location.joined:
            lines.join(start)
    lines.add(0, "</configuration>")
    if style.trailer:
        lines.add(0, "<!-- exported: the file above ends at </configuration> -->")
        lines.add(0, "<?exported-by tool </configuration> ?>")
    text = lines.text()
    if style.encoding == "utf-8":
        data = text.encode("utf-8")
        return BOMS["utf-8"] + data if style.bom else data
    return BOMS[style.encoding] + text.encode(style.encoding)


def _registration(lines: _Writer, override_default: str, style: Style) -> None:
    """<configSections> as real exports begin it, registering the access section only."""
    lines.add(1, "<configSections>")
    lines.add(2, f"<sectionGroup{_attrs([('name', 'system.webServer')], style)}>")
    lines.add(3, f"<sectionGroup{_attrs([('name', 'security')], style)}>")
    registered = [("name", "access"), ("overrideModeDefault", override_default)]
    lines.add(4, _empty("section", registered, style))
    lines.add(3, "</sectionGroup>")
    lines.add(2, "</sectionGroup>")
    lines.add(1, "</configSections>")


class _Writer:
    def __init__(self, style: Style) -> None:
        self.style = style
        self.lines: list[str] = []

    def add(self, level: int, text: str) -> None:
        self.lines.append(self.style.indent * level + text)

    def blank(self) -> None:
        self.lines.append("")

    def join(self, index: int) -> None:
        """Line `index` written, without its indentation, at the end of the line before it."""
        self.lines[index - 1 : index + 1] = [self.lines[index - 1] + self.lines[index].lstrip()]

    def text(self) -> str:
        newline = self.style.newline
        cycle = (newline,) if isinstance(newline, str) else newline
        ends = [cycle[index % len(cycle)] for index in range(len(self.lines))]
        if not self.style.final_newline:
            ends[-1] = ""
        return "".join(line + end for line, end in zip(self.lines, ends, strict=True))


def _q(value: str, style: Style) -> str:
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(style.quote, _entity(style))
    # A tab or line end written as such is read as a space (attribute-value normalization).
    escaped = escaped.translate(_WHITESPACE_REFERENCES)
    if style.references:
        escaped = "".join(map(_referenced, escaped))
    return f"{style.quote}{escaped}{style.quote}"


_WHITESPACE_REFERENCES: Final = {ord(c): f"&#{ord(c)};" for c in "\t\n\r"}


def _referenced(character: str) -> str:
    if character == " ":
        return "&#32;"
    if character == "e":
        return "&#x65;"
    return character if character.isascii() else f"&#x{ord(character):x};"


def _entity(style: Style) -> str:
    return "&quot;" if style.quote == '"' else "&apos;"


def _attr(name: str, value: str, style: Style) -> str:
    return f"{name}{style.equals}{_q(value, style)}"


def _attrs(pairs: Sequence[tuple[str, str]], style: Style) -> str:
    return "".join(f" {_attr(name, value, style)}" for name, value in pairs)


def _empty(tag: str, pairs: Sequence[tuple[str, str]], style: Style) -> str:
    """A self-closed element: <tag a="b" />."""
    return f"<{tag}{_attrs(pairs, style)}{style.self_close}"


_PHYSICAL = "C:\\inetpub\\wwwroot"


def _site(lines: _Writer, site: Site, style: Style) -> None:
    lines.add(3, f"<site{_attrs([('name', site.name), ('id', '1')], style)}>")
    for app in site.applications:
        pool = [("applicationPool", app.pool)] if app.pool else []
        lines.add(4, f"<application{_attrs([('path', app.path), *pool], style)}>")
        for directory in ("/", *app.directories):
            where = [("path", directory), ("physicalPath", _PHYSICAL)]
            lines.add(5, _empty("virtualDirectory", where, style))
        lines.add(4, "</application>")
    bindings = list(site.bindings)
    if site.binding_ssl_flags is not None:
        information = _binding_information(site.binding_ssl_flags)
        bindings.append(Binding("https", information, site.binding_ssl_flags))
    if bindings:
        lines.add(4, "<bindings>")
        for binding in bindings:
            lines.add(5, _empty("binding", _binding_attributes(binding), style))
        lines.add(4, "</bindings>")
    lines.add(3, "</site>")


def _binding_attributes(binding: Binding) -> list[tuple[str, str]]:
    pairs = [("protocol", binding.protocol), ("bindingInformation", binding.information)]
    if binding.ssl_flags is None:
        return pairs
    if _sni(binding.ssl_flags) and not binding.information.rpartition(":")[2]:
        raise ValueError(f"{binding}: a binding with SNI needs a host name, which IIS requires")
    return [*pairs, ("sslFlags", binding.ssl_flags)]


def _binding_information(ssl_flags: str) -> str:
    """IP, port and host name: a binding with SNI (bit 1 of its sslFlags) needs a host name,
    which IIS refuses to leave out."""
    return "*:443:mail.contoso.com" if _sni(ssl_flags) else "*:443:"


# The flags of an https binding (IIS 10), as IIS reads them by name in any case.
_BINDING_FLAGS: Final = frozenset(
    {
        "none",
        "sni",
        "centralcertstore",
        "disablehttp2",
        "disableocspstp",
        "disablequic",
        "disabletls13",
        "disablelegacytls",
    }
)


def _sni(ssl_flags: str) -> bool:
    if ssl_flags.strip().isdigit():
        return bool(int(ssl_flags) & 1)
    names = [name.strip() for name in ssl_flags.split(",")]
    if unknown := [name for name in names if name.lower() not in _BINDING_FLAGS]:
        raise ValueError(f"binding_ssl_flags: {', '.join(unknown)} is no binding flag")
    return "sni" in {name.lower() for name in names}


def _comments(lines: _Writer, index: int, loc: Loc, style: Style) -> None:
    """Text that looks like configuration but is not: IIS ignores comments."""
    if index % 2 == 0:
        lines.add(1, f"<!-- <location {_attr('path', loc.path, style)}>")
        lines.add(2, '<system.webServer><security><access sslFlags="Ssl" /></security>')
        lines.add(2, "</system.webServer></location> -->")
    else:
        lines.add(1, f"<!-- a <location path=...> for {loc.path} follows -->")


def _location(lines: _Writer, loc: Loc, style: Style, level: int = 1) -> None:
    head = f"<location{_attrs([('path', loc.path), *loc.attributes], style)}"
    if loc.shape == "self-closed" and not loc.inner:
        lines.add(level, head + style.self_close)
        return
    if loc.one_line:
        inner = _Writer(dataclasses.replace(style, indent="", newline=""))
        _location_body(inner, loc, style, 0)
        lines.add(level, head + ">" + "".join(inner.lines) + "</location>")
        return
    lines.add(level, head + ">")
    _location_body(lines, loc, style, level + 1)
    lines.add(level, "</location>")


def _location_body(lines: _Writer, loc: Loc, style: Style, level: int) -> None:
    if loc.shape not in ("empty", "self-closed"):
        lines.add(level, "<system.webServer>")
        if loc.sections:
            lines.add(level + 1, _empty("directoryBrowse", [("enabled", "false")], style))
            lines.add(level + 1, _empty("handlers", [("accessPolicy", "Read, Script")], style))
        if loc.shape in ("access", "security"):
            _security(lines, loc, style, level + 1)
        if loc.sections:
            lines.add(level + 1, _empty("defaultDocument", [("enabled", "true")], style))
        for name in loc.after_security:
            _section_after_security(lines, name, style, level + 1)
        lines.add(level, "</system.webServer>")
    for inner in loc.inner:
        _location(lines, inner, style, level)


def _checked_place(place: str) -> str:
    if place not in PLACES:
        raise ValueError(f"{place!r} is no place in <security>: use one of {PLACES}")
    return place


# Writes one child of <security> at a level.
Writing = Callable[["_Writer", Loc, Style, int], None]


def _security(lines: _Writer, loc: Loc, style: Style, level: int) -> None:
    lines.add(level, "<security>")
    if loc.comment is not None:
        lines.add(level + 1, f"<!-- {loc.comment} -->")
    core: list[Writing] = []
    if loc.shape == "access":
        core.append(_access)
    if loc.token_checking is not None:
        core.append(_authentication)
    if loc.sections:  # as in PowerShell's or ActiveSync's location: <access> last
        core.reverse()
    placed: dict[str, list[Writing]] = {place: [] for place in PLACES}
    extras: tuple[tuple[str | None, Writing], ...] = (
        (loc.request_filtering, _request_filtering),
        (loc.ip_security, _ip_security),
    )
    for place, write in extras:
        if place is not None:
            placed[_checked_place(place)].append(write)
    for write in (*placed["first"], *core[:1], *placed["between"], *core[1:], *placed["last"]):
        write(lines, loc, style, level + 1)
    lines.add(level, "</security>")


def _authentication(lines: _Writer, loc: Loc, style: Style, level: int) -> None:
    lines.add(level, "<authentication>")
    lines.add(level + 1, f"<windowsAuthentication {_attr('enabled', 'true', style)}>")
    if loc.providers is not None:
        lines.add(level + 2, "<providers>")
        lines.add(level + 3, f"<clear{style.self_close}")
        for value in loc.providers:
            lines.add(level + 3, _empty("add", [("value", value)], style))
        lines.add(level + 2, "</providers>")
    token = _empty("extendedProtection", [("tokenChecking", str(loc.token_checking))], style)
    lines.add(level + 2, token)
    lines.add(level + 1, "</windowsAuthentication>")
    lines.add(level, "</authentication>")


Pairs = tuple[tuple[str, str], ...]
# A section as real exports write it: its tag, attributes and self-closed children.
Section = tuple[str, Pairs, tuple[tuple[str, Pairs], ...]]
# requestFiltering as Exchange writes it in Rpc's location (requests up to 2 GB).
_REQUEST_FILTERING: Final[Section] = (
    "requestFiltering",
    (),
    (("requestLimits", (("maxAllowedContentLength", "2147483648"),)),),
)
_IP_SECURITY: Final[Section] = (
    "ipSecurity",
    (("allowUnlisted", "true"),),
    (("add", (("ipAddress", "192.0.2.1"), ("allowed", "false"))),),
)
# A filter needs its path (IIS refuses one without it).
_OWA_AUTH: Final = ("path", "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\owaauth.dll")
_AFTER_SECURITY: Final[dict[str, Section]] = {
    "isapiFilters": (
        "isapiFilters",
        (),
        (
            ("clear", ()),
            ("filter", (("name", "Exchange OWA Cookie Authentication ISAPI Filter"), _OWA_AUTH)),
        ),
    ),
    "httpErrors": ("httpErrors", (("existingResponse", "PassThrough"),), ()),
    "staticContent": (
        "staticContent",
        (),
        (("clientCache", (("cacheControlMode", "UseMaxAge"),)),),
    ),
    "urlCompression": (
        "urlCompression",
        (("doStaticCompression", "true"), ("doDynamicCompression", "true")),
        (),
    ),
}
# The sections Exchange writes in a location's <system.webServer> after </security> (and
# after defaultDocument), in the order real exports have them.
AFTER_SECURITY: Final = tuple(_AFTER_SECURITY)


def _request_filtering(lines: _Writer, loc: Loc, style: Style, level: int) -> None:
    del loc  # the same in every location
    _section(lines, _REQUEST_FILTERING, style, level)


def _ip_security(lines: _Writer, loc: Loc, style: Style, level: int) -> None:
    del loc  # the same in every location
    _section(lines, _IP_SECURITY, style, level)


def _section_after_security(lines: _Writer, name: str, style: Style, level: int) -> None:
    if name not in _AFTER_SECURITY:
        raise ValueError(f"after_security: {name} is none of {', '.join(AFTER_SECURITY)}")
    _section(lines, _AFTER_SECURITY[name], style, level)


def _section(lines: _Writer, section: Section, style: Style, level: int) -> None:
    tag, attributes, children = section
    if not children:
        lines.add(level, _empty(tag, attributes, style))
        return
    lines.add(level, f"<{tag}{_attrs(attributes, style)}>")
    for child, pairs in children:
        lines.add(level + 1, _empty(child, pairs, style))
    lines.add(level, f"</{tag}>")


def _access(lines: _Writer, loc: Loc, style: Style, level: int) -> None:
    if loc.shape == "access":
        flags = [("sslFlags", loc.ssl_flags)] if loc.ssl_flags is not None else []
        lines.add(level, _empty("access", [*flags, *loc.access_attributes], style))


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
EXCHANGE_BACK_END = Site(  # as Exchange 2013-2019 Mailbox servers define it
    "Exchange Back End",
    (
        App("/"),
        App("/PowerShell", "MSExchangePowerShellAppPool"),
        App("/mapi/emsmdb", "MSExchangeMapiMailboxAppPool"),
        App("/owa", "MSExchangeOWAAppPool"),
        App("/OAB", "MSExchangeOABAppPool"),
        App("/ecp", "MSExchangeECPAppPool"),
        App("/Autodiscover", "MSExchangeAutodiscoverAppPool"),
        App("/Microsoft-Server-ActiveSync", "MSExchangeSyncAppPool"),
        App("/EWS", "MSExchangeServicesAppPool"),
    ),
)
