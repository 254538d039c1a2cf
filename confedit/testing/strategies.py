"""Hypothesis strategies for applicationHost.config files (needs the `testing` extra).

    from confedit.testing import strategies as st_iis

`application_host_configs()` draws whole files as bytes; `generated_configs()` draws the same
files as `GeneratedConfig` objects, which hold the description (the `confedit.testing.build`
call that renders them) and the bytes in `.raw`. By default every file is one IIS would load and
in which nothing locks the SSL setting of the front end; the `invalid` knob asks for files IIS
would refuse, or in which a lock forbids the change.

Every strategy shrinks towards a small file with LF line endings, no BOM and few locations, and
failing examples print as the builder call that makes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final

try:
    from hypothesis import strategies as st
except ModuleNotFoundError as missing:  # the package installed without its `testing` extra
    if missing.name != "hypothesis":  # Hypothesis is there, one of its own dependencies not
        raise
    raise ModuleNotFoundError(
        "confedit.testing.strategies needs Hypothesis: install confedit[testing]",
        name=missing.name,
    ) from missing

from confedit.iis import NONE, SslFlags
from confedit.spans import fold
from confedit.testing.build import (
    AFTER_SECURITY,
    BOMS,
    EXCHANGE_BACK_END,
    EXCHANGE_FRONT_END,
    PLACES,
    App,
    Binding,
    Compact,
    Loc,
    Newline,
    Place,
    Shape,
    Site,
    Style,
    render,
)

FRONT_END: Final = "Default Web Site"
BACK_END: Final = "Exchange Back End"
# The virtual directories of the SSL-offloading procedure, as Exchange spells them in <sites>.
DEFAULT_SERVICE_APPS: Final = (
    "/owa",
    "/ecp",
    "/EWS",
    "/Autodiscover",
    "/Microsoft-Server-ActiveSync",
    "/OAB",
    "/mapi",
)
# The front end's applications a file may have: the builder's, and those real exports also
# have that no offload targets by default (owa/Calendar, a child application of owa, keeps its
# own None; API from Exchange 2016 on; PowerShell asks for client certificates, not SSL).
FRONT_END_APPS: Final = (
    *EXCHANGE_FRONT_END.applications,
    App("/owa/Calendar", "MSExchangeOWACalendarAppPool"),
    App("/owa/oma", "MSExchangeOWAAppPool"),
    App("/API", "MSExchangeRestFrontEndAppPool"),
    App("/PowerShell", "MSExchangePowerShellFrontEndAppPool"),
)
# Paths of the front end (applications, and folders below them)...
FRONT_END_PATHS: Final = (
    FRONT_END,
    *(FRONT_END + app.path for app in FRONT_END_APPS if app.path != "/"),
    f"{FRONT_END}/owa/auth",
    f"{FRONT_END}/Microsoft-Server-ActiveSync/Proxy",
    f"{FRONT_END}/ecp/auth/x",
    f"{FRONT_END}/owa/Café\x85",  # non-ASCII, and a C1 control (NEL) that HTML reads as "…"
)
# ...and paths that look like them but are something else.
LOOK_ALIKE_PATHS: Final = (
    f"{FRONT_END}/owa2",
    f"{FRONT_END}2/owa",
    f"{FRONT_END}2",
    f"{BACK_END}/owa",
    BACK_END,
    f"{BACK_END}/PowerShell",
    "Other Site",
    "",  # the server level
)
# The Back End as real exports have it: the builder's applications and the rest of a Mailbox
# server's, and the root application's virtual directories (mapi/emsmdb is an application below
# the virtual directory /mapi).
BACK_END_SITE: Final = Site(
    BACK_END,
    (
        App("/", directories=("/mapi", "/Exchange", "/Exchweb", "/Public")),
        *(app for app in EXCHANGE_BACK_END.applications if app.path != "/"),
        App("/mapi/nspi", "MSExchangeMapiAddressBookAppPool"),
        App("/API", "MSExchangeRestAppPool"),
        App("/owa/Calendar", "MSExchangeOWACalendarAppPool"),
        App("/EWS/bin", "MSExchangeServicesAppPool"),
        App("/Rpc", "MSExchangeRpcProxyAppPool"),
        App("/RpcWithCert", "MSExchangeRpcProxyAppPool"),
        App("/PushNotifications", "MSExchangePushNotificationsAppPool"),
    ),
)
# What an offload must not touch, each with a <location> in real exports: the Back End's
# counterparts of the front end's directories, owa/Calendar (which keeps its own None), virtual
# directories of its root, and folders below its applications.
BACK_END_PATHS: Final = (
    *(BACK_END + app.path for app in EXCHANGE_BACK_END.applications if app.path != "/"),
    f"{BACK_END}/owa/Calendar",
    f"{BACK_END}/mapi",
    f"{BACK_END}/Exchange",
    f"{BACK_END}/owa/auth",
    f"{BACK_END}/ecp/App_Themes",
    f"{BACK_END}/Microsoft-Server-ActiveSync/Proxy",
)
# Bindings of the front end besides its https one, as real exports have them: http and https
# on every address and on the loopback one, other protocols, host names (with SNI on https).
# None binds what binding_ssl_flags binds (*:443: and *:443:mail.contoso.com): IIS would
# refuse a second binding of the same protocol and address.
FRONT_END_BINDINGS: Final = (
    Binding("http", "*:80:"),
    Binding("net.tcp", "808:*"),
    Binding("net.pipe", "*"),
    Binding("http", "127.0.0.1:80:"),
    Binding("https", "127.0.0.1:443:"),
    Binding("http", "*:80:mail.contoso.com"),
    Binding("http", "*:80:autodiscover.contoso.com"),
    Binding("https", "*:443:autodiscover.contoso.com", "1"),
    Binding("https", "*:443:owa.contoso.com", "3"),
)
# The Back End's, as Exchange binds it (ports 81 and 444).
BACK_END_BINDINGS: Final = (
    Binding("http", "*:81:"),
    Binding("https", "*:444:"),
    Binding("net.pipe", "*"),
)
INVALID_KINDS: Final = ("duplicate-section", "bad-flags", "forbidding-lock", "nested-location")

_FLAG_NAMES: Final = ("Ssl", "SslNegotiateCert", "SslRequireCert", "Ssl128")
_FLAG_BITS: Final = (8, 32, 64, 256)
_INVALID_FLAGS: Final = (
    "Ssl, Bogus",
    "None, Ssl",
    "",
    "512",
    "1",
    "Ssl;Ssl128",
    "SslMapCert",
    "-8",
    "Ssl Ssl128",
)
_SHAPES: Final[tuple[Shape, ...]] = ("access", "security", "webserver", "empty", "self-closed")
_HARMLESS_LOCKS: Final = (
    ("lockAllAttributesExcept", "sslFlags"),
    ("lockAllAttributesExcept", "SSLFLAGS, lockItem"),
    ("lockItem", "false"),
)
_FORBIDDING_LOCKS: Final = (
    ("lockAttributes", "sslFlags"),
    ("lockAttributes", "*"),
    ("lockAttributes", "foo, SSLFLAGS"),
    ("lockAllAttributesExcept", "foo"),
    ("lockItem", "true"),
)
# windowsAuthentication's <providers> as real exports have them: <clear /> and these.
_PROVIDERS: Final = (("Negotiate", "NTLM"), (), ("NTLM",))
_COMMENTS: Final = (
    'a <location path="Default Web Site/owa"> that is no configuration',
    "kept",
    # End tags too, balanced: what a scanner that does not skip comments takes for elements
    '</security></system.webServer></location><location path="Default Web Site/ecp">'
    "<system.webServer><security> nor this",
)


# --- small building blocks -------------------------------------------------------------------


def ssl_flags(*, valid: bool = True) -> st.SearchStrategy[str]:
    """Values of access@sslFlags IIS accepts: flag names in any case and spacing, or a number.

    With `valid=False`: values IIS rejects ("Flags must be some combination of ...").

    >>> from hypothesis import given
    >>> from confedit.iis import SslFlags
    >>> @given(ssl_flags())
    ... def test_iis_accepts_every_value(value):
    ...     SslFlags.parse(value)  # raises ValueError for a value IIS rejects
    >>> test_iis_accepts_every_value()
    """
    if not valid:
        return st.sampled_from(_INVALID_FLAGS)
    return st.one_of(st.sampled_from(("None", "none", "NONE")), _flag_names(), _flag_number())


def _flag_names() -> st.SearchStrategy[str]:
    def spell(name: str) -> st.SearchStrategy[str]:
        return st.sampled_from((name, name.lower(), name.upper()))

    names = st.lists(st.sampled_from(_FLAG_NAMES), min_size=1, max_size=4, unique=True)
    spelled = names.flatmap(lambda chosen: st.tuples(*(spell(name) for name in chosen)))
    separator = st.sampled_from((",", ", ", " , ", " ,"))
    edge = st.sampled_from(("", " "))
    # tuples + map rather than builds: a failing example then shows the value itself
    parts = st.tuples(spelled, separator, edge, edge)
    return parts.map(lambda p: p[2] + p[1].join(p[0]) + p[3])


def _flag_number() -> st.SearchStrategy[str]:
    return st.sets(st.sampled_from(_FLAG_BITS)).map(lambda bits: str(sum(bits)))


def location_paths(*, look_alikes: bool = True, casing: bool = True) -> st.SearchStrategy[str]:
    """Location paths around the Exchange front end: the site, its virtual directories and
    folders below them, and (with `look_alikes`) paths that only look like them:
    `Default Web Site/owa2`, `Default Web Site2/owa`, `Exchange Back End/owa`, the server level.
    With `casing`, each part of the path as written, in lower case or in upper case, as admin
    scripts and IIS Manager write them (`Default Web Site/OWA`, `DEFAULT WEB SITE/owa`), with or
    without one trailing slash.

    >>> from hypothesis import given
    >>> @given(location_paths())
    ... def test_paths_are_relative(path):
    ...     assert not path.startswith("/")
    >>> test_paths_are_relative()
    """
    pool = FRONT_END_PATHS + (LOOK_ALIKE_PATHS if look_alikes else ())
    paths = st.sampled_from(pool)
    if not casing:
        return paths
    # "as-is" first: a failing example shrinks to the path as the pool spells it.
    cases = st.tuples(*[st.sampled_from(tuple(_CASES))] * _MOST_PARTS)
    return st.tuples(paths, cases, st.booleans()).map(_spell)


_CASES: Final[dict[str, Callable[[str], str]]] = {
    "as-is": str,
    "lower": str.lower,
    "upper": str.upper,
}
_MOST_PARTS: Final = max(path.count("/") + 1 for path in FRONT_END_PATHS + LOOK_ALIKE_PATHS)


def _spell(spelling: tuple[str, tuple[str, ...], bool]) -> str:
    path, cases, slash = spelling
    parts = path.split("/")
    spelled = "/".join(_CASES[case](part) for part, case in zip(parts, cases, strict=False))
    return spelled + "/" if slash and spelled else spelled


def formatting_styles(
    *, encodings: Sequence[str] = ("utf-8",), mixed_newlines: bool = True
) -> st.SearchStrategy[Style]:
    """How a file is written: LF, CRLF or mixed line endings, indentation (spaces of any width,
    tabs), BOM, attribute quoting and spacing, character references in attribute values,
    comments that contain `<location>` text (commented-out locations among them), blank lines,
    a final newline, a comment and a processing instruction after the root that hold
    "</configuration>", and the `encodings` asked for ("utf-8", "utf-16-le", "utf-16-be").
    `mixed_newlines=False` leaves out files that mix CRLF and LF line endings.

    >>> from hypothesis import given
    >>> from confedit.testing.build import Site, render
    >>> @given(formatting_styles(encodings=("utf-8", "utf-16-le")))
    ... def test_utf8_files_declare_utf8(style):
    ...     raw = render([Site("Default Web Site")], [], style)
    ...     assert (b'encoding="UTF-8"' in raw) == (style.encoding == "utf-8")
    >>> test_utf8_files_declare_utf8()
    """
    encodings = _checked_encodings(encodings)
    newline: st.SearchStrategy[Newline] = st.sampled_from(("\n", "\r\n"))
    if mixed_newlines:
        mixed = st.lists(st.sampled_from(("\r\n", "\n")), max_size=3)
        newline = newline | mixed.map(lambda rest: ("\r\n", "\n", *rest))
    indent = st.sampled_from(("    ", "  ", "\t")) | st.integers(1, 8).map(lambda n: " " * n)
    return st.builds(
        Style,
        # Drawn first: drawn last, it led the shrinker to a less readable minimal file.
        references=st.booleans(),
        newline=newline,
        indent=indent,
        bom=st.booleans(),
        quote=st.sampled_from(('"', "'")),
        header_comment=st.booleans(),
        blank_lines=st.booleans(),
        equals=st.sampled_from(("=", " = ")),
        self_close=st.sampled_from((" />", "/>")),
        comments=st.booleans(),
        final_newline=st.booleans().map(lambda missing: not missing),
        encoding=st.sampled_from(encodings),
        trailer=st.booleans(),
    )


def _checked_encodings(encodings: Iterable[str]) -> tuple[str, ...]:
    """The encodings, read once (an iterator is used up by reading it), refused at the call
    where they would fail only when a file is rendered (a KeyError) or drawn."""
    known = tuple(BOMS)
    if isinstance(encodings, str):
        raise TypeError(f"encodings takes a list, such as encodings=({encodings!r},)")
    if not isinstance(encodings, Iterable):
        raise TypeError(
            f"encodings takes a list, such as encodings=({known[0]!r},): got {encodings!r}"
        )
    asked = tuple(encodings)
    unknown = sorted(set(asked) - set(known))
    if unknown:
        raise ValueError(f"unknown encodings: {unknown}; use {known}")
    if not asked:
        raise ValueError(f"encodings takes at least one of {known}")
    return asked


# --- whole files -----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class GeneratedConfig(Compact):
    """A drawn applicationHost.config: its description and its bytes.

    `raw` is `render(sites, locations, style, server_ssl_flags, access_override_default)` from
    confedit.testing.build; `invalid` names what makes the file one IIS would refuse to load or
    to change (empty unless the strategy's `invalid` knob asked for it).
    """

    sites: tuple[Site, ...]
    locations: tuple[Loc, ...]
    style: Style
    server_ssl_flags: str | None
    invalid: frozenset[str] = frozenset()
    access_override_default: str | None = None

    @cached_property
    def raw(self) -> bytes:
        """The file's bytes, BOM included."""
        return render(
            self.sites,
            self.locations,
            self.style,
            self.server_ssl_flags,
            self.access_override_default,
        )

    @property
    def text(self) -> str:
        """The file's text (without the BOM), whatever its encoding."""
        return self.raw[len(self.bom) :].decode(self.style.encoding)

    @property
    def bom(self) -> bytes:
        """The byte order mark the file starts with, or b""."""
        utf16 = self.style.encoding != "utf-8"
        return BOMS[self.style.encoding] if self.style.bom or utf16 else b""

    def site(self, name: str) -> Site | None:
        """The site of that name (any case), if the file has it."""
        return next((s for s in self.sites if fold(s.name) == fold(name)), None)

    def site_paths(self, name: str = FRONT_END) -> list[str]:
        """Location paths of the site's applications and virtual directories, per <sites>."""
        site = self.site(name)
        if site is None:
            return []
        paths: list[str] = []
        for app in site.applications:
            base = site.name if app.path == "/" else site.name + app.path
            paths += [base, *(base + directory for directory in app.directories)]
        return paths


def generated_configs(
    *,
    back_end: bool | None = None,
    other_sites: bool = True,
    look_alikes: bool = True,
    max_locations: int | None = 8,
    extended_protection: bool = False,
    locks: bool = True,
    invalid: Collection[str] = (),
    styles: st.SearchStrategy[Style] | None = None,
) -> st.SearchStrategy[GeneratedConfig]:
    """Whole applicationHost.config files of an Exchange Client Access server, described.

    - `back_end`: with the Exchange Back End site as Exchange defines it (`BACK_END_SITE`: the
      same directories as the front end, and more), its `<location path="Exchange Back End">`
      requiring `Ssl, Ssl128` as on a real server, and up to three locations of its
      applications, virtual directories and folders below them (`BACK_END_PATHS`), drawn like
      the others, anywhere among them (None: either);
    - `other_sites`: also `Default Web Site2` and `Other Site` in `<sites>`;
    - `look_alikes`: locations whose paths only look like the targets, and the server level
      (`Exchange Back End/owa` and `Default Web Site2/owa` among them, also with
      `back_end=False` or `other_sites=False`: locations of a site `<sites>` does not have);
    - `max_locations`: at most this many drawn `<location>` elements, the Back End's (up to
      three) among them; besides them a file has only the Back End's own
      `<location path="Exchange Back End">` and the one or two that `invalid` adds. In any
      order, some with one path spelled in two ways (IIS allows that when they define
      different sections), some written on one line, some started on the line where the
      element before them ends, some laid out as Exchange writes them (other sections around
      `<security>`: directoryBrowse, handlers, defaultDocument; `<access>` after
      `<authentication>`), some with other sections in `<security>` (requestFiltering with its
      requestLimits, ipSecurity: before, between or after `<access>` and `<authentication>`),
      a `<providers>` list before `<extendedProtection>` in windowsAuthentication, or sections
      after `</security>` (`build.AFTER_SECURITY`: isapiFilters, httpErrors, staticContent,
      urlCompression), each section defined once per path; None: no limit;
    - `extended_protection`: tokenChecking may be Allow or Require (else only None);
    - `locks`: locks that leave the front end's sslFlags free (`lockAllAttributesExcept`, ...);
    - `invalid`: any of "duplicate-section" (two locations define access for one path),
      "bad-flags" (an sslFlags value IIS rejects), "forbidding-lock" (a lock on the front-end
      site that forbids the change below it), in the sites confedit checks (the front end, the
      Back End, the server level), and "nested-location" (a `<location>` inside another, of
      any site); each file has exactly one of those asked for (its `invalid` field says which);
    - `styles`: the formatting (default: `formatting_styles()`).

    The front-end site always has `/` and at least one of the seven default services, any of
    the other applications real exports have (`FRONT_END_APPS`: owa/Integrated, owa/Calendar,
    owa/oma, API, PowerShell, Rpc), and sometimes an https `<binding>` with an sslFlags of its
    own (0, 1 or 3: with SNI, bit 1, it names a host, as IIS requires), a setting of the
    binding that is not the access section, after up to four other bindings in any order
    (`FRONT_END_BINDINGS`: http and https on every address, on 127.0.0.1 and with host names,
    net.tcp, net.pipe); the Back End sometimes has its bindings (`BACK_END_BINDINGS`: ports 81
    and 444). Files may begin with `<configSections>`, which registers the access section with
    overrideModeDefault "Deny", as in real exports, or "Allow", which lets any web.config set
    sslFlags.

    >>> import confedit
    >>> from hypothesis import given
    >>> @given(generated_configs(invalid=["bad-flags"]))
    ... def test_bad_flags_are_invalid_input(config):
    ...     try:
    ...         confedit.offload(config.raw)
    ...     except confedit.InvalidInput as error:
    ...         assert "Flags must be some combination" in str(error)
    ...     else:
    ...         raise AssertionError(f"not refused: {config}")
    >>> test_bad_flags_are_invalid_input()
    """
    switches = {
        "other_sites": other_sites,
        "look_alikes": look_alikes,
        "extended_protection": extended_protection,
        "locks": locks,
    }
    _check_knobs(back_end, switches, max_locations, styles)
    return _configs(
        back_end=back_end,
        other_sites=other_sites,
        look_alikes=look_alikes,
        max_locations=max_locations,
        extended_protection=extended_protection,
        locks=locks,
        invalid=_kinds(invalid),
        styles=styles if styles is not None else formatting_styles(),
    )


def application_host_configs(
    *,
    back_end: bool | None = None,
    other_sites: bool = True,
    look_alikes: bool = True,
    max_locations: int | None = 8,
    extended_protection: bool = False,
    locks: bool = True,
    invalid: Collection[str] = (),
    styles: st.SearchStrategy[Style] | None = None,
) -> st.SearchStrategy[bytes]:
    """The bytes of `generated_configs()` files (same knobs).

    >>> import confedit
    >>> from hypothesis import given
    >>> @given(application_host_configs())
    ... def test_a_second_offload_changes_nothing(raw):
    ...     once = confedit.offload(raw).output
    ...     assert confedit.offload(once).output == once
    >>> test_a_second_offload_changes_nothing()
    """
    return generated_configs(
        back_end=back_end,
        other_sites=other_sites,
        look_alikes=look_alikes,
        max_locations=max_locations,
        extended_protection=extended_protection,
        locks=locks,
        invalid=invalid,
        styles=styles,
    ).map(lambda config: config.raw)


def _check_knobs(
    back_end: object, switches: Mapping[str, object], max_locations: object, styles: object
) -> None:
    """Refuse a misused knob at the call: Hypothesis would only fail when the first example is
    drawn, from deep inside, and a string for a switch ("false") would silently be true."""
    if back_end is not None and not isinstance(back_end, bool):
        raise TypeError(f"back_end takes True, False or None (either): got {back_end!r}")
    for name, value in switches.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} takes True or False: got {value!r}")
    # None has always meant no limit (Hypothesis's lists); it stays accepted.
    if max_locations is not None:
        if isinstance(max_locations, bool) or not isinstance(max_locations, int):
            raise TypeError(f"max_locations takes a whole number: got {max_locations!r}")
        if max_locations < 0:
            raise ValueError(f"max_locations takes a whole number, 0 or more: got {max_locations}")
    if styles is not None and not isinstance(styles, st.SearchStrategy):
        raise TypeError(
            f"styles takes a strategy, such as formatting_styles(), or st.just(Style(...)) for "
            f"one style: got {styles!r}"
        )


