"""IIS semantics: sslFlags values, location paths, <sites>, inheritance, what IIS refuses to
load, and what unlocks the access section for a web.config (overrideMode, the section's
registration in <configSections>). The locks that forbid a change are plan.py's.

Facts and their sources are in docs/IIS-NOTES.md of the team's shared notes.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final, NamedTuple, cast

from lxml import etree

from confedit.document import Document, Location
from confedit.errors import InvalidInput, Refused
from confedit.spans import fold

FLAGS_WORDING: Final = (
    "Flags must be some combination of None, Ssl, SslNegotiateCert, SslRequireCert, Ssl128"
)
# Schema names and values (IIS_schema.xml), in ascending bit order: IIS writes them in this order.
_FLAG_BITS: Final = {"Ssl": 8, "SslNegotiateCert": 32, "SslRequireCert": 64, "Ssl128": 256}
_FLAG_BY_LOWER: Final = {name.lower(): bit for name, bit in _FLAG_BITS.items()}
_ALL_BITS: Final = sum(_FLAG_BITS.values())
CLIENT_CERT_FLAGS: Final = _FLAG_BITS["SslNegotiateCert"] | _FLAG_BITS["SslRequireCert"]


@dataclass(frozen=True, order=True)
class SslFlags:
    """A value of system.webServer/security/access@sslFlags, compared as a set of flags."""

    bits: int

    @classmethod
    def parse(cls, text: str) -> SslFlags:
        """Parse names (any case, comma-separated) or numbers; raise ValueError like IIS does."""
        return cls(_flag_bits(text))

    def __str__(self) -> str:
        names = [name for name, bit in _FLAG_BITS.items() if self.bits & bit]
        return ", ".join(names) or "None"

    @property
    def requires_ssl(self) -> bool:
        return bool(self.bits & _FLAG_BITS["Ssl"])

    @property
    def client_certificate_flags(self) -> list[str]:
        return [name for name, bit in _FLAG_BITS.items() if self.bits & bit & CLIENT_CERT_FLAGS]


NONE: Final = SslFlags(0)


@functools.lru_cache(maxsize=256)  # a file holds a handful of distinct values, many times
def _flag_bits(text: str) -> int:
    bits = 0
    tokens = [token.strip() for token in text.split(",")]
    for token in tokens:
        if token.lower() == "none" and len(tokens) == 1:
            continue
        if token.isascii() and token.isdigit() and int(token) & ~_ALL_BITS == 0:
            bits |= int(token)
        elif token.lower() in _FLAG_BY_LOWER:
            bits |= _FLAG_BY_LOWER[token.lower()]
        else:
            raise ValueError(FLAGS_WORDING)
    return bits


# --- paths -----------------------------------------------------------------------------------


# Planning asks for the keys and ancestors of the same paths many times: both are pure
# functions of a short string, so they are remembered. A real export has a few dozen paths; the
# bound lets a file with thousands of paths below a target fit too. Full (with spans.fold's
# cache of the same bound), the three hold about 22 MiB of 40-character paths: a process that
# reads many files with thousands of distinct paths each stays near that, and grows no more.
_PATHS_REMEMBERED: Final = 1 << 15


@functools.lru_cache(maxsize=_PATHS_REMEMBERED)
def path_key(path: str) -> str:
    """The comparison key of a location path: case-insensitive, one trailing slash ignored."""
    if path.endswith("/"):
        path = path[:-1]
    return "" if path == "." else fold(path)


def parent_key(key: str) -> str | None:
    """'site/a/b' -> 'site/a' -> 'site' -> '' (the server level) -> None."""
    if not key:
        return None
    return key.rpartition("/")[0]


@functools.lru_cache(maxsize=_PATHS_REMEMBERED)
def lineage(key: str) -> tuple[str, ...]:
    """The key itself, then each ancestor, ending with '' (the server level)."""
    levels: list[str] = []
    current: str | None = key
    while current is not None:
        levels.append(current)
        current = parent_key(current)
    return tuple(levels)


def is_below(key: str, ancestor: str) -> bool:
    """True when `key` lies strictly below `ancestor` (segment-wise, not by string prefix)."""
    return key != ancestor and (not ancestor or key.startswith(ancestor + "/"))


def site_of(key: str) -> str:
    return key.partition("/")[0]


# --- sites -----------------------------------------------------------------------------------


class Application(NamedTuple):
    """One <application> of a site, as the config path IIS uses for it."""

    site: str
    path: str  # "/owa"
    pool: str | None
    virtual_directories: tuple[str, ...]  # config paths of its non-root virtual directories

    @property
    def config_path(self) -> str:
        return self.site if self.path == "/" else self.site + self.path


@dataclass(frozen=True, eq=False)
class Site:
    """A <site> of <sites>; its applications are read when first asked for."""

    name: str
    element: etree._Element = field(repr=False)
    default_pool: str | None  # from <applicationDefaults> of <sites>

    @cached_property
    def applications(self) -> tuple[Application, ...]:
        pool = _default_pool(self.element) or self.default_pool
        return tuple(
            _application(self.name, app, pool) for app in self.element.iterchildren("application")
        )

    @cached_property
    def paths(self) -> dict[str, str]:
        """Every application and virtual directory of the site: path key -> its spelling."""
        paths: dict[str, str] = {}
        for app in self.applications:
            for path in (app.config_path, *app.virtual_directories):
                paths.setdefault(path_key(path), path)
        return paths

    @cached_property
    def below(self) -> dict[str, list[str]]:
        """Each path key of `paths` under each of its ancestors, in <sites> order: found in one
        pass, for the questions about the paths below each of many targets."""
        below: dict[str, list[str]] = {}
        for key in self.paths:
            for ancestor in lineage(key)[1:]:
                below.setdefault(ancestor, []).append(key)
        return below

    def config_paths(self) -> list[str]:
        """Every application and virtual directory of the site, as location paths."""
        return list(self.paths.values())

    @cached_property
    def _applications(self) -> dict[str, Application]:
        return {path_key(app.config_path): app for app in self.applications}

    def application_of(self, key: str) -> Application | None:
        """The application a config path belongs to: the nearest application at or above it."""
        for level in lineage(key):
            if level in self._applications:
                return self._applications[level]
        return None


def _read_sites(root: etree._Element, names: Collection[str] | None = None) -> dict[str, Site]:
    """The <sites> section (or only the sites `names`), keyed by case-folded site name;
    application pools filled in from the defaults."""
    sites_el = root.find("system.applicationHost/sites")
    if sites_el is None:
        return {}
    wanted = None if names is None else {fold(name) for name in names}
    server_pool = _default_pool(sites_el)
    sites: dict[str, Site] = {}
    for site_el in sites_el.iterchildren("site"):
        name = site_el.get("name", "")
        if wanted is not None and fold(name) not in wanted:
            continue
        sites[fold(name)] = Site(name, site_el, server_pool)
    return sites


def _default_pool(parent: etree._Element) -> str | None:
    defaults = next(parent.iterchildren("applicationDefaults"), None)
    return defaults.get("applicationPool") if defaults is not None else None


def _application(site: str, app_el: etree._Element, default_pool: str | None) -> Application:
    app_path = app_el.get("path", "/")
    app_config_path = site if app_path == "/" else site + app_path
    vdirs = tuple(
        app_config_path + vdir_el.get("path", "/").rstrip("/")
        for vdir_el in app_el.iterchildren("virtualDirectory")
        if vdir_el.get("path", "/") != "/"
    )
    return Application(site, app_path, app_el.get("applicationPool") or default_pool, vdirs)


# --- settings and inheritance ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # the constants below, compared and hashed by identity
class Setting:
    """An attribute of an element below <system.webServer>, and its schema default."""

    elements: tuple[str, ...]
    attribute: str
    default: str


SSL_FLAGS: Final = Setting(("security", "access"), "sslFlags", "None")
_WINDOWS_AUTH: Final = ("security", "authentication", "windowsAuthentication")
WINDOWS_AUTH_ENABLED: Final = Setting(_WINDOWS_AUTH, "enabled", "false")
TOKEN_CHECKING: Final = Setting((*_WINDOWS_AUTH, "extendedProtection"), "tokenChecking", "None")

# Not values of their own: the locks a <security> element may hold on the <access> below it
# (naming it, or every element but those named).
SECURITY_LOCK: Final = Setting(("security",), "lockElements", "")
SECURITY_LOCK_EXCEPT: Final = Setting(("security",), "lockAllElementsExcept", "")

SETTINGS: Final = (SSL_FLAGS, WINDOWS_AUTH_ENABLED, TOKEN_CHECKING)  # indexed together

_TOKEN_CHECKING_NAMES: Final = {name.lower(): name for name in ("None", "Allow", "Require")}


def token_checking_name(value: str) -> str:
    """An Extended Protection tokenChecking value as IIS names it ("none" is "None"), so that
    spellings compare and show alike; a value outside the three, as written."""
    return _TOKEN_CHECKING_NAMES.get(value.lower(), value)


SERVER_LEVEL: Final = "(server level)"
SCHEMA_DEFAULT: Final = "(schema default)"


class Definition(NamedTuple):
    """One element that sets a value at some level: inside a <location>, or at the server level.
    (A tuple: planning makes one per element of every setting it reads.)"""

    element: etree._Element
    location: Location | None  # None: <system.webServer> outside any location

    @property
    def path(self) -> str:
        return self.location.path if self.location else ""

    @property
    def where(self) -> str:
        """The level as a reader knows it: the path as the file spells it, or the server level."""
        if self.location is None or not path_key(self.location.path):  # "", "." or "/"
            return SERVER_LEVEL
        return self.location.path


@dataclass(frozen=True)
class Resolved:
    """An effective value and where it comes from."""

    value: str
    source: Definition | None  # None: the schema default

    @property
    def where(self) -> str:
        return self.source.where if self.source else SCHEMA_DEFAULT


def _registrations(root: etree._Element) -> list[etree._Element]:
    """The <section> elements that register the access section in <configSections>: inside
    the groups system.webServer, then security."""
    parents = list(root.iterchildren("configSections"))
    for group in ("system.webServer", "security"):
        parents = [
            child
            for parent in parents
            for child in parent.iterchildren("sectionGroup")
            if child.get("name") == group
        ]
    return [s for p in parents for s in p.iterchildren("section") if s.get("name") == "access"]


@functools.lru_cache(maxsize=16)  # a handful of settings: compiled once each
def _search(setting: Setting, attributes: tuple[str, ...] = ()) -> etree.XPath:
    """An XPath that finds, from the root, the elements of `setting` (those with any of
    `attributes`, if given) in the root's <system.webServer> and in that of each top-level
    <location>, in file order. The union is of the <system.webServer> elements alone, one of
    them at the server level: libxml2 merges a union's node sets with a duplicate check that
    grows with the product of their sizes (a union of 16,000 <location> elements with their
    16,000 <access> elements took 0.47 s, this path 7 ms)."""
    having = f"[{' or '.join(f'@{name}' for name in attributes)}]" if attributes else ""
    chain = "/".join(setting.elements) + having
    return etree.XPath(f"(system.webServer | location/system.webServer)/{chain}")


class Config:
    """The IIS view of a Document: locations by path, sites, and inheritance."""

    def __init__(self, document: Document) -> None:
        """The IIS view of `document`, limited to the sites it was loaded with (see load())."""
        self.document = document
        self.sites = _read_sites(document.root, document.scope)
        self.locations = document.locations()
        self._by_key: dict[str, list[Location]] = {}
        for location in self.locations:
            self._by_key.setdefault(path_key(location.path), []).append(location)
        # The document never changes, so lookups are memoised: planning asks the same
        # questions for every target and every level above it.
        self._elements: dict[Setting, list[Definition]] = {}
        self._by_level: dict[Setting, dict[str, list[Definition]]] = {}
        self._below: dict[str, list[str]] | None = None

    @cached_property
    def site_names(self) -> list[str]:
        """The name of every site in the file, also those outside the scope: for naming the
        site meant by a misspelt one."""
        return self.document.site_names()

    @cached_property
    def registrations(self) -> list[etree._Element]:
        """The <section> elements that register the access section in <configSections>: one in
        a file IIS loads (validate() refuses two). Found once: four checks read them (two of
        validate()'s, registration_allows and registration_restricts)."""
        return _registrations(self.document.root)

    @cached_property
    def registration_allows(self) -> str | None:
        """Where <configSections> registers the access section with overrideModeDefault="Allow",
        or without it (which lets any web.config set sslFlags), as a reader would name it; else
        None."""
        element = next(iter(self.registrations), None)
        if element is None:
            return None
        # The file's header comment gives each attribute of <section> with its default:
        # overrideModeDefault="Allow". A registration without it unlocks the section.
        default = element.get("overrideModeDefault")
        if default is None:
            mode = ' without overrideModeDefault, whose default is "Allow"'
        elif default.lower() == "allow":
            mode = f', overrideModeDefault="{default}"'
        else:
            return None
        line = self.document.line_of(element)
        return f"its registration in <configSections>{mode} (line {line})"

    @cached_property
    def registration_restricts(self) -> str | None:
        """Where <configSections> registers the access section so that it may not be set in a
        <location> of a path (allowLocation="false", or an allowDefinition other than
        Everywhere), as a reader would name it; else None. See the file's header comment:
        allowLocation is "Allowed in location tags", allowDefinition the "Level where it can
        be set"."""
        element = next(iter(self.registrations), None)
        if element is None:
            return None
        location = element.get("allowLocation")
        definition = element.get("allowDefinition")
        if location is not None and location.lower() == "false":
            restriction = f'allowLocation="{location}"'
        elif definition is not None and definition.lower() != "everywhere":
            restriction = f'allowDefinition="{definition}"'
        else:
            return None
        line = self.document.line_of(element)
        return f"its registration in <configSections>, {restriction} (line {line})"

    def locations_at(self, key: str) -> list[Location]:
        return self._by_key.get(key, [])

    @property
    def keys(self) -> list[str]:
        return list(self._by_key)

    def definitions(self, key: str, setting: Setting) -> list[Definition]:
        """Every element at exactly this level that sets the setting's attribute."""
        return [
            d
            for d in self.elements_at(key, setting)
            if d.element.get(setting.attribute) is not None
        ]

    def elements_at(self, key: str, setting: Setting) -> list[Definition]:
        """Every element of the setting at exactly this level, with the attribute or not."""
        by_level = self._by_level.get(setting)
        if by_level is None:
            by_level = {}
            for definition in self.elements(setting):
                by_level.setdefault(path_key(definition.path), []).append(definition)
            self._by_level[setting] = by_level
        return by_level.get(key, [])

    def elements(self, setting: Setting) -> list[Definition]:
        """Every element of the setting in scope: the server level's first, then those of the
        <location> elements in file order. One search per setting, down the exact path IIS
        reads, finds them at every level (not one search per location and level); the settings
        confedit reads are indexed together, the first time one of them is asked for."""
        if setting not in self._elements:
            wanted = SETTINGS if setting in SETTINGS else (setting,)
            self._elements.update(self._index(wanted))
        return self._elements[setting]

    def _index(self, settings: tuple[Setting, ...]) -> dict[Setting, list[Definition]]:
        index = {}
        for setting in settings:
            server: list[Definition] = []
            in_locations: list[Definition] = []
            for definition in self._placed(setting):
                (server if definition.location is None else in_locations).append(definition)
            index[setting] = server + in_locations
        return index

    def holding(self, *settings: Setting) -> list[Definition]:
        """The elements of the settings (all of one element, such as the locks a <security>
        holds) in scope that have the attribute of any of them, each once, in file order. One
        search for them alone: for attributes few elements have, where elements() would make a
        Definition of every element of its kind."""
        attributes = tuple(setting.attribute for setting in settings)
        return list(self._placed(settings[0], attributes))

    def _placed(self, setting: Setting, attributes: tuple[str, ...] = ()) -> Iterator[Definition]:
        """What _search finds, at the server level or in an in-scope <location>; an element in
        the <location> of another site is left out."""
        # A path of elements finds elements only (the stubs allow any XPath result).
        found = cast("list[etree._Element]", _search(setting, attributes)(self.document.root))
        for element in found:
            section = element
            for _ in setting.elements:  # up to its <system.webServer>, a known distance
                section = cast("etree._Element", section.getparent())
            top = cast("etree._Element", section.getparent())
            if top.tag != "location":  # the root: the server level
                yield Definition(element, None)
            elif (location := self.owner(top)) is not None:
                yield Definition(element, location)

    def owner(self, element: etree._Element) -> Location | None:
        """The in-scope Location of a top-level <location> element; None for any other."""
        return self.document.location_of(element)

    def resolve(self, path: str, setting: Setting) -> Resolved:
        """The effective value at `path`: the nearest level that sets it, else the default."""
        for _, definition in self.walk(path_key(path), setting):
            if definition is not None:  # always: the walk stops nowhere else
                return Resolved(definition.element.get(setting.attribute, ""), definition)
        return Resolved(setting.default, None)

    def walk(
        self, key: str, setting: Setting, stops: Collection[str] = ()
    ) -> Iterator[tuple[str, Definition | None]]:
        """Inheritance at `key`, nearest level first, up to the definition that applies there
        (with its level). A level in `stops` is not searched: it is yielded with None, for the
        caller to decide there or go on (planning: a target, whose value is about to change)."""
        for level in lineage(key):
            if level in stops:
                yield level, None
                continue
            for definition in self.elements_at(level, setting):  # not definitions(): no list
                if definition.element.get(setting.attribute) is None:
                    continue
                if self.flows_to(definition, key):
                    yield level, definition
                    return

    def flows_to(self, definition: Definition, key: str) -> bool:
        """Whether a definition applies at `key` (see location_flows_to)."""
        return definition.location is None or self.location_flows_to(definition.location, key)

    def location_flows_to(self, location: Location, key: str) -> bool:
        """Whether what `location` sets applies at `key`: inheritInChildApplications="false"
        stops it at the boundary of a child application (per <sites>), not at folders or
        directories."""
        if location.element.get("inheritInChildApplications", "").lower() != "false":
            return True
        level = path_key(location.path)
        if level == key:
            return True
        return self.application_key(level) == self.application_key(key)

    def application_key(self, key: str) -> str | None:
        site = self.sites.get(site_of(key)) if key else None
        app = site.application_of(key) if site else None
        return path_key(app.config_path) if app else None

    def application(self, path: str) -> Application | None:
        key = path_key(path)
        site = self.sites.get(site_of(key))
        return site.application_of(key) if site else None

    def below(self, key: str) -> list[str]:
        """Location keys in the file strictly below `key`, in file order."""
        if self._below is None:  # each key under each of its ancestors, in one pass
            self._below = {}
            for k in self._by_key:
                for ancestor in lineage(k)[1:]:
                    self._below.setdefault(ancestor, []).append(k)
        return self._below.get(key, [])

    def paths_below(self, key: str) -> list[str]:
        """Keys of the site's applications and virtual directories strictly below `key`, in
        <sites> order (with or without a <location> of their own)."""
        site = self.sites.get(site_of(key)) if key else None
        return list(site.below.get(key, ())) if site else []

    def sites_spelling(self, key: str) -> str | None:
        """How <sites> spells an application or virtual directory path; None if it has none."""
        site = self.sites.get(site_of(key))
        return site.paths.get(key) if site else None

    def spelling(self, key: str) -> str | None:
        """How the file spells a location path (its first <location> at that key)."""
        locations = self.locations_at(key)
        return locations[0].path if locations else None


# --- what IIS itself would refuse to load ----------------------------------------------------


def validate(config: Config) -> None:
    """Refuse (exit 4) what IIS would not load, in the sites confedit reasons about: the access
    section defined twice for one path, an invalid sslFlags value, or an attribute confedit
    reads written in another case, or the section registered twice, or not at all in a
    <configSections>. Refuse (exit 3) an access section kept in another file."""
    _check_registered_once(config)
    _check_declared(config)
    _check_defined_once(config)
    for setting in SETTINGS:
        for definition in config.elements(setting):
            _check_attribute_names(config, definition, setting)
    for definition in config.elements(SSL_FLAGS):
        _check_not_elsewhere(config, definition)
        value = definition.element.get("sslFlags")
        try:
            SslFlags.parse(value if value is not None else "None")
        except ValueError as exc:
            raise InvalidInput(
                f'sslFlags="{value}": {exc}',
                source=config.document.name,
                line=config.document.line_of(definition.element),
            ) from None


# The attributes confedit reads on an element of a setting, besides the setting's own.
_READ_ATTRIBUTES: Final = (
    "configSource",
    "lockAttributes",
    "lockAllAttributesExcept",
    "lockElements",
    "lockAllElementsExcept",
    "lockItem",
)


@functools.lru_cache(maxsize=16)  # one per setting: made once, not once per element
def _spellings(attribute: str) -> Mapping[str, str]:
    """The names IIS reads on an element of a setting, by their case-folded form."""
    return {fold(name): name for name in (attribute, *_READ_ATTRIBUTES)}  # shared: read only


def _check_attribute_names(config: Config, definition: Definition, setting: Setting) -> None:
    """IIS reads attribute names case-sensitively and refuses a file with one it does not
    know: `SslFlags="Ssl"` is neither the value nor something IIS would load."""
    spelled = _spellings(setting.attribute)
    for key in definition.element.keys():  # noqa: SIM118 - iterating an element gives children
        name = str(key)  # always str from lxml; the stubs allow bytes too
        right = spelled.get(fold(name))
        if right is not None and name != right:
            raise InvalidInput(
                f"unrecognized attribute '{name}' on <{definition.element.tag}>: IIS reads "
                f"attribute names case-sensitively (the attribute is '{right}') and would not "
                "load this file",
                source=config.document.name,
                line=config.document.line_of(definition.element),
            )


def _check_not_elsewhere(config: Config, definition: Definition) -> None:
    """An access section with configSource is read by IIS from that file, which confedit is not
    given: its sslFlags is unknown here, and no attribute may be written beside configSource."""
    source = definition.element.get("configSource")
    if source is not None:
        line = config.document.line_of(definition.element)
        raise Refused(
            [
                f"the access section at {definition.where} (line {line}) is kept in "
                f'configSource="{source}", not in this file: confedit can neither see nor '
                "change its sslFlags"
            ],
            source=config.document.name,
            advice="move the section's settings into applicationHost.config, then run "
            "confedit again",
        )


def _check_registered_once(config: Config) -> None:
    """IIS refuses a file that registers a section twice ("There is a duplicate
    'system.webServer/security/access' section defined"); which one it would read is no
    question to answer here."""
    registrations = config.registrations
    if len(registrations) > 1:
        first, second = (config.document.line_of(element) for element in registrations[:2])
        lines = f"lines {first} and {second}" if first != second else f"both on line {first}"
        raise InvalidInput(
            f"the access section is registered twice in <configSections> ({lines}); IIS "
            "would not load this file",
            source=config.document.name,
            line=second,
        )


# The access section's registration as IIS ships it (in the groups system.webServer, then
# security, of <configSections>).
SHIPPED_REGISTRATION: Final = '<section name="access" overrideModeDefault="Deny" />'


def _check_declared(config: Config) -> None:
    """IIS reads a section only where <configSections> declares it: any <access> in a file
    whose <configSections> lacks it, the one an offload writes too, makes IIS refuse the whole
    file ("... cannot be read because it is missing a section declaration"). A file without
    <configSections> is no export (IIS writes every declaration into applicationHost.config):
    such a fragment, hand-made or cut out of a file, is read as if it had the declarations IIS
    ships."""
    sections = next(config.document.root.iterchildren("configSections"), None)
    if sections is None or config.registrations:
        return
    raise InvalidInput(
        "<configSections> does not declare the access section, so IIS would not load this "
        'file with an <access> in it ("missing a section declaration"); add the declaration '
        f'IIS ships, {SHIPPED_REGISTRATION}, in <sectionGroup name="security"> of '
        '<sectionGroup name="system.webServer">',
        source=config.document.name,
        line=config.document.line_of(sections),
    )


def _check_defined_once(config: Config) -> None:
    lines = config.document.line_of
    first_at: dict[str, Definition] = {}
    for definition in config.elements(SSL_FLAGS):
        first = first_at.setdefault(path_key(definition.path), definition)
        if first is not definition:
            raise InvalidInput(
                f"the access section is defined twice for path "
                f"'{definition.where}' (lines {lines(first.element)} and "
                f"{lines(definition.element)}); IIS would not load this file",
                source=config.document.name,
                line=lines(definition.element),
            )


# --- delegation: what lets a web.config set sslFlags -----------------------------------------


def delegated_at(config: Config, key: str) -> str | None:
    """What unlocks the access section for `key`, if anything: overrideMode="Allow" (or the
    older allowOverride="true") on the nearest location that holds it, else its registration
    in <configSections> with overrideModeDefault="Allow". The same before and after an offload:
    the <location> an offload writes <access> into holds it already or has no override mode
    (plan._location_to_edit)."""
    for level in lineage(key):
        # A location's mode applies only to the sections inside it (IIS keeps a "" location
        # with overrideMode="Allow" and one with "Deny", each with its own sections): one at
        # this path without <access> neither unlocks nor locks it.
        holding = {d.location for d in config.elements_at(level, SSL_FLAGS)}
        for location in config.locations_at(level):
            mode = _override_mode(location.element)
            if mode is None or location not in holding:
                continue
            if mode.mode == "deny":
                return None
            line = config.document.line_at(location.span.start)
            where = location.path if path_key(location.path) else "the server level"  # "", ".", "/"
            return f"{mode.spelling} at {where} (line {line})"
    return config.registration_allows


class _Override(NamedTuple):
    mode: str  # "allow" or "deny"
    spelling: str  # the attribute as the file writes it


# overrideMode="Inherit" decides nothing; allowOverride is the older form of the same switch.
_OVERRIDE_ATTRIBUTES: Final = (
    ("overrideMode", {"allow": "allow", "deny": "deny"}),
    ("allowOverride", {"true": "allow", "false": "deny"}),
)


def _override_mode(location: etree._Element) -> _Override | None:
    for attribute, modes in _OVERRIDE_ATTRIBUTES:
        value = location.get(attribute)
        mode = modes.get(value.lower()) if value is not None else None
        if mode is not None:
            return _Override(mode, f'{attribute}="{value}"')
    return None


def decides_override(location: etree._Element) -> bool:
    """Whether a <location> locks or unlocks the sections inside it for web.config files
    (overrideMode Allow or Deny, or allowOverride), rather than leaving that to the levels
    above."""
    return _override_mode(location) is not None
