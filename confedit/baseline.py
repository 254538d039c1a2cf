"""`--since REV`: refuse a file whose Exchange Back End differs from its version in git at REV.

confedit itself never edits the Back End (verify.py proves it for every result), but a file in a
repository can be changed by hand or by another tool. What counts as the Back End here:

- every `<location>` of the Exchange Back End site, compared as canonical XML (attribute order,
  whitespace between elements, comments, the spelling of its path, the order of the
  locations of one path, the spelling of sslFlags, tokenChecking, Extended Protection flags,
  handlers accessPolicy and directoryBrowse showFlags values, which IIS reads in any case and
  flags in any order, and the case of a bool of IIS's schema, do not count; any setting does);
- the site's definition in `<sites>` (bindings, applications and their virtual directories
  in any order, pools; the case of a bool does not count), the defaults of every site there
  (`<siteDefaults>`, `<applicationDefaults>`, `<virtualDirectoryDefaults>`; bools alike),
  and the pool of each of its applications wherever it is set (on the application, or by an
  `<applicationDefaults>`), a pool's name ignoring case, as IIS compares it;
- the definition in `<applicationPools>` of each pool its applications run in, and the
  `<applicationPoolDefaults>` every pool takes what it does not set from (a pool stopped or run
  as another identity stops the Back End as surely as a changed location; the case of a
  bool does not count there either);
- the effective SSL policy (sslFlags, and Extended Protection: tokenChecking, flags and the
  list of service names it accepts) of each Back End path, with or without a `<location>` of
  its own: this catches a change made above the site, e.g. at the server level, that the site
  inherits;
- whether the access section is unlocked at each Back End path (a web.config there could then
  set sslFlags), wherever the unlock is: a location above the site, or the registration.
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from lxml import etree

from confedit import exchange
from confedit.document import Document, load
from confedit.errors import ConfeditError, InvalidInput, Refused, UsageProblem, shell_command
from confedit.files import is_link
from confedit.iis import (
    SCHEMA_DEFAULT,
    SERVER_LEVEL,
    SSL_FLAGS,
    TOKEN_CHECKING,
    Config,
    Setting,
    Site,
    SslFlags,
    delegated_at,
    lineage,
    path_key,
    site_of,
    validate,
)
from confedit.spans import fold

_BACK_END = path_key(exchange.BACK_END_SITE)
_SCOPE: Final = (exchange.BACK_END_SITE,)  # what load() keeps in the tree: the rest is not needed


def check_back_end_since(path: Path, data: bytes, revision: str, name: str) -> None:
    """Raise Refused if the Back End in `data` differs from `path`'s version at `revision`.

    A file that is not in that revision (new), or a repository without any commit yet, has
    nothing to compare with and passes; UsageProblem if a link leads it out of its repository
    (its history is elsewhere, if anywhere).
    """
    version = revision_version(path, revision)
    named = name  # the old name is named from this one's folder
    if version is None and _leaves_repository(path):
        raise UsageProblem(
            f"--since: it leads out of its git repository (to {os.path.realpath(path)}), whose "
            "history of that file is not there to compare with; name the file in its own git "
            "clone, or leave out --since",
            source=name,
        )
    if version is None and is_link(path):
        path, version = _through_link(path, revision)
        named = str(path)  # the file the link leads to: its folder, not the link's
    if version is None:
        return
    old_name = _old_name(named, version.renamed_from)
    try:
        before = load(version.content, f"{revision}:{old_name or name}", sites=_SCOPE)
    except InvalidInput:
        return  # the old version did not load: there is no Back End to keep
    after = load(data, name, sites=_SCOPE)
    changes = back_end_changes(before, after)
    if changes:
        reasons = [
            f"the Exchange Back End changed since {revision}: {change}" for change in changes
        ]
        these, them = ("these changes", "them") if len(changes) > 1 else ("this change", "it")
        advice = (
            "SSL offloading makes no change to the Exchange Back End (the front end proxies to it "
            f"over SSL): undo {these}; {_how_to_see(revision, path, version)} {them}"
        )
        # Under its new name alone, the file would seem not to be in the revision at all.
        source = f"{name} (renamed from {old_name})" if old_name else name
        raise Refused(reasons, source=source, advice=advice)


def _through_link(link: Path, revision: str) -> tuple[Path, Version | None]:
    """A link new since `revision` (or never added) leads to a file git may know: the file's
    own history then counts, as for a link git knows (see revision_version), if the file is in
    the link's repository. Its path is returned for the advice to name."""
    real = Path(os.path.realpath(link))
    git = shutil.which("git")
    if git is None or _top(git, real.parent) != _top(git, link.parent):
        return link, None  # a link out of the repository: no history of it here
    return real, revision_version(real, revision)


