"""`confedit audit`: the effective SSL policy of the Exchange sites, as IIS would resolve it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from confedit import exchange
from confedit.document import load
from confedit.errors import ExitCode, Refused, UsageProblem, shown
from confedit.iis import (
    SCHEMA_DEFAULT,
    SERVER_LEVEL,
    SSL_FLAGS,
    TOKEN_CHECKING,
    WINDOWS_AUTH_ENABLED,
    Config,
    SslFlags,
    delegated_at,
    is_below,
    lineage,
    parent_key,
    path_key,
    site_of,
    token_checking_name,
    validate,
)
from confedit.plan import checked_site, first_named, registration_refusal
from confedit.spans import fold
from confedit.style import paint

SCHEMA_ID: Final = "https://confedit.example/schemas/audit-report-1.json"


@dataclass(frozen=True)
class Row:
    """One location path and its effective SSL policy."""

    path: str
    role: str  # "front-end" or "back-end"
    service: str | None  # the default-target service at this path, if any
    has_location: bool  # the file has a <location> for this path
    in_sites: bool  # an application or virtual directory in <sites>
    explicit_ssl_flags: str | None  # set at this very path, as written
    effective_ssl_flags: str  # formatted as IIS does
    ssl_flags_from: str  # the path it is inherited from, the server level, or the default
    requires_ssl: bool
    extended_protection: str  # effective tokenChecking
    extended_protection_from: str
    windows_authentication: bool
    application_pool: str | None
    line: int | None  # line of the <location> element
    unlocked_by: str | None  # what lets a web.config below override sslFlags here, if anything


@dataclass(frozen=True)
class AuditReport:
    name: str
    front_end: str
    back_end: str
    rows: tuple[Row, ...]
    front_end_found: bool = True  # the front-end site is in <sites>
    nearest_site: str | None = None  # if not: the site in <sites> whose name is nearest

    def targets(self) -> list[Row]:
        return [row for row in self.rows if row.service is not None]

    @property
    def front_end_problem(self) -> str | None:
        """Why no default target is in <sites>, if none is: a site that is not there (a
        misspelt --site, most likely), or one without the Exchange virtual directories."""
        if any(row.in_sites for row in self.targets()):
            return None
        if not self.front_end_found:
            return exchange.unknown_site(self.front_end, self.nearest_site)
        return exchange.NOT_A_CAS.format(site=self.front_end)

    @property
    def all_offloaded(self) -> bool:
        """Every default target present in <sites> has an effective sslFlags of None, and there is
        at least one (a file without any is not a Client Access server's)."""
        present = [row for row in self.targets() if row.in_sites]
        return bool(present) and all(_offloaded(row) for row in present)

    @property
    def back_end_without_ssl(self) -> tuple[str, ...]:
        """The Back End's paths that do not require SSL, as the file spells them, but those at
        or below a path Exchange itself ships so, and those below a path already named (a site
        offloaded by hand is one path, not every path that inherits from it)."""
        site = path_key(self.back_end)
        # The keys of those paths: a path is covered when one is at or above it, which its
        # lineage finds (not a comparison with each path named, which grew with their square).
        covered = {f"{site}/{path_key(path)}" for path in exchange.BACK_END_WITHOUT_SSL}
        named: list[str] = []
        for row in self.rows:
            if row.role != "back-end" or row.requires_ssl:
                continue
            key = path_key(row.path)
            if covered.isdisjoint(lineage(key)):
                named.append(row.path)
                covered.add(key)
        return tuple(named)

    def unlocked_below(self) -> list[tuple[Row, Row]]:
        """Each path below a default target that is locked whose access section is unlocked
        (one <location> at owa/Integrated with overrideMode="Allow", say), with that target, in
        path order. Below an unlocked target the target's own unlock covers it."""
        locked = [row for row in self.targets() if not (row.in_sites and row.unlocked_by)]
        found: list[tuple[Row, Row]] = []
        for row in self.rows:
            key = path_key(row.path)
            target = next((t for t in locked if is_below(key, path_key(t.path))), None)
            if target is not None and row.unlocked_by is not None:
                found.append((row, target))
        return found

    @property
    def status(self) -> str:
        return "offloaded" if self.all_offloaded else "not-offloaded"

    def exit_code(self, *, offloaded_only: bool = False) -> int:
        """The file's exit code: with `--offloaded` (`offloaded_only`), 1 when a default target
        is not offloaded or the Back End does not require SSL; else 0."""
        gate_fails = offloaded_only and not (self.all_offloaded and not self.back_end_without_ssl)
        return int(ExitCode.WORK_FOUND if gate_fails else ExitCode.OK)

    def to_json(self, *, offloaded_only: bool = False) -> dict[str, Any]:
        """The JSON report (schema: schemas/audit-report.schema.json); with `offloaded_only`
        (`--offloaded`), only the targets."""
        data: dict[str, Any] = {
            "$schema": SCHEMA_ID,
            "file": self.name,
            "status": self.status,
            "exit_code": self.exit_code(offloaded_only=offloaded_only),
            "front_end_site": self.front_end,
            "back_end_site": self.back_end,
            "all_offloaded": self.all_offloaded,
            "back_end_without_ssl": list(self.back_end_without_ssl),
            "offloaded": [
                {
                    "service": row.service,
                    "path": row.path,
                    "present": row.in_sites,
                    "offloaded": _offloaded(row) if row.in_sites else None,
                    "effective_ssl_flags": row.effective_ssl_flags,
                    "ssl_flags_from": row.ssl_flags_from,
                    "unlocked_by": row.unlocked_by,
                }
                for row in self.targets()
            ],
        }
        data["unlocked_below"] = [
            {"path": row.path, "target": target.service or target.path, "unlocked_by": by}
            for row, target in self.unlocked_below()
            if (by := row.unlocked_by) is not None
        ]
        if self.front_end_problem is not None:
            data["front_end_problem"] = self.front_end_problem
        if not offloaded_only:
            data["rows"] = [asdict(row) for row in self.rows]
        return data


def _offloaded(row: Row) -> bool:
    return is_offloaded(row.effective_ssl_flags)


def is_offloaded(ssl_flags: str) -> bool:
    """Whether an effective sslFlags value requires nothing (None, in any spelling)."""
    return SslFlags.parse(ssl_flags).bits == 0


def audit(raw: bytes, name: str = "<input>", site: str = exchange.FRONT_END_SITE) -> AuditReport:
    """Load a config and resolve the SSL policy of every location of both Exchange sites; the
    Back End as the front-end site is refused, as offload refuses it (its gate would advise an
    offload that refuses, and pass a Back End that had lost its SSL). So is a file whose
    registration of the access section keeps it out of the <location> of a path, with offload's
    reason: IIS would not load it with the <access> offload writes there, and its table would
    show it as a file to offload."""
    if not isinstance(site, str):
        raise UsageProblem(f"site takes a site's name (str), not {site!r}")
    site = checked_site(site)  # as --site and Request take it
    if path_key(site) == path_key(exchange.BACK_END_SITE):
        raise Refused([exchange.BACK_END_AS_FRONT_END.format(site=site)], source=name)
    config = Config(load(raw, name, sites=(site, exchange.BACK_END_SITE)))
    validate(config)
    restricted = registration_refusal(config)
    if restricted:
        raise Refused([restricted], source=name)
    return audit_config(config, site)


def audit_config(config: Config, site: str = exchange.FRONT_END_SITE) -> AuditReport:
    front_site = config.sites.get(fold(site))
    front = front_site.name if front_site else site
    roles = {path_key(front): "front-end", path_key(exchange.BACK_END_SITE): "back-end"}
    services = {path_key(f"{front}/{s.directory}"): s for s in exchange.SERVICES if s.default}
    keys = [key for key in config.keys if key and site_of(key) in roles]
    keys += [key for key in services if key not in keys]
    keys += [key for key in _unlisted(config, roles) if key not in keys]
    order = {role: i for i, role in enumerate(roles)}
    keys.sort(key=lambda k: (order[site_of(k)], k))
    rows = []
    for key in keys:
        service = services.get(key)
        spelling = (
            config.spelling(key)
            or config.sites_spelling(key)
            or (f"{front}/{service.directory}" if service else key)
        )
        rows.append(_row(config, key, spelling, roles[site_of(key)], service))
    nearest = None
    if front_site is None:
        nearest = exchange.nearest_site(front, config.site_names)
    return AuditReport(
        config.document.name,
        front,
        exchange.BACK_END_SITE,
        tuple(rows),
        front_site is not None,
        nearest,
    )


def _unlisted(config: Config, sites: Collection[str]) -> list[str]:
    """The applications and virtual directories of `sites` without a <location> whose policy
    is not their parent path's: a child application past inheritInChildApplications="false".
    Without a row of their own, the table would show them inheriting what they do not."""
    return [
        key
        for site in sites
        for key in config.paths_below(site)
        if not config.locations_at(key)
        and _policy(config, key) != _policy(config, parent_key(key) or "")
    ]


def _policy(config: Config, key: str) -> tuple[str, str]:
    """The effective sslFlags and Extended Protection at `key`, as the table shows them."""
    ssl = config.resolve(key, SSL_FLAGS)
    token = config.resolve(key, TOKEN_CHECKING)
    return str(SslFlags.parse(ssl.value)), token_checking_name(token.value)


def _row(config: Config, key: str, path: str, role: str, service: exchange.Service | None) -> Row:
    ssl = config.resolve(path, SSL_FLAGS)
    token = config.resolve(path, TOKEN_CHECKING)
    windows = config.resolve(path, WINDOWS_AUTH_ENABLED)
    explicit = next((d.element.get("sslFlags") for d in config.definitions(key, SSL_FLAGS)), None)
    flags = SslFlags.parse(ssl.value)
    app = config.application(path)
    locations = config.locations_at(key)
    return Row(
        path=path,
        role=role,
        service=service.name if service else None,
        has_location=bool(locations),
        in_sites=config.sites_spelling(key) is not None,
        explicit_ssl_flags=explicit,
        effective_ssl_flags=str(flags),
        ssl_flags_from="here" if explicit is not None else ssl.where,
        requires_ssl=flags.requires_ssl,
        extended_protection=token_checking_name(token.value),
        extended_protection_from=token.where,
        windows_authentication=windows.value.lower() == "true",
        application_pool=app.pool if app else None,
        line=config.document.line_at(locations[0].span.start) if locations else None,
        unlocked_by=delegated_at(config, key),
    )


# --- text --------------------------------------------------------------------------------------


def render_table(report: AuditReport, *, offloaded_only: bool = False, color: bool = False) -> str:
    """An aligned table per site, paths relative to the site (fits 80-120 columns)."""
    if offloaded_only:
        return _render_offloaded(report, color)
    out: list[str] = [paint(shown(report.name), "header", color)]
    for role, site in (("front-end", report.front_end), ("back-end", report.back_end)):
        rows = [row for row in report.rows if row.role == role]
        if not rows:
            continue
        out += ["", paint(f"{site} ({role})", "header", color)]
        header = ("PATH", "SSLFLAGS", "FROM", "SSL", "EP", "POOL")
        labels = _tree_labels(rows, site)
        body = [_cells(row, label, site) for row, label in zip(rows, labels, strict=True)]
        out += aligned([header, *body], paint_cell=_table_role if color else None)
    if report.front_end_problem is not None:
        out += ["", paint(shown(report.front_end_problem), "warn", color)]
    absent = any(row.service is not None and not row.in_sites for row in report.rows)
    out += ["", paint(_legend(absent), "dim", color)]
    return "\n".join(out)


def unlocked_warnings(report: AuditReport) -> list[str]:
    """One line per thing that unlocks the access section for default targets, and one for the
    paths below them unlocked apart from them: a web.config there could override sslFlags, so
    the file alone cannot show the effective policy. The command prints them on stderr, as
    every warning; the tables stay the policy alone."""
    by_source: dict[str, list[str]] = {}
    for row in report.targets():
        if row.in_sites and row.unlocked_by:
            by_source.setdefault(row.unlocked_by, []).append(row.service or row.path)
    lines = [_unlocked_line("for " + ", ".join(names), [s]) for s, names in by_source.items()]
    below = report.unlocked_below()
    if below:
        targets = ", ".join(dict.fromkeys(target.service or target.path for _, target in below))
        sources = [row.unlocked_by for row, _ in below if row.unlocked_by is not None]
        lines.append(_unlocked_line("below " + targets, list(dict.fromkeys(sources))))
    return lines


def _unlocked_line(what: str, sources: list[str]) -> str:
    by = first_named(sources)
    return (
        f"warning: the access section is unlocked {shown(what)} by {shown(by)}: a "
        "web.config below could override sslFlags, which an offline tool cannot see; check "
        "the web.config files on the server"
    )


def _table_role(row: int, column: int, text: str) -> str | None:
    if row == 0:
        return "header"
    if column == 4 and text.lower() != "none":
        return "warn"  # Extended Protection is on: it does not work with SSL offloading
    return None


def _cells(row: Row, label: str, site: str) -> tuple[str, ...]:
    if row.service is not None and not row.in_sites:
        label += " (absent)"  # its policy is what the path would get, were it created
    return (
        label + ("" if row.has_location else " *"),
        row.effective_ssl_flags,
        _short_source(row, site),
        "yes" if row.requires_ssl else "no",
        row.extended_protection,
        row.application_pool or "-",
    )


def _tree_labels(rows: list[Row], site: str) -> list[str]:
    """Paths as an indented tree below the site: '/owa', then '  /auth' (keeps columns narrow)."""
    seen: dict[str, int] = {}  # key -> depth
    labels = []
    for row in rows:
        key = path_key(row.path)
        if key == path_key(site):
            labels.append("/")
            continue
        parent = next((k for k in _ancestors(key, site) if k in seen), None)
        depth = seen[parent] + 1 if parent is not None else 0
        seen[key] = depth
        base = parent if parent is not None else path_key(site)
        labels.append("  " * depth + row.path[len(base) :])
    return labels


def _ancestors(key: str, site: str) -> list[str]:
    parts = key.split("/")
    return [
        "/".join(parts[:i])
        for i in range(len(parts) - 1, 1, -1)
        if "/".join(parts[:i]) != path_key(site)
    ]


def _short_source(row: Row, site: str) -> str:
    source = row.ssl_flags_from
    if source in ("here", SERVER_LEVEL, SCHEMA_DEFAULT):
        return {"here": "here", SERVER_LEVEL: "server", SCHEMA_DEFAULT: "default"}[source]
    if path_key(source) == path_key(site):
        return "/"
    if path_key(source) == path_key(row.path).rpartition("/")[0]:
        return "parent"
    if path_key(source).startswith(path_key(site) + "/"):
        return source[len(site) :]
    return source


PaintCell = Callable[[int, int, str], str | None]


def aligned(rows: Sequence[tuple[str, ...]], paint_cell: PaintCell | None = None) -> list[str]:
    """Rows as left-aligned columns; `paint_cell(row, column, text)` names a colour role."""
    rows = [tuple(shown(cell) for cell in row) for row in rows]  # paths read from the file
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for r, row in enumerate(rows):
        cells = []
        for c, (cell, width) in enumerate(zip(row, widths, strict=True)):
            role = paint_cell(r, c, cell) if paint_cell else None
            # pad outside the colour codes, so that the widths stay right
            cells.append(paint(cell, role) + " " * (width - len(cell)))
        lines.append("  ".join(cells).rstrip())
    return lines


def _legend(absent: bool) -> str:
    legend = (
        "FROM: where the effective sslFlags is set: here, parent, / (the site), another path, "
        "server (level) or default (schema)\nSSL: requires SSL   EP: Extended Protection "
        "(effective tokenChecking)   *: no <location> for this path in the file"
    )
    if absent:
        legend += "\n(absent): a default target that is not an application or virtual directory"
        legend += " in <sites>"
    return legend


def _render_offloaded(report: AuditReport, color: bool) -> str:
    rows: list[tuple[str, ...]] = [("SERVICE", "PATH", "OFFLOADED", "SSLFLAGS", "FROM")]
    for row in report.targets():
        state = ("yes" if _offloaded(row) else "NO") if row.in_sites else "absent"
        rows.append(
            (
                row.service or "",
                row.path,
                state,
                row.effective_ssl_flags,
                _short_source(row, report.front_end),
            )
        )
    if report.all_offloaded:
        verdict = paint(_all_offloaded(report), "good", color)
    elif report.front_end_problem is not None:
        verdict = paint(f"NOT offloaded: {shown(report.front_end_problem)}", "bad", color)
    else:
        verdict = paint("NOT offloaded: run confedit offload", "bad", color)
    table = aligned(rows, paint_cell=_offloaded_role if color else None)
    lines = [paint(shown(report.name), "header", color), *table, verdict]
    if report.back_end_without_ssl:
        where = back_end_paths(report.back_end_without_ssl)
        advice = back_end_advice(report.back_end_without_ssl)
        text = f"the {report.back_end} does not require SSL (at {where}): {advice}"
        lines.append(paint(text, "bad", color))
    return "\n".join(lines)


def back_end_advice(paths: Sequence[str]) -> str:
    """Why Back End paths without SSL are a finding, and what to do at each (the fleet says it
    too): the value Exchange Setup writes there, each value with its paths (a path of several
    servers named once)."""
    by_key = {path_key(path): path for path in reversed(paths)}  # the first spelling kept
    by_value: dict[str, list[str]] = {}
    for key in dict.fromkeys(path_key(path) for path in paths):
        value = exchange.back_end_setup_ssl(key.partition("/")[2])
        by_value.setdefault(value, []).append(by_key[key])
    values = ", ".join(f'"{value}" at {back_end_paths(at)}' for value, at in by_value.items())
    return (
        "the front end proxies to it over SSL, and it must keep requiring it; set sslFlags back "
        f"to what Exchange Setup writes: {values}"
    )


def back_end_paths(paths: Sequence[str]) -> str:
    """Back End paths relative to the site ('/', '/owa'), the first ten, then how many more."""
    return first_named([shown("/" + path.partition("/")[2]) for path in paths])


def _all_offloaded(report: AuditReport) -> str:
    """The verdict of a file whose default targets are all offloaded, naming those it lacks:
    'all' alone would vouch for directories that are not there."""
    absent = [row.service or row.path for row in report.targets() if not row.in_sites]
    if not absent:
        return "all default targets are offloaded"
    return f"all default targets present are offloaded; absent: {', '.join(absent)}"


def _offloaded_role(row: int, column: int, text: str) -> str | None:
    if row == 0:
        return "header"
    if column == 2:
        return {"yes": "good", "NO": "bad", "absent": "dim"}.get(text)
    return None