def _kinds(invalid: Collection[str]) -> tuple[str, ...]:
    """The kinds of invalid file asked for, in the order of INVALID_KINDS."""
    if isinstance(invalid, str) or not isinstance(invalid, Iterable):
        raise TypeError(
            f"invalid takes a list of kinds, such as invalid=['bad-flags']: got {invalid!r}"
        )
    asked = set(invalid)  # read once: an iterator is used up by reading it
    unknown = asked - set(INVALID_KINDS)
    if unknown:
        raise ValueError(f"unknown kinds of invalid file: {sorted(unknown)}; use {INVALID_KINDS}")
    return tuple(kind for kind in INVALID_KINDS if kind in asked)


@st.composite
def _configs(
    draw: st.DrawFn,
    *,
    back_end: bool | None,
    other_sites: bool,
    look_alikes: bool,
    max_locations: int | None,
    extended_protection: bool,
    locks: bool,
    invalid: tuple[str, ...],
    styles: st.SearchStrategy[Style],
) -> GeneratedConfig:
    style = draw(styles)
    sites = [draw(_front_end_site(look_alikes))]
    with_back_end = back_end or (back_end is None and draw(st.booleans()))
    if with_back_end:
        bound = draw(st.booleans())
        sites.append(
            dataclasses.replace(BACK_END_SITE, bindings=BACK_END_BINDINGS if bound else ())
        )
    if other_sites and draw(st.booleans()):
        sites += [Site(f"{FRONT_END}2", (App("/"), App("/owa"))), Site("Other Site")]
    paths = location_paths(look_alikes=look_alikes)
    drawn = st.lists(_locations(paths, extended_protection, locks), max_size=max_locations)
    locations = draw(drawn)
    back_end_locations = []
    if with_back_end:
        back_end_paths = st.sampled_from(BACK_END_PATHS)
        room = 3 if max_locations is None else min(3, max_locations - len(locations))
        own = st.lists(_locations(back_end_paths, extended_protection, locks), max_size=room)
        back_end_locations = [Loc(BACK_END, "Ssl, Ssl128"), *draw(own)]
    server = draw(st.just("None") | ssl_flags() | (st.none() if not invalid else st.nothing()))
    # Made loadable in this order, so that the Back End's own location keeps its access
    # section whatever look-alike location comes before it in the file.
    loadable = _loadable([*back_end_locations, *locations], server_has_access=server is not None)
    split = len(back_end_locations)
    locations = draw(_interleaved(loadable[:split], loadable[split:]))
    # Real exports register the access section with "Deny"; "Allow" delegates it everywhere.
    registration = draw(st.none() | st.sampled_from(("Deny", "Allow")))
    config = GeneratedConfig(
        tuple(sites), tuple(locations), style, server, access_override_default=registration
    )
    if invalid:
        config = draw(_break(config, st.sampled_from(invalid), paths))
    return config


