"""What the property tests share: the strategies they draw from and the independent checks.

Nothing here uses confedit's own reading of a file: lxml and tests/reference_model.py give the
meaning, regular expressions the bytes.
"""

from __future__ import annotations

import copy
import re

from hypothesis import strategies as st
from lxml import etree

from confedit.plan import Request
from confedit.testing import strategies as st_iis
from confedit.testing.strategies import GeneratedConfig
from tests import reference_model as model
from tests.helpers import split_bom

FRONT_END = "Default Web Site"
SERVICE_DIRECTORIES = {
    "owa": "owa",
    "ecp": "ecp",
    "ews": "EWS",
    "autodiscover": "Autodiscover",
    "eas": "Microsoft-Server-ActiveSync",
    "oab": "OAB",
    "mapi": "MAPI",
    "rpc": "Rpc",
}
DEFAULT_SERVICES = ("owa", "ecp", "ews", "autodiscover", "eas", "oab", "mapi")

STYLES = st_iis.formatting_styles(encodings=("utf-8", "utf-16-le", "utf-16-be"))
# Files IIS loads and in which nothing forbids the change: offload must succeed on them.
CONFIGS = st_iis.generated_configs(styles=STYLES)
# Files IIS would refuse to load, or in which a lock forbids the change.
INVALID_CONFIGS = st_iis.generated_configs(styles=STYLES, invalid=st_iis.INVALID_KINDS)
# Also Extended Protection and invalid files: offload may refuse them.
ANY_CONFIGS = st_iis.generated_configs(styles=STYLES, extended_protection=True) | INVALID_CONFIGS
BACK_END_PATHS = (
    "Exchange Back End",
    "Exchange Back End/owa",
    "exchange back end/OWA/",
    "EXCHANGE BACK END/PowerShell",
)
OTHER_PATHS = ("Default Web Site2/owa", "Other Site", "Default Web Site/owa2", "Default Web Site/x")


def spellings(path: str) -> st.SearchStrategy[str]:
    """A path as a user may type it: any case, one trailing slash."""
    return st.sampled_from((path, path.lower(), path.upper(), path + "/"))


def present_services(config: GeneratedConfig) -> list[str]:
    """The --service names whose directory the front end has in <sites>."""
    paths = {model.key(p) for p in config.site_paths(FRONT_END)}
    return [s for s, d in SERVICE_DIRECTORIES.items() if model.key(f"{FRONT_END}/{d}") in paths]


@st.composite
def requests(draw: st.DrawFn, config: GeneratedConfig) -> Request:
    """Requests the file allows: default services, services it has, or paths of its front end."""
    kind = draw(st.sampled_from(("default", "services", "paths")))
    services: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    if kind == "services":
        chosen = st.lists(st.sampled_from(present_services(config)), min_size=1, max_size=3)
        services = tuple(draw(chosen))
    elif kind == "paths":
        path = st.sampled_from(config.site_paths(FRONT_END)).flatmap(spellings)
        paths = tuple(draw(st.lists(path, min_size=1, max_size=3)))
    return Request(services=services, paths=paths, include_descendants=draw(st.booleans()))


@st.composite
def any_requests(draw: st.DrawFn, config: GeneratedConfig) -> Request:
    """Any request: also paths in the Exchange Back End (any spelling) and in other sites."""
    request = draw(requests(config))
    hostile = st.sampled_from(BACK_END_PATHS + OTHER_PATHS)
    extra = tuple(draw(st.lists(hostile, max_size=2)))
    return Request(
        services=request.services,
        paths=request.paths + extra,
        include_descendants=request.include_descendants,
        allow_extended_protection=draw(st.booleans()),
    )


def parse(raw: bytes) -> etree._Element:
    return etree.fromstring(raw)


def working(raw: bytes) -> bytes:
    """The bytes offsets refer to: the file itself if UTF-8, else its text in UTF-8."""
    bom, text = split_bom(raw)
    return raw if bom in (b"", b"\xef\xbb\xbf") else text.encode("utf-8")


def is_below(path_key: str, ancestor: str) -> bool:
    return path_key != ancestor and (not ancestor or path_key.startswith(ancestor + "/"))


