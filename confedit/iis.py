"""IIS semantics: sslFlags values, location paths, <sites>, inheritance and locks.

Facts and their sources are in docs/IIS-NOTES.md of the team's shared notes; the README's
"How IIS decides" section summarises the rules implemented here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from lxml import etree

from confedit.document import Document, Location, sourceline

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
        bits = 0
        tokens = [token.strip() for token in text.split(",")]
        for token in tokens:
            if token.lower() == "none" and len(tokens) == 1:
                continue
            if token.isdigit() and int(token) & ~_ALL_BITS == 0:
                bits |= int(token)
            elif token.lower() in _FLAG_BY_LOWER:
                bits |= _FLAG_BY_LOWER[token.lower()]
            else:
                raise ValueError(FLAGS_WORDING)
        return cls(bits)

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


# --- paths -----------------------------------------------------------------------------------


def path_key(path: str) -> str:
    """The comparison key of a location path: case-insensitive, one trailing slash ignored."""
    if path.endswith("/"):
        path = path[:-1]
    return "" if path == "." else path.casefold()


def parent_key(key: str) -> str | None:
    """'site/a/b' -> 'site/a' -> 'site' -> '' (the server level) -> None."""
    if not key:
        return None
    return key.rpartition("/")[0]


def lineage(key: str) -> Iterator[str]:
    """The key itself, then each ancestor, ending with '' (the server level)."""
    current: str | None = key
    while current is not None:
        yield current
        current = parent_key(current)


def is_below(key: str, ancestor: str) -> bool:
    """True when `key` lies strictly below `ancestor` (segment-wise, not by string prefix)."""
    return key != ancestor and (not ancestor or key.startswith(ancestor + "/"))


def site_of(key: str) -> str:
    return key.partition("/")[0]


# --- sites -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Application:
    """One <application> of a site, as the config path IIS uses for it."""

    site: str
    path: str  # "/owa"
    pool: str | None
    virtual_directories: tuple[str, ...]  # config paths of its non-root virtual directories

    @property
    def config_path(self) -> str:
        return self.site if self.path == "/" else self.site + self.path


@dataclass(frozen=True)
class Site:
    name: str
    applications: tuple[Application, ...]

    def config_paths(self) -> list[str]:
        """Every application and virtual directory of the site, as location paths."""
        paths: list[str] = []
        for app in self.applications:
            paths.append(app.config_path)
            paths.extend(app.virtual_directories)
        return paths

    def application_of(self, key: str) -> Application | None:
        """The application a config path belongs to: the longest application path above it."""
        best: Application | None = None
        for app in self.applications:
            app_key = path_key(app.config_path)
            if (key == app_key or is_below(key, app_key)) and (
                best is None or len(app.config_path) > len(best.config_path)
            ):
                best = app
        return best


def read_sites(root: etree._Element) -> dict[str, Site]:
    """The <sites> section, keyed by lower-cased site name; pools filled from the defaults."""
    sites_el = root.find("system.applicationHost/sites")
    if sites_el is None:
        return {}
    server_pool = _default_pool(sites_el)
    sites: dict[str, Site] = {}
    for site_el in sites_el.iterfind("site"):
        name = site_el.get("name", "")
        site_pool = _default_pool(site_el) or server_pool
        apps = tuple(
            _application(name, app_el, site_pool) for app_el in site_el.iterfind("application")
        )
        sites[name.casefold()] = Site(name, apps)
    return sites


def _default_pool(parent: etree._Element) -> str | None:
    defaults = parent.find("applicationDefaults")
    return defaults.get("applicationPool") if defaults is not None else None


def _application(site: str, app_el: etree._Element, default_pool: str | None) -> Application:
    app_path = app_el.get("path", "/")
    app_config_path = site if app_path == "/" else site + app_path
    vdirs = tuple(
        app_config_path + vdir_el.get("path", "/").rstrip("/")
        for vdir_el in app_el.iterfind("virtualDirectory")
        if vdir_el.get("path", "/") != "/"
    )
    return Application(site, app_path, app_el.get("applicationPool") or default_pool, vdirs)


# --- settings and inheritance ----------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """An attribute of an element below <system.webServer>, and its schema default."""

    elements: tuple[str, ...]
    attribute: str
    default: str

    @property
    def xpath(self) -> str:
        return "system.webServer/" + "/".join(self.elements)


SSL_FLAGS: Final = Setting(("security", "access"), "sslFlags", "None")
_WINDOWS_AUTH: Final = ("security", "authentication", "windowsAuthentication")
WINDOWS_AUTH_ENABLED: Final = Setting(_WINDOWS_AUTH, "enabled", "false")
TOKEN_CHECKING: Final = Setting((*_WINDOWS_AUTH, "extendedProtection"), "tokenChecking", "None")

SERVER_LEVEL: Final = "(server level)"
SCHEMA_DEFAULT: Final = "(schema default)"


@dataclass(frozen=True, eq=False)
class Definition:
    """One element that sets a value at some level: inside a <location>, or at the server level."""

    element: etree._Element
    location: Location | None  # None: <system.webServer> outside any location

    @property
    def path(self) -> str:
        return self.location.path if self.location else ""

    @property
    def where(self) -> str:
        """The level as a reader knows it: the path as the file spells it, or the server level."""
        return self.location.path if self.location and self.location.path else SERVER_LEVEL

    @property
    def line(self) -> int:
        return sourceline(self.element)


@dataclass(frozen=True)
class Resolved:
    """An effective value and where it comes from."""

    value: str
    source: Definition | None  # None: the schema default

    @property
    def where(self) -> str:
        return self.source.where if self.source else SCHEMA_DEFAULT


class Config:
    """The IIS view of a Document: locations by path, sites, and inheritance."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.sites = read_sites(document.root)
        self._by_key: dict[str, list[Location]] = {}
        for location in document.locations:
            self._by_key.setdefault(path_key(location.path), []).append(location)

    def locations_at(self, key: str) -> list[Location]:
        return self._by_key.get(key, [])

    @property
    def keys(self) -> list[str]:
        return list(self._by_key)

    @cached_property
    def _server_elements(self) -> list[etree._Element]:
        return self.document.root.findall("system.webServer")

    def definitions(self, key: str, setting: Setting) -> list[Definition]:
        """Every element at exactly this level that sets the setting's attribute."""
        found: list[Definition] = []
        if not key:
            for element in self._server_elements:
                found += self._defining(element, setting, None)
        for location in self.locations_at(key):
            found += self._defining(location.element, setting, location)
        return found

    def elements_at(self, key: str, setting: Setting) -> list[Definition]:
        """Every element of the setting at exactly this level, with the attribute or not."""
        found: list[Definition] = []
        tail = "/".join(setting.elements)
        if not key:
            found += [
                Definition(el, None) for s in self._server_elements for el in s.iterfind(tail)
            ]
        for location in self.locations_at(key):
            found += [Definition(el, location) for el in location.element.iterfind(setting.xpath)]
        return found

    @staticmethod
    def _defining(
        container: etree._Element, setting: Setting, location: Location | None
    ) -> list[Definition]:
        path = setting.xpath if location else "/".join(setting.elements)
        return [
            Definition(element, location)
            for element in container.iterfind(path)
            if element.get(setting.attribute) is not None
        ]

    def resolve(self, path: str, setting: Setting, *, skip_own: bool = False) -> Resolved:
        """The effective value at `path`: the nearest level that sets it, else the default."""
        key = path_key(path)
        for level in lineage(key):
            if skip_own and level == key:
                continue
            for definition in self.definitions(level, setting):
                if self.flows_to(definition, key):
                    return Resolved(definition.element.get(setting.attribute, ""), definition)
        return Resolved(setting.default, None)

    def flows_to(self, definition: Definition, key: str) -> bool:
        """Whether a definition applies at `key`: inheritInChildApplications="false" stops it
        at the boundary of a child application (per <sites>), not at folders or directories."""
        location = definition.location
        if location is None or location.element.get("inheritInChildApplications") != "false":
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
        return [other for other in self._by_key if is_below(other, key)]

    def spelling(self, key: str) -> str | None:
        """How the file spells a location path (its first <location> at that key)."""
        locations = self.locations_at(key)
        return locations[0].path if locations else None
