"""A deliberately naive model of IIS, written apart from confedit.iis to check it.

It reads the file with plain lxml and follows docs/IIS-NOTES.md of the shared notes literally:
the effective value of a path is the nearest level that sets the attribute (its own location,
then each ancestor path segment by segment, then the server level, then the schema default);
inheritInChildApplications="false" on a location stops its settings at the boundary of a child
*application* per <sites>. Nothing here is optimised; everything is recomputed on each call.
"""

from __future__ import annotations

from lxml import etree

ACCESS = "security/access"
TOKEN_CHECKING = "security/authentication/windowsAuthentication/extendedProtection"
FLAG_BITS = {"ssl": 8, "sslnegotiatecert": 32, "sslrequirecert": 64, "ssl128": 256}


def key(path: str) -> str:
    """Paths compare in any case; one trailing slash is ignored; "." is the server level."""
    if path.endswith("/"):
        path = path[:-1]
    return "" if path == "." else path.casefold()


def levels(path_key: str) -> list[str]:
    """'a/b/c' -> ['a/b/c', 'a/b', 'a', ''] (the last is the server level)."""
    result = [path_key]
    while result[-1]:
        result.append(result[-1].rpartition("/")[0])
    return result


def flag_bits(value: str) -> int:
    """The set of flags a valid sslFlags value names, as bits ("None" and "0" are 0)."""
    bits = 0
    for word in value.split(","):
        token = word.strip().lower()
        if token.isdigit():
            bits |= int(token)
        elif token != "none":
            bits |= FLAG_BITS[token]
    return bits


def valid_flags(value: str) -> bool:
    """IIS's rule: a comma list of flag names (any case) or numbers of known bits; None alone."""
    tokens = [token.strip().lower() for token in value.split(",")]
    if tokens == ["none"]:
        return True
    known = sum(FLAG_BITS.values())
    return all(
        token in FLAG_BITS or (token.isdigit() and int(token) & ~known == 0) for token in tokens
    )


def requires_ssl(value: str) -> bool:
    return bool(flag_bits(value) & FLAG_BITS["ssl"])


def applications(root: etree._Element) -> list[str]:
    """Keys of every application in <sites>: 'default web site', 'default web site/owa', ..."""
    found = []
    for site in root.iterfind("system.applicationHost/sites/site"):
        for app in site.iterfind("application"):
            app_path = app.get("path", "/")
            found.append(key(site.get("name", "") + ("" if app_path == "/" else app_path)))
    return found


def application_of(root: etree._Element, path_key: str) -> str | None:
    """The application a path belongs to: the longest application key at or above it."""
    inside = [app for app in applications(root) if app in levels(path_key)]
    return max(inside, key=len) if inside else None


def containers(root: etree._Element, level: str) -> list[tuple[etree._Element, bool]]:
    """The <system.webServer> elements that configure exactly `level`, in file order, each with
    whether it stops at child applications (inheritInChildApplications="false")."""
    found = []
    if level == "":
        found += [(element, False) for element in root.findall("system.webServer")]
    for location in root.findall("location"):
        if key(location.get("path", "")) == level:
            stops = (location.get("inheritInChildApplications") or "").lower() == "false"
            found += [(element, stops) for element in location.findall("system.webServer")]
    return found


def effective(
    root: etree._Element,
    path: str,
    xpath: str = ACCESS,
    attribute: str = "sslFlags",
    default: str = "None",
) -> tuple[str, str | None]:
    """The effective value at `path` and the level (a key) it comes from; None: the default."""
    wanted = key(path)
    for level in levels(wanted):
        for container, stops in containers(root, level):
            element = container.find(xpath)
            if element is None or element.get(attribute) is None:
                continue
            # inheritInChildApplications="false": not into another application
            if (
                stops
                and level != wanted
                and application_of(root, level) != application_of(root, wanted)
            ):
                continue
            return element.get(attribute, ""), level
    return default, None


def explicit(root: etree._Element, path: str) -> str | None:
    """The sslFlags value set at exactly this path (not inherited), if any."""
    for container, _ in containers(root, key(path)):
        element = container.find(ACCESS)
        if element is not None and element.get("sslFlags") is not None:
            return element.get("sslFlags")
    return None


def pin_none(root: etree._Element, path: str) -> None:
    """What `appcmd set config PATH /section:access /sslFlags:None` means for the tree: the
    location that defines access (else the first one for the path that neither locks nor
    unlocks its sections, else a new one) gets
    system.webServer/security/access with sslFlags="None" (a value that already means None,
    such as "0", is left as written)."""
    wanted = key(path)
    locations = [loc for loc in root.findall("location") if key(loc.get("path", "")) == wanted]
    holder = next(
        (loc for loc in locations if loc.find("system.webServer/" + ACCESS) is not None), None
    )
    if holder is None:
        holder = next((loc for loc in locations if plain(loc)), None)
    if holder is None:
        holder = etree.SubElement(root, "location", path=path)
    element = holder
    for tag in ("system.webServer", "security", "access"):
        child = element.find(tag)
        element = child if child is not None else etree.SubElement(element, tag)
    if flag_bits(element.get("sslFlags", "Ssl")) != 0:  # None in any spelling stays as it is
        element.set("sslFlags", "None")


def plain(location: etree._Element) -> bool:
    """A location that neither locks nor unlocks its sections: overrideMode Inherit (or none),
    no allowOverride."""
    mode = (location.get("overrideMode") or "inherit").lower()
    return mode == "inherit" and location.get("allowOverride") is None


def override_mode(location: etree._Element) -> str | None:
    """How a <location> leaves the sections inside it to web.config files: "allow", "deny", or
    None (overrideMode Inherit, or neither attribute). allowOverride is the older spelling."""
    mode = (location.get("overrideMode") or "").lower()
    if mode in ("allow", "deny"):
        return mode
    return {"true": "allow", "false": "deny"}.get((location.get("allowOverride") or "").lower())


def registered_mode(root: etree._Element) -> str | None:
    """The overrideModeDefault <configSections> registers the access section with, in lower
    case ("allow" if the attribute is missing: its documented default); None if the file does
    not register the section (nothing of the file then unlocks it)."""
    group = "configSections/sectionGroup[@name='system.webServer']/sectionGroup[@name='security']"
    section = root.find(group + "/section[@name='access']")
    if section is None:
        return None
    return (section.get("overrideModeDefault") or "Allow").lower()


def delegated(root: etree._Element, path: str) -> bool:
    """Whether a web.config at `path` could set sslFlags: the nearest level (the path, then each
    parent, then the server level) with a <location> that holds <access> and has an override
    mode decides; a <location> without <access> decides nothing for it, since IIS keeps the
    mode with the sections inside. With none deciding, the registration does."""
    for level in levels(key(path)):
        for location in root.findall("location"):
            if key(location.get("path", "")) != level:
                continue
            if location.find("system.webServer/" + ACCESS) is None:
                continue
            mode = override_mode(location)
            if mode is not None:
                return mode == "allow"
    return registered_mode(root) == "allow"


def location_keys(root: etree._Element) -> list[str]:
    """The key of every top-level <location>, once each, in file order."""
    return list(dict.fromkeys(key(loc.get("path", "")) for loc in root.findall("location")))


def site_paths(root: etree._Element, site_name: str) -> list[str]:
    """Keys of the applications and virtual directories of a site, per <sites>."""
    found = []
    for site in root.iterfind("system.applicationHost/sites/site"):
        if key(site.get("name", "")) != key(site_name):
            continue
        for app in site.iterfind("application"):
            app_path = app.get("path", "/")
            base = site.get("name", "") + ("" if app_path == "/" else app_path)
            found.append(key(base))
            for vdir in app.iterfind("virtualDirectory"):
                if vdir.get("path", "/") != "/":
                    found.append(key(base + vdir.get("path", "").rstrip("/")))
    return found