def _leaves_repository(path: Path) -> bool:
    """Whether a link, of the file or of a folder on its way, leads out of the repository the
    file is named in (to a file of no repository, or of another)."""
    top = _named_top(path)
    return top is not None and not Path(os.path.realpath(path)).is_relative_to(
        os.path.realpath(top)
    )


def _named_top(path: Path) -> Path | None:
    """The top of the repository the file is in as named: its deepest folder with a `.git`.
    Git, run in the file's folder, would follow a folder link first, to the repository (and
    the place in it) of what the link leads to now."""
    for folder in _absolute(path).parents:
        if (folder / ".git").exists():
            return folder
    return None


def _absolute(path: Path) -> Path:
    """The path made absolute, its links kept: Path.resolve would follow them."""
    return Path(os.path.abspath(path))  # noqa: PTH100


def _folder_link(top: Path, named: str) -> str | None:
    """The deepest folder on the way to `named` (relative to `top`) that is a link, if any."""
    parts = named.split("/")[:-1]
    for end in range(len(parts), 0, -1):
        if is_link(top / "/".join(parts[:end])):
            return "/".join(parts[:end])
    return None


def _top(git: str, folder: Path) -> bytes | None:
    top = _git(git, folder, "rev-parse", "--show-toplevel")
    return top.stdout if top.returncode == 0 else None


def _old_name(name: str, renamed_from: str | None) -> str | None:
    """The file's name at the revision, named as `name` is (from the same folder)."""
    if renamed_from is None:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(name), renamed_from))


def _how_to_see(revision: str, path: Path, version: Version) -> str:
    """The git commands that show the changes, quoted for a shell (a name may hold spaces).
    They run git in the file's folder (`-C`, its absolute path), so that they work from any
    directory, even outside the repository. After a rename they name both paths, so that git
    shows the edits, not the whole file as new; a rename git does not know of yet is staged
    first."""
    if version.link is not None:  # what changed under the file's name: the link on its way
        git = ["git", "-C", str(version.link[0])]
        return f"`{shell_command([*git, 'diff', revision, '--', version.link[1]])}` shows"
    git = ["git", "-C", str(path.parent.absolute())]
    if version.renamed_from is None:
        return f"`{shell_command([*git, 'diff', revision, '--', path.name])}` shows"
    paths = [version.renamed_from, path.name]
    diff = f"`{shell_command([*git, 'diff', '--find-renames', revision, '--', *paths])}` shows"
    if version.staged:
        return diff
    stage = shell_command([*git, "add", "--all", "--", *paths])
    return f"after `{stage}` (the rename staged), {diff}"


def back_end_changes(before: Document, after: Document) -> list[str]:
    """What differs in the Exchange Back End between two versions of a config, in words."""
    changes: list[str] = []
    old, new = _locations(before), _locations(after)
    for key in sorted(old.keys() | new.keys()):
        spelling = (new.get(key) or old[key])[0]
        if key not in new:
            changes.append(f"<location path={spelling!r}> was removed")
        elif key not in old:
            changes.append(f"<location path={spelling!r}> was added")
        elif sorted(old[key][1]) != sorted(new[key][1]):  # their order does not count to IIS
            changes.append(f"<location path={spelling!r}> was changed")
    old_config, new_config = Config(before), Config(after)
    old_site, new_site = _site(old_config), _site(new_config)
    if (old_site and _site_canonical(old_site.element)) != (
        new_site and _site_canonical(new_site.element)
    ):
        changes.append(f"the site definition of {exchange.BACK_END_SITE!r} in <sites> was changed")
    changes += _site_defaults_changes(before, after)
    changes += _pool_changes(old_site, new_site)
    changes += _pool_definition_changes(before, after, new_site)
    # Effective values follow from the changes above, if there are any: named too, they would
    # be the same change twice. An unlock is named in any case: one made outside the site (in
    # <configSections>, say) is not among them, and would be found only on the next run.
    return changes + _policy_changes(old_config, new_config, values=not changes)


def _locations(document: Document) -> dict[str, tuple[str, list[bytes]]]:
    """Back End location key -> (its spelling, canonical XML of each <location> at that key)."""
    found: dict[str, tuple[str, list[bytes]]] = {}
    for location in document.locations():
        key = path_key(location.path)
        if key and site_of(key) == _BACK_END:
            canonical = _location_canonical(location.element)
            found.setdefault(key, (location.path, []))[1].append(canonical)
    return found


