"""From a request to edits: which locations change, how, and whether it is safe (no I/O)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Final, Literal

from lxml import etree

from confedit import exchange
from confedit.document import Location
from confedit.edits import Edit
from confedit.errors import Refused, UsageProblem, shell_command
from confedit.iis import (
    NONE,
    SECURITY_LOCK,
    SECURITY_LOCK_EXCEPT,
    SHIPPED_REGISTRATION,
    SSL_FLAGS,
    TOKEN_CHECKING,
    Config,
    Definition,
    Resolved,
    SslFlags,
    decides_override,
    delegated_at,
    is_below,
    lineage,
    path_key,
    site_of,
    validate,
)
from confedit.spans import fold
from confedit.writing import Action, EditWriter


@dataclass(frozen=True)
class Request:
    """What to offload. With no services and no paths, the default services are the targets."""

    services: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    site: str = exchange.FRONT_END_SITE
    include_descendants: bool = False
    allow_extended_protection: bool = False

    def __post_init__(self) -> None:
        # The CLI's options reach here checked by click; a program builds its Request itself,
        # and a wrong type failed far from here (a str ran letter by letter, None raised an
        # AttributeError). A list of names is taken as its tuple, so a Request stays hashable.
        object.__setattr__(self, "services", _name_tuple("services", self.services))
        object.__setattr__(self, "paths", _name_tuple("paths", self.paths))
        if any(not path.strip() for path in self.paths):  # as --path: refused as "/" otherwise
            raise UsageProblem(f"paths takes paths: a blank one names nothing ({self.paths!r})")
        if not isinstance(self.site, str):
            raise UsageProblem(f"site takes a site's name (str), not {self.site!r}")
        object.__setattr__(self, "site", checked_site(self.site, "; paths takes paths"))
        for name in ("include_descendants", "allow_extended_protection"):
            if not isinstance(getattr(self, name), bool):
                raise UsageProblem(f"{name} takes True or False, not {getattr(self, name)!r}")


def checked_site(site: str, instead: str = "") -> str:
    """The site's name, one trailing slash tolerated as in location paths (as --site takes it),
    for Request and audit(); `instead` ends the message of a path given as the site."""
    name = site.removesuffix("/")
    if not name.strip():  # as --site: a usage error, not a refusal of a site not in <sites>
        raise UsageProblem(exchange.BLANK_SITE.format(site=site))
    if "/" in name:  # IIS forbids it in a site name: a path was meant
        raise UsageProblem(
            f"site takes a site's name, which has no '/': {site!r} is a path (here the site is "
            f"{name.partition('/')[0]!r}){instead}"
        )
    return name


def _name_tuple(field_name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise UsageProblem(
            f"{field_name} takes a tuple of names, not a str: {field_name}=({value!r},)"
        )
    if not isinstance(value, tuple | list):
        raise UsageProblem(f"{field_name} takes a tuple of names, not {type(value).__name__}")
    for name in value:
        if not isinstance(name, str):
            raise UsageProblem(f"{field_name} takes names (str), not {name!r}")
    return tuple(value)


@dataclass(frozen=True)
class Finding:
    """A warning or note for the operator; `code` is stable for machines."""

    code: str
    message: str
    path: str | None = None
    level: Literal["warning", "note"] = "warning"


@dataclass(frozen=True)
class Target:
    path: str  # the file's spelling when it has one, else the <sites> spelling, else as requested
    key: str
    service: str | None  # a --service name; None for --path; "descendant" for --include-descendants
    explicit: bool  # named by the user rather than taken from the default set


@dataclass(frozen=True)
class Outcome:
    """What happens to one target."""

    target: Target
    action: Action
    before: Resolved  # the effective sslFlags before the change
    created: tuple[str, ...]  # elements created ("access", or "security", "access", ...)
    edit: Edit | None
    offset: int  # input offset of the target's <access> start tag, or of the edit
    pinned: bool  # explicit None written where None was already inherited (appcmd does this)
    pool: str | None

    @property
    def changed(self) -> bool:
        return self.edit is not None

    @property
    def inherited(self) -> bool:
        """Whether the value before the change came from above the target's own path."""
        source = self.before.source
        return source is None or path_key(source.path) != self.target.key