@st.composite
def _interleaved(draw: st.DrawFn, back_end: list[Loc], front: list[Loc]) -> list[Loc]:
    """The Back End's locations among the others, as real exports have them (the last location
    of a 2016 or 2019 export is the Back End's PushNotifications, after the front end's): each
    shrinks to the front, in its own order."""
    locations = list(front)
    for loc in reversed(back_end):
        locations.insert(draw(st.integers(0, len(locations))), loc)
    return locations


@st.composite
def _front_end_site(draw: st.DrawFn, look_alikes: bool) -> Site:
    by_path = {app.path: app for app in FRONT_END_APPS}
    first = draw(st.sampled_from(DEFAULT_SERVICE_APPS))
    others = draw(st.sets(st.sampled_from([p for p in by_path if p not in ("/", first)])))
    chosen = {"/", first, *others}
    apps = [app for path, app in by_path.items() if path in chosen]
    if draw(st.booleans()):  # a virtual directory below owa: a --path target that is no app
        apps = [
            dataclasses.replace(app, directories=("/auth",)) if app.path == "/owa" else app
            for app in apps
        ]
    if look_alikes and draw(st.booleans()):
        apps.append(App("/owa2"))
    binding = draw(st.none() | st.sampled_from(("0", "1", "3")))
    bindings = draw(st.lists(st.sampled_from(FRONT_END_BINDINGS), unique=True, max_size=4))
    return Site(FRONT_END, tuple(apps), binding, tuple(bindings))