def _location_canonical(location: etree._Element) -> bytes:
    """The location's canonical XML, its SSL policy spelled one way: IIS reads sslFlags in any
    case and order (a set of flags) and tokenChecking in any case, as _path_changes compares
    them; the other flags of _FLAG_NAMES, as sets (see _flag_set); and its bools (see
    _fold_bools). A value IIS would reject is kept as written."""
    clone = copy.deepcopy(location)
    for element, value in _settings(clone, SSL_FLAGS):
        with contextlib.suppress(ValueError):
            element.set(SSL_FLAGS.attribute, str(SslFlags.parse(value)))
    for element, value in _settings(clone, TOKEN_CHECKING):
        element.set(TOKEN_CHECKING.attribute, value.lower())
    for setting, names in _FLAG_NAMES:
        for element, value in _settings(clone, setting):
            element.set(setting.attribute, _flag_set(value, names))
    _fold_bools(clone)
    return _canonical(clone)


_EXTENDED_PROTECTION_FLAGS: Final = Setting(TOKEN_CHECKING.elements, "flags", "None")
_ACCESS_POLICY: Final = Setting(("handlers",), "accessPolicy", "Read")
_SHOW_FLAGS: Final = Setting(("directoryBrowse",), "showFlags", "Date, Time, Size, Extension")

_EXTENDED_PROTECTION_NAMES: Final = frozenset(
    {"none", "proxy", "noservicenamecheck", "allowdotlessspn", "proxycohosting"}
)
# Flags attributes other than sslFlags (which SslFlags reads, numbers too), with the names of
# their flags in IIS's schema, folded.
_FLAG_NAMES: Final = (
    (_EXTENDED_PROTECTION_FLAGS, _EXTENDED_PROTECTION_NAMES),
    (
        _ACCESS_POLICY,
        frozenset(
            {
                "none",
                "read",
                "write",
                "execute",
                "source",
                "script",
                "noremotewrite",
                "noremoteread",
                "noremoteexecute",
                "noremotescript",
            }
        ),
    ),
    (_SHOW_FLAGS, frozenset({"none", "date", "time", "size", "extension", "longdate"})),
)


def _flag_set(value: str, known: frozenset[str]) -> str:
    """A flags value as the set of its names, folded and sorted: IIS reads `Read, Script` and
    `script,read` alike. A value with a name not in `known`, or a number (IIS reads `513` as
    `Read, Script`), is kept as written: such a spelling still counts as a change. So is `None`
    with anything, itself included: None combines with nothing, and IIS rejects `None, None`
    where it reads `None`. Names are folded as Windows compares them (see spans.fold): lower()
    takes the Kelvin sign (U+212A) to `k`, and so a name IIS does not know, NoServiceNameCheck
    spelt with it, to one it knows. Only spaces around a name are dropped: str.strip() drops a
    no-break space too, which IIS is not known to read as a space."""
    names = [fold(name.strip(" ")) for name in value.split(",")]
    if "none" in names and len(names) > 1:
        return value
    return ", ".join(sorted(set(names))) if set(names) <= known else value


# The bool attributes of IIS's schema (IIS_schema.xml) that Back End locations, site
# definitions, the defaults in <sites> and pool definitions set: each attribute whose value is
# true or false, in any case, in a Back End <location>, in <sites> or in <applicationPools> of
# the real Exchange exports (shared/corpus/exchange), checked to be a bool wherever the schema
# has it; and the other bools of windowsAuthentication, which a location sets beside its
# `enabled` (the corpus has useKernelMode and authPersistNonNTLM at the server level). Not
# requireSSL: an ASP.NET attribute, in no Back End location there.
_BOOLS: Final = frozenset(
    {
        "enabled",  # the authentications, defaultDocument, directoryBrowse, httpRedirect, filter
        "allowPathInfo",  # a handler's <add>
        "childOnly",  # httpRedirect
        "exactDestination",  # httpRedirect
        "doStaticCompression",  # urlCompression
        "doDynamicCompression",  # urlCompression
        "serverAutoStart",  # site
        "useKernelMode",  # windowsAuthentication
        "useAppPoolCredentials",  # windowsAuthentication
        "authPersistNonNTLM",  # windowsAuthentication
        "authPersistSingleRequest",  # windowsAuthentication
        "allowSubDirConfig",  # virtualDirectoryDefaults, virtualDirectory
        "autoStart",  # a pool's <add>
        "loadUserProfile",  # a pool's processModel
        "pingingEnabled",  # a pool's processModel
        "rapidFailProtection",  # a pool's failure
        "disallowOverlappingRotation",  # a pool's recycling
    }
)
_BOOL_VALUES: Final = ("true", "false")