def expected_targets(root: etree._Element, request: Request) -> set[str]:
    """The keys offload() must set, worked out from the request and the file alone."""
    front = set(model.site_paths(root, FRONT_END))
    named = [f"{FRONT_END}/{SERVICE_DIRECTORIES[s]}" for s in request.services]
    named += request.paths
    if not named:
        defaults = [f"{FRONT_END}/{SERVICE_DIRECTORIES[s]}" for s in DEFAULT_SERVICES]
        named = [path for path in defaults if model.key(path) in front]
    targets = {model.key(path) for path in named}
    if request.include_descendants:
        requested = set(targets)
        below = {
            key
            for key in model.location_keys(root)
            if any(is_below(key, target) for target in requested)
        }
        # Shallowest first, each judged with the ones found before it offloaded: a location
        # below one that is offloaded inherits its None and needs no edit.
        for key in sorted(below, key=lambda k: (k.count("/"), k)):
            if model.requires_ssl(model.effective(pinned_tree(root, targets), key)[0]):
                targets.add(key)
        # Then applications and directories without a location that, with all those offloaded,
        # still require SSL (past inheritInChildApplications="false").
        pinned = pinned_tree(root, targets)
        targets |= {
            key
            for key in front - set(model.location_keys(root))
            if any(is_below(key, target) for target in requested)
            and model.requires_ssl(model.effective(pinned, key)[0])
        }
    return targets


def pinned_tree(root: etree._Element, keys: set[str]) -> etree._Element:
    """A copy of the tree with sslFlags="None" set at each key, the way appcmd sets it."""
    pinned = copy.deepcopy(root)
    for key in sorted(keys):
        model.pin_none(pinned, key)
    return pinned


def interesting_paths(root: etree._Element) -> list[str]:
    """Every location and every application or directory of every site, and a folder below
    each of them."""
    keys = set(model.location_keys(root))
    for site in root.iterfind("system.applicationHost/sites/site"):
        keys |= set(model.site_paths(root, site.get("name", "")))
    keys |= {key + "/folder" for key in keys if key}
    return sorted(keys)


ALLOWED_INSERTION = re.compile(
    rb'(?:\s|<access sslFlags="None" />|</?security>|</?system\.webServer>'
    rb'|<location path="[^"<>]*">|</location>| sslFlags="None")*'
)
VALUE_START = re.compile(rb"""<access\b[^<>]*\ssslFlags\s*=\s*["']\Z""")
SELF_CLOSED = re.compile(rb"<[\w.]+\b[^<>]*/>")


TAG_CLOSE = re.compile(rb"\s*/?>")


def edit_is_narrow(data: bytes, start: int, end: int, text: bytes) -> bool:
    """An edit either inserts only the offload's own markup, rewrites an sslFlags value to
    None, or opens a self-closed element to put the offload's markup inside it. An attribute
    it adds comes after the others, as IIS writes it: before the end of the start tag."""
    old = data[start:end]
    if not old:
        if text == b' sslFlags="None"':
            return bool(TAG_CLOSE.match(data, end))
        return bool(ALLOWED_INSERTION.fullmatch(text))
    if VALUE_START.search(data, max(0, start - 512), start) and data[end : end + 1] in b"\"'":
        return text == b"None" and b"<" not in old
    if SELF_CLOSED.fullmatch(old):
        opened = re.sub(rb"\s*/>\Z", b">", old)
        return text.startswith(opened) and bool(ALLOWED_INSERTION.fullmatch(text[len(opened) :]))
    return False


# Locks IIS reads on the server level's <access> or <security>, each with whether it forbids
# changing sslFlags below it (docs/IIS-NOTES.md, "Locking"): (element, attribute, value, forbids)
SERVER_LOCKS = (
    ("access", "lockAttributes", "sslFlags", True),
    ("access", "lockAttributes", "*", True),
    ("access", "lockAttributes", "foo, SSLFLAGS", True),
    ("access", "lockAttributes", "foo", False),
    ("access", "lockAllAttributesExcept", "foo", True),
    ("access", "lockAllAttributesExcept", "sslflags", False),
    ("access", "lockItem", "true", True),
    ("access", "lockItem", "false", False),
    ("security", "lockElements", "access", True),
    ("security", "lockElements", "*", True),
    ("security", "lockElements", "authentication, ACCESS", True),
    ("security", "lockElements", "authentication", False),
    ("security", "lockAllElementsExcept", "authentication", True),
    ("security", "lockAllElementsExcept", "access", False),
)