@dataclass(frozen=True)
class Plan:
    outcomes: tuple[Outcome, ...]
    edits: tuple[Edit, ...]
    findings: tuple[Finding, ...]
    # Pools of the applications below a changed target whose sslFlags change with it.
    inherited_pools: tuple[str, ...] = ()
    # Such applications whose pool no element names (config paths): recycled by hand.
    apps_without_pool: tuple[str, ...] = ()

    @property
    def pools(self) -> list[str]:
        """Application pools to recycle after deployment, in target order, once each: the
        changed targets' and those of the applications that inherit their change. A target
        only pinned (None written where None was inherited) keeps its policy: no recycle."""
        pools = [o.pool for o in self.outcomes if o.changed and not o.pinned and o.pool]
        return list(dict.fromkeys([*pools, *self.inherited_pools]))


@dataclass
class _Draft:
    """Mutable state while planning: refusals are collected so that all are reported at once."""

    config: Config
    request: Request
    refusals: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    extended_protection: list[str] = field(default_factory=list)  # paths where it is on
    # Each lock that forbids a target's change (the reason, after the paths), with the paths.
    locked: dict[str, list[str]] = field(default_factory=dict)

    @cached_property
    def locks(self) -> dict[str, list[Lock]]:
        """The file's locks on sslFlags, found once for all targets (see _locks_by_level)."""
        return _locks_by_level(self.config)


def plan(config: Config, request: Request) -> Plan:
    """Decide the edits for `request`, or raise Refused / InvalidInput / UsageProblem."""
    validate(config)
    if path_key(request.site) == path_key(exchange.BACK_END_SITE):  # one reason, not one a target
        raise Refused(
            [exchange.BACK_END_AS_FRONT_END.format(site=request.site)],
            source=config.document.name,
        )
    draft = _Draft(config, request)
    restricted = registration_refusal(config)
    if restricted:
        draft.refusals.append(restricted)
    targets = _targets(draft)
    targets += _descendants(draft, targets)
    for target in targets:
        _check(draft, target)
    _judge_locks(draft)
    _judge_extended_protection(draft)
    if draft.refusals:
        raise Refused(draft.refusals, source=config.document.name)
    writer = EditWriter(config.document, config.locations)
    outcomes = [_outcome(config, writer, target) for target in targets]
    outcomes = _as_written(outcomes, writer.edits)
    _advise_mrsproxy(draft, targets)
    for outcome in outcomes:
        _advise(draft, outcome)
    if writer.edits:
        _advise_encoding(draft)
    pools, unnamed = _inherited_pools(config, outcomes)
    return Plan(tuple(outcomes), tuple(writer.edits), tuple(draft.findings), pools, unnamed)


def _inherited_pools(
    config: Config, outcomes: list[Outcome]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pools of the applications below a changed target (without a target of their own) that
    inherit its None where they required something else: their policy changes too, so their
    pool is recycled with the target's (Microsoft's steps name only the target's pool). Also
    the config paths of those whose pool no element of the file names."""
    # In target order: a set of keys would give the sites, and so the pools, in an order that
    # changes with the hash seed from one run to the next.
    changed = dict.fromkeys(o.target.key for o in outcomes if o.changed)
    targets = {o.target.key for o in outcomes}
    # Ordered sets (dicts): a site may have thousands of applications, each with a pool of its
    # own or none, and a list searched for each of them grew with the square of their number.
    pools: dict[str, None] = {}
    unnamed: dict[str, None] = {}
    for site in dict.fromkeys(site_of(key) for key in changed):
        for key in config.paths_below(site):  # one pass over the site, not one per target
            if key in targets or not any(level in changed for level in lineage(key)[1:]):
                continue
            app = config.application(key)
            if app is None or path_key(app.config_path) in targets:
                continue  # a virtual directory of a target's application: the target's pool
            if app.pool in pools or app.config_path in unnamed:
                continue
            before = SslFlags.parse(config.resolve(key, SSL_FLAGS).value)
            if before != NONE and _source_after(config, key, targets) is None:
                if app.pool:
                    pools[app.pool] = None
                else:
                    unnamed[app.config_path] = None
    return tuple(pools), tuple(unnamed)


# --- targets ---------------------------------------------------------------------------------


def _targets(draft: _Draft) -> list[Target]:
    request, config = draft.request, draft.config
    site = config.sites.get(fold(request.site))
    site_name = site.name if site else request.site
    explicit = bool(request.services or request.paths)
    targets: list[Target] = []
    for name in request.services or (() if request.paths else exchange.DEFAULT_SERVICES):
        service = exchange.SERVICE_BY_NAME.get(name.lower())
        if service is None:
            raise UsageProblem(f"unknown service '{name}'; valid names: {exchange.service_names()}")
        targets.append(_target(config, f"{site_name}/{service.directory}", service.name, explicit))
    targets += [_target(config, path, None, True) for path in request.paths]
    unique = list({t.key: t for t in reversed(targets)}.values())[::-1]  # first mention wins
    if not explicit:
        unique = _present_defaults(draft, unique, site_name)
    return unique


def _target(config: Config, path: str, service: str | None, explicit: bool) -> Target:
    """A path the file has is named as the file spells it; one it has not, only ever named in a
    refusal, as it was typed: a trailing slash taken off it would make 'owa//' read 'owa/',
    which the file may have, and hide the slash too many."""
    key = path_key(path)
    spelling = config.spelling(key) or config.sites_spelling(key) or path
    return Target(spelling, key, service, explicit)


def _present_defaults(draft: _Draft, targets: list[Target], site_name: str) -> list[Target]:
    present = [t for t in targets if draft.config.sites_spelling(t.key) is not None]
    if not present:
        if fold(site_name) not in draft.config.sites:  # a misspelt --site, not a server's role
            draft.refusals.append(_unknown_site(draft.config, site_name))
        else:
            not_a_cas = exchange.NOT_A_CAS.format(site=site_name)
            draft.refusals.append(f"{not_a_cas} {exchange.NOT_A_CAS_ADVICE}")
        return []
    for target in targets:
        if target not in present:
            draft.findings.append(
                Finding(
                    "target-absent",
                    f"skipped {target.service}: '{target.path}' is not an application or virtual "
                    "directory in <sites> of this file",
                    target.path,
                )
            )
    return present


def _descendants(draft: _Draft, targets: list[Target]) -> list[Target]:
    """Paths below a target that would still require SSL after the change: named in a warning,
    or returned as targets of their own with --include-descendants."""
    config = draft.config
    keys = {t.key for t in targets}
    offloaded = set(keys)  # the targets and the descendants found so far
    found: set[str] = set()
    for target in targets:
        # Shallowest first: a path below a descendant found here inherits the None written
        # there, so it needs no edit (nor a place in the warning) of its own.
        for key in sorted(config.below(target.key), key=_depth):
            if _is_mrsproxy(draft, key):
                continue  # keeping its own SSL is what MRSProxy needs: nothing to offer
            if key not in offloaded and _requires_ssl_after(config, key, offloaded):
                found.add(key)
                offloaded.add(key)
    still = {  # in file order
        key: Target(config.spelling(key) or key, key, "descendant", False)
        for key in config.keys
        if key in found
    }
    # An application or directory with no <location> of its own inherits: it keeps SSL only
    # where no None written above reaches it, i.e. past inheritInChildApplications="false".
    # Those below a location listed above are left out: offloading that location covers them.
    for target in targets:
        for key in config.paths_below(target.key):
            if key in offloaded or key in still or config.locations_at(key):
                continue
            if _requires_ssl_after(config, key, offloaded):
                spelling = config.sites_spelling(key) or key
                still[key] = Target(spelling, key, "descendant", False)
    if not draft.request.include_descendants:
        below = _below_each(targets, still)
        for target in targets:
            _warn_descendants(draft, target, below[target.key])
    return list(still.values()) if draft.request.include_descendants else []


def _below_each(targets: list[Target], still: dict[str, Target]) -> dict[str, list[str]]:
    """The paths of `still` below each target (by key), in order: each path is put under the
    targets above it in one pass, not looked for among them all once a target."""
    below: dict[str, list[str]] = {target.key: [] for target in targets}
    for key, descendant in still.items():
        for level in lineage(key)[1:]:
            if level in below:
                below[level].append(descendant.path)
    return below


def _is_mrsproxy(draft: _Draft, key: str) -> bool:
    mrsproxy = _mrsproxy_key(draft)
    return key == mrsproxy or is_below(key, mrsproxy)


def _depth(key: str) -> int:
    return key.count("/")


# A warning names at most this many paths: a hosting site can have thousands below a target,
# and a preview with --include-descendants lists every one of them as a target.
NAMED_DESCENDANTS: Final = 10


def first_named(names: Sequence[str], more: str = "") -> str:
    """The first NAMED_DESCENDANTS of `names`, then how many more (and `more` after that)."""
    text = ", ".join(names[:NAMED_DESCENDANTS])
    if len(names) > NAMED_DESCENDANTS:
        text += f" and {len(names) - NAMED_DESCENDANTS:,} more{more}"
    return text


def _warn_descendants(draft: _Draft, target: Target, below: list[str]) -> None:
    if not below:
        return
    named = first_named(below, " (a preview with --include-descendants lists them all)")
    draft.findings.append(
        Finding(
            "descendants-require-ssl",
            f"below {target.path}, these paths still require SSL with it offloaded: "
            f"{named}; offload them too with --include-descendants, or keep them on SSL "
            "bridging",
            target.path,
        )
    )


def _requires_ssl_after(config: Config, key: str, target_keys: set[str]) -> bool:
    source = _source_after(config, key, target_keys)
    if source is None:  # inherits the None written at a target
        return False
    return SslFlags.parse(source.value).requires_ssl


def _source_after(config: Config, key: str, target_keys: set[str]) -> Resolved | None:
    """The effective sslFlags of `key` after the targets are set, or None if a target decides."""
    for level, definition in config.walk(key, SSL_FLAGS, stops=target_keys):
        if definition is not None:
            return Resolved(definition.element.get("sslFlags", ""), definition)
        location = _location_to_edit(config, level)  # where the target's None is written
        if location is None or config.location_flows_to(location, key):
            return None
        # inheritInChildApplications="false" there stops the None above `key`'s child
        # application. Nothing else at this level sets sslFlags (the level has one access
        # section, the one that gets the None): the value comes from further up.
    return Resolved(SSL_FLAGS.default, None)


# --- safety checks ---------------------------------------------------------------------------


def registration_refusal(config: Config) -> str | None:
    """Why no offload can be written where the access section's registration keeps it out of
    the <location> elements of paths (appcmd's /commit:APPHOST writes it there, and fails);
    None where it does not. Audit refuses such a file too, with the same reason."""
    registration = config.registration_restricts
    if registration is None:
        return None
    return (
        f"the access section is kept out of <location> elements of paths by {registration}: "
        "an offload sets sslFlags in the <location> of each path, as appcmd does, which IIS "
        f"would then refuse; restore the registration as IIS ships it, {SHIPPED_REGISTRATION}, "
        "then run confedit again"
    )


def _check(draft: _Draft, target: Target) -> None:
    request, config = draft.request, draft.config
    front = path_key(request.site)
    site = site_of(target.key)
    # Also where the path is written with a backslash or a leading slash, which _outside would
    # answer with --site: naming the Back End there is refused in turn, pointing back here.
    if path_key(exchange.BACK_END_SITE) in (site, site_of(path_key(_slashed(target.path)))):
        instead = _instead_of_back_end(config, target, request.site)
        draft.refusals.append(
            f"'{target.path}' is in the Exchange Back End site: {exchange.BACK_END_REASON}; "
            f"{instead}"
        )
        return
    if site != front or not target.key:
        draft.refusals.append(_outside(config, target, request.site))
        return
    if _is_mrsproxy(draft, target.key):
        draft.refusals.append(f"'{target.path}': {exchange.MRSPROXY_REASON}")
        return
    if target.service != "descendant" and not _is_known_path(config, target.key):
        draft.refusals.append(_not_in_sites(config, target))
        return
    if not _already_none(config, target.key):  # nothing written there: no lock broken
        _check_locks(draft, target)
    _check_extended_protection(draft, target)


def _instead_of_back_end(config: Config, target: Target, front: str) -> str:
    """What to offload instead of a Back End path: the same directory in the front end, or its
    nearest ancestor there (the Back End's mapi/emsmdb is the front end's mapi); for the site
    itself, or a directory the front end lacks, the default services; for MRSProxy, nothing
    (it keeps SSL in the front end too)."""
    below = _slashed(target.path).partition("/")[2].strip("/")
    meant = path_key(f"{front}/{below}")
    mrsproxy = path_key(f"{front}/{exchange.MRSPROXY_DIRECTORY}")
    if below and (meant == mrsproxy or is_below(meant, mrsproxy)):
        # Its nearest path in the front end is EWS, which would offload MRSProxy with it.
        return f"nor in the front end: {exchange.MRSPROXY_REASON}"
    if below:
        for key in lineage(meant)[:-2]:  # not the site, not the server
            spelled = config.spelling(key) or config.sites_spelling(key)
            if spelled is not None:
                return f"offload '{spelled}' instead"
    return "offload the front end's services instead (leave out --path)"


def _slashed(path: str) -> str:
    """A path as IIS writes location paths: '/' between names, none before the site."""
    return path.replace("\\", "/").lstrip("/")


def _already_none(config: Config, key: str) -> bool:
    """Whether the path's own <access> already says None (in any spelling), which the edit
    leaves as it is (see writing.EditWriter.offload)."""
    return any(
        SslFlags.parse(definition.element.get("sslFlags", "")) == NONE
        for definition in config.definitions(key, SSL_FLAGS)
    )


def _is_known_path(config: Config, key: str) -> bool:
    """An application or virtual directory of <sites>, or a path of a site in <sites> that the
    file configures with a <location> of its own (a folder such as owa/auth): appcmd sets
    either. Any other path is more likely a typo than a folder on the server."""
    if config.sites_spelling(key) is not None:
        return True
    return site_of(key) in config.sites and bool(config.locations_at(key))


def _outside(config: Config, target: Target, front: str) -> str:
    """Why a target is outside the front-end site, with the spelling meant if it is clear."""
    if not target.key:  # "", ".", "/" or "./": shown as '' it would say nothing
        return (
            f"'{target.path or '/'}' is the server level, not a path in the front-end site "
            f"'{front}'; name one below it, such as '{front}/owa'"
        )
    meant = _slashed(target.path)
    if meant != target.path and site_of(path_key(meant)) == path_key(front):
        spelled = config.spelling(path_key(meant)) or config.sites_spelling(path_key(meant))
        return (
            f"'{target.path}' is not a location path: they start with the site's name and use "
            f"'/' between names; did you mean '{spelled or meant}'?"
        )
    misspelt = _misspelt_site(config, target.path.partition("/")[0])
    if misspelt:
        return f"'{target.path}': {misspelt}"
    bare = meant.rstrip("/")
    site = bare.partition("/")[0]
    named = [name for name in config.site_names if path_key(name) == path_key(site)]
    if not named:
        return _no_such_site(config, target.path, bare, front)
    return (
        f"'{target.path}' is outside the front-end site '{front}'; to offload it, choose its "
        f"site as the front-end site: {shell_command(['--site', named[0]])}"
    )


def _no_such_site(config: Config, path: str, bare: str, front: str) -> str:
    """Why a --path whose first name is no site of the file is refused: it is most likely a
    path written without its site ('owa', '/owa'), which choosing that name as --site would
    not mend (the site would not be found either)."""
    hint = f"a location path starts with its site's name, such as '{front}/owa'"
    if not bare:  # slashes alone ('//', '\\'): no name, and the front end itself is not meant
        return f"'{path}' names no site; {hint}"
    site = bare.partition("/")[0]
    meant = f"{front}/{bare}"
    if _is_known_path(config, path_key(meant)):
        hint = f"did you mean '{meant}'?"
    return f"'{path}': the site '{site}' is not in <sites>; {hint}"


def _misspelt_site(config: Config, name: str) -> str | None:
    """Why `name` is wrong if it is no site of the file but near one of them (a typo in a
    --path's site, which choosing another --site would not mend), else None."""
    if path_key(name) in {path_key(site) for site in config.site_names}:
        return None
    if exchange.nearest_site(name, config.site_names) is None:
        return None
    return _unknown_site(config, name)


def _not_in_sites(config: Config, target: Target) -> str:
    site = config.sites.get(site_of(target.key))
    if site is None:
        return f"'{target.path}': {_unknown_site(config, target.path.partition('/')[0])}"
    last = target.key.rsplit("/", 1)[-1]  # folded, without the trailing slash path_key ignores
    served = [app for app in site.applications if app.pool and fold(app.pool) == last]
    if served:
        paths = [f"'{app.config_path}'" for app in served]
        listed = paths[0] if len(paths) == 1 else f"{', '.join(paths[:-1])} and {paths[-1]}"
        use = "that path" if len(paths) == 1 else "the path of the one meant"
        return (
            f"'{target.path}' is not a path: {served[0].pool} is an application pool, and it "
            f"serves {listed} — use {use}"
        )
    if target.service in exchange.SERVICE_BY_NAME:
        # Its path is the service's own: a near spelling would be another service's path.
        return (
            f"'{target.path}' (--service {target.service}) is not an application or virtual "
            f"directory of '{site.name}' in <sites>: this server's file has none for that service; "
            f"leave out --service {target.service} for it (without --service, the default "
            "services a file lacks are skipped with a warning)"
        )
    paths = site.config_paths()
    by_key = {path_key(p): p for p in paths}
    close = difflib.get_close_matches(target.key, list(by_key), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(by_key[c]) for c in close)}?" if close else ""
    return (
        f"'{target.path}' is not an application or virtual directory of '{site.name}' in <sites>"
        + hint
    )


def _unknown_site(config: Config, name: str) -> str:
    """Why a site name is wrong, and the name meant if the file has one near it."""
    nearest = exchange.nearest_site(name, config.site_names)
    return exchange.unknown_site(name, nearest)


def _check_locks(draft: _Draft, target: Target) -> None:
    """Every lock that forbids the change, not only the first: lifting one as its reason says
    must not leave another to refuse the next run."""
    config = draft.config
    for level in lineage(target.key)[1:]:
        for holder, (what, fix, element) in draft.locks.get(level, ()):
            if config.flows_to(holder, target.key):
                reason = (
                    f'IIS would reject the change with "Lock violation": sslFlags is locked by '
                    f"{what} at {holder.where} (line {config.document.line_of(element)}); {fix}"
                )
                draft.locked.setdefault(reason, []).append(target.path)


# holder, (what, how to lift it for sslFlags alone, the element to name)
Lock = tuple[Definition, tuple[str, str, etree._Element]]


def _locks_by_level(config: Config) -> dict[str, list[Lock]]:
    """The locks on sslFlags for the levels below, by the level that sets them, each with the
    element (and <location>) that holds it: on an <access>, then on a <security>, which locks
    the <access> element below whether or not it holds one itself."""
    found: dict[str, list[Lock]] = {}
    for access in config.elements(SSL_FLAGS):
        for lock in _locks_on(access.element):
            found.setdefault(path_key(access.path), []).append((access, (*lock, access.element)))
    # Each <security> once, whichever of the two it holds (or both: each is a lock of its own).
    for security in config.holding(SECURITY_LOCK, SECURITY_LOCK_EXCEPT):
        for lock in _locks_on_security(security.element):
            found.setdefault(path_key(security.path), []).append(
                (security, (*lock, security.element))
            )
    return found


def _locks_on_security(element: etree._Element) -> list[tuple[str, str]]:
    """The locks a <security> element holds on the <access> below it, each with its fix."""
    return _list_locks(element, "Elements", "access")


def _judge_locks(draft: _Draft) -> None:
    """One refusal a lock, naming every path it forbids: a lock above the front end forbids
    them all, which with --include-descendants may be thousands."""
    for reason, paths in draft.locked.items():
        named = ", ".join(f"'{path}'" for path in paths)
        draft.refusals.append(f"{named}: {reason}")


def _locks_on(element: etree._Element) -> list[tuple[str, str]]:
    """The locks an <access> element holds that forbid changing sslFlags below it, each with
    its fix (a lockElements on its <security> is found by _locks_by_level)."""
    locks = _list_locks(element, "Attributes", "sslFlags")
    if element.get("lockItem", "").lower() == "true":
        locks.append((f'lockItem="{element.get("lockItem")}" on <access>', "remove that attribute"))
    return locks


def _list_locks(element: etree._Element, kind: str, name: str) -> list[tuple[str, str]]:
    """The locks that lock{kind} and lockAll{kind}Except (kind: Attributes or Elements) on
    `element` hold on `name`, each with its fix."""
    locks = []
    locked, kept = f"lock{kind}", f"lockAll{kind}Except"
    names = element.get(locked)
    except_names = element.get(kept)
    if _names(names) & {name.lower(), "*"}:
        what = f'{locked}="{names}" on <{element.tag}>'
        locks.append((what, _unlisted(kind, names, name, beside=except_names is not None)))
    if except_names is not None and name.lower() not in _names(except_names):
        what = f'{kept}="{except_names}" on <{element.tag}>'
        locks.append((what, _listed(kept, except_names, name)))
    return locks


# "Remove that lock" would also lift what else it locks (lockElements="authentication, access"
# keeps <authentication> from being changed below): the fixes lift it for sslFlags alone.
def _unlisted(kind: str, value: str | None, name: str, *, beside: bool) -> str:
    """How to lift a lockAttributes or lockElements (kind: Attributes or Elements) for `name`
    alone; `beside`: the element has a lockAll{kind}Except too (whose own fix names `name`)."""
    attribute = f"lock{kind}"
    items = _items(value)
    if "*" in items and beside:  # a second lockAll{kind}Except would be no XML
        return f"remove that attribute: the lockAll{kind}Except beside it keeps the rest locked"
    if "*" in items:  # everything: everything but `name` is the other form
        return f'replace it with lockAll{kind}Except="{name}", which keeps the rest locked'
    rest = [item for item in items if item.lower() != name.lower()]
    if not rest:
        return "remove that attribute"
    return f'change it to {attribute}="{", ".join(rest)}", which keeps the rest locked'


def _listed(attribute: str, value: str, name: str) -> str:
    """How to lift a lockAllAttributesExcept or lockAllElementsExcept for `name` alone."""
    kept = ", ".join([*_items(value), name])  # an empty name left out: "a," is "a"
    return f'change it to {attribute}="{kept}", which keeps the rest locked'


def _items(value: str | None) -> list[str]:
    """The names of a lock list as written (case kept), without the blanks around them."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _names(value: str | None) -> set[str]:
    return {item.lower() for item in _items(value)}


def _check_extended_protection(draft: _Draft, target: Target) -> None:
    """Extended Protection on the target, or on a location below it that inherits its new
    value: each path is noted for _judge_extended_protection."""
    config = draft.config
    keys = [target.key] + [
        key for key in config.below(target.key) if _source_after(config, key, {target.key}) is None
    ]
    for key in keys:
        token = config.resolve(key, TOKEN_CHECKING)
        if token.value.lower() in ("allow", "require") and token.source is not None:
            # The line of the <extendedProtection> to change, which a path inheriting it lacks.
            line = config.document.line_of(token.source.element)
            draft.extended_protection.append(
                f'{config.spelling(key) or target.path} (tokenChecking="{token.value}" '
                f"from {token.where}, line {line})"
            )


def _judge_extended_protection(draft: _Draft) -> None:
    """One refusal (or, when allowed, one warning) naming every path, Microsoft's words once."""
    if not draft.extended_protection:
        return
    message = (
        f"Extended Protection is on for {', '.join(draft.extended_protection)}. "
        f"{exchange.EXTENDED_PROTECTION_STATEMENT}"
    )
    if draft.request.allow_extended_protection:
        draft.findings.append(Finding("extended-protection", message))
    else:
        draft.refusals.append(f"{message} What to do: {exchange.EXTENDED_PROTECTION_ADVICE}")


def _mrsproxy_key(draft: _Draft) -> str:
    return path_key(f"{draft.request.site}/{exchange.MRSPROXY_DIRECTORY}")


def _advise_mrsproxy(draft: _Draft, targets: list[Target]) -> None:
    """The MRSProxy warning: MRSProxy has no <location> in real files and inherits from EWS, so
    offloading EWS, or anything above it, offloads MRSProxy too, unless a location of its own
    keeps it on SSL."""
    mrsproxy = _mrsproxy_key(draft)
    if not _is_known_path(draft.config, mrsproxy.rpartition("/")[0]):
        # No EWS, neither in <sites> nor as a <location> a --path could offload (a plain IIS
        # server's site offloaded): no MRSProxy either.
        return
    above = [target for target in targets if is_below(mrsproxy, target.key)]
    keys = {target.key for target in targets}
    if above and not _requires_ssl_after(draft.config, mrsproxy, keys):
        nearest = max(above, key=lambda target: _depth(target.key))
        draft.findings.append(Finding("mrsproxy", exchange.MRSPROXY_WARNING, nearest.path))


def _advise(draft: _Draft, outcome: Outcome) -> None:
    """Warnings that do not stop the change: client certificates no longer asked for, and an
    access section a web.config could override (MRSProxy's: see _advise_mrsproxy)."""
    config, target = draft.config, outcome.target
    dropped = SslFlags.parse(outcome.before.value).client_certificate_flags
    if dropped and outcome.changed:
        draft.findings.append(
            Finding(
                "client-certificates-dropped",
                f"{target.path} required client certificates ({', '.join(dropped)}); with "
                "sslFlags=None the server no longer asks for them: the load balancer must "
                "handle client certificates",
                target.path,
            )
        )
    delegated = delegated_at(config, target.key)
    if delegated:
        draft.findings.append(
            Finding(
                "delegated",
                f"the access section is unlocked for {target.path} by {delegated}: a web.config "
                "below it could override sslFlags, which an offline tool cannot see; check the "
                "web.config files on the server",
                target.path,
            )
        )


def _advise_encoding(draft: _Draft) -> None:
    """A UTF-16 file's diff is UTF-8 text (for review): git apply and patch find none of its
    lines in the file. Said where it is written, not only in the README's Rollback."""
    encoding = draft.config.document.encoding
    if not encoding.is_utf8:
        draft.findings.append(
            Finding(
                "diff-not-applicable",
                f"the file is {encoding.label}: its diff is UTF-8 text for review, which neither "
                "git apply nor patch applies to it; deploy the patched file (-o, or --in-place "
                "with --backup)",
                level="note",
            )
        )


# --- edits -----------------------------------------------------------------------------------


def _outcome(config: Config, writer: EditWriter, target: Target) -> Outcome:
    before = config.resolve(target.path, SSL_FLAGS)
    app = config.application(target.path)
    pool = app.pool if app else None
    location = _location_to_edit(config, target.key)
    action, offset = writer.offload(target.path, location)
    edit = None if action == "unchanged" else writer.edits[-1]
    created = edit.creates if edit else ()
    at_level = before.source is not None and path_key(before.source.path) == target.key
    pinned = edit is not None and SslFlags.parse(before.value) == NONE and not at_level
    return Outcome(target, action, before, created, edit, offset, pinned, pool)


def _as_written(outcomes: list[Outcome], edits: Sequence[Edit]) -> list[Outcome]:
    """The outcomes with their edits as the writer ended with them. Each changed target made
    one edit, in target order; but a new <location> that ends the line `</configuration>` was
    on takes that line ending from the one made before it, whose edit it replaces (see
    EditWriter._end_line_only_after_the_last): the outcome kept the edit as first made, which
    the plan's edits no longer hold."""
    written = iter(edits)
    return [o if o.edit is None else replace(o, edit=next(written)) for o in outcomes]


def _location_to_edit(config: Config, key: str) -> Location | None:
    """The <location> that gets the setting: the one that already has <access>, else the first
    without an override mode of its own, else None (a new one is written).

    IIS allows several <location> elements with one path as long as they define different
    sections; validate() has already refused two that both define access. IIS keeps each
    section's override mode with it (a section in <location overrideMode="Allow"> is unlocked
    for web.config files), and appcmd's new section asks for none: it does not go into a
    location that would lock or unlock it, but into a new one of the same path.
    """
    for definition in config.elements_at(key, SSL_FLAGS):
        if definition.location is not None:
            return definition.location
    locations = config.locations_at(key)
    return next((loc for loc in locations if not decides_override(loc.element)), None)