def _fold_bools(element: etree._Element) -> None:
    """Each bool of _BOOLS in `element` and below spelled `true` or `false`: IIS reads them in
    any case (PowerShell writes `True`). Only these: a string attribute, such as an
    appSettings `value`, is read by its application as written. A value other than true or
    false, in any case, is kept as written."""
    for node in element.iter(etree.Element):
        for name in _BOOLS.intersection(node.attrib):
            value = node.attrib[name].lower()
            if value in _BOOL_VALUES:
                node.set(name, value)


def _settings(location: etree._Element, setting: Setting) -> list[tuple[etree._Element, str]]:
    """Each element of the location that sets `setting`, and its value."""
    path = "/".join(("system.webServer", *setting.elements))
    found = location.iterfind(path)
    return [(el, value) for el in found if (value := el.get(setting.attribute)) is not None]


def _site(config: Config) -> Site | None:
    return config.sites.get(_BACK_END)


def _site_canonical(site: etree._Element) -> bytes:
    """The site's canonical XML, its applications, and the virtual directories of each, in the
    order of their paths: IIS finds each by its path, and a re-export may list them in another
    order. Pool names folded, and bools (see _fold_bools)."""
    clone = copy.deepcopy(site)
    applications = _sort_by_path(clone, "application")
    for application in applications:
        _sort_by_path(application, "virtualDirectory")
    for element in (*applications, *clone.iterchildren("applicationDefaults")):
        _fold_pool_name(element, "applicationPool")
    _fold_bools(clone)
    return _canonical(clone)


def _sort_by_path(parent: etree._Element, tag: str) -> list[etree._Element]:
    """Move the `tag` children of `parent` to its end, in the order of their paths."""
    children = list(parent.iterchildren(tag))
    for child in children:
        parent.remove(child)
    parent.extend(sorted(children, key=lambda child: path_key(child.get("path", ""))))
    return children


def _fold_pool_name(element: etree._Element, attribute: str) -> None:
    """The pool `attribute` names, folded: IIS compares pool names ignoring case, so
    `MSExchangeOWAAppPool` and `msexchangeowaapppool` are one pool, run as one account."""
    value = element.get(attribute)
    if value is not None:
        element.set(attribute, fold(value))


_SITE_DEFAULTS: Final = ("siteDefaults", "applicationDefaults", "virtualDirectoryDefaults")


def _site_defaults_changes(before: Document, after: Document) -> list[str]:
    """The defaults in <sites> that the Back End's site, applications and virtual directories
    take what they do not set from. The pool an <applicationDefaults> names is left to
    _pool_changes, which names the applications it reaches (those without a pool of their own)."""
    old, new = _site_defaults(before), _site_defaults(after)
    return [
        f"<{tag}> in <sites>, which the Exchange Back End takes what it does not set from, "
        "was changed"
        for tag in _SITE_DEFAULTS
        if old.get(tag) != new.get(tag)
    ]


def _site_defaults(document: Document) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for sites in document.root.iterfind("system.applicationHost/sites"):
        for element in sites.iterchildren(*_SITE_DEFAULTS):
            clone = copy.deepcopy(element)
            if clone.tag == "applicationDefaults" and "applicationPool" in clone.attrib:
                del clone.attrib["applicationPool"]
            _fold_bools(clone)
            found.setdefault(clone.tag, _canonical(clone))
    return found


def _pool_changes(before: Site | None, after: Site | None) -> list[str]:
    """The Back End applications whose pool changed, wherever it is set: on the application,
    or by an <applicationDefaults> of the site or of <sites> (which serves every site)."""
    old, new = _pools(before), _pools(after)
    return [
        f"the application pool of {path!r} is now {pool!r} (was {old[key][1]!r})"
        for key, (path, pool) in sorted(new.items())
        if key in old and _pool_key(old[key][1]) != _pool_key(pool)
    ]