@st.composite
def _locations(
    draw: st.DrawFn, paths: st.SearchStrategy[str], extended_protection: bool, locks: bool
) -> Loc:
    path = draw(paths)
    shape = draw(st.sampled_from(_SHAPES))
    tokens = ("None", "none") + (("Allow", "Require", "require") if extended_protection else ())
    attributes: list[tuple[str, str]] = []
    override = draw(st.none() | st.sampled_from(("Allow", "Deny")))
    if override:
        attributes.append(("overrideMode", override))
    if draw(st.booleans()):
        attributes.append(("inheritInChildApplications", "false"))
    return Loc(
        path,
        ssl_flags=draw(ssl_flags() | st.none()),
        shape=shape,
        token_checking=draw(st.none() | st.sampled_from(tokens)),
        attributes=tuple(attributes),
        access_attributes=draw(_harmless_locks(path) if locks else st.just(())),
        comment=draw(st.none() | st.sampled_from(_COMMENTS)),
        one_line=draw(st.booleans()),
        joined=draw(st.booleans()),
        sections=draw(st.booleans()),
        request_filtering=draw(st.none() | st.sampled_from(PLACES)),
        ip_security=draw(st.none() | st.sampled_from(PLACES)),
        providers=draw(st.none() | st.sampled_from(_PROVIDERS)),
        after_security=draw(_after_security()),
    )


def _after_security() -> st.SearchStrategy[tuple[str, ...]]:
    """Some of the sections, in the order real exports write them."""
    chosen = st.sets(st.sampled_from(AFTER_SECURITY))
    return chosen.map(lambda names: tuple(name for name in AFTER_SECURITY if name in names))


def _harmless_locks(path: str) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """Locks that never forbid offloading the front end: they spare sslFlags, or they sit
    outside the front-end site (and not at the server level above it), where nothing below
    them is a target."""
    choices = list(_HARMLESS_LOCKS)
    if _key(path).partition("/")[0] not in (fold(FRONT_END), ""):
        choices.append(("lockAttributes", "sslFlags"))
    return st.just(()) | st.sampled_from(choices).map(lambda lock: (lock,))


def _checked(path: str) -> bool:
    """Whether confedit checks this path for what IIS would refuse: it looks at the front end,
    the Back End and the server level, not at other sites, whose errors its edit cannot worsen."""
    return _key(path).partition("/")[0] in (fold(FRONT_END), fold(BACK_END), "")


def _key(path: str) -> str:
    """How IIS compares location paths: any case, one trailing slash, "." is the server level."""
    key = path[:-1] if path.endswith("/") else path
    return "" if key == "." else fold(key)


def _loadable(locations: list[Loc], *, server_has_access: bool) -> list[Loc]:
    """Drop what IIS would refuse to load: a second definition of the access section (or of
    windowsAuthentication, or of any other section) for one path. Elements the shape has no
    room for are dropped too."""
    taken: dict[str, set[str]] = {"": {"access"} if server_has_access else set()}
    result = []
    for drawn in locations:
        defined = taken.setdefault(_key(drawn.path), set())
        loc = _fit(drawn, defined)
        defined |= _sections(loc)
        result.append(loc)
    return result