def with_server_lock(raw: bytes, tag: str, attribute: str, value: str) -> bytes:
    """The file, written again by lxml in UTF-8, with `attribute` on the server level's <access>
    or <security>: the one the file has, at the top level or in a <location> of the server
    level (whose inheritInChildApplications="false" goes, so that the lock reaches every
    path), else a new one at the top level (a second <access> would define it twice)."""
    root = parse(raw)
    chain = ("system.webServer", "security", "access")[: 2 if tag == "security" else 3]
    server = [loc for loc in root.findall("location") if model.key(loc.get("path", "")) == ""]
    element = next((h for h in server if h.find("/".join(chain)) is not None), root)
    element.attrib.pop("inheritInChildApplications", None)
    for name in chain:
        child = element.find(name)
        element = child if child is not None else etree.SubElement(element, name)
    element.set(attribute, value)
    return etree.tostring(root.getroottree(), encoding="utf-8", xml_declaration=True)


# How a file may spell what unlocks the access section besides the generator's overrideMode and
# overrideModeDefault: the older allowOverride, or a registration that leaves the default out.
OVERRIDE_SPELLINGS = ("as drawn", "allowOverride", "no overrideModeDefault")


def respelled(raw: bytes, spelling: str) -> bytes:
    """The file, written again by lxml in UTF-8 unless `spelling` is "as drawn": each
    overrideMode Allow or Deny on a <location> as allowOverride="true" or "false", or the access
    section's registration without its overrideModeDefault (which IIS reads as Allow)."""
    if spelling == "as drawn":
        return raw
    root = parse(raw)
    if spelling == "allowOverride":
        for location in root.findall("location"):
            mode = model.override_mode(location)
            if location.get("overrideMode") is not None and mode is not None:
                del location.attrib["overrideMode"]
                location.set("allowOverride", "true" if mode == "allow" else "false")
    else:
        for section in root.iter("section"):
            if section.get("name") == "access":
                section.attrib.pop("overrideModeDefault", None)
    return etree.tostring(root.getroottree(), encoding="utf-8", xml_declaration=True)


def compact_locations(root: etree._Element) -> list[bool]:
    """For each <location> in file order: whether its first child shares its line."""
    compact = []
    for location in root.findall("location"):
        children = [child for child in location if isinstance(child.tag, str)]
        compact.append(bool(children) and children[0].sourceline == location.sourceline)
    return compact


def misindented_lines(text: str, unit: str, compact: list[bool]) -> list[str]:
    """Lines whose first element is not indented by `unit` once per level of nesting
    (elements inside locations written on one line are not checked)."""
    # without the XML declaration, which may name UTF-16 (blanked: line numbers stay)
    root = etree.fromstring(re.sub(r"\A<\?xml[^>]*\?>", "", text).encode("utf-8"))
    lines = text.split("\n")
    first_on_line: dict[int, etree._Element] = {}
    for element in root.iter(etree.Element):
        first_on_line.setdefault(element.sourceline or 0, element)
    locations = root.findall("location")  # the input's, in order, then any new ones
    one_line = {id(loc) for loc, flag in zip(locations, compact, strict=False) if flag}
    wrong = []
    for number, element in first_on_line.items():
        line = lines[number - 1].rstrip("\r")
        indent = line[: len(line) - len(line.lstrip())]
        ancestors = list(element.iterancestors())  # the last one is <configuration>
        top = ancestors[-2] if len(ancestors) >= 2 else element
        if id(top) in one_line or not line.lstrip().startswith("<" + element.tag):
            continue
        if indent != unit * len(ancestors):
            wrong.append(line)
    return wrong