def _pool_definition_changes(before: Document, after: Document, site: Site | None) -> list[str]:
    """The pools the Back End's applications run in (now) whose <applicationPools> entry
    changed, and the <applicationPoolDefaults> if any application runs in a pool. (A pool
    exchanged for another on an application is _pool_changes' finding.)"""
    users: dict[str, list[str]] = {}  # pool name folded -> the paths that run in it
    spelled: dict[str, str] = {}
    for app in site.applications if site else ():
        if app.pool:
            users.setdefault(fold(app.pool), []).append(app.config_path)
            spelled.setdefault(fold(app.pool), app.pool)
    if not users:
        return []
    old, new = _pool_elements(before), _pool_elements(after)
    changes = [
        f"the application pool {spelled[name]!r} in <applicationPools>, "
        f"which {', '.join(map(repr, paths))} {'runs' if len(paths) == 1 else 'run'} in, "
        "was changed"
        for name, paths in users.items()
        if _pool_canonical(old.get(name)) != _pool_canonical(new.get(name))
    ]
    if _pool_canonical(old.get(_DEFAULTS)) != _pool_canonical(new.get(_DEFAULTS)):
        changes.append(
            "<applicationPoolDefaults> in <applicationPools>, which every pool of the Exchange "
            "Back End takes its defaults from, was changed"
        )
    return changes


_DEFAULTS: Final = "<applicationPoolDefaults>"  # not a pool's key: those are folded


def _pool_elements(document: Document) -> dict[str, etree._Element]:
    """Each pool's <add> by its name folded (IIS compares pool names ignoring case), and the
    <applicationPoolDefaults> under _DEFAULTS."""
    found: dict[str, etree._Element] = {}
    for pools in document.root.iterfind("system.applicationHost/applicationPools"):
        for element in pools.iterchildren("add", "applicationPoolDefaults"):
            key = _DEFAULTS if element.tag == "applicationPoolDefaults" else element.get("name")
            if key is not None:
                found.setdefault(key if key == _DEFAULTS else fold(key), element)
    return found


def _pool_canonical(element: etree._Element | None) -> bytes | None:
    """A pool's <add> (or the defaults) as canonical XML, its name and bools folded (see
    _fold_bools); None for none."""
    if element is None:
        return None
    clone = copy.deepcopy(element)
    _fold_pool_name(clone, "name")
    _fold_bools(clone)
    return _canonical(clone)


def _pool_key(pool: str | None) -> str | None:
    return fold(pool) if pool is not None else None


def _pools(site: Site | None) -> dict[str, tuple[str, str | None]]:
    apps = site.applications if site else ()
    return {path_key(app.config_path): (app.config_path, app.pool) for app in apps}


def _canonical(element: etree._Element) -> bytes:
    """Canonical XML without comments and without whitespace-only text between elements; a
    <location>'s path left out (its key, compared already, is what IIS reads)."""
    clone = copy.deepcopy(element)
    clone.tail = None
    if clone.tag == "location" and "path" in clone.attrib:
        del clone.attrib["path"]
    for node in clone.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node is not clone and node.tail is not None and not node.tail.strip():
            node.tail = None
    return etree.tostring(clone, method="c14n", with_comments=False)


def _policy_changes(before: Config, after: Config, *, values: bool) -> list[str]:
    """Changes of the Back End paths' effective values (if `values`) and of their unlocks."""
    try:
        old = _back_end_policy(before)
        new = _back_end_policy(after)
    except ConfeditError:
        return []  # one version is not a loadable config: offload reports that on its own
    return (_value_changes(old, new) if values else []) + _unlock_changes(old, new)


def _value_changes(old: dict[str, _Policy], new: dict[str, _Policy]) -> list[str]:
    """Changes of the Back End paths' effective values. One line for each change made alike at
    several paths, naming the first: a change above the site (at the server level, say) reaches
    every path that inherits it, and was one line per path, a screenful for one change."""
    alike: dict[tuple[str, str], list[_Policy]] = {}
    for key in sorted(old.keys() & new.keys()):
        for change in _path_changes(old[key], new[key]):
            alike.setdefault(change, []).append(new[key])
    return [
        f"the effective {what} of {_paths(policies)}{',' if len(policies) > 1 else ''} {how}"
        for (what, how), policies in alike.items()
    ]


def _path_changes(was: _Policy, now: _Policy) -> list[tuple[str, str]]:
    """What changed at one path: (the setting, how), the path left out."""
    changes = []
    if was.ssl != now.ssl:
        how = f"is now {now.ssl!r} (was {was.ssl!r}), {_set_at(now.source)}"
        changes.append(("sslFlags", how))
    if was.token.lower() != now.token.lower():
        changes.append(("Extended Protection", f"is now {now.token!r} (was {was.token!r})"))
    if _ep_flags(was) != _ep_flags(now):
        how = f"are now {now.token_flags!r} (was {was.token_flags!r})"
        changes.append(("Extended Protection flags", how))
    if was.spns != now.spns:
        how = f"are now {_listed(now.spns)} (was {_listed(was.spns)})"
        changes.append(("Extended Protection SPNs", how))
    return changes


def _listed(names: tuple[str, ...]) -> str:
    return repr(", ".join(names)) if names else "none"