def _sections(loc: Loc) -> set[str]:
    """The sections the location defines ("sections" for those `sections` writes)."""
    defined = set(loc.after_security)
    for name, present in (
        ("access", loc.shape == "access"),
        ("windowsAuthentication", loc.token_checking is not None),
        ("sections", loc.sections),
        ("requestFiltering", loc.request_filtering is not None),
        ("ipSecurity", loc.ip_security is not None),
    ):
        if present:
            defined.add(name)
    return defined


def _fit(loc: Loc, taken: Collection[str]) -> Loc:
    shape = "security" if loc.shape == "access" and "access" in taken else loc.shape
    has_security = shape in ("access", "security")
    has_web_server = shape not in ("empty", "self-closed")
    auth = has_security and "windowsAuthentication" not in taken
    token_checking = loc.token_checking if auth else None
    return dataclasses.replace(
        loc,
        shape=shape,
        ssl_flags=loc.ssl_flags if shape == "access" else None,
        access_attributes=loc.access_attributes if shape == "access" else (),
        token_checking=token_checking,
        providers=loc.providers if token_checking is not None else None,
        comment=loc.comment if has_security else None,
        one_line=loc.one_line and shape != "self-closed",
        sections=loc.sections and has_web_server and "sections" not in taken,
        request_filtering=_free(loc.request_filtering, has_security, "requestFiltering", taken),
        ip_security=_free(loc.ip_security, has_security, "ipSecurity", taken),
        after_security=tuple(
            name for name in loc.after_security if has_web_server and name not in taken
        ),
    )


def _free(place: Place | None, room: bool, section: str, taken: Collection[str]) -> Place | None:
    """Where the section goes, if the location has room for it and no other defines it."""
    return place if room and section not in taken else None


@st.composite
def _break(
    draw: st.DrawFn,
    config: GeneratedConfig,
    kinds: st.SearchStrategy[str],
    paths: st.SearchStrategy[str],
) -> GeneratedConfig:
    """The config with one kind of invalidity added."""
    kind = draw(kinds)
    locations = list(config.locations)
    server = config.server_ssl_flags
    if kind == "duplicate-section":
        path = draw(paths.filter(_checked))
        first, second = Loc(path, draw(ssl_flags())), Loc(path.swapcase(), draw(ssl_flags()))
        locations.insert(draw(st.integers(0, len(locations))), first)
        locations.insert(draw(st.integers(0, len(locations))), second)
    elif kind == "bad-flags":
        holders = [
            i for i, loc in enumerate(locations) if loc.shape == "access" and _checked(loc.path)
        ]
        where = draw(st.sampled_from([None, *holders]))  # None: the server level
        bad = draw(ssl_flags(valid=False))
        if where is None:
            server = bad
        else:
            locations[where] = dataclasses.replace(locations[where], ssl_flags=bad)
    elif kind == "nested-location":
        locations.insert(draw(st.integers(0, len(locations))), draw(_nesting(paths)))
    else:
        lock = draw(st.sampled_from(_FORBIDDING_LOCKS))
        locations = _with_a_change(_locked(locations, lock), _front_end_targets(config.sites))
    return dataclasses.replace(
        config, locations=tuple(locations), server_ssl_flags=server, invalid=frozenset({kind})
    )


def _nesting(paths: st.SearchStrategy[str]) -> st.SearchStrategy[Loc]:
    """A <location> holding another: of another site (which a large file's copy leaves out),
    of the front end or of the Back End; the inner one of any path, self-closed or not."""
    outer_paths = st.sampled_from(("Other Site/app", f"{FRONT_END}/owa", f"{BACK_END}/owa"))
    inner = st.builds(Loc, paths, ssl_flags(), shape=st.sampled_from(("access", "self-closed")))
    return st.builds(
        Loc,
        outer_paths | paths,
        shape=st.sampled_from(("webserver", "empty", "self-closed")),
        inner=inner.map(lambda loc: (loc,)),
    )


def _front_end_targets(sites: Iterable[Site]) -> list[str]:
    """The default targets that the front-end site has."""
    front = next(site for site in sites if site.name == FRONT_END)
    return [FRONT_END + app.path for app in front.applications if app.path in DEFAULT_SERVICE_APPS]


def _with_a_change(locations: list[Loc], targets: list[str]) -> list[Loc]:
    """The locations, with a change for the lock to forbid: a target whose own <access> already
    says None is left as it is, so where every target's does, the first one's requires SSL."""

    def already_none(loc: Loc, target: str) -> bool:
        flags = loc.ssl_flags
        own = _key(loc.path) == _key(target) and loc.shape == "access"
        return own and flags is not None and SslFlags.parse(flags) == NONE

    if not all(any(already_none(loc, target) for loc in locations) for target in targets):
        return locations
    first = targets[0]
    return [
        dataclasses.replace(loc, ssl_flags="Ssl") if already_none(loc, first) else loc
        for loc in locations
    ]


def _locked(locations: list[Loc], lock: tuple[str, str]) -> list[Loc]:
    """A lock on the front-end site's <access>, which every front-end path inherits."""
    site = fold(FRONT_END)
    for index, loc in enumerate(locations):
        if _key(loc.path) == site and loc.shape == "access":
            kept = tuple(a for a in loc.attributes if a[0] != "inheritInChildApplications")
            locations[index] = dataclasses.replace(loc, attributes=kept, access_attributes=(lock,))
            return locations
    return [Loc(FRONT_END, "Ssl, Ssl128", access_attributes=(lock,)), *locations]