def _set_at(where: str) -> str:
    """Where an effective value comes from, in words: Resolved.where spells the server level
    and the schema default in parentheses, and "set at (schema default)" reads as a level."""
    if where == SCHEMA_DEFAULT:
        return "the schema default"
    if where == SERVER_LEVEL:
        return "set at the server level"
    return f"set at {where!r}"


def _ep_flags(policy: _Policy) -> str:
    return _flag_set(policy.token_flags, _EXTENDED_PROTECTION_NAMES)


def _unlock_changes(old: dict[str, _Policy], new: dict[str, _Policy]) -> list[str]:
    """Whether a web.config may set sslFlags at each Back End path (see iis.delegated_at): an
    unlock leaves every effective value as it was, but lets a web.config in the Back End's
    folders turn SSL off. One line for the paths that changed alike, naming the first."""
    keys = sorted(old.keys() & new.keys())
    unlocked = [new[k] for k in keys if old[k].unlocked is None and new[k].unlocked is not None]
    locked = [old[k] for k in keys if old[k].unlocked is not None and new[k].unlocked is None]
    changes = []
    if unlocked:
        changes.append(
            f"the access section is now unlocked for {_paths(unlocked)} "
            f"({unlocked[0].unlocked}): a web.config there could turn SSL off"
        )
    if locked:
        changes.append(
            f"the access section is no longer unlocked for {_paths(locked)} "
            f"(was: {locked[0].unlocked})"
        )
    return changes


def _paths(policies: list[_Policy]) -> str:
    if len(policies) == 1:
        return repr(policies[0].path)
    return f"{len(policies)} Back End paths, {policies[0].path!r} first"


class _Policy(NamedTuple):
    path: str  # as the file spells it
    ssl: str  # effective sslFlags, as IIS writes it
    source: str  # where that is set
    token: str  # effective tokenChecking (Extended Protection)
    token_flags: str  # effective Extended Protection flags, as written
    spns: tuple[str, ...]  # the service names Extended Protection accepts there (see _spns)
    unlocked: str | None  # what unlocks the access section there, if anything


def _back_end_policy(config: Config) -> dict[str, _Policy]:
    """Each Back End path (its locations, applications and virtual directories) -> its policy."""
    validate(config)
    site = _site(config)
    paths = {key: config.spelling(key) or key for key in config.keys if site_of(key) == _BACK_END}
    for key, spelling in (site.paths if site else {}).items():
        paths.setdefault(key, spelling)
    policy = {}
    for key, path in paths.items():
        ssl = config.resolve(path, SSL_FLAGS)
        token = config.resolve(path, TOKEN_CHECKING)
        token_flags = config.resolve(path, _EXTENDED_PROTECTION_FLAGS).value
        flags = str(SslFlags.parse(ssl.value))
        unlocked = delegated_at(config, key)
        spns = _spns(config, key)
        policy[key] = _Policy(path, flags, ssl.where, token.value, token_flags, spns, unlocked)
    return policy


def _spns(config: Config, key: str) -> tuple[str, ...]:
    """The service names Extended Protection accepts at `key`, sorted (their order does not
    count): a collection, <spn name="..."> items in <extendedProtection>, which each level
    from the server level down to `key` adds to, <removeSpn name="..." /> takes one from and
    <clearSpns /> empties. A child of another kind is listed as its tag, so that a change to
    it counts too."""
    names: set[str] = set()
    for level in reversed(lineage(key)):
        for definition in config.elements_at(level, TOKEN_CHECKING):
            if not config.flows_to(definition, key):
                continue
            for child in definition.element.iterchildren(etree.Element):
                _apply_spn_item(names, child)
    return tuple(sorted(names))


def _apply_spn_item(names: set[str], item: etree._Element) -> None:
    """One item of the SPN collection applied to the names a level inherits."""
    if item.tag == "clearSpns":
        names.clear()
    elif item.tag == "removeSpn":
        # takes back a name a level above added: which name counts, not that one was removed
        names.discard(item.get("name", ""))
    elif item.tag == "spn":
        names.add(item.get("name", ""))
    else:
        names.add(f"<{item.tag}>")


# --- git -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """A file's content at a revision, and its path then if git finds it renamed since."""

    content: bytes
    renamed_from: str | None = None  # relative to the file's folder
    staged: bool = True  # whether git sees the rename without being told of the new file
    # read through a folder link retargeted since: the repository's top, the link from there
    link: tuple[Path, str] | None = None


def revision_version(path: Path, revision: str) -> Version | None:
    """The file's content at `revision` of its git repository, symlinks followed as they were
    then (git keeps a link as the text of its target), under its old name if git finds it
    renamed since; None if it is not in it (or a link there leads out of the repository), or
    the repository has no commit yet. UsageProblem if there is no git, no repository, or no
    such revision."""
    git = shutil.which("git")
    if git is None:
        raise UsageProblem("--since needs git, and git is not installed", source=str(path))
    folder = path.parent
    commit_id = _commit_of(git, path, revision)
    if commit_id is None:
        return None  # no commit yet: nothing to compare with
    linked = _through_folder_link(git, path, commit_id)
    if linked is not None:
        return linked
    if folder.resolve() != _absolute(folder) and _leaves_repository(path):
        return None  # git, in the folder a link leads to, would read another repository
    content = _content_at(git, folder, commit_id, f"./{path.name}")
    if content is not None:
        return Version(content)
    # Renamed or moved since (a server's folder renamed, say): still the same server's file,
    # whose Back End must not change under its new name.
    old, staged = _renamed_from(git, folder, commit_id, path.name)
    content = _content_at(git, folder, commit_id, old) if old else None
    return Version(content, old, staged) if content is not None else None


def _commit_of(git: str, path: Path, revision: str) -> str | None:
    """The commit `revision` names in the repository of the file `path`; None if the repository
    has no commit yet. UsageProblem if there is no repository, or no such revision."""
    folder = path.parent
    commit = _git(git, folder, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if commit.returncode == 0:
        return commit.stdout.decode().strip()
    if _git(git, folder, "rev-parse", "--git-dir").returncode != 0:
        raise UsageProblem(
            "--since: not in a git repository; name the file in its git clone, or leave "
            "out --since",
            source=str(path),
        )
    if _git(git, folder, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        return None
    raise UsageProblem(
        f"--since: unknown git revision {revision!r}{_revision_hint(git, folder)}",
        source=str(path),
    )


def _through_folder_link(git: str, path: Path, commit: str) -> Version | None:
    """The file's version at `commit` by its path as named, for a file named through a folder
    link: each link on the way followed as it was then. Git, run in the file's folder, would
    follow the link as it is now (`exports/cas05` retargeted to `../servers/cas03`: cas03's
    own history). None if no folder on the way is a link, or the path is not in `commit`."""
    top = _named_top(path)
    if top is None:
        return None
    named = Path(os.path.relpath(_absolute(path), top)).as_posix()
    link = _folder_link(top, named)
    if link is None:
        return None
    found = _blob_at(git, top, commit, named)
    if found is None:
        return None
    then, content = found
    now = Path(os.path.realpath(path))
    moved = now != Path(os.path.realpath(top), then)
    return Version(content, link=(top, link) if moved else None)


def _revision_hint(git: str, folder: Path) -> str:
    """Why a revision may be missing, and what to do: a CI checkout is often a shallow clone of
    one commit; otherwise the name is wrong, or the branch was not fetched."""
    shallow = _git(git, folder, "rev-parse", "--is-shallow-repository")
    if shallow.stdout.strip() != b"true":
        return (
            "; name a branch, tag or commit of this clone (`git branch -a` lists the branches; "
            "`git fetch origin` brings those of the remote)"
        )
    return (
        " (this clone is shallow: fetch the history, e.g. `git fetch --unshallow`, or "
        "fetch-depth: 0 with actions/checkout)"
    )


def _renamed_from(git: str, folder: Path, commit: str, name: str) -> tuple[str | None, bool]:
    """The file's path at `commit` (relative to `folder`) if git finds it renamed since, else
    None; and whether the rename is staged or committed. Git compares the commit with the
    tracked files of the working tree, so a file only moved on disk (`mv`, no `git add`) would
    pass as new: it is then looked for again, as if it had been added (see _with_intent)."""
    prefix = _git(git, folder, "rev-parse", "--show-prefix")
    if prefix.returncode != 0:
        return None, True
    here = os.fsdecode(prefix.stdout.rstrip(b"\n"))  # the folder, relative to the top
    old = _path_renamed_to(git, folder, commit, here + name)
    if old is not None or _is_tracked(git, folder, name):
        return _relative(old, here), True
    with _with_intent(git, folder, name) as index:
        old = _path_renamed_to(git, folder, commit, here + name, index) if index else None
    return _relative(old, here), False


def _relative(path: str | None, here: str) -> str | None:
    return posixpath.relpath(path, here or ".") if path is not None else None


def _path_renamed_to(
    git: str, folder: Path, commit: str, new_path: str, index: str | None = None
) -> str | None:
    """The path (from the top) that git finds renamed to `new_path` since `commit`. Plumbing:
    `git diff` would refresh the index's timestamps and rewrite it, under the user's feet."""
    options = ("--name-status", "-z", "--find-renames", "--diff-filter=R")
    renames = _git(git, folder, "diff-index", *options, commit, index=index)
    if renames.returncode != 0:
        return None
    fields = os.fsdecode(renames.stdout).split("\0")
    # -z writes each rename as "R<score>", the old path, the new path (from the top)
    for status, old, new in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
        if status.startswith("R") and new == new_path:
            return old
    return None


def _is_tracked(git: str, folder: Path, name: str) -> bool:
    return _git(git, folder, "ls-files", "--error-unmatch", "--", name).returncode == 0


@contextlib.contextmanager
def _with_intent(git: str, folder: Path, name: str) -> Iterator[str | None]:
    """A copy of the repository's index in which the untracked file `name` is marked as to be
    added (`git add --intent-to-add`), so that git can pair it with a deleted file; the user's
    own index is left as it is. None if the copy cannot be made."""
    found = _git(git, folder, "rev-parse", "--git-path", "index")  # relative to `folder`
    if found.returncode != 0:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="confedit-") as scratch:
        index = str(Path(scratch, "index"))
        with contextlib.suppress(OSError):  # no index yet: git starts an empty one
            shutil.copyfile(folder / os.fsdecode(found.stdout.rstrip(b"\n")), index)
        # A split index, written, would leave a shared index of its own in the repository.
        add = ("-c", "core.splitIndex=false", "add", "--intent-to-add", "--force", "--", name)
        added = _git(git, folder, *add, index=index)
        yield index if added.returncode == 0 else None


_LINKS_FOLLOWED: Final = 40  # as Linux does, against a loop of links
_SYMLINK_MODE: Final = b"120000"


def _content_at(git: str, folder: Path, commit: str, path: str) -> bytes | None:
    """The blob at `path` (relative to `folder`) in `commit`, through the links there."""
    found = _blob_at(git, folder, commit, path)
    return found[1] if found else None


def _blob_at(git: str, folder: Path, commit: str, path: str) -> tuple[str, bytes] | None:
    """The file `path` led to in `commit` and its blob, links followed, those of the folders
    on the way too (ls-tree finds nothing below a link)."""
    for _ in range(_LINKS_FOLLOWED):
        listed = _git(git, folder, "ls-tree", "-z", commit, "--", path)
        if listed.returncode != 0:
            return None  # outside the repository
        if not listed.stdout:
            path = _through_linked_folder(git, folder, commit, path) or ""
            if not path:
                return None  # not in that commit
            continue
        mode, _kind, rest = listed.stdout.split(b" ", 2)
        blob = _git(git, folder, "cat-file", "blob", rest.split(b"\t", 1)[0].decode())
        if blob.returncode != 0:
            return None  # a folder there
        if mode != _SYMLINK_MODE:
            return path, blob.stdout
        path = _link_target(path, blob.stdout) or ""
        if not path:
            return None  # a link out of the repository: no history of it here
    return None


def _through_linked_folder(git: str, folder: Path, commit: str, path: str) -> str | None:
    """`path` with its first folder that is a link in `commit` replaced by the link's target;
    None if no folder on the way is one."""
    parts = posixpath.normpath(path).split("/")
    for end in range(1, len(parts)):
        prefix = "/".join(parts[:end])
        listed = _git(git, folder, "ls-tree", "-z", commit, "--", prefix)
        if listed.returncode != 0 or not listed.stdout.startswith(_SYMLINK_MODE + b" "):
            continue
        blob_id = listed.stdout.split(b" ", 2)[2].split(b"\t", 1)[0].decode()
        blob = _git(git, folder, "cat-file", "blob", blob_id)
        target = _link_target(prefix, blob.stdout) if blob.returncode == 0 else None
        return posixpath.join(target, *parts[end:]) if target else None
    return None


def _link_target(link: str, text: bytes) -> str | None:
    """Where a link at `link` whose text is `text` leads, relative to the same folder; None
    for an absolute target (out of the repository)."""
    target = os.fsdecode(text)
    if posixpath.isabs(target):
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(link), target))


# Git exports these to its hooks (pre-commit runs as one); they would point every look-up at
# the hook's repository, relative to its folder, instead of the repository the file is in.
_REPOSITORY_VARIABLES: Final = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX")


def _git(
    git: str, folder: Path, *args: str, index: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
    if index is not None:
        env["GIT_INDEX_FILE"] = index
    return subprocess.run(
        [git, "-C", str(folder), *args],
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )
